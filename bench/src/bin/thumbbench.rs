//! What live thumbnails cost: the server's CPU per stream with N publishers (ffmpeg, the 720p test
//! clip copied in real time) with thumbnails off, at the shipped interval (30 s) and at 5 s, in
//! interleaved rounds of one run; and the time one 720p keyframe takes to become a JPEG on one
//! core.
//!
//! Run through `bench/run thumbs [N] [HOLD] [ROUNDS]`. Prints one markdown table.

use std::time::{Duration, Instant};

use boltstream_bench::{cpu_seconds, median};
use boltstream_ingest::thumbs::picture;
use boltstream_tests::http::get;
use boltstream_tests::media::{run, Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

/// The interval flag of each variant, and its name.
const VARIANTS: [(&str, &str); 3] = [
    ("0", "thumbnails off"),
    ("30", "every 30 s (shipped)"),
    ("5", "every 5 s"),
];

fn made(server: &Server) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    (metrics.lines())
        .find_map(|l| l.strip_prefix("boltstream_thumbnails_total{result=\"made\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One variant's round: (server CPU ms per second per stream, pictures made while measured).
fn round(interval: &str, streams: usize, hold: Duration) -> (f64, u64) {
    let server = Server::start_logging(
        &[
            "--hls-format",
            "cmaf",
            "--thumbnail-interval",
            interval,
            "--max-connections-per-ip",
            "1000",
        ],
        "info",
    );
    let mut publishers = Vec::new();
    for i in 0..streams {
        let key = server.add_user(&format!("stream{i}"));
        publishers.push(Publisher::start(
            Clip::AudioVideo,
            &server.publish_url(&key),
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
    let (c0, m0, t0) = (cpu_seconds(server.pid()), made(&server), Instant::now());
    std::thread::sleep(hold);
    let (c1, m1) = (cpu_seconds(server.pid()), made(&server));
    let secs = t0.elapsed().as_secs_f64();
    let failed = publishers
        .iter_mut()
        .map(|p| !p.running())
        .filter(|dead| *dead)
        .count();
    assert_eq!(failed, 0, "publishers failed during the round");
    ((c1 - c0) / secs * 1000.0 / streams as f64, m1 - m0)
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let streams: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let hold = Duration::from_secs(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30));
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let (decode_ms, jpeg_bytes) = keyframe_to_jpeg_ms(30);
    let mut per_stream: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut pictures: Vec<u64> = vec![0; VARIANTS.len()];
    for r in 0..rounds {
        for (i, (interval, name)) in VARIANTS.iter().enumerate() {
            eprintln!("[round {r}] {name}: {streams} publishers for {hold:?}");
            let (cpu, made) = round(interval, streams, hold);
            eprintln!("  {cpu:.2} ms/s per stream, {made} pictures");
            per_stream[i].push(cpu);
            pictures[i] += made;
        }
    }
    let off = median(per_stream[0].clone());
    println!(
        "| {streams} streams, {} s windows × {rounds} rounds | server CPU per stream (median) | pictures made in the windows | ratio to off |",
        hold.as_secs()
    );
    println!("| --- | --- | --- | --- |");
    for (i, (_, name)) in VARIANTS.iter().enumerate() {
        let cpu = median(per_stream[i].clone());
        println!(
            "| {name} | {cpu:.2} ms/s (rounds: {}) | {} | {:.2}× |",
            (per_stream[i].iter())
                .map(|c| format!("{c:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            pictures[i],
            cpu / off
        );
    }
    println!(
        "\nOne 1280x720 keyframe of the test clip to a 640x360 JPEG ({jpeg_bytes} bytes) on one core: {decode_ms:.1} ms (median of 30)."
    );
}
