//! What a per-stream feature costs: the server's CPU per stream with N publishers (ffmpeg, the
//! 720p test clip copied in real time), the feature off and on, in interleaved rounds of one run
//! (the same binary; only flags or a channel setting differ).
//!
//! - `thumbs`: live thumbnails off, at the shipped interval (30 s) and at 5 s; and the time one
//!   720p keyframe takes to become a JPEG on one core.
//! - `recordings`: every publish recorded (the shipped default) or not.
//! - `vod`: what the origin serves of past broadcasts — requests per second for a VOD segment
//!   (public and encrypted), a VOD playlist and an encrypted recording's key, next to a live
//!   segment of a running stream, in interleaved rounds against one server (`bench/run vod
//!   [SECONDS] [ROUNDS]`).
//!
//! Run through `bench/run thumbs|recordings [N] [HOLD] [ROUNDS]`. Prints one markdown table.

use std::path::Path;
use std::time::{Duration, Instant};

use boltstream_bench::{cpu_seconds, median, wrk_with};
use boltstream_ingest::thumbs::picture;
use boltstream_tests::http::get;
use boltstream_tests::media::{run, Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

/// One way of running the server.
struct Variant {
    name: &'static str,
    /// `--thumbnail-interval`.
    thumbnail_interval: &'static str,
    /// Every channel keeps recordings.
    record: bool,
}

const THUMBS: [Variant; 3] = [
    Variant {
        name: "thumbnails off",
        thumbnail_interval: "0",
        record: false,
    },
    Variant {
        name: "every 30 s (shipped)",
        thumbnail_interval: "30",
        record: false,
    },
    Variant {
        name: "every 5 s",
        thumbnail_interval: "5",
        record: false,
    },
];

const RECORDINGS: [Variant; 2] = [
    Variant {
        name: "not recorded",
        thumbnail_interval: "0",
        record: false,
    },
    Variant {
        name: "recorded (shipped)",
        thumbnail_interval: "0",
        record: true,
    },
];

/// Bytes of every file below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    let mut files = Vec::new();
    boltstream_tests::server::collect_files(dir, &mut files);
    files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn made(server: &Server) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    (metrics.lines())
        .find_map(|l| l.strip_prefix("boltstream_thumbnails_total{result=\"made\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One variant's round: server CPU ms per second per stream, and what the feature made while
/// measured (pictures; MB recorded).
fn round(v: &Variant, streams: usize, hold: Duration) -> (f64, u64) {
    let server = Server::start_logging(
        &[
            "--hls-format",
            "cmaf",
            "--thumbnail-interval",
            v.thumbnail_interval,
            "--max-connections-per-ip",
            "1000",
            "--recording-min-free-mb",
            "1024",
        ],
        "info",
    );
    let keys: Vec<String> = (0..streams)
        .map(|i| {
            let user = format!("stream{i}");
            let key = server.add_user(&user);
            if !v.record {
                let out = server.cli(&["recordings", "keep", &user, "off"]);
                assert!(out.status.success());
            }
            key
        })
        .collect();
    let mut publishers = Vec::new();
    for key in &keys {
        publishers.push(Publisher::start(
            Clip::AudioVideo,
            &server.publish_url(key),
            true,
        ));
        std::thread::sleep(Duration::from_millis(40));
    }
    // Everyone live and past the go-live picture before the window opens.
    let live = wait_for(Duration::from_secs(30), || {
        (server.live_users().len() == streams).then_some(())
    });
    assert!(live.is_some(), "not every publisher went live");
    std::thread::sleep(Duration::from_secs(6));
    let recorded = || bytes_below(&server.data().join("recordings")) >> 20;
    let (c0, m0, r0, t0) = (
        cpu_seconds(server.pid()),
        made(&server),
        recorded(),
        Instant::now(),
    );
    std::thread::sleep(hold);
    let (c1, m1, r1) = (cpu_seconds(server.pid()), made(&server), recorded());
    let secs = t0.elapsed().as_secs_f64();
    let failed = publishers
        .iter_mut()
        .map(|p| !p.running())
        .filter(|dead| *dead)
        .count();
    assert_eq!(failed, 0, "publishers failed during the round");
    let output = if v.record { r1 - r0 } else { m1 - m0 };
    ((c1 - c0) / secs * 1000.0 / streams as f64, output)
}

/// Milliseconds one keyframe of the 720p clip takes to become a JPEG (median of `n`).
fn keyframe_to_jpeg_ms(n: usize) -> (f64, usize) {
    let annex_b = out_dir().join("keyframe-720p.h264");
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &Clip::AudioVideo.path().to_string_lossy(),
            "-frames:v",
            "1",
            "-c:v",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            &annex_b.to_string_lossy(),
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "cannot extract a keyframe: {err}");
    let bytes = std::fs::read(&annex_b).unwrap();
    let mut times = Vec::new();
    let mut size = 0;
    // As a decoding thread makes them: one decoder, picture after picture.
    let mut thumbnailer = picture::Thumbnailer::default();
    for _ in 0..n {
        let t = Instant::now();
        let p = thumbnailer
            .picture(&bytes)
            .expect("the clip's keyframe decodes");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        size = p.jpeg.len();
    }
    (median(times), size)
}

/// A finished recording of `user` (listed with the session `cookie`, played with the playback
/// `token`): its first segment's URL, and its first key's (or the segment's again).
fn recorded(server: &Server, user: &str, cookie: &str, token: &str) -> (String, String) {
    let playlist = wait_for(Duration::from_secs(60), || {
        let r = boltstream_tests::http::request(
            server.http,
            "GET",
            format!("/api/v1/channels/{user}/recordings").as_bytes(),
            &[("cookie", cookie)],
            b"",
        )
        .ok()?;
        let body: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let playlist = body["recordings"][0]["playlist"].as_str()?.to_string();
        Some(playlist)
    })
    .unwrap_or_else(|| panic!("{user}: no recording"));
    let text = boltstream_tests::http::request(
        server.http,
        "GET",
        playlist.as_bytes(),
        &[("cookie", token)],
        b"",
    )
    .unwrap()
    .text();
    let segment = (text.lines())
        .find(|l| l.ends_with(".m4s"))
        .expect("a segment");
    let key = (text.lines())
        .find_map(|l| l.split("URI=\"key/").nth(1))
        .map(|k| format!("key/{}", k.split('"').next().unwrap_or_default()));
    let base = playlist.trim_end_matches("index.m3u8").to_string();
    let second = key.map_or_else(|| format!("{base}{segment}"), |k| format!("{base}{k}"));
    (format!("{base}{segment}"), second)
}

/// The `vod` mode: requests per second the origin answers for past broadcasts, next to a live
/// segment, one server, interleaved rounds.
fn vod(seconds: u64, rounds: usize) {
    let server = Server::start_logging(&["--hls-format", "cmaf"], "warn");
    let keys: Vec<String> = ["open", "closed", "onair"]
        .iter()
        .map(|u| server.add_user(u))
        .collect();
    assert!(server
        .cli(&["access", "set", "closed", "private"])
        .status
        .success());
    for key in &keys[..2] {
        let mut p = Publisher::start(Clip::AudioVideo, &server.publish_url(key), false);
        assert!(p.wait(Duration::from_secs(60)).is_some());
    }
    let session = server.session("closed");
    let cookie = server.playback_cookie("closed", 3600);
    let (open_segment, _) = recorded(&server, "open", "", "");
    let (closed_segment, closed_key) = recorded(&server, "closed", &session, &cookie);
    let token = format!("Cookie: {cookie}");
    let open_playlist = open_segment.rsplit_once('/').unwrap().0.to_string() + "/index.m3u8";
    let _live = Publisher::start(Clip::AudioVideo, &server.publish_url(&keys[2]), true);
    let live_segment = || {
        wait_for(Duration::from_secs(30), || {
            let text = get(server.http, "/live/onair/index.m3u8").text();
            let seg = (text.lines().rev()).find(|l| !l.starts_with('#') && l.ends_with(".m4s"))?;
            Some(format!("/live/onair/{seg}"))
        })
        .expect("a live segment")
    };
    let targets: [(&str, Option<String>); 5] = [
        ("live segment (peer)", None),
        ("VOD segment", Some(open_segment)),
        ("VOD playlist", Some(open_playlist)),
        ("encrypted VOD segment", Some(closed_segment)),
        ("encrypted VOD key (token)", Some(closed_key)),
    ];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for r in 0..rounds {
        for (i, (name, url)) in targets.iter().enumerate() {
            let path = url.clone().unwrap_or_else(live_segment);
            let headers: &[&str] = if name.contains("token") {
                &[&token]
            } else {
                &[]
            };
            let res = wrk_with(
                &format!("http://{}{path}", server.http),
                32,
                Duration::from_secs(seconds),
                headers,
            );
            assert_eq!(res.errors, 0.0, "{name}: {path} answered errors");
            eprintln!(
                "[round {r}] {name}: {:.0} req/s, p99 {:.2} ms",
                res.rps, res.p99_ms
            );
            rps[i].push(res.rps);
        }
    }
    let names: Vec<&str> = targets.iter().map(|(name, _)| *name).collect();
    print_vod_table(&names, &rps, seconds, rounds);
}

/// The `vod` mode's table: each object's median requests per second, and its ratio to the first.
fn print_vod_table(names: &[&str], rps: &[Vec<f64>], seconds: u64, rounds: usize) {
    let peer = median(rps[0].clone());
    println!("| origin, 32 connections, {seconds} s × {rounds} rounds | requests/s (median) | ratio to a live segment |");
    println!("| --- | --- | --- |");
    for (name, rps) in names.iter().zip(rps) {
        let m = median(rps.clone());
        let each: Vec<String> = rps.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {name} | {m:.0} (rounds: {}) | {:.2}× |",
            each.join(", "),
            m / peer
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("thumbs", String::as_str);
    if mode == "vod" {
        let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
        let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
        return vod(seconds, rounds);
    }
    let streams: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let hold = Duration::from_secs(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30));
    let rounds: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2);
    let (variants, made): (&[Variant], &str) = match mode {
        "recordings" => (&RECORDINGS, "MB recorded in the windows"),
        _ => (&THUMBS, "pictures made in the windows"),
    };
    let mut per_stream: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut output: Vec<u64> = vec![0; variants.len()];
    for r in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            eprintln!("[round {r}] {}: {streams} publishers for {hold:?}", v.name);
            let (cpu, out) = round(v, streams, hold);
            eprintln!("  {cpu:.2} ms/s per stream, {out}");
            per_stream[i].push(cpu);
            output[i] += out;
        }
    }
    let off = median(per_stream[0].clone());
    println!(
        "| {streams} streams, {} s windows × {rounds} rounds | server CPU per stream (median) | {made} | ratio to the first |",
        hold.as_secs()
    );
    println!("| --- | --- | --- | --- |");
    for (i, v) in variants.iter().enumerate() {
        let cpu = median(per_stream[i].clone());
        let each: Vec<String> = per_stream[i].iter().map(|c| format!("{c:.2}")).collect();
        println!(
            "| {} | {cpu:.2} ms/s (rounds: {}) | {} | {:.2}× |",
            v.name,
            each.join(", "),
            output[i],
            cpu / off
        );
    }
    if mode == "thumbs" {
        let (decode_ms, jpeg_bytes) = keyframe_to_jpeg_ms(30);
        println!(
            "\nOne 1280x720 keyframe of the test clip to a 640x360 JPEG ({jpeg_bytes} bytes) on one core: {decode_ms:.1} ms (median of 30)."
        );
    }
}
