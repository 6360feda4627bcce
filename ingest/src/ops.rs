//! Operator and account actions that several front ends offer — the CLI, the admin and dashboard
//! pages, the API — decided in one place: what each does to the store, and what it does at once to
//! a publish this process holds (another process's drop watch picks it up from the store within a
//! second). Blocking: async callers run these on the blocking pool.

use boltstream_shared::username::Username;

use crate::live::Registry;
use crate::store::{Store, StoreError};

/// An admin action on a user or a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    /// The user may not publish or log in; a live publish ends.
    Ban,
    /// Lifts a ban.
    Unban,
    /// Makes the user an administrator.
    MakeAdmin,
    /// Takes administrator rights away.
    RevokeAdmin,
    /// Ends the user's live publish.
    StopStream,
}

impl AdminAction {
    /// The action of a URL's `<kind>/<name>/<action>` (`users/alice/ban`, `streams/alice/stop`).
    pub fn parse(kind: &str, action: &str) -> Option<Self> {
        Some(match (kind, action) {
            ("users", "ban") => Self::Ban,
            ("users", "unban") => Self::Unban,
            ("users", "admin") => Self::MakeAdmin,
            ("users", "unadmin") => Self::RevokeAdmin,
            ("streams", "stop") => Self::StopStream,
            _ => return None,
        })
    }
}

/// Why an action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such user (or not a valid username).
    #[error("no such user")]
    UnknownUser,
    /// Stopping a stream that is not live.
    #[error("{0} is not live")]
    NotLive(Username),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UnknownUser(_) => ActionError::UnknownUser,
            other => ActionError::Store(other),
        }
    }
}

/// Applies `action` to `name`; a publish held by `registry` (this process's, when there is one)
/// that the action ends is dropped at once.
pub fn admin(
    store: &Store,
    registry: Option<&Registry>,
    action: AdminAction,
    name: &str,
) -> Result<Username, ActionError> {
    let user = Username::parse(name).map_err(|_| ActionError::UnknownUser)?;
    match action {
        AdminAction::Ban => store.set_banned(user.as_str(), true)?,
        AdminAction::Unban => store.set_banned(user.as_str(), false)?,
        AdminAction::MakeAdmin => store.set_admin(user.as_str(), true)?,
        AdminAction::RevokeAdmin => store.set_admin(user.as_str(), false)?,
        AdminAction::StopStream => {
            if !store.request_stop(user.as_str())? {
                return Err(ActionError::NotLive(user));
            }
        }
    }
    if matches!(action, AdminAction::Ban | AdminAction::StopStream) {
        if let Some(stream) = registry.and_then(|r| r.get(&user)) {
            stream.cancel.cancel();
        }
    }
    Ok(user)
}

/// Replaces `name`'s stream key and returns the new one; a publish on the old key ends (the
/// store takes it offline; the registry drops it at once when this process holds it).
pub fn rotate_key(
    store: &Store,
    registry: Option<&Registry>,
    name: &str,
) -> Result<String, ActionError> {
    let user = Username::parse(name).map_err(|_| ActionError::UnknownUser)?;
    let key = store.rotate_key(user.as_str())?;
    if let Some(stream) = registry.and_then(|r| r.get(&user)) {
        stream.cancel.cancel();
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_reach_the_store_and_end_live_publishes() {
        let store = Store::open_in_memory().unwrap();
        let (_, key) = store.add_user("alice", false).unwrap();
        assert_eq!(AdminAction::parse("users", "ban"), Some(AdminAction::Ban));
        assert_eq!(AdminAction::parse("users", "explode"), None);
        assert!(matches!(
            admin(&store, None, AdminAction::StopStream, "alice"),
            Err(ActionError::NotLive(_))
        ));
        assert!(matches!(
            admin(&store, None, AdminAction::Ban, "nobody"),
            Err(ActionError::UnknownUser)
        ));
        let here = crate::store::testdb::node("here", 600_000);
        store
            .begin_publish(&key, &here)
            .unwrap()
            .accepted()
            .unwrap();
        admin(&store, None, AdminAction::StopStream, "ALICE").unwrap();
        admin(&store, None, AdminAction::Ban, "alice").unwrap();
        assert!(store.user("alice").unwrap().unwrap().banned);
        let new = rotate_key(&store, None, "alice").unwrap();
        assert_ne!(new, key);
    }
}
