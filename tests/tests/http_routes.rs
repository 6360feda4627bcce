//! The HTTP origin, website and API: every route, with bad input: the right 4xx, never a
//! 500, nothing leaked.

use std::time::Duration;

use boltstream_tests::http::{get, request, Response};
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

fn csrf_from(page: &Response) -> String {
    let text = page.text();
    let start = text.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    text[start..start + 64].to_string()
}

/// Logs in through the form and returns the session cookie.
fn log_in(server: &Server, user: &str, password: &str) -> String {
    let form = get(server.http, "/login");
    let csrf = csrf_from(&form);
    let body = format!("csrf={csrf}&username={user}&password={password}");
    let r = request(
        server.http,
        "POST",
        b"/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &format!("bs_csrf={csrf}")),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    // Both cookies are folded into one header value; find the session one.
    let all = r.headers.get("set-cookie").cloned().unwrap_or_default();
    let token = all
        .split([';', ','])
        .find_map(|p| p.trim().strip_prefix("bs_session="))
        .map(str::to_string);
    token.unwrap_or_else(|| panic!("no session cookie in {all}"))
}

#[test]
fn origin_headers_conditional_get_and_head() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let _p = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playlist = wait_for(Duration::from_secs(10), || {
        Some(get(server.http, "/live/alice/index.m3u8")).filter(|r| r.status == 200)
    })
    .unwrap();
    assert_eq!(
        playlist.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(playlist.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(playlist.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        playlist.header("access-control-expose-headers"),
        Some("Age")
    );
    // The MPEG-TS playlist does not block: a blocking request is refused, uncached, rather than
    // answered with a playlist that may lack what it asked for.
    let blocking = get(
        server.http,
        "/live/alice/index.m3u8?_HLS_msn=99&_HLS_part=0",
    );
    assert_eq!(blocking.status, 400);
    assert_eq!(blocking.header("cache-control"), Some("no-store"));
    // Any other query is ignored: the same playlist.
    assert_eq!(get(server.http, "/live/alice/index.m3u8?cb=1").status, 200);
    assert_eq!(
        playlist.header("content-length").unwrap(),
        playlist.body.len().to_string()
    );
    let etag = playlist.header("etag").unwrap().to_string();
    let lm = playlist.header("last-modified").unwrap().to_string();
    let again = request(
        server.http,
        "GET",
        b"/live/alice/index.m3u8",
        &[("if-none-match", &etag)],
        b"",
    )
    .unwrap();
    assert!(
        again.status == 304 || again.header("etag") != Some(etag.as_str()),
        "304 unless the playlist changed"
    );
    let seg = playlist
        .text()
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    let seg_path = format!("/live/alice/{seg}");
    let s = get(server.http, &seg_path);
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-type"), Some("video/mp2t"));
    assert_eq!(
        s.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let setag = s.header("etag").unwrap().to_string();
    let not_modified = request(
        server.http,
        "GET",
        seg_path.as_bytes(),
        &[("if-none-match", &setag)],
        b"",
    )
    .unwrap();
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let since = request(
        server.http,
        "GET",
        seg_path.as_bytes(),
        &[("if-modified-since", &lm)],
        b"",
    )
    .unwrap();
    assert!(since.status == 304 || since.status == 200);
    let head = request(server.http, "HEAD", seg_path.as_bytes(), &[], b"").unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        s.body.len().to_string()
    );
    let post = request(server.http, "POST", seg_path.as_bytes(), &[], b"x").unwrap();
    assert_eq!(post.status, 405);
    // Unknown or offline users, unknown segments.
    for path in [
        "/live/nobody/index.m3u8",
        "/live/alice/1.ts",
        "/live/bob.m3u8",
    ] {
        let r = get(server.http, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}

#[test]
fn bad_paths_are_4xx_never_500_and_leak_nothing() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"/live/../internal/health".to_vec(), 400),
        (b"/live/%2e%2e/internal/health".to_vec(), 400),
        (b"/live/alice%2Findex.m3u8".to_vec(), 400),
        (b"/live/\xff\xfe/index.m3u8".to_vec(), 400),
        (b"/%ff".to_vec(), 400),
        (format!("/live/{key}/index.m3u8").into_bytes(), 403),
        (format!("/app/{key}").into_bytes(), 403),
        (
            format!("/live/alice/index.m3u8?key={key}").into_bytes(),
            403,
        ),
        (format!("/{key}").into_bytes(), 403),
        (b"/nobody_here".to_vec(), 404),
        (b"/admin/users/x/ban".to_vec(), 404),
        (b"/a/b/c/d/e".to_vec(), 404),
    ];
    for (path, want) in cases {
        let r = request(server.http, "GET", &path, &[], b"")
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&path)));
        // hyper itself refuses some raw bytes in the request line with 400; both are fine.
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(&path));
        assert!(!r.text().contains(&key), "a response echoed the key");
    }
    // Another method on a page is 405 with the methods the path does take; the API answers
    // anything it has no endpoint for with its JSON 404.
    let post_home = request(server.http, "POST", b"/", &[], b"").unwrap();
    assert_eq!(post_home.status, 405);
    assert!(post_home.header("allow").unwrap().contains("GET"));
    let post_nowhere = request(server.http, "POST", b"/a/b/c", &[], b"").unwrap();
    assert_eq!(post_nowhere.status, 405);
    assert_eq!(post_nowhere.header("allow"), Some("GET, POST"));
    for (method, path) in [
        ("POST", "/api/v1/channels"),
        ("GET", "/api/v1/me/rotate-key"),
    ] {
        let r = request(server.http, method, path.as_bytes(), &[], b"").unwrap();
        assert_eq!(r.status, 404, "{method} {path}");
        assert!(r.text().contains("no such API endpoint"), "{method} {path}");
    }
    let log = server.log();
    assert!(!log.contains(&key), "the key reached the log");
    assert!(!log.contains("panic"), "{log}");
}

#[test]
fn oversized_headers_and_bodies() {
    let server = Server::start(&[]);
    let huge = "x".repeat(64 * 1024);
    let r = request(server.http, "GET", b"/", &[("x-big", &huge)], b"").unwrap();
    assert_eq!(r.status, 431);
    let form = get(server.http, "/login");
    let csrf = csrf_from(&form);
    let body = format!(
        "csrf={csrf}&username=alice&password={}",
        "p".repeat(100 * 1024)
    );
    let r = request(
        server.http,
        "POST",
        b"/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &format!("bs_csrf={csrf}")),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 413);
    // The server is fine afterwards.
    assert_eq!(get(server.internal, "/internal/health").status, 200);
}

#[test]
fn accounts_csrf_cookies_and_throttle() {
    let server = Server::start(&[]);
    server.add_user("alice");
    let mut pw = server.cli_with_stdin(&["user", "password", "alice"], "correct horse battery\n");
    assert!(
        pw.status.success(),
        "{}",
        String::from_utf8_lossy(&pw.stderr)
    );
    pw.stdout.clear();

    // Missing CSRF → 403; wrong content type → 400.
    let r = request(
        server.http,
        "POST",
        b"/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"username=alice&password=correct+horse+battery",
    )
    .unwrap();
    assert_eq!(r.status, 403);
    let r = request(
        server.http,
        "POST",
        b"/login",
        &[("content-type", "text/plain")],
        b"x",
    )
    .unwrap();
    assert_eq!(r.status, 400);

    let session = log_in(&server, "alice", "correct+horse+battery");
    let dash = request(
        server.http,
        "GET",
        b"/dashboard",
        &[("cookie", &format!("bs_session={session}"))],
        b"",
    )
    .unwrap();
    assert_eq!(dash.status, 200);
    assert!(dash.text().contains("Rotate stream key"));
    assert!(
        !dash.text().contains("id=\"stream-key\""),
        "the key is not shown again"
    );
    // A bad or expired cookie is simply signed out.
    for bad in [
        "bs_session=deadbeef",
        "bs_session=",
        "bs_session=%ff%00",
        "bs_session=a;b;c",
    ] {
        let r = request(server.http, "GET", b"/dashboard", &[("cookie", bad)], b"").unwrap();
        assert_eq!(r.status, 303, "{bad}");
    }
    // Rotate without CSRF → 403; with → the new key, once.
    let r = request(
        server.http,
        "POST",
        b"/dashboard/rotate",
        &[
            ("cookie", &format!("bs_session={session}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"csrf=nope",
    )
    .unwrap();
    assert_eq!(r.status, 403);
    let csrf = csrf_from(&dash);
    let r = request(
        server.http,
        "POST",
        b"/dashboard/rotate",
        &[
            ("cookie", &format!("bs_session={session}")),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("id=\"stream-key\""));
    // Cookies are HttpOnly and SameSite=Lax.
    let form = get(server.http, "/login");
    let set = form.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );

    // Throttled log-ins: after 5 failures from this address, refused even with the right password.
    for _ in 0..5 {
        let form = get(server.http, "/login");
        let c = csrf_from(&form);
        let r = request(
            server.http,
            "POST",
            b"/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &format!("bs_csrf={c}")),
            ],
            format!("csrf={c}&username=alice&password=wrong").as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 400);
    }
    let form = get(server.http, "/login");
    let c = csrf_from(&form);
    let r = request(
        server.http,
        "POST",
        b"/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &format!("bs_csrf={c}")),
        ],
        format!("csrf={c}&username=alice&password=correct+horse+battery").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 429);
    assert!(
        !r.headers
            .get("set-cookie")
            .is_some_and(|c| c.contains("bs_session=")),
        "no session while throttled"
    );
}

#[test]
fn signup_can_be_turned_off() {
    let server = Server::start(&["--signup", "false"]);
    assert_eq!(get(server.http, "/signup").status, 403);
}

#[test]
fn json_api() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    server.cli(&["user", "add", "boss", "--admin"]);
    let pw = server.cli_with_stdin(&["user", "password", "boss"], "boss password 1\n");
    assert!(pw.status.success());
    let json = |r: &Response| {
        serde_json::from_slice::<serde_json::Value>(&r.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
    };

    let r = get(server.http, "/api/v1/channels");
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["channels"], serde_json::json!([]));
    let r = get(server.http, "/api/v1/channels/alice");
    assert_eq!(json(&r)["live"], false);
    let r = get(server.http, "/api/v1/channels/nobody");
    assert_eq!(r.status, 404);
    assert_eq!(json(&r)["error"], "no such channel");
    let r = get(server.http, "/api/v1/me");
    assert_eq!(r.status, 401);
    assert!(json(&r)["error"].is_string());
    let r = get(server.http, "/api/v1/nope");
    assert_eq!(r.status, 404);

    // Session + CSRF header, then an API token.
    let session = log_in(&server, "boss", "boss+password+1");
    let cookie = format!("bs_session={session}");
    let r = request(
        server.http,
        "GET",
        b"/api/v1/me",
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    assert_eq!(json(&r)["is_admin"], true);
    let r = request(
        server.http,
        "POST",
        b"/api/v1/me/rotate-key",
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403, "a cookie alone cannot change state (CSRF)");
    let dash = request(
        server.http,
        "GET",
        b"/dashboard",
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    let csrf = csrf_from(&dash);
    let r = request(
        server.http,
        "POST",
        b"/dashboard/token",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
    .unwrap();
    let text = r.text();
    let token = text[text.find("bst_").unwrap()..]
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");

    // Admin stop and ban through the API drop a live publisher.
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(wait_for(Duration::from_secs(8), || (json(&get(
        server.http,
        "/api/v1/channels/alice"
    ))["playable"]
        == true)
        .then_some(()))
    .is_some());
    let r = get(server.http, "/api/v1/channels");
    assert_eq!(json(&r)["channels"][0]["username"], "alice");
    let r = request(
        server.http,
        "POST",
        b"/api/v1/admin/streams/alice/stop",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        publisher.wait(Duration::from_secs(3)).is_some(),
        "stop drops the publisher"
    );
    let r = request(
        server.http,
        "POST",
        b"/api/v1/admin/streams/alice/stop",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 409);
    let r = request(
        server.http,
        "POST",
        b"/api/v1/admin/users/alice/ban",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(get(server.http, "/api/v1/channels/alice").status, 404);
    let r = request(
        server.http,
        "POST",
        b"/api/v1/admin/users/nobody/ban",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 404);
    let r = request(
        server.http,
        "POST",
        b"/api/v1/admin/users/alice/ban",
        &[("authorization", "Bearer bst_wrong")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    // A non-admin cannot.
    let r = request(
        server.http,
        "POST",
        b"/api/v1/me/rotate-key",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    let new_key = json(&r)["stream_key"].as_str().unwrap().to_string();
    assert!(boltstream_shared::key::is_well_formed(&new_key));
}

#[test]
fn pages_render() {
    let server = Server::start(&[]);
    server.add_user("alice");
    for (path, status, needle) in [
        ("/", 200, "Nobody is live right now"),
        ("/alice", 200, "alice is offline"),
        ("/ALICE", 200, "data-channel=\"alice\""),
        ("/nobody", 404, "No such channel"),
        ("/login", 200, "Log in"),
        ("/signup", 200, "Create your channel"),
        ("/dashboard", 303, ""),
        ("/admin", 303, ""),
        ("/static/hls.min.js", 200, "Hls"),
        ("/static/player.js", 200, "boltstreamErrors"),
        ("/static/style.css", 200, "--accent"),
    ] {
        let r = get(server.http, path);
        assert_eq!(r.status, status, "{path}");
        assert!(r.text().contains(needle), "{path}");
    }
    let home = get(server.http, "/");
    assert!(home
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
}

/// A channel's title and category: set from the CLI, the API and the dashboard with one check
/// (length, control and text-direction characters), escaped on every page, kept across streams.
#[test]
fn channel_title_and_category_from_cli_api_and_dashboard() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let out = server.cli_with_stdin(&["user", "password", "alice"], "alice password 1\n");
    assert!(out.status.success());

    // CLI.
    let set = server.cli(&[
        "channel",
        "set",
        "alice",
        "--title",
        "Any% <b>run</b> & chat",
        "--category",
        "Games",
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let shown = server.cli(&["channel", "show", "alice", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["title"], "Any% <b>run</b> & chat");
    assert_eq!(shown["category"], "Games");
    for bad in ["two\nlines", "abc\u{202E}txt.exe", &"x".repeat(141)] {
        let out = server.cli(&["channel", "set", "alice", "--title", bad]);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("title"), "{err}");
    }
    let out = server.cli(&["channel", "set", "nobody", "--title", "x"]);
    assert!(!out.status.success());

    // Offline: the API and the page show it, the page escaped.
    let api = get(server.http, "/api/v1/channels/alice");
    let api: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(api["title"], "Any% <b>run</b> & chat");
    assert_eq!(api["live"], false);
    let page = get(server.http, "/alice").text();
    assert!(
        page.contains("Any% &lt;b&gt;run&lt;/b&gt; &amp; chat"),
        "{page}"
    );
    assert!(!page.contains("<b>run</b>"));

    // API, as the signed-in streamer (session cookie + CSRF header).
    let session = log_in(&server, "alice", "alice+password+1");
    let cookie = format!("bs_session={session}");
    let dash = request(
        server.http,
        "GET",
        b"/dashboard",
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    let csrf = csrf_from(&dash);
    let put = |body: &[u8], with_csrf: bool| {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        if with_csrf {
            headers.push(("x-csrf-token", csrf.as_str()));
        }
        request(server.http, "PUT", b"/api/v1/me/channel", &headers, body).unwrap()
    };
    let r = put(
        br#"{"title": "  Late night  ", "category": "Just chatting"}"#,
        true,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r["title"], "Late night", "trimmed");
    let refused: [(&[u8], bool, u16); 6] = [
        (br#"{"title": "x", "category": "y"}"#, false, 403),
        (br#"{"title": "a\u0007b", "category": ""}"#, true, 400),
        (br#"{"title": "", "category": "\u2066x"}"#, true, 400),
        (br#"{"title": "x"}"#, true, 400),
        (
            br#"{"title": "x", "category": "y", "admin": true}"#,
            true,
            400,
        ),
        (b"not json", true, 400),
    ];
    for (body, with_csrf, status) in refused {
        let r = put(body, with_csrf);
        assert_eq!(
            r.status,
            status,
            "{}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
    }
    let long = format!(r#"{{"title": "{}", "category": ""}}"#, "x".repeat(141));
    let r = put(long.as_bytes(), true);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("140"), "{}", r.text());
    let huge = format!(r#"{{"title": "{}", "category": ""}}"#, "x".repeat(20_000));
    assert_eq!(put(huge.as_bytes(), true).status, 413);

    // Dashboard form.
    let r = request(
        server.http,
        "POST",
        b"/dashboard/channel",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        format!("csrf={csrf}&title=Speedrun+%231&category=Retro").as_bytes(),
    )
    .unwrap();
    let text = r.text();
    assert!(text.contains("Title and category saved."), "{text}");
    assert!(text.contains("value=\"Speedrun #1\""), "{text}");

    // Kept when the channel goes live, and shown in the directory and the API while live.
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let live = wait_for(Duration::from_secs(15), || {
        let r = get(server.http, "/api/v1/channels");
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let first = v["channels"].get(0)?.clone();
        (first["live"] == true).then_some(first)
    })
    .expect("alice goes live");
    assert_eq!(live["title"], "Speedrun #1");
    assert_eq!(live["category"], "Retro");
    let directory = get(server.http, "/").text();
    assert!(
        directory.contains("Speedrun #1") && directory.contains("Retro"),
        "{directory}"
    );
}

/// Viewer counts from players' heartbeats: one id counts once, an address holds at most 16 live
/// ids, bad bodies are refused, offline channels count nobody, and the count shows in the API, the
/// directory and the metrics. Through the edge a heartbeat is never answered from a cache.
#[test]
fn viewer_counts_come_from_heartbeats_and_cannot_be_inflated() {
    use boltstream_tests::envoy::Envoy;
    use boltstream_tests::http::request_from;
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    server.add_user("bob");
    let beat = |from: &str, channel: &str, body: &str| {
        let from: std::net::IpAddr = from.parse().unwrap();
        let target = format!("/api/v1/channels/{channel}/heartbeat");
        request_from(
            from,
            server.http,
            "POST",
            target.as_bytes(),
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .unwrap()
    };
    let id = |n: u32| format!(r#"{{"viewer": "{n:032x}"}}"#);
    let count = |r: &Response| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["viewers"].clone()
    };
    assert_eq!(
        beat("127.0.0.1", "alice", &id(1)).status,
        404,
        "not live yet"
    );
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(wait_for(Duration::from_secs(15), || {
        (beat("127.0.0.1", "alice", &id(1)).status == 200).then_some(())
    })
    .is_some());
    assert_eq!(count(&beat("127.0.0.2", "alice", &id(2))), 2);
    // The same id again, from the same address: still two.
    assert_eq!(count(&beat("127.0.0.2", "alice", &id(2))), 2);
    // Forty fresh ids from one address: sixteen count.
    for n in 100..140 {
        beat("127.0.0.3", "alice", &id(n));
    }
    assert_eq!(count(&beat("127.0.0.1", "alice", &id(1))), 18);
    for (body, status) in [
        (r#"{"viewer": "not-hex"}"#, 400),
        (r#"{"viewer": "0123"}"#, 400),
        (r#"{"viewer": 5}"#, 400),
        (
            r#"{"viewer": "00000000000000000000000000000001", "x": 1}"#,
            400,
        ),
        ("", 400),
    ] {
        assert_eq!(beat("127.0.0.4", "alice", body).status, status, "{body:?}");
    }
    let huge = format!(r#"{{"viewer": "{}"}}"#, "a".repeat(20_000));
    assert_eq!(beat("127.0.0.4", "alice", &huge).status, 413);
    // A form post (what another site's page can send without asking) does not count.
    let r = request(
        server.http,
        "POST",
        b"/api/v1/channels/alice/heartbeat",
        &[("content-type", "text/plain")],
        id(300).as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(beat("127.0.0.4", "bob", &id(9)).status, 404, "offline");
    assert_eq!(beat("127.0.0.4", "nobody", &id(9)).status, 404);
    // The API, the directory and the metrics agree.
    let api: serde_json::Value =
        serde_json::from_slice(&get(server.http, "/api/v1/channels/alice").body).unwrap();
    assert_eq!(api["viewers"], 18);
    assert!(get(server.http, "/").text().contains("18 viewers"));
    let metrics = get(server.internal, "/internal/metrics").text();
    assert!(
        metrics.contains("boltstream_viewers{channel=\"alice\"} 18"),
        "{metrics}"
    );
    // Through the edge: two new viewers, two answers from the origin (never a cached one).
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let mut seen = Vec::new();
    for n in [200, 201] {
        let r = request(
            envoy.addr,
            "POST",
            b"/api/v1/channels/alice/heartbeat",
            &[("content-type", "application/json")],
            id(n).as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        seen.push(count(&r));
    }
    assert_eq!(seen, vec![serde_json::json!(19), serde_json::json!(20)]);
}
