//! What a publish is told as it starts (private? recorded? under which title?), read in one
//! query, the streamer's choice to keep recordings, the key-encryption key of private
//! recordings, and — for a site of several nodes — the index of every node's recordings. The
//! recordings themselves live on the disk of the node that made them (see [`crate::record`]).

use super::db::{args, Row};
use super::{user_id, Holder, NodeClaim, Store, StoreError};
use crate::live::PublishSpec;
use crate::record::RecordingInfo;
use rand::rngs::OsRng;
use rand::RngCore;

impl Store {
    /// The spec of a publish of `name` starting now; `None` for no such channel.
    pub fn publish_spec(&self, name: &str) -> Result<Option<PublishSpec>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT s.private, s.keep_recordings, s.title FROM streams s
                 JOIN users u ON u.id = s.user_id WHERE u.username = ?1",
                args![name],
                |r| {
                    Ok(PublishSpec {
                        private: r.get(0)?,
                        record: r.get(1)?,
                        title: r.get(2)?,
                    })
                },
            )
        })
    }

    /// The site's key-encryption key for private recordings' media keys, made on first use.
    pub fn recording_kek(&self) -> Result<[u8; 16], StoreError> {
        self.with(|c| {
            // Two nodes may make it at once: the second insert is a no-op and both read the
            // winner's, as a key that replaced another would leave recordings undecryptable.
            let mut fresh = [0u8; 16];
            OsRng.fill_bytes(&mut fresh);
            c.execute(
                "INSERT INTO recording_kek (id, kek) VALUES (0, ?1) ON CONFLICT DO NOTHING",
                args![&fresh[..]],
            )?;
            let kek: Vec<u8> =
                c.query_one("SELECT kek FROM recording_kek WHERE id = 0", args![], |r| {
                    r.get(0)
                })?;
            <[u8; 16]>::try_from(kek)
                .map_err(|_| StoreError::Column("the recording key is not 16 bytes".into()))
        })
    }

    /// Whether a channel keeps recordings of its publishes; `None` for no such channel.
    pub fn keeps_recordings(&self, name: &str) -> Result<Option<bool>, StoreError> {
        Ok(self.publish_spec(name)?.map(|s| s.record))
    }

    /// Sets whether a channel keeps recordings (from its next publish on).
    pub fn set_keep_recordings(&self, name: &str, keep: bool) -> Result<(), StoreError> {
        self.with(|c| {
            let changed = c.execute(
                "UPDATE streams SET keep_recordings = ?1
                 WHERE user_id = (SELECT id FROM users WHERE username = ?2)",
                args![keep, name],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownUser(name.to_string()));
            }
            Ok(())
        })
    }

    /// Puts recordings this node keeps into the site's index (or refreshes them).
    pub fn index_recordings(
        &self,
        node: &NodeClaim,
        recordings: &[(String, RecordingInfo)],
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.transaction(|tx| {
                for (channel, r) in recordings {
                    let Ok(channel_id) = user_id(tx, channel) else {
                        continue; // the user was removed: the files go with the retention
                    };
                    tx.execute(
                        "INSERT INTO recording_index (channel_id, id, node_id, node_url, title,
                           duration_ms, bytes, ended_ms, thumbnail, private)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (channel_id, id) DO UPDATE SET node_id = excluded.node_id,
                           node_url = excluded.node_url, title = excluded.title,
                           duration_ms = excluded.duration_ms, bytes = excluded.bytes,
                           ended_ms = excluded.ended_ms, thumbnail = excluded.thumbnail,
                           private = excluded.private",
                        args![
                            channel_id,
                            r.id as i64,
                            node.node_id.as_str(),
                            node.url.as_str(),
                            &r.title,
                            r.duration_ms as i64,
                            r.bytes as i64,
                            r.ended_ms,
                            r.thumbnail,
                            r.private
                        ],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// Takes out of the index recordings this node no longer keeps (`(channel, id)`); with
    /// `all`, every one of this node's (its start, before it indexes what it has).
    pub fn unindex_recordings(
        &self,
        node_id: &str,
        gone: &[(String, u64)],
        all: bool,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            if all {
                c.execute(
                    "DELETE FROM recording_index WHERE node_id = ?1",
                    args![node_id],
                )?;
                return Ok(());
            }
            c.transaction(|tx| {
                for (channel, id) in gone {
                    tx.execute(
                        "DELETE FROM recording_index WHERE node_id = ?1 AND id = ?2
                           AND channel_id = (SELECT id FROM users WHERE username = ?3)",
                        args![node_id, *id as i64, channel.as_str()],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// A channel's recordings on every node, newest first (not those marked deleted).
    pub fn indexed_recordings(&self, channel: &str) -> Result<Vec<RecordingInfo>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT r.id, r.title, r.duration_ms, r.bytes, r.ended_ms, r.thumbnail, r.private
                 FROM recording_index r JOIN users u ON u.id = r.channel_id
                 WHERE u.username = ?1 AND NOT r.deleted ORDER BY r.id DESC",
                args![channel],
                indexed_row,
            )
        })
    }

    /// The node keeping a recording's files, unless it is marked deleted.
    pub fn recording_holder(&self, channel: &str, id: u64) -> Result<Option<Holder>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT r.node_id, r.node_url FROM recording_index r
                 JOIN users u ON u.id = r.channel_id
                 WHERE u.username = ?1 AND r.id = ?2 AND NOT r.deleted",
                args![channel, id as i64],
                |r| {
                    Ok(Holder {
                        node_id: r.get(0)?,
                        url: r.get(1)?,
                    })
                },
            )
        })
    }

    /// Marks a recording deleted for the whole site (hidden at once; the node keeping it removes
    /// its files at its next pass); false when the index has no such recording.
    pub fn mark_recording_deleted(&self, channel: &str, id: u64) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE recording_index SET deleted = TRUE WHERE id = ?2
                   AND channel_id = (SELECT id FROM users WHERE username = ?1)",
                args![channel, id as i64],
            )? > 0)
        })
    }

    /// Recordings this node keeps that were deleted through another node.
    pub fn deleted_recordings(&self, node_id: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT u.username, r.id FROM recording_index r JOIN users u ON u.id = r.channel_id
                 WHERE r.node_id = ?1 AND r.deleted",
                args![node_id],
                |r| Ok((r.get(0)?, r.get::<i64>(1)? as u64)),
            )
        })
    }
}

fn indexed_row(r: &Row<'_>) -> Result<RecordingInfo, StoreError> {
    Ok(RecordingInfo {
        id: r.get::<i64>(0)? as u64,
        title: r.get(1)?,
        duration_ms: r.get::<i64>(2)?.max(0) as u64,
        bytes: r.get::<i64>(3)?.max(0) as u64,
        ended_ms: r.get(4)?,
        thumbnail: r.get(5)?,
        private: r.get(6)?,
    })
}
