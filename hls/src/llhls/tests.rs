use super::*;

const PART: PartInfo = PartInfo {
    duration_us: 333_333,
    independent: false,
};
const FIRST: PartInfo = PartInfo {
    duration_us: 333_333,
    independent: true,
};

fn window() -> LlWindow {
    LlWindow::new(LlConfig {
        target_s: 2,
        part_target_us: 333_333,
        window: 6,
    })
}

/// `segments` complete segments of six parts, then `open` parts of another.
fn filled(segments: u64, open: usize) -> LlWindow {
    let mut w = window();
    for n in 0..segments {
        w.begin_segment(
            SegmentName(1000 + n),
            1_700_000_000_000 + n as i64 * 2000,
            false,
            1,
            None,
        );
        w.push_part(FIRST);
        for _ in 1..6 {
            w.push_part(PART);
        }
        w.end_segment(Some(SegmentName(1000 + n + 1)));
    }
    if open > 0 {
        w.begin_segment(
            SegmentName(1000 + segments),
            1_700_000_000_000,
            false,
            1,
            None,
        );
        w.push_part(FIRST);
        for _ in 1..open {
            w.push_part(PART);
        }
    }
    w
}

#[test]
fn the_playlist_carries_the_low_latency_tags() {
    let text = filled(2, 2).render();
    let expected = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000,HOLD-BACK=6.000
#EXT-X-PART-INF:PART-TARGET=0.33333
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.33333,URI=\"1000.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33333,URI=\"1000.1.m4s\"
#EXT-X-PART:DURATION=0.33333,URI=\"1000.2.m4s\"
#EXT-X-PART:DURATION=0.33333,URI=\"1000.3.m4s\"
#EXT-X-PART:DURATION=0.33333,URI=\"1000.4.m4s\"
#EXT-X-PART:DURATION=0.33333,URI=\"1000.5.m4s\"
#EXTINF:2.00000,
1000.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
";
    assert!(text.starts_with(expected), "{text}");
    assert!(text.ends_with(
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.33333,URI=\"1002.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33333,URI=\"1002.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"1002.2.m4s\"
"
    ));
    assert!(!text.contains("ENDLIST"));
}

#[test]
fn parts_are_listed_only_near_the_live_edge() {
    // Five complete 2 s segments and an open one: parts of segments ending within 6 s of the end.
    let text = filled(5, 3).render();
    for (name, listed) in [
        (1000, false),
        (1001, false),
        (1002, true),
        (1003, true),
        (1004, true),
        (1005, true),
    ] {
        assert_eq!(
            text.contains(&format!("URI=\"{name}.0.m4s\"")),
            listed,
            "{name}: {text}"
        );
    }
    // Every complete segment stays listed whole.
    assert_eq!(text.matches("#EXTINF:").count(), 5);
}

#[test]
fn the_preload_hint_names_the_next_segment_between_segments_and_ends_with_the_stream() {
    let mut w = filled(1, 0);
    assert_eq!(w.preload_hint().as_deref(), Some("1001.0.m4s"));
    w.end();
    let text = w.render();
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    assert!(!text.contains("PRELOAD-HINT"));
}

#[test]
fn the_window_slides_and_counts_removed_discontinuities() {
    let mut w = window();
    for n in 0..9u64 {
        w.begin_segment(SegmentName(n + 1), 0, n == 2, 1 + u64::from(n >= 2), None);
        w.push_part(FIRST);
        let evicted = w.end_segment(Some(SegmentName(n + 2)));
        assert_eq!(evicted.len(), usize::from(n >= 6));
    }
    let text = w.render();
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"));
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    assert_eq!(text.matches("#EXT-X-MAP:").count(), 1, "{text}");
    assert!(text.contains("init2.mp4"));
}

#[test]
fn a_new_init_section_is_mapped_before_its_first_segment() {
    let mut w = window();
    for (n, init) in [(1u64, 1u64), (2, 1), (3, 2)] {
        w.begin_segment(SegmentName(n), 0, init == 2, init, None);
        w.push_part(FIRST);
        w.end_segment(None);
    }
    let text = w.render();
    let map2 = text.find("init2.mp4").unwrap();
    let disc = text.find("#EXT-X-DISCONTINUITY\n").unwrap();
    assert!(disc < map2 && map2 < text.find("3.m4s").unwrap(), "{text}");
    assert_eq!(text.matches("#EXT-X-MAP:").count(), 2);
}

#[test]
fn blocking_reload_follows_the_server_rules() {
    use Blocking::*;
    // Segments 0 and 1 complete (six parts each), segment 2 open with two parts.
    let w = filled(2, 2);
    let cases: &[(Option<u64>, Option<u64>, Blocking)] = &[
        (None, None, Ready),
        (None, Some(0), BadRequest("_HLS_part without _HLS_msn")),
        (Some(1), None, Ready),
        (Some(2), None, Wait), // open: listed whole only once complete
        (Some(4), None, Wait),
        (Some(5), None, BadRequest("_HLS_msn too far ahead")),
        (Some(2), Some(1), Ready),
        (Some(2), Some(2), Wait), // the hinted part
        (Some(1), Some(5), Ready),
        (Some(1), Some(6), Ready), // past segment 1's last: part 0 of segment 2, listed
        (Some(3), Some(0), Wait),
        (Some(2), Some(10), Wait), // nine parts ahead: the limit for 1/3 s parts
        (Some(2), Some(11), BadRequest("_HLS_part too far ahead")),
        (Some(3), Some(9), BadRequest("_HLS_part too far ahead")),
    ];
    for (msn, part, expected) in cases {
        assert_eq!(
            w.blocking(*msn, *part),
            *expected,
            "msn {msn:?} part {part:?}"
        );
    }
    // Once the hinted part exists the held request is answered; at the end, every request is.
    let mut w = w;
    w.push_part(PART);
    assert_eq!(w.blocking(Some(2), Some(2)), Ready);
    assert_eq!(w.blocking(Some(3), Some(0)), Wait);
    w.end();
    assert_eq!(w.blocking(Some(3), Some(0)), Ready);
    assert_eq!(
        w.blocking(None, Some(3)),
        Ready,
        "directives are ignored after ENDLIST"
    );
}

#[test]
fn past_a_complete_segments_last_part_waits_for_the_next_segment() {
    let w = filled(2, 0);
    assert_eq!(w.blocking(Some(1), Some(6)), Blocking::Wait);
    assert_eq!(w.blocking(Some(2), Some(0)), Blocking::Wait);
    assert_eq!(w.blocking(Some(1), Some(5)), Blocking::Ready);
}

#[test]
fn a_long_window_offers_delta_updates_that_skip_the_oldest_segments() {
    let mut w = LlWindow::new(LlConfig {
        target_s: 2,
        part_target_us: 333_333,
        window: 10,
    });
    for n in 0..10u64 {
        w.begin_segment(SegmentName(100 + n), 0, false, 1, None);
        w.push_part(FIRST);
        for _ in 1..6 {
            w.push_part(PART);
        }
        w.end_segment(Some(SegmentName(101 + n)));
    }
    w.begin_segment(SegmentName(110), 0, false, 1, None);
    w.push_part(FIRST);
    w.push_part(PART);
    let full = w.render();
    assert!(
        full.contains("CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,"),
        "{full}"
    );
    assert!(full.contains("#EXT-X-VERSION:9\n"));
    assert!(!full.contains("#EXT-X-SKIP"));
    let delta = w.render_delta(true);
    // 20.67 s listed; the four segments ending at 2, 4, 6 and 8 s end 12 s or more before the end.
    assert!(
        delta.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"),
        "{delta}"
    );
    for name in 100..104 {
        assert!(!delta.contains(&format!("{name}.m4s")), "{name} skipped");
    }
    assert!(delta.contains("\n104.m4s\n"));
    // The first segment listed after the skip still says which init section it needs.
    let map = delta.find("#EXT-X-MAP:").unwrap();
    assert!(map < delta.find("104.m4s").unwrap());
    assert_eq!(
        delta
            .lines()
            .filter(|l| l.ends_with(".m4s") && !l.starts_with('#'))
            .count(),
        6
    );
}

#[test]
fn a_short_window_has_nothing_to_skip_and_says_so() {
    let w = filled(5, 2);
    let full = w.render();
    assert!(!full.contains("CAN-SKIP-UNTIL"), "{full}");
    assert!(full.contains("#EXT-X-VERSION:6\n"));
    assert_eq!(
        w.render_delta(true),
        full,
        "a skip request gets the whole playlist"
    );
}
