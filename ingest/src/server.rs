//! Wires the store, the RTMP listener, the HLS output and the HTTP side into one running server, with
//! the background duties (operator drops, stats) and an orderly stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::chat::bus::Bus;
use crate::config::Settings;
use crate::hls::HlsOutput;
use crate::http;
use crate::limits::Admission;
use crate::live::{Counters, Registry};
use crate::rtmp::{self, RtmpContext};
use crate::store::{NodeClaim, Store, StreamStats};
use crate::thumbs::{Thumbnailing, Thumbnails};
use crate::viewers::ViewerCounter;
use boltstream_shared::username::Username;

/// How often the server looks for bans and stop requests made by other processes.
const DROP_POLL: Duration = Duration::from_millis(400);
/// How often live statistics are written to the database.
const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// Between two writes of this node's viewers to the store (several nodes only).
const VIEWERS_SHARED: Duration = Duration::from_secs(2);
/// How long shutdown waits for connections to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A started server.
pub struct RunningServer {
    rtmp_addr: SocketAddr,
    http_addr: SocketAddr,
    internal_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    store: Arc<Store>,
    hls: Arc<HlsOutput>,
    node_id: String,
}

impl RunningServer {
    /// Opens the database, resets streams a crash left live, binds both listeners and starts serving.
    pub async fn start(mut settings: Settings) -> anyhow::Result<Self> {
        if settings.node.node_id.is_empty() {
            anyhow::bail!(
                "invalid setting node_id: set a name unique in the site for each node sharing a \
                 PostgreSQL database"
            );
        }
        let rtmp_listener = bind(settings.rtmp_listen, "RTMP").await?;
        let http_listener = bind(settings.http_listen, "HTTP").await?;
        let internal_listener = bind(settings.internal_listen, "the internal endpoints").await?;
        let (rtmp_addr, http_addr) = (rtmp_listener.local_addr()?, http_listener.local_addr()?);
        let internal_addr = internal_listener.local_addr()?;
        if settings.node.url.is_empty() {
            settings.node.url = format!("http://{http_addr}");
        }
        let settings = Arc::new(settings);
        let store = open_store(&settings).await?;
        let playback = load_playback(&store).await?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let registry = Arc::new(Registry::default());
        let kek = load_recording_kek(&store).await?;
        let hls = HlsOutput::start(&settings, kek, shutdown.clone(), &tracker)?;
        let thumbs = Thumbnails::start(
            settings.thumbnail_interval,
            crate::thumbs::threads_for_this_machine(),
        )
        .context("cannot start the thumbnail threads")?;

        let rtmp_ctx = RtmpContext {
            settings: Arc::clone(&settings),
            store: Arc::clone(&store),
            registry: Arc::clone(&registry),
            // Packaging, and in front of it the thumbnails' keyframe tap.
            sinks: Arc::new(
                Thumbnailing::new(Arc::new(Arc::clone(&hls)), Arc::clone(&thumbs))
                    .keeping_for(Arc::clone(&hls.recordings)),
            ),
            throttle: crate::limits::Throttle::new(settings.auth_failures_per_minute),
            shutdown: shutdown.clone(),
            admission: rtmp_admission(&settings),
        };
        tracker.spawn(rtmp::listen(
            rtmp_listener,
            Arc::new(rtmp_ctx),
            tracker.clone(),
        ));
        let chat = Arc::new(crate::chat::ChatHub::default());
        let viewers = Arc::new(ViewerCounter::default());
        if store.is_shared() {
            viewers.share();
            tracker.spawn(share_viewers(
                Arc::clone(&store),
                Arc::clone(&viewers),
                shutdown.clone(),
            ));
        }
        if let Some(url) = &settings.chat_nats {
            let node = &settings.node.node_id;
            let bus = Bus::connect(url, node, Arc::clone(&chat), shutdown.clone(), &tracker)
                .await
                .context("cannot use chat_nats")?;
            chat.set_bus(bus);
        }
        let http_ctx = Arc::new(http::HttpContext::new(
            Arc::clone(&settings),
            http::Sources {
                store: Arc::clone(&store),
                registry: Arc::clone(&registry),
                hls: Arc::clone(&hls),
                thumbs: Arc::clone(&thumbs),
                playback: Arc::clone(&playback),
                chat,
                viewers: Arc::clone(&viewers),
            },
            shutdown.clone(),
            rtmp_addr.port(),
        ));
        for (listener, side) in [
            (http_listener, http::Side::Public),
            (internal_listener, http::Side::Internal),
        ] {
            let ctx = Arc::clone(&http_ctx);
            tracker.spawn(http::listen(listener, ctx, tracker.clone(), side));
        }
        let (s, r) = (&store, &registry);
        spawn_duties(&tracker, s, r, &hls, playback, &settings.node, &shutdown);
        tracker.spawn(stats_reporter(
            Arc::clone(&store),
            Arc::clone(&registry),
            Arc::clone(&hls),
            thumbs,
            shutdown.clone(),
        ));
        if store.is_shared() {
            tracker.spawn(crate::recording_index::keep_indexed(
                Arc::clone(&hls.recordings),
                Arc::clone(&store),
                settings.node.clone(),
                shutdown.clone(),
            ));
        }

        info!(rtmp = %rtmp_addr, http = %http_addr, internal = %internal_addr, data = %settings.data.display(), app = %settings.rtmp_app, "boltstream serving");
        Ok(Self {
            rtmp_addr,
            http_addr,
            internal_addr,
            shutdown,
            tracker,
            store,
            hls,
            node_id: settings.node.node_id.clone(),
        })
    }

    /// Writes the bound addresses as JSON to `path` (atomically: a reader never sees half).
    pub fn write_ready_file(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "rtmp": self.rtmp_addr.to_string(),
            "http": self.http_addr.to_string(),
            "internal": self.internal_addr.to_string(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write the ready file {}", path.display()))
    }

    /// Where RTMP publishers connect.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// Where the HTTP side listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The database (for tests and the in-process CLI).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The HLS output (for tests).
    pub fn hls(&self) -> &Arc<HlsOutput> {
        &self.hls
    }

    /// The token whose cancellation stops the server.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for the shutdown token, then stops: publishers are disconnected and their playlists
    /// ended, the database is left with nothing live.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        self.stop().await
    }

    /// Stops now.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("some connections did not end within the grace period");
        }
        self.hls.stop().await;
        let (store, node) = (Arc::clone(&self.store), self.node_id.clone());
        tokio::task::spawn_blocking(move || store.reset_live(&node)).await??;
        info!("boltstream stopped");
        Ok(())
    }
}

/// The playback-token secrets, from the store.
async fn load_playback(
    store: &Arc<Store>,
) -> anyhow::Result<Arc<crate::playback::PlaybackSecrets>> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || crate::playback::PlaybackSecrets::load(&store))
        .await?
        .context("cannot read the playback-token secrets")
}

/// The key-encryption key of private recordings, from the store (made on first use).
async fn load_recording_kek(store: &Arc<Store>) -> anyhow::Result<[u8; 16]> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || store.recording_kek())
        .await?
        .context("cannot read the recordings' key-encryption key")
}

/// The background duties: the playback secrets' refresh and the drop watch.
fn spawn_duties(
    tracker: &TaskTracker,
    store: &Arc<Store>,
    registry: &Arc<Registry>,
    hls: &Arc<HlsOutput>,
    playback: Arc<crate::playback::PlaybackSecrets>,
    node: &NodeClaim,
    shutdown: &CancellationToken,
) {
    tracker.spawn(crate::playback::refresher(
        playback,
        Arc::clone(store),
        shutdown.clone(),
    ));
    tracker.spawn(drop_watch(
        Arc::clone(store),
        Arc::clone(registry),
        Arc::clone(hls),
        node.clone(),
        shutdown.clone(),
    ));
}

/// Opens the database (creating the data directory) and takes offline what a crash left live.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<Store>> {
    Store::create_data_dir(&settings.data)
        .with_context(|| format!("cannot create data directory {}", settings.data.display()))?;
    let database = settings.database.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_database(&database))
        .await?
        .with_context(|| format!("cannot open database {:?}", settings.database))?;
    let store = Arc::new(store);
    let (node, s) = (settings.node.node_id.clone(), Arc::clone(&store));
    let reset = tokio::task::spawn_blocking(move || s.reset_live(&node)).await??;
    if reset > 0 {
        info!(
            streams = reset,
            "streams left live by an unclean stop were reset"
        );
    }
    Ok(store)
}

fn rtmp_admission(settings: &Settings) -> Admission {
    let (per_ip, total) = (
        settings.max_connections_per_ip,
        settings.max_rtmp_connections,
    );
    Admission::new("rtmp", per_ip, total)
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// Drops publishers whose user was banned, whose stop was requested, or whose publish is no longer
/// the live one in the database (the key was rotated, or the claim lapsed), possibly by another
/// process (the CLI) or another node sharing the database; and, in the same query, renews this
/// node's claims on the streams it holds. Every [`DROP_POLL`], so a ban on any node ends the
/// publish on this one within a second.
async fn drop_watch(
    store: Arc<Store>,
    registry: Arc<Registry>,
    hls: Arc<HlsOutput>,
    node: NodeClaim,
    shutdown: CancellationToken,
) {
    let mut tick = crate::ticks::aligned_interval(DROP_POLL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // The registry is read before the database: a publish is committed live before it is
        // registered, so one registered by now and missing from the database really was ended.
        let held = registry.list();
        if held.is_empty() {
            continue;
        }
        let (store, node) = (Arc::clone(&store), node.clone());
        let live = match tokio::task::spawn_blocking(move || store.live_publishes(&node)).await {
            Ok(Ok(live)) => live,
            Ok(Err(err)) => {
                warn!(error = %err, "drop watch could not read the database");
                continue;
            }
            Err(_) => continue,
        };
        for stream in held {
            let row = (live.iter())
                .find(|p| p.publish_id == stream.publish_id && p.username == stream.user.as_str());
            let why = match row {
                None => "its stream key was rotated",
                Some(p) if p.drop_requested => "an operator's request (ban or stop)",
                Some(_) => continue,
            };
            if registry.cancel(stream.user.as_str(), stream.publish_id) {
                info!(user = %stream.user, reason = why, "dropping publisher");
            }
            // A channel made private while live in the clear: what it published in the clear is
            // served no more, from now on rather than once its output expires.
            if row.is_some_and(|p| p.private) && hls.is_private(&stream.user) == Some(false) {
                hls.withdraw(&stream.user);
            }
        }
    }
}

/// Writes bitrate, fps and codecs of live streams to the database for the CLI and the dashboard,
/// and whether each can be played yet and its newest picture, for the pages other nodes serve.
async fn stats_reporter(
    store: Arc<Store>,
    registry: Arc<Registry>,
    hls: Arc<HlsOutput>,
    thumbs: Arc<Thumbnails>,
    shutdown: CancellationToken,
) {
    let mut previous: HashMap<i64, (Instant, u64, u64)> = HashMap::new();
    let mut tick = crate::ticks::aligned_interval(STATS_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let mut batch = Vec::new();
        let mut seen = HashMap::new();
        for stream in registry.list() {
            let c = &stream.counters;
            let (bytes, frames) = (Counters::get(&c.bytes), Counters::get(&c.video_frames));
            let key = stream.publish_id.0;
            if let Some((at, b0, f0)) = previous.get(&key) {
                let secs = now.duration_since(*at).as_secs_f64().max(0.001);
                let meta = c.metadata.lock().unwrap_or_else(|p| p.into_inner()).clone();
                batch.push((
                    stream.publish_id,
                    StreamStats {
                        video_codec: codec_name(meta.video_codec_id, true),
                        audio_codec: codec_name(meta.audio_codec_id, false),
                        width: meta.width.unwrap_or(0),
                        height: meta.height.unwrap_or(0),
                        fps: ((frames - f0) as f64 / secs * 10.0).round() / 10.0,
                        bitrate_kbps: ((bytes - b0) as f64 * 8.0 / 1000.0 / secs) as u64,
                        playable: hls.is_playable(&stream.user),
                        // Only other nodes need it; a single node's pages ask its gallery.
                        thumbnail: if store.is_shared() {
                            thumbs.latest(&stream.user)
                        } else {
                            None
                        },
                    },
                ));
            }
            seen.insert(key, (now, bytes, frames));
        }
        previous = seen;
        if batch.is_empty() {
            continue;
        }
        let store = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || {
            for (id, stats) in batch {
                if let Err(err) = store.record_stats(id, &stats) {
                    warn!(error = %err, "could not record stream statistics");
                }
            }
        })
        .await;
    }
}

/// With several nodes: every [`VIEWERS_SHARED`], writes the heartbeats this node counted to the
/// store and reads back the site's counts (each viewer once, whichever nodes their heartbeats
/// reached).
async fn share_viewers(
    store: Arc<Store>,
    viewers: Arc<ViewerCounter>,
    shutdown: CancellationToken,
) {
    let mut tick = crate::ticks::aligned_interval(VIEWERS_SHARED);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let beats: Vec<(String, String)> = (viewers.take_outbox().into_iter())
            .map(|(id, channel)| (id.hex(), channel.to_string()))
            .collect();
        let (s, now) = (Arc::clone(&store), crate::clock::now_ms());
        let counts = tokio::task::spawn_blocking(move || {
            if !beats.is_empty() {
                s.record_viewers(&beats, now)?;
            }
            s.viewer_counts(now - crate::viewers::EXPIRE_MS)
        })
        .await;
        match counts {
            Ok(Ok(rows)) => viewers.set_site_counts(
                (rows.into_iter())
                    .filter_map(|(name, n)| Some((Username::parse(&name).ok()?, n.max(0) as usize)))
                    .collect(),
            ),
            Ok(Err(err)) => warn!(error = %err, "could not share viewer counts"),
            Err(_) => {}
        }
    }
}

/// An FLV codec id as a name, empty when none was announced.
fn codec_name(id: Option<u32>, video: bool) -> String {
    id.map(|id| boltstream_hls::flv::codec_name(id, video))
        .unwrap_or_default()
}
