//! The server holds under faults. Each fault is injected for real: SIGKILL, SIGTERM, a full or
//! unwritable disk, a SQLite write lock held by another connection.

use std::time::{Duration, Instant};

use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

fn playlist(server: &Server, user: &str) -> Option<String> {
    let r = get(server.http, &format!("/live/{user}/index.m3u8"));
    (r.status == 200).then(|| r.text())
}

#[test]
fn publisher_killed_mid_segment() {
    publisher_killed_mid_segment_with("ts");
}

/// The low-latency output (the default) ends its playlist the same way.
#[test]
fn publisher_killed_mid_segment_cmaf() {
    publisher_killed_mid_segment_with("cmaf");
}

fn publisher_killed_mid_segment_with(format: &str) {
    let server = Server::start(&["--hls-format", format]);
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    wait_for(Duration::from_secs(10), || playlist(&server, "alice")).expect("live");
    std::thread::sleep(Duration::from_millis(900)); // mid-segment
    publisher.kill(); // SIGKILL: no FCUnpublish, only TCP EOF
    let killed = Instant::now();
    let ended = wait_for(Duration::from_secs(5), || {
        playlist(&server, "alice").filter(|p| p.ends_with("#EXT-X-ENDLIST\n"))
    });
    assert!(
        ended.is_some(),
        "playlist not ended after the publisher died"
    );
    assert!(wait_for(Duration::from_secs(3), || server
        .live_users()
        .is_empty()
        .then_some(()))
    .is_some());
    eprintln!("ENDLIST {:?} after SIGKILL", killed.elapsed());
    // The same key publishes again at once.
    let mut again = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(
        again.wait(Duration::from_secs(20)).unwrap().success(),
        "{}",
        again.stderr()
    );
}

#[test]
fn server_killed_and_restarted() {
    server_killed_and_restarted_with("ts");
}

#[test]
fn server_killed_and_restarted_cmaf() {
    server_killed_and_restarted_with("cmaf");
}

fn server_killed_and_restarted_with(format: &str) {
    let mut server = Server::start(&["--hls-format", format]);
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    wait_for(Duration::from_secs(10), || playlist(&server, "alice")).expect("live");
    assert_eq!(server.live_users(), vec!["alice"]);
    server.signal("KILL");
    assert!(server.wait_exit(Duration::from_secs(5)).is_some());
    assert!(
        publisher.wait(Duration::from_secs(10)).is_some(),
        "ffmpeg notices the dead server"
    );
    // The database still says live: the crash left it so.
    assert_eq!(server.live_users(), vec!["alice"]);
    server.restart();
    assert!(
        server.live_users().is_empty(),
        "a stream stayed stuck live across the restart"
    );
    assert_eq!(
        get(server.http, "/live/alice/index.m3u8").status,
        404,
        "stale output served after restart"
    );
    let leftovers: Vec<_> = std::fs::read_dir(server.data().join("hls"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "old output not cleaned: {leftovers:?}"
    );
    let mut again = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(
        again.wait(Duration::from_secs(20)).unwrap().success(),
        "{}",
        again.stderr()
    );
    assert!(server
        .log()
        .contains("streams left live by an unclean stop were reset"));
}

#[test]
fn sigterm_ends_everything_cleanly() {
    sigterm_ends_everything_cleanly_with("ts");
}

#[test]
fn sigterm_ends_everything_cleanly_cmaf() {
    sigterm_ends_everything_cleanly_with("cmaf");
}

fn sigterm_ends_everything_cleanly_with(format: &str) {
    let mut server = Server::start(&["--hls-format", format]);
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    wait_for(Duration::from_secs(10), || playlist(&server, "alice")).expect("live");
    let sent = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(8))
        .expect("exits within a few seconds");
    assert!(status.success(), "exit status {status:?}");
    eprintln!("SIGTERM → exit in {:?}", sent.elapsed());
    assert!(
        publisher.wait(Duration::from_secs(5)).is_some(),
        "the publisher was disconnected"
    );
    let on_disk = std::fs::read_to_string(server.data().join("hls/alice/index.m3u8")).unwrap();
    assert!(
        on_disk.ends_with("#EXT-X-ENDLIST\n"),
        "playlist not ended on disk: {on_disk}"
    );
    assert!(
        server.live_users().is_empty(),
        "database left a stream live"
    );
}

/// Unmounts a test tmpfs even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Makes `dir` a full 1 MiB tmpfs when this process may mount (root); otherwise makes it
/// unwritable by putting a file where the channel's directory must go. Either way writes fail.
fn break_disk(hls_dir: &std::path::Path, user: &str) -> &'static str {
    let target = hls_dir.join(user);
    std::fs::create_dir_all(&target).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&target)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        // Fill it.
        let _ = std::fs::write(target.join("filler"), vec![0u8; 2 << 20]);
        "full tmpfs"
    } else {
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::write(&target, b"not a directory").unwrap();
        "unwritable path"
    }
}

#[test]
fn full_or_unwritable_disk_keeps_streams_up_with_the_memory_window() {
    disk_fault_keeps_streams_up(&["--hls-window-in-memory", "true"]);
}

/// By default the origin serves the window from disk, so a segment that cannot be written must
/// stay in memory.
#[test]
fn full_or_unwritable_disk_keeps_streams_up() {
    disk_fault_keeps_streams_up(&[]);
}

/// The low-latency output serves from memory always; its disk mirror failing must not show.
#[test]
fn full_or_unwritable_disk_keeps_cmaf_streams_up() {
    disk_fault_keeps_streams_up(&["--hls-format", "cmaf"]);
}

fn disk_fault_keeps_streams_up(args: &[&str]) {
    let server = Server::start(args);
    // A segment line of either output.
    let is_segment = |l: &&str| !l.starts_with('#') && (l.ends_with(".ts") || l.ends_with(".m4s"));
    let alice = server.add_user("alice");
    let bob = server.add_user("bob");
    let mode = break_disk(&server.data().join("hls"), "alice");
    let _unmount = Unmount(server.data().join("hls/alice"));
    eprintln!("disk fault: {mode}");
    let mut a = Publisher::start(Clip::AudioVideo, &server.publish_url(&alice), true);
    let mut b = Publisher::start(Clip::AudioVideo, &server.publish_url(&bob), true);
    // Both stay live and playable from memory; bob's files are written normally.
    let pa = wait_for(Duration::from_secs(10), || {
        playlist(&server, "alice").filter(|p| p.lines().any(|l| is_segment(&l)))
    })
    .expect("alice is served from memory");
    wait_for(Duration::from_secs(10), || playlist(&server, "bob")).expect("bob is unaffected");
    let seg = pa.lines().find(is_segment).unwrap();
    assert_eq!(get(server.http, &format!("/live/alice/{seg}")).status, 200);
    std::thread::sleep(Duration::from_secs(3));
    // Every segment alice lists is still served, though none of them reached the disk.
    let pa = playlist(&server, "alice").expect("alice still live");
    for seg in pa.lines().filter(is_segment) {
        assert_eq!(
            get(server.http, &format!("/live/alice/{seg}")).status,
            200,
            "{seg}"
        );
    }
    assert!(a.running() && b.running());
    assert!(server.data().join("hls/bob/index.m3u8").exists());
    let log = server.log();
    let warnings = log.matches("cannot write HLS files").count();
    assert_eq!(warnings, 1, "logged once, not per write:\n{log}");
    assert!(!log.contains("was lost"), "no segment lost:\n{log}");
}

#[test]
fn sqlite_busy_is_waited_out() {
    let mut server = Server::start(&[]);
    let key = server.add_user("alice");
    let db = server.data().join("boltstream.db");
    // Another process-like connection holds the write lock for 2 s.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE; UPDATE users SET created_ms = created_ms;")
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let started = Instant::now();
    let mut publisher = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    let status = publisher.wait(Duration::from_secs(30)).unwrap();
    holder.join().unwrap();
    assert!(
        status.success(),
        "publish failed while the database was busy: {}",
        publisher.stderr()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the lock was really held"
    );
    assert!(server.log().contains("outcome=\"accepted\""));
    // The CLI waits too, and state is consistent afterwards (the server sees the close on its
    // next poll, then marks the stream offline).
    assert!(
        wait_for(Duration::from_secs(5), || server
            .live_users()
            .is_empty()
            .then_some(()))
        .is_some(),
        "the finished publish is offline"
    );
    assert!(server.running());
}
