//! Website accounts: passwords, sessions and API tokens. Secrets are stored hashed — passwords with
//! argon2 (slow on purpose: they are low-entropy), session and API tokens with SHA-256 (they are 256
//! random bits, so a fast hash allows an indexed lookup and leaks nothing).

use super::db::args;
use super::{user_row, Store, StoreError, UserRow};
use crate::clock::now_ms;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use boltstream_shared::key::storage_hash;
use boltstream_shared::username::Username;
use rand::rngs::OsRng;
use rand::RngCore;

/// How long a session lasts.
pub const SESSION_MS: i64 = 14 * 24 * 3600 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;

/// A logged-in user as the website sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// The user.
    pub user: UserRow,
    /// The session's CSRF token (for forms and the `x-csrf-token` header).
    pub csrf: String,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password(e.to_string()))
}

/// An API token as its owner sees it listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenRow {
    /// Public id: the first 16 hex digits of the token's hash.
    pub id: String,
    /// Unix ms of creation.
    pub created_ms: i64,
}

const USER_COLUMNS: &str = "u.username, u.is_admin, u.banned, s.started_ms, u.created_ms";

impl Store {
    /// Sets (or replaces) a user's password and ends all their sessions: an operator resetting
    /// a password (`boltstream user password`) means to lock out whoever knew the old one.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), StoreError> {
        self.change_password(name, password, None)
    }

    /// Replaces a user's password and ends every session of theirs but `keep` (the session that
    /// asked for the change): a thief signed in with the old password is signed out.
    pub fn change_password(
        &self,
        name: &str,
        password: &str,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        if password.chars().count() < MIN_PASSWORD {
            return Err(StoreError::Password(format!(
                "a password has at least {MIN_PASSWORD} characters"
            )));
        }
        let user = Username::parse(name).map_err(|_| StoreError::UnknownUser(name.to_string()))?;
        let hash = hash_password(password)?;
        let keep = keep.map(storage_hash).unwrap_or_default();
        self.with(|c| {
            c.transaction(|tx| {
                let changed = tx.execute(
                    "UPDATE users SET password_hash = ?1 WHERE username = ?2",
                    args![&hash, user.as_str()],
                )?;
                if changed == 0 {
                    return Err(StoreError::UnknownUser(user.to_string()));
                }
                tx.execute(
                    "DELETE FROM sessions WHERE token_hash != ?1
                       AND user_id = (SELECT id FROM users WHERE username = ?2)",
                    args![&keep, user.as_str()],
                )?;
                Ok(())
            })
        })
    }

    /// A user's API tokens, newest first, by a short public id (a prefix of the token's hash,
    /// which tells nothing of the token).
    pub fn api_tokens(&self, name: &str) -> Result<Vec<ApiTokenRow>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT substr(t.token_hash, 1, 16), t.created_ms FROM api_tokens t
                 JOIN users u ON u.id = t.user_id WHERE u.username = ?1
                 ORDER BY t.created_ms DESC, t.token_hash",
                args![name],
                |r| {
                    Ok(ApiTokenRow {
                        id: r.get(0)?,
                        created_ms: r.get(1)?,
                    })
                },
            )
        })
    }

    /// Revokes one of a user's API tokens by its id; false when they have none by that id.
    pub fn revoke_api_token(&self, name: &str, id: &str) -> Result<bool, StoreError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM api_tokens WHERE substr(token_hash, 1, 16) = ?1
                   AND user_id = (SELECT id FROM users WHERE username = ?2)",
                args![&id.to_ascii_lowercase(), name],
            )? > 0)
        })
    }

    /// Checks a password; `None` when the user is unknown, banned, has no password or it is wrong.
    /// Runs argon2 even for unknown users, so timing does not tell which names exist.
    pub fn verify_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<UserRow>, StoreError> {
        let found: Option<(UserRow, Option<String>)> = match Username::parse(name) {
            Ok(user) => self.with(|c| {
                c.query_opt(
                    &format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u JOIN streams s ON s.user_id = u.id WHERE u.username = ?1"),
                    args![user.as_str()],
                    |r| Ok((user_row(r)?, r.get(5)?)),
                )
            })?,
            Err(_) => None,
        };
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Ww3Vn1t4WZfqZ8Xz2C0p8p6N5S2iAq6Xh0WQmTq3Zxk";
        let stored = found
            .as_ref()
            .and_then(|(_, h)| h.clone())
            .unwrap_or_else(|| DUMMY.to_string());
        let ok = PasswordHash::new(&stored).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        Ok(match found {
            Some((user, Some(_))) if ok && !user.banned => Some(user),
            _ => None,
        })
    }

    /// Starts a session; returns (cookie token, CSRF token).
    pub fn create_session(&self, name: &str) -> Result<(String, String), StoreError> {
        let (token, csrf) = (random_token(), random_token());
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE expires_ms < ?1",
                args![now_ms()],
            )?;
            let inserted = c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, expires_ms)
                 SELECT ?1, id, ?2, CAST(?3 AS BIGINT) FROM users WHERE username = ?4",
                args![&storage_hash(&token), &csrf, now_ms() + SESSION_MS, name],
            )?;
            if inserted == 0 {
                return Err(StoreError::UnknownUser(name.to_string()));
            }
            Ok(())
        })?;
        Ok((token, csrf))
    }

    /// The user of a session cookie, if it is valid, unexpired and the user is not banned.
    pub fn session(&self, token: &str) -> Result<Option<SessionUser>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!(
                    "SELECT {USER_COLUMNS}, x.csrf FROM sessions x JOIN users u ON u.id = x.user_id
                     JOIN streams s ON s.user_id = u.id WHERE x.token_hash = ?1 AND x.expires_ms > ?2 AND NOT u.banned"
                ),
                args![&storage_hash(token), now_ms()],
                |r| Ok(SessionUser { user: user_row(r)?, csrf: r.get(5)? }),
            )
        })
    }

    /// Ends a session.
    pub fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                args![&storage_hash(token)],
            )
            .map(|_| ())
        })
    }

    /// Creates an API token for a user; the plain token is returned once.
    pub fn create_api_token(&self, name: &str) -> Result<String, StoreError> {
        let token = format!("bst_{}", random_token());
        let inserted = self.with(|c| {
            c.execute(
                "INSERT INTO api_tokens (token_hash, user_id, created_ms)
                 SELECT ?1, id, CAST(?2 AS BIGINT) FROM users WHERE username = ?3",
                args![&storage_hash(&token), now_ms(), name],
            )
        })?;
        if inserted == 0 {
            return Err(StoreError::UnknownUser(name.to_string()));
        }
        Ok(token)
    }

    /// The user of an API token (not banned).
    pub fn api_token_user(&self, token: &str) -> Result<Option<UserRow>, StoreError> {
        self.with(|c| {
            c.query_opt(
                &format!(
                    "SELECT {USER_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id
                     JOIN streams s ON s.user_id = u.id WHERE t.token_hash = ?1 AND NOT u.banned"
                ),
                args![&storage_hash(token)],
                user_row,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testdb::on_both;

    on_both! {
    fn a_password_change_ends_the_other_sessions_and_tokens_can_be_revoked(db: &TestDb) {
        let store = db.open();
        store.add_user("alice", false).unwrap();
        store.add_user("bob", false).unwrap();
        store.set_password("alice", "correct horse").unwrap();
        let (mine, _) = store.create_session("alice").unwrap();
        let (thief, _) = store.create_session("alice").unwrap();
        let (bobs, _) = store.create_session("bob").unwrap();
        store
            .change_password("alice", "battery staple", Some(&mine))
            .unwrap();
        assert!(store.session(&mine).unwrap().is_some(), "the changer stays");
        assert!(store.session(&thief).unwrap().is_none(), "the thief is out");
        assert!(store.session(&bobs).unwrap().is_some(), "others untouched");
        store.set_password("alice", "a third password").unwrap();
        assert!(
            store.session(&mine).unwrap().is_none(),
            "an operator reset ends all"
        );

        let first = store.create_api_token("alice").unwrap();
        let second = store.create_api_token("alice").unwrap();
        let bob_token = store.create_api_token("bob").unwrap();
        let listed = store.api_tokens("alice").unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed
            .iter()
            .all(|t| !first.contains(&t.id) && t.id.len() == 16));
        let bob_id = store.api_tokens("bob").unwrap()[0].id.clone();
        assert!(
            !store.revoke_api_token("alice", &bob_id).unwrap(),
            "not hers"
        );
        assert!(!store.revoke_api_token("alice", "'; DROP TABLE x").unwrap());
        let id = listed[0].id.clone();
        assert!(store.revoke_api_token("alice", &id).unwrap());
        assert_eq!(store.api_tokens("alice").unwrap().len(), 1);
        let left = [&first, &second]
            .iter()
            .filter(|t| store.api_token_user(t).unwrap().is_some())
            .count();
        assert_eq!(left, 1, "exactly the revoked token stopped working");
        assert!(store.api_token_user(&bob_token).unwrap().is_some());
    }

    fn passwords_sessions_and_tokens(db: &TestDb) {
        let store = db.open();
        store.add_user("alice", false).unwrap();
        assert!(matches!(
            store.set_password("alice", "short"),
            Err(StoreError::Password(_))
        ));
        store.set_password("alice", "correct horse").unwrap();
        assert!(store
            .verify_password("alice", "wrong horse")
            .unwrap()
            .is_none());
        assert!(store
            .verify_password("nobody", "correct horse")
            .unwrap()
            .is_none());
        assert_eq!(
            store
                .verify_password("ALICE", "correct horse")
                .unwrap()
                .unwrap()
                .username,
            "alice"
        );

        let (token, csrf) = store.create_session("alice").unwrap();
        let session = store.session(&token).unwrap().unwrap();
        assert_eq!(
            (session.user.username.as_str(), session.csrf.as_str()),
            ("alice", csrf.as_str())
        );
        assert!(store.session("not-a-token").unwrap().is_none());
        let stored: String = store
            .with(|c| c.query_one("SELECT token_hash FROM sessions", args![], |r| r.get(0)))
            .unwrap();
        assert_ne!(stored, token, "session tokens are stored hashed");

        let api = store.create_api_token("alice").unwrap();
        assert_eq!(
            store.api_token_user(&api).unwrap().unwrap().username,
            "alice"
        );

        store.set_banned("alice", true).unwrap();
        assert!(
            store.session(&token).unwrap().is_none(),
            "banned users lose their sessions"
        );
        assert!(store.api_token_user(&api).unwrap().is_none());
        assert!(store
            .verify_password("alice", "correct horse")
            .unwrap()
            .is_none());
        store.set_banned("alice", false).unwrap();
        store.delete_session(&token).unwrap();
        assert!(store.session(&token).unwrap().is_none());
    }
    }
}
