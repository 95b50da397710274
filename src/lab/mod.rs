//! A pair of lab hosts in network namespaces running real IKE daemons.
