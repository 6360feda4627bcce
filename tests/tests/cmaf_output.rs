//! The low-latency (CMAF) packager on real media: ffmpeg's H.264 (with B-frames) and AAC clips,
//! read from their FLV files tag by tag as a publisher sends them, come out as an init section and
//! parts that ffprobe reads as the clip's tracks and ffmpeg decodes without one error — the whole
//! stream, and each segment alone (its parts after the init section, as a player joining there
//! fetches them).

use std::path::Path;
use std::time::Duration;

use boltstream_hls::cmaf::{Output, PartPackager};
use boltstream_tests::media::{decode_errors, flv_media, run, Clip};
use boltstream_tests::out_dir;

const PART_MS: u64 = 333;

struct Packaged {
    init: Vec<u8>,
    /// Each segment's parts, concatenated.
    segments: Vec<Vec<u8>>,
    longest_part_us: u64,
}

fn package(clip: Clip) -> Packaged {
    let mut packager = PartPackager::new(2000, PART_MS);
    let mut outputs = Vec::new();
    for (i, media) in flv_media(&clip.path()).iter().enumerate() {
        let out = packager
            .push(media, 1_700_000_000_000 + i as i64 * 5)
            .unwrap_or_else(|e| panic!("{clip:?}: {e}"));
        outputs.extend(out);
    }
    outputs.extend(packager.finish());
    let mut packaged = Packaged {
        init: Vec::new(),
        segments: Vec::new(),
        longest_part_us: 0,
    };
    let mut open = Vec::new();
    for output in outputs {
        match output {
            Output::Init(bytes) => {
                assert!(packaged.init.is_empty(), "{clip:?}: one configuration");
                packaged.init = bytes.to_vec();
            }
            Output::Part(part) => {
                packaged.longest_part_us = packaged.longest_part_us.max(part.duration_us);
                open.extend_from_slice(&part.data);
            }
            Output::SegmentEnd(_) => packaged.segments.push(std::mem::take(&mut open)),
        }
    }
    packaged
}

fn write(name: &str, pieces: &[&[u8]]) -> std::path::PathBuf {
    let path = out_dir().join("cmaf").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, pieces.concat()).unwrap();
    path
}

/// `codec_type codec_name` per stream, and the container's duration.
fn probe(path: &Path) -> (Vec<String>, f64) {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name:format=duration",
            "-of",
            "compact=p=0:nk=1",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(ok && err.is_empty(), "ffprobe: {err}");
    let mut streams = Vec::new();
    let mut duration = 0.0;
    for line in out.lines() {
        match line.split('|').collect::<Vec<_>>()[..] {
            [name, kind] => streams.push(format!("{kind} {name}")),
            [d] => duration = d.parse().unwrap_or(0.0),
            _ => {}
        }
    }
    (streams, duration)
}

fn check(clip: Clip, streams: &[&str], seconds: f64) {
    let packaged = package(clip);
    let name = format!("{clip:?}").to_lowercase();
    assert!(
        packaged.longest_part_us <= PART_MS * 1000,
        "{clip:?}: a part of {} µs",
        packaged.longest_part_us
    );
    assert!(packaged.segments.len() >= 2, "{clip:?}");
    let mut whole: Vec<&[u8]> = vec![&packaged.init];
    whole.extend(packaged.segments.iter().map(Vec::as_slice));
    let path = write(&format!("{name}.mp4"), &whole);
    let (found, duration) = probe(&path);
    assert_eq!(found, streams, "{clip:?}");
    assert!(
        (duration - seconds).abs() < 0.2,
        "{clip:?}: {duration} s, expected {seconds}"
    );
    assert_eq!(decode_errors(&path), "", "{clip:?}: the whole stream");
    for (i, segment) in packaged.segments.iter().enumerate().take(3) {
        let path = write(&format!("{name}-{i}.mp4"), &[&packaged.init, segment]);
        assert_eq!(decode_errors(&path), "", "{clip:?}: segment {i} alone");
    }
}

#[test]
fn h264_with_b_frames_and_aac_48k() {
    check(Clip::AudioVideo, &["video h264", "audio aac"], 10.0);
}

#[test]
fn h264_1080p60_and_aac_44k() {
    check(Clip::HighRate, &["video h264", "audio aac"], 4.0);
}

#[test]
fn a_4_s_gop_longer_than_the_target() {
    check(Clip::LongGop, &["video h264"], 12.0);
}

#[test]
fn video_only() {
    check(Clip::VideoOnly, &["video h264"], 6.0);
}

#[test]
fn audio_only() {
    check(Clip::AudioOnly, &["audio aac"], 6.0);
}
