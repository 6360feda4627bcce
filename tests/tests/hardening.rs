//! One signed-up user or one anonymous client cannot take the service down.
//! Each test drives the real binary with the bytes or requests of one attack and checks what an
//! operator would: the slot, memory or disk it tried to pin is released, nobody else is locked out,
//! and the log says why in one short line without a key.

use std::time::Duration;

use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::rtmp::RawRtmp;
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

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
        server.wait_live("alice", Duration::from_secs(10)),
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
    frozen_or_crawling_timestamps_attack("ts");
}

/// The same attack on the low-latency output, whose packager and window are its own.
#[test]
fn frozen_or_crawling_timestamps_cannot_grow_a_cmaf_segment_without_bound() {
    frozen_or_crawling_timestamps_attack("cmaf");
}

fn frozen_or_crawling_timestamps_attack(format: &str) {
    use boltstream_tests::rtmp::{flv, RawPublisher};
    let server = Server::start(&[
        "--hls-format",
        format,
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

/// Opens a connection from `source` (a loopback address) to `to`.
fn connect_from(
    source: &str,
    to: std::net::SocketAddr,
    rcvbuf: Option<usize>,
) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    socket.into()
}

/// Flaw 3: request bodies were read with no deadline and responses written with no deadline. Two
/// clients that trickle a form body and one that pipelines downloads and never reads held all
/// three connection slots of their address for as long as they liked; now each is cut off at its
/// timeout and the address gets in again.
#[test]
fn slow_bodies_and_slow_readers_release_their_connection_slots() {
    use std::io::Write as _;
    let server = Server::start(&[
        "--max-connections-per-ip",
        "3",
        "--http-body-timeout",
        "2",
        "--http-write-timeout",
        "2",
    ]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from("127.0.0.2", server.http, None);
        s.write_all(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nu",
        )
        .unwrap();
        held.push(s);
    }
    // 40 pipelined requests for hls.js (~500 KB each) into a 4 KB receive window, never read.
    let mut reader = connect_from("127.0.0.2", server.http, Some(4096));
    let one = b"GET /static/hls.min.js HTTP/1.1\r\nHost: x\r\n\r\n";
    reader.write_all(&one.repeat(40)).unwrap();
    held.push(reader);
    std::thread::sleep(Duration::from_millis(500));
    let home = || {
        let attacker = "127.0.0.2".parse().unwrap();
        boltstream_tests::http::request_from(attacker, server.http, "GET", b"/", &[], b"")
    };
    assert!(home().is_err(), "the three slots are taken at first");
    // Past both timeouts, still holding the sockets open, the address is served again.
    let served = wait_for(Duration::from_secs(8), || {
        home().ok().filter(|r| r.status == 200)
    });
    assert!(served.is_some(), "slots still pinned: {}", server.log());
    drop(held);
}

/// Posts the log-in form from `source` to `to` (the origin or the edge); returns the status.
fn log_in_from(
    source: &str,
    to: std::net::SocketAddr,
    user: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> u16 {
    boltstream_tests::http::log_in_from(source.parse().unwrap(), to, user, password, None, extra)
        .unwrap()
        .status
}

fn with_password(server: &Server, user: &str, password: &str) {
    server.add_user(user);
    let out = server.cli_with_stdin(&["user", "password", user], &format!("{password}\n"));
    assert!(out.status.success());
}

/// Flaw 3, the edge: every request through Envoy came from Envoy's address, so five wrong log-ins
/// by one viewer locked every viewer out. With the edge as a trusted proxy, the origin counts the
/// address Envoy appends to X-Forwarded-For — never the part the client wrote.
#[test]
fn through_the_edge_each_viewer_is_its_own_client() {
    use boltstream_tests::envoy::Envoy;
    let server = Server::start(&["--trusted-proxies", "127.0.0.1/32"]);
    with_password(&server, "alice", "correct horse battery");
    let edge = Envoy::start(server.http, "{}");
    // The attacker guesses from 127.0.0.2, claiming to be the victim at 127.0.0.3.
    let forged = [("x-forwarded-for", "127.0.0.3")];
    let statuses: Vec<u16> = (0..6)
        .map(|_| log_in_from("127.0.0.2", edge.addr, "alice", "wrong", &forged))
        .collect();
    // A wrong password is answered 400 (the form again, with the error).
    assert_eq!(&statuses[..5], &[400; 5], "wrong passwords: {statuses:?}");
    assert_eq!(statuses[5], 429, "the attacker is throttled: {statuses:?}");
    // The victim, through the same edge, is not.
    assert_eq!(
        log_in_from(
            "127.0.0.3",
            edge.addr,
            "alice",
            "correct+horse+battery",
            &[]
        ),
        303,
        "{}",
        server.log()
    );
    assert!(
        server.log().contains("peer=127.0.0.2"),
        "the origin saw the viewer's address"
    );
}

/// Flaw 4: the log-in throttle was checked before the (slow, ~19 MiB) password hash and counted
/// after it, so parallel guesses passed it about 40 times over; sign-up had no limit at all; and
/// every hash ran on the blocking pool that publish authentication needs. Forty parallel wrong
/// log-ins from one address now reach the hash at most five times; a guesser spread over
/// addresses is slowed per account while the owner's known address still gets in; sign-ups are
/// limited per address and for the site; and a real publish goes live during a flood of log-ins.
#[test]
fn parallel_guesses_spread_guessers_and_sign_up_floods_are_limited() {
    let server = Server::start(&[
        "--login-failures-per-account",
        "6",
        "--signups-per-address",
        "3",
        "--signups-per-minute",
        "4",
    ]);
    with_password(&server, "alice", "correct horse battery");
    let http = server.http;
    // The owner logged in once from 127.0.0.1: that address is known to the account.
    assert_eq!(
        log_in_from("127.0.0.1", http, "alice", "correct+horse+battery", &[]),
        303
    );

    let guesses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|_| s.spawn(move || log_in_from("127.0.0.2", http, "alice", "wrong", &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let hashed = guesses.iter().filter(|s| **s == 400).count();
    let throttled = guesses.iter().filter(|s| **s == 429).count();
    assert!(
        hashed <= 5,
        "{hashed} of 40 parallel guesses reached the hash: {guesses:?}"
    );
    assert_eq!(hashed + throttled, 40, "{guesses:?}");

    // Guesses spread over three more addresses use up the account's allowance (6, 5 used).
    let spread: Vec<u16> = ["127.0.0.3", "127.0.0.4", "127.0.0.5"]
        .iter()
        .map(|ip| log_in_from(ip, http, "alice", "wrong", &[]))
        .collect();
    assert_eq!(spread, [400, 429, 429], "per-account limit: {spread:?}");
    // The owner, from the address the account knows, still gets in.
    assert_eq!(
        log_in_from("127.0.0.1", http, "alice", "correct+horse+battery", &[]),
        303
    );

    // Sign-ups: three per address, four for the site.
    let sign_up = |source: &str, name: &str| {
        let ip = source.parse().unwrap();
        let pw = "a+long+enough+password";
        boltstream_tests::http::sign_up_from(ip, http, name, pw)
            .unwrap()
            .status
    };
    let from_one: Vec<u16> = (0..4)
        .map(|i| sign_up("127.0.0.6", &format!("new{i}")))
        .collect();
    assert_eq!(from_one, [200, 200, 200, 429], "{from_one:?}");
    assert_eq!(sign_up("127.0.0.7", "other1"), 200);
    assert_eq!(sign_up("127.0.0.8", "other2"), 429, "site-wide limit");

    // A flood of log-ins from many addresses does not keep a publisher out.
    let key = server.add_user("streamer");
    std::thread::scope(|s| {
        for i in 0..30u8 {
            s.spawn(move || {
                let ip = format!("127.0.1.{}", i + 1);
                for _ in 0..3 {
                    log_in_from(&ip, http, &format!("user{i}"), "wrong", &[]);
                }
            });
        }
        let mut publisher = Publisher::start(Clip::Short, &server.publish_url(&key), false);
        assert!(
            server.wait_live("streamer", Duration::from_secs(10)),
            "the publish was starved: {}",
            publisher.stderr()
        );
        let _ = publisher.wait(Duration::from_secs(20));
    });
}

/// Flaw 8, the smaller items over HTTP: `/internal/*` lives on its own (loopback) listener and is
/// a plain 404 on the public port, whatever the spelling; HEAD on pages and the API answers like
/// GET without a body; the data directory and database are private.
#[test]
fn internal_endpoints_head_requests_and_private_files() {
    use boltstream_tests::http::{get, request};
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[]);
    for path in ["/internal/health", "//internal/metrics", "/Internal/health"] {
        assert_eq!(
            get(server.http, path).status,
            404,
            "{path} on the public port"
        );
    }
    assert_eq!(get(server.internal, "/internal/health").status, 200);
    assert!(get(server.internal, "/internal/metrics")
        .text()
        .contains("boltstream_live_streams"));
    assert_eq!(get(server.internal, "/").status, 404, "only the endpoints");
    for path in ["/", "/login", "/api/v1/channels", "/nobody"] {
        let got = get(server.http, path);
        let head = request(server.http, "HEAD", path.as_bytes(), &[], b"").unwrap();
        assert_eq!(head.status, got.status, "{path}");
        assert!(head.body.is_empty(), "{path}: HEAD has no body");
        assert_eq!(
            head.header("content-type"),
            got.header("content-type"),
            "{path}"
        );
        assert_eq!(
            head.header("content-length"),
            Some(got.body.len().to_string().as_str()),
            "{path}"
        );
    }
    // A data directory the binary creates (here through the CLI, which shares the code with
    // `serve`) is private, and so is the database in it.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.data().join("boltstream.db")), 0o600);
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("new/data");
    let out = std::process::Command::new(boltstream_tests::server::binary())
        .arg("--data")
        .arg(&fresh)
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("boltstream.db")), 0o600);
}

/// Flaw 8: changing a password signs out every other session, and API tokens can be listed and
/// revoked, from the API as from the dashboard.
#[test]
fn password_change_ends_other_sessions_and_tokens_are_revocable() {
    use boltstream_tests::http::request;
    let server = Server::start(&[]);
    with_password(&server, "alice", "correct horse battery");
    let session = |source: &str| -> String {
        let ip = source.parse().unwrap();
        let pw = "correct+horse+battery";
        let r =
            boltstream_tests::http::log_in_from(ip, server.http, "alice", pw, None, &[]).unwrap();
        assert_eq!(r.status, 303);
        boltstream_tests::http::set_cookie_value(&r, "bs_session").expect("a session")
    };
    let mine = session("127.0.0.1");
    let thief = session("127.0.0.2");
    let cookie = |t: &str| format!("bs_session={t}");
    let dash = |t: &str| {
        request(
            server.http,
            "GET",
            b"/dashboard",
            &[("cookie", &cookie(t))],
            b"",
        )
        .unwrap()
    };
    let page = dash(&mine).text();
    let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[start..start + 64].to_string();
    let post = |path: &[u8], body: &str| {
        request(
            server.http,
            "POST",
            path,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &cookie(&mine)),
            ],
            format!("csrf={csrf}&{body}").as_bytes(),
        )
        .unwrap()
    };
    let wrong = post(b"/dashboard/password", "current=nope&new=new+password+here");
    assert!(wrong.text().contains("not your current password"));
    assert_eq!(
        dash(&thief).status,
        200,
        "a wrong current password changes nothing"
    );
    let changed = post(
        b"/dashboard/password",
        "current=correct+horse+battery&new=new+password+here",
    );
    assert!(
        changed.text().contains("Password changed"),
        "{}",
        changed.text()
    );
    assert_eq!(dash(&mine).status, 200, "the changer stays signed in");
    assert_eq!(dash(&thief).status, 303, "the other session is signed out");

    // API tokens: two created, listed by id, one revoked through the API itself.
    let created: Vec<String> = (0..2)
        .map(|_| {
            let page = post(b"/dashboard/token", "").text();
            let start = page.find("bst_").unwrap();
            page[start..start + 68].to_string()
        })
        .collect();
    let bearer = |t: &str| format!("Bearer {t}");
    let listed = request(
        server.http,
        "GET",
        b"/api/v1/me/tokens",
        &[("authorization", &bearer(&created[0]))],
        b"",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    let ids: Vec<String> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{json}");
    assert!(ids
        .iter()
        .all(|id| !created.iter().any(|t| t.contains(id.as_str()))));
    // Revoked through the API, signed in with the session (and its CSRF token).
    for id in &ids {
        let path = format!("/api/v1/me/tokens/{id}");
        let r = request(
            server.http,
            "DELETE",
            path.as_bytes(),
            &[("cookie", &cookie(&mine)), ("x-csrf-token", &csrf)],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let me = |t: &str| {
        request(
            server.http,
            "GET",
            b"/api/v1/me",
            &[("authorization", &bearer(t))],
            b"",
        )
        .unwrap()
        .status
    };
    let alive: Vec<u16> = created.iter().map(|t| me(t)).collect();
    assert_eq!(alive.iter().filter(|s| **s == 401).count(), 2, "{alive:?}");
}

/// Flaw 1, the serving side: a segment larger than the origin reads whole (4 MiB) is sent from
/// disk in chunks, byte for byte the file, with its length announced.
#[test]
fn a_huge_segment_is_served_from_disk_in_chunks() {
    use boltstream_tests::rtmp::{flv, RawPublisher};
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let mut p = RawPublisher::start(server.rtmp, "app", &key).expect("publish");
    p.video(&flv::avc_config(), 0).unwrap();
    // 80 KB frames at 30 fps with a keyframe every 2 s: ~4.8 MB segments.
    for f in 0..200u32 {
        let ms = f * 1000 / 30;
        p.video(&flv::video(f % 60 == 0, 80_000), ms).unwrap();
    }
    let dir = server.data().join("hls").join("alice");
    let listed = wait_for(Duration::from_secs(10), || {
        let text = boltstream_tests::http::get(server.http, "/live/alice/index.m3u8").text();
        let names: Vec<String> = text
            .lines()
            .filter(|l| l.ends_with(".ts"))
            .map(str::to_string)
            .collect();
        (names.len() >= 2).then_some(names)
    })
    .expect("two segments listed");
    // Once written, the window's segments leave memory: what follows is served from disk.
    let from_disk = wait_for(Duration::from_secs(5), || {
        let metrics = boltstream_tests::http::get(server.internal, "/internal/metrics").text();
        metrics
            .lines()
            .any(|l| l == "boltstream_hls_segment_bytes_in_memory 0")
            .then_some(())
    });
    assert!(from_disk.is_some(), "the segments stayed in memory");
    for name in &listed {
        let on_disk = wait_for(Duration::from_secs(5), || {
            std::fs::read(dir.join(name)).ok()
        })
        .expect("written");
        assert!(on_disk.len() > 4 << 20, "{name}: {} bytes", on_disk.len());
        let served = boltstream_tests::http::get(server.http, &format!("/live/alice/{name}"));
        assert_eq!(served.status, 200);
        assert_eq!(
            served.header("content-length"),
            Some(on_disk.len().to_string().as_str())
        );
        assert!(served.body == on_disk, "{name}: the bytes differ");
    }
    drop(p);
}

/// Segments each within their own bound can still add up past what one stream's window may
/// hold: 1 Mb/s allows 500 KB per segment (4 s) and 2 MB for the window (6 × 2 s + 4 s); a
/// publisher sending 450 KB segments is ended at the window bound, in either output format, and
/// the server's disk stays within it.
#[test]
fn segments_within_their_bound_cannot_add_up_past_the_window_bound() {
    use boltstream_tests::rtmp::{flv, RawPublisher};
    for format in ["ts", "cmaf"] {
        let server = Server::start(&[
            "--hls-format",
            format,
            "--hls-max-bitrate-mbps",
            "1",
            "--hls-max-segment-duration",
            "4",
        ]);
        let key = server.add_user("alice");
        let mut p = RawPublisher::start(server.rtmp, "app", &key).unwrap();
        p.video(&flv::avc_config(), 0).unwrap();
        let mut peak_disk = 0;
        // 30 fps, 7.5 KB frames (1.8 Mb/s), keyframe every 2 s: 450 KB segments; 40 s at most,
        // until the server closes the connection.
        for frame in 0..1200u32 {
            let sent = p.video(&flv::video(frame % 60 == 0, 7_500), frame * 1000 / 30);
            if frame % 30 == 0 {
                peak_disk = peak_disk.max(disk_bytes(&server.data().join("hls")));
            }
            if sent.is_err() {
                break;
            }
        }
        let log = wait_for(Duration::from_secs(5), || {
            let log = server.log();
            log.contains("publish ended").then_some(log)
        })
        .unwrap_or_else(|| server.log());
        let line = log
            .lines()
            .find(|l| l.contains("publish ended"))
            .unwrap_or_else(|| panic!("{format}: no end logged: {log}"));
        assert!(
            line.contains("user=alice") && line.contains("window passed 2000000 bytes"),
            "{format}: {line}"
        );
        std::thread::sleep(Duration::from_millis(500));
        peak_disk = peak_disk.max(disk_bytes(&server.data().join("hls")));
        assert!(peak_disk > 0, "{format}: the segments made were written");
        assert!(
            peak_disk <= 2_000_000 + 500_000,
            "{format}: {peak_disk} B on disk"
        );
        eprintln!("{format}: peak HLS disk {peak_disk} B: {line}");
    }
}
