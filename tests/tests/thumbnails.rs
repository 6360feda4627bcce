//! Live thumbnails end to end: ffmpeg publishing to the real ingest, the pictures it makes served
//! through the shipped Envoy with the filter, read back by ffprobe; a stream whose keyframes cannot
//! be decoded keeps its placeholder; a private stream is never pictured.

use std::time::Duration;

use boltstream_tests::envoy::Envoy;
use boltstream_tests::http::{get, request, Response};
use boltstream_tests::media::{run, Clip, Publisher};
use boltstream_tests::rtmp::{flv, RawPublisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

fn metric(server: &Server, line_start: &str) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    (metrics.lines())
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in {metrics}"))
}

fn channel(server: &Server, user: &str) -> serde_json::Value {
    let r = get(server.http, &format!("/api/v1/channels/{user}"));
    serde_json::from_slice(&r.body).unwrap_or_default()
}

/// The channel's thumbnail URL once it has one.
fn thumbnail_url(server: &Server, user: &str, within: Duration) -> Option<String> {
    wait_for(within, || {
        channel(server, user)["thumbnail"]
            .as_str()
            .map(str::to_string)
    })
}

/// Width, height and codec of a picture, as ffprobe reads it after decoding it whole.
fn probe(jpeg: &[u8], name: &str) -> (u64, u64, String) {
    let path = out_dir().join(name);
    std::fs::write(&path, jpeg).unwrap();
    // Decoded whole: ffmpeg with -xerror succeeds.
    boltstream_tests::media::decode_errors(&path);
    let (_, out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "csv=p=0",
            &path.to_string_lossy(),
        ],
        Duration::from_secs(20),
    );
    let fields: Vec<&str> = out.trim().split(',').collect();
    (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[0].to_string(),
    )
}

#[test]
fn a_live_channel_is_pictured_at_go_live_and_every_interval_and_the_edge_caches_each_picture() {
    let server = Server::start(&["--thumbnail-interval", "5"]);
    let key = server.add_user("alice");
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let first = thumbnail_url(&server, "alice", Duration::from_secs(20)).expect("a thumbnail");
    assert!(
        first.starts_with("/thumb/alice/") && first.ends_with(".jpg"),
        "{first}"
    );

    // Through the edge: the shared policy's headers, a JPEG of the stream's shape.
    let before = metric(
        &server,
        "boltstream_http_requests_total{route=\"thumbnail\"} ",
    );
    let r = get(envoy.addr, &first);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let (w, h, codec) = probe(&r.body, "thumbnail-first.jpg");
    assert_eq!(
        (w, h, codec.as_str()),
        (640, 360, "mjpeg"),
        "1280x720 shrunk into 640x360"
    );
    // The second viewer's fetch is the edge's copy.
    let again = get(envoy.addr, &first);
    assert_eq!(again.body, r.body);
    assert!(again.header("age").is_some(), "served from the edge cache");
    assert_eq!(
        metric(
            &server,
            "boltstream_http_requests_total{route=\"thumbnail\"} "
        ) - before,
        1,
        "the origin saw the picture once"
    );
    // The channel page's poster and the directory's card name it.
    let page = get(server.http, "/alice").text();
    assert!(page.contains("poster=\"/thumb/alice/"), "{page}");
    let directory = get(server.http, "/").text();
    assert!(
        directory.contains("<img src=\"/thumb/alice/"),
        "{directory}"
    );

    // A new picture every interval, under a new URL; the one before it is still served.
    let second = wait_for(Duration::from_secs(20), || {
        thumbnail_url(&server, "alice", Duration::from_secs(1)).filter(|u| *u != first)
    })
    .expect("a second thumbnail within the interval");
    let id = |u: &str| -> u64 { u[13..u.len() - 4].parse().unwrap() };
    assert!(id(&second) > id(&first), "{first} then {second}");
    assert_eq!(get(server.http, &second).status, 200);
    assert_eq!(
        get(server.http, &first).status,
        200,
        "the previous picture is kept"
    );

    // Pictures that were never made, or are no longer kept, are 404s nobody caches.
    let missing = get(server.http, "/thumb/alice/1.jpg");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("cache-control"), Some("no-store"));
    let head = request(server.http, "HEAD", second.as_bytes(), &[], b"").unwrap();
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(get(server.http, "/thumb/alice/latest.jpg").status, 404);

    // The stream ends: its pictures go with it.
    publisher.kill();
    assert!(
        wait_for(Duration::from_secs(15), || {
            (get(server.http, &second).status == 404).then_some(())
        })
        .is_some(),
        "a thumbnail outlived its stream"
    );
    assert!(metric(&server, "boltstream_thumbnails_total{result=\"made\"} ") >= 2);
}

#[test]
fn undecodable_keyframes_keep_the_placeholder_and_log_once() {
    let server = Server::start(&["--thumbnail-interval", "5"]);
    let key = server.add_user("alice");
    // A publisher whose "H.264" is filler bytes: the packager takes it, no decoder can.
    let mut raw = RawPublisher::start(server.rtmp, "app", &key).expect("publish");
    raw.video(&flv::avc_config(), 0).unwrap();
    let mut ms = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(14);
    while std::time::Instant::now() < deadline {
        for n in 0..30 {
            raw.video(&flv::video(n == 0, 2_000), ms).unwrap();
            ms += 33;
        }
        std::thread::sleep(Duration::from_millis(900));
    }
    assert!(server.wait_live("alice", Duration::from_secs(5)));
    let failed = metric(&server, "boltstream_thumbnails_total{result=\"failed\"} ");
    assert!(failed >= 2, "at go-live and after an interval: {failed}");
    assert!(channel(&server, "alice")["thumbnail"].is_null());
    let directory = get(server.http, "/").text();
    assert!(
        directory.contains("<div class=\"thumb\">A</div>"),
        "{directory}"
    );
    let log = server.log();
    assert_eq!(
        log.matches("no thumbnail from this stream").count(),
        1,
        "{log}"
    );
}

fn playback(server: &Server, user: &str, cookie: &str) -> Response {
    request(
        server.http,
        "POST",
        format!("/api/v1/channels/{user}/playback").as_bytes(),
        &[("content-type", "application/json"), ("cookie", cookie)],
        b"{}",
    )
    .unwrap()
}

#[test]
fn a_private_stream_is_never_pictured() {
    let server = Server::start(&["--thumbnail-interval", "5"]);
    let key = server.add_user("bob");
    let out = server.cli(&["access", "set", "bob", "private"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cookie = server.session("bob");
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playable = wait_for(Duration::from_secs(20), || {
        let r = playback(&server, "bob", &cookie);
        let c: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        (c["playable"] == true).then_some(c)
    })
    .expect("bob's private stream plays for bob");
    assert!(playable["thumbnail"].is_null(), "{playable}");
    // Long enough for a public stream to have had two pictures.
    std::thread::sleep(Duration::from_secs(6));
    let c: serde_json::Value =
        serde_json::from_slice(&playback(&server, "bob", &cookie).body).unwrap();
    assert!(c["thumbnail"].is_null(), "{c}");
    assert_eq!(
        metric(&server, "boltstream_thumbnails_total{result=\"made\"} "),
        0
    );
    assert_eq!(
        metric(&server, "boltstream_thumbnails_total{result=\"failed\"} "),
        0
    );
}
