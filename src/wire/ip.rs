//! IPv4 and IPv6 (with extension headers), UDP, and the split of UDP 500/4500 into IKE,
//! ESP-in-UDP and keepalives; ICMP errors that quote IPsec packets.
