//! What the edge does with a request, and which headers a live response gets. Pure functions over
//! `boltstream-shared`, so the native tests and the wasm host tests check the same code.

use boltstream_shared::policy::ORIGIN_ONLY_HEADERS;
use boltstream_shared::route::{classify, is_canonical_live, is_under_any_prefix, Route};
use boltstream_shared::token::verify_cookies;

use crate::config::{FilterConfig, Role};

/// The verdict on a request's `:path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestDecision {
    /// Forward untouched; the response needs no policy.
    Pass,
    /// Forward (rewriting `:path` when `rewrite` is set) and apply the live policy to the response.
    Live {
        /// The route, kept for the response phase so the path is parsed once.
        route: Route,
        /// The new `:path`, when it differs from the one received.
        rewrite: Option<String>,
        /// Remove the request's cookies: a private channel's segments are the same ciphertext
        /// for every viewer, so no viewer's token travels further than this filter.
        strip_cookies: bool,
    },
    /// Answer locally with this status; nothing goes upstream.
    Refuse(u16),
}

/// What the filter reads from a request beyond its path, asked for only when a route needs it (a
/// host call each).
pub trait RequestFacts {
    /// The values of the request's `Cookie` headers.
    fn cookies(&self) -> Vec<Vec<u8>>;
    /// The time now, in Unix seconds.
    fn now_s(&self) -> u64;
}

/// A request with no cookies, for callers that have none to give.
pub struct NoFacts;

impl RequestFacts for NoFacts {
    fn cookies(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn now_s(&self) -> u64 {
        0
    }
}

/// Decides what to do with a request whose `:path` is `target`.
pub fn decide_request(
    target: &[u8],
    config: &FilterConfig,
    facts: &dyn RequestFacts,
) -> RequestDecision {
    // The hot path of the listener copy: a player asking for a canonical object needs no rewrite
    // and (in this role) no response work, so it is decided without allocating.
    if config.role == Role::Request
        && config.origin_path_prefix.is_empty()
        && is_canonical_live(target)
    {
        return RequestDecision::Pass;
    }
    // Behind the origin prefix (the upstream copy of this filter sees rewritten paths) the route is
    // what follows the prefix.
    let prefix = config.origin_path_prefix.as_bytes();
    let unprefixed = match target.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.first() == Some(&b'/') => rest,
        _ => target,
    };
    let route = classify(unprefixed);
    match route {
        Route::KeyBearing | Route::Internal => RequestDecision::Refuse(403),
        Route::Rejected(_) => RequestDecision::Refuse(400),
        Route::Other => {
            if is_blocked(target, &config.blocked_path_prefixes) {
                RequestDecision::Refuse(403)
            } else {
                RequestDecision::Pass
            }
        }
        // The live media routes (`Route::is_live`): every other kind is matched above.
        route => {
            if let Some(scope) = route.token_scope() {
                let cookies = facts.cookies();
                let allowed = verify_cookies(
                    &config.playback_secrets,
                    cookies.iter().map(Vec::as_slice),
                    &scope,
                    facts.now_s(),
                )
                .is_ok();
                if !allowed {
                    return RequestDecision::Refuse(403);
                }
            }
            let strip_cookies = route.is_private_media();
            let canonical = route.canonical_path().unwrap_or_default();
            let wanted = if config.origin_path_prefix.is_empty() {
                canonical
            } else {
                format!("{}{canonical}", config.origin_path_prefix)
            };
            let rewrite = (wanted.as_bytes() != target).then_some(wanted);
            // The listener copy does no response work: a canonical object needs nothing from it.
            if config.role == Role::Request && rewrite.is_none() && !strip_cookies {
                return RequestDecision::Pass;
            }
            RequestDecision::Live {
                route,
                rewrite,
                strip_cookies,
            }
        }
    }
}

fn is_blocked(target: &[u8], prefixes: &[String]) -> bool {
    !prefixes.is_empty() && is_under_any_prefix(target, prefixes)
}

/// The header changes a live response with `status` gets at the edge, in order. Borrowing the
/// policy's strings keeps this allocation-free apart from the returned vector.
pub fn response_changes<'c>(
    route: &Route,
    status: u16,
    config: &'c FilterConfig,
) -> Vec<(&'static str, Option<&'c str>)> {
    let policy = &config.policy;
    let mut changes: Vec<(&'static str, Option<&'c str>)> =
        Vec::with_capacity(4 + ORIGIN_ONLY_HEADERS.len());
    changes.push(("cache-control", policy.cache_control(route, status)));
    if let Some(content_type) = policy.content_type(route, status) {
        changes.push(("content-type", Some(content_type)));
    }
    for (name, value) in policy.cors(route) {
        changes.push((name, Some(value)));
    }
    for name in ORIGIN_ONLY_HEADERS {
        changes.push((name, None));
    }
    changes
}

/// Only the header calls a live response still needs: `current` is the response's header map (with
/// `:status`), and a change is kept only when the header differs from the policy. The origin
/// already applies the same policy, so usually nothing is left — and each host call costs more
/// than all the logic here.
pub fn updates_needed<'c, K: AsRef<str>, V: AsRef<[u8]>>(
    current: &[(K, V)],
    route: &Route,
    config: &'c FilterConfig,
) -> Vec<(&'static str, Option<&'c str>)> {
    let get = |name: &str| {
        current
            .iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    };
    let status = get(":status")
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(502);
    response_changes(route, status, config)
        .into_iter()
        .filter(|(name, wanted)| match (get(name), wanted) {
            (Some(have), Some(want)) => have != want.as_bytes(),
            (None, Some(_)) => true,
            (Some(_), None) => true,
            (None, None) => false,
        })
        .collect()
}

/// The body of a local refusal; says why without echoing the request.
pub fn refusal_body(status: u16) -> &'static [u8] {
    match status {
        400 => b"bad request\n",
        _ => b"forbidden\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boltstream_shared::cases::{
        token_case_decision, token_case_secrets, token_cases, Expect, POLICY_CASES, ROUTE_CASES,
        TOKEN_CASE_NOW,
    };

    struct Facts(Option<Vec<u8>>, u64);

    impl RequestFacts for Facts {
        fn cookies(&self) -> Vec<Vec<u8>> {
            self.0.iter().cloned().collect()
        }
        fn now_s(&self) -> u64 {
            self.1
        }
    }

    fn with_case_secrets() -> FilterConfig {
        let [current, previous, _] = token_case_secrets();
        FilterConfig {
            playback_secrets: vec![current, previous],
            ..FilterConfig::default()
        }
    }

    /// A request carrying a valid token for `path`'s channel, where it needs one.
    fn signed_for(path: &str) -> Facts {
        let cookie = classify(path.as_bytes()).token_scope().map(|scope| {
            let token = boltstream_shared::token::sign(
                &token_case_secrets()[0],
                &scope,
                TOKEN_CASE_NOW + 60,
            );
            format!("bs_play={token}").into_bytes()
        });
        Facts(cookie, TOKEN_CASE_NOW)
    }

    /// The shared token table through the filter: the same table the wasm host test runs.
    #[test]
    fn shared_token_table() {
        let config = with_case_secrets();
        for case in token_cases() {
            let got = decide_request(
                case.path.as_bytes(),
                &config,
                &Facts(case.cookie.clone(), TOKEN_CASE_NOW),
            );
            let passed = !matches!(got, RequestDecision::Refuse(_));
            assert_eq!(passed, case.allowed, "{}: {got:?}", case.name);
            assert_eq!(passed, token_case_decision(&case), "{}", case.name);
            if let RequestDecision::Live {
                route,
                strip_cookies,
                ..
            } = got
            {
                assert_eq!(strip_cookies, route.is_private_media(), "{}", case.name);
            }
        }
    }

    #[test]
    fn without_secrets_every_private_playlist_and_key_is_refused() {
        let config = FilterConfig::default();
        for case in token_cases() {
            let got = decide_request(
                case.path.as_bytes(),
                &config,
                &Facts(case.cookie.clone(), TOKEN_CASE_NOW),
            );
            let needs_token = classify(case.path.as_bytes()).token_scope().is_some();
            assert_eq!(
                got == RequestDecision::Refuse(403),
                needs_token,
                "{}",
                case.name
            );
        }
    }

    /// The shared table, through the filter's decisions: the same table the wasm host test runs.
    #[test]
    fn shared_route_table() {
        let config = FilterConfig::default();
        for case in ROUTE_CASES {
            let got = decide_request(case.input, &config, &NoFacts);
            let needs_token = classify(case.input).token_scope().is_some();
            let ok = match (case.expect, &got) {
                // Without a token, a private playlist or key never passes.
                (_, RequestDecision::Refuse(403)) if needs_token => true,
                (
                    Expect::Playlist(c)
                    | Expect::Segment(c)
                    | Expect::Key(c)
                    | Expect::Thumbnail(c)
                    | Expect::Vod(c),
                    RequestDecision::Live { rewrite, .. },
                ) => rewrite.as_deref().map(str::as_bytes).unwrap_or(case.input) == c.as_bytes(),
                (Expect::Internal | Expect::KeyBearing, RequestDecision::Refuse(403)) => true,
                (Expect::Rejected, RequestDecision::Refuse(400)) => true,
                (Expect::Other, RequestDecision::Pass) => true,
                _ => false,
            };
            assert!(
                ok,
                "{:?}: expected {:?}, got {got:?}",
                String::from_utf8_lossy(case.input),
                case.expect
            );
        }
    }

    #[test]
    fn shared_policy_table() {
        let config = FilterConfig::default();
        for case in POLICY_CASES {
            match decide_request(
                case.path.as_bytes(),
                &with_case_secrets(),
                &signed_for(case.path),
            ) {
                RequestDecision::Live { route, .. } => {
                    let changes = response_changes(&route, case.status, &config);
                    let get = |n: &str| changes.iter().find(|(k, _)| *k == n).and_then(|(_, v)| *v);
                    assert_eq!(get("cache-control"), case.cache_control, "{case:?}");
                    assert_eq!(get("content-type"), case.content_type, "{case:?}");
                    assert_eq!(
                        get("access-control-allow-origin").is_some(),
                        case.cors,
                        "{case:?}"
                    );
                    assert!(changes.contains(&("server", None)));
                }
                other => assert!(case.cache_control.is_none(), "{case:?} decided {other:?}"),
            }
        }
    }

    #[test]
    fn origin_prefix_and_blocked_prefixes() {
        let config = FilterConfig::parse(
            br#"{"origin_path_prefix":"/o","blocked_path_prefixes":["/admin"]}"#,
        )
        .unwrap();
        match decide_request(b"/live/Bob.m3u8", &config, &NoFacts) {
            RequestDecision::Live { rewrite, .. } => {
                assert_eq!(rewrite.as_deref(), Some("/o/live/bob/index.m3u8"))
            }
            other => panic!("{other:?}"),
        }
        for blocked in [
            &b"/ADMIN/users"[..],
            b"//admin",
            b"/%61dmin/x",
            b"///admin//users",
        ] {
            assert_eq!(
                decide_request(blocked, &config, &NoFacts),
                RequestDecision::Refuse(403),
                "{blocked:?}"
            );
        }
        assert_eq!(
            decide_request(b"/dashboard", &config, &NoFacts),
            RequestDecision::Pass
        );
    }

    #[test]
    fn only_differences_become_host_calls() {
        let config = FilterConfig::default();
        let RequestDecision::Live { route, .. } =
            decide_request(b"/live/bob/1.ts", &config, &NoFacts)
        else {
            panic!()
        };
        let conformant = [
            (":status", &b"200"[..]),
            ("cache-control", b"public, max-age=31536000, immutable"),
            ("content-type", b"video/mp2t"),
            ("access-control-allow-origin", b"*"),
            ("access-control-expose-headers", b"Age"),
        ];
        assert!(updates_needed(&conformant, &route, &config).is_empty());
        let off = [
            (":status", &b"200"[..]),
            ("cache-control", b"private"),
            ("server", b"x"),
            ("x-bad", b"\xff"),
        ];
        let needed = updates_needed(&off, &route, &config);
        assert!(needed.contains(&("cache-control", Some("public, max-age=31536000, immutable"))));
        assert!(needed.contains(&("content-type", Some("video/mp2t"))));
        assert!(needed.contains(&("server", None)));
        assert!(
            !needed.iter().any(|(n, _)| *n == "set-cookie"),
            "absent headers need no removal"
        );
        let error = [(":status", &b"404"[..]), ("cache-control", b"no-store")];
        assert_eq!(
            updates_needed(&error, &route, &config),
            vec![
                ("access-control-allow-origin", Some("*")),
                ("access-control-expose-headers", Some("Age"))
            ]
        );
    }

    #[test]
    fn canonical_paths_are_not_rewritten() {
        match decide_request(b"/live/bob/index.m3u8", &FilterConfig::default(), &NoFacts) {
            RequestDecision::Live { rewrite, .. } => assert_eq!(rewrite, None),
            other => panic!("{other:?}"),
        }
    }

    /// The request-only role answers every case as the full filter does, except that a canonical
    /// public live path (nothing to rewrite, no cookie to strip, no response work in this role) is
    /// a plain pass.
    #[test]
    fn request_role_agrees_with_the_full_filter() {
        let full = FilterConfig::default();
        let request = FilterConfig {
            role: Role::Request,
            ..FilterConfig::default()
        };
        for case in ROUTE_CASES {
            let expected = match decide_request(case.input, &full, &NoFacts) {
                RequestDecision::Live {
                    rewrite: None,
                    strip_cookies: false,
                    ..
                } => RequestDecision::Pass,
                other => other,
            };
            assert_eq!(
                decide_request(case.input, &request, &NoFacts),
                expected,
                "{:?}",
                String::from_utf8_lossy(case.input)
            );
        }
    }

    #[test]
    fn huge_paths_are_refused_not_panicked() {
        let huge = format!("/live/{}", "a".repeat(1 << 20));
        assert_eq!(
            decide_request(huge.as_bytes(), &FilterConfig::default(), &NoFacts),
            RequestDecision::Refuse(400)
        );
    }
}
