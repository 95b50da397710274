//! Prometheus metrics, the JSON API and the HTTP server.
