//! A channel's title and category: what viewers read of it before they press play, set by its
//! streamer from the dashboard, the API or the CLI, and kept across streams. One check for all
//! three, so no way in accepts what another refuses.

use serde::Serialize;

/// The longest title, in characters (Twitch allows 140).
pub const MAX_TITLE_CHARS: usize = 140;
/// The longest category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 40;

/// A checked title and category (either may be empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelInfo {
    /// What the stream is about.
    pub title: String,
    /// What kind of stream it is ("Just chatting", a game).
    pub category: String,
}

/// Why a title or category was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    /// Over [`MAX_TITLE_CHARS`].
    #[error("the title is longer than {MAX_TITLE_CHARS} characters")]
    TitleTooLong,
    /// Over [`MAX_CATEGORY_CHARS`].
    #[error("the category is longer than {MAX_CATEGORY_CHARS} characters")]
    CategoryTooLong,
    /// A control character (a line break, a tab, NUL) or one that changes the direction of the
    /// text around it (which would let a title disguise what follows it on a page).
    #[error("the {0} contains a control or text-direction character")]
    BadCharacter(&'static str),
}

impl ChannelInfo {
    /// Checks a title and a category as typed; surrounding spaces are dropped.
    pub fn new(title: &str, category: &str) -> Result<Self, InfoError> {
        let (title, category) = (title.trim(), category.trim());
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(InfoError::TitleTooLong);
        }
        if category.chars().count() > MAX_CATEGORY_CHARS {
            return Err(InfoError::CategoryTooLong);
        }
        if title.chars().any(is_refused) {
            return Err(InfoError::BadCharacter("title"));
        }
        if category.chars().any(is_refused) {
            return Err(InfoError::BadCharacter("category"));
        }
        Ok(Self {
            title: title.to_string(),
            category: category.to_string(),
        })
    }
}

/// Control characters, and the bidirectional formatting characters (embeddings, overrides,
/// isolates, marks) that reorder text on screen.
pub(crate) fn is_refused(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_bounded_and_free_of_control_and_direction_characters() {
        let ok = ChannelInfo::new("  Speedrun: any% <glitchless> 日本語 🎮 ", " Games ").unwrap();
        assert_eq!(ok.title, "Speedrun: any% <glitchless> 日本語 🎮");
        assert_eq!(ok.category, "Games");
        assert_eq!(ChannelInfo::new("", "").unwrap(), ChannelInfo::default());
        // Characters, not bytes: 140 multi-byte characters fit.
        assert!(ChannelInfo::new(&"é".repeat(140), "").is_ok());
        assert_eq!(
            ChannelInfo::new(&"a".repeat(141), ""),
            Err(InfoError::TitleTooLong)
        );
        assert_eq!(
            ChannelInfo::new("", &"a".repeat(41)),
            Err(InfoError::CategoryTooLong)
        );
        for bad in [
            "line\nbreak",
            "tab\there",
            "nul\0",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}x",
        ] {
            assert_eq!(
                ChannelInfo::new(bad, ""),
                Err(InfoError::BadCharacter("title")),
                "{bad:?}"
            );
        }
        for bad in ["abc\u{202E}gpj.exe", "\u{2066}x", "\u{200F}", "\u{061C}"] {
            assert_eq!(
                ChannelInfo::new("", bad),
                Err(InfoError::BadCharacter("category")),
                "{bad:?}"
            );
        }
    }
}
