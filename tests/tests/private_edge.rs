//! Private streams through the real edge: the shipped Envoy with the filter holding the site's
//! playback secrets, the real ingest with the low-latency (CMAF) output, ffmpeg publishing, and
//! Chromium with hls.js playing. The edge refuses what has no valid token before anything reaches
//! the origin; allowed viewers play the encrypted stream, parts and all.

use std::time::Duration;

use boltstream_tests::browser::Browser;
use boltstream_tests::envoy::Envoy;
use boltstream_tests::http::{get, request, Response};
use boltstream_tests::media::{run, Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

fn origin_count(server: &Server, route: &str) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    let needle = format!("boltstream_http_requests_total{{route=\"{route}\"}} ");
    (metrics.lines())
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {route} in {metrics}"))
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Video and audio frames ffprobe decodes from `path` (0 when it cannot read it at all).
fn frames_decoded(path: &std::path::Path) -> u64 {
    let (_, stdout, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            &path.to_string_lossy(),
        ],
        Duration::from_secs(20),
    );
    (stdout.lines())
        .filter_map(|l| l.trim().trim_matches(',').parse::<u64>().ok())
        .sum()
}

fn get_cookie(addr: std::net::SocketAddr, target: &str, cookie: &str) -> Response {
    request(addr, "GET", target.as_bytes(), &[("cookie", cookie)], b"").unwrap()
}

/// Plays `url` in `browser` until the video advanced `seconds`; returns the errors hls.js
/// reported and the resources fetched.
fn plays(browser: &Browser, url: &str, seconds: f64) -> (Vec<String>, Vec<String>) {
    browser.goto(url);
    let time = || {
        (browser.eval("var v = document.getElementById('player'); return v ? v.currentTime : 0"))
            .as_f64()
            .unwrap_or(0.0)
    };
    let played = wait_for(Duration::from_secs(45), || {
        let t = time();
        (t > seconds).then_some(t)
    });
    let errors: Vec<String> = (browser.eval("return window.boltstreamErrors || []"))
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        played.is_some(),
        "{url} never played {seconds} s: {errors:?}"
    );
    let fetched: Vec<String> = (browser.eval(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })",
    ))
    .as_array()
    .unwrap()
    .iter()
    .map(|e| e.as_str().unwrap().to_string())
    .collect();
    (errors, fetched)
}

#[test]
fn allowed_viewers_play_a_private_stream_through_the_edge_and_everyone_else_is_refused_there() {
    let server = Server::start(&["--hls-format", "cmaf", "--hls-key-rotation", "3"]);
    let key = server.add_user("alice");
    for (user, password) in [("bob", "bob password 1"), ("carol", "carol password 1")] {
        server.add_user(user);
        let out = server.cli_with_stdin(&["user", "password", user], &format!("{password}\n"));
        assert!(out.status.success());
    }
    cli_ok(&server, &["access", "set", "alice", "private"]);
    cli_ok(&server, &["access", "allow", "alice", "bob"]);
    let shared = cli_ok(&server, &["access", "share", "alice", "--hours", "1"]);
    let share_path = shared.trim().rsplit_once(": ").unwrap().1.to_string();
    let code = share_path.rsplit_once("#share=").unwrap().1.to_string();
    let secrets = server.filter_secrets();
    let plugin = format!(r#"{{"playlist_max_age": 1, "playback_secrets": {secrets}}}"#);
    // An access log in Envoy's default format, to show no token reaches it.
    let access_log = out_dir().join(format!("private-edge-access-{}.log", std::process::id()));
    let log_path = access_log.display().to_string();
    let envoy = Envoy::start_with(server.http, &plugin, |yaml| {
        yaml.replacen(
            "stat_prefix: edge\n",
            &format!(
                "stat_prefix: edge\n          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: \"{log_path}\"\n"
            ),
            1,
        )
    });
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(server.wait_live("alice", Duration::from_secs(15)));

    // A token the test signs with the site's secret, as the origin would.
    let valid = server.playback_cookie("alice", 120);
    let playlist = wait_for(Duration::from_secs(20), || {
        let r = get_cookie(envoy.addr, "/private/alice/index.m3u8", &valid);
        let text = r.text();
        (r.status == 200 && text.matches("#EXTINF").count() >= 3).then_some(text)
    })
    .expect("a valid token opens the private playlist at the edge");
    let key_uri = (playlist.lines())
        .find(|l| l.starts_with("#EXT-X-KEY:METHOD=AES-128"))
        .and_then(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .map(|u| format!("/private/alice/{u}"))
        .expect("the playlist names a key");

    // Carol is signed in but not allowed: no token, and the edge refuses her.
    let carol = boltstream_tests::http::log_in_from(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        server.http,
        "carol",
        "carol+password+1",
        None,
        &[],
    )
    .unwrap();
    let carol_session = format!(
        "bs_session={}",
        boltstream_tests::http::set_cookie_value(&carol, "bs_session").unwrap()
    );
    let r = request(
        envoy.addr,
        "POST",
        b"/api/v1/channels/alice/playback",
        &[
            ("content-type", "application/json"),
            ("cookie", &carol_session),
        ],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 404, "carol may not watch");
    assert!(r.header("set-cookie").is_none());

    // Refused at the edge: nothing reaches the origin's playlist or key handlers.
    let before = (
        origin_count(&server, "live_playlist"),
        origin_count(&server, "media_key"),
    );
    let expired = server.playback_cookie("alice", -1);
    let other_channel = server.playback_cookie("bob", 120);
    let forged = valid.replacen('.', ".9", 1);
    let carol_page = request(
        envoy.addr,
        "POST",
        b"/api/v1/channels/alice/playback",
        &[("content-type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(carol_page.status, 404, "no token for an anonymous viewer");
    for (who, cookie) in [
        ("anonymous", ""),
        ("expired", expired.as_str()),
        ("another channel's", other_channel.as_str()),
        ("forged", forged.as_str()),
        ("garbage", "bs_play=%00%ff; bs_play=1.1.AAAA"),
        ("carol, signed in but not allowed", carol_session.as_str()),
    ] {
        for target in [
            "/private/alice/index.m3u8",
            "/private/alice/index.m3u8?_HLS_msn=1",
            key_uri.as_str(),
        ] {
            let r = get_cookie(envoy.addr, target, cookie);
            assert_eq!(r.status, 403, "{who} token for {target}");
            assert_eq!(r.header("cache-control"), Some("no-store"));
        }
    }
    let after = (
        origin_count(&server, "live_playlist"),
        origin_count(&server, "media_key"),
    );
    assert_eq!(before, after, "a refused request reached the origin");
    // The key: 16 bytes, never cached by the edge.
    let k1 = get_cookie(envoy.addr, &key_uri, &valid);
    let k2 = get_cookie(envoy.addr, &key_uri, &valid);
    assert_eq!((k1.status, k1.body.len()), (200, 16));
    assert_eq!(k1.header("cache-control"), Some("private, no-store"));
    assert!(
        k2.header("age").is_none(),
        "the edge served a key from its cache"
    );
    assert_eq!(
        origin_count(&server, "media_key"),
        after.1 + 2,
        "both key fetches reached the origin"
    );

    // Segments: cached once for everyone (no token needed), ciphertext in the cache.
    let segment = (playlist.lines())
        .find(|l| l.ends_with(".m4s") && !l.starts_with('#'))
        .unwrap();
    let init = (playlist.lines())
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .map(|u| u.trim_end_matches('"'))
        .unwrap();
    let path = format!("/private/alice/{segment}");
    let first = get_cookie(envoy.addr, &path, "");
    let second = get_cookie(envoy.addr, &path, &valid);
    assert_eq!((first.status, second.status), (200, 200));
    assert!(
        second.header("age").is_some(),
        "the second fetch is a cache hit"
    );
    assert_eq!(first.body, second.body);
    let init_bytes = get(envoy.addr, &format!("/private/alice/{init}")).body;
    let cached = out_dir().join("private-edge-cached.mp4");
    std::fs::write(&cached, [init_bytes.clone(), second.body.clone()].concat()).unwrap();
    assert_eq!(
        frames_decoded(&cached),
        0,
        "a cached segment decoded without the key"
    );

    // Nor does any segment the origin wrote to its data directory.
    let mut files = Vec::new();
    boltstream_tests::server::collect_files(server.data(), &mut files);
    let on_disk: Vec<_> = (files.iter())
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .collect();
    assert!(!on_disk.is_empty());
    for path in on_disk {
        let body = std::fs::read(path).unwrap();
        assert_eq!(
            body.len() % 16,
            0,
            "{} is not whole AES blocks",
            path.display()
        );
        std::fs::write(&cached, [init_bytes.clone(), body].concat()).unwrap();
        assert_eq!(
            frames_decoded(&cached),
            0,
            "{} decoded without the key",
            path.display()
        );
    }

    // ffmpeg, given the token (and so the key), decodes the stream through the edge.
    let out = out_dir().join("private-edge-decrypted.mp4");
    let (ok, _, stderr) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-xerror",
            "-headers",
            &format!("Cookie: {valid}\r\n"),
            "-live_start_index",
            "0",
            "-i",
            &format!("http://{}/private/alice/index.m3u8", envoy.addr),
            "-t",
            "10",
            "-c",
            "copy",
            "-y",
            &out.to_string_lossy(),
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "ffmpeg with the key could not decode: {stderr}");
    let kinds = boltstream_tests::media::stream_types(&out);
    assert!(
        kinds
            .as_ref()
            .is_ok_and(|k| k.contains("video") && k.contains("audio")),
        "{kinds:?}"
    );

    // Chromium: bob signed in, and a share-link holder, both play — parts and keys included.
    let base = format!("https://localhost:{}", envoy.tls.port());
    let bob = Browser::start_with(&["--ignore-certificate-errors"]);
    bob.sign_in(&base, "bob", "bob password 1");
    let (errors, fetched) = plays(&bob, &format!("{base}/alice"), 4.0);
    assert!(
        !errors
            .iter()
            .any(|e| e.contains("fatal") || e.contains("Decrypt") || e.contains("keyLoad")),
        "{errors:?}"
    );
    assert!(
        fetched.iter().any(|u| u.contains("/private/alice/key/")),
        "no key fetched: {fetched:?}"
    );
    assert!(
        (fetched.iter()).any(|u| u
            .rsplit('/')
            .next()
            .is_some_and(|f| f.ends_with(".m4s") && f.matches('.').count() == 2)),
        "no low-latency part fetched: {fetched:?}"
    );
    drop(bob);
    let guest = Browser::start_with(&["--ignore-certificate-errors"]);
    let (errors, _) = plays(&guest, &format!("{base}{share_path}"), 4.0);
    assert!(!errors.iter().any(|e| e.contains("fatal")), "{errors:?}");
    drop(guest);
    // A stranger's page shows neither the stream nor its title.
    let stranger = Browser::start_with(&["--ignore-certificate-errors"]);
    stranger.goto(&format!("{base}/alice"));
    let locked = wait_for(Duration::from_secs(10), || {
        (stranger.eval("return !document.getElementById('private').hidden") == true).then_some(())
    });
    assert!(locked.is_some(), "the private notice never showed");
    assert_eq!(
        stranger.eval("var v = document.getElementById('player'); return v.currentTime"),
        0
    );
    drop(stranger);

    publisher.kill();
    // No token or share code in the edge's access log, the origin's log or its files.
    let edge_log = std::fs::read_to_string(&access_log).unwrap_or_default();
    assert!(
        edge_log.contains("/private/alice/"),
        "the access log recorded nothing"
    );
    let token_value = valid.trim_start_matches("bs_play=");
    for (what, text) in [
        ("edge access log", &edge_log),
        ("origin log", &server.log()),
    ] {
        assert!(
            !text.contains(token_value),
            "a playback token in the {what}"
        );
        assert!(!text.contains(&code), "a share code in the {what}");
        let secret = secrets[0]["secret"].as_str().unwrap();
        assert!(!text.contains(secret), "a signing secret in the {what}");
    }
    assert_eq!(
        server.leaks(&k1.body),
        None,
        "the media key was written somewhere"
    );
    assert!(
        !edge_log.contains(
            &k1.body
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        "the media key in the edge's log"
    );
    if let Some(leak) = server.secret_leak() {
        panic!("{leak}");
    }
}
