//! The HTTP side: one hyper server that is the origin for the edges (`/live/...`), the website and
//! the JSON API. Routing starts with `shared`'s classifier, so which paths are live media, internal
//! or key-bearing is the same decision the edge filter makes.
//!
//! The top layer: it routes each request to one of two leaves that know nothing of it —
//! [`crate::origin`] (live media) and [`crate::web`] (pages and API, with their own context).
//!
//! - [`client`]: who a request is from, behind trusted proxies.
//! - [`deadline`]: the response-write timeout.
//!
//! Two listeners: the public one (origin, website, API) and the internal one (health, metrics),
//! which is on loopback by default, as Prometheus users expect of an operator endpoint.

pub mod client;
pub mod deadline;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use boltstream_shared::route::{classify, Access, Route};
use boltstream_shared::username::Username;
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::debug;

use crate::config::Settings;
use crate::hls::HlsOutput;
use crate::limits::Admission;
use crate::live::Registry;
use crate::origin;
use crate::respond::{self, without_body, BodyDeadline, Resp};
use crate::store::Store;
use crate::thumbs::Thumbnails;
use crate::web::extract::ClientAddr;
use crate::web::WebContext;

/// A slow client gets this long to send a request's headers (slowloris defence).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted; larger gets 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a connection sends: live media and this layer's own answers as they were made (no boxing
/// on the hot path), the website's as axum boxed them.
pub type Reply = Response<Either<respond::Body, axum::body::Body>>;

/// What request handlers share.
pub struct HttpContext {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// HLS output (playlists and segments).
    pub hls: Arc<HlsOutput>,
    /// Live thumbnails.
    pub thumbs: Arc<Thumbnails>,
    /// The database (whether a channel's past broadcasts are public).
    store: Arc<Store>,
    /// The site's other nodes, where a stream held elsewhere is fetched from.
    nodes: crate::nodes::Nodes,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// What private channels' playback tokens are checked with.
    pub playback: Arc<crate::playback::PlaybackSecrets>,
    /// Viewers per channel (the API counts them; metrics show them).
    viewers: Arc<crate::viewers::ViewerCounter>,
    /// Chat rooms (metrics show their connections).
    chat: Arc<crate::chat::ChatHub>,
    /// The website and API, with their own context.
    web: axum::Router,
    admission: Admission,
    /// Requests served, by route kind (in [`ROUTE_LABELS`] order).
    requests: [AtomicU64; ROUTE_LABELS.len()],
}

/// Route kinds counted in `/internal/metrics`: labels only, never paths, so no key can reach a
/// metric.
pub const ROUTE_LABELS: [&str; 11] = [
    "live_playlist",
    "live_segment",
    "media_key",
    "thumbnail",
    "vod_playlist",
    "vod_segment",
    "vod_thumbnail",
    "internal",
    "key_bearing",
    "rejected",
    "other",
];

/// What the server hands the HTTP side to serve from.
pub struct Sources {
    /// The database.
    pub store: Arc<Store>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// HLS output.
    pub hls: Arc<HlsOutput>,
    /// Live thumbnails.
    pub thumbs: Arc<Thumbnails>,
    /// What private channels' playback tokens are checked with.
    pub playback: Arc<crate::playback::PlaybackSecrets>,
    /// Chat rooms.
    pub chat: Arc<crate::chat::ChatHub>,
    /// Viewers per channel.
    pub viewers: Arc<crate::viewers::ViewerCounter>,
}

impl HttpContext {
    /// Builds the context.
    pub fn new(
        settings: Arc<Settings>,
        sources: Sources,
        shutdown: CancellationToken,
        rtmp_port: u16,
    ) -> Self {
        let Sources {
            store,
            registry,
            hls,
            thumbs,
            playback,
            chat,
            viewers,
        } = sources;
        let web = Arc::new(WebContext {
            viewers: Arc::clone(&viewers),
            guard: crate::web::guard::AccountGuard::new(&settings),
            settings: Arc::clone(&settings),
            store: Arc::clone(&store),
            registry: Arc::clone(&registry),
            hls: Arc::clone(&hls),
            thumbs: Arc::clone(&thumbs),
            rtmp_port,
            playback: Arc::clone(&playback),
            chat: Arc::clone(&chat),
        });
        Self {
            viewers,
            chat,
            web: crate::web::router(web),
            nodes: crate::nodes::Nodes::new(
                Arc::clone(&store),
                settings.node.node_id.clone(),
                settings.max_segment_bytes(),
            ),
            requests: Default::default(),
            admission: Admission::new(
                "http",
                settings.max_connections_per_ip,
                settings.max_http_connections,
            )
            .exempting(&settings.trusted_proxies),
            settings,
            registry,
            hls,
            thumbs,
            store,
            shutdown,
            playback,
        }
    }

    /// Routes one request that arrived on `side` from `peer`.
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        side: Side,
    ) -> Reply {
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
        let client = SocketAddr::new(
            client::client_ip(peer.ip(), req.headers(), &self.settings.trusted_proxies),
            peer.port(),
        );
        let (method, label) = (req.method().clone(), route.label());
        let response = if (route == Route::Other) & (side == Side::Public) {
            // Only pages and the API read bodies; live media is spared the extension map.
            let extensions = req.extensions_mut();
            extensions.insert(BodyDeadline(
                tokio::time::Instant::now() + self.settings.http_body_timeout,
            ));
            extensions.insert(ClientAddr(client));
            // axum answers HEAD itself (the GET's headers and length, no body).
            let Ok(response) = self.web.clone().oneshot(req).await;
            response.map(Either::Right)
        } else {
            if self.nodes.is_shared() {
                req.extensions_mut().insert(crate::nodes::Peer(peer.ip()));
            }
            let response = self.dispatch(&route, side, target.as_bytes(), req).await;
            let response = if method == Method::HEAD {
                without_body(response)
            } else {
                response
            };
            response.map(Either::Left)
        };
        // Never the target itself: only the route kind, which cannot carry a key.
        debug!(peer = %client, method = %method, route = label, status = response.status().as_u16(), "http");
        response
    }

    /// The answer to a request the website does not serve: live media, internal endpoints and
    /// refusals.
    async fn dispatch(
        &self,
        route: &Route,
        side: Side,
        target: &[u8],
        req: Request<Incoming>,
    ) -> Resp {
        match (route, side) {
            (Route::Internal, Side::Internal) => {
                let path = boltstream_shared::route::normalized_path(target);
                self.internal(path.as_deref().unwrap_or_default())
            }
            // `Route::Other` on the public side never comes here: `handle` sends it to the website.
            (_, Side::Internal) | (Route::Internal | Route::Other, Side::Public) => {
                respond::text(StatusCode::NOT_FOUND, "not found\n")
            }
            (Route::KeyBearing, Side::Public) => respond::text(
                StatusCode::FORBIDDEN,
                "forbidden: this path carries a stream key; keys are never used in URLs\n",
            ),
            (Route::Rejected(_), Side::Public) => {
                respond::text(StatusCode::BAD_REQUEST, "bad request path\n")
            }
            // The live media routes (`Route::is_live`).
            (_, Side::Public) => {
                if let Some((user, access)) = route_vod(route) {
                    // A past broadcast is served while the channel's visibility is the one it was
                    // recorded under: a channel made private takes its clear recordings with it,
                    // one made public its encrypted ones. (Whether a channel is private is no
                    // secret; whether a recording exists is, and needs the token to learn.)
                    if self.is_public(user).await == (access == Access::Private) {
                        return respond::text(StatusCode::NOT_FOUND, "no such recording\n");
                    }
                }
                origin::serve(
                    &self.hls,
                    &self.thumbs,
                    &self.playback,
                    &self.nodes,
                    &self.settings.policy,
                    route,
                    &req,
                )
                .await
            }
        }
    }

    /// Whether `user`'s channel is public now (a store error says no).
    async fn is_public(&self, user: &Username) -> bool {
        let (store, name) = (Arc::clone(&self.store), user.to_string());
        tokio::task::spawn_blocking(move || store.is_private(&name))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
            == Some(false)
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
                out.push_str(&self.thumbs.metrics());
                out.push_str(&self.nodes.metrics());
                out.push_str(&self.chat.bus_metrics());
                out.push_str(&format!(
                    "# TYPE boltstream_chat_connections gauge\nboltstream_chat_connections {}\n",
                    self.chat.connections()
                ));
                // One series per channel with viewers: usernames are public, and the number of
                // series is bounded by the channels being watched.
                out.push_str("# TYPE boltstream_viewers gauge\n");
                let mut counts: Vec<_> = self
                    .viewers
                    .counts(crate::clock::now_ms())
                    .into_iter()
                    .collect();
                counts.sort();
                for (channel, n) in counts {
                    out.push_str(&format!(
                        "boltstream_viewers{{channel=\"{channel}\"}} {n}\n"
                    ));
                }
                respond::body(StatusCode::OK, "text/plain; version=0.0.4", out)
            }
            _ => respond::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The origin, website and API.
    Public,
    /// Health and metrics only.
    Internal,
}

/// Serves HTTP on `side` until shutdown.
pub async fn listen(
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    tracker: TaskTracker,
    side: Side,
) {
    while let Some((socket, peer, admitted)) = ctx.admission.accept(&listener, &ctx.shutdown).await
    {
        let ctx = Arc::clone(&ctx);
        tracker.spawn(async move {
            let _admitted = admitted;
            let service = {
                let ctx = Arc::clone(&ctx);
                service_fn(move |req| {
                    let ctx = Arc::clone(&ctx);
                    async move { Ok::<_, Infallible>(ctx.handle(req, peer, side).await) }
                })
            };
            let io = deadline::WriteDeadline::new(socket, ctx.settings.http_write_timeout);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(io), service)
                // Chat's WebSockets take the connection over.
                .with_upgrades();
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

/// The channel and prefix of a past broadcast's route.
fn route_vod(route: &Route) -> Option<(&Username, Access)> {
    match route {
        Route::VodPlaylist { user, access, .. } | Route::VodSegment { user, access, .. } => {
            Some((user, *access))
        }
        Route::VodKey { user, .. } => Some((user, Access::Private)),
        Route::VodThumbnail { user, .. } => Some((user, Access::Public)),
        _ => None,
    }
}
