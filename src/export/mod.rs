//! Prometheus metrics, the JSON API and the HTTP server.
//!
//! Every output renders from the latest [`Snapshot`](crate::snapshot::Snapshot); nothing
//! here touches the tracker. Metric names follow Prometheus conventions: the `ipsecmon_`
//! prefix, base units, `_total` on counters, and label sets bounded by
//! [`MetricsConfig::max_tunnels`](metrics::MetricsConfig::max_tunnels).

pub mod http;
pub mod metrics;
pub mod pretty;
pub mod tunnels;

pub use http::{router, serve, Latest, ServerState, DEFAULT_LISTEN};
pub use metrics::{Metrics, MetricsConfig};

#[cfg(test)]
mod tests;
