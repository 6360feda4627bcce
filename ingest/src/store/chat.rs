//! Chat's lasting state: each channel's recent messages (shown to whoever joins) and who may not
//! write in it. Messages are kept per channel up to [`KEPT_PER_CHANNEL`]; older ones are pruned
//! as new ones arrive, so a busy room cannot grow the database without end.

use super::db::args;
use super::{user_id, Store, StoreError};

/// Messages kept per channel.
pub const KEPT_PER_CHANNEL: i64 = 1000;

/// A stored chat message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    /// Its id, for deleting.
    pub id: i64,
    /// Who wrote it.
    pub user: String,
    /// What they wrote (plain text; shown as text, never HTML).
    pub body: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Why someone may not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mute {
    /// Timed out until then (Unix ms).
    Until(i64),
    /// Banned from this channel's chat.
    Banned,
}

impl Store {
    /// Stores a message; returns it with its id.
    pub fn add_chat_message(
        &self,
        channel: &str,
        user: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<ChatMessage, StoreError> {
        self.with(|c| {
            let (channel_id, user_id) = (user_id(c, channel)?, user_id(c, user)?);
            let id = c.query_i64(
                "INSERT INTO chat_messages (channel_id, user_id, body, created_ms)
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
                args![channel_id, user_id, body, at_ms],
            )?;
            if id % 100 == 0 {
                c.execute(
                    "DELETE FROM chat_messages WHERE channel_id = ?1 AND id <= (
                       SELECT id FROM chat_messages WHERE channel_id = ?1
                       ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    args![channel_id, KEPT_PER_CHANNEL],
                )?;
            }
            Ok(ChatMessage {
                id,
                user: user.to_string(),
                body: body.to_string(),
                at_ms,
            })
        })
    }

    /// The newest `n` messages of a channel not deleted, oldest first.
    pub fn recent_chat(&self, channel: &str, n: i64) -> Result<Vec<ChatMessage>, StoreError> {
        self.with(|c| {
            let channel_id = user_id(c, channel)?;
            let mut out = c.query(
                "SELECT m.id, u.username, m.body, m.created_ms FROM chat_messages m
                 JOIN users u ON u.id = m.user_id
                 WHERE m.channel_id = ?1 AND NOT m.deleted ORDER BY m.id DESC LIMIT ?2",
                args![channel_id, n],
                |r| {
                    Ok(ChatMessage {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        body: r.get(2)?,
                        at_ms: r.get(3)?,
                    })
                },
            )?;
            out.reverse();
            Ok(out)
        })
    }

    /// Deletes one of a channel's messages; false when it has no such message.
    pub fn delete_chat_message(&self, channel: &str, id: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let channel_id = user_id(c, channel)?;
            Ok(c.execute(
                "UPDATE chat_messages SET deleted = TRUE WHERE id = ?1 AND channel_id = ?2",
                args![id, channel_id],
            )? == 1)
        })
    }

    /// Mutes `user` in `channel`'s chat: until a time, or for good (`None`).
    pub fn mute_in_chat(
        &self,
        channel: &str,
        user: &str,
        until_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let (channel_id, user_id) = (user_id(c, channel)?, user_id(c, user)?);
            c.execute(
                "INSERT INTO chat_mutes (channel_id, user_id, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (channel_id, user_id) DO UPDATE SET until_ms = excluded.until_ms",
                args![channel_id, user_id, until_ms],
            )?;
            Ok(())
        })
    }

    /// Lifts a mute.
    pub fn unmute_in_chat(&self, channel: &str, user: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let (channel_id, user_id) = (user_id(c, channel)?, user_id(c, user)?);
            c.execute(
                "DELETE FROM chat_mutes WHERE channel_id = ?1 AND user_id = ?2",
                args![channel_id, user_id],
            )?;
            Ok(())
        })
    }

    /// Whether `user` is muted in `channel`'s chat at `now_ms`.
    pub fn chat_mute(
        &self,
        channel: &str,
        user: &str,
        now_ms: i64,
    ) -> Result<Option<Mute>, StoreError> {
        self.with(|c| {
            let row: Option<Option<i64>> = c.query_opt(
                "SELECT m.until_ms FROM chat_mutes m
                 JOIN users ch ON ch.id = m.channel_id JOIN users u ON u.id = m.user_id
                 WHERE ch.username = ?1 AND u.username = ?2",
                args![channel, user],
                |r| r.get(0),
            )?;
            Ok(match row {
                None => None,
                Some(None) => Some(Mute::Banned),
                Some(Some(until)) if until > now_ms => Some(Mute::Until(until)),
                Some(Some(_)) => None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::on_both;

    on_both! {
    fn messages_mutes_and_pruning(db: &TestDb) {
        let s = db.open();
        s.add_user("alice", false).unwrap();
        s.add_user("bob", false).unwrap();
        let m1 = s.add_chat_message("alice", "bob", "hi <b>", 1).unwrap();
        let m2 = s.add_chat_message("alice", "alice", "hello", 2).unwrap();
        assert_eq!(
            s.recent_chat("alice", 10).unwrap(),
            vec![m1.clone(), m2.clone()]
        );
        assert_eq!(s.recent_chat("alice", 1).unwrap(), vec![m2.clone()]);
        assert!(
            s.recent_chat("bob", 10).unwrap().is_empty(),
            "rooms are apart"
        );
        assert!(s.delete_chat_message("alice", m1.id).unwrap());
        assert!(
            !s.delete_chat_message("bob", m2.id).unwrap(),
            "not bob's room's message"
        );
        assert_eq!(s.recent_chat("alice", 10).unwrap(), vec![m2]);
        assert_eq!(s.chat_mute("alice", "bob", 0).unwrap(), None);
        s.mute_in_chat("alice", "bob", Some(100)).unwrap();
        assert_eq!(
            s.chat_mute("alice", "bob", 50).unwrap(),
            Some(Mute::Until(100))
        );
        assert_eq!(s.chat_mute("alice", "bob", 100).unwrap(), None, "expired");
        s.mute_in_chat("alice", "bob", None).unwrap();
        assert_eq!(
            s.chat_mute("alice", "bob", 1_000).unwrap(),
            Some(Mute::Banned)
        );
        assert_eq!(s.chat_mute("bob", "bob", 1_000).unwrap(), None);
        s.unmute_in_chat("alice", "bob").unwrap();
        assert_eq!(s.chat_mute("alice", "bob", 1_000).unwrap(), None);
        for i in 0..(KEPT_PER_CHANNEL + 250) {
            s.add_chat_message("bob", "alice", "x", i).unwrap();
        }
        let kept: i64 = s
            .with(|c| {
                c.query_i64(
                    "SELECT COUNT(*) FROM chat_messages WHERE channel_id = (SELECT id FROM users WHERE username = 'bob')",
                    args![],
                )
            })
            .unwrap();
        assert!(kept <= KEPT_PER_CHANNEL + 100, "{kept} kept");
    }
    }
}
