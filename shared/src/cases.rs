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
const BLOCKING_CC: Option<&str> = Some("public, max-age=60");

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
    policy("/", 200, None, None, false),
    policy("/api/v1/channels", 200, None, None, false),
    policy("/internal/health", 200, None, None, false),
];
