//! Request path + query → [`Route`]. Both the origin (to pick a handler) and the edge (to rewrite,
//! refuse or pass) call [`classify`], so what is a live object, what is internal and what carries a
//! key is decided in exactly one place.
//!
//! The input is raw bytes because that is what arrives on the wire: invalid UTF-8, traversal and
//! encoded slashes are routes of their own ([`Route::Rejected`]), never a panic.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use percent_encoding::percent_decode;

use crate::key;
use crate::username::{self, Username};

/// Longest path + query that is classified at all; anything longer is [`Rejection::TooLong`].
pub const MAX_PATH_LEN: usize = 4096;
/// Longest segment file name (without extension) the origin ever serves.
pub const MAX_SEGMENT_NAME_LEN: usize = 64;
/// Decoding rounds when looking for hidden keys, so `%256c…` (double encoding) is seen too.
const KEY_DECODE_ROUNDS: usize = 3;

/// What a request is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The live media playlist of a channel.
    LivePlaylist {
        /// The channel.
        user: Username,
        /// Under `/live/` or `/private/`.
        access: Access,
        /// Low-latency blocking-reload directives from the query.
        directives: Directives,
    },
    /// One media file of a channel: an MPEG-TS segment, or a CMAF segment, part or init section.
    LiveSegment {
        /// The channel.
        user: Username,
        /// Under `/live/` or `/private/`.
        access: Access,
        /// The file name without extension, as the origin named it (`<n>`, `<n>.<part>`,
        /// `init<n>`).
        name: String,
        /// Which kind of file.
        kind: MediaKind,
    },
    /// The AES-128 key of a private channel's media (`/private/<user>/key/<id>.key`): served only
    /// to a holder of a playback token, never cached.
    MediaKey {
        /// The channel.
        user: Username,
        /// The key's id, as the playlist's EXT-X-KEY names it.
        id: u64,
    },
    /// A still picture of a public channel's live stream (`/thumb/<user>/<id>.jpg`), for the
    /// directory and the player's poster. A new picture gets a new id, so a URL never changes
    /// content and an edge may keep it for the policy's short lifetime.
    Thumbnail {
        /// The channel.
        user: Username,
        /// The picture's id, as the API names it.
        id: u64,
    },
    /// A past broadcast's VOD playlist (`/vod/<user>/<id>/index.m3u8`, or
    /// `/private/<user>/vod/<id>/index.m3u8` for one recorded encrypted), served once the
    /// recording is finished, so it never changes.
    VodPlaylist {
        /// The channel.
        user: Username,
        /// Under `/vod/` (recorded in the clear) or `/private/<user>/vod/` (encrypted).
        access: Access,
        /// The recording's id: the Unix ms its publish began (the channel page shows the date).
        id: u64,
    },
    /// A past broadcast's media file: `<n>.ts`, `<n>.m4s` or `init<n>.mp4`.
    VodSegment {
        /// The channel.
        user: Username,
        /// Under `/vod/` or `/private/<user>/vod/`.
        access: Access,
        /// The recording's id.
        id: u64,
        /// The file name without extension (`<n>` or `init<n>`).
        name: String,
        /// Which kind of file.
        kind: MediaKind,
    },
    /// An encrypted past broadcast's AES-128 key (`/private/<user>/vod/<id>/key/<key>.key`):
    /// like [`Route::MediaKey`], only for a playback token's holder, never cached.
    VodKey {
        /// The channel.
        user: Username,
        /// The recording's id.
        id: u64,
        /// The key's id, as the playlist's EXT-X-KEY names it.
        key: u64,
    },
    /// A past broadcast's picture (`/vod/<user>/<id>/thumb.jpg`): the last live thumbnail made of
    /// its publish (public channels' only: a private publish is never pictured).
    VodThumbnail {
        /// The channel.
        user: Username,
        /// The recording's id.
        id: u64,
    },
    /// Operator-only paths (`/internal/...`): health, metrics. Never served through an edge.
    Internal,
    /// A path segment or query value holds a well-formed stream key. Never answered with content.
    KeyBearing,
    /// Not a path a well-behaved client sends.
    Rejected(Rejection),
    /// Anything else (website, API, assets): passed through untouched by the edge.
    Other,
}

/// Who may fetch a channel's live objects, as the path says: the edge has no database, so a
/// private channel's media lives under its own prefix, where a playback token is required for
/// playlists and keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `/live/<user>/…`: anyone.
    Public,
    /// `/private/<user>/…`: playlists and keys need a token for the channel; segments are
    /// ciphertext and served to all.
    Private,
}

impl Access {
    fn prefix(self) -> &'static str {
        match self {
            Access::Public => "live",
            Access::Private => "private",
        }
    }
}

/// The kind of a live media file, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// `<n>.ts`: an MPEG-TS segment.
    Ts,
    /// `<n>.m4s` or `<n>.<part>.m4s`: a CMAF segment or part.
    Fmp4,
    /// `init<n>.mp4`: a CMAF init section.
    Init,
}

impl MediaKind {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MediaKind::Ts => "ts",
            MediaKind::Fmp4 => "m4s",
            MediaKind::Init => "mp4",
        }
    }
}

/// The blocking-reload directives of a low-latency playlist request (`_HLS_msn`, `_HLS_part`,
/// `_HLS_skip`). They are part of the object's cache key, always in this order and spelling, so
/// two spellings of one request are one object at the edge; any other query is dropped, so a
/// random parameter cannot split the cache or reach the origin. A value that is not a number (or
/// `YES`/`v2` for skip) is dropped too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`: hold until this media sequence number is in the playlist.
    pub msn: Option<u64>,
    /// `_HLS_part`: and this part of it.
    pub part: Option<u64>,
    /// `_HLS_skip`: a delta update is acceptable.
    pub skip: Option<Skip>,
}

/// `_HLS_skip`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `YES`: skip old media segments.
    Yes,
    /// `v2`: also skip old date-range tags.
    V2,
}

impl Directives {
    /// Reads the directives from a decoded query string.
    fn parse(query: &str) -> Self {
        let mut d = Directives::default();
        let number = |v: &str| {
            (!v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse().ok())
                .flatten()
        };
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_HLS_msn" if d.msn.is_none() => d.msn = number(value),
                "_HLS_part" if d.part.is_none() => d.part = number(value),
                "_HLS_skip" if d.skip.is_none() => {
                    d.skip = match value {
                        "YES" => Some(Skip::Yes),
                        "v2" => Some(Skip::V2),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        d
    }

    /// True when no directive is present.
    pub fn is_empty(&self) -> bool {
        *self == Directives::default()
    }

    /// The query in its one canonical form (empty when no directive is present).
    fn query(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, value: &dyn core::fmt::Display| {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(&format!("{name}={value}"));
        };
        if let Some(msn) = self.msn {
            put("_HLS_msn", &msn);
        }
        if let Some(part) = self.part {
            put("_HLS_part", &part);
        }
        match self.skip {
            Some(Skip::Yes) => put("_HLS_skip", &"YES"),
            Some(Skip::V2) => put("_HLS_skip", &"v2"),
            None => {}
        }
        out
    }
}

/// Why a path was rejected outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A `.` or `..` segment, or a backslash.
    Traversal,
    /// `%2F` or `%5C`: a slash hidden from path-based rules.
    EncodedSlash,
    /// Bytes that are not UTF-8 after percent-decoding.
    InvalidUtf8,
    /// Longer than [`MAX_PATH_LEN`].
    TooLong,
    /// Does not start with `/`, or holds control characters.
    Malformed,
}

impl Route {
    /// The one path under which this object is cached and served; `None` for non-live routes.
    pub fn canonical_path(&self) -> Option<String> {
        match self {
            Route::LivePlaylist {
                user,
                access,
                directives,
            } => Some(format!(
                "/{}/{user}/index.m3u8{}",
                access.prefix(),
                directives.query()
            )),
            Route::LiveSegment {
                user,
                access,
                name,
                kind,
            } => Some(format!(
                "/{}/{user}/{name}.{}",
                access.prefix(),
                kind.extension()
            )),
            Route::MediaKey { user, id } => Some(format!("/private/{user}/key/{id}.key")),
            Route::Thumbnail { user, id } => Some(format!("/thumb/{user}/{id}.jpg")),
            Route::VodPlaylist { user, access, id } => {
                Some(format!("{}/index.m3u8", vod_prefix(user, *access, *id)))
            }
            Route::VodThumbnail { user, id } => Some(format!("/vod/{user}/{id}/thumb.jpg")),
            Route::VodSegment {
                user,
                access,
                id,
                name,
                kind,
            } => Some(format!(
                "{}/{name}.{}",
                vod_prefix(user, *access, *id),
                kind.extension()
            )),
            Route::VodKey { user, id, key } => Some(format!(
                "{}/key/{key}.key",
                vod_prefix(user, Access::Private, *id)
            )),
            _ => None,
        }
    }

    /// True for routes that carry live media or its pictures (and so get the shared header
    /// policy, at the origin and again at the edge).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Route::LivePlaylist { .. }
                | Route::LiveSegment { .. }
                | Route::MediaKey { .. }
                | Route::Thumbnail { .. }
                | Route::VodPlaylist { .. }
                | Route::VodSegment { .. }
                | Route::VodKey { .. }
                | Route::VodThumbnail { .. }
        )
    }

    /// The path prefix a playback token must grant for this route, when it needs one: a private
    /// channel's playlists and keys, live or past. Its segments need none — they are ciphertext,
    /// and one cached copy serves every viewer.
    pub fn token_scope(&self) -> Option<String> {
        match self {
            Route::LivePlaylist {
                user,
                access: Access::Private,
                ..
            }
            | Route::VodPlaylist {
                user,
                access: Access::Private,
                ..
            }
            | Route::MediaKey { user, .. }
            | Route::VodKey { user, .. } => Some(crate::token::scope(user.as_str())),
            _ => None,
        }
    }

    /// True for a private channel's media segments, live or past (whose requests lose their
    /// cookies at the edge).
    pub fn is_private_media(&self) -> bool {
        matches!(
            self,
            Route::LiveSegment {
                access: Access::Private,
                ..
            } | Route::VodSegment {
                access: Access::Private,
                ..
            }
        )
    }

    /// True for an AES-128 key, live or past: served only to a token holder, never cached, never
    /// readable by another origin.
    pub fn is_key(&self) -> bool {
        matches!(self, Route::MediaKey { .. } | Route::VodKey { .. })
    }

    /// A short label for logs and metrics: never the path itself, which may hold a secret.
    pub fn label(&self) -> &'static str {
        match self {
            Route::LivePlaylist { .. } => "live_playlist",
            Route::LiveSegment { .. } => "live_segment",
            Route::MediaKey { .. } => "media_key",
            Route::Thumbnail { .. } => "thumbnail",
            Route::VodPlaylist { .. } => "vod_playlist",
            Route::VodSegment { .. } => "vod_segment",
            Route::VodKey { .. } => "vod_key",
            Route::VodThumbnail { .. } => "vod_thumbnail",
            Route::Internal => "internal",
            Route::KeyBearing => "key_bearing",
            Route::Rejected(_) => "rejected",
            Route::Other => "other",
        }
    }
}

/// True when `target` is already the canonical path of a public live object or thumbnail — exactly what
/// [`Route::canonical_path`] of [`classify`]`(target)` returns — decided without allocating. The
/// edge asks this first: nearly every request a player sends is canonical, and the filter's cost
/// per request is what an edge multiplies by its request rate.
pub fn is_canonical_live(target: &[u8]) -> bool {
    if target.contains(&b'?') {
        // Only blocking playlist requests carry a canonical query; they are rarer than media
        // fetches, and their form has more to check, so they take the full path.
        return match classify(target) {
            route @ Route::LivePlaylist { .. } => route
                .canonical_path()
                .is_some_and(|c| c.as_bytes() == target),
            _ => false,
        };
    }
    let (rest, thumbnail) = match (
        target.strip_prefix(b"/live/"),
        target.strip_prefix(b"/thumb/"),
    ) {
        (Some(rest), _) => (rest, false),
        (None, Some(rest)) => (rest, true),
        (None, None) => return false,
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (user, file) = (&rest[..slash], &rest[slash + 1..]);
    let user_ok = (username::MIN_LEN..=username::MAX_LEN).contains(&user.len())
        && user
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !username::RESERVED.iter().any(|r| r.as_bytes() == user);
    let named = |ext: &[u8], rule: fn(&str) -> bool| {
        file.strip_suffix(ext)
            .and_then(|name| core::str::from_utf8(name).ok())
            .is_some_and(rule)
    };
    let file_ok = if thumbnail {
        named(b".jpg", |n| decimal_id(n, "").is_some())
    } else {
        file == b"index.m3u8"
            || named(b".ts", is_segment_name)
            || named(b".m4s", is_cmaf_name)
            || named(b".mp4", |n| n.starts_with("init") && is_init_name(n))
    };
    user_ok && file_ok && !key::contains_key(target)
}

/// Classifies a request target (`:path`, i.e. path and optional query).
pub fn classify(target: &[u8]) -> Route {
    if carries_key(target) {
        return Route::KeyBearing;
    }
    if target.len() > MAX_PATH_LEN {
        return Route::Rejected(Rejection::TooLong);
    }
    let (raw_path, raw_query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[][..]),
    };
    if raw_path.first() != Some(&b'/') {
        return Route::Rejected(Rejection::Malformed);
    }
    if contains_encoded_slash(raw_path) {
        return Route::Rejected(Rejection::EncodedSlash);
    }
    let path: Cow<'_, [u8]> = percent_decode(raw_path).into();
    let Ok(path) = core::str::from_utf8(&path) else {
        return Route::Rejected(Rejection::InvalidUtf8);
    };
    let query: Cow<'_, [u8]> = percent_decode(raw_query).into();
    if core::str::from_utf8(&query).is_err() {
        return Route::Rejected(Rejection::InvalidUtf8);
    }
    if path.chars().any(char::is_control) {
        return Route::Rejected(Rejection::Malformed);
    }
    if path.contains('\\') {
        return Route::Rejected(Rejection::Traversal);
    }
    let segments = segments(path);
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Route::Rejected(Rejection::Traversal);
    }
    match classify_segments(&segments) {
        Route::LivePlaylist { user, access, .. } => Route::LivePlaylist {
            user,
            access,
            directives: Directives::parse(core::str::from_utf8(&query).unwrap_or_default()),
        },
        route => route,
    }
}

/// Where a recording's files are: `/vod/<user>/<id>` in the clear, `/private/<user>/vod/<id>`
/// encrypted — under the channel's private prefix, so the playback cookie (scoped to it) is sent
/// and the edge's token rule covers it with no rule of its own.
fn vod_prefix(user: &Username, access: Access, id: u64) -> String {
    match access {
        Access::Public => format!("/vod/{user}/{id}"),
        Access::Private => format!("/private/{user}/vod/{id}"),
    }
}

/// `<user>/<id>/<file>` under `/vod/` (or `<id>/<file>` under `/private/<user>/vod/`): only names
/// a recording holds (whole segments, init sections, the playlist, and an encrypted one's keys),
/// so no other file of its directory can be asked for.
fn classify_vod(user: &str, access: Access, rest: &[&str]) -> Route {
    let (Ok(user), Some((id, rest))) = (Username::parse(user), rest.split_first()) else {
        return Route::Other;
    };
    let Some(id) = decimal_id(id, "") else {
        return Route::Other;
    };
    let file = match (rest, access) {
        ([file], _) => *file,
        (["key", file], Access::Private) => {
            return match decimal_id(file, ".key") {
                Some(key) => Route::VodKey { user, id, key },
                None => Route::Other,
            };
        }
        _ => return Route::Other,
    };
    if file.eq_ignore_ascii_case("index.m3u8") {
        return Route::VodPlaylist { user, access, id };
    }
    if file.eq_ignore_ascii_case("thumb.jpg") {
        return match access {
            Access::Public => Route::VodThumbnail { user, id },
            Access::Private => Route::Other,
        };
    }
    let found = [(".ts", MediaKind::Ts), (".m4s", MediaKind::Fmp4)]
        .into_iter()
        .find_map(|(ext, kind)| decimal_id(file, ext).map(|n| (format!("{n}"), kind)))
        .or_else(|| {
            let init = strip_suffix_ignore_case(file, ".mp4")?;
            let n = decimal_id(init.get(4..)?, "")
                .filter(|_| init[..4].eq_ignore_ascii_case("init"))?;
            Some((format!("init{n}"), MediaKind::Init))
        });
    match found {
        Some((name, kind)) => Route::VodSegment {
            user,
            access,
            id,
            name,
            kind,
        },
        None => Route::Other,
    }
}

/// The number in a file name `<digits><extension>` (at most 19 digits, so it fits a `u64`).
fn decimal_id(file: &str, extension: &str) -> Option<u64> {
    strip_suffix_ignore_case(file, extension)
        .filter(|n| !n.is_empty() && n.len() <= 19 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// A decoded path's segments with empty ones dropped: `//internal`, `/live//alice/` and
/// `/internal` are one path to every rule here, whether or not the proxy in front merges slashes.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The path of `target` as the rules see it — percent-decoded, empty segments dropped, no query —
/// for prefix rules outside [`classify`] (the edge's blocked prefixes, the origin's website
/// routes), so `//admin` and `/%61dmin` meet the rule for `/admin`. `None` for a target
/// [`classify`] rejects or that carries a key.
pub fn normalized_path(target: &[u8]) -> Option<String> {
    if matches!(classify(target), Route::Rejected(_) | Route::KeyBearing) {
        return None;
    }
    let raw_path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let decoded: Cow<'_, [u8]> = percent_decode(raw_path).into();
    let path = core::str::from_utf8(&decoded).ok()?;
    let mut out = String::with_capacity(path.len());
    for segment in segments(path) {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// True when `target`'s [normalized path](normalized_path) starts with `prefix` (ASCII case
/// ignored). A target that cannot be normalised is under every prefix: it is refused anyway.
pub fn is_under_prefix(target: &[u8], prefix: &str) -> bool {
    is_under_any_prefix(target, &[prefix])
}

/// [`is_under_prefix`] for several prefixes, normalising `target` once.
pub fn is_under_any_prefix<P: AsRef<str>>(target: &[u8], prefixes: &[P]) -> bool {
    let Some(path) = normalized_path(target) else {
        return !prefixes.is_empty();
    };
    prefixes.iter().any(|prefix| {
        let prefix = prefix.as_ref().as_bytes();
        path.len() >= prefix.len() && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

fn classify_segments(segments: &[&str]) -> Route {
    let Some(first) = segments.first() else {
        return Route::Other;
    };
    if first.eq_ignore_ascii_case("internal") {
        return Route::Internal;
    }
    if first.eq_ignore_ascii_case("vod") {
        return match segments[1..].split_first() {
            Some((user, rest)) => classify_vod(user, Access::Public, rest),
            None => Route::Other,
        };
    }
    if first.eq_ignore_ascii_case("thumb") {
        return match segments[1..] {
            [user, file] => match (Username::parse(user), decimal_id(file, ".jpg")) {
                (Ok(user), Some(id)) => Route::Thumbnail { user, id },
                _ => Route::Other,
            },
            _ => Route::Other,
        };
    }
    let access = if first.eq_ignore_ascii_case("live") {
        Access::Public
    } else if first.eq_ignore_ascii_case("private") {
        Access::Private
    } else {
        return Route::Other;
    };
    match segments[1..] {
        [alias] if access == Access::Public => {
            match strip_suffix_ignore_case(alias, ".m3u8").map(Username::parse) {
                Some(Ok(user)) => Route::LivePlaylist {
                    user,
                    access,
                    directives: Directives::default(),
                },
                _ => Route::Other,
            }
        }
        [user, vod, ref rest @ ..]
            if access == Access::Private && vod.eq_ignore_ascii_case("vod") && !rest.is_empty() =>
        {
            classify_vod(user, access, rest)
        }
        [user, "key", file] if access == Access::Private => {
            match (Username::parse(user), decimal_id(file, ".key")) {
                (Ok(user), Some(id)) => Route::MediaKey { user, id },
                _ => Route::Other,
            }
        }
        [user, file] => classify_live_file(user, access, file),
        _ => Route::Other,
    }
}

/// `<user>/<file>` under `/live/` or `/private/`: the playlist or a media file the origin names.
fn classify_live_file(user: &str, access: Access, file: &str) -> Route {
    let Ok(user) = Username::parse(user) else {
        return Route::Other;
    };
    if file.eq_ignore_ascii_case("index.m3u8") {
        return Route::LivePlaylist {
            user,
            access,
            directives: Directives::default(),
        };
    }
    let kinds: [(&str, NameRule, MediaKind); 3] = [
        (".ts", is_segment_name, MediaKind::Ts),
        (".m4s", is_cmaf_name, MediaKind::Fmp4),
        (".mp4", is_init_name, MediaKind::Init),
    ];
    let found = kinds.into_iter().find_map(|(ext, rule, kind)| {
        strip_suffix_ignore_case(file, ext)
            .filter(|name| rule(name))
            .map(|name| (name, kind))
    });
    match found {
        Some((name, kind)) => Route::LiveSegment {
            user,
            access,
            // TS names are served as spelled; CMAF names are digits (and `init`).
            name: match kind {
                MediaKind::Ts => String::from(name),
                _ => name.to_ascii_lowercase(),
            },
            kind,
        },
        _ => Route::Other,
    }
}

/// Whether a file name (without its extension) is one the origin gives.
type NameRule = fn(&str) -> bool;

/// `<n>` or `<n>.<part>`: the CMAF names the origin gives segments and parts (digits only).
fn is_cmaf_name(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    name.len() <= MAX_SEGMENT_NAME_LEN
        && match name.split_once('.') {
            Some((segment, part)) => digits(segment) && digits(part),
            None => digits(name),
        }
}

/// `init<n>`.
fn is_init_name(name: &str) -> bool {
    name.len() <= MAX_SEGMENT_NAME_LEN
        && strip_prefix_ignore_case(name, "init")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn is_segment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SEGMENT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let split = s.len().checked_sub(suffix.len())?;
    if !s.is_char_boundary(split) {
        return None;
    }
    let (head, tail) = s.split_at(split);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

fn contains_encoded_slash(raw: &[u8]) -> bool {
    raw.windows(3).any(|w| {
        w[0] == b'%'
            && (w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f')
                || w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c'))
    })
}

/// True when the target, raw or after up to three rounds of percent-decoding, holds a key.
fn carries_key(target: &[u8]) -> bool {
    let mut current: Cow<'_, [u8]> = Cow::Borrowed(target);
    for _ in 0..KEY_DECODE_ROUNDS {
        if key::contains_key(&current) {
            return true;
        }
        if !current.contains(&b'%') {
            return false;
        }
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded.len() == current.len() {
            return false;
        }
        current = Cow::Owned(decoded);
    }
    key::contains_key(&current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{Expect, ROUTE_CASES};
    use proptest::prelude::*;

    #[test]
    fn shared_case_table() {
        for case in ROUTE_CASES {
            let route = classify(case.input);
            let ok = match (&case.expect, &route) {
                (Expect::Playlist(c), Route::LivePlaylist { .. })
                | (Expect::Segment(c), Route::LiveSegment { .. })
                | (Expect::Key(c), Route::MediaKey { .. } | Route::VodKey { .. })
                | (Expect::Thumbnail(c), Route::Thumbnail { .. })
                | (
                    Expect::Vod(c),
                    Route::VodPlaylist { .. }
                    | Route::VodSegment { .. }
                    | Route::VodThumbnail { .. },
                ) => route.canonical_path().as_deref() == Some(*c),
                (Expect::Internal, Route::Internal)
                | (Expect::KeyBearing, Route::KeyBearing)
                | (Expect::Rejected, Route::Rejected(_))
                | (Expect::Other, Route::Other) => true,
                _ => false,
            };
            assert!(
                ok,
                "{:?}: expected {:?}, got {:?}",
                String::from_utf8_lossy(case.input),
                case.expect,
                route
            );
        }
    }

    #[test]
    fn empty_segments_do_not_hide_a_path_from_prefix_rules() {
        assert_eq!(
            normalized_path(b"//admin//users/?x=1").as_deref(),
            Some("/admin/users")
        );
        assert_eq!(normalized_path(b"/%61dmin").as_deref(), Some("/admin"));
        assert_eq!(normalized_path(b"//").as_deref(), Some("/"));
        assert_eq!(normalized_path(b"/a/../b"), None);
        for target in [
            &b"/admin"[..],
            b"//admin",
            b"///ADMIN/x",
            b"/%61dmin",
            b"/admin/",
        ] {
            assert!(is_under_prefix(target, "/admin"), "{target:?}");
        }
        assert!(!is_under_prefix(b"/dashboard", "/admin"));
        assert!(!is_under_prefix(b"/ad/min", "/admin"));
    }

    #[test]
    fn labels_never_hold_the_path() {
        let route = classify(alloc::format!("/x/{}", crate::cases::EXAMPLE_KEY).as_bytes());
        assert_eq!(route.label(), "key_bearing");
    }

    #[test]
    fn fast_path_matches_the_case_table() {
        for case in ROUTE_CASES {
            // Private objects never take the fast path: their playlists and keys need a token.
            let canonical = classify(case.input).canonical_path().is_some_and(|c| {
                c.as_bytes() == case.input && (c.starts_with("/live/") || c.starts_with("/thumb/"))
            });
            assert_eq!(is_canonical_live(case.input), canonical, "{:?}", case.input);
        }
        // A segment named like a key is key-bearing, never canonical.
        let keyed = format!("/live/alice/{}.ts", crate::cases::EXAMPLE_KEY);
        assert!(!is_canonical_live(keyed.as_bytes()));
        assert!(!is_canonical_live(b"/live/admin/index.m3u8"));
    }

    proptest! {
        #[test]
        fn the_canonical_fast_path_agrees_with_classify(
            raw in "[a-zA-Z0-9_./%?-]{0,70}|.{0,70}",
            thumb in any::<bool>(),
        ) {
            let mut target = if thumb { b"/thumb/".to_vec() } else { b"/live/".to_vec() };
            target.extend_from_slice(raw.as_bytes());
            if is_canonical_live(&target) {
                let route = classify(&target);
                let canonical = route.canonical_path();
            prop_assert_eq!(canonical.as_deref().map(str::as_bytes), Some(&target[..]));
            }
        }

        #[test]
        fn canonical_live_paths_take_the_fast_path(
            user in "[a-z0-9_]{3,25}",
            name in "[A-Za-z0-9_-]{1,64}",
            playlist in any::<bool>(),
        ) {
            let path = if playlist {
                format!("/live/{user}/index.m3u8")
            } else {
                format!("/live/{user}/{name}.ts")
            };
            let route = classify(path.as_bytes());
            let canonical = route.canonical_path().is_some_and(|c| c == path);
            prop_assert_eq!(is_canonical_live(path.as_bytes()), canonical, "{}", path);
        }
    }

    proptest! {
        #[test]
        fn classification_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = classify(&bytes);
        }

        #[test]
        fn classification_never_panics_on_pathlike_input(s in "(/|live|LIVE|internal|[a-zA-Z0-9_]{1,30}|\\.|%2[fF]|%[0-9a-fA-F]{2}|index\\.m3u8|\\.ts|\\?|=|&)*") {
            let _ = classify(s.as_bytes());
        }

        #[test]
        fn canonicalisation_is_idempotent(
            user in "[a-zA-Z0-9_]{3,25}",
            seg in "[a-zA-Z0-9_-]{1,64}",
            shape in 0..3u8,
        ) {
            let target = match shape {
                0 => alloc::format!("/LIVE/{user}.M3U8"),
                1 => alloc::format!("/live/{user}/Index.m3u8"),
                _ => alloc::format!("/Live/{user}/{seg}.TS"),
            };
            let route = classify(target.as_bytes());
            if let Some(canonical) = route.canonical_path() {
                let again = classify(canonical.as_bytes());
                prop_assert_eq!(&again, &route);
                prop_assert_eq!(again.canonical_path(), Some(canonical));
            }
        }
    }
}
