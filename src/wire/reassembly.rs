//! Bounded IPv4/IPv6 fragment reassembly.
