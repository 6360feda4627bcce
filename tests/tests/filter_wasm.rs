//! The compiled edge filter runs in a proxy-wasm host (wasmtime) and gives the same answers as the
//! native decisions for every case of `shared`'s table.

use boltstream_filter::config::FilterConfig;
use boltstream_filter::decision::{decide_request, NoFacts, RequestDecision};
use boltstream_shared::cases::{
    token_case_decision, token_case_secrets, token_cases, Expect, POLICY_CASES, ROUTE_CASES,
    TOKEN_CASE_NOW,
};
use boltstream_shared::route::classify;
use boltstream_tests::wasm_host::FilterVm;

fn request(path: &[u8]) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":authority".into(), b"edge.example".to_vec()),
        (":path".into(), path.to_vec()),
    ]
}

fn origin_headers() -> Vec<(String, Vec<u8>)> {
    vec![
        ("cache-control".into(), b"private".to_vec()),
        ("content-type".into(), b"text/plain".to_vec()),
        ("server".into(), b"boltstream".to_vec()),
        ("x-boltstream-node".into(), b"origin-1".to_vec()),
        ("etag".into(), b"\"1\"".to_vec()),
    ]
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

#[test]
fn route_table_matches_native_decisions() {
    let mut vm = FilterVm::new(b"").expect("default config");
    let config = FilterConfig::default();
    for case in ROUTE_CASES {
        let (outcome, _, _) = vm.exchange(request(case.input), 200, origin_headers());
        let native = decide_request(case.input, &config, &NoFacts);
        let shown = String::from_utf8_lossy(case.input);
        match (&native, case.expect) {
            // A private playlist or key (live or past), asked for with no token.
            (
                RequestDecision::Refuse(403),
                Expect::Playlist(_) | Expect::Key(_) | Expect::Vod(_),
            ) if classify(case.input).token_scope().is_some() => {
                assert_eq!(outcome.local_status, Some(403), "{shown}");
                assert_eq!(outcome.action, 1, "{shown}: paused, nothing upstream");
            }
            (
                RequestDecision::Refuse(status),
                Expect::KeyBearing | Expect::Internal | Expect::Rejected,
            ) => {
                assert_eq!(outcome.local_status, Some(u32::from(*status)), "{shown}");
                assert_eq!(outcome.action, 1, "{shown}: paused, nothing upstream");
            }
            (
                RequestDecision::Live { .. },
                Expect::Playlist(canonical)
                | Expect::Segment(canonical)
                | Expect::Key(canonical)
                | Expect::Thumbnail(canonical)
                | Expect::Vod(canonical),
            ) => {
                assert_eq!(outcome.local_status, None, "{shown}");
                assert_eq!(
                    outcome.path.as_deref(),
                    Some(canonical.as_bytes()),
                    "{shown}"
                );
            }
            (RequestDecision::Pass, Expect::Other) => {
                assert_eq!(outcome.local_status, None, "{shown}");
                assert_eq!(
                    outcome.path.as_deref(),
                    Some(case.input),
                    "{shown}: untouched"
                );
            }
            (native, expect) => {
                panic!("{shown}: native {native:?} disagrees with the table's {expect:?}")
            }
        }
    }
}

/// The filter's config for the token table: its two held secrets, as the CLI prints them.
fn token_config() -> Vec<u8> {
    let hex = |fill: u8| format!("{fill:02x}").repeat(32);
    let [current, previous, _] = token_case_secrets();
    format!(
        r#"{{"playback_secrets": [{{"id": {}, "secret": "{}"}}, {{"id": {}, "secret": "{}"}}]}}"#,
        current.id(),
        hex(0x11),
        previous.id(),
        hex(0x22)
    )
    .into_bytes()
}

#[test]
fn token_table_matches_shared_in_the_wasm() {
    let mut vm = FilterVm::new(&token_config()).expect("token config");
    vm.set_time(TOKEN_CASE_NOW);
    let cases = token_cases();
    let (mut allowed, mut refused) = (0, 0);
    for case in &cases {
        let mut req = request(case.path.as_bytes());
        if let Some(cookie) = &case.cookie {
            req.push(("cookie".into(), cookie.clone()));
        }
        let (outcome, _, _) = vm.exchange(req, 200, origin_headers());
        let passed = outcome.local_status.is_none();
        assert_eq!(
            passed,
            token_case_decision(case),
            "{}: the wasm disagrees with shared",
            case.name
        );
        assert_eq!(passed, case.allowed, "{}", case.name);
        if passed {
            allowed += 1;
            let private_media = case.path.starts_with("/private/")
                && !case.path.contains("m3u8")
                && !case.path.contains("/key/");
            if private_media {
                assert_eq!(
                    outcome.cookie, None,
                    "{}: the token must not go past the edge",
                    case.name
                );
            } else {
                assert_eq!(
                    outcome.cookie, case.cookie,
                    "{}: cookie kept for the origin's check",
                    case.name
                );
            }
        } else {
            refused += 1;
            assert_eq!(outcome.local_status, Some(403), "{}", case.name);
            assert_eq!(outcome.action, 1, "{}: nothing upstream", case.name);
        }
    }
    assert!(
        allowed >= 5 && refused >= 12,
        "{allowed} allowed, {refused} refused"
    );
    // Without secrets every private playlist is refused, whatever the token.
    let mut bare = FilterVm::new(b"").unwrap();
    bare.set_time(TOKEN_CASE_NOW);
    let mut req = request(b"/private/alice/index.m3u8");
    req.push(("cookie".into(), cases[0].cookie.clone().unwrap()));
    assert_eq!(bare.exchange(req, 200, vec![]).0.local_status, Some(403));
}

#[test]
fn policy_table_in_the_wasm() {
    let mut vm = FilterVm::new(&token_config()).unwrap();
    vm.set_time(TOKEN_CASE_NOW);
    let token = boltstream_shared::token::sign(
        &token_case_secrets()[0],
        "/private/alice/",
        TOKEN_CASE_NOW + 60,
    );
    for case in POLICY_CASES {
        let mut req = request(case.path.as_bytes());
        req.push(("cookie".into(), format!("bs_play={token}").into_bytes()));
        let (outcome, response, _) = vm.exchange(req, case.status, origin_headers());
        if outcome.local_status.is_some() {
            assert!(case.cache_control.is_none(), "{case:?}");
            continue;
        }
        match case.cache_control {
            Some(cc) => {
                assert_eq!(header(&response, "cache-control"), Some(cc), "{case:?}");
                assert_eq!(
                    header(&response, "server"),
                    None,
                    "origin-only headers dropped: {case:?}"
                );
                assert_eq!(header(&response, "x-boltstream-node"), None, "{case:?}");
                assert_eq!(
                    header(&response, "etag"),
                    Some("\"1\""),
                    "other headers kept"
                );
            }
            None => {
                assert_eq!(
                    header(&response, "cache-control"),
                    Some("private"),
                    "not a live route: untouched: {case:?}"
                );
                assert_eq!(header(&response, "server"), Some("boltstream"));
            }
        }
        match case.content_type {
            Some(ct) => assert_eq!(header(&response, "content-type"), Some(ct), "{case:?}"),
            None => assert_eq!(
                header(&response, "content-type"),
                Some("text/plain"),
                "{case:?}"
            ),
        }
        assert_eq!(
            header(&response, "access-control-allow-origin").is_some(),
            case.cors,
            "{case:?}"
        );
    }
}

#[test]
fn local_refusals_keep_no_store() {
    let mut vm = FilterVm::new(b"").unwrap();
    let path = format!("/live/{}/index.m3u8", boltstream_shared::cases::EXAMPLE_KEY);
    let (outcome, _, _) = vm.exchange(request(path.as_bytes()), 200, vec![]);
    assert_eq!(outcome.local_status, Some(403));
}

#[test]
fn malformed_headers_and_huge_paths_never_trap() {
    let mut vm = FilterVm::new(b"").unwrap();
    // No :path at all.
    let (outcome, _, _) = vm.exchange(vec![(":method".into(), b"GET".to_vec())], 200, vec![]);
    assert_eq!(outcome.local_status, Some(400));
    // Huge paths, binary garbage, a non-numeric status from upstream.
    let huge = format!("/live/{}/index.m3u8", "a".repeat(1 << 20));
    let (outcome, _, _) = vm.exchange(request(huge.as_bytes()), 200, vec![]);
    assert_eq!(outcome.local_status, Some(400));
    let garbage: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let (outcome, _, _) = vm.exchange(request(&garbage), 200, vec![]);
    assert_eq!(outcome.local_status, Some(400));
    let mut req = request(b"/live/alice/1.ts");
    req.push(("x-weird".into(), vec![0xff, 0x00, 0xfe]));
    let (outcome, _, _) = vm.exchange(req, 999, vec![]);
    assert_eq!(outcome.local_status, None);
    // Still serving after all of it.
    let (outcome, response, _) = vm.exchange(request(b"/live/Alice.m3u8"), 200, vec![]);
    assert_eq!(
        outcome.path.as_deref(),
        Some(&b"/live/alice/index.m3u8"[..])
    );
    assert_eq!(
        header(&response, "cache-control"),
        Some("public, max-age=1")
    );
}

#[test]
fn plugin_configuration_is_applied_or_refused() {
    let mut vm = FilterVm::new(br#"{"playlist_max_age": 3, "blocked_path_prefixes": ["/admin"], "origin_path_prefix": "/origin"}"#).unwrap();
    let (outcome, response, _) = vm.exchange(request(b"/live/bob.m3u8"), 200, vec![]);
    assert_eq!(
        outcome.path.as_deref(),
        Some(&b"/origin/live/bob/index.m3u8"[..])
    );
    assert_eq!(
        header(&response, "cache-control"),
        Some("public, max-age=3")
    );
    let (outcome, _, _) = vm.exchange(request(b"/Admin/users"), 200, vec![]);
    assert_eq!(outcome.local_status, Some(403));

    for bad in [
        &br#"{"playlist_max_age": 60}"#[..],
        br#"{"nope": true}"#,
        b"{not json",
    ] {
        let err = FilterVm::new(bad)
            .err()
            .expect("invalid configuration must be refused");
        assert!(
            err.contains("invalid boltstream filter configuration"),
            "{err}"
        );
    }
}

#[test]
fn host_calls_per_request_stay_few() {
    let mut vm = FilterVm::new(b"").unwrap();
    // A canonical segment from a policy-conformant origin (as ours is): read :path, read the
    // response map, nothing to change.
    let conformant = vec![
        (
            "cache-control".to_string(),
            b"public, max-age=31536000, immutable".to_vec(),
        ),
        ("content-type".to_string(), b"video/mp2t".to_vec()),
        ("access-control-allow-origin".to_string(), b"*".to_vec()),
        ("access-control-expose-headers".to_string(), b"Age".to_vec()),
    ];
    let (_, _, calls) = vm.exchange(request(b"/live/alice/1.ts"), 200, conformant);
    assert_eq!(
        calls, 2,
        "host calls for a segment from a conformant origin"
    );
    // A foreign origin: read, then one call per header to fix (4 sets, 2 removals).
    let (_, _, calls) = vm.exchange(request(b"/live/alice/1.ts"), 200, origin_headers());
    assert_eq!(calls, 2 + 4 + 2, "{calls} host calls");
    // A website request: one read, nothing else.
    let (_, _, calls) = vm.exchange(request(b"/alice"), 200, origin_headers());
    assert_eq!(calls, 1);
}
