//! What a publish is told as it starts (private? recorded? under which title?), read in one
//! query, the streamer's choice to keep recordings, and the key-encryption key of private
//! recordings. The recordings themselves live on disk (see [`crate::record`]).

use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::live::PublishSpec;

impl Store {
    /// The spec of a publish of `name` starting now; `None` for no such channel.
    pub fn publish_spec(&self, name: &str) -> Result<Option<PublishSpec>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT s.private, s.keep_recordings, s.title FROM streams s
                 JOIN users u ON u.id = s.user_id WHERE u.username = ?1",
                [name],
                |r| {
                    Ok(PublishSpec {
                        private: r.get(0)?,
                        record: r.get(1)?,
                        title: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// The site's key-encryption key for private recordings' media keys, made on first use.
    pub fn recording_kek(&self) -> Result<[u8; 16], StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let kek: Option<Vec<u8>> = tx
                .query_row("SELECT kek FROM recording_kek WHERE id = 0", [], |r| {
                    r.get(0)
                })
                .optional()?;
            let kek = match kek.and_then(|k| <[u8; 16]>::try_from(k).ok()) {
                Some(kek) => kek,
                None => {
                    let mut kek = [0u8; 16];
                    OsRng.fill_bytes(&mut kek);
                    tx.execute(
                        "INSERT OR REPLACE INTO recording_kek (id, kek) VALUES (0, ?1)",
                        [kek.to_vec()],
                    )?;
                    kek
                }
            };
            tx.commit()?;
            Ok(kek)
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
                params![keep, name],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownUser(name.to_string()));
            }
            Ok(())
        })
    }
}
