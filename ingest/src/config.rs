//! Settings. Each option comes, in order of precedence, from a command-line flag, a `BOLTSTREAM_*`
//! environment variable, the optional TOML file (`--config`), or its default — so `boltstream serve`
//! with nothing else works out of the box, and a deployment can pin everything in one file.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use boltstream_shared::policy::{Policy, PolicyError};

use crate::store::{Database, NodeClaim};
use serde::Deserialize;

/// The live output's container.
#[derive(clap::ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HlsFormat {
    /// fMP4 (CMAF) segments and parts: Low-Latency HLS.
    Cmaf,
    /// MPEG-TS segments: plain HLS.
    Ts,
}

impl std::fmt::Display for HlsFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HlsFormat::Cmaf => "cmaf",
            HlsFormat::Ts => "ts",
        })
    }
}

/// Options shared by every subcommand. Every field is optional here; [`Settings::resolve`] fills in
/// the file and the defaults. The same struct is the TOML file's schema, so the two cannot drift.
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Data directory: the database and the HLS output live here
    #[arg(long, global = true, env = "BOLTSTREAM_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Address RTMP publishers connect to
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_RTMP_LISTEN",
        value_name = "ADDR"
    )]
    pub rtmp_listen: Option<SocketAddr>,
    /// Address of the HTTP origin, website and API
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HTTP_LISTEN",
        value_name = "ADDR"
    )]
    pub http_listen: Option<SocketAddr>,
    /// Address of the operator endpoints /internal/health and /internal/metrics, kept off the
    /// public port
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_INTERNAL_LISTEN",
        value_name = "ADDR"
    )]
    pub internal_listen: Option<SocketAddr>,
    /// Proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For names the client:
    /// for a request from one of them the client is the right-most forwarded address that is not
    /// itself a trusted proxy. Set it to your edges' addresses, or every viewer behind an edge is
    /// one client to the per-address limits
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_TRUSTED_PROXIES",
        value_name = "CIDRS",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a client has to send a request body (a form or JSON)
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HTTP_BODY_TIMEOUT",
        value_name = "SECS"
    )]
    pub http_body_timeout: Option<u64>,
    /// Seconds a response may wait for a client to read any of it before the connection is
    /// closed
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HTTP_WRITE_TIMEOUT",
        value_name = "SECS"
    )]
    pub http_write_timeout: Option<u64>,
    /// Seconds between the pings a chat connection gets; a client that has not answered the last
    /// one by the next (it stopped reading) is dropped
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_CHAT_PING_INTERVAL",
        value_name = "SECS"
    )]
    pub chat_ping_interval: Option<u64>,
    /// Failed log-ins to one account per minute, from all addresses, after which only addresses
    /// that logged in to it before may try
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_LOGIN_FAILURES_PER_ACCOUNT",
        value_name = "N"
    )]
    pub login_failures_per_account: Option<u32>,
    /// Accounts one address (IPv6: one /64) may sign up per hour
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_SIGNUPS_PER_ADDRESS",
        value_name = "N"
    )]
    pub signups_per_address: Option<u32>,
    /// Accounts the whole site accepts per minute
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_SIGNUPS_PER_MINUTE",
        value_name = "N"
    )]
    pub signups_per_minute: Option<u32>,
    /// Password hashes (log-in, sign-up, password change) computed at once; each takes ~19 MiB
    /// and a core for a moment, so more wait, and past a few seconds are told to retry
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_PASSWORD_HASHES_AT_ONCE",
        value_name = "N"
    )]
    pub password_hashes_at_once: Option<usize>,
    /// RTMP application name publishers use: rtmp://host/APP/<stream key>
    #[arg(long, global = true, env = "BOLTSTREAM_RTMP_APP", value_name = "NAME")]
    pub rtmp_app: Option<String>,
    /// Seconds a client has to complete the RTMP handshake and start publishing
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HANDSHAKE_TIMEOUT",
        value_name = "SECS"
    )]
    pub handshake_timeout: Option<u64>,
    /// Seconds a publisher may send no media before it is dropped
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_IDLE_TIMEOUT",
        value_name = "SECS"
    )]
    pub idle_timeout: Option<u64>,
    /// Most RTMP connections at once
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_MAX_RTMP_CONNECTIONS",
        value_name = "N"
    )]
    pub max_rtmp_connections: Option<usize>,
    /// Most connections (RTMP or HTTP, each) from one IP address
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_MAX_CONNECTIONS_PER_IP",
        value_name = "N"
    )]
    pub max_connections_per_ip: Option<usize>,
    /// Most HTTP connections at once
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_MAX_HTTP_CONNECTIONS",
        value_name = "N"
    )]
    pub max_http_connections: Option<usize>,
    /// Threads serving connections (like nginx's worker_processes); one is best when the machine
    /// is shared with other busy processes
    #[arg(long, global = true, env = "BOLTSTREAM_WORKERS", value_name = "N")]
    pub workers: Option<usize>,
    /// Failed publishes from one IP address per minute before it is refused without a lookup
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_AUTH_FAILURES_PER_MINUTE",
        value_name = "N"
    )]
    pub auth_failures_per_minute: Option<u32>,
    /// HLS target segment duration in seconds; segments are cut at the first keyframe after it
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_TARGET_DURATION",
        value_name = "SECS"
    )]
    pub hls_target_duration: Option<u32>,
    /// Live output: `cmaf` (fMP4 segments made of parts, Low-Latency HLS; players without LL
    /// support play the whole segments) or `ts` (MPEG-TS segments, no parts, for old players)
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_FORMAT",
        value_name = "FORMAT"
    )]
    pub hls_format: Option<HlsFormat>,
    /// Low-Latency HLS part target in milliseconds (EXT-X-PART-INF PART-TARGET; no part is
    /// longer); viewers play about three parts behind live
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_PART_TARGET_MS",
        value_name = "MS"
    )]
    pub hls_part_target_ms: Option<u64>,
    /// Segments encrypted under one media key on a private stream before a fresh key is made
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_KEY_ROTATION",
        value_name = "SEGMENTS"
    )]
    pub hls_key_rotation: Option<u32>,
    /// Seconds between a live channel's thumbnails (one is also made at go-live); 0 makes none
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_THUMBNAIL_INTERVAL",
        value_name = "SECS"
    )]
    pub thumbnail_interval: Option<u64>,
    /// Seconds a past broadcast is kept after it ends
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_RECORDING_RETENTION",
        value_name = "SECS"
    )]
    pub recording_retention: Option<u64>,
    /// Megabytes all recordings may hold together; the oldest go first
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_RECORDING_QUOTA_MB",
        value_name = "MB"
    )]
    pub recording_quota_mb: Option<u64>,
    /// Megabytes one channel's recordings may hold; its oldest go first, and one recording that
    /// reaches it stops recording
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_RECORDING_CHANNEL_QUOTA_MB",
        value_name = "MB"
    )]
    pub recording_channel_quota_mb: Option<u64>,
    /// Recording stops (the live stream goes on) when the data directory's filesystem has less
    /// free than this many megabytes
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_RECORDING_MIN_FREE_MB",
        value_name = "MB"
    )]
    pub recording_min_free_mb: Option<u64>,
    /// Segments listed in a live playlist
    #[arg(long, global = true, env = "BOLTSTREAM_HLS_WINDOW", value_name = "N")]
    pub hls_window: Option<usize>,
    /// Keep the live window's segments in memory and serve them from there (about 4.5 MB per
    /// 2.5 Mb/s stream); false serves them from the disk mirror (the page cache), writes each
    /// segment while it is made and keeps segments in memory only while the disk fails
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_WINDOW_IN_MEMORY",
        value_name = "BOOL"
    )]
    pub hls_window_in_memory: Option<bool>,
    /// MiB of segments read from disk kept in memory, newest use first, so the segments every
    /// viewer asks for are not read again for each of them (live segments and past broadcasts'
    /// files each get a cache this size); 0 turns it off
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_DISK_CACHE_MB",
        value_name = "MIB"
    )]
    pub hls_disk_cache_mb: Option<u64>,
    /// Highest stream bitrate in Mb/s the server makes room for: a segment may hold this bitrate
    /// times the longest segment, a stream's window this bitrate times the window's length plus
    /// the longest segment; a publish past either is ended
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_MAX_BITRATE_MBPS",
        value_name = "MBPS"
    )]
    pub hls_max_bitrate_mbps: Option<u64>,
    /// Seconds one segment may stay open (wall-clock time, and media time without a keyframe);
    /// a publish past it is ended
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_MAX_SEGMENT_DURATION",
        value_name = "SECS"
    )]
    pub hls_max_segment_duration: Option<u64>,
    /// Seconds a publisher may keep sending media whose timestamps do not advance before it is
    /// dropped
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_MEDIA_STALL_TIMEOUT",
        value_name = "SECS"
    )]
    pub media_stall_timeout: Option<u64>,
    /// Seconds a finished stream's files are kept before removal
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_HLS_CLEANUP_AFTER",
        value_name = "SECS"
    )]
    pub hls_cleanup_after: Option<u64>,
    /// Seconds a live playlist may be cached (Cache-Control max-age)
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_PLAYLIST_MAX_AGE",
        value_name = "SECS"
    )]
    pub playlist_max_age: Option<u32>,
    /// Allow visitors to create accounts on the website
    #[arg(long, global = true, env = "BOLTSTREAM_SIGNUP", value_name = "BOOL")]
    pub signup: Option<bool>,
    /// Mark session cookies Secure (set when the site is served over HTTPS)
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_SECURE_COOKIES",
        value_name = "BOOL"
    )]
    pub secure_cookies: Option<bool>,
    /// Public RTMP URL shown to streamers on the dashboard
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_PUBLIC_RTMP_URL",
        value_name = "URL"
    )]
    pub public_rtmp_url: Option<String>,
    /// The site's database: a PostgreSQL URL (postgres://user:pass@host/db) shared by every node
    /// of a multi-node site, or the path of a SQLite file for a single node
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_DATABASE",
        value_name = "URL|PATH"
    )]
    pub database: Option<String>,
    /// This node's name, unique in the site: its live streams are claimed under it (required
    /// with a PostgreSQL database)
    #[arg(long, global = true, env = "BOLTSTREAM_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// Where the site's other nodes and edges reach this node's origin (http://host:port); what
    /// they are sent to for a stream this node holds
    #[arg(long, global = true, env = "BOLTSTREAM_NODE_URL", value_name = "URL")]
    pub node_url: Option<String>,
    /// Seconds a node's claim on its live streams outlives its last renewal: how soon the
    /// streams of a node that died are offline and can be published on another node
    #[arg(
        long,
        global = true,
        env = "BOLTSTREAM_NODE_LEASE",
        value_name = "SECS"
    )]
    pub node_lease: Option<u64>,
    /// NATS server (nats://host:port) chat rooms fan out over, so a message sent through one node
    /// reaches viewers on every node; unset, chat stays within this node
    #[arg(long, global = true, env = "BOLTSTREAM_CHAT_NATS", value_name = "URL")]
    pub chat_nats: Option<String>,
}

/// Every setting's default, written once: [`Settings::resolve`] falls back to these, and `--help`
/// shows them ([`shown_defaults`]).
pub mod defaults {
    use super::*;

    /// `data`.
    pub const DATA: &str = "./data";
    /// `rtmp_listen`.
    pub const RTMP_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 1935));
    /// `http_listen`.
    pub const HTTP_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 8080));
    /// `internal_listen`: loopback, as Prometheus users expect of an operator endpoint.
    pub const INTERNAL_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9935));
    /// `http_body_timeout`, seconds.
    pub const HTTP_BODY_TIMEOUT: u64 = 10;
    /// `http_write_timeout`, seconds.
    pub const HTTP_WRITE_TIMEOUT: u64 = 10;
    /// `chat_ping_interval`, seconds: under the 5 minutes after which proxies such as Envoy close
    /// an idle stream.
    pub const CHAT_PING_INTERVAL: u64 = 30;
    /// `login_failures_per_account`.
    pub const LOGIN_FAILURES_PER_ACCOUNT: u32 = 10;
    /// `signups_per_address`.
    pub const SIGNUPS_PER_ADDRESS: u32 = 5;
    /// `signups_per_minute`.
    pub const SIGNUPS_PER_MINUTE: u32 = 30;
    /// `rtmp_app`.
    pub const RTMP_APP: &str = "app";
    /// `handshake_timeout`, seconds.
    pub const HANDSHAKE_TIMEOUT: u64 = 5;
    /// `idle_timeout`, seconds.
    pub const IDLE_TIMEOUT: u64 = 10;
    /// `max_rtmp_connections`.
    pub const MAX_RTMP_CONNECTIONS: usize = 1000;
    /// `max_connections_per_ip`.
    pub const MAX_CONNECTIONS_PER_IP: usize = 200;
    /// `max_http_connections`.
    pub const MAX_HTTP_CONNECTIONS: usize = 4096;
    /// `auth_failures_per_minute`.
    pub const AUTH_FAILURES_PER_MINUTE: u32 = 10;
    /// `hls_target_duration`, seconds.
    pub const HLS_TARGET_DURATION: u32 = 2;
    /// `hls_format`.
    pub const HLS_FORMAT: HlsFormat = HlsFormat::Cmaf;
    /// `hls_part_target_ms`: a third of a second, the lower end of what Apple suggests, so
    /// PART-HOLD-BACK (three parts) is one second.
    pub const HLS_PART_TARGET_MS: u64 = 333;
    /// `thumbnail_interval`, seconds: a directory that looks live without a decode per viewer.
    pub const THUMBNAIL_INTERVAL: u64 = 30;
    /// `recording_retention`, seconds: 30 days.
    pub const RECORDING_RETENTION: u64 = 30 * 24 * 3600;
    /// `recording_quota_mb`: 50 GB.
    pub const RECORDING_QUOTA_MB: u64 = 50_000;
    /// `recording_channel_quota_mb`: 10 GB, about 9 hours at 2.5 Mb/s.
    pub const RECORDING_CHANNEL_QUOTA_MB: u64 = 10_000;
    /// `recording_min_free_mb`: 2 GB, minutes of live output for hundreds of streams.
    pub const RECORDING_MIN_FREE_MB: u64 = 2_048;
    /// `hls_key_rotation`: a fresh key about every 20 s at the default target duration.
    pub const HLS_KEY_ROTATION: u32 = 10;
    /// `hls_window`, segments.
    pub const HLS_WINDOW: usize = 6;
    /// `hls_window_in_memory`.
    pub const HLS_WINDOW_IN_MEMORY: bool = false;
    /// `hls_disk_cache_mb`.
    pub const HLS_DISK_CACHE_MB: u64 = 32;
    /// `hls_max_bitrate_mbps`.
    pub const HLS_MAX_BITRATE_MBPS: u64 = 50;
    /// `hls_max_segment_duration`, seconds.
    pub const HLS_MAX_SEGMENT_DURATION: u64 = 30;
    /// `media_stall_timeout`, seconds.
    pub const MEDIA_STALL_TIMEOUT: u64 = 10;
    /// `hls_cleanup_after`, seconds.
    pub const HLS_CLEANUP_AFTER: u64 = 60;
    /// `playlist_max_age`, seconds.
    pub const PLAYLIST_MAX_AGE: u32 = 1;
    /// `signup`.
    pub const SIGNUP: bool = true;
    /// `secure_cookies`.
    pub const SECURE_COOKIES: bool = false;
    /// `node_id` on SQLite, where the node is the whole site.
    pub const NODE_ID: &str = "local";
    /// `node_lease`, seconds: a dead node's streams are offline this soon, and a node renews its
    /// claims several times within it.
    pub const NODE_LEASE: u64 = 5;
}

/// Each option's default as `--help` shows it, by argument id; the ones that depend on the machine
/// or the request are said in words.
pub fn shown_defaults() -> Vec<(&'static str, String)> {
    use defaults::*;
    vec![
        ("data", DATA.to_string()),
        ("rtmp_listen", RTMP_LISTEN.to_string()),
        ("http_listen", HTTP_LISTEN.to_string()),
        ("internal_listen", INTERNAL_LISTEN.to_string()),
        ("trusted_proxies", "none".to_string()),
        ("http_body_timeout", HTTP_BODY_TIMEOUT.to_string()),
        ("http_write_timeout", HTTP_WRITE_TIMEOUT.to_string()),
        ("chat_ping_interval", CHAT_PING_INTERVAL.to_string()),
        (
            "login_failures_per_account",
            LOGIN_FAILURES_PER_ACCOUNT.to_string(),
        ),
        ("signups_per_address", SIGNUPS_PER_ADDRESS.to_string()),
        ("signups_per_minute", SIGNUPS_PER_MINUTE.to_string()),
        (
            "password_hashes_at_once",
            "half the CPU cores, at least 1".to_string(),
        ),
        ("rtmp_app", RTMP_APP.to_string()),
        ("handshake_timeout", HANDSHAKE_TIMEOUT.to_string()),
        ("idle_timeout", IDLE_TIMEOUT.to_string()),
        ("max_rtmp_connections", MAX_RTMP_CONNECTIONS.to_string()),
        ("max_connections_per_ip", MAX_CONNECTIONS_PER_IP.to_string()),
        ("max_http_connections", MAX_HTTP_CONNECTIONS.to_string()),
        ("workers", "the number of CPU cores".to_string()),
        (
            "auth_failures_per_minute",
            AUTH_FAILURES_PER_MINUTE.to_string(),
        ),
        ("hls_target_duration", HLS_TARGET_DURATION.to_string()),
        ("hls_format", HLS_FORMAT.to_string()),
        ("hls_part_target_ms", HLS_PART_TARGET_MS.to_string()),
        ("hls_key_rotation", HLS_KEY_ROTATION.to_string()),
        ("thumbnail_interval", THUMBNAIL_INTERVAL.to_string()),
        ("recording_retention", RECORDING_RETENTION.to_string()),
        ("recording_quota_mb", RECORDING_QUOTA_MB.to_string()),
        (
            "recording_channel_quota_mb",
            RECORDING_CHANNEL_QUOTA_MB.to_string(),
        ),
        ("recording_min_free_mb", RECORDING_MIN_FREE_MB.to_string()),
        ("hls_window", HLS_WINDOW.to_string()),
        ("hls_window_in_memory", HLS_WINDOW_IN_MEMORY.to_string()),
        ("hls_disk_cache_mb", HLS_DISK_CACHE_MB.to_string()),
        ("hls_max_bitrate_mbps", HLS_MAX_BITRATE_MBPS.to_string()),
        (
            "hls_max_segment_duration",
            HLS_MAX_SEGMENT_DURATION.to_string(),
        ),
        ("media_stall_timeout", MEDIA_STALL_TIMEOUT.to_string()),
        ("hls_cleanup_after", HLS_CLEANUP_AFTER.to_string()),
        ("playlist_max_age", PLAYLIST_MAX_AGE.to_string()),
        ("signup", SIGNUP.to_string()),
        ("secure_cookies", SECURE_COOKIES.to_string()),
        (
            "public_rtmp_url",
            "rtmp://<host of the page>:<RTMP port>/<app>".to_string(),
        ),
        ("database", "<data>/boltstream.db (SQLite)".to_string()),
        (
            "node_id",
            format!("{NODE_ID} with SQLite; required with PostgreSQL"),
        ),
        ("node_url", "http://<http_listen>".to_string()),
        ("node_lease", NODE_LEASE.to_string()),
        ("chat_nats", "none: chat within this node".to_string()),
    ]
}

/// `database`: a PostgreSQL URL, else a SQLite path (default `<data>/boltstream.db`).
fn parse_database(database: Option<&str>, data: &Path) -> Result<Database, ConfigError> {
    let Some(value) = database.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Database::Sqlite(data.join("boltstream.db")));
    };
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        // Checked here so a typo is a start-up error; the message never repeats the value, which
        // may hold a password.
        value
            .parse::<postgres::Config>()
            .map_err(|_| ConfigError::Invalid {
                name: "database",
                message: "not a valid postgres:// URL".to_string(),
            })?;
        return Ok(Database::Postgres(value.to_string()));
    }
    if value.contains("://") {
        return Err(ConfigError::Invalid {
            name: "database",
            message: "use a postgres:// URL or the path of a SQLite file".to_string(),
        });
    }
    Ok(Database::Sqlite(PathBuf::from(value)))
}

/// `node_id`, `node_url`, `node_lease`: this node's claim on its streams.
fn node_claim(
    database: &Database,
    node_id: Option<String>,
    node_url: Option<String>,
    node_lease: Option<u64>,
    http_listen: SocketAddr,
) -> Result<NodeClaim, ConfigError> {
    let invalid = |name, message: &str| ConfigError::Invalid {
        name,
        message: message.to_string(),
    };
    let shared = matches!(database, Database::Postgres(_));
    let node_id = match node_id {
        Some(id) => id,
        // Only `serve` claims streams, and it refuses to start without one (the operator CLI
        // needs none).
        None if shared => return node_claim_with_url(String::new(), String::new(), node_lease),
        None => defaults::NODE_ID.to_string(),
    };
    if !(1..=64).contains(&node_id.len())
        || !(node_id.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(
            "node_id",
            "use 1 to 64 letters, digits, '-', '_' and '.'",
        ));
    }
    let url = match node_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if shared && http_listen.ip().is_unspecified() => {
            return Err(invalid(
                "node_url",
                "http_listen is a wildcard address; say where other nodes reach this one",
            ))
        }
        // Filled in once the HTTP listener is bound (its port may be chosen by the system).
        None => return node_claim_with_url(node_id, String::new(), node_lease),
    };
    let authority = url.strip_prefix("http://").unwrap_or_default();
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || authority.parse::<hyper::http::uri::Authority>().is_err()
    {
        return Err(invalid(
            "node_url",
            "use http://host:port, with no path (e.g. http://10.0.0.5:8080)",
        ));
    }
    node_claim_with_url(node_id, url, node_lease)
}

fn node_claim_with_url(
    node_id: String,
    url: String,
    node_lease: Option<u64>,
) -> Result<NodeClaim, ConfigError> {
    let lease = node_lease.unwrap_or(defaults::NODE_LEASE);
    if !(2..=300).contains(&lease) {
        return Err(ConfigError::Invalid {
            name: "node_lease",
            message: "must be 2 to 300 seconds".to_string(),
        });
    }
    Ok(NodeClaim {
        node_id,
        url,
        lease_ms: lease as i64 * 1000,
    })
}

/// A configuration problem, reported as one line before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value out of range.
    #[error("invalid setting {name}: {message}")]
    Invalid {
        /// The option.
        name: &'static str,
        /// Why.
        message: String,
    },
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data: PathBuf,
    /// RTMP listen address.
    pub rtmp_listen: SocketAddr,
    /// HTTP listen address.
    pub http_listen: SocketAddr,
    /// Operator endpoints' listen address.
    pub internal_listen: SocketAddr,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Deadline for a request body.
    pub http_body_timeout: Duration,
    /// Deadline for a client to take any of a response.
    pub http_write_timeout: Duration,
    /// Pings to chat connections; one unanswered by the next drops the connection.
    pub chat_ping_interval: Duration,
    /// Failed log-ins per account per minute.
    pub login_failures_per_account: u32,
    /// Sign-ups per address group per hour.
    pub signups_per_address: u32,
    /// Sign-ups per minute, site-wide.
    pub signups_per_minute: u32,
    /// Password hashes at once.
    pub password_hashes_at_once: usize,
    /// RTMP application name.
    pub rtmp_app: String,
    /// Handshake-to-publish deadline.
    pub handshake_timeout: Duration,
    /// No-media deadline for a publisher.
    pub idle_timeout: Duration,
    /// RTMP connection cap.
    pub max_rtmp_connections: usize,
    /// Per-address connection cap.
    pub max_connections_per_ip: usize,
    /// HTTP connection cap.
    pub max_http_connections: usize,
    /// Runtime worker threads.
    pub workers: usize,
    /// Failed publishes per address per minute before throttling.
    pub auth_failures_per_minute: u32,
    /// HLS target duration.
    pub hls_target_duration: Duration,
    /// Live output container.
    pub hls_format: HlsFormat,
    /// Low-Latency HLS part target.
    pub hls_part_target: Duration,
    /// Segments per media key of a private stream.
    pub hls_key_rotation: u32,
    /// Between a channel's thumbnails; zero for none.
    pub thumbnail_interval: Duration,
    /// How long a past broadcast is kept after it ends.
    pub recording_retention: Duration,
    /// Megabytes all recordings may hold.
    pub recording_quota_mb: u64,
    /// Megabytes one channel's recordings may hold.
    pub recording_channel_quota_mb: u64,
    /// Free megabytes under which recording stops.
    pub recording_min_free_mb: u64,
    /// Live playlist window.
    pub hls_window: usize,
    /// Window segments served from memory (else from disk once written).
    pub hls_window_in_memory: bool,
    /// Bytes of segments read from disk kept in memory.
    pub hls_disk_cache_bytes: usize,
    /// Delay before a finished stream's files are removed.
    pub hls_cleanup_after: Duration,
    /// Highest stream bitrate room is made for, in Mb/s.
    pub hls_max_bitrate_mbps: u64,
    /// Longest a segment may stay open.
    pub hls_max_segment_duration: Duration,
    /// Longest media may arrive without its time advancing.
    pub media_stall_timeout: Duration,
    /// Header policy (playlist max-age).
    pub policy: Policy,
    /// Website sign-up allowed.
    pub signup: bool,
    /// Secure cookies.
    pub secure_cookies: bool,
    /// RTMP URL shown on the dashboard, if fixed.
    pub public_rtmp_url: Option<String>,
    /// The site's database.
    pub database: Database,
    /// This node's claim on the streams it holds.
    pub node: NodeClaim,
    /// NATS server chat fans out over.
    pub chat_nats: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::resolve(Options::default(), None).expect("defaults are valid")
    }
}

macro_rules! merge {
    ($cli:ident, $file:ident; $($field:ident),*) => {
        $( let $field = $cli.$field.or($file.$field); )*
    };
}

impl Settings {
    /// Resolves flags/environment (`cli`) over the optional TOML file at `config_file`.
    ///
    /// Long for a reason: one line per setting, each validated where it is read; split up, a
    /// setting's name, default and check would live in different places.
    pub fn resolve(cli: Options, config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => load_file(path)?,
            None => Options::default(),
        };
        merge!(cli, file; data, rtmp_listen, http_listen, internal_listen, trusted_proxies,
            http_body_timeout, http_write_timeout, chat_ping_interval, login_failures_per_account, signups_per_address,
            signups_per_minute, password_hashes_at_once, rtmp_app, handshake_timeout, idle_timeout,
            max_rtmp_connections, max_connections_per_ip, max_http_connections, workers, auth_failures_per_minute,
            hls_target_duration, hls_format, hls_part_target_ms, hls_key_rotation, thumbnail_interval, recording_retention, recording_quota_mb,
            recording_channel_quota_mb, recording_min_free_mb, hls_window, hls_window_in_memory, hls_disk_cache_mb, hls_cleanup_after,
            hls_max_bitrate_mbps, hls_max_segment_duration, media_stall_timeout, playlist_max_age, signup, secure_cookies,
            public_rtmp_url, database, node_id, node_url, node_lease, chat_nats);

        let invalid = |name, message: &str| ConfigError::Invalid {
            name,
            message: message.to_string(),
        };
        let rtmp_app = rtmp_app.unwrap_or_else(|| defaults::RTMP_APP.to_string());
        if rtmp_app.is_empty()
            || !rtmp_app
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid("rtmp_app", "use letters, digits, '-' and '_'"));
        }
        let target = hls_target_duration.unwrap_or(defaults::HLS_TARGET_DURATION);
        if !(1..=10).contains(&target) {
            return Err(invalid("hls_target_duration", "must be 1 to 10 seconds"));
        }
        let part_target = hls_part_target_ms.unwrap_or(defaults::HLS_PART_TARGET_MS);
        if !(100..=u64::from(target) * 500).contains(&part_target) {
            return Err(invalid(
                "hls_part_target_ms",
                "must be 100 ms to half of hls_target_duration",
            ));
        }
        let key_rotation = hls_key_rotation.unwrap_or(defaults::HLS_KEY_ROTATION);
        if !(1..=10_000).contains(&key_rotation) {
            return Err(invalid("hls_key_rotation", "must be 1 to 10000 segments"));
        }
        let window = hls_window.unwrap_or(defaults::HLS_WINDOW);
        if !(3..=30).contains(&window) {
            return Err(invalid("hls_window", "must be 3 to 30 segments"));
        }
        let max_bitrate = hls_max_bitrate_mbps.unwrap_or(defaults::HLS_MAX_BITRATE_MBPS);
        if !(1..=10_000).contains(&max_bitrate) {
            return Err(invalid("hls_max_bitrate_mbps", "must be 1 to 10000"));
        }
        let max_segment = hls_max_segment_duration.unwrap_or(defaults::HLS_MAX_SEGMENT_DURATION);
        if !(u64::from(target) + 1..=600).contains(&max_segment) {
            return Err(invalid(
                "hls_max_segment_duration",
                "must be longer than hls_target_duration and at most 600 seconds",
            ));
        }
        let positive = |name, v: Option<u64>, default: u64| match v.unwrap_or(default) {
            0 => Err(invalid(name, "must be at least 1")),
            v => Ok(Duration::from_secs(v)),
        };
        let count = |name, v: Option<usize>, default: usize| match v.unwrap_or(default) {
            0 => Err(invalid(name, "must be at least 1")),
            v => Ok(v),
        };
        let trusted_proxies = (trusted_proxies.unwrap_or_default().iter())
            .filter(|t| !t.trim().is_empty())
            .map(|t| parse_net(t.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|bad| {
                invalid(
                    "trusted_proxies",
                    &format!("{bad:?} is not an address or CIDR (e.g. 10.0.0.0/8, ::1)"),
                )
            })?;
        let data = data.unwrap_or_else(|| PathBuf::from(defaults::DATA));
        let http_listen = http_listen.unwrap_or(defaults::HTTP_LISTEN);
        let database = parse_database(database.as_deref(), &data)?;
        let node = node_claim(&database, node_id, node_url, node_lease, http_listen)?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let policy =
            Policy::with_playlist_max_age(playlist_max_age.unwrap_or(defaults::PLAYLIST_MAX_AGE))
                .map_err(|e: PolicyError| invalid("playlist_max_age", &e.to_string()))?;
        Ok(Settings {
            data,
            rtmp_listen: rtmp_listen.unwrap_or(defaults::RTMP_LISTEN),
            http_listen,
            internal_listen: internal_listen.unwrap_or(defaults::INTERNAL_LISTEN),
            trusted_proxies,
            http_body_timeout: positive(
                "http_body_timeout",
                http_body_timeout,
                defaults::HTTP_BODY_TIMEOUT,
            )?,
            http_write_timeout: positive(
                "http_write_timeout",
                http_write_timeout,
                defaults::HTTP_WRITE_TIMEOUT,
            )?,
            chat_ping_interval: positive(
                "chat_ping_interval",
                chat_ping_interval,
                defaults::CHAT_PING_INTERVAL,
            )?,
            login_failures_per_account: login_failures_per_account
                .unwrap_or(defaults::LOGIN_FAILURES_PER_ACCOUNT)
                .max(1),
            signups_per_address: signups_per_address
                .unwrap_or(defaults::SIGNUPS_PER_ADDRESS)
                .max(1),
            signups_per_minute: signups_per_minute
                .unwrap_or(defaults::SIGNUPS_PER_MINUTE)
                .max(1),
            password_hashes_at_once: match password_hashes_at_once {
                Some(n) if !(1..=256).contains(&n) => {
                    return Err(invalid("password_hashes_at_once", "must be 1 to 256"))
                }
                Some(n) => n,
                None => (cores / 2).max(1),
            },
            rtmp_app,
            handshake_timeout: positive(
                "handshake_timeout",
                handshake_timeout,
                defaults::HANDSHAKE_TIMEOUT,
            )?,
            idle_timeout: positive("idle_timeout", idle_timeout, defaults::IDLE_TIMEOUT)?,
            max_rtmp_connections: count(
                "max_rtmp_connections",
                max_rtmp_connections,
                defaults::MAX_RTMP_CONNECTIONS,
            )?,
            max_connections_per_ip: count(
                "max_connections_per_ip",
                max_connections_per_ip,
                defaults::MAX_CONNECTIONS_PER_IP,
            )?,
            max_http_connections: count(
                "max_http_connections",
                max_http_connections,
                defaults::MAX_HTTP_CONNECTIONS,
            )?,
            workers: match workers {
                Some(n) if !(1..=1024).contains(&n) => {
                    return Err(invalid("workers", "must be 1 to 1024"))
                }
                Some(n) => n,
                None => cores,
            },
            auth_failures_per_minute: auth_failures_per_minute
                .unwrap_or(defaults::AUTH_FAILURES_PER_MINUTE)
                .max(1),
            hls_target_duration: Duration::from_secs(u64::from(target)),
            hls_format: hls_format.unwrap_or(defaults::HLS_FORMAT),
            hls_part_target: Duration::from_millis(part_target),
            hls_key_rotation: key_rotation,
            recording_retention: positive(
                "recording_retention",
                recording_retention,
                defaults::RECORDING_RETENTION,
            )?,
            recording_quota_mb: recording_quota_mb.unwrap_or(defaults::RECORDING_QUOTA_MB),
            recording_channel_quota_mb: recording_channel_quota_mb
                .unwrap_or(defaults::RECORDING_CHANNEL_QUOTA_MB),
            recording_min_free_mb: recording_min_free_mb.unwrap_or(defaults::RECORDING_MIN_FREE_MB),
            thumbnail_interval: match thumbnail_interval.unwrap_or(defaults::THUMBNAIL_INTERVAL) {
                s @ (0 | 5..=3600) => Duration::from_secs(s),
                _ => {
                    return Err(invalid(
                        "thumbnail_interval",
                        "must be 0 (no thumbnails) or 5 to 3600 seconds",
                    ))
                }
            },
            hls_window: window,
            hls_window_in_memory: hls_window_in_memory.unwrap_or(defaults::HLS_WINDOW_IN_MEMORY),
            hls_disk_cache_bytes: match hls_disk_cache_mb {
                Some(mb) if mb > 65_536 => {
                    return Err(invalid("hls_disk_cache_mb", "must be at most 65536"))
                }
                mb => (mb.unwrap_or(defaults::HLS_DISK_CACHE_MB) as usize) << 20,
            },
            hls_cleanup_after: positive(
                "hls_cleanup_after",
                hls_cleanup_after,
                defaults::HLS_CLEANUP_AFTER,
            )?,
            hls_max_bitrate_mbps: max_bitrate,
            hls_max_segment_duration: Duration::from_secs(max_segment),
            media_stall_timeout: positive(
                "media_stall_timeout",
                media_stall_timeout,
                defaults::MEDIA_STALL_TIMEOUT,
            )?,
            policy,
            signup: signup.unwrap_or(defaults::SIGNUP),
            secure_cookies: secure_cookies.unwrap_or(defaults::SECURE_COOKIES),
            public_rtmp_url,
            database,
            node,
            chat_nats: match chat_nats.map(|u| u.trim().to_string()) {
                Some(url) if url.starts_with("nats://") && url.len() > "nats://".len() => Some(url),
                Some(_) => return Err(invalid("chat_nats", "use nats://host:port")),
                None => None,
            },
        })
    }

    /// What one publish may make the packager hold.
    pub fn packager_limits(&self) -> boltstream_hls::packager::Limits {
        boltstream_hls::packager::Limits::for_bitrate(
            self.hls_max_bitrate_mbps,
            self.hls_max_segment_duration.as_millis() as i64,
            self.media_stall_timeout.as_millis() as i64,
        )
    }

    /// The most bytes one segment may have: the highest bitrate over the longest segment.
    pub fn max_segment_bytes(&self) -> usize {
        (self.hls_max_bitrate_mbps * 125_000 * self.hls_max_segment_duration.as_secs()) as usize
    }

    /// Bytes one stream's window (its listed segments and the open one) may hold: the highest
    /// bitrate over the window's length plus the longest segment.
    pub fn max_window_bytes(&self) -> u64 {
        let seconds = self.hls_target_duration.as_secs() * self.hls_window as u64
            + self.hls_max_segment_duration.as_secs();
        self.hls_max_bitrate_mbps * 125_000 * seconds
    }

    /// Root of the HLS output; each channel gets `<hls_dir>/<username>/`.
    pub fn hls_dir(&self) -> PathBuf {
        self.data.join("hls")
    }
}

/// The TOML file's options.
fn load_file(path: &Path) -> Result<Options, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str::<Options>(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// An address or a CIDR network; a bare address is a network of one.
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_out_of_the_box() {
        let s = Settings::default();
        assert_eq!(s.rtmp_listen.port(), 1935);
        assert_eq!(s.http_listen.port(), 8080);
        assert_eq!(s.data, PathBuf::from("./data"));
        assert_eq!(s.idle_timeout, Duration::from_secs(10));
        assert_eq!(s.hls_window, 6);
        assert_eq!(
            s.hls_format,
            HlsFormat::Cmaf,
            "low latency unless asked otherwise"
        );
        assert_eq!(s.hls_part_target, Duration::from_millis(333));
        assert!(!s.hls_window_in_memory, "the window is served from disk");
        assert_eq!(s.hls_disk_cache_bytes, 32 << 20);
        assert!(s.workers >= 1);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(
            &path,
            "rtmp_app = \"live\"\nhls_window = 8\nidle_timeout = 3\n",
        )
        .unwrap();
        let cli = Options {
            hls_window: Some(5),
            ..Options::default()
        };
        let s = Settings::resolve(cli, Some(&path)).unwrap();
        assert_eq!(s.rtmp_app, "live");
        assert_eq!(s.hls_window, 5);
        assert_eq!(s.idle_timeout, Duration::from_secs(3));
    }

    #[test]
    fn bad_files_and_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "nonsense_key = 1\n").unwrap();
        let err = Settings::resolve(Options::default(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid config file") && err.contains("nonsense_key"),
            "{err}"
        );
        let err = Settings::resolve(Options::default(), Some(&dir.path().join("missing.toml")))
            .unwrap_err();
        assert!(err.to_string().starts_with("cannot read config file"));
        let cli = Options {
            hls_window: Some(1),
            ..Options::default()
        };
        assert!(Settings::resolve(cli, None)
            .unwrap_err()
            .to_string()
            .contains("hls_window"));
        let cli = Options {
            playlist_max_age: Some(100),
            ..Options::default()
        };
        assert!(Settings::resolve(cli, None).is_err());
        // A part target past half the segment target (2 s by default), or too small to be a part.
        for ms in [50, 1001] {
            let cli = Options {
                hls_part_target_ms: Some(ms),
                ..Options::default()
            };
            assert!(Settings::resolve(cli, None)
                .unwrap_err()
                .to_string()
                .contains("hls_part_target_ms"));
        }
        std::fs::write(&path, "hls_format = \"flv\"\n").unwrap();
        let err = Settings::resolve(Options::default(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cmaf") && err.contains("ts"), "{err}");
        std::fs::write(&path, "hls_format = \"ts\"\n").unwrap();
        let s = Settings::resolve(Options::default(), Some(&path)).unwrap();
        assert_eq!(s.hls_format, HlsFormat::Ts);
        for workers in [0, 5000] {
            let cli = Options {
                workers: Some(workers),
                ..Options::default()
            };
            assert!(Settings::resolve(cli, None)
                .unwrap_err()
                .to_string()
                .contains("workers"));
        }
        let cli = Options {
            trusted_proxies: Some(vec!["10.0.0.0/8".into(), "not-an-address".into()]),
            ..Options::default()
        };
        let err = Settings::resolve(cli, None).unwrap_err().to_string();
        assert!(
            err.contains("trusted_proxies") && err.contains("not-an-address"),
            "{err}"
        );
        let cli = Options {
            trusted_proxies: Some(vec!["10.0.0.0/8".into(), "::1".into(), "127.0.0.1".into()]),
            ..Options::default()
        };
        let s = Settings::resolve(cli, None).unwrap();
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[2].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        let cli = Options {
            hls_disk_cache_mb: Some(1 << 20),
            ..Options::default()
        };
        assert!(Settings::resolve(cli, None)
            .unwrap_err()
            .to_string()
            .contains("hls_disk_cache_mb"));
    }

    #[test]
    fn the_database_and_node_settings_are_checked_and_never_print_a_password() {
        let with = |database: &str, node_id: Option<&str>, node_url: Option<&str>| {
            Settings::resolve(
                Options {
                    database: Some(database.to_string()),
                    node_id: node_id.map(str::to_string),
                    node_url: node_url.map(str::to_string),
                    ..Options::default()
                },
                None,
            )
        };
        let url = "postgres://boltstream:s3cret@10.0.0.2/boltstream";
        let s = with(url, Some("a"), Some("http://10.0.0.5:8080")).unwrap();
        assert_eq!(s.database, Database::Postgres(url.to_string()));
        assert_eq!(s.node.node_id, "a");
        assert_eq!(s.node.url, "http://10.0.0.5:8080");
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "Debug prints no password"
        );
        // The CLI needs no node id; `serve` refuses to start without one.
        assert_eq!(with(url, None, None).unwrap().node.node_id, "");
        let bad = with("postgres://u:s3cret@h/db?sslmode=nonsense", Some("a"), None);
        let err = bad.unwrap_err().to_string();
        assert!(err.contains("database") && !err.contains("s3cret"), "{err}");
        assert!(with("mysql://u:p@h/db", Some("a"), None).is_err());
        assert!(with(url, Some("a b"), None).is_err(), "node ids are names");
        assert!(with(url, Some("a"), Some("http://10.0.0.5:8080/path")).is_err());
        assert!(with(url, Some("a"), Some("ftp://10.0.0.5")).is_err());
        // SQLite stays the default; a path is a SQLite file.
        let default = Settings::resolve(Options::default(), None).unwrap();
        assert!(matches!(default.database, Database::Sqlite(_)));
        assert_eq!(default.node.node_id, "local");
        let file = with("/var/lib/bs/site.db", None, None).unwrap();
        assert_eq!(
            file.database,
            Database::Sqlite("/var/lib/bs/site.db".into())
        );
    }
}
