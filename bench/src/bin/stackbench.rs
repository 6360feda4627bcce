//! Boltstream next to the stack it replaces — nginx + nginx-rtmp-module (`app` with
//! `on_publish`/`on_publish_done` callbacks and `push` to an `hls` application, `hls_nested on`,
//! `hls_fragment_naming system`) — fed the same clip, measured the same way, in one run.
//!
//! Run through `bench/run stack` (installs and builds everything first). Prints one markdown table.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use boltstream_bench::nginx::Nginx;
use boltstream_bench::tap::Tap;
use boltstream_bench::{children, cpu_seconds, median, peak_rss_mib, wrk};
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

const TARGET_S: u64 = 2;

/// What the measurements need from a stack.
trait Stack {
    fn add_user(&mut self, user: &str) -> String;
    fn publish_url(&self, key: &str) -> String;
    fn http(&self) -> SocketAddr;
    fn pids(&self) -> Vec<u32>;
}

impl Stack for Server {
    fn add_user(&mut self, user: &str) -> String {
        Server::add_user(self, user)
    }
    fn publish_url(&self, key: &str) -> String {
        Server::publish_url(self, key)
    }
    fn http(&self) -> SocketAddr {
        self.http
    }
    fn pids(&self) -> Vec<u32> {
        vec![self.pid()]
    }
}

impl Stack for Nginx {
    fn add_user(&mut self, user: &str) -> String {
        Nginx::add_user(self, user)
    }
    fn publish_url(&self, key: &str) -> String {
        format!("rtmp://{}/app/{key}", self.rtmp)
    }
    fn http(&self) -> SocketAddr {
        self.http
    }
    fn pids(&self) -> Vec<u32> {
        let master = self.child.id();
        let mut pids = vec![master];
        pids.extend(children(master));
        pids
    }
}

fn newest_segment(stack: &dyn Stack, user: &str) -> Option<String> {
    let r = get(stack.http(), &format!("/live/{user}/index.m3u8"));
    (r.status == 200)
        .then(|| {
            r.text()
                .lines()
                .rev()
                .find(|l| l.ends_with(".ts"))
                .map(str::to_string)
        })
        .flatten()
}

/// Median seconds from the publisher's start until the playlist lists a segment that can be fetched.
fn publish_to_playable(stack: &mut dyn Stack, runs: usize) -> f64 {
    let mut samples = Vec::new();
    for i in 0..runs {
        let user = format!("play{i}");
        let key = stack.add_user(&user);
        let t0 = Instant::now();
        let publisher = Publisher::start(Clip::AudioVideo, &stack.publish_url(&key), true);
        let ready = wait_for(Duration::from_secs(20), || {
            let seg = newest_segment(stack, &user)?;
            (get(stack.http(), &format!("/live/{user}/{seg}")).status == 200).then(|| t0.elapsed())
        });
        drop(publisher);
        if let Some(d) = ready {
            samples.push(d.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    median(samples)
}

/// The clip's keyframes, each known by the first bytes of its IDR slice, which both stacks copy
/// verbatim from the publisher into their segments and which appear as they are on the RTMP wire.
struct Keyframes {
    /// Per keyframe, in clip order: the shortest prefix (and a little more) that tells them apart.
    signatures: Vec<Vec<u8>>,
    /// Clip length in seconds (the publisher loops it).
    length: f64,
}

impl Keyframes {
    /// Long because the ffprobe and ffmpeg arguments are written out one per line.
    fn of(clip: Clip) -> Self {
        let path = clip.path();
        let path = path.to_str().unwrap();
        let (ok, csv, err) = boltstream_tests::media::run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts_time,duration_time,flags",
                "-of",
                "csv=p=0",
                path,
            ],
            Duration::from_secs(30),
        );
        assert!(ok, "ffprobe: {err}");
        let mut keyframes = 0;
        let mut length = 0.0_f64;
        for line in csv.lines() {
            let f: Vec<&str> = line.split(',').collect();
            let (Some(pts), Some(dur)) = (
                f.first().and_then(|v| v.parse::<f64>().ok()),
                f.get(1).and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            length = length.max(pts + dur);
            if f.get(2).is_some_and(|flags| flags.starts_with('K')) {
                keyframes += 1;
            }
        }
        let annexb = out_dir().join("bench-clip.h264");
        let (ok, _, err) = boltstream_tests::media::run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-i",
                path,
                "-map",
                "0:v",
                "-c",
                "copy",
                "-bsf:v",
                "h264_mp4toannexb",
                "-f",
                "h264",
                annexb.to_str().unwrap(),
            ],
            Duration::from_secs(30),
        );
        assert!(ok, "ffmpeg: {err}");
        let es = std::fs::read(&annexb).unwrap();
        let slices = idr_slices(&es);
        assert_eq!(slices.len(), keyframes, "one IDR per keyframe");
        // The shortest prefix that tells the keyframes apart (a synthetic clip's pictures can
        // share hundreds of bytes), and a little more.
        let distinct = |len: usize| {
            let mut prefixes: Vec<&[u8]> = slices.iter().map(|s| &s[..s.len().min(len)]).collect();
            prefixes.sort();
            prefixes.dedup();
            prefixes.len() == slices.len()
        };
        let len = (16..=MAX_SIGNATURE)
            .step_by(16)
            .find(|&len| distinct(len))
            .expect("keyframes that differ within their first bytes")
            + 16;
        let signatures: Vec<Vec<u8>> = slices
            .iter()
            .map(|s| s[..s.len().min(len)].to_vec())
            .collect();
        Self { signatures, length }
    }

    /// Which of the clip's keyframes a segment starts with, from its first IDR.
    fn locate(&self, segment_ts: &[u8]) -> Option<usize> {
        let es = video_elementary_stream(segment_ts);
        let slice = *idr_slices(&es).first()?;
        self.signatures.iter().position(|s| slice.starts_with(s))
    }
}

/// The most bytes of an IDR slice searched for on the wire: its header and the start of its data
/// must tell the keyframes apart within this, which sits inside one RTMP chunk (ffmpeg sends
/// 4096-byte chunks; the slice starts a few bytes into its message).
const MAX_SIGNATURE: usize = 2048;

/// The first slice NAL unit of each IDR picture in an Annex B stream.
fn idr_slices(es: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= es.len() {
        if es[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    let mut previous_idr = false;
    for (n, &at) in starts.iter().enumerate() {
        let is_idr = es.get(at).is_some_and(|h| h & 0x1f == 5);
        let end = starts.get(n + 1).copied().unwrap_or(es.len());
        if is_idr && !previous_idr {
            // The whole slice, without the zero that may belong to a 4-byte start code.
            let mut nal = &es[at..end];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            out.push(nal);
        }
        previous_idr = is_idr;
    }
    out
}

/// The video PES payloads of a segment, concatenated (PID 0x100 for both stacks).
fn video_elementary_stream(ts: &[u8]) -> Vec<u8> {
    let mut es = Vec::new();
    for p in ts.chunks_exact(188) {
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if p[0] != 0x47 || pid != 0x100 || p[3] & 0x10 == 0 {
            continue;
        }
        let mut start = if p[3] & 0x20 != 0 {
            5 + usize::from(p[4])
        } else {
            4
        };
        if p[1] & 0x40 != 0 {
            let Some(pes) = p.get(start..) else { continue };
            if pes.len() < 9 {
                continue;
            }
            start += 9 + usize::from(pes[8]);
        }
        if let Some(payload) = p.get(start..) {
            es.extend_from_slice(payload);
        }
    }
    es
}

/// Live-edge delay: for each new segment, when it appeared in the playlist minus when the
/// publisher sent the keyframe that closed it — the first moment any stack could know the segment
/// was complete. The publisher sends through a [`Tap`], which notes when each byte passed.
/// Segments are placed on the publisher's timeline by their content, not by timestamps or
/// durations a stack may rewrite (nginx-rtmp's `push` does, and its first EXTINFs can be off by
/// seconds): a segment's first IDR is one of the clip's keyframes, sent last before the segment
/// appeared; the keyframe that closed it is the one the next segment starts with, the first time
/// the publisher sent it after that. The playlist is polled every 0.2 ms from a keyframe's passing
/// until the next segment appears (every 2 ms otherwise), so a lag is overstated by at most that
/// and one request. The publisher's start-up is not in it. Long because the tap, the polling and
/// the matching are one loop over the same clock.
fn live_edge_delay(stack: &mut dyn Stack, keyframes: &Keyframes, seconds: u64) -> f64 {
    let key = stack.add_user("delay");
    let (upstream, path) = Tap::split_url(&stack.publish_url(&key)).expect("an rtmp:// URL");
    let tap = Tap::start(upstream, keyframes.signatures.clone()).expect("start the tap");
    let publisher = Publisher::start(
        Clip::AudioVideo,
        &format!("rtmp://{}/{path}", tap.addr()),
        true,
    );
    // (segment, when it appeared, the keyframe it starts with), in order of appearance.
    let mut appeared: Vec<(String, Instant, usize)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // Polled every 2 ms, and every 0.2 ms for a second after a keyframe went through the tap,
    // which is when a segment is about to appear: the lag's resolution where it matters,
    // without hammering the stack all the time.
    let mut fast_until = Instant::now();
    while Instant::now() < deadline {
        // Before the poll: a keyframe passes the tap before any stack can list its segment.
        if tap.sightings().try_iter().last().is_some() {
            fast_until = Instant::now() + Duration::from_secs(1);
        }
        let newest = newest_segment(&*stack, "delay");
        let now = Instant::now();
        if let Some(seg) = newest {
            if !appeared.iter().any(|a| a.0 == seg) {
                let body = get(stack.http(), &format!("/live/delay/{seg}")).body;
                let start = keyframes
                    .locate(&body)
                    .expect("a segment starts with a keyframe of the clip");
                appeared.push((seg, now, start));
                fast_until = now;
            }
        }
        std::thread::sleep(if Instant::now() < fast_until {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(2)
        });
    }
    drop(publisher);
    let wire = tap.capture().occurrences(&keyframes.signatures);
    assert!(
        wire.len() as f64
            >= seconds as f64 / keyframes.length * keyframes.signatures.len() as f64 / 2.0,
        "the clip's keyframes were not found on the wire ({} found)",
        wire.len()
    );
    let mut lags = Vec::new();
    let mut unplaced = 0;
    // The first segment listed may predate the first poll that saw it; the last has no successor.
    for pair in appeared.windows(2).skip(1) {
        let [(seg, at, start), (_, _, next_start)] = pair else {
            unreachable!()
        };
        let Some(i) = wire.iter().rposition(|(t, k)| k == start && t < at) else {
            panic!("{seg}: its first keyframe was never sent before it appeared");
        };
        let closing = wire[i + 1..]
            .iter()
            .find(|(_, k)| k == next_start)
            .map(|w| w.0);
        match closing {
            Some(sent) if sent <= *at => lags.push(at.duration_since(sent).as_secs_f64()),
            // A segment the polls missed in between: the next one listed does not close this.
            _ => unplaced += 1,
        }
    }
    eprintln!(
        "  {} segments placed ({unplaced} not), lag min {:.1} ms, max {:.1} ms",
        lags.len(),
        lags.iter().copied().fold(f64::INFINITY, f64::min) * 1000.0,
        lags.iter().copied().fold(0.0, f64::max) * 1000.0,
    );
    assert!(
        lags.len() >= 5,
        "too few segments placed on the publisher's timeline"
    );
    median(lags)
}

/// Everything measured for one stack.
struct StackResult {
    playable: f64,
    /// Median live-edge lag, seconds.
    delay: f64,
    scales: Vec<Scale>,
    /// (segment, playlist)
    http: (boltstream_bench::WrkResult, boltstream_bench::WrkResult),
}

struct Scale {
    cpu_percent: f64,
    cpu_per_stream_ms_s: f64,
    peak_rss: f64,
    fresh: usize,
    failed: usize,
    publisher_cpu_percent: f64,
}

/// N publishers held for `hold`: server CPU, peak RSS, fresh playlists, failed publishers.
fn scale(stack: &mut dyn Stack, n: usize, hold: Duration, round: usize) -> Scale {
    let users: Vec<String> = (0..n).map(|i| format!("s{round}_{i}")).collect();
    for pid in stack.pids() {
        assert!(
            boltstream_bench::reset_peak_rss(pid),
            "cannot reset the peak RSS of {pid}"
        );
    }
    let mut publishers = Vec::new();
    for user in &users {
        let key = stack.add_user(user);
        publishers.push(Publisher::start(
            Clip::AudioVideo,
            &stack.publish_url(&key),
            true,
        ));
        std::thread::sleep(Duration::from_millis(40)); // staggered starts
    }
    std::thread::sleep(Duration::from_secs(3 * TARGET_S + 2));
    let pids = stack.pids();
    let pub_pids: Vec<u32> = publishers.iter().map(|p| p.pid()).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let (s0, p0, t0) = (cpu(&pids), cpu(&pub_pids), Instant::now());
    std::thread::sleep(hold);
    let (s1, p1, secs) = (
        cpu(&stack.pids()),
        cpu(&pub_pids),
        t0.elapsed().as_secs_f64(),
    );
    let now = SystemTime::now();
    let fresh = users
        .iter()
        .filter(|u| {
            let r = get(stack.http(), &format!("/live/{u}/index.m3u8"));
            r.status == 200
                && r.header("last-modified")
                    .and_then(|lm| httpdate::parse_http_date(lm).ok())
                    .is_some_and(|lm| {
                        now.duration_since(lm).unwrap_or_default()
                            <= Duration::from_secs(2 * TARGET_S)
                    })
        })
        .count();
    let failed = publishers
        .iter_mut()
        .map(|p| !p.running())
        .filter(|dead| *dead)
        .count();
    let peak_rss = stack.pids().iter().map(|p| peak_rss_mib(*p)).sum();
    drop(publishers);
    std::thread::sleep(Duration::from_secs(3));
    let cpu_percent = (s1 - s0) / secs * 100.0;
    Scale {
        cpu_percent,
        cpu_per_stream_ms_s: (s1 - s0) / secs * 1000.0 / n as f64,
        peak_rss,
        fresh,
        failed,
        publisher_cpu_percent: (p1 - p0) / secs * 100.0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let levels: Vec<usize> = args
        .get(1)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 50, 100]);
    let hold = Duration::from_secs(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20));
    let keyframes = Keyframes::of(Clip::AudioVideo);
    let variants = ["Boltstream", "Boltstream, window in memory", "nginx-rtmp"];
    let results: Vec<StackResult> = (variants.iter())
        .map(|which| measure(which, &levels, hold, &keyframes))
        .collect();
    print_table(&variants, &results, &levels);
}

/// Every measure of one stack, started fresh.
fn measure(which: &str, levels: &[usize], hold: Duration, keyframes: &Keyframes) -> StackResult {
    let runs = 5;
    // One worker thread, as nginx runs one worker process (`worker_processes 1`): the same
    // parallelism on both sides, and neither stack fights wrk and the publishers for the
    // two cores with a second thread.
    let common = [
        "--hls-target-duration",
        "2",
        "--max-connections-per-ip",
        "1000",
        "--workers",
        "1",
    ];
    let mut stack: Box<dyn Stack> = match which {
        // Logging as shipped (info), like nginx's `access_log off` and `error_log warn`: no
        // line per request.
        "Boltstream" => Box::new(Server::start_logging(&common, "info")),
        "Boltstream, window in memory" => Box::new(Server::start_logging(
            &[&common[..], &["--hls-window-in-memory", "true"]].concat(),
            "info",
        )),
        _ => Box::new(Nginx::start(TARGET_S)),
    };
    eprintln!("[{which}] publish → playable ({runs} runs)");
    let playable = publish_to_playable(stack.as_mut(), runs);
    eprintln!("[{which}] live-edge delay");
    let delay = live_edge_delay(stack.as_mut(), keyframes, 60);
    eprintln!("[{which}] wrk");
    let http = {
        let key = stack.add_user("wrk");
        let _p = Publisher::start(Clip::AudioVideo, &stack.publish_url(&key), true);
        let seg = wait_for(Duration::from_secs(15), || {
            newest_segment(stack.as_ref(), "wrk")
        })
        .expect("wrk stream live");
        let base = format!("http://{}/live/wrk", stack.http());
        (
            wrk(&format!("{base}/{seg}"), 16, Duration::from_secs(5)),
            wrk(&format!("{base}/index.m3u8"), 16, Duration::from_secs(5)),
        )
    };
    let mut scales = Vec::new();
    for (round, n) in levels.iter().enumerate() {
        // /proc counts CPU in 10 ms ticks and one stream uses a few a second: it is held
        // three times as long to keep the rounding error small.
        let held = if *n == 1 { hold * 3 } else { hold };
        eprintln!("[{which}] {n} publishers for {held:?}");
        scales.push(scale(stack.as_mut(), *n, held, round));
    }
    StackResult {
        playable,
        delay,
        scales,
        http,
    }
}

/// The results as the Markdown table BENCHMARKS.md holds.
fn print_table(variants: &[&str; 3], results: &[StackResult], levels: &[usize]) {
    println!(
        "| measure | {} | {} | {} | ratios to nginx-rtmp |",
        variants[0], variants[1], variants[2]
    );
    println!("| --- | --- | --- | --- | --- |");
    let (b, d, n) = (&results[0], &results[1], &results[2]);
    let row = |name: &str, f: &dyn Fn(&StackResult) -> f64, unit: &str| {
        let (x, y, z) = (f(b), f(d), f(n));
        println!(
            "| {name} | {x:.2} {unit} | {y:.2} {unit} | {z:.2} {unit} | {:.2} / {:.2} |",
            x / z,
            y / z
        )
    };
    row("publish → playable (median of 5)", &|r| r.playable, "s");
    row("live-edge delay (median)", &|r| r.delay * 1000.0, "ms");
    row("HTTP segment req/s (wrk -c16)", &|r| r.http.0.rps, "");
    row("HTTP segment p99", &|r| r.http.0.p99_ms, "ms");
    row("HTTP playlist req/s (wrk -c16)", &|r| r.http.1.rps, "");
    row("HTTP playlist p99", &|r| r.http.1.p99_ms, "ms");
    for (i, k) in levels.iter().enumerate() {
        row(
            &format!("{k} publishers: server CPU"),
            &|r| r.scales[i].cpu_percent,
            "%",
        );
        row(
            &format!("{k} publishers: CPU per stream"),
            &|r| r.scales[i].cpu_per_stream_ms_s,
            "ms/s",
        );
        row(
            &format!("{k} publishers: peak RSS"),
            &|r| r.scales[i].peak_rss,
            "MiB",
        );
        let count = |r: &StackResult, f: fn(&Scale) -> usize| f(&r.scales[i]);
        println!(
            "| {k} publishers: fresh playlists | {}/{k} | {}/{k} | {}/{k} | |",
            count(b, |s| s.fresh),
            count(d, |s| s.fresh),
            count(n, |s| s.fresh)
        );
        println!(
            "| {k} publishers: failed publishers | {} | {} | {} | |",
            count(b, |s| s.failed),
            count(d, |s| s.failed),
            count(n, |s| s.failed)
        );
        println!(
            "| {k} publishers: the publishers' own CPU | {:.0} % | {:.0} % | {:.0} % | |",
            b.scales[i].publisher_cpu_percent,
            d.scales[i].publisher_cpu_percent,
            n.scales[i].publisher_cpu_percent
        );
    }
}
