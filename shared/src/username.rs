//! Public channel names. They appear in URLs, file paths and logs, so they are deliberately narrow:
//! `[a-z0-9_]{3,25}` after lowercasing, minus names that would shadow a route of the site.

use alloc::string::String;
use core::fmt;

/// Shortest allowed name.
pub const MIN_LEN: usize = 3;
/// Longest allowed name; shorter than a stream key, so no valid name is key-shaped.
pub const MAX_LEN: usize = 25;

/// Names that would collide with the site's own paths or read as official.
pub const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "api",
    "assets",
    "dashboard",
    "edge",
    "favicon_ico",
    "health",
    "hls",
    "internal",
    "live",
    "login",
    "logout",
    "metrics",
    "moderator",
    "private",
    "root",
    "rtmp",
    "settings",
    "signup",
    "static",
    "staff",
    "status",
    "support",
    "system",
    "thumb",
    "vod",
    "www",
];

/// A validated, lowercased username.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Username(String);

/// Why a name was refused; the CLI and the sign-up form show these to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernameError {
    /// Fewer than [`MIN_LEN`] or more than [`MAX_LEN`] characters.
    Length,
    /// A character outside `a-z`, `0-9` and `_`.
    Character,
    /// On the [`RESERVED`] list.
    Reserved,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => write!(f, "a username has {MIN_LEN} to {MAX_LEN} characters"),
            Self::Character => f.write_str("a username may only contain a-z, 0-9 and _"),
            Self::Reserved => f.write_str("that username is reserved"),
        }
    }
}

impl Username {
    /// Validates and lowercases `raw`.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.len() < MIN_LEN || raw.len() > MAX_LEN {
            return Err(UsernameError::Length);
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(UsernameError::Character);
        }
        let lower = raw.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            return Err(UsernameError::Reserved);
        }
        Ok(Self(lower))
    }

    /// The canonical (lowercase) name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_lowercases() {
        assert_eq!(Username::parse("Alice_01").unwrap().as_str(), "alice_01");
        assert_eq!(Username::parse("abc").unwrap().as_str(), "abc");
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(26)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al-ice"), Err(UsernameError::Character));
        assert_eq!(Username::parse("ålice"), Err(UsernameError::Character));
        assert_eq!(Username::parse("ADMIN"), Err(UsernameError::Reserved));
        assert_eq!(Username::parse("live"), Err(UsernameError::Reserved));
        assert_eq!(
            Username::parse(crate::cases::EXAMPLE_KEY),
            Err(UsernameError::Length)
        );
    }

    proptest! {
        #[test]
        fn no_valid_username_is_key_shaped(raw in "[A-Za-z0-9_]{1,30}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert!(!key::is_well_formed(name.as_str()));
                prop_assert!(!key::contains_key(name.as_str().as_bytes()));
            }
        }

        #[test]
        fn parse_never_panics(raw in ".*") {
            let _ = Username::parse(&raw);
        }
    }
}
