use super::*;
use crate::synthetic;
use mp4_atom::{Any, Decode as _};

const PART_MS: u64 = 333;

fn run(packager: &mut PartPackager, media: &[Media]) -> Vec<Output> {
    let mut out = Vec::new();
    for (i, m) in media.iter().enumerate() {
        out.extend(
            packager
                .push(m, 1_700_000_000_000 + i as i64)
                .expect("valid media"),
        );
    }
    out.extend(packager.finish());
    out
}

/// Each part's (track, base decode time, total duration) per `traf`, read back independently.
fn runs_of(part: &[u8]) -> Vec<(u32, u64, u64)> {
    let mut buf = part;
    let Any::Moof(moof) = Any::decode(&mut buf).expect("moof") else {
        panic!("a part starts with moof");
    };
    assert!(matches!(Any::decode(&mut buf), Ok(Any::Mdat(_))));
    (moof.traf.iter())
        .map(|t| {
            let total: u64 = (t.trun[0].entries.iter())
                .map(|e| u64::from(e.duration.unwrap()))
                .sum();
            (
                t.tfhd.track_id,
                t.tfdt.as_ref().unwrap().base_media_decode_time,
                total,
            )
        })
        .collect()
}

/// Segments as lists of parts.
fn segments(out: &[Output]) -> Vec<(Vec<Part>, SegmentEnd)> {
    let mut done = Vec::new();
    let mut parts = Vec::new();
    for o in out {
        match o {
            Output::Init(_) => assert!(parts.is_empty(), "an init section only between segments"),
            Output::Part(p) => parts.push(p.clone()),
            Output::SegmentEnd(end) => done.push((std::mem::take(&mut parts), end.clone())),
        }
    }
    assert!(parts.is_empty(), "every part ends up in a segment");
    done
}

#[test]
fn parts_stay_within_the_target_and_segments_start_independent() {
    let mut p = PartPackager::new(2000, PART_MS);
    let out = run(&mut p, &synthetic::stream(7));
    let inits = out.iter().filter(|o| matches!(o, Output::Init(_))).count();
    assert_eq!(inits, 1);
    assert!(matches!(out[0], Output::Init(_)));
    let segments = segments(&out);
    assert_eq!(segments.len(), 4, "2 s GOPs over 7 s");
    for (i, (parts, end)) in segments.iter().enumerate() {
        assert_eq!(end.parts as usize, parts.len());
        assert_eq!(
            parts.iter().map(|p| p.duration_us).sum::<u64>(),
            end.duration_us
        );
        assert!(parts[0].first && parts[0].independent, "segment {i}");
        assert!(parts[1..].iter().all(|p| !p.first && !p.independent));
        for part in parts {
            assert!(part.duration_us <= PART_MS * 1000, "{}", part.duration_us);
        }
        // All but the segment's last part fill the target to within one frame.
        for part in &parts[..parts.len() - 1] {
            assert!(
                part.duration_us >= (PART_MS - 34) * 1000,
                "{}",
                part.duration_us
            );
        }
        if i < 3 {
            assert_eq!(end.duration_us, 2_000_000);
        }
    }
}

#[test]
fn decode_times_run_on_without_gaps_across_parts() {
    let mut p = PartPackager::new(2000, PART_MS);
    let out = run(&mut p, &synthetic::stream(5));
    let mut next: std::collections::HashMap<u32, u64> = Default::default();
    let mut parts = 0;
    for o in &out {
        let Output::Part(part) = o else { continue };
        parts += 1;
        let runs = runs_of(&part.data);
        assert_eq!(runs[0].0, VIDEO_TRACK, "video first in every part");
        for (track, base, total) in runs {
            if let Some(expected) = next.get(&track) {
                assert_eq!(base, *expected, "track {track} part {parts}");
            }
            next.insert(track, base + total);
        }
    }
    assert!(parts > 10);
    // Audio runs 48 kHz from the first frame: 1024 samples per frame, whatever the ms rounding.
    assert_eq!(next[&AUDIO_TRACK] % 1024, 0);
}

#[test]
fn audio_only_and_video_only_streams_make_parts() {
    let av = synthetic::stream(5);
    let video_only: Vec<Media> = (av.iter())
        .filter(|m| !matches!(m, Media::Audio { .. }))
        .cloned()
        .collect();
    let audio_only: Vec<Media> = (av.iter())
        .filter(|m| !matches!(m, Media::Video { .. }))
        .map(|m| match m {
            Media::Metadata(meta) => Media::Metadata(crate::media::Metadata {
                video_codec_id: None,
                ..meta.clone()
            }),
            other => other.clone(),
        })
        .collect();
    for (name, media, track) in [
        ("video only", video_only, VIDEO_TRACK),
        ("audio only", audio_only, AUDIO_TRACK),
    ] {
        let mut p = PartPackager::new(2000, PART_MS);
        let out = run(&mut p, &media);
        let segments = segments(&out);
        assert!(segments.len() >= 2, "{name}");
        for (parts, _) in &segments {
            for part in parts {
                assert!(part.duration_us <= PART_MS * 1000, "{name}");
                let runs = runs_of(&part.data);
                assert_eq!(runs.len(), 1, "{name}: one track");
                assert_eq!(runs[0].0, track, "{name}");
            }
        }
        if track == AUDIO_TRACK {
            assert!(segments.iter().flat_map(|(p, _)| p).all(|p| p.independent));
        }
    }
}

#[test]
fn a_timestamp_jump_ends_the_segment_and_marks_a_discontinuity() {
    let mut media = synthetic::stream(3);
    let later = synthetic::stream(3);
    // An encoder reconnect: time starts again from 0 (sequence headers sent again).
    media.extend(later.into_iter().skip(1));
    let mut p = PartPackager::new(2000, PART_MS);
    let out = run(&mut p, &media);
    let segments = segments(&out);
    let marked: Vec<bool> = segments.iter().map(|(_, e)| e.discontinuity).collect();
    assert_eq!(marked.iter().filter(|d| **d).count(), 1, "{marked:?}");
    assert!(!marked[0]);
}

#[test]
fn a_new_configuration_gets_a_new_init_section() {
    let mut media = synthetic::stream(3);
    let mut other = synthetic::stream(3);
    // The same stream again with another SPS (a resolution change).
    if let Media::Video { data, .. } = &mut other[1] {
        let mut changed = data.to_vec();
        changed[5 + 10] ^= 0x01;
        *data = Bytes::from(changed);
    }
    media.extend(other.into_iter().skip(1));
    let mut p = PartPackager::new(2000, PART_MS);
    let out = run(&mut p, &media);
    let inits = out.iter().filter(|o| matches!(o, Output::Init(_))).count();
    assert_eq!(inits, 2);
}

#[test]
fn frozen_timestamps_cannot_grow_a_part_without_bound() {
    let limits = Limits::for_bitrate(1, 30_000, 10_000);
    let mut p = PartPackager::new(2000, PART_MS).with_limits(limits);
    let stream = synthetic::stream(1);
    let key = stream
        .iter()
        .find(|m| matches!(m, Media::Video { data, .. } if data[0] == 0x17 && data[1] == 1))
        .cloned()
        .unwrap();
    for m in &stream[..3] {
        p.push(m, 0).unwrap();
    }
    let mut refused = None;
    for i in 0..200_000 {
        // The same timestamp every time, one wall-clock millisecond apart.
        if let Err(e) = p.push(&key, i) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, err) = refused.expect("refused");
    assert!(matches!(err, MediaError::LimitExceeded(_)), "{err}");
    // 1 Mb/s × 30 s = 3.75 MB: about 90 frames of 41 kB, long before the stall clock.
    assert!(at < 200, "refused after {at} frames");
}
