//! The route and header-policy cases every implementation must agree on. The shared crate's unit
//! tests run them natively; the end-to-end filter tests run the very same table through the compiled
//! `.wasm` in a wasm host, so the edge cannot drift from the origin.

/// A fixed, well-formed (but never issued) key, for building key-bearing cases.
#[macro_export]
macro_rules! example_key {
    () => {
        "live_kmMvnFgYLLpJmTL4pZiB0U0YojB9R4BD08LZSi"
    };
}

/// [`example_key!`] as a constant.
pub const EXAMPLE_KEY: &str = example_key!();

/// What a request target must classify as; live variants carry the canonical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A live playlist, canonically at this path.
    Playlist(&'static str),
    /// A live segment, canonically at this path.
    Segment(&'static str),
    /// A private channel's media key (live or of a past broadcast), canonically at this path.
    Key(&'static str),
    /// A channel's live thumbnail, canonically at this path.
    Thumbnail(&'static str),
    /// A past broadcast's playlist or media file, canonically at this path.
    Vod(&'static str),
    /// `/internal/...`.
    Internal,
    /// Holds a stream key.
    KeyBearing,
    /// Traversal, encoded slash, invalid UTF-8, too long, malformed.
    Rejected,
    /// Anything else.
    Other,
}

/// One request target and its expected route.
#[derive(Clone, Copy, Debug)]
pub struct RouteCase {
    /// The raw `:path` (path and query), bytes because some cases are not UTF-8.
    pub input: &'static [u8],
    /// The expected route.
    pub expect: Expect,
}

const fn case(input: &'static str, expect: Expect) -> RouteCase {
    RouteCase {
        input: input.as_bytes(),
        expect,
    }
}

/// The route table.
pub const ROUTE_CASES: &[RouteCase] = &[
    case(
        "/live/alice/index.m3u8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/live/alice.m3u8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/live/ALICE.M3U8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/LIVE/Alice/INDEX.m3u8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/live/alice/index.m3u8?_HLS_msn=3",
        Expect::Playlist("/live/alice/index.m3u8?_HLS_msn=3"),
    ),
    // Blocking-reload directives are the cache key, in one order; anything else is dropped.
    case(
        "/live/Alice.m3u8?x=1&_HLS_part=2&_HLS_skip=YES&_HLS_msn=7&_HLS_msn=9",
        Expect::Playlist("/live/alice/index.m3u8?_HLS_msn=7&_HLS_part=2&_HLS_skip=YES"),
    ),
    case(
        "/live/alice/index.m3u8?_HLS_msn=abc&_HLS_skip=no&cb=123",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/live/alice/index.m3u8?_HLS_skip=v2",
        Expect::Playlist("/live/alice/index.m3u8?_HLS_skip=v2"),
    ),
    // CMAF segments, parts and init sections.
    case(
        "/live/alice/1700000000000.m4s",
        Expect::Segment("/live/alice/1700000000000.m4s"),
    ),
    case(
        "/live/Alice/1700000000000.3.M4S",
        Expect::Segment("/live/alice/1700000000000.3.m4s"),
    ),
    case(
        "/live/alice/INIT1700000000000.mp4",
        Expect::Segment("/live/alice/init1700000000000.mp4"),
    ),
    case("/live/alice/abc.m4s", Expect::Other),
    case("/live/alice/1.2.3.m4s", Expect::Other),
    case("/live/alice/init.mp4", Expect::Other),
    case("/live/alice/1.mp4", Expect::Other),
    case(
        "/live/%61lice/index.m3u8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "/live/alice/1764140000123.ts",
        Expect::Segment("/live/alice/1764140000123.ts"),
    ),
    case(
        "/live/Alice/seg_01-a.TS",
        Expect::Segment("/live/alice/seg_01-a.ts"),
    ),
    case("/live/alice/1.m4s", Expect::Segment("/live/alice/1.m4s")),
    case("/live/alice/a.b.ts", Expect::Other),
    case("/live/alice/.ts", Expect::Other),
    case("/live/al/index.m3u8", Expect::Other),
    case("/live/admin/index.m3u8", Expect::Other),
    case("/live/alice/x/index.m3u8", Expect::Other),
    case("/live/alice", Expect::Other),
    case("/live/", Expect::Other),
    case("/live", Expect::Other),
    case("/", Expect::Other),
    case("/alice", Expect::Other),
    case("/api/v1/channels", Expect::Other),
    case("/internal/health", Expect::Internal),
    case("/Internal/metrics", Expect::Internal),
    case(
        "/private/alice/index.m3u8",
        Expect::Playlist("/private/alice/index.m3u8"),
    ),
    case(
        "/PRIVATE//Alice/Index.m3u8?_HLS_part=1&x=2&_HLS_msn=3",
        Expect::Playlist("/private/alice/index.m3u8?_HLS_msn=3&_HLS_part=1"),
    ),
    case(
        "/private/alice/1764140000123.ts",
        Expect::Segment("/private/alice/1764140000123.ts"),
    ),
    case(
        "/private/alice/17.2.m4s",
        Expect::Segment("/private/alice/17.2.m4s"),
    ),
    case(
        "/private/alice/key/42.key",
        Expect::Key("/private/alice/key/42.key"),
    ),
    case(
        "/private/Alice//key/42.KEY",
        Expect::Key("/private/alice/key/42.key"),
    ),
    case("/private/alice/key/4a.key", Expect::Other),
    case(
        "/thumb/alice/1700000000000.jpg",
        Expect::Thumbnail("/thumb/alice/1700000000000.jpg"),
    ),
    case(
        "/THUMB//Alice/17.JPG",
        Expect::Thumbnail("/thumb/alice/17.jpg"),
    ),
    case(
        "/thumb/alice/17.jpg?x=1",
        Expect::Thumbnail("/thumb/alice/17.jpg"),
    ),
    case("/thumb/alice/latest.jpg", Expect::Other),
    case("/thumb/alice/-1.jpg", Expect::Other),
    case("/thumb/alice/12345678901234567890.jpg", Expect::Other),
    case("/thumb/alice/17.png", Expect::Other),
    case("/thumb/alice", Expect::Other),
    case("/thumb/alice/x/17.jpg", Expect::Other),
    case("/thumb/a/17.jpg", Expect::Other),
    case("/thumb/alice/../bob/17.jpg", Expect::Rejected),
    case(
        "/vod/alice/1700000000000/index.m3u8",
        Expect::Vod("/vod/alice/1700000000000/index.m3u8"),
    ),
    case(
        "/VOD/Alice//17/INDEX.M3U8",
        Expect::Vod("/vod/alice/17/index.m3u8"),
    ),
    case(
        "/vod/alice/17/1700000000123.ts",
        Expect::Vod("/vod/alice/17/1700000000123.ts"),
    ),
    case(
        "/vod/alice/17/1700000000123.M4S",
        Expect::Vod("/vod/alice/17/1700000000123.m4s"),
    ),
    case(
        "/vod/alice/17/init99.mp4",
        Expect::Vod("/vod/alice/17/init99.mp4"),
    ),
    case(
        "/vod/alice/17/INIT99.MP4?x=y",
        Expect::Vod("/vod/alice/17/init99.mp4"),
    ),
    case("/vod/alice/17/segments.log", Expect::Other),
    case("/vod/alice/17/meta.json", Expect::Other),
    case(
        "/vod/alice/17/THUMB.JPG",
        Expect::Vod("/vod/alice/17/thumb.jpg"),
    ),
    case("/vod/alice/17/thumb.png", Expect::Other),
    case("/vod/alice/17/1.2.m4s", Expect::Other),
    case("/vod/alice/17/init.mp4", Expect::Other),
    case("/vod/alice/17/initx.mp4", Expect::Other),
    case("/vod/alice/x7/1.ts", Expect::Other),
    case("/vod/alice/17", Expect::Other),
    case("/vod/alice/17/a/1.ts", Expect::Other),
    case("/vod/alice/17/../../../etc/passwd", Expect::Rejected),
    case("/vod/alice/17/..%2f..%2fboltstream.db", Expect::Rejected),
    case("/vod/alice/17/%2e%2e/1.ts", Expect::Rejected),
    // An encrypted past broadcast lives under the channel's private prefix.
    case(
        "/private/alice/vod/17/index.m3u8",
        Expect::Vod("/private/alice/vod/17/index.m3u8"),
    ),
    case(
        "/private/Alice/VOD/17/1700000000123.TS",
        Expect::Vod("/private/alice/vod/17/1700000000123.ts"),
    ),
    case(
        "/private/alice/vod/17/init9.mp4",
        Expect::Vod("/private/alice/vod/17/init9.mp4"),
    ),
    case(
        "/private/alice/vod/17/key/42.key",
        Expect::Key("/private/alice/vod/17/key/42.key"),
    ),
    case("/private/alice/vod/17/key/4a.key", Expect::Other),
    case("/private/alice/vod/17/thumb.jpg", Expect::Other),
    case("/private/alice/vod/17/segments.log", Expect::Other),
    case("/private/alice/vod/17", Expect::Other),
    case("/private/alice/vod", Expect::Other),
    case("/private/alice/vod/x/1.ts", Expect::Other),
    case("/vod/alice/17/key/42.key", Expect::Other),
    case("/private/alice/vod/17/../../key/1.key", Expect::Rejected),
    case("/private/alice/key/.key", Expect::Other),
    case("/private/alice/key/12345678901234567890.key", Expect::Other),
    case("/private/alice/KEY/1.key", Expect::Other),
    case("/live/alice/key/1.key", Expect::Other),
    case("/private/alice.m3u8", Expect::Other),
    case("/private/alice/../bob/key/1.key", Expect::Rejected),
    case("/internal", Expect::Internal),
    // Empty segments are dropped by the rules themselves, whether or not a proxy merges slashes.
    case("//internal/health", Expect::Internal),
    case("///internal//metrics", Expect::Internal),
    case(
        "/live//alice//index.m3u8",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case(
        "//live/alice/1764140000123.ts",
        Expect::Segment("/live/alice/1764140000123.ts"),
    ),
    case(
        "/live/alice/index.m3u8/",
        Expect::Playlist("/live/alice/index.m3u8"),
    ),
    case("//admin", Expect::Other),
    case(
        concat!("/live/", example_key!(), "/index.m3u8"),
        Expect::KeyBearing,
    ),
    case(
        concat!("/live/", example_key!(), ".m3u8"),
        Expect::KeyBearing,
    ),
    case(concat!("/app/", example_key!()), Expect::KeyBearing),
    case(
        concat!("/live/alice/index.m3u8?key=", example_key!()),
        Expect::KeyBearing,
    ),
    case(
        concat!("/live/alice/x", example_key!(), ".ts"),
        Expect::KeyBearing,
    ),
    case(
        concat!("/%6Cive_", "kmMvnFgYLLpJmTL4pZiB0U0YojB9R4BD08LZSi"),
        Expect::KeyBearing,
    ),
    case(
        concat!("/%256Cive_", "kmMvnFgYLLpJmTL4pZiB0U0YojB9R4BD08LZSi"),
        Expect::KeyBearing,
    ),
    case(concat!("/../", example_key!()), Expect::KeyBearing),
    case("/live/alice/../bob/index.m3u8", Expect::Rejected),
    case("/live/./alice/index.m3u8", Expect::Rejected),
    case("/live/%2e%2e/internal/health", Expect::Rejected),
    case("/live/alice%2Findex.m3u8", Expect::Rejected),
    case("/live/alice%5cindex.m3u8", Expect::Rejected),
    case("/live\\alice\\index.m3u8", Expect::Rejected),
    case("/live/%ff/index.m3u8", Expect::Rejected),
    case("/live/alice/index.m3u8?x=%c3%28", Expect::Rejected),
    case("/live/alice/%00.ts", Expect::Rejected),
    case("live/alice/index.m3u8", Expect::Rejected),
    case("", Expect::Rejected),
    RouteCase {
        input: b"/live/\xff\xfe/index.m3u8",
        expect: Expect::Rejected,
    },
];

/// One header-policy case, under the default policy.
#[derive(Clone, Copy, Debug)]
pub struct PolicyCase {
    /// The request target.
    pub path: &'static str,
    /// The response status.
    pub status: u16,
    /// Expected `Cache-Control`, `None` when the policy leaves it to the handler.
    pub cache_control: Option<&'static str>,
    /// Expected `Content-Type`, `None` when the policy leaves it to the handler.
    pub content_type: Option<&'static str>,
    /// Whether `access-control-allow-origin: *` is set.
    pub cors: bool,
}

const fn policy(
    path: &'static str,
    status: u16,
    cache_control: Option<&'static str>,
    content_type: Option<&'static str>,
    cors: bool,
) -> PolicyCase {
    PolicyCase {
        path,
        status,
        cache_control,
        content_type,
        cors,
    }
}

const SEG_CC: Option<&str> = Some("public, max-age=31536000, immutable");
const PL_CC: Option<&str> = Some("public, max-age=1");
const NO_STORE: Option<&str> = Some("no-store");
const TS: Option<&str> = Some("video/mp2t");
const M3U8: Option<&str> = Some("application/vnd.apple.mpegurl");
const MP4: Option<&str> = Some("video/mp4");
const KEY_CC: Option<&str> = Some("private, no-store");
const KEY: Option<&str> = Some("application/octet-stream");
const BLOCKING_CC: Option<&str> = Some("public, max-age=60");
const THUMB_CC: Option<&str> = Some("public, max-age=60");
const JPEG: Option<&str> = Some("image/jpeg");
const VOD_PL_CC: Option<&str> = Some("public, max-age=300");
const VOD_SEG_CC: Option<&str> = Some("public, max-age=86400, immutable");

/// The header-policy table.
pub const POLICY_CASES: &[PolicyCase] = &[
    policy("/live/alice/1.ts", 200, SEG_CC, TS, true),
    policy("/live/alice/1.ts", 206, SEG_CC, TS, true),
    policy("/live/alice/1.ts", 304, SEG_CC, TS, true),
    policy("/live/alice/1.ts", 404, NO_STORE, None, true),
    policy("/live/alice/1.ts", 503, NO_STORE, None, true),
    policy("/live/alice/index.m3u8", 200, PL_CC, M3U8, true),
    policy("/live/Alice.m3u8", 200, PL_CC, M3U8, true),
    policy("/live/alice/index.m3u8", 304, PL_CC, M3U8, true),
    policy("/live/alice/index.m3u8", 404, NO_STORE, None, true),
    policy("/live/alice/index.m3u8", 500, NO_STORE, None, true),
    policy(
        "/live/alice/index.m3u8?_HLS_msn=4&_HLS_part=1",
        200,
        BLOCKING_CC,
        M3U8,
        true,
    ),
    policy(
        "/live/alice/index.m3u8?_HLS_msn=9",
        400,
        NO_STORE,
        None,
        true,
    ),
    policy(
        "/live/alice/index.m3u8?_HLS_msn=5",
        503,
        NO_STORE,
        None,
        true,
    ),
    policy("/live/alice/index.m3u8?cb=1", 200, PL_CC, M3U8, true),
    // A delta update without `_HLS_msn` is the current playlist: as fresh as the full one.
    policy(
        "/live/alice/index.m3u8?_HLS_skip=YES",
        200,
        PL_CC,
        M3U8,
        true,
    ),
    policy("/live/alice/1700000000000.m4s", 200, SEG_CC, MP4, true),
    policy("/live/alice/1700000000000.2.m4s", 200, SEG_CC, MP4, true),
    policy("/live/alice/init1700000000000.mp4", 200, SEG_CC, MP4, true),
    policy("/live/alice/1700000000000.2.m4s", 404, NO_STORE, None, true),
    policy("/private/alice/index.m3u8", 200, PL_CC, M3U8, true),
    policy("/private/alice/9.ts", 200, SEG_CC, TS, true),
    policy("/private/alice/9.1.m4s", 200, SEG_CC, MP4, true),
    policy("/private/alice/key/9.key", 200, KEY_CC, KEY, false),
    policy("/private/alice/key/9.key", 403, KEY_CC, None, false),
    policy("/private/alice/key/9.key", 304, KEY_CC, KEY, false),
    policy("/thumb/alice/17.jpg", 200, THUMB_CC, JPEG, true),
    policy("/thumb/alice/17.jpg", 304, THUMB_CC, JPEG, true),
    policy("/thumb/alice/17.jpg", 404, NO_STORE, None, true),
    policy("/vod/alice/17/index.m3u8", 200, VOD_PL_CC, M3U8, true),
    policy("/vod/alice/17/index.m3u8", 404, NO_STORE, None, true),
    policy("/vod/alice/17/18.ts", 200, VOD_SEG_CC, TS, true),
    policy("/vod/alice/17/18.m4s", 200, VOD_SEG_CC, MP4, true),
    policy("/vod/alice/17/init3.mp4", 304, VOD_SEG_CC, MP4, true),
    policy("/vod/alice/17/18.m4s", 404, NO_STORE, None, true),
    policy("/vod/alice/17/thumb.jpg", 200, VOD_SEG_CC, JPEG, true),
    policy("/vod/alice/17/thumb.jpg", 404, NO_STORE, None, true),
    policy(
        "/private/alice/vod/17/index.m3u8",
        200,
        VOD_PL_CC,
        M3U8,
        true,
    ),
    policy(
        "/private/alice/vod/17/index.m3u8",
        403,
        NO_STORE,
        None,
        true,
    ),
    policy("/private/alice/vod/17/18.ts", 200, VOD_SEG_CC, TS, true),
    policy("/private/alice/vod/17/key/9.key", 200, KEY_CC, KEY, false),
    policy("/private/alice/vod/17/key/9.key", 404, KEY_CC, None, false),
    policy("/", 200, None, None, false),
    policy("/api/v1/channels", 200, None, None, false),
    policy("/internal/health", 200, None, None, false),
];

/// One playback-token case: a request for `path` carrying `cookie`, and whether it may pass.
#[derive(Clone, Debug)]
pub struct TokenCase {
    /// What the case is about, for failure messages.
    pub name: &'static str,
    /// The request target.
    pub path: &'static str,
    /// The `Cookie` header, if any.
    pub cookie: Option<alloc::vec::Vec<u8>>,
    /// Whether a verifier holding the table's secrets lets it through at the table's time.
    pub allowed: bool,
}

/// The secrets the token table is made with: the verifier holds the first two (a rotation in
/// progress), never the third.
pub fn token_case_secrets() -> [crate::token::Secret; 3] {
    let secret = |id, fill| crate::token::Secret::new(id, &[fill; 32]).expect("valid secret");
    [secret(1, 0x11), secret(2, 0x22), secret(3, 0x33)]
}

/// The time (Unix seconds) the token table is checked at.
pub const TOKEN_CASE_NOW: u64 = 1_796_000_000;

/// The token table: valid tokens for the right channel under either held secret, and the ways a
/// token goes wrong — missing, expired, another channel's, an unknown secret, malformed,
/// truncated, re-encoded, oversized. The native filter tests and the wasm host tests run it.
pub fn token_cases() -> alloc::vec::Vec<TokenCase> {
    use crate::token::{sign, COOKIE};
    use alloc::format;
    use alloc::string::String;
    let [current, previous, unknown] = token_case_secrets();
    let now = TOKEN_CASE_NOW;
    let good = sign(&current, "/private/alice/", now + 300);
    let cookie = |value: &str| Some(format!("{COOKIE}={value}").into_bytes());
    let mut cases = alloc::vec![
        ("valid", "/private/alice/index.m3u8", cookie(&good), true),
        (
            "valid for the key",
            "/private/alice/key/7.key",
            cookie(&good),
            true
        ),
        (
            "valid, blocking reload",
            "/private/alice/index.m3u8?_HLS_msn=9&_HLS_part=1",
            cookie(&good),
            true,
        ),
        (
            "valid, previous secret",
            "/private/alice/index.m3u8",
            cookie(&sign(&previous, "/private/alice/", now + 300)),
            true,
        ),
        (
            "valid among other cookies",
            "/private/alice/index.m3u8",
            Some(format!("theme=dark; {COOKIE}={good}; sid=x").into_bytes()),
            true,
        ),
        (
            "valid for a past broadcast",
            "/private/alice/vod/17/index.m3u8",
            cookie(&good),
            true
        ),
        (
            "valid for a past broadcast's key",
            "/private/alice/vod/17/key/7.key",
            cookie(&good),
            true
        ),
        ("missing", "/private/alice/index.m3u8", None, false),
        (
            "missing for a past broadcast",
            "/private/alice/vod/17/index.m3u8",
            None,
            false
        ),
        (
            "missing for a past broadcast's key",
            "/private/alice/vod/17/key/7.key",
            None,
            false
        ),
        (
            "another channel's, for a past broadcast's key",
            "/private/alice/vod/17/key/7.key",
            cookie(&sign(&current, "/private/bob/", now + 300)),
            false,
        ),
        (
            "a past broadcast's segment without a token",
            "/private/alice/vod/17/18.ts",
            None,
            true
        ),
        (
            "missing for the key",
            "/private/alice/key/7.key",
            None,
            false
        ),
        (
            "other cookies only",
            "/private/alice/index.m3u8",
            Some(b"sid=abc".to_vec()),
            false,
        ),
        (
            "expired",
            "/private/alice/index.m3u8",
            cookie(&sign(&current, "/private/alice/", now)),
            false,
        ),
        (
            "another channel's",
            "/private/alice/key/7.key",
            cookie(&sign(&current, "/private/bob/", now + 300)),
            false,
        ),
        (
            "unknown secret",
            "/private/alice/index.m3u8",
            cookie(&sign(&unknown, "/private/alice/", now + 300)),
            false,
        ),
        (
            "forged: secret id changed",
            "/private/alice/index.m3u8",
            cookie(&good.replacen(".1.", ".2.", 1)),
            false,
        ),
        (
            "expiry extended",
            "/private/alice/index.m3u8",
            cookie(&good.replacen(&format!("{}", now + 300), &format!("{}", now + 3000), 1)),
            false,
        ),
        (
            "expiry re-encoded with a leading zero",
            "/private/alice/index.m3u8",
            cookie(&format!("0{good}")),
            false,
        ),
        (
            "truncated",
            "/private/alice/index.m3u8",
            cookie(&good[..good.len() - 1]),
            false,
        ),
        (
            "signature re-encoded as padded base64",
            "/private/alice/index.m3u8",
            cookie(&format!("{good}=")),
            false,
        ),
        (
            "signature re-encoded as standard base64",
            "/private/alice/index.m3u8",
            cookie(&good.replace('-', "+").replace('_', "/")),
            false,
        ),
        (
            "oversized",
            "/private/alice/index.m3u8",
            cookie(&format!("{good}{}", "A".repeat(4000))),
            false,
        ),
        ("empty", "/private/alice/index.m3u8", cookie(""), false),
        (
            "not UTF-8",
            "/private/alice/index.m3u8",
            Some(b"bs_play=\xff\xfe".to_vec()),
            false,
        ),
        (
            "two fields only",
            "/private/alice/index.m3u8",
            cookie(&String::from(
                good.rsplit_once('.').map_or("", |(head, _)| head)
            )),
            false,
        ),
        // Segments are ciphertext: no token needed, and a bad one does not matter.
        (
            "segment without a token",
            "/private/alice/17.ts",
            None,
            true
        ),
        (
            "segment with a forged token",
            "/private/alice/17.2.m4s",
            cookie("1.1.x"),
            true,
        ),
        // Public channels never look at the cookie.
        (
            "public playlist",
            "/live/alice/index.m3u8",
            cookie("junk"),
            true
        ),
    ];
    // A standard-base64 variant only differs when the signature holds '-' or '_'.
    cases.retain(|c| c.0 != "signature re-encoded as standard base64" || c.2 != cookie(&good));
    cases
        .into_iter()
        .map(|(name, path, cookie, allowed)| TokenCase {
            name,
            path,
            cookie,
            allowed,
        })
        .collect()
}

/// What `shared` itself decides for a token case: the reference the filter must match.
pub fn token_case_decision(case: &TokenCase) -> bool {
    let [current, previous, _] = token_case_secrets();
    match crate::route::classify(case.path.as_bytes()).token_scope() {
        Some(scope) => crate::token::verify_cookies(
            &[current, previous],
            case.cookie.as_deref(),
            &scope,
            TOKEN_CASE_NOW,
        )
        .is_ok(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_table_holds_for_shared_itself() {
        let cases = token_cases();
        assert!(cases.len() >= 20);
        for case in &cases {
            assert_eq!(token_case_decision(case), case.allowed, "{}", case.name);
        }
    }
}
