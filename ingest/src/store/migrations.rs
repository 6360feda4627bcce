//! Versioned schema migrations, tracked in `PRAGMA user_version`. Each step runs in its own
//! transaction, so a crash mid-upgrade leaves the previous version intact. Append only: a released
//! step is never edited.

use rusqlite::Connection;

use super::StoreError;

const STEPS: &[&str] = &[
    // 1: users and their single stream (the Django design's User + Stream, with the key hashed).
    "CREATE TABLE users (
        id          INTEGER PRIMARY KEY,
        username    TEXT NOT NULL UNIQUE,
        is_admin    INTEGER NOT NULL DEFAULT 0,
        banned      INTEGER NOT NULL DEFAULT 0,
        created_ms  INTEGER NOT NULL
     );
     CREATE TABLE streams (
        user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        key_hash       TEXT NOT NULL UNIQUE,
        started_ms     INTEGER,
        publish_id     INTEGER,
        stop_requested INTEGER NOT NULL DEFAULT 0
     );",
    // 2: ingest statistics, so the CLI in another process can show them.
    "ALTER TABLE streams ADD COLUMN video_codec TEXT NOT NULL DEFAULT '';
     ALTER TABLE streams ADD COLUMN audio_codec TEXT NOT NULL DEFAULT '';
     ALTER TABLE streams ADD COLUMN width INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE streams ADD COLUMN height INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE streams ADD COLUMN fps REAL NOT NULL DEFAULT 0;
     ALTER TABLE streams ADD COLUMN bitrate_kbps INTEGER NOT NULL DEFAULT 0;
     -- a publish that ends clears its stop request
     CREATE TRIGGER streams_clear_stop AFTER UPDATE OF started_ms ON streams
       WHEN NEW.started_ms IS NULL BEGIN
         UPDATE streams SET stop_requested = 0 WHERE user_id = NEW.user_id;
       END;",
    // 3: website accounts: passwords (argon2 PHC strings), sessions and API tokens (hashed).
    "ALTER TABLE users ADD COLUMN password_hash TEXT;
     CREATE TABLE sessions (
        token_hash  TEXT PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf        TEXT NOT NULL,
        expires_ms  INTEGER NOT NULL
     );
     CREATE TABLE api_tokens (
        token_hash  TEXT PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_ms  INTEGER NOT NULL
     );",
    // 4: a channel's title and category, kept across streams.
    "ALTER TABLE streams ADD COLUMN title TEXT NOT NULL DEFAULT '';
     ALTER TABLE streams ADD COLUMN category TEXT NOT NULL DEFAULT '';",
    // 5: private channels: who may watch (users by id, share links by hashed code) and the
    // secrets playback tokens are signed with.
    "ALTER TABLE streams ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE channel_viewers (
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        viewer_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (channel_id, viewer_id)
     );
     CREATE TABLE share_links (
        id          INTEGER PRIMARY KEY,
        code_hash   TEXT NOT NULL UNIQUE,
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_ms  INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL
     );
     CREATE TABLE playback_secrets (
        id          INTEGER PRIMARY KEY CHECK (id BETWEEN 0 AND 9),
        secret      BLOB NOT NULL,
        created_ms  INTEGER NOT NULL
     );",
    // 6: chat: each channel's messages (the newest kept, older ones pruned) and who may not write
    // in it (until a time, or for good).
    "CREATE TABLE chat_messages (
        id          INTEGER PRIMARY KEY,
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body        TEXT NOT NULL,
        created_ms  INTEGER NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX chat_messages_by_channel ON chat_messages (channel_id, id);
     CREATE TABLE chat_mutes (
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        until_ms    INTEGER,
        PRIMARY KEY (channel_id, user_id)
     );",
    // 7: the streamer's choice to keep recordings of their publishes (on unless they turn it off;
    // the operator's retention and quotas bound what is kept).
    "ALTER TABLE streams ADD COLUMN keep_recordings INTEGER NOT NULL DEFAULT 1;",
    // 8: the key-encryption key private recordings' media keys are wrapped under — here, away
    // from the recordings' files, so those alone never decrypt. One per site, made on first use.
    "CREATE TABLE recording_kek (
        id          INTEGER PRIMARY KEY CHECK (id = 0),
        kek         BLOB NOT NULL CHECK (length(kek) = 16)
     );",
];

/// The newest schema version this binary knows.
pub const LATEST: i64 = STEPS.len() as i64;

/// Brings the database to [`LATEST`].
pub fn run(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > LATEST {
            return Err(StoreError::TooNew {
                found: version,
                known: LATEST,
            });
        }
        if version == LATEST {
            return Ok(());
        }
        tx.execute_batch(STEPS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
