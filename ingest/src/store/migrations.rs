//! Versioned schema migrations, one list per database: SQLite's tracked in `PRAGMA user_version`,
//! PostgreSQL's in the `boltstream_schema` table. Each step runs in its own transaction, so a crash
//! mid-upgrade leaves the previous version intact. Append only: a released step is never edited.
//! PostgreSQL's list began with the schema SQLite had reached by then, in PostgreSQL's own types
//! (`BOOLEAN`, `BIGINT`, identity columns); a change to the schema from then on is a step in both.

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
    // 9: several nodes: which node holds a live stream, where other nodes reach it, and until when
    // its claim holds unless renewed.
    "ALTER TABLE streams ADD COLUMN node_id TEXT;
     ALTER TABLE streams ADD COLUMN node_url TEXT;
     ALTER TABLE streams ADD COLUMN lease_until_ms INTEGER;",
    // 10: the site's index of past broadcasts: which node keeps each one's files, and what its
    // listing shows, so every node lists and serves every recording; a recording deleted through
    // another node is marked here until the node keeping it removes its files.
    "CREATE TABLE recording_index (
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        id          INTEGER NOT NULL,
        node_id     TEXT NOT NULL,
        node_url    TEXT NOT NULL,
        title       TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        ended_ms    INTEGER NOT NULL,
        thumbnail   INTEGER NOT NULL,
        private     INTEGER NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel_id, id)
     );
     CREATE INDEX recording_index_by_node ON recording_index (node_id);",
    // 11: viewers' heartbeats across nodes: each anonymous id once, on one channel, last seen when.
    "CREATE TABLE viewer_beats (
        viewer      TEXT PRIMARY KEY,
        channel_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        seen_ms     INTEGER NOT NULL
     );
     CREATE INDEX viewer_beats_by_time ON viewer_beats (seen_ms);",
    // 12: whether a live stream can be played yet, as its node last reported it, for the pages
    // other nodes serve.
    "ALTER TABLE streams ADD COLUMN playable INTEGER NOT NULL DEFAULT 0;",
    // 13: the id of a live stream's newest picture on its node, for the directory and posters
    // other nodes serve.
    "ALTER TABLE streams ADD COLUMN thumbnail_id INTEGER;",
];

const POSTGRES_STEPS: &[&str] = &[
    // 1: SQLite's schema as of its step 9.
    "CREATE TABLE users (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        username        TEXT NOT NULL UNIQUE,
        is_admin        BOOLEAN NOT NULL DEFAULT FALSE,
        banned          BOOLEAN NOT NULL DEFAULT FALSE,
        created_ms      BIGINT NOT NULL,
        password_hash   TEXT
     );
     CREATE TABLE streams (
        user_id         BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        key_hash        TEXT NOT NULL UNIQUE,
        started_ms      BIGINT,
        publish_id      BIGINT,
        stop_requested  BOOLEAN NOT NULL DEFAULT FALSE,
        video_codec     TEXT NOT NULL DEFAULT '',
        audio_codec     TEXT NOT NULL DEFAULT '',
        width           BIGINT NOT NULL DEFAULT 0,
        height          BIGINT NOT NULL DEFAULT 0,
        fps             DOUBLE PRECISION NOT NULL DEFAULT 0,
        bitrate_kbps    BIGINT NOT NULL DEFAULT 0,
        title           TEXT NOT NULL DEFAULT '',
        category        TEXT NOT NULL DEFAULT '',
        private         BOOLEAN NOT NULL DEFAULT FALSE,
        keep_recordings BOOLEAN NOT NULL DEFAULT TRUE,
        node_id         TEXT,
        node_url        TEXT,
        lease_until_ms  BIGINT
     );
     CREATE INDEX streams_by_node ON streams (node_id) WHERE node_id IS NOT NULL;
     CREATE FUNCTION streams_clear_stop() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN NEW.stop_requested := FALSE; RETURN NEW; END $$;
     CREATE TRIGGER streams_clear_stop BEFORE UPDATE OF started_ms ON streams
       FOR EACH ROW WHEN (NEW.started_ms IS NULL) EXECUTE FUNCTION streams_clear_stop();
     CREATE TABLE sessions (
        token_hash      TEXT PRIMARY KEY,
        user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf            TEXT NOT NULL,
        expires_ms      BIGINT NOT NULL
     );
     CREATE TABLE api_tokens (
        token_hash      TEXT PRIMARY KEY,
        user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_ms      BIGINT NOT NULL
     );
     CREATE TABLE channel_viewers (
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        viewer_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (channel_id, viewer_id)
     );
     CREATE TABLE share_links (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        code_hash       TEXT NOT NULL UNIQUE,
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_ms      BIGINT NOT NULL,
        created_ms      BIGINT NOT NULL
     );
     CREATE TABLE playback_secrets (
        id              BIGINT PRIMARY KEY CHECK (id BETWEEN 0 AND 9),
        secret          BYTEA NOT NULL,
        created_ms      BIGINT NOT NULL
     );
     CREATE TABLE chat_messages (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body            TEXT NOT NULL,
        created_ms      BIGINT NOT NULL,
        deleted         BOOLEAN NOT NULL DEFAULT FALSE
     );
     CREATE INDEX chat_messages_by_channel ON chat_messages (channel_id, id);
     CREATE TABLE chat_mutes (
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        until_ms        BIGINT,
        PRIMARY KEY (channel_id, user_id)
     );
     CREATE TABLE recording_kek (
        id              BIGINT PRIMARY KEY CHECK (id = 0),
        kek             BYTEA NOT NULL CHECK (octet_length(kek) = 16)
     );",
    // 2: SQLite's step 10, the index of past broadcasts.
    "CREATE TABLE recording_index (
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        id              BIGINT NOT NULL,
        node_id         TEXT NOT NULL,
        node_url        TEXT NOT NULL,
        title           TEXT NOT NULL,
        duration_ms     BIGINT NOT NULL,
        bytes           BIGINT NOT NULL,
        ended_ms        BIGINT NOT NULL,
        thumbnail       BOOLEAN NOT NULL,
        private         BOOLEAN NOT NULL,
        deleted         BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (channel_id, id)
     );
     CREATE INDEX recording_index_by_node ON recording_index (node_id);",
    // 3: SQLite's step 11, viewers' heartbeats across nodes.
    "CREATE TABLE viewer_beats (
        viewer          TEXT PRIMARY KEY,
        channel_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        seen_ms         BIGINT NOT NULL
     );
     CREATE INDEX viewer_beats_by_time ON viewer_beats (seen_ms);",
    // 4: SQLite's step 12.
    "ALTER TABLE streams ADD COLUMN playable BOOLEAN NOT NULL DEFAULT FALSE;",
    // 5: SQLite's step 13.
    "ALTER TABLE streams ADD COLUMN thumbnail_id BIGINT;",
];

/// An arbitrary constant naming the advisory lock nodes take turns at migrating under.
const MIGRATION_LOCK: i64 = 0x626f_6c74_7374;

/// Brings a PostgreSQL database to the newest schema; nodes starting at once wait for each other.
pub fn run_postgres(client: &mut postgres::Client) -> Result<(), StoreError> {
    let latest = POSTGRES_STEPS.len() as i64;
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS boltstream_schema (version BIGINT NOT NULL)")?;
        let version: i64 = match tx.query_opt("SELECT version FROM boltstream_schema", &[])? {
            Some(row) => row.get(0),
            None => {
                tx.execute("INSERT INTO boltstream_schema (version) VALUES (0)", &[])?;
                0
            }
        };
        if version > latest {
            return Err(StoreError::TooNew {
                found: version,
                known: latest,
            });
        }
        if version == latest {
            return Ok(tx.commit()?);
        }
        tx.batch_execute(POSTGRES_STEPS[version as usize])?;
        tx.execute(
            "UPDATE boltstream_schema SET version = $1",
            &[&(version + 1)],
        )?;
        tx.commit()?;
    }
}

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
