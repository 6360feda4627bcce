//! What a chat message may be and how fast one may be sent: pure rules, no I/O, so they are
//! tested alone and shared by every way a message arrives.

use serde::Deserialize;

use crate::channel_info::is_refused;

/// The longest message, in characters (Twitch allows 500).
pub const MAX_CHARS: usize = 500;
/// Messages one user may send in a burst…
pub const BURST: f64 = 5.0;
/// …and then one per this many milliseconds.
pub const REFILL_MS: f64 = 1000.0;

/// Why a message was refused; said to its sender only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Nothing but spaces.
    #[error("the message is empty")]
    Empty,
    /// Over [`MAX_CHARS`].
    #[error("the message is longer than {MAX_CHARS} characters")]
    TooLong,
    /// A control or text-direction character.
    #[error("the message contains a control or text-direction character")]
    BadCharacter,
}

/// A message as typed → the text stored and shown (trimmed), or why not.
pub fn check(body: &str) -> Result<String, TextError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(TextError::Empty);
    }
    if body.chars().count() > MAX_CHARS {
        return Err(TextError::TooLong);
    }
    if body.chars().any(is_refused) {
        return Err(TextError::BadCharacter);
    }
    Ok(body.to_string())
}

/// A token bucket: [`BURST`] messages at once, then one per [`REFILL_MS`].
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last_ms: i64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            tokens: BURST,
            last_ms: now_ms,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed / REFILL_MS).min(BURST);
        self.last_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a client may send, as JSON text frames.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Joining a private channel with a share link: its code (read from the page's fragment).
    Hello {
        /// The share link's code.
        share: String,
    },
    /// A message.
    Send {
        /// Its text.
        body: String,
    },
    /// A moderator deletes a message.
    Delete {
        /// Its id.
        id: i64,
    },
    /// A moderator times a user out.
    Timeout {
        /// Who.
        user: String,
        /// For how long (at most a week).
        seconds: u64,
    },
    /// A moderator bans a user from this chat.
    Ban {
        /// Who.
        user: String,
    },
    /// A moderator lifts a ban or a timeout.
    Unban {
        /// Who.
        user: String,
    },
}

/// The longest timeout.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_bounded_and_plain() {
        assert_eq!(check("  hi <b>there</b> ").unwrap(), "hi <b>there</b>");
        assert_eq!(check("   "), Err(TextError::Empty));
        assert_eq!(
            check(&"é".repeat(MAX_CHARS)).unwrap().chars().count(),
            MAX_CHARS
        );
        assert_eq!(check(&"a".repeat(MAX_CHARS + 1)), Err(TextError::TooLong));
        for bad in [
            "a\nb",
            "a\u{0}b",
            "a\u{202e}b",
            "\u{2066}x",
            "a\rb",
            "a\u{7f}",
        ] {
            assert_eq!(check(bad), Err(TextError::BadCharacter), "{bad:?}");
        }
    }

    #[test]
    fn a_burst_then_one_a_second() {
        let mut b = Bucket::new(0);
        assert!((0..5).all(|_| b.take(0)));
        assert!(!b.take(0));
        assert!(!b.take(500));
        assert!(b.take(1000));
        assert!(!b.take(1000));
        // A long pause refills only up to the burst.
        assert!((0..5).all(|_| b.take(1_000_000)));
        assert!(!b.take(1_000_000));
    }

    #[test]
    fn frames_are_parsed_strictly() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"send","body":"hi"}"#).unwrap();
        assert_eq!(f, ClientFrame::Send { body: "hi".into() });
        for bad in [
            r#"{"type":"send"}"#,
            r#"{"type":"send","body":"hi","x":1}"#,
            r#"{"type":"shout","body":"hi"}"#,
            r#"{"type":"delete","id":"1"}"#,
            r#"{"type":"timeout","user":"bob","seconds":-1}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
    }
}
