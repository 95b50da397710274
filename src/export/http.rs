//! The HTTP server: `/metrics`, `/api/v1/sas`, `/api/v1/stats`, `/api/v1/findings`,
//! `/api/v1/report` and `/healthz`, rendered from the latest snapshot only.
//!
//! Requests carry no body (anything over 1 KiB is refused), each is answered within 5 s of
//! arriving whole or cut off, and with a token configured every path but `/healthz` needs
//! `Authorization: Bearer TOKEN`. At most [`MAX_CONNECTIONS`] connections are served at
//! once and each lives at most [`CONNECTION_LIFETIME`], so clients that send their headers
//! slowly or never close cannot pile up (a scraper simply reconnects).
//!
//! The `/metrics` exposition is rendered once per snapshot and kept: with thousands of
//! tunnels a rendering takes far longer than a scrape may. While scrapes keep coming, a
//! background task renders each new snapshot as soon as it is published, so that a scrape
//! finds the exposition ready; a scrape that arrives while it renders gets the previous
//! exposition at once, and one that arrives before it started renders it itself.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

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
    /// A scrape has taken `body`.
    served: bool,
}

impl Exposition {
    /// `true` when `snap` should be applied now. A body that shows newly labelled tunnels
    /// at zero is held until a scrape has taken it: applying the next snapshot first would
    /// let their series appear already counted, and `increase()` would miss their first
    /// events.
    fn wants(&self, snap: &Arc<Snapshot>) -> bool {
        let newer = self.snapshot.as_ref().is_none_or(|l| !Arc::ptr_eq(l, snap));
        newer && (self.served || !self.metrics.has_fresh_tunnels())
    }
}

/// Shared state of the handlers.
pub struct ServerState {
    latest: Latest,
    exposition: Mutex<Exposition>,
    /// A scrape came since the background renderer last looked: keep rendering ahead.
    scraped: AtomicBool,
    /// When the last scrape came (`None`: never).
    last_scrape: Mutex<Option<Instant>>,
    /// The body last rendered, for scrapes that come while the next one is rendered.
    last_body: Mutex<Bytes>,
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
                served: false,
            }),
            scraped: AtomicBool::new(false),
            last_scrape: Mutex::new(None),
            last_body: Mutex::new(Bytes::new()),
            token,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Exposition> {
        // A panic mid-update leaves counters that are at worst one snapshot behind.
        self.exposition.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exposition of the latest snapshot, rendered now if it was not yet (see
    /// [`Exposition::wants`] for the one case where the previous one is kept). `scrape`
    /// says whether the body goes to a scraper or is rendered ahead.
    fn metrics_body(&self, scrape: bool) -> Bytes {
        let snap = (self.latest)();
        let mut guard = self.lock();
        let ex = &mut *guard;
        if ex.wants(&snap) {
            ex.metrics.update(&snap);
            ex.body = Bytes::from(ex.metrics.render());
            ex.snapshot = Some(snap);
            ex.served = false;
            *self.last_body.lock().unwrap_or_else(|e| e.into_inner()) = ex.body.clone();
        }
        ex.served |= scrape;
        ex.body.clone()
    }

    /// The body for a scrape. While scrapes keep coming, the background renderer keeps
    /// the exposition within one snapshot of the latest, so a scrape takes what is
    /// rendered, at once: rendering tens of thousands of tunnels can take seconds on a
    /// core the capture keeps busy, and a scrape must not wait for it. The first scrape,
    /// and the first after [`RENDER_AHEAD_FOR`] without any, render the latest snapshot
    /// themselves.
    fn scrape_body(&self) -> Bytes {
        let now = Instant::now();
        let previous = self
            .last_scrape
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(now);
        let rendering_ahead = previous.is_some_and(|t| now.duration_since(t) < RENDER_AHEAD_FOR);
        if rendering_ahead {
            match self.exposition.try_lock() {
                Ok(mut ex) if !ex.body.is_empty() => {
                    ex.served = true;
                    return ex.body.clone();
                }
                Ok(_) => {}
                // Being rendered: the body before it.
                Err(_) => {
                    let last = self
                        .last_body
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    if !last.is_empty() {
                        return last;
                    }
                }
            }
        }
        self.metrics_body(true)
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
            let _ = tokio::task::spawn_blocking(move || state.metrics_body(false)).await;
        }
    }

    /// `true` when a newer snapshot than the rendered one exists and nobody is rendering.
    fn behind(&self) -> bool {
        let snap = (self.latest)();
        match self.exposition.try_lock() {
            Ok(ex) => ex.wants(&snap),
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
        .layer(middleware::from_fn(refuse_bodies))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Most connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest life of one connection, however busy or idle.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(15);

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_limited(
        listener,
        state,
        shutdown,
        MAX_CONNECTIONS,
        CONNECTION_LIFETIME,
    )
    .await
}

/// [`serve`] with the connection limits given.
async fn serve_limited(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    connections: usize,
    lifetime: Duration,
) -> std::io::Result<()> {
    let listener = Guarded {
        inner: listener,
        slots: Arc::new(Semaphore::new(connections)),
        lifetime,
    };
    tokio::spawn(Arc::clone(&state).render_ahead());
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A listener that bounds the number of connections and the life of each.
struct Guarded {
    inner: tokio::net::TcpListener,
    slots: Arc<Semaphore>,
    lifetime: Duration,
}

impl axum::serve::Listener for Guarded {
    type Io = Limited;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Limited, SocketAddr) {
        // The semaphore is never closed, so acquiring only waits for a free slot.
        let slot = loop {
            if let Ok(p) = Arc::clone(&self.slots).acquire_owned().await {
                break p;
            }
        };
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let stream = Limited {
            io,
            deadline: Box::pin(tokio::time::sleep(self.lifetime)),
            _slot: slot,
        };
        (stream, addr)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that fails every read and write once its lifetime is over, which makes
/// the HTTP server close it; it frees its slot when dropped.
struct Limited {
    io: TcpStream,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Limited {
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        self.deadline
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "connection lifetime over"))
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Largest request body accepted; no endpoint reads one.
const MAX_BODY: usize = 1024;

/// Refuses a request announcing a body over [`MAX_BODY`] or a chunked one before any
/// handler runs: the handlers never read bodies, so a body limit on extractors alone
/// would never fire.
async fn refuse_bodies(req: Request, next: Next) -> Response {
    let h = req.headers();
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>().unwrap_or(u64::MAX));
    let too_big = declared.is_some_and(|n| n > MAX_BODY as u64);
    if too_big || h.contains_key(header::TRANSFER_ENCODING) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "requests carry no body\n").into_response();
    }
    next.run(req).await
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

async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    state.scraped.store(true, Ordering::Relaxed);
    // On the blocking pool: rendering a large snapshot must not hold an async worker.
    match tokio::task::spawn_blocking(move || state.scrape_body()).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering the metrics failed\n",
        )
            .into_response(),
    }
}

/// Renders on the blocking pool: a large snapshot takes a while to serialise, and the
/// async workers must stay free to accept connections and answer `/healthz`.
async fn off_runtime(render: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(render)
        .await
        .unwrap_or_else(|_| {
            (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response()
        })
}

/// A JSON document as the response body, with its content type.
fn json_body(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response(),
    }
}

/// The `/api/v1/sas` document, borrowing from the snapshot rather than copying every SA
/// into a JSON value tree.
#[derive(serde::Serialize)]
struct Sas<'a> {
    schema: u32,
    ike_sas: &'a [crate::track::report::IkeSaReport],
    esp_sas: &'a [crate::track::report::EspSaReport],
    ah_sas: &'a [crate::track::report::EspSaReport],
}

async fn sas(State(state): State<Arc<ServerState>>) -> Response {
    off_runtime(move || {
        let s = (state.latest)();
        json_body(&Sas {
            schema: 1,
            ike_sas: &s.report.ike_sas,
            esp_sas: &s.report.esp_sas,
            ah_sas: &s.report.ah_sas,
        })
    })
    .await
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

async fn findings(State(state): State<Arc<ServerState>>) -> Response {
    off_runtime(move || {
        let s = (state.latest)();
        json_body(&json!({"schema": 1, "findings": s.findings}))
    })
    .await
}

async fn report(State(state): State<Arc<ServerState>>) -> Response {
    off_runtime(move || json_body(&(state.latest)().report)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::MetricsConfig;
    use std::io::{Read, Write};

    /// A server over an empty snapshot on a loopback port, with the given limits.
    async fn start(connections: usize, lifetime: Duration) -> SocketAddr {
        let snap = Arc::new(
            crate::runner::Shared::new("test")
                .latest()
                .snapshot
                .as_ref()
                .clone(),
        );
        let latest: Latest = Arc::new(move || Arc::clone(&snap));
        let state = ServerState::new(latest, Metrics::new(MetricsConfig::default()), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let never = std::future::pending::<()>();
        tokio::spawn(serve_limited(listener, state, never, connections, lifetime));
        addr
    }

    /// Sends `request` and returns the status code of the answer (0 when none came), on a
    /// blocking thread with a plain socket.
    async fn status(addr: SocketAddr, request: &[u8]) -> u16 {
        let request = request.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&request).unwrap();
            let mut text = Vec::new();
            let _ = s.read_to_end(&mut text);
            let text = String::from_utf8_lossy(&text);
            text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
        })
        .await
        .unwrap()
    }

    /// A state over a snapshot source that the test can replace.
    fn state_over(cell: Arc<Mutex<Arc<Snapshot>>>) -> Arc<ServerState> {
        let latest: Latest = Arc::new(move || Arc::clone(&cell.lock().unwrap()));
        ServerState::new(latest, Metrics::new(MetricsConfig::default()), None)
    }

    fn snapshot(frames: u64) -> Arc<Snapshot> {
        let mut snap = crate::runner::Shared::new("test")
            .latest()
            .snapshot
            .as_ref()
            .clone();
        snap.report.frames = frames;
        Arc::new(snap)
    }

    fn frames(body: &Bytes) -> String {
        let text = String::from_utf8_lossy(body);
        let line = text
            .lines()
            .find(|l| l.starts_with("ipsecmon_frames_total"));
        line.unwrap_or_default().to_string()
    }

    #[test]
    fn scrapes_take_the_rendered_body_and_the_renderer_brings_the_next() {
        let cell = Arc::new(Mutex::new(snapshot(1)));
        let state = state_over(Arc::clone(&cell));
        // The first scrape renders the latest snapshot itself.
        let first = state.scrape_body();
        assert_eq!(frames(&first), "ipsecmon_frames_total 1");
        // A newer snapshot: the next scrape takes what is rendered, without rendering...
        *cell.lock().unwrap() = snapshot(2);
        assert_eq!(state.scrape_body(), first);
        // ...and the renderer (here called directly) brings the new one for the next.
        assert!(state.behind());
        state.metrics_body(false);
        assert_eq!(frames(&state.scrape_body()), "ipsecmon_frames_total 2");
        // While a rendering holds the exposition, a scrape gets the last body at once.
        let held = state.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let scraper = Arc::clone(&state);
        std::thread::spawn(move || tx.send(scraper.scrape_body()).unwrap());
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the scrape waited for the rendering");
        assert_eq!(frames(&got), "ipsecmon_frames_total 2");
        drop(held);
    }

    #[test]
    fn a_scrape_after_a_long_pause_renders_the_latest_itself() {
        let cell = Arc::new(Mutex::new(snapshot(1)));
        let state = state_over(Arc::clone(&cell));
        state.scrape_body();
        *cell.lock().unwrap() = snapshot(5);
        // Nobody scraped for longer than the renderer keeps rendering ahead.
        *state.last_scrape.lock().unwrap() = Instant::now().checked_sub(RENDER_AHEAD_FOR * 2);
        assert_eq!(frames(&state.scrape_body()), "ipsecmon_frames_total 5");
    }

    #[tokio::test]
    async fn only_the_documented_endpoints_answer_and_bodies_are_refused() {
        let addr = start(8, Duration::from_secs(5)).await;
        let get = |path: &str| format!("GET {path} HTTP/1.0\r\n\r\n").into_bytes();
        for path in [
            "/metrics",
            "/healthz",
            "/api/v1/sas",
            "/api/v1/stats",
            "/api/v1/findings",
            "/api/v1/report",
        ] {
            assert_eq!(status(addr, &get(path)).await, 200, "{path}");
        }
        for path in [
            "/",
            "/api/v1",
            "/api/v1/keys",
            "/metrics/x",
            "/../etc/passwd",
        ] {
            assert_eq!(status(addr, &get(path)).await, 404, "{path}");
        }
        assert_eq!(status(addr, b"POST /metrics HTTP/1.0\r\n\r\n").await, 405);
        let mut big = b"GET /metrics HTTP/1.0\r\nContent-Length: 4096\r\n\r\n".to_vec();
        big.extend_from_slice(&[b'x'; 4096]);
        assert_eq!(status(addr, &big).await, 413);
        let chunked = b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n";
        assert_eq!(status(addr, chunked).await, 413);
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_is_cut_off() {
        let addr = start(8, Duration::from_millis(300)).await;
        let read = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).map(|_| buf.len())
        })
        .await
        .unwrap();
        // Closed (end of stream or reset) long before the 5 s read timeout, unanswered.
        assert!(
            matches!(read, Ok(0))
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
            "{read:?}"
        );
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_a_free_slot() {
        let addr = start(2, Duration::from_millis(500)).await;
        // Two idle connections take both slots...
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ...so a third is answered only once their lifetime has freed a slot.
        let started = std::time::Instant::now();
        assert_eq!(status(addr, b"GET /healthz HTTP/1.0\r\n\r\n").await, 200);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
}
