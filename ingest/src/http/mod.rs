//! The HTTP side: one hyper server that is the origin for the edges (`/live/...`), the website and
//! the JSON API. Routing starts with `shared`'s classifier, so which paths are live media, internal
//! or key-bearing is the same decision the edge filter makes.
//!
//! - [`origin`]: playlists and segments with the shared header policy and conditional GET.
//! - [`respond`]: small response builders.

pub mod origin;
pub mod respond;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boltstream_shared::route::{classify, Route};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::config::Settings;
use crate::hls::HlsOutput;
use crate::limits::{Admission, Throttle};
use crate::live::Registry;
use crate::store::Store;

/// A slow client gets this long to send a request's headers (slowloris defence).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted; larger gets 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A response body: whole bytes, or a file read in chunks as it is sent (a segment too large to
/// read into memory for each request).
pub type Body = http_body_util::Either<Full<Bytes>, FileBody>;

/// A file sent in chunks.
pub type FileBody = http_body_util::StreamBody<
    futures_util::stream::MapOk<
        tokio_util::io::ReaderStream<tokio::fs::File>,
        fn(Bytes) -> hyper::body::Frame<Bytes>,
    >,
>;

/// The response type of every handler.
pub type Resp = Response<Body>;

/// What request handlers share.
pub struct HttpContext {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Database.
    pub store: Arc<Store>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// HLS output (playlists and segments in memory).
    pub hls: Arc<HlsOutput>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// The RTMP port actually bound (shown to streamers).
    pub rtmp_port: u16,
    /// Failed log-ins per address.
    pub login_throttle: Throttle,
    admission: Admission,
    /// Requests served, by route kind (in [`ROUTE_LABELS`] order).
    requests: [AtomicU64; ROUTE_LABELS.len()],
}

/// Route kinds counted in `/internal/metrics`: labels only, never paths, so no key can reach a
/// metric.
pub const ROUTE_LABELS: [&str; 6] = [
    "live_playlist",
    "live_segment",
    "internal",
    "key_bearing",
    "rejected",
    "other",
];

impl HttpContext {
    /// Builds the context.
    pub fn new(
        settings: Arc<Settings>,
        store: Arc<Store>,
        registry: Arc<Registry>,
        hls: Arc<HlsOutput>,
        shutdown: CancellationToken,
        rtmp_port: u16,
    ) -> Self {
        Self {
            rtmp_port,
            requests: Default::default(),
            login_throttle: Throttle::new(5),
            admission: Admission::new(
                "http",
                settings.max_connections_per_ip,
                settings.max_http_connections,
            ),
            settings,
            store,
            registry,
            hls,
            shutdown,
        }
    }

    /// Routes one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let route = classify(target.as_bytes());
        if let Some(i) = ROUTE_LABELS.iter().position(|l| *l == route.label()) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
        let (method, label) = (req.method().clone(), route.label());
        let response = match &route {
            Route::LivePlaylist { .. } | Route::LiveSegment { .. } => {
                origin::serve(&self, &route, &req).await
            }
            Route::KeyBearing => respond::text(
                StatusCode::FORBIDDEN,
                "forbidden: this path carries a stream key; keys are never used in URLs\n",
            ),
            Route::Rejected(_) => respond::text(StatusCode::BAD_REQUEST, "bad request path\n"),
            Route::Internal => self.internal(req.uri().path()),
            Route::Other => crate::web::handle(&self, req, peer).await,
        };
        // Never the target itself: only the route kind, which cannot carry a key.
        debug!(peer = %peer, method = %method, route = label, status = response.status().as_u16(), "http");
        response
    }

    fn internal(&self, path: &str) -> Resp {
        match path {
            "/internal/health" => respond::text(StatusCode::OK, "ok\n"),
            "/internal/metrics" => {
                let mut out = String::from("# TYPE boltstream_http_requests_total counter\n");
                for (label, count) in ROUTE_LABELS.iter().zip(&self.requests) {
                    out.push_str(&format!(
                        "boltstream_http_requests_total{{route=\"{label}\"}} {}\n",
                        count.load(Ordering::Relaxed)
                    ));
                }
                out.push_str(&format!(
                    "# TYPE boltstream_live_streams gauge\nboltstream_live_streams {}\n",
                    self.registry.list().len()
                ));
                out.push_str(&format!(
                    "# TYPE boltstream_hls_segment_bytes_in_memory gauge\nboltstream_hls_segment_bytes_in_memory {}\n",
                    self.hls.segment_bytes_in_memory()
                ));
                out.push_str(&format!(
                    "# TYPE boltstream_hls_disk_cache_bytes gauge\nboltstream_hls_disk_cache_bytes {}\n",
                    self.hls.disk_cache_bytes()
                ));
                respond::body(StatusCode::OK, "text/plain; version=0.0.4", out)
            }
            _ => respond::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// Serves HTTP until shutdown.
pub async fn listen(listener: TcpListener, ctx: Arc<HttpContext>, tracker: TaskTracker) {
    while let Some((socket, peer, admitted)) = ctx.admission.accept(&listener, &ctx.shutdown).await
    {
        let ctx = Arc::clone(&ctx);
        tracker.spawn(async move {
            let _admitted = admitted;
            let service = {
                let ctx = Arc::clone(&ctx);
                service_fn(move |req| {
                    let ctx = Arc::clone(&ctx);
                    async move { Ok::<_, Infallible>(ctx.handle(req, peer).await) }
                })
            };
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(socket), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        debug!(peer = %peer, error = %err, "http connection ended with an error");
                    }
                }
                () = ctx.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
}
