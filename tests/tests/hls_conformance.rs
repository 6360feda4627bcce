//! HLS packaging: ffmpeg publishes real H.264 (with B-frames) + AAC; the output is checked by
//! ffprobe, by a full ffmpeg decode, and structurally (continuity, PCR, PAT/PMT, IDR starts).

use std::time::{Duration, Instant};

use boltstream_hls::inspect::{check_segment, Continuity};
use boltstream_tests::http::get;
use boltstream_tests::media::{run, Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

struct Playlist {
    target: f64,
    durations: Vec<f64>,
    names: Vec<String>,
    ended: bool,
    discontinuities: usize,
    text: String,
}

fn parse(text: &str) -> Playlist {
    let mut p = Playlist {
        target: 0.0,
        durations: vec![],
        names: vec![],
        ended: false,
        discontinuities: 0,
        text: text.to_string(),
    };
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = t.parse().unwrap();
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            p.durations.push(d.trim_end_matches(',').parse().unwrap());
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if !line.starts_with('#') && !line.is_empty() {
            p.names.push(line.to_string());
        }
    }
    p
}

fn playlist(server: &Server, user: &str) -> Option<Playlist> {
    let r = get(server.http, &format!("/live/{user}/index.m3u8"));
    (r.status == 200).then(|| parse(&r.text()))
}

/// Publishes `clip` to a fresh server and returns it with the final playlist, after checking the
/// common guarantees.
fn publish_and_check(clip: Clip, expected_seconds: f64, window: &str) -> (Server, Playlist) {
    publish_and_check_with(clip, expected_seconds, &["--hls-window", window])
}

fn publish_and_check_with(clip: Clip, expected_seconds: f64, args: &[&str]) -> (Server, Playlist) {
    let server = Server::start(args);
    let key = server.add_user("alice");
    let started = Instant::now();
    let mut publisher = Publisher::start(clip, &server.publish_url(&key), false);
    let first = wait_for(Duration::from_secs(10), || playlist(&server, "alice"))
        .expect("a playlist appears");
    let playable_after = started.elapsed();
    assert_eq!(
        first.names.len(),
        1,
        "the playlist appears with the first segment"
    );
    assert!(
        playable_after < Duration::from_secs(6),
        "publish → playable took {playable_after:?}"
    );
    let status = publisher
        .wait(Duration::from_secs(30))
        .expect("ffmpeg finishes");
    assert!(status.success(), "{}", publisher.stderr());
    let last = wait_for(Duration::from_secs(5), || {
        playlist(&server, "alice").filter(|p| p.ended)
    })
    .expect("EXT-X-ENDLIST after the publisher stops");

    let total: f64 = last.durations.iter().sum();
    let longest = last.durations.iter().cloned().fold(0.0, f64::max);
    assert!(
        (total - expected_seconds).abs() <= longest,
        "summed EXTINF {total} vs published {expected_seconds}\n{}",
        last.text
    );
    for d in &last.durations {
        assert!(
            d.round() <= last.target,
            "EXTINF {d} exceeds target {}",
            last.target
        );
    }
    // Structure: every segment, in order, continuity carried across segments.
    let mut cc = Continuity::new();
    for name in &last.names {
        let seg = get(server.http, &format!("/live/alice/{name}"));
        assert_eq!(seg.status, 200);
        let report = check_segment(&seg.body, &mut cc).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            report.starts_with_random_access,
            "{name} starts at a random access point"
        );
    }
    // A full decode through the origin prints no error.
    let url = format!("http://{}/live/alice/index.m3u8", server.http);
    let (ok, _, stderr) = run(
        "ffmpeg",
        &["-hide_banner", "-v", "error", "-i", &url, "-f", "null", "-"],
        Duration::from_secs(60),
    );
    assert!(
        ok && stderr.trim().is_empty(),
        "ffmpeg decode errors: {stderr}"
    );
    (server, last)
}

fn probe(server: &Server) -> Vec<(String, String)> {
    let url = format!("http://{}/live/alice/index.m3u8", server.http);
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate,start_time",
            "-of",
            "flat",
            &url,
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn field(fields: &[(String, String)], stream: usize, name: &str) -> String {
    let key = format!("streams.stream.{stream}.{name}");
    fields
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[test]
fn audio_video_720p_with_b_frames() {
    let (server, last) = publish_and_check(Clip::AudioVideo, 10.0, "10");
    assert_eq!(last.target, 2.0);
    let fields = probe(&server);
    let (v, a) = if field(&fields, 0, "codec_type") == "video" {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(field(&fields, v, "codec_name"), "h264");
    assert_eq!(field(&fields, v, "width"), "1280");
    assert_eq!(field(&fields, v, "height"), "720");
    assert_eq!(field(&fields, a, "codec_name"), "aac");
    assert_eq!(field(&fields, a, "sample_rate"), "48000");
    let vs: f64 = field(&fields, v, "start_time").parse().unwrap();
    let as_: f64 = field(&fields, a, "start_time").parse().unwrap();
    assert!(
        (vs - as_).abs() <= 0.1,
        "audio and video start {vs} vs {as_}"
    );
    // On disk, under the username, never the key.
    let dir = server.data().join("hls").join("alice");
    let on_disk = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
    assert_eq!(
        on_disk, last.text,
        "the disk mirror equals what the origin serves"
    );
    for name in &last.names {
        assert!(dir.join(name).exists());
    }
}

fn segment_bytes_in_memory(server: &Server) -> u64 {
    metric(server, "boltstream_hls_segment_bytes_in_memory")
}

fn metric(server: &Server, name: &str) -> u64 {
    get(server.internal, "/internal/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} is exported"))
        .parse()
        .unwrap()
}

/// The default: the same conformance, served from the disk mirror, and the window's bytes leave
/// memory once written (while `--hls-window-in-memory true` keeps them).
#[test]
fn window_served_from_disk_by_default() {
    let (server, last) = publish_and_check_with(Clip::AudioVideo, 10.0, &["--hls-window", "10"]);
    let dir = server.data().join("hls").join("alice");
    for name in &last.names {
        let served = get(server.http, &format!("/live/alice/{name}"));
        assert_eq!(
            served.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            served.body,
            std::fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        segment_bytes_in_memory(&server),
        0,
        "every written segment left memory"
    );
    // Read from disk once, then from the cache of recently read segments: same bytes.
    let sizes: u64 = last
        .names
        .iter()
        .map(|name| {
            let again = get(server.http, &format!("/live/alice/{name}"));
            assert_eq!(again.body, std::fs::read(dir.join(name)).unwrap(), "{name}");
            again.body.len() as u64
        })
        .sum();
    assert_eq!(metric(&server, "boltstream_hls_disk_cache_bytes"), sizes);
    // Segments were written while they were made, and every one was completed.
    assert!(!dir.join(".open.ts.tmp").exists());
    let log = server.log();
    assert!(
        !log.contains("was lost") && !log.contains("cannot write"),
        "{log}"
    );
}

/// `--hls-window-in-memory true` keeps a live window in memory; once the publish ends, the
/// segments safely on disk leave memory and are served from there, byte for byte the same.
#[test]
fn the_memory_window_keeps_the_live_window_in_memory_and_releases_it_at_the_end() {
    let server = Server::start(&["--hls-window-in-memory", "true"]);
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let live = wait_for(Duration::from_secs(15), || {
        playlist(&server, "alice").filter(|p| p.names.len() >= 3)
    })
    .expect("three segments listed");
    // Measured while the publisher runs; the window may move between the two reads, so each
    // read is compared with the playlist it belongs to.
    let in_memory = wait_for(Duration::from_secs(5), || {
        let before = playlist(&server, "alice")?;
        let bytes = segment_bytes_in_memory(&server);
        let after = playlist(&server, "alice")?;
        (before.names == after.names).then_some((after, bytes))
    });
    let (listed, bytes) = in_memory.expect("a stable window to measure");
    let sizes: u64 = listed
        .names
        .iter()
        .map(|n| get(server.http, &format!("/live/alice/{n}")).body.len() as u64)
        .sum();
    assert!(live.names.len() >= 3 && sizes > 0);
    assert_eq!(bytes, sizes, "the live window is in memory");
    publisher.kill();
    let ended = wait_for(Duration::from_secs(10), || {
        playlist(&server, "alice").filter(|p| p.ended)
    })
    .expect("EXT-X-ENDLIST after the publisher stops");
    assert!(
        wait_for(Duration::from_secs(5), || (segment_bytes_in_memory(
            &server
        ) == 0)
            .then_some(()))
        .is_some(),
        "a finished stream's written window left memory: {} bytes still there",
        segment_bytes_in_memory(&server)
    );
    let dir = server.data().join("hls").join("alice");
    for name in &ended.names {
        let served = get(server.http, &format!("/live/alice/{name}"));
        assert_eq!(served.status, 200, "{name}");
        assert_eq!(
            served.body,
            std::fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn video_only() {
    let (server, _) = publish_and_check(Clip::VideoOnly, 6.0, "6");
    let fields = probe(&server);
    assert_eq!(field(&fields, 0, "codec_name"), "h264");
    assert_eq!(field(&fields, 1, "codec_name"), "");
}

#[test]
fn audio_only() {
    let (server, last) = publish_and_check(Clip::AudioOnly, 6.0, "6");
    assert!(last.durations.len() >= 3);
    let fields = probe(&server);
    assert_eq!(field(&fields, 0, "codec_name"), "aac");
    assert_eq!(field(&fields, 0, "sample_rate"), "44100");
    assert_eq!(field(&fields, 1, "codec_name"), "");
}

#[test]
fn a_gop_longer_than_the_target_gives_longer_segments() {
    let (_, last) = publish_and_check(Clip::LongGop, 12.0, "6");
    assert_eq!(last.target, 4.0, "{}", last.text);
    assert!(
        last.durations.iter().all(|d| (3.9..=4.1).contains(d)),
        "{}",
        last.text
    );
}

#[test]
fn republish_continues_the_playlist_after_a_discontinuity() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let mut first = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(first.wait(Duration::from_secs(20)).unwrap().success());
    let before = wait_for(Duration::from_secs(5), || {
        playlist(&server, "alice").filter(|p| p.ended)
    })
    .unwrap();
    let mut second = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(second.wait(Duration::from_secs(20)).unwrap().success());
    let after = wait_for(Duration::from_secs(5), || {
        playlist(&server, "alice").filter(|p| p.ended && p.names.len() > before.names.len())
    })
    .unwrap();
    assert_eq!(after.discontinuities, 1, "{}", after.text);
    let mut names = after.names.clone();
    names.dedup();
    assert_eq!(names.len(), after.names.len(), "segment names never repeat");
    assert!(after.names.windows(2).all(|w| w[0] < w[1]));
    let url = format!("http://{}/live/alice/index.m3u8", server.http);
    let (ok, _, stderr) = run(
        "ffmpeg",
        &["-hide_banner", "-v", "error", "-i", &url, "-f", "null", "-"],
        Duration::from_secs(60),
    );
    assert!(ok && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn unsupported_codec_is_refused_with_a_clear_log_line() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    // MP3 audio in FLV (Debian's ffmpeg has libmp3lame): not packaged into our MPEG-TS.
    let url = server.publish_url(&key);
    let (ok, _, _) = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=4",
            "-c:a",
            "libmp3lame",
            "-f",
            "flv",
            &url,
        ],
        Duration::from_secs(20),
    );
    assert!(!ok, "the publisher was dropped");
    let log = wait_for(Duration::from_secs(3), || {
        Some(server.log()).filter(|l| l.contains("publish ended"))
    })
    .unwrap();
    assert!(
        log.contains("unsupported codec") && log.contains("MP3")
            || log.contains("audio codec id 2"),
        "{log}"
    );
    assert_eq!(
        get(server.http, "/live/alice/index.m3u8").status,
        404,
        "no broken output"
    );
}

#[test]
fn old_segments_and_finished_streams_are_cleaned_up() {
    let server = Server::start(&["--hls-window", "3", "--hls-cleanup-after", "2"]);
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), false);
    let first = wait_for(Duration::from_secs(10), || playlist(&server, "alice"))
        .unwrap()
        .names[0]
        .clone();
    let dir = server.data().join("hls/alice");
    // The playlist is served from memory first; the disk mirror follows from the writer task.
    assert!(
        wait_for(Duration::from_secs(3), || dir
            .join(&first)
            .exists()
            .then_some(()))
        .is_some(),
        "{first} reaches the disk mirror"
    );
    assert!(publisher.wait(Duration::from_secs(30)).unwrap().success());
    // The first segment left the 3-segment window long ago; its grace (3 × 2 s) has passed.
    assert!(
        wait_for(Duration::from_secs(8), || (!dir.join(&first).exists())
            .then_some(()))
        .is_some(),
        "retired segment not deleted"
    );
    // The finished stream's files go after --hls-cleanup-after.
    assert!(
        wait_for(Duration::from_secs(6), || (!dir.exists()).then_some(())).is_some(),
        "finished stream not removed"
    );
    assert_eq!(get(server.http, "/live/alice/index.m3u8").status, 404);
}
