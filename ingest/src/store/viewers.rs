//! Viewers across a site's nodes: the anonymous ids each node counted (see
//! [`crate::viewers`]), each once with its channel and when it was last seen, so every node shows
//! the site's count however the edge spread a viewer's heartbeats.

use super::db::args;
use super::{Store, StoreError};

impl Store {
    /// Records heartbeats counted on a node (`(viewer id, channel)`) as seen at `now_ms`.
    pub fn record_viewers(
        &self,
        beats: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.transaction(|tx| {
                for (viewer, channel) in beats {
                    tx.execute(
                        "INSERT INTO viewer_beats (viewer, channel_id, seen_ms)
                         SELECT ?1, id, CAST(?3 AS BIGINT) FROM users WHERE username = ?2
                         ON CONFLICT (viewer) DO UPDATE SET channel_id = excluded.channel_id,
                           seen_ms = excluded.seen_ms",
                        args![viewer, channel, now_ms],
                    )?;
                }
                Ok(())
            })
        })
    }

    /// Forgets viewers not seen since `since_ms`, then counts the rest per channel.
    pub fn viewer_counts(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM viewer_beats WHERE seen_ms < ?1",
                args![since_ms],
            )?;
            c.query(
                "SELECT u.username, COUNT(*) FROM viewer_beats v JOIN users u ON u.id = v.channel_id
                 GROUP BY u.username",
                args![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}
