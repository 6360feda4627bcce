//! The embedded database: one SQLite file under the data directory, shared by the server and the
//! operator CLI (separate processes), so every rule that must hold across both — one live publisher
//! per key, bans, key rotation — is enforced by SQL statements, not by process memory.
//!
//! Calls are blocking; async callers run them on `spawn_blocking`. WAL mode lets the CLI read while
//! the server writes; the busy timeout makes a briefly locked database a wait, not an error.

mod accounts;
pub use accounts::{random_token, ApiTokenRow, SessionUser, MIN_PASSWORD, SESSION_MS};
mod chat;
pub use chat::{ChatMessage, Mute, KEPT_PER_CHANNEL};
mod migrations;
mod privacy;
mod recording;
pub use privacy::{
    Access, ShareLink, Viewer, MAX_ALLOWED_VIEWERS, MAX_SHARE_LINKS, MAX_SHARE_LINK_MS,
};

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use boltstream_shared::key;

use crate::channel_info::ChannelInfo;
use crate::clock::now_ms;
use boltstream_shared::username::{Username, UsernameError};
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

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
    conn: Mutex<Connection>,
}

/// The columns `SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms` as a row.
fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        username: r.get(0)?,
        is_admin: r.get(1)?,
        banned: r.get(2)?,
        live_since_ms: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

/// The assignments that take a stream offline and clear what its publish reported.
const OFFLINE: &str = "started_ms = NULL, publish_id = NULL, video_codec = '', audio_codec = '',
    width = 0, height = 0, fps = 0, bitrate_kbps = 0";

const LIVE_SELECT: &str =
    "SELECT u.username, s.started_ms, s.video_codec, s.audio_codec, s.width, s.height,
        s.fps, s.bitrate_kbps, s.title, s.category FROM streams s JOIN users u ON u.id = s.user_id";

fn live_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LiveRow> {
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
            bitrate_kbps: r.get::<_, i64>(7)?.max(0) as u64,
        },
    })
}

/// A user's row id by name, or [`StoreError::UnknownUser`]: what every per-channel table joins on.
fn user_id(c: &Connection, name: &str) -> Result<i64, StoreError> {
    c.query_row("SELECT id FROM users WHERE username = ?1", [name], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| StoreError::UnknownUser(name.to_string()))
}

fn new_key() -> String {
    key::generate(&mut OsRng)
}

impl Store {
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
        let conn = Connection::open(path)?;
        Self::setup(conn)
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
        // WAL returns the resulting mode as a row; in-memory databases answer "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        migrations::run(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves SQLite itself consistent (statements are atomic),
        // so a poisoned lock is safe to reuse.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    /// Creates a user and returns its stream key: the only time the plain key exists.
    pub fn add_user(&self, name: &str, is_admin: bool) -> Result<(Username, String), StoreError> {
        let user = Username::parse(name).map_err(StoreError::InvalidUsername)?;
        let key = new_key();
        self.with(|c| {
            let tx = c.transaction()?;
            let inserted = tx.execute(
                "INSERT INTO users (username, is_admin, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(username) DO NOTHING",
                params![user.as_str(), is_admin, now_ms()],
            )?;
            if inserted == 0 {
                return Err(StoreError::UserExists(user.to_string()));
            }
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO streams (user_id, key_hash) VALUES (?1, ?2)",
                params![id, key::storage_hash(&key)],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        Ok((user, key))
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms
                 FROM users u JOIN streams s ON s.user_id = u.id ORDER BY u.username",
            )?;
            let rows = stmt.query_map([], user_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One user, if it exists.
    pub fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        let Ok(user) = Username::parse(name) else {
            return Ok(None);
        };
        self.with(|c| {
            Ok(c.query_row(
                "SELECT u.username, u.is_admin, u.banned, s.started_ms, u.created_ms
                 FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = ?1",
                [user.as_str()],
                user_row,
            )
            .optional()?)
        })
    }

    fn update_user(&self, name: &str, sql: &str, value: bool) -> Result<(), StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        let changed = self.with(|c| Ok(c.execute(sql, params![value, user.as_str()])?))?;
        if changed == 0 {
            return Err(StoreError::UnknownUser(user.to_string()));
        }
        Ok(())
    }

    /// Bans or unbans a user. A running server drops a banned user's publisher (see
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
    /// server holding that publish sees it is no longer the live one and drops it
    /// ([`Self::live_publishes`]).
    pub fn rotate_key(&self, name: &str) -> Result<String, StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        let key = new_key();
        let changed = self.with(|c| {
            Ok(c.execute(
                &format!(
                    "UPDATE streams SET key_hash = ?1, {OFFLINE}
                     WHERE user_id = (SELECT id FROM users WHERE username = ?2)"
                ),
                params![key::storage_hash(&key), user.as_str()],
            )?)
        })?;
        if changed == 0 {
            return Err(StoreError::UnknownUser(user.to_string()));
        }
        Ok(key)
    }

    /// Takes the stream of `presented_key` live, or says why not. The go-live is one conditional
    /// `UPDATE … WHERE started_ms IS NULL`, so of two simultaneous publishers exactly one wins.
    pub fn begin_publish(&self, presented_key: &str) -> Result<PublishDecision, StoreError> {
        use PublishDecision::{Accepted, Refused};
        if !key::is_well_formed(presented_key) {
            return Ok(Refused(PublishRefusal::UnknownKey));
        }
        let hash = key::storage_hash(presented_key);
        self.with(|c| {
            let found: Option<(i64, String, bool)> = c
                .query_row(
                    "SELECT u.id, u.username, u.banned FROM streams s JOIN users u ON u.id = s.user_id
                     WHERE s.key_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((user_id, username, banned)) = found else {
                return Ok(Refused(PublishRefusal::UnknownKey));
            };
            if banned {
                return Ok(Refused(PublishRefusal::Banned));
            }
            let publish_id = (OsRng.next_u64() >> 1) as i64;
            let won = c.execute(
                "UPDATE streams SET started_ms = ?1, publish_id = ?2
                 WHERE user_id = ?3 AND key_hash = ?4 AND started_ms IS NULL
                   AND (SELECT banned FROM users WHERE id = ?3) = 0",
                params![now_ms(), publish_id, user_id, hash],
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
                params![publish.0, user.as_str()],
            )?;
            Ok(())
        })
    }

    /// Takes every stream offline; run at start-up, when no publisher can be connected yet.
    pub fn reset_live(&self) -> Result<usize, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE streams SET started_ms = NULL, publish_id = NULL WHERE started_ms IS NOT NULL",
                [],
            )?)
        })
    }

    /// Records a live stream's latest statistics.
    pub fn record_stats(&self, publish: PublishId, stats: &StreamStats) -> Result<(), StoreError> {
        self.with(|c| {
            // Cached: runs every few seconds per live stream.
            c.prepare_cached(
                "UPDATE streams SET video_codec = ?1, audio_codec = ?2, width = ?3, height = ?4,
                   fps = ?5, bitrate_kbps = ?6 WHERE publish_id = ?7",
            )?
            .execute(params![
                stats.video_codec,
                stats.audio_codec,
                stats.width,
                stats.height,
                stats.fps,
                stats.bitrate_kbps as i64,
                publish.0
            ])?;
            Ok(())
        })
    }

    /// Sets a channel's title and category; false when there is no such user.
    pub fn set_channel_info(&self, name: &str, info: &ChannelInfo) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE streams SET title = ?2, category = ?3
                 WHERE user_id = (SELECT id FROM users WHERE username = ?1)",
                params![name, info.title, info.category],
            )?;
            Ok(n == 1)
        })
    }

    /// A channel's title and category, live or not.
    pub fn channel_info(&self, name: &str) -> Result<Option<ChannelInfo>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT s.title, s.category FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE u.username = ?1",
                [name],
                |r| {
                    Ok(ChannelInfo {
                        title: r.get(0)?,
                        category: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Live streams, longest-running first.
    pub fn live_streams(&self) -> Result<Vec<LiveRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "{LIVE_SELECT} WHERE s.started_ms IS NOT NULL ORDER BY s.started_ms, u.username"
            ))?;
            let rows = stmt.query_map([], live_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// One channel's live stream, if it is live: what every player polls, so one indexed row, not
    /// a scan of every live stream.
    pub fn live_stream(&self, name: &str) -> Result<Option<LiveRow>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("{LIVE_SELECT} WHERE s.started_ms IS NOT NULL AND u.username = ?1"),
                [name],
                live_row,
            )
            .optional()?)
        })
    }

    /// Every live publish: its channel, its id, and whether it must be dropped (its user was
    /// banned, or an operator asked to stop it — possibly from the CLI in another process). A
    /// publish a server holds that is missing here was ended behind its back (its key was rotated)
    /// and must be dropped too.
    pub fn live_publishes(&self) -> Result<Vec<LivePublish>, StoreError> {
        self.with(|c| {
            // Cached: the drop watch runs it several times a second while anything is live.
            let mut stmt = c.prepare_cached(
                "SELECT u.username, s.publish_id, (u.banned = 1 OR s.stop_requested = 1), s.private
                 FROM streams s JOIN users u ON u.id = s.user_id WHERE s.started_ms IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(LivePublish {
                    username: r.get(0)?,
                    publish_id: PublishId(r.get(1)?),
                    drop_requested: r.get(2)?,
                    private: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Asks the server to drop a user's live publisher (admin "stop stream"). Returns false when
    /// the user is not live.
    pub fn request_stop(&self, name: &str) -> Result<bool, StoreError> {
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        self.with(|c| {
            Ok(c.execute(
                "UPDATE streams SET stop_requested = 1 WHERE started_ms IS NOT NULL
                   AND user_id = (SELECT id FROM users WHERE username = ?1)",
                [user.as_str()],
            )? > 0)
        })
    }
}

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
