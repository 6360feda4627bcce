use super::*;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

#[test]
fn a_planted_symlink_is_replaced_not_followed() {
    let d = dir();
    let victim = d.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join(".index.m3u8.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, d.path().join(IN_PROGRESS)).unwrap();
    write_atomically(d.path(), "index.m3u8", b"#EXTM3U").unwrap();
    let progress = start_in_progress(d.path()).unwrap();
    let _ = append(progress, d.path(), Bytes::from_static(b"ts"), |e| {
        panic!("{e}")
    });
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(d.path().join("index.m3u8")).unwrap(),
        b"#EXTM3U"
    );
    assert_eq!(std::fs::read(d.path().join(IN_PROGRESS)).unwrap(), b"ts");
}

#[test]
fn appends_reach_the_in_progress_file_in_order() {
    let d = dir();
    let mut progress = start_in_progress(d.path()).unwrap();
    for chunk in [&b"abc"[..], b"", b"defg"] {
        progress = append(progress, d.path(), Bytes::copy_from_slice(chunk), |e| {
            panic!("{e}")
        });
    }
    assert!(matches!(progress, InProgress::Disk { len: 7, .. }));
    assert_eq!(
        std::fs::read(d.path().join(IN_PROGRESS)).unwrap(),
        b"abcdefg"
    );
}

#[test]
fn a_failed_append_falls_back_to_memory_with_what_was_written() {
    let d = dir();
    let mut progress = start_in_progress(d.path()).unwrap();
    progress = append(progress, d.path(), Bytes::from_static(b"head"), |e| {
        panic!("{e}")
    });
    // A file opened read-only fails every write, like a full disk.
    let InProgress::Disk { len, .. } = progress else {
        panic!("on disk")
    };
    let read_only = File::open(d.path().join(IN_PROGRESS)).unwrap();
    let progress = InProgress::Disk {
        file: read_only,
        len,
    };
    let mut failed = false;
    let progress = append(progress, d.path(), Bytes::from_static(b"tail"), |_| {
        failed = true
    });
    assert!(failed);
    let InProgress::Memory(chunks) = progress else {
        panic!("falls back to memory")
    };
    assert_eq!(chunks.concat(), b"headtail");
    assert!(!d.path().join(IN_PROGRESS).exists(), "the file is cleared");
}

#[test]
fn an_in_progress_segment_that_cannot_be_read_back_is_lost() {
    let d = dir();
    let file = File::open(d.path()).unwrap(); // a directory: writes fail, nothing to read
    let mut failed = false;
    let progress = append(
        InProgress::Disk { file, len: 4 },
        d.path(),
        Bytes::from_static(b"x"),
        |_| failed = true,
    );
    assert!(failed && matches!(progress, InProgress::Lost));
}

#[tokio::test]
async fn a_segment_written_while_made_is_finished_and_reported() {
    let d = dir();
    let (disk, mut events) = Disk::start(d.path().to_path_buf(), 1 << 20).unwrap();
    let alice = user("alice");
    let id = SegmentId {
        generation: 1,
        seq: 0,
    };
    assert!(disk.append(&alice, id, || Some(Bytes::from_static(b"head-"))));
    let segment = Segment {
        data: Bytes::from_static(b"tail"),
        duration_ms: 2000,
        start_wall_ms: 1,
        discontinuity: false,
        streamed: 5,
        key: None,
    };
    assert!(disk.finish(&alice, id, SegmentName(7), segment, true));
    disk.write(&alice, DiskFile::Playlist, Bytes::from_static(b"#EXTM3U\n"));
    disk.flush().await;
    let mut finished = false;
    while let Ok(event) = events.try_recv() {
        if let DiskEvent::Finished {
            on_disk,
            end_after,
            name,
            segment,
            ..
        } = event
        {
            assert!(on_disk && end_after && segment.data.is_empty());
            assert_eq!(name, SegmentName(7));
            finished = true;
        }
    }
    assert!(finished);
    let path = d.path().join("alice").join("7.ts");
    assert_eq!(std::fs::read(&path).unwrap(), b"head-tail");
    match disk.read(&alice, SegmentName(7)).await {
        Some(SegmentRead::Bytes { body, .. }) => assert_eq!(&body[..], b"head-tail"),
        _ => panic!("read back"),
    }
    assert_eq!(disk.cache_bytes(), 9, "kept for the next viewer");
    disk.delete(&alice, DiskFile::Ts(SegmentName(7)));
    assert_eq!(disk.cache_bytes(), 0);
    disk.stop().await;
    // The writer ends after the stop: its event channel closes.
    while events.recv().await.is_some() {}
}
