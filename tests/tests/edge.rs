//! The edge: real ingest + real Envoy (V8 running the filter) + ffmpeg publishing.

use std::time::Duration;

use boltstream_ingest::http::ROUTE_LABELS;
use boltstream_tests::envoy::Envoy;
use boltstream_tests::http::{get, request, Response};
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

fn origin_count(server: &Server, route: &str) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    let needle = format!("boltstream_http_requests_total{{route=\"{route}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {route} in {metrics}"))
}

/// alice live behind the shipped Envoy: the server, her key, the edge, the publisher, the first
/// playlist the edge served under `path`, and the name of a segment it lists.
fn live_behind_edge(path: &str) -> (Server, String, Envoy, Publisher, Response, String) {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playlist = wait_for(Duration::from_secs(15), || {
        let r = get(envoy.addr, path);
        (r.status == 200).then_some(r)
    })
    .expect("playlist through the edge");
    let segment = playlist
        .text()
        .lines()
        .find(|l| l.ends_with(".ts"))
        .expect("a segment listed")
        .to_string();
    (server, key, envoy, publisher, playlist, segment)
}

#[test]
fn edge_serves_canonical_cached_media_and_refuses_keys() {
    // Both spellings through the edge give the playlist.
    let (server, key, envoy, _publisher, playlist, name) = live_behind_edge("/live/alice.m3u8");
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
    let upper = get(envoy.addr, "/live/ALICE/index.m3u8");
    assert_eq!(upper.status, 200);
    assert!(upper.text().starts_with("#EXTM3U"));

    // A segment: immutable, and the second fetch is Envoy's cache (the origin sees it once).
    let before = origin_count(&server, "live_segment");
    let first = get(envoy.addr, &format!("/live/alice/{name}"));
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(first.header("content-type"), Some("video/mp2t"));
    let second = get(envoy.addr, &format!("/live/Alice/{name}"));
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body);
    assert!(
        second.header("age").is_some(),
        "second fetch served from the edge cache"
    );
    assert_eq!(
        origin_count(&server, "live_segment") - before,
        1,
        "the origin saw the segment once"
    );

    // Key-bearing and internal paths: 403 at the edge, never reaching the origin.
    let total_before: u64 = ROUTE_LABELS.iter().map(|r| origin_count(&server, r)).sum();
    for path in [
        format!("/live/{key}/index.m3u8"),
        format!("/app/{key}"),
        format!("/live/alice/index.m3u8?k={key}"),
        "/internal/health".to_string(),
        "/internal/metrics".to_string(),
    ] {
        let r = get(envoy.addr, &path);
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.text().contains(&key));
    }
    let traversal = request(
        envoy.addr,
        "GET",
        b"/live/alice/..%2F..%2Finternal/health",
        &[],
        b"",
    )
    .unwrap();
    assert!(
        traversal.status == 400 || traversal.status == 403 || traversal.status == 404,
        "{}",
        traversal.status
    );
    let total_after: u64 = ROUTE_LABELS.iter().map(|r| origin_count(&server, r)).sum();
    // Only the test's own metrics reads (one per route label) may have reached the origin
    // meanwhile.
    assert_eq!(
        origin_count(&server, "key_bearing"),
        0,
        "a key-bearing path reached the origin"
    );
    assert!(
        total_after - total_before <= ROUTE_LABELS.len() as u64,
        "refused requests reached the origin: {} extra",
        total_after - total_before
    );

    // The playlist is never cached longer than its max-age: a new segment shows within max-age + 1 s.
    let current = get(envoy.addr, "/live/alice/index.m3u8").text();
    let newest = current
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    let origin_newer = wait_for(Duration::from_secs(6), || {
        let origin = get(server.http, "/live/alice/index.m3u8").text();
        let n = origin
            .lines()
            .rfind(|l| l.ends_with(".ts"))
            .unwrap()
            .to_string();
        (n != newest).then_some(n)
    })
    .expect("the origin produces a new segment");
    let seen = wait_for(Duration::from_millis(2500), || {
        get(envoy.addr, "/live/alice/index.m3u8")
            .text()
            .contains(&origin_newer)
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "the edge served a playlist older than its max-age"
    );
    let age = get(envoy.addr, "/live/alice/index.m3u8")
        .header("age")
        .map(|a| a.parse::<u64>().unwrap())
        .unwrap_or(0);
    assert!(age <= 1, "playlist age {age}");
}

/// `curl` against the edge's HTTPS listener: the HTTP version it spoke, the status, the headers
/// and the body's length. `-k`: the test certificate is self-signed.
fn curl_tls(envoy: &Envoy, http: &str, path: &str) -> (String, u16, String, usize) {
    let url = format!("https://localhost:{}{path}", envoy.tls.port());
    let resolve = format!("localhost:{}:127.0.0.1", envoy.tls.port());
    let headers = boltstream_tests::out_dir().join(format!("curl-{}-{http}.h", envoy.tls.port()));
    let (ok, out, err) = boltstream_tests::media::run(
        "curl",
        &[
            "-sk",
            http,
            "--resolve",
            &resolve,
            "-D",
            headers.to_str().unwrap(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{size_download}",
            &url,
        ],
        Duration::from_secs(20),
    );
    assert!(ok, "curl {http} {url}: {err}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    (
        fields[0].to_string(),
        fields[1].parse().unwrap(),
        std::fs::read_to_string(&headers).unwrap().to_lowercase(),
        fields[2].parse().unwrap(),
    )
}

/// The shipped config serves the site over HTTPS, HTTP/2 chosen by ALPN (HTTP/1.1 for clients
/// that only speak it), with the same filter and cache as the plain listener.
#[test]
fn the_edge_speaks_https_and_http2() {
    let (_server, key, envoy, _publisher, _, name) = live_behind_edge("/live/alice/index.m3u8");
    let (version, status, headers, _) = curl_tls(&envoy, "--http2", "/live/alice.m3u8");
    assert_eq!((version.as_str(), status), ("2", 200), "{headers}");
    assert!(
        headers.contains("content-type: application/vnd.apple.mpegurl"),
        "{headers}"
    );
    let segment = get(envoy.addr, &format!("/live/alice/{name}"));
    let (version, status, headers, len) =
        curl_tls(&envoy, "--http2", &format!("/live/alice/{name}"));
    assert_eq!((version.as_str(), status), ("2", 200), "{headers}");
    assert_eq!(len, segment.body.len(), "the same segment over HTTPS");
    assert!(headers.contains("cache-control: public, max-age=31536000, immutable"));
    let (version, status, _, _) = curl_tls(&envoy, "--http1.1", "/live/alice.m3u8");
    assert_eq!((version.as_str(), status), ("1.1", 200));
    // The filter's refusals hold on the HTTPS listener too.
    let (_, status, _, _) = curl_tls(&envoy, "--http2", &format!("/live/{key}/index.m3u8"));
    assert_eq!(status, 403);
    let (_, status, _, _) = curl_tls(&envoy, "--http2", "/internal/metrics");
    assert_eq!(status, 403);
}

/// The request targets an origin saw.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// An origin that answers every request after `delay`, keeping the request targets it saw: a
/// stand-in for one that holds a request (a blocking playlist reload, a part not yet made).
fn slow_origin(delay: Duration) -> (std::net::SocketAddr, Seen) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let targets: Seen = Default::default();
    let seen = std::sync::Arc::clone(&targets);
    std::thread::spawn(move || {
        // Bounded: the test makes far fewer connections than this.
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // One request per connection is enough for the test; keep-alive requests that
                // follow are answered the same way.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let target = head.split_whitespace().nth(1).unwrap_or_default();
                    seen.lock().unwrap().push(target.to_string());
                    std::thread::sleep(delay);
                    let body = b"#EXTM3U\n";
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ndate: {}\r\ncontent-type: video/mp2t\r\ncache-control: public, max-age=31536000, immutable\r\ncontent-length: {}\r\n\r\n",
                        httpdate::fmt_http_date(std::time::SystemTime::now()),
                        body.len()
                    );
                    if stream
                        .write_all(head.as_bytes())
                        .and_then(|()| stream.write_all(body))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (addr, targets)
}

/// Viewers asking the edge at once for an object it does not have yet reach the origin once:
/// `cache_v2` makes the later requests wait for the first one's upstream fetch (the v1 cache filter
/// sent each of them upstream).
#[test]
fn concurrent_misses_reach_the_origin_once() {
    let (origin, seen) = slow_origin(Duration::from_millis(700));
    let envoy = Envoy::start(origin, r#"{"playlist_max_age": 1}"#);
    let viewers: Vec<_> = (0..20)
        .map(|_| {
            let addr = envoy.addr;
            std::thread::spawn(move || get(addr, "/live/alice/1700000000000.ts").status)
        })
        .collect();
    let statuses: Vec<u16> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "20 concurrent viewers, one origin request"
    );
}

/// A blocking playlist request is cached under its `_HLS_*` directives in one order, whatever
/// order or extra parameters the player sent; other directives are other objects.
#[test]
fn blocking_requests_are_cached_under_their_directives_only() {
    let (origin, seen) = slow_origin(Duration::from_millis(10));
    let envoy = Envoy::start(origin, r#"{"playlist_max_age": 1}"#);
    for path in [
        "/live/alice/index.m3u8?_HLS_part=1&_HLS_msn=5&cb=913",
        "/live/Alice.m3u8?_HLS_msn=5&_HLS_part=1",
        "/live/alice/index.m3u8?_HLS_msn=5&x=1&_HLS_part=1&_HLS_msn=8",
    ] {
        let r = get(envoy.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=60"),
            "{path}"
        );
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["/live/alice/index.m3u8?_HLS_msn=5&_HLS_part=1".to_string()],
        "one object, in its canonical form"
    );
    assert_eq!(
        get(envoy.addr, "/live/alice/index.m3u8?_HLS_msn=6").status,
        200
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "another request, another object"
    );
}

#[test]
fn invalid_plugin_configuration_is_rejected_by_envoy() {
    let server = Server::start(&[]);
    let yaml = boltstream_tests::envoy::config(
        (1, 3),
        2,
        server.http,
        r#"{"playlist_max_age": 999}"#,
        None,
    );
    let path = boltstream_tests::out_dir()
        .join("envoy")
        .join("bad-plugin.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, yaml).unwrap();
    let (ok, out, err) = boltstream_tests::media::run(
        boltstream_tests::envoy::binary().to_str().unwrap(),
        &[
            "--mode",
            "validate",
            "-c",
            path.to_str().unwrap(),
            "--use-dynamic-base-id",
        ],
        Duration::from_secs(60),
    );
    assert!(!ok, "envoy accepted an invalid plugin configuration");
    let all = format!("{out}{err}");
    assert!(
        all.contains("invalid boltstream filter configuration"),
        "{all}"
    );
}

/// Issue 13, flaw 7: with `merge_slashes` off, `//admin` passed `blocked_path_prefixes: ["/admin"]`
/// and `//internal/health` was not internal to the edge. The shared rules now drop empty path
/// segments themselves, so real Envoy refuses every spelling whatever its own normalisation.
#[test]
fn empty_segments_and_encodings_do_not_slip_past_blocked_prefixes() {
    let server = Server::start(&[]);
    let envoy = Envoy::start_with(
        server.http,
        r#"{"blocked_path_prefixes": ["/admin"]}"#,
        |yaml| yaml.replace("merge_slashes: true", "merge_slashes: false"),
    );
    let other_before = origin_count(&server, "other");
    for path in [
        &b"/admin"[..],
        b"//admin",
        b"///admin//users",
        b"/%61dmin",
        b"//internal/health",
        b"/internal//metrics",
    ] {
        let r = request(envoy.addr, "GET", path, &[], b"").unwrap();
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(path));
    }
    assert_eq!(
        origin_count(&server, "other"),
        other_before,
        "a refused path reached the origin"
    );
    assert_eq!(get(envoy.addr, "/login").status, 200, "other pages pass");
}

/// The real low-latency origin behind the real edge: 20 viewers asking at once for the next part
/// (a blocking playlist request, and the preload-hinted part itself) before it exists reach the
/// origin once each, get what they asked for, and a random query on a part is not another object.
#[test]
fn low_latency_viewers_waiting_for_the_next_part_reach_the_origin_once() {
    let server = Server::start(&["--hls-format", "cmaf"]);
    let key = server.add_user("alice");
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let text = wait_for(Duration::from_secs(20), || {
        let r = get(server.http, "/live/alice/index.m3u8");
        (r.status == 200 && r.text().contains("#EXT-X-PRELOAD-HINT")).then(|| r.text())
    })
    .expect("a live low-latency playlist");
    // The hinted part, and the blocking request that asks for it: its segment's msn and index.
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .map(|u| u.trim_end_matches('"').to_string())
        .unwrap();
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .unwrap();
    // The hinted part is the open segment's next, or the next segment's first: either way its
    // segment's msn follows every complete one.
    let index = hint.trim_end_matches(".m4s").split_once('.').unwrap().1;
    let segment_msn = msn + text.matches("#EXTINF").count() as u64;
    let blocking = format!("/live/alice/index.m3u8?_HLS_msn={segment_msn}&_HLS_part={index}");
    let (playlists0, media0) = (
        origin_count(&server, "live_playlist"),
        origin_count(&server, "live_segment"),
    );
    let viewers: Vec<_> = (0..20)
        .map(|i| {
            let addr = envoy.addr;
            let target = if i % 2 == 0 {
                blocking.clone()
            } else {
                format!("/live/alice/{hint}")
            };
            std::thread::spawn(move || (target.clone(), get(addr, &target)))
        })
        .collect();
    let answers: Vec<(String, Response)> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    for (target, r) in &answers {
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        if target.contains("_HLS_msn") {
            assert!(
                r.text().contains(&format!("URI=\"{hint}\"")),
                "{target}:\n{}",
                r.text()
            );
        }
    }
    let parts: Vec<&Vec<u8>> = (answers.iter())
        .filter(|(t, _)| !t.contains("_HLS_msn"))
        .map(|(_, r)| &r.body)
        .collect();
    assert!(
        parts.windows(2).all(|w| w[0] == w[1]),
        "one part, the same bytes for all"
    );
    assert_eq!(
        origin_count(&server, "live_playlist") - playlists0,
        1,
        "10 blocking requests for the next part, one origin request"
    );
    assert_eq!(
        origin_count(&server, "live_segment") - media0,
        1,
        "10 requests for the hinted part, one origin request"
    );
    // A random query on a part is the same object: served from the edge's cache.
    let busted = get(envoy.addr, &format!("/live/alice/{hint}?x=8f3a1c"));
    assert_eq!(busted.status, 200);
    assert_eq!(&busted.body, parts[0]);
    assert_eq!(origin_count(&server, "live_segment") - media0, 1);
    assert!(busted
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
}
