//! Issue: no key ever leaks. Runs last among the end-to-end tests (cargo runs test binaries in name
//! order): scans every server log the suite wrote, plus a fresh scenario's data directory (all but
//! the database), for any stream key or near miss of one, and the bodies of every public route for
//! any well-formed key.

use std::path::Path;
use std::time::Duration;

use boltstream_shared::key::{contains_key, contains_key_like};
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

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
    server.cli(&["key", "rotate", "alice"]);
    std::thread::sleep(Duration::from_secs(3));

    // Every file under the data directory except the database itself.
    let mut all = Vec::new();
    files(server.data(), &mut all);
    let mut scanned = 0;
    for path in &all {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("boltstream.db") {
            continue;
        }
        let bytes = std::fs::read(path).unwrap_or_default();
        assert!(
            !contains_key_like(&bytes),
            "{} carries a stream key or a near miss of one",
            path.display()
        );
        scanned += 1;
    }
    assert!(scanned > 2, "the scan saw the HLS output");

    // Every server log line written by the whole end-to-end suite (this run and earlier ones).
    let mut logs = Vec::new();
    files(&out_dir().join("logs"), &mut logs);
    let server_logs: Vec<_> = logs
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("server-")
        })
        .collect();
    assert!(!server_logs.is_empty());
    let mut lines = 0;
    for path in server_logs {
        let text = std::fs::read(path).unwrap();
        for line in text.split(|b| *b == b'\n') {
            lines += 1;
            assert!(
                !contains_key_like(line),
                "{}: a log line carries a stream key or a near miss of one: {}",
                path.display(),
                String::from_utf8_lossy(line)
            );
        }
    }
    eprintln!(
        "secret scan: {} response bodies, {scanned} data files, {lines} log lines",
        bodies.len()
    );
    assert!(
        server.log().contains("key=live_…"),
        "refused keys appear redacted"
    );
}
