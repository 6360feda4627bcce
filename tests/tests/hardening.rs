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
