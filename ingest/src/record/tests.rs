use super::*;

const MB: u64 = 1 << 20;
const KEK: [u8; 16] = [0x5a; 16];

fn recordings(root: &Path, retention_ms: i64, total: u64, channel: u64) -> Recordings {
    Recordings {
        root: root.to_path_buf(),
        retention_ms,
        total_quota: total,
        channel_quota: channel,
        min_free: 0,
        kek: Some(KEK),
        active: Mutex::default(),
        parsed: Mutex::default(),
        files: Mutex::new(ReadCache::new(1 << 20)),
    }
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// A recording as the writer leaves it: files, description and log.
fn make(r: &Recordings, who: &str, id: u64, segments: &[(u64, u64)], ended: bool) {
    let dir = r.dir(&user(who), id);
    std::fs::create_dir_all(&dir).unwrap();
    let meta = serde_json::json!({ "title": format!("{who} <b>{id}</b>"), "started_ms": id });
    std::fs::write(dir.join(META), meta.to_string()).unwrap();
    let mut log = LogLine::Init(1).format();
    std::fs::write(dir.join("init1.mp4"), b"init").unwrap();
    for &(name, bytes) in segments {
        std::fs::write(dir.join(format!("{name}.m4s")), vec![0u8; 16]).unwrap();
        log.push_str(
            &LogLine::Segment {
                name,
                cmaf: true,
                duration_ms: 2000,
                bytes,
                key: None,
            }
            .format(),
        );
    }
    if ended {
        log.push_str(&LogLine::End(id as i64 + 2000 * segments.len() as i64).format());
    }
    std::fs::write(dir.join(LOG), log).unwrap();
}

#[test]
fn finished_recordings_are_listed_played_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recordings(tmp.path(), i64::MAX, u64::MAX, u64::MAX);
    make(&r, "alice", 1_000, &[(1_001, 10), (1_003, 20)], true);
    make(&r, "alice", 5_000, &[(5_001, 10)], true);
    make(&r, "alice", 9_000, &[], true); // nothing recorded: not listed
    let listed = r.list(&user("alice"));
    assert_eq!(
        listed.iter().map(|l| l.id).collect::<Vec<_>>(),
        [5_000, 1_000]
    );
    assert_eq!((listed[1].duration_ms, listed[1].bytes), (4000, 30));
    assert_eq!(listed[1].title, "alice <b>1000</b>");
    let playlist = r.playlist(&user("alice"), 1_000, false).unwrap();
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.ends_with("#EXT-X-ENDLIST\n")
    );

    // Only files the log names are served.
    assert!(r.file(&user("alice"), 1_000, "1001.m4s", false).is_some());
    assert!(r.file(&user("alice"), 1_000, "init1.mp4", false).is_some());
    assert!(
        r.file(&user("alice"), 1_000, "1001.m4s", true).is_none(),
        "a clear recording is not served under /private/"
    );
    assert!(r.playlist(&user("alice"), 1_000, true).is_none());
    for other in [
        "segments.log",
        "meta.json",
        "5001.m4s",
        "../5000/5001.m4s",
        "1002.m4s",
    ] {
        assert!(
            r.file(&user("alice"), 1_000, other, false).is_none(),
            "{other}"
        );
    }
    assert!(r.list(&user("bob")).is_empty());

    // Served files are kept for the next request, which then needs no disk; a deletion
    // forgets them at once.
    assert_eq!(
        r.cached_file(&user("alice"), 1_000, "1001.m4s", false),
        None
    );
    r.keep_file(
        &user("alice"),
        1_000,
        "1001.m4s",
        Bytes::from_static(b"x"),
        5,
    );
    assert_eq!(
        r.cached_file(&user("alice"), 1_000, "1001.m4s", false),
        Some((Bytes::from_static(b"x"), 5))
    );
    assert_eq!(
        r.cached_file(&user("alice"), 1_000, "1001.m4s", true),
        None,
        "not under the other prefix"
    );
    assert!(r.delete(&user("alice"), 1_000));
    assert_eq!(
        r.cached_file(&user("alice"), 1_000, "1001.m4s", false),
        None
    );
    assert!(r.playlist(&user("alice"), 1_000, false).is_none());
    assert!(!r.delete(&user("alice"), 1_000));
    assert!(!r.dir(&user("alice"), 1_000).exists());
    assert_eq!(r.list(&user("alice")).len(), 1);
}

#[test]
fn a_recording_in_progress_is_neither_listed_served_nor_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recordings(tmp.path(), 0, 0, 0);
    let start = r.begin(&user("alice"), "t", 7_000, false).unwrap();
    assert_eq!(start.dir, r.dir(&user("alice"), 7_000));
    assert_eq!(start.kek, None, "a public publish is recorded in the clear");
    make(&r, "alice", 7_000, &[(7_001, 10)], false);
    assert!(r.list(&user("alice")).is_empty());
    assert!(r.playlist(&user("alice"), 7_000, false).is_none());
    assert!(!r.delete(&user("alice"), 7_000));
    assert!(
        r.enforce(i64::MAX).is_empty(),
        "quotas never take the one recording"
    );
    r.ended(&user("alice"), 7_000);
    assert!(
        r.list(&user("alice")).is_empty(),
        "not before the writer has ended its log"
    );
    let log = r.dir(&user("alice"), 7_000).join(LOG);
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&LogLine::End(9_000).format());
    std::fs::write(&log, text).unwrap();
    assert_eq!(r.list(&user("alice")).len(), 1);
}

#[test]
fn recovery_ends_open_logs_at_their_last_whole_line_and_drops_unlisted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recordings(tmp.path(), i64::MAX, u64::MAX, u64::MAX);
    make(&r, "alice", 1_000, &[(1_001, 10)], false);
    let dir = r.dir(&user("alice"), 1_000);
    // A segment linked before the crash, its line cut short.
    std::fs::write(dir.join("1003.m4s"), b"half").unwrap();
    let mut log = std::fs::read(dir.join(LOG)).unwrap();
    log.extend_from_slice(b"seg 1003 m4s 20");
    std::fs::write(dir.join(LOG), log).unwrap();
    // A recording that never got its log.
    std::fs::create_dir_all(r.dir(&user("alice"), 2_000)).unwrap();
    make(&r, "bob", 3_000, &[(3_001, 10)], true);

    assert_eq!(r.recover(50_000), 1);
    assert!(!dir.join("1003.m4s").exists());
    assert!(dir.join("1001.m4s").exists() && dir.join("init1.mp4").exists());
    assert!(!r.dir(&user("alice"), 2_000).exists());
    let log = String::from_utf8(std::fs::read(dir.join(LOG)).unwrap()).unwrap();
    assert!(
        log.ends_with("seg 1001 m4s 2000 10\nend 50000\n"),
        "{log:?}"
    );
    let listed = r.list(&user("alice"));
    assert_eq!((listed.len(), listed[0].ended_ms), (1, 50_000));
    assert_eq!(r.recover(60_000), 0, "nothing left to end");
}

#[test]
fn retention_then_channel_then_total_quota_take_the_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let r = recordings(tmp.path(), 100_000, 5 * MB, 3 * MB);
    make(&r, "alice", 1_000, &[(1, MB)], true); // expired at 200_000
    make(&r, "alice", 150_000, &[(2, MB)], true);
    make(&r, "alice", 160_000, &[(3, 2 * MB)], true);
    make(&r, "alice", 170_000, &[(4, MB)], true); // alice: 4 MB unexpired > 3 MB
    make(&r, "bob", 155_000, &[(5, MB)], true);
    make(&r, "bob", 165_000, &[(6, 2 * MB)], true);
    let mut gone = r.enforce(200_000);
    gone.sort_by_key(|(_, id)| *id);
    let names: Vec<(&str, u64)> = gone.iter().map(|(u, id)| (u.as_str(), *id)).collect();
    // Retention: alice 1000. Alice's quota: her oldest left (150000). Then 3 MB + 3 MB = 6 MB
    // of all is over 5 MB: the oldest of all left, bob's 155000.
    assert_eq!(
        names,
        [("alice", 1_000), ("alice", 150_000), ("bob", 155_000)]
    );
    assert_eq!(r.list(&user("alice")).len(), 2);
    assert_eq!(r.list(&user("bob")).len(), 1);
    assert!(r.enforce(200_000).is_empty());
}

/// A private publish's recording: its keys, wrapped under the site's key-encryption key, are in
/// the log only; it is served under `/private/` alone, its keys unwrapped on request; without a
/// key-encryption key nothing private is recorded.
#[test]
fn a_private_recording_keeps_its_keys_wrapped_and_is_served_only_as_private() {
    use boltstream_hls::encrypt::{wrap_key, KeyTag};
    let tmp = tempfile::tempdir().unwrap();
    let r = recordings(tmp.path(), i64::MAX, u64::MAX, u64::MAX);
    let start = r.begin(&user("alice"), "secret", 3_000, true).unwrap();
    assert_eq!(start.kek, Some(KEK));
    let meta: serde_json::Value = serde_json::from_slice(&start.meta).unwrap();
    assert_eq!(meta["private"], true);
    std::fs::create_dir_all(&start.dir).unwrap();
    std::fs::write(start.dir.join(META), &start.meta).unwrap();
    std::fs::write(start.dir.join("3001.ts"), [0u8; 32]).unwrap();
    let media_key = [0xc3u8; 16];
    let log = [
        LogLine::Key {
            id: 77,
            wrapped: wrap_key(&KEK, &media_key),
        },
        LogLine::Segment {
            name: 3001,
            cmaf: false,
            duration_ms: 2000,
            bytes: 32,
            key: Some(KeyTag {
                id: 77,
                iv: [9; 16],
            }),
        },
        LogLine::End(5_000),
    ];
    let log: String = log.iter().map(LogLine::format).collect();
    assert!(
        !log.contains(&"C3".repeat(16)),
        "no key in the clear: {log}"
    );
    std::fs::write(start.dir.join(LOG), log).unwrap();
    r.ended(&user("alice"), 3_000);

    let listed = r.list(&user("alice"));
    assert_eq!(listed.len(), 1);
    assert!(listed[0].private);
    let playlist = r.playlist(&user("alice"), 3_000, true).unwrap();
    assert!(playlist.contains("URI=\"key/77.key\""), "{playlist}");
    assert!(r.playlist(&user("alice"), 3_000, false).is_none());
    assert!(r.file(&user("alice"), 3_000, "3001.ts", false).is_none());
    assert!(r.file(&user("alice"), 3_000, "3001.ts", true).is_some());
    assert_eq!(r.key(&user("alice"), 3_000, 77), Some(media_key));
    assert_eq!(r.key(&user("alice"), 3_000, 78), None);
    // Another site's key-encryption key unwraps nothing.
    let other = Recordings {
        kek: Some([1; 16]),
        ..recordings(tmp.path(), i64::MAX, u64::MAX, u64::MAX)
    };
    assert_eq!(other.key(&user("alice"), 3_000, 77), None);
    let none = Recordings {
        kek: None,
        ..recordings(tmp.path(), i64::MAX, u64::MAX, u64::MAX)
    };
    assert!(none.begin(&user("alice"), "t", 9_000, true).is_none());
    assert_eq!(none.key(&user("alice"), 3_000, 77), None);
}
