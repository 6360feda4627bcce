//! Issue 13: one signed-up user or one anonymous client must not be able to take the service down.
//! Each test drives the real binary with the bytes or requests of one attack and checks what an
//! operator would: the slot, memory or disk it tried to pin is released, nobody else is locked out,
//! and the log says why in one short line without a key.

use std::time::Duration;

use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::rtmp::RawRtmp;
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

fn goes_live(server: &Server, user: &str, within: Duration) -> bool {
    wait_for(within, || {
        server
            .live_users()
            .contains(&user.to_string())
            .then_some(())
    })
    .is_some()
}

/// Flaw 2: peers that send pings before `connect` and never read held their connection slot for
/// ever (the write had no deadline). With the per-address cap at 3, three such peers locked every
/// publisher on their address out; now they are cut off at the setup deadline.
#[test]
fn rtmp_peers_that_never_read_do_not_pin_connection_slots() {
    let server = Server::start(&["--max-connections-per-ip", "3", "--handshake-timeout", "2"]);
    let key = server.add_user("alice");
    let mut pinned = Vec::new();
    for _ in 0..3 {
        let mut raw = RawRtmp::connect_small_window(server.rtmp);
        raw.handshake();
        assert!(
            raw.flood_pings_until_blocked(Duration::from_millis(500), 256 << 20),
            "the server kept reading pings it could not answer"
        );
        pinned.push(raw);
    }
    // Past the setup deadline, still without reading a byte, the slots are free again.
    std::thread::sleep(Duration::from_secs(3));
    let mut publisher = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(
        goes_live(&server, "alice", Duration::from_secs(10)),
        "a publisher on the same address was locked out: {}\n{}",
        publisher.stderr(),
        server.log()
    );
    let _ = publisher.wait(Duration::from_secs(20));
    let log = server.log();
    assert!(
        log.matches("the peer did not read what we sent before the deadline")
            .count()
            + log
                .matches("too much unread output before publishing")
                .count()
            >= 3,
        "{log}"
    );
    drop(pinned);
}

/// Flaw 6: client-chosen text reached the log in full. A 60 KB app name cost ~390 KB of log per
/// connection, a newline in it forged a log line, and a near-miss key (one character off, so not
/// well-formed) was logged verbatim — its checksum lets a log reader repair it offline.
#[test]
fn client_text_in_logs_is_short_one_line_and_scrubbed() {
    use rml_rtmp::rml_amf0::Amf0Value;
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let mut near = key.clone().into_bytes();
    near[10] = if near[10] == b'a' { b'b' } else { b'a' };
    let near = String::from_utf8(near).unwrap();
    let app = format!(
        "x{near}\nINFO forged line\x1b[31m{}",
        "y-".repeat(30 * 1024)
    );
    let before = server.log().len();
    let mut raw = RawRtmp::connect(server.rtmp);
    raw.handshake();
    let connect = raw.command(
        "connect",
        1.0,
        Amf0Value::Object([("app".to_string(), Amf0Value::Utf8String(app))].into()),
        vec![],
    );
    raw.send(&connect);
    assert!(
        raw.closed_within(Duration::from_secs(5)),
        "refused and closed"
    );
    let log = wait_for(Duration::from_secs(3), || {
        let log = server.log();
        log[before..].contains("unknown app").then_some(log)
    })
    .expect("the refusal is logged");
    let added = &log[before..];
    assert!(
        added.len() < 2048,
        "one hostile connect wrote {} bytes of log",
        added.len()
    );
    assert!(
        !added.lines().any(|l| l.starts_with("INFO forged line")),
        "a client forged a log line: {added}"
    );
    assert!(
        !added.contains('\x1b'),
        "a raw control character was logged"
    );
    assert!(
        !boltstream_shared::key::contains_key_like(added.as_bytes()),
        "a near-miss key was logged: {added}"
    );
    assert!(added.contains("bytes)"), "the cut is said: {added}");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes of every file under `dir`.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        total += if path.is_dir() {
            disk_bytes(&path)
        } else {
            entry.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

/// Flaw 1: the packager bounded a segment only in media time, which the publisher controls. A
/// publisher with a valid key sends 2.5 s of ordinary media, then frames at line rate whose
/// timestamps are frozen or crawl — audio+video, video-only and audio-only. Each variant must end
/// the publish with a log line naming the user and the bound, end the playlist, and keep the
/// server's memory and disk within the configured bounds (1 Mb/s × 4 s segments here: 500 KB).
#[test]
fn frozen_or_crawling_timestamps_cannot_grow_a_segment_without_bound() {
    use boltstream_tests::rtmp::{flv, RawPublisher};
    let server = Server::start(&[
        "--hls-max-bitrate-mbps",
        "1",
        "--hls-max-segment-duration",
        "4",
        "--media-stall-timeout",
        "2",
    ]);
    let key = server.add_user("alice");
    // The bound the settings imply for the window (1 Mb/s × (6 × 2 s + 4 s)) plus the window's
    // own files; memory: the server's baseline plus a few segments' worth.
    let disk_bound = 2_000_000 + 2_000_000;
    let rss_bound_kib = 120 * 1024;
    type Frame = fn(u32) -> (bool, u32); // (is video, timestamp) of attack frame i
    let line_rate = Duration::ZERO;
    let variants: [(&str, bool, bool, Frame, Duration); 4] = [
        (
            "audio+video frozen",
            true,
            true,
            |i| (i % 2 == 0, 2_500),
            line_rate,
        ),
        (
            "video-only crawling",
            false,
            true,
            |i| (true, 2_500 + i / 8),
            line_rate,
        ),
        (
            "audio-only frozen",
            true,
            false,
            |_| (false, 2_500),
            line_rate,
        ),
        // Slowly enough to stay under the byte bound: the stalled clock ends it.
        (
            "video-only frozen, 20 frames/s",
            false,
            true,
            |_| (true, 2_500),
            Duration::from_millis(50),
        ),
    ];
    for (name, with_audio, with_video, frame, pace) in variants {
        let before = server.log().len();
        let mut p = RawPublisher::start(server.rtmp, "app", &key)
            .unwrap_or_else(|e| panic!("{name}: publish refused: {e}"));
        if with_video {
            p.video(&flv::avc_config(), 0).unwrap();
        }
        if with_audio {
            p.audio(&flv::aac_config(), 0).unwrap();
        }
        // 2.5 s of ordinary media (30 fps, keyframe every 2 s, audio every ~21 ms), sent at once.
        for ms in (0..2_500u32).step_by(21) {
            if with_video && ms % 33 < 21 {
                p.video(&flv::video(ms % 2_000 < 21, 2_000), ms).unwrap();
            }
            if with_audio {
                p.audio(&flv::audio(), ms).unwrap();
            }
        }
        let started = std::time::Instant::now();
        let (mut peak_rss, mut peak_disk) = (0, 0);
        let mut ended = false;
        for i in 0..2_000_000u32 {
            let (video, ms) = frame(i);
            let sent = if video {
                p.video(&flv::video(i == 0 && !with_audio, 4_000), ms)
            } else {
                p.audio(&flv::audio(), ms)
            };
            if i % 500 == 0 {
                peak_rss = peak_rss.max(rss_kib(server.pid()));
                peak_disk = peak_disk.max(disk_bytes(&server.data().join("hls")));
            }
            if sent.is_err() {
                ended = true;
                break;
            }
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
            std::thread::sleep(pace);
        }
        assert!(ended, "{name}: the server still took media after 20 s");
        let log = wait_for(Duration::from_secs(5), || {
            let log = server.log();
            log[before..].contains("publish ended").then_some(log)
        })
        .unwrap_or_else(|| server.log());
        let added = &log[before..];
        let line = added
            .lines()
            .find(|l| l.contains("publish ended"))
            .unwrap_or_else(|| panic!("{name}: no end logged: {added}"));
        assert!(
            line.contains("user=alice") && line.contains("limit exceeded"),
            "{name}: {line}"
        );
        assert!(!boltstream_shared::key::contains_key_like(added.as_bytes()));
        assert!(
            peak_rss <= rss_bound_kib,
            "{name}: server RSS reached {peak_rss} KiB"
        );
        assert!(
            peak_disk <= disk_bound,
            "{name}: HLS output reached {peak_disk} bytes"
        );
        let playlist = wait_for(Duration::from_secs(5), || {
            let r = boltstream_tests::http::get(server.http, "/live/alice/index.m3u8");
            r.text().contains("#EXT-X-ENDLIST").then_some(r)
        });
        assert!(playlist.is_some(), "{name}: the playlist was not ended");
        assert!(
            wait_for(Duration::from_secs(5), || server
                .live_users()
                .is_empty()
                .then_some(()))
            .is_some(),
            "{name}: still live"
        );
        eprintln!(
            "{name}: ended after {:.1} s, peak RSS {peak_rss} KiB, peak HLS disk {peak_disk} B: {line}",
            started.elapsed().as_secs_f64()
        );
    }
}
