//! Key tables in Wireshark's formats (IKEv1, IKEv2, ESP SA) and tcpdump's.
