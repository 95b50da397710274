//! The HTTP server: `/metrics`, `/api/v1/sas`, `/api/v1/stats`, `/api/v1/findings`,
//! `/api/v1/report` and `/healthz`, rendered from the latest snapshot only.
//!
//! Requests carry no body (anything over 1 KiB is refused), each is answered within 5 s
//! or cut off, and with a token configured every path but `/healthz` needs
//! `Authorization: Bearer TOKEN`.
//!
//! The `/metrics` exposition is rendered once per snapshot and kept: with thousands of
//! tunnels a rendering takes far longer than a scrape may. While scrapes keep coming, a
//! background task renders each new snapshot as soon as it is published, so that a scrape
//! finds the exposition ready; a scrape that arrives first renders it itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::snapshot::Snapshot;

use super::metrics::Metrics;

/// Default listen address: loopback only, on a port of its own.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9795";

/// How the server finds the latest snapshot (the capture loop publishes it).
pub type Latest = Arc<dyn Fn() -> Arc<Snapshot> + Send + Sync>;

/// How often the background renderer looks for a new snapshot.
const RENDER_POLL: Duration = Duration::from_millis(100);
/// How long after the last scrape the background renderer keeps rendering.
const RENDER_AHEAD_FOR: Duration = Duration::from_secs(60);

/// The collector and the exposition of the snapshot it last applied.
struct Exposition {
    snapshot: Option<Arc<Snapshot>>,
    metrics: Metrics,
    body: Bytes,
}

/// Shared state of the handlers.
pub struct ServerState {
    latest: Latest,
    exposition: Mutex<Exposition>,
    /// A scrape came since the background renderer last looked: keep rendering ahead.
    scraped: AtomicBool,
    token: Option<String>,
}

impl ServerState {
    /// State over a snapshot source and a collector, with an optional bearer token.
    pub fn new(latest: Latest, metrics: Metrics, token: Option<String>) -> Arc<Self> {
        Arc::new(ServerState {
            latest,
            exposition: Mutex::new(Exposition {
                snapshot: None,
                metrics,
                body: Bytes::new(),
            }),
            scraped: AtomicBool::new(false),
            token,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Exposition> {
        // A panic mid-update leaves counters that are at worst one snapshot behind.
        self.exposition.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exposition of the latest snapshot, rendered now if it was not yet.
    fn metrics_body(&self) -> Bytes {
        let snap = (self.latest)();
        let mut guard = self.lock();
        let ex = &mut *guard;
        if ex.snapshot.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &snap)) {
            ex.metrics.update(&snap);
            ex.body = Bytes::from(ex.metrics.render());
            ex.snapshot = Some(snap);
        }
        ex.body.clone()
    }

    /// Renders each new snapshot ahead of the scrapes, for as long as scrapes come: a
    /// server nobody scraped for [`RENDER_AHEAD_FOR`] spends nothing on it.
    async fn render_ahead(self: Arc<Self>) {
        let mut since_scrape = RENDER_AHEAD_FOR;
        loop {
            tokio::time::sleep(RENDER_POLL).await;
            since_scrape = if self.scraped.swap(false, Ordering::Relaxed) {
                Duration::ZERO
            } else {
                since_scrape.saturating_add(RENDER_POLL)
            };
            if since_scrape >= RENDER_AHEAD_FOR || !self.behind() {
                continue;
            }
            let state = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || state.metrics_body()).await;
        }
    }

    /// `true` when a newer snapshot than the rendered one exists and nobody is rendering.
    fn behind(&self) -> bool {
        let snap = (self.latest)();
        match self.exposition.try_lock() {
            Ok(ex) => ex.snapshot.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &snap)),
            Err(_) => false,
        }
    }
}

/// The router with every endpoint and limit.
pub fn router(state: Arc<ServerState>) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/sas", get(sas))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/report", get(report))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .layer(middleware::from_fn(deadline))
        .layer(DefaultBodyLimit::max(1024))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(Arc::clone(&state).render_ahead());
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "request timed out\n").into_response(),
    }
}

async fn require_token(
    State(state): State<Arc<ServerState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            let mut resp = (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

/// Compares without an early exit, so timing does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let snap = (state.latest)();
    Json(json!({"schema": 1, "status": "ok", "source": snap.source, "frames": snap.report.frames}))
}

async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    state.scraped.store(true, Ordering::Relaxed);
    let body = state.metrics_body();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn sas(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let s = (state.latest)();
    Json(json!({
        "schema": 1,
        "ike_sas": s.report.ike_sas,
        "esp_sas": s.report.esp_sas,
        "ah_sas": s.report.ah_sas,
    }))
}

async fn stats(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let s = (state.latest)();
    Json(json!({
        "schema": 1,
        "stats": s.report.stats,
        "frames": s.report.frames,
        "decode_errors": s.report.decode_errors,
        "capture": s.capture,
        "evictions": s.report.evictions,
    }))
}

async fn findings(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    let s = (state.latest)();
    Json(json!({"schema": 1, "findings": s.findings}))
}

async fn report(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    Json((state.latest)().report.clone())
}
