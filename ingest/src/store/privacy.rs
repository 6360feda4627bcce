//! Private channels: whether a channel is private, whom its streamer allows (users by name,
//! holders of share links), and the secrets playback tokens are signed with. Share-link codes
//! are bearer secrets like session tokens, so only their SHA-256 is stored.

use super::db::{args, Conn};
use super::{random_token, user_id, Store, StoreError};
use crate::clock::now_ms;
use boltstream_shared::key::storage_hash;
use rand::rngs::OsRng;
use rand::RngCore;

/// Share links a channel may hold at once: each is a row and a listing entry.
pub const MAX_SHARE_LINKS: i64 = 50;
/// Users a channel may allow by name.
pub const MAX_ALLOWED_VIEWERS: i64 = 500;
/// The longest a share link may live.
pub const MAX_SHARE_LINK_MS: i64 = 30 * 24 * 3600 * 1000;

/// Who asks to watch a channel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Viewer<'a> {
    /// The signed-in user, if any.
    pub user: Option<&'a str>,
    /// A share link's code, if the viewer came with one.
    pub share_code: Option<&'a str>,
}

/// May this viewer watch this channel?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The channel is public.
    Public,
    /// Private, and this viewer may watch.
    Allowed,
    /// Private, and this viewer may not — told apart from a missing channel only to the streamer.
    Denied,
    /// No such channel.
    Unknown,
}

impl Access {
    /// True when the viewer may watch.
    pub fn may_watch(self) -> bool {
        matches!(self, Access::Public | Access::Allowed)
    }
}

/// A share link as its streamer sees it (never its code, which is shown once).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShareLink {
    /// Its id, for revoking.
    pub id: i64,
    /// When it stops working (Unix ms).
    pub expires_ms: i64,
    /// When it was made.
    pub created_ms: i64,
}

impl Store {
    /// Makes a channel private or public. A channel made private while it is live in the clear
    /// has its publish stopped (the encoder reconnects, and the new publish is encrypted), so
    /// nothing more is served in the clear once the change is made; returns true then.
    pub fn set_private(&self, name: &str, private: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            let id = user_id(c, name)?;
            c.transaction(|tx| {
                let was: bool = tx.query_one(
                    "SELECT private FROM streams WHERE user_id = ?1",
                    args![id],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE streams SET private = ?2 WHERE user_id = ?1",
                    args![id, private],
                )?;
                Ok(private
                    && !was
                    && tx.execute(
                        "UPDATE streams SET stop_requested = TRUE
                         WHERE user_id = ?1 AND started_ms IS NOT NULL",
                        args![id],
                    )? > 0)
            })
        })
    }

    /// Whether a channel is private; `None` for no such channel.
    pub fn is_private(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT s.private FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE u.username = ?1",
                args![name],
                |r| r.get(0),
            )
        })
    }

    /// Allows (or stops allowing) a user to watch a private channel.
    pub fn set_viewer_allowed(
        &self,
        channel: &str,
        viewer: &str,
        allowed: bool,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let channel_id = user_id(c, channel)?;
            let viewer_id = user_id(c, viewer)?;
            if !allowed {
                c.execute(
                    "DELETE FROM channel_viewers WHERE channel_id = ?1 AND viewer_id = ?2",
                    args![channel_id, viewer_id],
                )?;
                return Ok(());
            }
            let count = c.query_i64(
                "SELECT COUNT(*) FROM channel_viewers WHERE channel_id = ?1",
                args![channel_id],
            )?;
            if count >= MAX_ALLOWED_VIEWERS {
                return Err(StoreError::Limit(format!(
                    "a channel allows at most {MAX_ALLOWED_VIEWERS} users by name"
                )));
            }
            c.execute(
                "INSERT INTO channel_viewers (channel_id, viewer_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
                args![channel_id, viewer_id],
            )?;
            Ok(())
        })
    }

    /// The users a channel allows, by name.
    pub fn allowed_viewers(&self, channel: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let id = user_id(c, channel)?;
            c.query(
                "SELECT u.username FROM channel_viewers v JOIN users u ON u.id = v.viewer_id
                 WHERE v.channel_id = ?1 ORDER BY u.username",
                args![id],
                |r| r.get(0),
            )
        })
    }

    /// Creates a share link valid for `ttl_ms`; returns it and its code (shown once).
    pub fn create_share_link(
        &self,
        channel: &str,
        ttl_ms: i64,
    ) -> Result<(ShareLink, String), StoreError> {
        if !(1..=MAX_SHARE_LINK_MS).contains(&ttl_ms) {
            return Err(StoreError::Limit(format!(
                "a share link lives between a millisecond and {} days",
                MAX_SHARE_LINK_MS / 86_400_000
            )));
        }
        let code = random_token();
        let now = now_ms();
        self.with(|c| {
            let id = user_id(c, channel)?;
            c.execute(
                "DELETE FROM share_links WHERE channel_id = ?1 AND expires_ms <= ?2",
                args![id, now],
            )?;
            let count = c.query_i64(
                "SELECT COUNT(*) FROM share_links WHERE channel_id = ?1",
                args![id],
            )?;
            if count >= MAX_SHARE_LINKS {
                return Err(StoreError::Limit(format!(
                    "a channel holds at most {MAX_SHARE_LINKS} share links; revoke one first"
                )));
            }
            let link_id = c.query_i64(
                "INSERT INTO share_links (code_hash, channel_id, expires_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
                args![&storage_hash(&code), id, now + ttl_ms, now],
            )?;
            let link = ShareLink {
                id: link_id,
                expires_ms: now + ttl_ms,
                created_ms: now,
            };
            Ok((link, code))
        })
    }

    /// A channel's share links that have not expired.
    pub fn share_links(&self, channel: &str) -> Result<Vec<ShareLink>, StoreError> {
        self.with(|c| {
            let id = user_id(c, channel)?;
            c.query(
                "SELECT id, expires_ms, created_ms FROM share_links
                 WHERE channel_id = ?1 AND expires_ms > ?2 ORDER BY id",
                args![id, now_ms()],
                |r| {
                    Ok(ShareLink {
                        id: r.get(0)?,
                        expires_ms: r.get(1)?,
                        created_ms: r.get(2)?,
                    })
                },
            )
        })
    }

    /// Revokes one of a channel's share links; false when it has no such link.
    pub fn revoke_share_link(&self, channel: &str, link: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let id = user_id(c, channel)?;
            let n = c.execute(
                "DELETE FROM share_links WHERE id = ?1 AND channel_id = ?2",
                args![link, id],
            )?;
            Ok(n == 1)
        })
    }

    /// Whether `viewer` may watch `channel`: one query's worth of rows, asked for each token.
    pub fn access(&self, channel: &str, viewer: Viewer<'_>) -> Result<Access, StoreError> {
        self.with(|c| {
            let row: Option<(i64, bool)> = c.query_opt(
                "SELECT u.id, s.private FROM streams s JOIN users u ON u.id = s.user_id
                 WHERE u.username = ?1",
                args![channel],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let Some((id, private)) = row else {
                return Ok(Access::Unknown);
            };
            if !private {
                return Ok(Access::Public);
            }
            if viewer.user == Some(channel) {
                return Ok(Access::Allowed);
            }
            if let Some(user) = viewer.user {
                let allowed: bool = c.query_one(
                    "SELECT EXISTS (SELECT 1 FROM channel_viewers v JOIN users u
                       ON u.id = v.viewer_id WHERE v.channel_id = ?1 AND u.username = ?2)
                     OR EXISTS (SELECT 1 FROM users WHERE username = ?2 AND is_admin)",
                    args![id, user],
                    |r| r.get(0),
                )?;
                if allowed {
                    return Ok(Access::Allowed);
                }
            }
            if let Some(code) = viewer.share_code {
                let valid: bool = c.query_one(
                    "SELECT EXISTS (SELECT 1 FROM share_links
                       WHERE code_hash = ?1 AND channel_id = ?2 AND expires_ms > ?3)",
                    args![&storage_hash(code), id, now_ms()],
                    |r| r.get(0),
                )?;
                if valid {
                    return Ok(Access::Allowed);
                }
            }
            Ok(Access::Denied)
        })
    }

    /// The playback-token secrets, newest first (made on first use: 32 random bytes, id 1).
    pub fn playback_secrets(&self) -> Result<Vec<(u8, Vec<u8>)>, StoreError> {
        self.with(|c| {
            c.transaction(|tx| {
                if tx.query_i64("SELECT COUNT(*) FROM playback_secrets", args![])? == 0 {
                    insert_secret(tx, 1)?;
                }
                tx.query(
                    "SELECT id, secret FROM playback_secrets ORDER BY created_ms DESC, id DESC",
                    args![],
                    |r| Ok((r.get::<u8>(0)?, r.get(1)?)),
                )
            })
        })
    }

    /// Makes a new current secret and keeps only the one before it (still accepted, so tokens
    /// already given stay valid until they expire); returns the new id.
    pub fn rotate_playback_secret(&self) -> Result<u8, StoreError> {
        let current = self.playback_secrets()?;
        self.with(|c| {
            let newest = current.first().map_or(0, |(id, _)| *id);
            let id = newest % 9 + 1;
            c.transaction(|tx| {
                tx.execute("DELETE FROM playback_secrets WHERE id != ?1", args![newest])?;
                insert_secret(tx, id)
            })?;
            Ok(id)
        })
    }
}

/// Two nodes may make the first secret at once: the second insert is a no-op, and both read
/// the one that won.
fn insert_secret(tx: &mut Conn<'_>, id: u8) -> Result<(), StoreError> {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    tx.execute(
        "INSERT INTO playback_secrets (id, secret, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        args![id, &secret[..], now_ms()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::{on_both, TestDb};

    fn store(db: &TestDb) -> Store {
        let s = db.open();
        for name in ["alice", "bob", "carol"] {
            s.add_user(name, false).unwrap();
        }
        s.add_user("root_admin", true).unwrap();
        s
    }

    on_both! {
    fn a_private_channel_is_for_its_streamer_allowed_users_admins_and_share_links(db: &TestDb) {
        let s = store(db);
        let anon = Viewer::default();
        let as_user = |user| Viewer {
            user: Some(user),
            share_code: None,
        };
        assert_eq!(s.access("alice", anon).unwrap(), Access::Public);
        assert_eq!(s.access("nobody", anon).unwrap(), Access::Unknown);
        assert!(
            !s.set_private("alice", true).unwrap(),
            "not live: nothing to stop"
        );
        assert_eq!(s.access("alice", anon).unwrap(), Access::Denied);
        assert_eq!(
            s.access("alice", as_user("alice")).unwrap(),
            Access::Allowed
        );
        assert_eq!(s.access("alice", as_user("bob")).unwrap(), Access::Denied);
        assert_eq!(
            s.access("alice", as_user("root_admin")).unwrap(),
            Access::Allowed
        );
        s.set_viewer_allowed("alice", "bob", true).unwrap();
        s.set_viewer_allowed("alice", "bob", true).unwrap();
        assert_eq!(s.allowed_viewers("alice").unwrap(), vec!["bob".to_string()]);
        assert_eq!(s.access("alice", as_user("bob")).unwrap(), Access::Allowed);
        assert_eq!(s.access("alice", as_user("carol")).unwrap(), Access::Denied);
        s.set_viewer_allowed("alice", "bob", false).unwrap();
        assert_eq!(s.access("alice", as_user("bob")).unwrap(), Access::Denied);
        assert!(matches!(
            s.set_viewer_allowed("alice", "ghost", true),
            Err(StoreError::UnknownUser(_))
        ));

        let (link, code) = s.create_share_link("alice", 60_000).unwrap();
        let with_code = |code| Viewer {
            user: None,
            share_code: Some(code),
        };
        assert_eq!(
            s.access("alice", with_code(&code)).unwrap(),
            Access::Allowed
        );
        assert_eq!(
            s.access("alice", with_code("wrong")).unwrap(),
            Access::Denied
        );
        // A link for one channel opens no other.
        s.set_private("bob", true).unwrap();
        assert_eq!(s.access("bob", with_code(&code)).unwrap(), Access::Denied);
        assert_eq!(s.share_links("alice").unwrap(), vec![link.clone()]);
        assert!(!s.revoke_share_link("bob", link.id).unwrap(), "not bob's");
        assert!(s.revoke_share_link("alice", link.id).unwrap());
        assert_eq!(s.access("alice", with_code(&code)).unwrap(), Access::Denied);
        // Expired links open nothing.
        let (_, short) = s.create_share_link("alice", 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(
            s.access("alice", with_code(&short)).unwrap(),
            Access::Denied
        );
        assert!(s.share_links("alice").unwrap().is_empty());
        s.set_private("alice", false).unwrap();
        assert_eq!(s.access("alice", anon).unwrap(), Access::Public);
    }

    fn share_links_and_allowed_users_are_bounded(db: &TestDb) {
        let s = store(db);
        assert!(s.create_share_link("alice", 0).is_err());
        assert!(s.create_share_link("alice", MAX_SHARE_LINK_MS + 1).is_err());
        for _ in 0..MAX_SHARE_LINKS {
            s.create_share_link("alice", 60_000).unwrap();
        }
        assert!(matches!(
            s.create_share_link("alice", 60_000),
            Err(StoreError::Limit(_))
        ));
        // Codes are stored hashed.
        let (_, code) = s.create_share_link("bob", 60_000).unwrap();
        let stored: Vec<String> = s
            .with(|c| c.query("SELECT code_hash FROM share_links", args![], |r| r.get(0)))
            .unwrap();
        assert!(stored.iter().all(|h| !h.contains(&code)));
    }

    fn secrets_are_made_once_and_rotate_keeping_the_previous(db: &TestDb) {
        let s = store(db);
        let first = s.playback_secrets().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.len(), 32);
        assert_eq!(s.playback_secrets().unwrap(), first, "made once");
        let id = s.rotate_playback_secret().unwrap();
        let after = s.playback_secrets().unwrap();
        assert_eq!(after.len(), 2);
        assert_eq!(after[0].0, id);
        assert_eq!(after[1], first[0]);
        s.rotate_playback_secret().unwrap();
        let third = s.playback_secrets().unwrap();
        assert_eq!(third.len(), 2);
        assert!(!third.contains(&first[0]), "the oldest is retired");
    }
    }
}
