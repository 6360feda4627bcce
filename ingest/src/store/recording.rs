//! What a publish is told as it starts (private? recorded? under which title?), read in one
//! query, the streamer's choice to keep recordings, and the key-encryption key of private
//! recordings. The recordings themselves live on disk (see [`crate::record`]).

use super::db::args;
use super::{Store, StoreError};
use crate::live::PublishSpec;
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
}
