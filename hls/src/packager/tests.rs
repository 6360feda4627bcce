use super::*;
use crate::inspect::{check_segment, Continuity};
use crate::media::Metadata;

const RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03, 0x68,
    0xeb, 0xe3,
];
const T0: i64 = 1_764_140_000_000;

fn avc_config() -> Media {
    let mut body = vec![0x17, 0x00, 0, 0, 0];
    body.extend_from_slice(RECORD);
    Media::Video {
        timestamp: 0,
        data: Bytes::from(body),
    }
}

fn video(ts: u32, key: bool, cts: i32, size: usize) -> Media {
    let mut body = vec![if key { 0x17 } else { 0x27 }, 0x01];
    body.extend_from_slice(&cts.to_be_bytes()[1..]);
    let nal_type = if key { 0x65 } else { 0x41 };
    body.extend_from_slice(&(size as u32).to_be_bytes());
    body.push(nal_type);
    body.extend(std::iter::repeat_n(0xab, size - 1));
    Media::Video {
        timestamp: ts,
        data: Bytes::from(body),
    }
}

fn aac_config() -> Media {
    Media::Audio {
        timestamp: 0,
        data: Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90]),
    }
}

fn audio(ts: u32) -> Media {
    let mut body = vec![0xaf, 0x01];
    body.extend(std::iter::repeat_n(0x21, 300));
    Media::Audio {
        timestamp: ts,
        data: Bytes::from(body),
    }
}

fn meta(video: bool, audio: bool) -> Media {
    Media::Metadata(Metadata {
        video_codec_id: video.then_some(7),
        audio_codec_id: audio.then_some(10),
        ..Metadata::default()
    })
}

/// `seconds` of 30 fps video with a keyframe every `gop` frames, and 48 kHz AAC interleaved,
/// starting at RTMP time `start` (wrapping allowed).
fn av_stream(start: u32, seconds: u32, gop: u32, with_audio: bool, with_video: bool) -> Vec<Media> {
    let mut out = vec![meta(with_video, with_audio)];
    if with_video {
        out.push(avc_config());
    }
    if with_audio {
        out.push(aac_config());
        // Audio arriving before the first keyframe: must be dropped.
        out.push(audio(start.wrapping_sub(40)));
    }
    let frames = seconds * 30;
    let mut audio_ms = 0f64;
    for f in 0..frames {
        let ms = f * 1000 / 30;
        if with_video {
            // B-frame style composition offsets: keyframes 66 ms, others alternate.
            let cts = if f % gop == 0 {
                66
            } else if f % 2 == 0 {
                100
            } else {
                0
            };
            out.push(video(start.wrapping_add(ms), f % gop == 0, cts, 2000));
        }
        while with_audio && audio_ms <= f64::from(ms) {
            out.push(audio(start.wrapping_add(audio_ms as u32)));
            audio_ms += 1024.0 * 1000.0 / 48000.0;
        }
    }
    out
}

fn run(p: &mut Packager, media: &[Media]) -> Vec<Segment> {
    let mut segments = Vec::new();
    for (i, m) in media.iter().enumerate() {
        if let Some(s) = p.push(m, T0 + i as i64).unwrap() {
            segments.push(s);
        }
    }
    segments.extend(p.finish());
    segments
}

fn check_all(segments: &[Segment]) -> Vec<crate::inspect::SegmentReport> {
    let mut cc = Continuity::new();
    segments
        .iter()
        .map(|s| check_segment(&s.data, &mut cc).unwrap())
        .collect()
}

#[test]
fn cuts_at_keyframes_on_target_and_keeps_structure() {
    let mut p = Packager::new(2000);
    let segments = run(&mut p, &av_stream(0, 10, 60, true, true));
    let durations: Vec<u64> = segments.iter().map(|s| s.duration_ms).collect();
    assert_eq!(durations.len(), 5, "{durations:?}");
    assert!(
        durations.iter().all(|d| (1999..=2034).contains(d)),
        "{durations:?}"
    );
    let total: u64 = durations.iter().sum();
    assert!((9_900..=10_100).contains(&total), "{total}");
    let reports = check_all(&segments);
    for r in &reports {
        assert!(r.starts_with_random_access);
        assert_eq!(r.timestamps[0].0, VIDEO_PID, "segment starts with video");
        assert!(r.pes_per_pid[&AUDIO_PID] > 80 && r.pes_per_pid[&VIDEO_PID] == 60);
        // PCR ≤ DTS for the video PES it precedes, and ≤ 100 ms apart.
        for pair in r.pcrs.windows(2) {
            assert!(pair[1] - pair[0] <= 9000);
        }
    }
    // B-frames: PTS = DTS + CTS.
    let (_, pts, dts) = reports[0].timestamps[0];
    assert_eq!(pts - dts, 66 * 90);
    // Audio starts within a frame of video.
    let first_audio = reports[0]
        .timestamps
        .iter()
        .find(|t| t.0 == AUDIO_PID)
        .unwrap();
    assert!(
        first_audio.2 >= reports[0].timestamps[0].2
            && first_audio.2 - reports[0].timestamps[0].2 <= 90 * 33
    );
}

#[test]
fn long_gop_makes_longer_segments() {
    let mut p = Packager::new(2000);
    let segments = run(&mut p, &av_stream(0, 12, 120, true, true));
    let durations: Vec<u64> = segments.iter().map(|s| s.duration_ms).collect();
    assert_eq!(durations.len(), 3, "{durations:?}");
    assert!(
        durations.iter().all(|d| (3999..=4034).contains(d)),
        "{durations:?}"
    );
    check_all(&segments);
}

#[test]
fn timestamps_extend_across_the_32_bit_wrap() {
    let mut p = Packager::new(2000);
    let segments = run(&mut p, &av_stream(u32::MAX - 3_000, 10, 60, true, true));
    assert_eq!(segments.len(), 5);
    assert!(segments.iter().all(|s| !s.discontinuity));
    let reports = check_all(&segments);
    let dts: Vec<u64> = reports
        .iter()
        .flat_map(|r| {
            r.timestamps
                .iter()
                .filter(|t| t.0 == VIDEO_PID)
                .map(|t| t.2)
        })
        .collect();
    assert!(
        dts.windows(2).all(|w| w[1] > w[0]),
        "video DTS strictly increasing across the wrap"
    );
}

#[test]
fn a_timestamp_reset_is_a_discontinuity() {
    let mut p = Packager::new(2000);
    let mut media = av_stream(500_000, 5, 60, true, true);
    media.extend(av_stream(0, 5, 60, true, true).into_iter().skip(3));
    let segments = run(&mut p, &media);
    let flags: Vec<bool> = segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(flags.iter().filter(|f| **f).count(), 1, "{flags:?}");
    assert!(!flags[0]);
    let reports = check_all(&segments);
    let dts: Vec<u64> = reports
        .iter()
        .flat_map(|r| {
            r.timestamps
                .iter()
                .filter(|t| t.0 == VIDEO_PID)
                .map(|t| t.2)
        })
        .collect();
    assert!(
        dts.windows(2).all(|w| w[1] > w[0]),
        "output timeline stays monotonic"
    );
}

#[test]
fn audio_only_cuts_by_time() {
    let mut p = Packager::new(2000);
    let segments = run(&mut p, &av_stream(0, 7, 60, true, false));
    let durations: Vec<u64> = segments.iter().map(|s| s.duration_ms).collect();
    assert_eq!(durations.len(), 4, "{durations:?}");
    assert!(
        durations[..3].iter().all(|d| (2000..=2022).contains(d)),
        "{durations:?}"
    );
    for r in check_all(&segments) {
        assert!(!r.pcrs.is_empty(), "PCR on the audio PID");
        assert!(r.pes_per_pid.keys().all(|pid| *pid == AUDIO_PID));
    }
}

#[test]
fn video_only_works() {
    let mut p = Packager::new(2000);
    let segments = run(&mut p, &av_stream(0, 6, 60, false, true));
    assert_eq!(segments.len(), 3);
    for r in check_all(&segments) {
        assert!(r.pes_per_pid.keys().all(|pid| *pid == VIDEO_PID));
    }
}

#[test]
fn byte_exact_first_packets() {
    let mut p = Packager::new(2000);
    p.push(&meta(true, false), T0).unwrap();
    p.push(&avc_config(), T0).unwrap();
    p.push(&video(0, true, 0, 8), T0).unwrap();
    let seg = p.finish().unwrap();
    assert_eq!(seg.data.len(), 3 * 188);
    let pes = &seg.data[376..];
    // Header: PUSI on PID 0x100, AF + payload, CC 0; AF: length, random access + PCR.
    assert_eq!(&pes[..6], &[0x47, 0x41, 0x00, 0x30, 0x88, 0x50]);
    // PCR base = (1000 - 700) ms * 90 = 27000.
    assert_eq!(&pes[6..12], &[0x00, 0x00, 0x34, 0xbc, 0x7e, 0x00]);
    // After 0x88 = 136 bytes of AF (flags, PCR, 129 stuffing): PES header with PTS only (DTS == PTS).
    let body = &pes[5 + 136..];
    assert_eq!(&body[..9], &[0, 0, 1, 0xe0, 0, 0, 0x84, 0x80, 5]);
    // PTS = 90000 (1 s offset).
    assert_eq!(&body[9..14], &[0x21, 0x00, 0x05, 0xbf, 0x21]);
    // AUD, SPS, PPS, then the IDR slice.
    assert_eq!(&body[14..20], &[0, 0, 0, 1, 0x09, 0xf0]);
    assert_eq!(
        &body[20..35],
        &[0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0, 0, 0, 1, 0x68, 0xeb, 0xe3]
    );
    assert_eq!(&body[35..40], &[0, 0, 0, 1, 0x65]);
}

#[test]
fn unsupported_codecs_are_refused() {
    let mut p = Packager::new(2000);
    let hevc = Media::Metadata(Metadata {
        video_codec_id: Some(12),
        ..Metadata::default()
    });
    assert!(matches!(
        p.push(&hevc, T0),
        Err(MediaError::UnsupportedCodec(_))
    ));
    let mut p = Packager::new(2000);
    let mp3 = Media::Audio {
        timestamp: 0,
        data: Bytes::from_static(&[0x2f, 0x01, 0xff]),
    };
    assert!(matches!(
        p.push(&mp3, T0),
        Err(MediaError::UnsupportedCodec(_))
    ));
    let mut p = Packager::new(2000);
    let enhanced = Media::Video {
        timestamp: 0,
        data: Bytes::from_static(b"\x90hvc1\x00"),
    };
    assert!(matches!(
        p.push(&enhanced, T0),
        Err(MediaError::UnsupportedCodec(_))
    ));
}

#[test]
fn frames_before_configuration_or_keyframe_are_dropped() {
    let mut p = Packager::new(2000);
    assert!(p.push(&video(0, true, 0, 10), T0).unwrap().is_none());
    p.push(&avc_config(), T0).unwrap();
    assert!(p.push(&video(33, false, 0, 10), T0).unwrap().is_none());
    assert!(p.finish().is_none(), "no segment without a keyframe");
}

/// Found by the packager fuzz target: video decode times that step backwards (within the jitter
/// allowance) made the PCR go backwards inside a segment.
#[test]
fn backwards_timestamps_never_move_dts_or_pcr_backwards() {
    let mut p = Packager::new(2000);
    let mut media = vec![meta(true, true), avc_config(), aac_config()];
    for (i, ts) in [0u32, 33, 21, 66, 40, 99, 2100, 2050, 2133]
        .iter()
        .enumerate()
    {
        media.push(video(*ts, i == 0 || i == 6, 0, 50));
        media.push(audio(ts.saturating_sub(5)));
    }
    let segments = run(&mut p, &media);
    let reports = check_all(&segments);
    for r in &reports {
        let dts: Vec<u64> = r
            .timestamps
            .iter()
            .filter(|t| t.0 == VIDEO_PID)
            .map(|t| t.2)
            .collect();
        assert!(dts.windows(2).all(|w| w[1] >= w[0]), "{dts:?}");
        assert!(r.pcrs.windows(2).all(|w| w[1] >= w[0]), "{:?}", r.pcrs);
    }
}

/// For every segment closed, how far the prediction made one input earlier was off (ms), in order.
fn cut_prediction_errors(target_ms: u64, media: &[Media]) -> Vec<i64> {
    let ts = |m: &Media| match m {
        Media::Video { timestamp, .. } | Media::Audio { timestamp, .. } => Some(*timestamp),
        Media::Metadata(_) => None,
    };
    let mut p = Packager::new(target_ms);
    let mut before: Option<(u32, i64)> = None;
    let mut errors = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let closed = p.push(m, T0 + i as i64).unwrap().is_some();
        if let (true, Some((prev_ts, due)), Some(now_ts)) = (closed, before, ts(m)) {
            errors.push(due - i64::from(now_ts.wrapping_sub(prev_ts) as i32));
        }
        if let Some(now_ts) = ts(m) {
            before = p.cut_due_in_ms().map(|due| (now_ts, due));
        }
    }
    errors
}

#[test]
fn predicts_the_input_that_closes_each_segment() {
    // GOP = target: every cut is foreseen to within a frame.
    let errors = cut_prediction_errors(2000, &av_stream(0, 9, 60, true, true));
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors.iter().all(|e| e.abs() <= 34), "{errors:?}");
    // A GOP longer than the target is learnt from the first segment.
    let errors = cut_prediction_errors(2000, &av_stream(0, 13, 120, true, true));
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!((-2100..=-1900).contains(&errors[0]), "{errors:?}");
    assert!(errors[1..].iter().all(|e| e.abs() <= 34), "{errors:?}");
    // Audio only: cut by time.
    let errors = cut_prediction_errors(2000, &av_stream(0, 7, 60, true, false));
    assert!(errors.len() >= 3, "{errors:?}");
    assert!(errors.iter().all(|e| e.abs() <= 22), "{errors:?}");
}

#[test]
fn nothing_is_due_before_a_segment_opens_and_video_needs_no_metadata() {
    let mut p = Packager::new(2000);
    assert_eq!(p.cut_due_in_ms(), None);
    p.push(&avc_config(), T0).unwrap();
    p.push(&video(0, false, 0, 100), T0).unwrap();
    assert_eq!(p.cut_due_in_ms(), None, "no keyframe yet");
    p.push(&video(33, true, 0, 100), T0).unwrap();
    assert_eq!(p.cut_due_in_ms(), Some(2000));
    p.push(&video(66, false, 0, 100), T0).unwrap();
    assert_eq!(p.cut_due_in_ms(), Some(2000 - 33));
    let segment = p.finish().expect("the video was packaged");
    let report = check_all(&[segment]).remove(0);
    assert_eq!(report.pes_per_pid.get(&VIDEO_PID), Some(&2), "{report:?}");
}

#[test]
fn chunks_taken_while_open_plus_the_tail_are_the_same_bytes() {
    let media = av_stream(0, 7, 60, true, true);
    let whole = run(&mut Packager::new(2000), &media);
    let mut p = Packager::new(2000);
    p.stream_in_chunks(16 * 1024);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut rebuilt = Vec::new();
    let mut close = |segment: Segment, chunks: &mut Vec<Bytes>| {
        let taken: usize = chunks.iter().map(Bytes::len).sum();
        assert_eq!(segment.streamed, taken as u64);
        let mut bytes = chunks.concat();
        bytes.extend_from_slice(&segment.data);
        chunks.clear();
        rebuilt.push((bytes, segment.duration_ms));
    };
    for (i, m) in media.iter().enumerate() {
        if let Some(segment) = p.push(m, T0 + i as i64).unwrap() {
            close(segment, &mut chunks);
        }
        if p.open_len() >= 16 * 1024 {
            chunks.extend(p.take_open());
            assert_eq!(p.open_len(), 0);
        }
    }
    close(p.finish().unwrap(), &mut chunks);
    assert_eq!(rebuilt.len(), whole.len());
    for (segment, (bytes, duration)) in whole.iter().zip(&rebuilt) {
        assert!(segment.data.len() > 64 * 1024, "several chunks a segment");
        assert_eq!(segment.data, bytes.as_slice());
        assert_eq!(segment.duration_ms, *duration);
    }
    assert_eq!(p.take_open(), None, "nothing open after the end");
}

/// Limits small enough to reach in a unit test: 1 Mb/s (125 KB/s) × 4 s = 500 KB per segment.
fn small_limits() -> Limits {
    Limits::for_bitrate(1, 4_000, 2_000)
}

/// Feeds `frames` inputs made by `make(i)` at `wall(i)`; returns the error that ended it, and how
/// many bytes the open segment held at the most.
fn attack(
    p: &mut Packager,
    frames: u32,
    make: impl Fn(u32) -> Media,
    wall: impl Fn(u32) -> i64,
) -> (Option<MediaError>, u64) {
    let mut most = 0;
    for i in 0..frames {
        match p.push(&make(i), wall(i)) {
            Ok(_) => most = most.max(p.open_total()),
            Err(err) => return (Some(err), most),
        }
    }
    (None, most)
}

#[test]
fn frozen_or_crawling_timestamps_at_line_rate_are_bounded() {
    let limits = small_limits();
    // Every variant at line rate: thousands of frames within one wall-clock millisecond.
    type Variant = (&'static str, bool, bool, fn(u32) -> u32);
    let variants: [Variant; 6] = [
        ("audio+video frozen", true, true, |_| 0),
        ("audio+video crawling", true, true, |i| i / 4),
        ("video-only frozen", false, true, |_| 0),
        ("video-only crawling", false, true, |i| i / 4),
        ("audio-only frozen", true, false, |_| 0),
        ("audio-only crawling", true, false, |i| i / 4),
    ];
    for (name, with_audio, with_video, ts) in variants {
        let mut p = Packager::new(2000).with_limits(limits);
        p.push(&meta(with_video, with_audio), T0).unwrap();
        if with_video {
            p.push(&avc_config(), T0).unwrap();
        }
        if with_audio {
            p.push(&aac_config(), T0).unwrap();
        }
        let (err, most) = attack(
            &mut p,
            200_000,
            |i| match (with_video, with_audio && i % 2 == 1) {
                (true, false) => video(ts(i), i == 0, 0, 4000),
                _ => audio(ts(i)),
            },
            |_| T0,
        );
        let err = err.unwrap_or_else(|| panic!("{name}: never ended"));
        assert!(matches!(err, MediaError::LimitExceeded(_)), "{name}: {err}");
        assert!(
            most <= limits.max_segment_bytes,
            "{name}: held {most} bytes"
        );
        assert_eq!(
            p.open_total(),
            0,
            "{name}: the over-limit segment is dropped"
        );
        assert!(p.finish().is_none(), "{name}: nothing left to list");
    }
}

#[test]
fn a_segment_open_too_long_in_wall_time_ends_the_publish() {
    // Real-time pace, but media time crawls (1 ms per 40 ms): the segment never reaches the
    // target, and stays under the byte bound — the wall clock ends it.
    let limits = small_limits();
    let mut p = Packager::new(2000).with_limits(limits);
    p.push(&avc_config(), T0).unwrap();
    let (err, _) = attack(
        &mut p,
        10_000,
        |i| video(i, i == 0, 0, 200),
        |i| T0 + i64::from(i) * 40,
    );
    let err = err.expect("ended").to_string();
    assert!(err.contains("wall-clock"), "{err}");
}

#[test]
fn media_time_that_stands_still_ends_the_publish_even_before_a_segment_opens() {
    let limits = small_limits();
    let mut p = Packager::new(2000).with_limits(limits);
    p.push(&avc_config(), T0).unwrap();
    // Frames without a keyframe: nothing is held, but the publisher is stuck at one time.
    let (err, most) = attack(
        &mut p,
        1_000,
        |_| video(5, false, 0, 100),
        |i| T0 + i64::from(i) * 10,
    );
    assert_eq!(most, 0);
    let err = err.expect("ended").to_string();
    assert!(err.contains("stood still"), "{err}");
}

#[test]
fn ordinary_streams_stay_within_the_default_limits() {
    let media = av_stream(0, 30, 120, true, true);
    let mut p = Packager::new(2000).with_limits(Limits::default());
    for (i, m) in media.iter().enumerate() {
        p.push(m, T0 + i as i64 * 12).expect("within limits");
    }
    assert_eq!(
        Limits::default().max_segment_bytes,
        50 * 125_000 * 30,
        "50 Mb/s for 30 s"
    );
}
