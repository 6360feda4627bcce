//! The site's lasting state: users, keys, sessions, channels, chat history and which node holds
//! which live stream. By default one SQLite file under the data directory, shared by the server and
//! the operator CLI (separate processes); with `database = "postgres://…"` one PostgreSQL database
//! shared by every node of a site. Either way every rule that must hold across processes and nodes
//! — one live publisher per key, bans, key rotation, stream claims — is enforced by SQL statements,
//! not by process memory.
//!
//! Calls are blocking; async callers run them on `spawn_blocking`. WAL mode lets the CLI read while
//! the server writes; the busy timeout makes a briefly locked database a wait, not an error.

mod accounts;
pub use accounts::{random_token, ApiTokenRow, SessionUser, MIN_PASSWORD, SESSION_MS};
mod chat;
pub use chat::{ChatMessage, Mute, KEPT_PER_CHANNEL};
pub(crate) mod db;
mod migrations;
mod privacy;
mod recording;
mod viewers;
pub use privacy::{
    Access, ShareLink, Viewer, MAX_ALLOWED_VIEWERS, MAX_SHARE_LINKS, MAX_SHARE_LINK_MS,
};

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use boltstream_shared::key;

use crate::channel_info::ChannelInfo;
use crate::clock::now_ms;
use boltstream_shared::username::{Username, UsernameError};
use db::{args, Conn, Row};
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{Connection, ErrorCode};

/// How long a statement waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No user of that name.
    #[error("no user named {0:?}")]
    UnknownUser(String),
    /// The name is taken.
    #[error("the username {0:?} is taken")]
    UserExists(String),
    /// The name breaks the username rules.
    #[error("invalid username: {0}")]
    InvalidUsername(UsernameError),
    /// Another process held the database locked for longer than [`BUSY_TIMEOUT`].
    #[error("the database is locked by another process; try again")]
    Locked,
    /// The database file was written by a newer Boltstream.
    #[error("the database schema version {found} is newer than this binary knows ({known})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
    },
    /// A per-channel limit was reached, or a value is out of range.
    #[error("{0}")]
    Limit(String),
    /// A password that cannot be set or hashed.
    #[error("{0}")]
    Password(String),
    /// Anything else from SQLite (disk full, read-only, corrupt file).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// Anything from PostgreSQL (unreachable, refused, a failed statement).
    #[error("database error: {0}")]
    Postgres(#[from] postgres::Error),
    /// A value the database returned that this binary cannot read.
    #[error("database error: {0}")]
    Column(String),
    /// PostgreSQL could not be reached a moment ago; not tried again yet.
    #[error("the database is unreachable; try again")]
    Unavailable,
    /// The database setting itself is wrong.
    #[error("{0}")]
    Config(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked,
            _ => StoreError::Sqlite(err),
        }
    }
}

/// What the store decided about a presented key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishDecision {
    /// The stream is live now, as this publish.
    Accepted(Username, PublishId),
    /// Refused, and why.
    Refused(PublishRefusal),
}

impl PublishDecision {
    /// The accepted publish, if it was accepted.
    pub fn accepted(self) -> Option<(Username, PublishId)> {
        match self {
            PublishDecision::Accepted(user, id) => Some((user, id)),
            PublishDecision::Refused(_) => None,
        }
    }
}

/// Why a publish was refused; logged, and turned into the RTMP error the client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefusal {
    /// No user has this key (or it was rotated away).
    #[error("unknown stream key")]
    UnknownKey,
    /// The key's user is banned.
    #[error("user is banned")]
    Banned,
    /// The key's stream is already live from another connection.
    #[error("stream is already live")]
    AlreadyLive,
}

/// A user as the CLI and admin pages list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// Lowercase username.
    pub username: String,
    /// May use the admin pages and API.
    pub is_admin: bool,
    /// May not publish or log in.
    pub banned: bool,
    /// Unix milliseconds since the current publish began, if live.
    pub live_since_ms: Option<i64>,
    /// Unix milliseconds of creation.
    pub created_ms: i64,
}

/// What the ingest last reported about a live stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// e.g. `h264`, empty when the stream has no video.
    pub video_codec: String,
    /// e.g. `aac`, empty when the stream has no audio.
    pub audio_codec: String,
    /// Coded width in pixels (0 when unknown).
    pub width: u32,
    /// Coded height in pixels (0 when unknown).
    pub height: u32,
    /// Frames per second measured over the last interval.
    pub fps: f64,
    /// Media bitrate in kilobits per second measured over the last interval.
    pub bitrate_kbps: u64,
    /// A player can start it (its playlist lists media): what a node that does not hold the
    /// stream tells the channel page.
    pub playable: bool,
    /// The id of its newest picture on its node (`/thumb/<user>/<id>.jpg`), if it has one: what
    /// a node that does not hold the stream shows in the directory and as the poster.
    pub thumbnail: Option<u64>,
}

/// A live stream as `boltstream streams` and the directory page show it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRow {
    /// The channel.
    pub username: String,
    /// Its title and category.
    pub info: ChannelInfo,
    /// Unix milliseconds.
    pub since_ms: i64,
    /// The last reported statistics.
    pub stats: StreamStats,
    /// Its channel is private (its media is under `/private/`).
    pub private: bool,
}

/// The node a publish is accepted on, as a claim in the store: other nodes send viewers of the
/// stream to `url`, and the claim lapses `lease_ms` after this node last renewed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeClaim {
    /// This node's name, unique in the site.
    pub node_id: String,
    /// Where other nodes reach this node's origin (`http://10.0.0.5:8080`).
    pub url: String,
    /// How long a claim outlives this node's last renewal.
    pub lease_ms: i64,
}

/// The node holding a live stream, as other nodes reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its `node_id`.
    pub node_id: String,
    /// Its `node_url`.
    pub url: String,
}

/// Proof of one accepted publish. Ending a publish names it, so a late clean-up of an old
/// connection can never take a newer publish of the same user offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishId(pub i64);

/// A live publish as the drop watch sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePublish {
    /// The channel.
    pub username: String,
    /// Which publish is the live one.
    pub publish_id: PublishId,
    /// Banned, or an operator asked to stop it.
    pub drop_requested: bool,
    /// The channel is private now.
    pub private: bool,
}

/// The database handle. Cheap to share behind an `Arc`.
pub struct Store {
    backend: Backend,
}

/// Where the store lives: which of the two databases, and the one connection this process keeps
/// to it (statements are short; a node's callers take turns, as they do on SQLite's file lock).
enum Backend {
    Sqlite(Mutex<Connection>),
    Postgres(Box<Mutex<db::PgConn>>),
}

/// Which database a node uses, from the `database` setting.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (the default: `<data>/boltstream.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://…`), shared by every node of a site.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    /// Never prints a connection string: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres(_) => f.write_str("postgres:<redacted>"),
        }
    }
}

/// The columns `SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms` as a row.
fn user_row(r: &Row<'_>) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        username: r.get(0)?,
        is_admin: r.get(1)?,
        banned: r.get(2)?,
        live_since_ms: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

/// The assignments that clear what a publish reported (a macro, so [`OFFLINE`] is built from it
/// at compile time).
macro_rules! cleared_stats {
    () => {
        "video_codec = '', audio_codec = '', width = 0, height = 0, fps = 0, bitrate_kbps = 0, \
         playable = FALSE, thumbnail_id = NULL"
    };
}
const CLEARED_STATS: &str = cleared_stats!();

/// The assignments that take a stream offline and clear what its publish reported.
const OFFLINE: &str = concat!(
    "started_ms = NULL, publish_id = NULL, node_id = NULL, node_url = NULL, lease_until_ms = NULL, ",
    cleared_stats!()
);

const LIVE_SELECT: &str =
    "SELECT u.username, s.started_ms, s.video_codec, s.audio_codec, s.width, s.height,
        s.fps, s.bitrate_kbps, s.title, s.category, s.playable, s.private, s.thumbnail_id
        FROM streams s JOIN users u ON u.id = s.user_id";

fn live_row(r: &Row<'_>) -> Result<LiveRow, StoreError> {
    Ok(LiveRow {
        username: r.get(0)?,
        info: ChannelInfo {
            title: r.get(8)?,
            category: r.get(9)?,
        },
        since_ms: r.get(1)?,
        stats: StreamStats {
            video_codec: r.get(2)?,
            audio_codec: r.get(3)?,
            width: r.get(4)?,
            height: r.get(5)?,
            fps: r.get(6)?,
            bitrate_kbps: r.get::<i64>(7)?.max(0) as u64,
            playable: r.get(10)?,
            thumbnail: r
                .get::<Option<i64>>(12)?
                .and_then(|id| u64::try_from(id).ok()),
        },
        private: r.get(11)?,
    })
}

/// A user's row id by name, or [`StoreError::UnknownUser`]: what every per-channel table joins on.
fn user_id(c: &mut Conn<'_>, name: &str) -> Result<i64, StoreError> {
    c.query_opt(
        "SELECT id FROM users WHERE username = ?1",
        args![name],
        |r| r.get(0),
    )?
    .ok_or_else(|| StoreError::UnknownUser(name.to_string()))
}

fn new_key() -> String {
    key::generate(&mut OsRng)
}

impl Store {
    /// Opens the database a node is configured with, bringing its schema up to date. Blocking
    /// (PostgreSQL's driver runs its own runtime): call it off the async workers.
    pub fn open_database(database: &Database) -> Result<Self, StoreError> {
        match database {
            Database::Sqlite(path) => Self::open(path),
            Database::Postgres(url) => Self::connect_postgres(url),
        }
    }

    /// Connects to PostgreSQL (without TLS: the database belongs on the site's private network
    /// or loopback) and migrates its schema; nodes starting together take turns at migrating.
    pub fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|_| {
            StoreError::Config("the database URL is not a valid postgres:// URL".into())
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("boltstream");
        let mut pg = db::PgConn::connect(config)?;
        migrations::run_postgres(pg.client())?;
        Ok(Self {
            backend: Backend::Postgres(Box::new(Mutex::new(pg))),
        })
    }

    /// Opens (creating if needed, readable by this user only) the database at `path` and brings
    /// its schema up to date. SQLite gives its `-wal` and `-shm` files the database's mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        // The handle is closed before SQLite opens the file: closing any descriptor of a file
        // drops every POSIX lock this process holds on it, SQLite's included — with the handle
        // kept open, the CLI saw the server as gone and deleted the live WAL under it.
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map(drop);
        if let Err(e) = created {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!("cannot create {}: {e}", path.display())),
                )));
            }
        }
        // Switching a new file to WAL takes its lock without SQLite's busy handler, so processes
        // opening a new database at once (the server and the CLI) can be told it is locked: they
        // try again within the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Self::setup(Connection::open(path)?) {
                Err(StoreError::Locked) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                opened => return opened,
            }
        }
    }

    /// Creates the data directory (and its parents) readable by this user only: it holds the
    /// database and every stream's output.
    pub fn create_data_dir(path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(128);
        // WAL returns the resulting mode as a row; in-memory databases answer "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        migrations::run(&mut conn)?;
        Ok(Self {
            backend: Backend::Sqlite(Mutex::new(conn)),
        })
    }

    /// True on PostgreSQL.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves the database itself consistent (statements are
        // atomic, and a transaction it left open is rolled back here), so a poisoned lock is safe
        // to reuse.
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                if !conn.is_autocommit() {
                    conn.execute_batch("ROLLBACK")?;
                }
                f(&mut Conn::Lite(&mut conn))
            }
            Backend::Postgres(pg) => {
                let mut pg = pg.lock().unwrap_or_else(|p| p.into_inner());
                pg.recover()?;
                f(&mut Conn::Pg(&mut pg))
            }
        }
    }

    /// The schema version: how many of this backend's migrations have run.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| match c {
            Conn::Lite(c) => Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?),
            Conn::Pg(_) => c.query_i64("SELECT version FROM boltstream_schema", args![]),
        })
    }

    /// Creates a user and returns its stream key: the only time the plain key exists.
    pub fn add_user(&self, name: &str, is_admin: bool) -> Result<(Username, String), StoreError> {
        let user = Username::parse(name).map_err(StoreError::InvalidUsername)?;
        let key = new_key();
        self.with(|c| {
            c.transaction(|tx| {
                let id: Option<i64> = tx.query_opt(
                    "INSERT INTO users (username, is_admin, created_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(username) DO NOTHING RETURNING id",
                    args![user.as_str(), is_admin, now_ms()],
                    |r| r.get(0),
                )?;
                let Some(id) = id else {
                    return Err(StoreError::UserExists(user.to_string()));
                };
                tx.execute(
                    "INSERT INTO streams (user_id, key_hash) VALUES (?1, ?2)",
                    args![id, &key::storage_hash(&key)],
                )?;
                Ok(())
            })
        })?;
        Ok((user, key))
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms
                 FROM users u JOIN streams s ON s.user_id = u.id ORDER BY u.username",
                args![],
                user_row,
            )
        })
    }

    /// One user, if it exists.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let Ok(user) = Username::parse(name) else {
            return Ok(None);
        };
        self.with(|c| {
            c.query_opt(
                "SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms
                 FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = ?1",
                args![user.as_str()],
                user_row,
            )
        })
    }

    fn update_user(&self, name: &str, sql: &str, value: bool) -> Result<(), StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        let changed = self.with(|c| c.execute(sql, args![value, user.as_str()]))?;
        if changed == 0 {
            return Err(StoreError::UnknownUser(user.to_string()));
        }
        Ok(())
    }

    /// Bans or unbans a user. The node holding a banned user's publish drops it (see
    /// [`Store::live_publishes`]).
    pub fn set_banned(&self, name: &str, banned: bool) -> Result<(), StoreError> {
        self.update_user(
            name,
            "UPDATE users SET banned = ?1 WHERE username = ?2",
            banned,
        )
    }

    /// Grants or removes admin rights.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<(), StoreError> {
        self.update_user(
            name,
            "UPDATE users SET is_admin = ?1 WHERE username = ?2",
            admin,
        )
    }

    /// Replaces a user's key and returns the new one. A publish running on the old key is taken
    /// offline in the same statement, so the owner can go live with the new key at once; the
    /// node holding that publish sees it is no longer the live one and drops it
    /// ([`Self::live_publishes`]).
    pub fn rotate_key(&self, name: &str) -> Result<String, StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        let key = new_key();
        let changed = self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE streams SET key_hash = ?1, {OFFLINE}
                     WHERE user_id = (SELECT id FROM users WHERE username = ?2)"
                ),
                args![&key::storage_hash(&key), user.as_str()],
            )
        })?;
        if changed == 0 {
            return Err(StoreError::UnknownUser(user.to_string()));
        }
        Ok(key)
    }

    /// Takes the stream of `presented_key` live on `node`, or says why not. The go-live is one
    /// conditional `UPDATE … WHERE started_ms IS NULL OR lease_until_ms < now`, so of two
    /// simultaneous publishers — on one node or two — exactly one wins, and a claim left by a
    /// node that died stops counting once its lease runs out.
    pub fn begin_publish(
        &self,
        presented_key: &str,
        node: &NodeClaim,
    ) -> Result<PublishDecision, StoreError> {
        use PublishDecision::{Accepted, Refused};
        if !key::is_well_formed(presented_key) {
            return Ok(Refused(PublishRefusal::UnknownKey));
        }
        let hash = key::storage_hash(presented_key);
        self.with(|c| {
            let found: Option<(i64, String, bool)> = c.query_opt(
                "SELECT u.id, u.username, u.banned FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE s.key_hash = ?1",
                args![&hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let Some((user_id, username, banned)) = found else {
                return Ok(Refused(PublishRefusal::UnknownKey));
            };
            if banned {
                return Ok(Refused(PublishRefusal::Banned));
            }
            let publish_id = (OsRng.next_u64() >> 1) as i64;
            let now = now_ms();
            let won = c.execute(
                &format!(
                    "UPDATE streams SET {CLEARED_STATS}, started_ms = ?1, publish_id = ?2,
                       node_id = ?5, node_url = ?6, lease_until_ms = ?7, stop_requested = FALSE
                     WHERE user_id = ?3 AND key_hash = ?4
                       AND (started_ms IS NULL OR lease_until_ms < ?1)
                       AND NOT (SELECT banned FROM users WHERE id = ?3)"
                ),
                args![
                    now,
                    publish_id,
                    user_id,
                    &hash,
                    node.node_id.as_str(),
                    node.url.as_str(),
                    now + node.lease_ms
                ],
            )?;
            if won == 0 {
                return Ok(Refused(PublishRefusal::AlreadyLive));
            }
            let user = Username::parse(&username).map_err(StoreError::InvalidUsername)?;
            Ok(Accepted(user, PublishId(publish_id)))
        })
    }

    /// Takes a publish offline; a no-op when a newer publish has replaced it.
    pub fn end_publish(&self, user: &Username, publish: PublishId) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE streams SET {OFFLINE}
                     WHERE publish_id = ?1 AND user_id = (SELECT id FROM users WHERE username = ?2)"
                ),
                args![publish.0, user.as_str()],
            )?;
            Ok(())
        })
    }

    /// Takes offline every stream this node held; run at start-up, when no publisher can be
    /// connected to it yet. Other nodes' streams are left alone (on SQLite every stream is this
    /// node's, as no other node shares the file).
    pub fn reset_live(&self, node_id: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            c.execute(
                &format!(
                    "UPDATE streams SET {OFFLINE}
                     WHERE started_ms IS NOT NULL AND (node_id = ?1 OR node_id IS NULL)"
                ),
                args![node_id],
            )
        })
    }

    /// Records a live stream's latest statistics.
    pub fn record_stats(&self, publish: PublishId, stats: &StreamStats) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE streams SET video_codec = ?1, audio_codec = ?2, width = ?3, height = ?4,
                   fps = ?5, bitrate_kbps = ?6, playable = ?8, thumbnail_id = ?9
                 WHERE publish_id = ?7",
                args![
                    &stats.video_codec,
                    &stats.audio_codec,
                    stats.width,
                    stats.height,
                    stats.fps,
                    stats.bitrate_kbps as i64,
                    publish.0,
                    stats.playable,
                    stats.thumbnail.and_then(|id| i64::try_from(id).ok())
                ],
            )?;
            Ok(())
        })
    }

    /// Sets a channel's title and category; false when there is no such user.
    pub fn set_channel_info(&self, name: &str, info: &ChannelInfo) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE streams SET title = ?2, category = ?3
                 WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                args![name, &info.title, &info.category],
            )?;
            Ok(n == 1)
        })
    }

    /// A channel's title and category, live or not.
    pub fn channel_info(&self, name: &str) -> Result<Option<ChannelInfo>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT s.title, s.category FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE u.username = ?1",
                args![name],
                |r| {
                    Ok(ChannelInfo {
                        title: r.get(0)?,
                        category: r.get(1)?,
                    })
                },
            )
        })
    }

    /// Live streams, longest-running first.
    pub fn live_streams(&self) -> Result<Vec<LiveRow>, StoreError> {
        self.with(|c| {
            c.query(
                &format!(
                    "{LIVE_SELECT} WHERE s.started_ms IS NOT NULL AND s.lease_until_ms >= ?1
                     ORDER BY s.started_ms, u.username"
                ),
                args![now_ms()],
                live_row,
            )
        })
    }

    /// One channel's live stream, if it is live: what every player polls, so one indexed row, not
    /// a scan of every live stream.
    pub fn live_stream(&self, name: &str) -> Result<Option<LiveRow>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!(
                    "{LIVE_SELECT} WHERE s.started_ms IS NOT NULL AND s.lease_until_ms >= ?2
                       AND u.username = ?1"
                ),
                args![name, now_ms()],
                live_row,
            )
        })
    }

    /// Every publish this node holds: its channel, its id, and whether it must be dropped (its
    /// user was banned, or an operator asked to stop it — possibly from the CLI in another
    /// process or on another node). A publish a node holds that is missing here was ended behind
    /// its back (its key was rotated, or its lease ran out and another node took the stream) and
    /// must be dropped too. Asked several times a second, it also renews this node's leases: one
    /// statement, so a node that stops asking loses its streams within the lease; a lease that ran
    /// out anyway (the node stalled that long) is not revived but dropped, so the publisher
    /// reconnects and claims the stream afresh.
    pub fn live_publishes(&self, node: &NodeClaim) -> Result<Vec<LivePublish>, StoreError> {
        self.with(|c| {
            let now = now_ms();
            c.execute(
                "UPDATE streams SET lease_until_ms = ?2
                 WHERE node_id = ?1 AND started_ms IS NOT NULL AND lease_until_ms >= ?3",
                args![node.node_id.as_str(), now + node.lease_ms, now],
            )?;
            c.query(
                "SELECT u.username, s.publish_id,
                   (u.banned OR s.stop_requested OR s.lease_until_ms < ?2), s.private
                 FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE s.started_ms IS NOT NULL AND s.node_id = ?1",
                args![node.node_id.as_str(), now],
                |r| {
                    Ok(LivePublish {
                        username: r.get(0)?,
                        publish_id: PublishId(r.get(1)?),
                        drop_requested: r.get(2)?,
                        private: r.get(3)?,
                    })
                },
            )
        })
    }

    /// Which node serves a live channel, if it is live.
    pub fn holder(&self, name: &str) -> Result<Option<Holder>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT s.node_id, s.node_url FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE u.username = ?1 AND s.started_ms IS NOT NULL AND s.lease_until_ms >= ?2",
                args![name, now_ms()],
                |r| {
                    Ok(Holder {
                        node_id: r.get(0)?,
                        url: r.get(1)?,
                    })
                },
            )
        })
    }

    /// Asks the node holding a user's live publish to drop it (admin "stop stream"). Returns
    /// false when the user is not live.
    pub fn request_stop(&self, name: &str) -> Result<bool, StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        self.with(|c| {
            Ok(c.execute(
                "UPDATE streams SET stop_requested = TRUE WHERE started_ms IS NOT NULL
                   AND user_id = (SELECT id FROM users WHERE username = ?1)",
                args![user.as_str()],
            )? > 0)
        })
    }
}

#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod permission_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_data_directory_and_database_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        Store::create_data_dir(&data).unwrap();
        let db = data.join("boltstream.db");
        Store::open(&db).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        Store::open(&db).unwrap();
    }
}
