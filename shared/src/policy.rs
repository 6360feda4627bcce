//! Response header policy for live media. The origin applies it so it is right even without an
//! edge; the edge applies it again, overriding the origin, because the edge owns the CDN policy.

use alloc::format;
use alloc::string::String;
use core::fmt;

use crate::route::{MediaKind, Route};

/// Segments never change under a name (names are never reused), so they are cacheable forever.
pub const SEGMENT_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Errors on live routes must not be cached: a 404 for a segment not yet written would stick.
pub const ERROR_CACHE_CONTROL: &str = "no-store";
/// Media type of HLS playlists (RFC 8216 §4).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Media type of MPEG-TS segments.
pub const SEGMENT_CONTENT_TYPE: &str = "video/mp2t";
/// Media type of CMAF segments, parts and init sections.
pub const CMAF_CONTENT_TYPE: &str = "video/mp4";
/// A blocking playlist response stays a right answer to its request (it holds the segment or part
/// asked for) however old it is, so an edge may keep serving it to every viewer who asks the same;
/// a minute, as OvenMediaEngine does.
pub const BLOCKING_PLAYLIST_CACHE_CONTROL: &str = "public, max-age=60";
/// A media key goes only to the viewer whose token fetched it: no shared cache may keep it, and
/// no browser cache either (a revoked viewer must ask again).
pub const KEY_CACHE_CONTROL: &str = "private, no-store";
/// Media type of an AES-128 media key (16 raw bytes).
pub const KEY_CONTENT_TYPE: &str = "application/octet-stream";
/// A thumbnail's URL names one picture, but a channel that turns private or ends should not stay
/// pictured at the edge for long: a minute, about two thumbnail intervals at most.
pub const THUMBNAIL_CACHE_CONTROL: &str = "public, max-age=60";
/// A past broadcast's playlist is served only once finished, so it never changes; it may go
/// (the streamer deletes it, retention expires it), and five minutes bounds how long an edge
/// keeps offering a deleted one.
pub const VOD_PLAYLIST_CACHE_CONTROL: &str = "public, max-age=300";
/// A past broadcast's media never changes under its name; a day bounds how long an edge keeps a
/// deleted recording's files.
pub const VOD_SEGMENT_CACHE_CONTROL: &str = "public, max-age=86400, immutable";
/// Media type of a thumbnail.
pub const THUMBNAIL_CONTENT_TYPE: &str = "image/jpeg";
/// HLS players on other origins (hls.js) fetch with XHR/fetch, so live media is shared with all.
pub const CORS_ALLOW_ORIGIN: (&str, &str) = ("access-control-allow-origin", "*");
/// Lets a cross-origin player read `Age`: hls.js uses it to tune in to a playlist an edge cache
/// served a moment after it was made.
pub const CORS_EXPOSE_HEADERS: (&str, &str) = ("access-control-expose-headers", "Age");
const CORS_HEADERS: [(&str, &str); 2] = [CORS_ALLOW_ORIGIN, CORS_EXPOSE_HEADERS];
/// Default playlist freshness: a live playlist changes every target duration (2 s).
pub const DEFAULT_PLAYLIST_MAX_AGE: u32 = 1;
/// Longest playlist max-age accepted: more would make viewers fall a segment behind.
pub const MAX_PLAYLIST_MAX_AGE: u32 = 10;
/// Headers that describe the origin node and must not leave it on live routes.
pub const ORIGIN_ONLY_HEADERS: &[&str] = &["server", "set-cookie", "x-boltstream-node"];

/// The configurable part of the policy, with its header strings built once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    playlist_cache_control: String,
}

/// A policy setting outside its allowed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The refused max-age.
    pub playlist_max_age: u32,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "playlist max-age {} is out of range 0..={MAX_PLAYLIST_MAX_AGE}",
            self.playlist_max_age
        )
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::with_playlist_max_age(DEFAULT_PLAYLIST_MAX_AGE).expect("default is in range")
    }
}

impl Policy {
    /// A policy whose live playlists may be cached `seconds` long.
    pub fn with_playlist_max_age(seconds: u32) -> Result<Self, PolicyError> {
        if seconds > MAX_PLAYLIST_MAX_AGE {
            return Err(PolicyError {
                playlist_max_age: seconds,
            });
        }
        Ok(Self {
            playlist_cache_control: format!("public, max-age={seconds}"),
        })
    }

    /// `Cache-Control` for a live route answered with `status`; `None` for routes the policy does
    /// not own (the website, the API), whose handlers decide.
    pub fn cache_control(&self, route: &Route, status: u16) -> Option<&str> {
        let success = matches!(status, 200 | 206 | 304);
        match route {
            Route::MediaKey { .. } | Route::VodKey { .. } => Some(KEY_CACHE_CONTROL),
            Route::LiveSegment { .. } if success => Some(SEGMENT_CACHE_CONTROL),
            Route::Thumbnail { .. } if success => Some(THUMBNAIL_CACHE_CONTROL),
            Route::VodPlaylist { .. } if success => Some(VOD_PLAYLIST_CACHE_CONTROL),
            Route::VodSegment { .. } | Route::VodThumbnail { .. } if success => {
                Some(VOD_SEGMENT_CACHE_CONTROL)
            }
            Route::LivePlaylist { directives, .. } if success && status != 206 => {
                // Only `_HLS_msn` makes a request blocking; `_HLS_skip` alone asks for the
                // current playlist (as a delta), which goes stale as fast as the full one.
                if directives.msn.is_some() {
                    Some(BLOCKING_PLAYLIST_CACHE_CONTROL)
                } else {
                    Some(&self.playlist_cache_control)
                }
            }
            Route::LiveSegment { .. }
            | Route::LivePlaylist { .. }
            | Route::Thumbnail { .. }
            | Route::VodPlaylist { .. }
            | Route::VodSegment { .. }
            | Route::VodThumbnail { .. } => Some(ERROR_CACHE_CONTROL),
            _ => None,
        }
    }

    /// `Content-Type` for a live route's body; `None` on errors (their body is plain text).
    pub fn content_type(&self, route: &Route, status: u16) -> Option<&'static str> {
        if !matches!(status, 200 | 206 | 304) {
            return None;
        }
        match route {
            Route::LivePlaylist { .. } | Route::VodPlaylist { .. } => Some(PLAYLIST_CONTENT_TYPE),
            Route::LiveSegment {
                kind: MediaKind::Ts,
                ..
            }
            | Route::VodSegment {
                kind: MediaKind::Ts,
                ..
            } => Some(SEGMENT_CONTENT_TYPE),
            Route::LiveSegment { .. } | Route::VodSegment { .. } => Some(CMAF_CONTENT_TYPE),
            Route::MediaKey { .. } | Route::VodKey { .. } => Some(KEY_CONTENT_TYPE),
            Route::Thumbnail { .. } | Route::VodThumbnail { .. } => Some(THUMBNAIL_CONTENT_TYPE),
            _ => None,
        }
    }

    /// The CORS headers for a route, on every status so players can read errors too.
    pub fn cors(&self, route: &Route) -> &'static [(&'static str, &'static str)] {
        // Keys are fetched with the page's own cookie; no other origin has a reason to read one.
        if route.is_live() && !route.is_key() {
            &CORS_HEADERS
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::POLICY_CASES;
    use crate::route::classify;

    #[test]
    fn shared_policy_table() {
        let policy = Policy::default();
        for case in POLICY_CASES {
            let route = classify(case.path.as_bytes());
            assert_eq!(
                policy.cache_control(&route, case.status),
                case.cache_control,
                "{case:?}"
            );
            assert_eq!(
                policy.content_type(&route, case.status),
                case.content_type,
                "{case:?}"
            );
            assert_eq!(!policy.cors(&route).is_empty(), case.cors, "{case:?}");
        }
    }

    #[test]
    fn playlist_max_age_is_configurable_and_bounded() {
        let route = classify(b"/live/alice/index.m3u8");
        let policy = Policy::with_playlist_max_age(3).unwrap();
        assert_eq!(policy.cache_control(&route, 200), Some("public, max-age=3"));
        assert_eq!(
            Policy::with_playlist_max_age(11),
            Err(PolicyError {
                playlist_max_age: 11
            })
        );
    }
}
