//! No key ever leaks: a scenario that handles keys every way — accepted, refused, near
//! misses, rotated, in URLs — and checks every public body for a key. Its server's log and data
//! directory are scanned like every test server's, when it is dropped (`tests/src/server.rs`), so
//! this test depends on no other test having run before it.

use std::time::Duration;

use boltstream_shared::key::contains_key;
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::{collect_files, Server};
use boltstream_tests::wait_for;

#[test]
fn no_key_in_logs_files_or_public_responses() {
    // A scenario that handles keys every way: accepted, refused, rotated, in URLs.
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let forged = boltstream_shared::cases::EXAMPLE_KEY;
    let mut refused = Publisher::start(Clip::Short, &server.publish_url(forged), false);
    refused.wait(Duration::from_secs(5));
    // Near misses (one character off, so the checksum fails) are as secret as the key: as the
    // stream key and as the app name, where client text reaches the log.
    let mut near = key.clone().into_bytes();
    near[10] = if near[10] == b'a' { b'b' } else { b'a' };
    let near = String::from_utf8(near).unwrap();
    let mut refused = Publisher::start(Clip::Short, &server.publish_url(&near), false);
    refused.wait(Duration::from_secs(5));
    let wrong_app = format!("rtmp://{}/{near}/x", server.rtmp);
    let mut refused = Publisher::start(Clip::Short, &wrong_app, false);
    refused.wait(Duration::from_secs(5));
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playlist = wait_for(Duration::from_secs(10), || {
        Some(get(server.http, "/live/alice/index.m3u8")).filter(|r| r.status == 200)
    })
    .unwrap();
    let mut bodies = vec![playlist.clone()];
    for seg in playlist.text().lines().filter(|l| l.ends_with(".ts")) {
        bodies.push(get(server.http, &format!("/live/alice/{seg}")));
    }
    for path in [
        "/",
        "/alice",
        "/nobody",
        "/login",
        "/signup",
        "/api/v1/channels",
        "/api/v1/channels/alice",
        "/live/alice.m3u8",
    ] {
        bodies.push(get(server.http, path));
    }
    for path in [
        format!("/live/{key}/index.m3u8"),
        format!("/{key}"),
        format!("/api/v1/channels/{key}"),
    ] {
        bodies.push(get(server.http, &path));
    }
    for (i, body) in bodies.iter().enumerate() {
        assert!(
            !contains_key(&body.body),
            "response {i} carries a stream key"
        );
    }
    server.rotate_key("alice");
    std::thread::sleep(Duration::from_secs(3));

    let mut files = Vec::new();
    collect_files(server.data(), &mut files);
    assert!(
        files.len() > 3,
        "the scan will see the HLS output: {files:?}"
    );
    assert_eq!(server.secret_leak(), None);
    assert!(
        server.log().contains("key=live_…"),
        "refused keys appear redacted"
    );
}
