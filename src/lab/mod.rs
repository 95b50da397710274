//! A pair of lab hosts in network namespaces running real IKE daemons.

pub mod keylog;
pub mod keytable;
