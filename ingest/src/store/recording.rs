//! What a publish is told as it starts (private? recorded? under which title?), read in one
//! query, and the streamer's choice to keep recordings. The recordings themselves live on disk
//! (see [`crate::record`]); the database holds only the choice.

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
