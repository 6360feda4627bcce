//! Low-Latency HLS, measured in one run next to its peers:
//!
//! 1. Glass-to-viewer in headless Chromium through the real Envoy edge (HTTPS, HTTP/2): the
//!    publisher (ffmpeg, real time) draws its wall clock into every frame as a 16-bit code of
//!    centiseconds; the page draws the frame on screen into a canvas every 100 ms and subtracts
//!    the code from its own clock. Same machine, same clock: this counts everything from capture
//!    to the viewer's screen — encoder, RTMP, packaging, edge, player buffer. For Boltstream's
//!    low-latency output (the shipped page), its MPEG-TS output (the same page) and nginx-rtmp
//!    with 2 s fragments (hls.js with its defaults, through the same edge); two sessions each,
//!    interleaved.
//! 2. Publish → first playable: the wall clock when the first part (CMAF) or segment (TS) is
//!    listed, minus the arrival of the first keyframe (the segment's PROGRAM-DATE-TIME).
//! 3. 200 simulated low-latency viewers (blocking reloads and part fetches, keep-alive HTTP/1.1)
//!    on one Envoy edge: origin requests per part, how far behind the live edge each viewer
//!    gets, and the edge's and the origin's CPU.
//!
//! Run through `bench/run ll` (installs and builds everything first).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boltstream_bench::http1::Conn;
use boltstream_bench::nginx::Nginx;
use boltstream_bench::{cpu_seconds, median};
use boltstream_tests::browser::Browser;
use boltstream_tests::envoy::Envoy;
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{wait_for, workspace};

const PLUGIN: &str = r#"{"playlist_max_age": 1}"#;

/// ffmpeg drawing its wall clock into the picture: 16 blocks of 20 × 40 px along the top, bit k
/// of (centiseconds mod 65536) in block k (white = 1). 320 × 180, 30 fps, 2 s GOP, plus a tone.
fn timecode_publisher(url: &str) -> Killed {
    let code = "geq=lum='if(lt(Y,40),if(mod(floor(mod(floor(T*100),65536)/pow(2,floor(X/20))),2),235,16),128)':cb=128:cr=128";
    let graph =
        format!("[0:v]settb=AVTB,setpts=RTCTIME/(TB*1000000),{code},setpts=PTS-STARTPTS[v]");
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re"])
        .args(["-f", "lavfi", "-i", "color=c=gray:size=320x180:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-filter_complex", &graph, "-map", "[v]", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-b:v", "1500k"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Killed)
        .expect("spawn ffmpeg")
}

/// A child process killed when dropped — also when a measurement panics, so no publisher is
/// left running after the bench.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Installs the sampler (once) and returns how many samples it has.
const SAMPLER: &str = r#"
if (!window.g2v) {
  window.g2v = [];
  var c = document.createElement('canvas'); c.width = 320; c.height = 180;
  var x = c.getContext('2d', { willReadFrequently: true });
  setInterval(function () {
    var v = document.getElementById('player');
    if (!v || v.paused || v.readyState < 2) return;
    x.drawImage(v, 0, 0, 320, 180);
    var d = x.getImageData(0, 0, 320, 40).data, n = 0;
    for (var k = 0; k < 16; k++) { if (d[(20 * 320 + k * 20 + 10) * 4] > 128) n |= (1 << k); }
    var now = Math.floor(Date.now() / 10) % 65536;
    window.g2v.push((((now - n) % 65536) + 65536) % 65536 * 10);
  }, 100);
}
return window.g2v.length;
"#;

/// The page nginx-rtmp sites ship: hls.js with its defaults.
const NGINX_PAGE: &str = r#"<!doctype html><html><body>
<video id="player" muted autoplay playsinline width="320" height="180"></video>
<script src="/hls.min.js"></script>
<script>
window.boltstreamErrors = [];
var v = document.getElementById('player');
var hls = new Hls();
hls.on(Hls.Events.ERROR, function (_, d) { window.boltstreamErrors.push(d.details + (d.fatal ? ' (fatal)' : '')); });
hls.loadSource('/live/alice/index.m3u8');
hls.attachMedia(v);
v.play();
</script></body></html>"#;

/// One viewing session: glass-to-viewer samples (ms) and the player's errors.
struct Session {
    samples: Vec<f64>,
    errors: Vec<String>,
}

fn percentile(mut xs: Vec<f64>, p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * p).round() as usize]
}

/// Waits until `origin` lists a segment of alice's stream: hls.js with its defaults gives up on a
/// playlist that is not there yet, so every page is opened only then.
fn wait_listed(origin: SocketAddr) {
    wait_for(Duration::from_secs(30), || {
        get(origin, "/live/alice/index.m3u8")
            .text()
            .contains("#EXTINF")
            .then_some(())
    })
    .expect("the stream is listed within 30 s");
}

/// Plays `page` in a fresh Chromium, waits until it has played 15 s, then samples for `seconds`.
fn glass_to_viewer(page: &str, seconds: u64) -> Session {
    let browser = Browser::start_with(&["--ignore-certificate-errors"]);
    browser.goto(page);
    let playing = wait_for(Duration::from_secs(60), || {
        let t = browser
            .eval("var v = document.getElementById('player'); return v ? v.currentTime : 0")
            .as_f64()
            .unwrap_or(0.0);
        (t > 15.0).then_some(())
    });
    assert!(
        playing.is_some(),
        "{page} never played 15 s: {}",
        browser.eval("return [window.boltstreamErrors, document.getElementById('player') && document.getElementById('player').currentTime, performance.getEntriesByType('resource').map(function (e) { return e.name + ' ' + e.responseStatus; }).slice(-8)]")
    );
    browser.eval(SAMPLER);
    browser.eval("window.g2v.length = 0; window.boltstreamErrors = []; return 0");
    std::thread::sleep(Duration::from_secs(seconds));
    let samples: Vec<f64> = browser
        .eval("return window.g2v")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    let errors = browser
        .eval("return window.boltstreamErrors || []")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap_or("").to_string())
        .collect();
    Session { samples, errors }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Publish → first playable, `runs` times: ms from the first keyframe's arrival (the first
/// PROGRAM-DATE-TIME) until the playlist lists a part (`cmaf`) or a segment (`ts`).
fn first_playable(format: &str, runs: usize) -> Vec<f64> {
    let server = Server::start_logging(&["--hls-format", format], "warn");
    let key = server.add_user("alice");
    let mut out = Vec::new();
    for _ in 0..runs {
        let publisher = timecode_publisher(&server.publish_url(&key));
        let seen = wait_for(Duration::from_secs(20), || {
            let r = get(server.http, "/live/alice/index.m3u8");
            let text = r.text();
            let playable = if format == "cmaf" {
                text.contains("#EXT-X-PART:") && !text.contains("#EXT-X-ENDLIST")
            } else {
                text.contains("#EXTINF") && !text.contains("#EXT-X-ENDLIST")
            };
            (r.status == 200 && playable).then(|| (now_ms(), text))
        });
        let (at, text) = seen.expect("playable within 20 s");
        // The newest publish's first segment: after the last discontinuity.
        let start = text
            .rsplit("#EXT-X-DISCONTINUITY")
            .next()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
            })
            .and_then(boltstream_tests::program_date_time_ms)
            .expect("a PROGRAM-DATE-TIME");
        out.push((at - start) as f64);
        drop(publisher);
        // Let the publish end (ENDLIST) before the next one.
        wait_for(Duration::from_secs(15), || {
            get(server.http, "/live/alice/index.m3u8")
                .text()
                .contains("#EXT-X-ENDLIST")
                .then_some(())
        });
    }
    out
}

/// One simulated low-latency viewer's findings.
#[derive(Default)]
struct ViewerLog {
    /// Every part it had after its first round, with the wall ms it had it.
    parts: Vec<(String, i64)>,
    errors: usize,
}

/// The parts of a low-latency playlist: (media sequence number, index in its segment, URI).
fn listed_parts(text: &str) -> Vec<(u64, usize, String)> {
    let mut msn = 0u64;
    let mut index = 0usize;
    let mut parts = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.trim().parse().unwrap_or(0);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let uri = (attrs.split(','))
                .find_map(|kv| kv.strip_prefix("URI="))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default();
            parts.push((msn, index, uri));
            index += 1;
        } else if line.starts_with("#EXTINF") {
            msn += 1;
            index = 0;
        }
    }
    parts
}

/// A viewer doing what hls.js does in low-latency mode, without a screen: a blocking reload for
/// the next part, every listed part it has not had, then the preload-hinted part (held by the
/// server until it is complete, so it arrives as soon as it exists), until `until`. Counts its
/// requests in `requests`.
fn viewer(edge: SocketAddr, until: Instant, requests: &AtomicU64) -> ViewerLog {
    let mut log = ViewerLog::default();
    let mut conn = Conn::new(edge);
    let mut get = |target: &str| {
        requests.fetch_add(1, Ordering::Relaxed);
        conn.get(target)
    };
    let playlist = "/live/alice/index.m3u8";
    let Ok((200, body)) = get(playlist) else {
        log.errors += 1;
        return log;
    };
    let Some((mut msn, mut part, _)) = listed_parts(&String::from_utf8_lossy(&body)).pop() else {
        log.errors += 1;
        return log;
    };
    part += 1;
    let mut first_round = true;
    // Parts had, with when (the hinted one is had before it is listed).
    let mut had: HashMap<String, i64> = HashMap::new();
    while Instant::now() < until {
        let Ok((status, body)) = get(&format!("{playlist}?_HLS_msn={msn}&_HLS_part={part}")) else {
            log.errors += 1;
            continue;
        };
        if status != 200 {
            log.errors += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        // Asking for the part after a complete segment's last is asking for the next segment's
        // part 0: the server maps it, so the viewer need not know where segments end.
        let text = String::from_utf8_lossy(&body);
        for (m, i, uri) in listed_parts(&text) {
            if (m, i) < (msn, part) {
                continue;
            }
            let at = match had.get(&uri) {
                Some(at) => *at,
                None => match get(&format!("/live/alice/{uri}")) {
                    Ok((200, _)) => now_ms(),
                    _ => {
                        log.errors += 1;
                        continue;
                    }
                },
            };
            had.insert(uri.clone(), at);
            if !first_round {
                log.parts.push((uri, at));
            }
            (msn, part) = (m, i + 1);
        }
        first_round = false;
        let hint = (text.lines())
            .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:"))
            .and_then(|a| a.split("URI=\"").nth(1))
            .and_then(|u| u.split('"').next());
        if let Some(hint) = hint {
            if let Ok((200, _)) = get(&format!("/live/alice/{hint}")) {
                had.insert(hint.to_string(), now_ms());
            }
        }
    }
    log
}

fn origin_live_requests(server: &Server) -> u64 {
    let text = get(server.internal, "/internal/metrics").text();
    text.lines()
        .filter(|l| {
            l.starts_with("boltstream_http_requests_total{route=\"live_playlist\"")
                || l.starts_with("boltstream_http_requests_total{route=\"live_segment\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn many_viewers(count: usize, seconds: u64) {
    let server = Server::start_logging(&["--hls-format", "cmaf", "--workers", "1"], "warn");
    let key = server.add_user("alice");
    let envoy = Envoy::start(server.http, PLUGIN);
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    wait_for(Duration::from_secs(30), || {
        get(server.http, "/live/alice/index.m3u8")
            .text()
            .contains("#EXT-X-PART:")
            .then_some(())
    })
    .expect("the stream is playable");
    std::thread::sleep(Duration::from_secs(3));
    // Viewers join over the first two seconds; origin requests, CPU and parts are counted from
    // the third, when every viewer is in, until the last viewer stops.
    let until = Instant::now() + Duration::from_secs(seconds + 3);
    let logs: Arc<Mutex<Vec<ViewerLog>>> = Arc::default();
    // The live edge: a viewer at the origin itself, whose held requests return the moment each
    // part exists there. A viewer's lag is when it had a part minus when this one did.
    let origin = server.http;
    let reference_requests: Arc<AtomicU64> = Arc::default();
    let counter = Arc::clone(&reference_requests);
    let reference = std::thread::spawn(move || viewer(origin, until, &counter));
    let threads: Vec<_> = (0..count)
        .map(|i| {
            let logs = Arc::clone(&logs);
            let edge = envoy.addr;
            std::thread::spawn(move || {
                // Arrivals spread over the first two seconds.
                std::thread::sleep(Duration::from_millis((i as u64 * 2000) / count as u64));
                let log = viewer(edge, until, &AtomicU64::new(0));
                logs.lock().unwrap().push(log);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let (reference0, requests0, edge0, origin0) = (
        reference_requests.load(Ordering::Relaxed),
        origin_live_requests(&server),
        cpu_seconds(envoy.pid()),
        cpu_seconds(server.pid()),
    );
    let (started, counted_from_ms) = (Instant::now(), now_ms());
    for t in threads {
        let _ = t.join();
    }
    let reference = reference.join().expect("the reference viewer");
    let elapsed = started.elapsed().as_secs_f64();
    // The reference's requests went to the origin directly; they are not the edge's.
    let requests = origin_live_requests(&server)
        - requests0
        - (reference_requests.load(Ordering::Relaxed) - reference0);
    let live_at: HashMap<&str, i64> = (reference.parts.iter())
        .map(|(uri, at)| (uri.as_str(), *at))
        .collect();
    let edge_cpu = (cpu_seconds(envoy.pid()) - edge0) / elapsed * 100.0;
    let origin_cpu = (cpu_seconds(server.pid()) - origin0) / elapsed * 100.0;
    let logs = logs.lock().unwrap();
    // Parts that appeared after counting began: the ones the counted requests were for.
    let all_parts: HashSet<&str> = (reference.parts.iter())
        .filter(|(_, at)| *at > counted_from_ms)
        .map(|(uri, _)| uri.as_str())
        .collect();
    // Lags of the parts that appeared while counting: every viewer had joined by then.
    let lags = |l: &ViewerLog| -> Vec<f64> {
        (l.parts.iter())
            .filter_map(|(uri, at)| {
                let live = *live_at.get(uri.as_str())?;
                (live > counted_from_ms).then_some((at - live) as f64)
            })
            .collect()
    };
    let worst: Vec<f64> = (logs.iter())
        .map(|l| lags(l).into_iter().fold(f64::NAN, f64::max))
        .collect();
    let all_lags: Vec<f64> = logs.iter().flat_map(lags).collect();
    let errors: usize = logs.iter().map(|l| l.errors).sum();
    let within = worst.iter().filter(|w| **w < 1000.0).count();
    println!(
        "\n## {count} simulated low-latency viewers on one Envoy edge ({seconds} s, `bench/run ll`)\n"
    );
    println!("| measure | value |\n|---|---|");
    println!("| parts published while counted | {} |", all_parts.len());
    println!(
        "| origin requests (playlist + media) | {requests} ({:.2} per part) |",
        requests as f64 / all_parts.len().max(1) as f64
    );
    println!(
        "| behind the origin when a part arrived: median / p99 / worst | {:.0} / {:.0} / {:.0} ms |",
        median(all_lags.clone()),
        percentile(all_lags.clone(), 0.99),
        all_lags.iter().copied().fold(f64::NAN, f64::max)
    );
    println!("| viewers always within 1 s of the live edge | {within} of {count} |");
    println!("| viewer request errors | {errors} |");
    println!("| edge CPU (Envoy, 1 worker) | {edge_cpu:.1} % of a core |");
    println!("| origin CPU (Boltstream, 1 worker, packaging the stream too) | {origin_cpu:.1} % of a core |");
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let viewers: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    // A third argument runs one part only: `glass`, `first` or `viewers`.
    let only = std::env::args().nth(3);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);

    if run("glass") {
        glass(seconds, 2);
    }
    if run("first") {
        first(5);
    }
    if run("viewers") {
        many_viewers(viewers, seconds);
    }
}

/// The stacks compared, each watched in a fresh browser.
const STACKS: [&str; 3] = [
    "Boltstream, low-latency (CMAF)",
    "Boltstream, plain HLS (MPEG-TS)",
    "nginx-rtmp, 2 s fragments",
];

/// One session of `STACKS[which]`: its own server, edge, publisher and browser.
fn session(which: usize, seconds: u64) -> Session {
    if which < 2 {
        let format = ["cmaf", "ts"][which];
        let server = Server::start_logging(&["--hls-format", format], "warn");
        let key = server.add_user("alice");
        let envoy = Envoy::start(server.http, PLUGIN);
        let publisher = timecode_publisher(&server.publish_url(&key));
        wait_listed(server.http);
        let page = format!("https://localhost:{}/alice", envoy.tls.port());
        let result = glass_to_viewer(&page, seconds);
        drop(publisher);
        return result;
    }
    let mut nginx = Nginx::start(2);
    std::fs::write(Nginx::html_dir().join("index.html"), NGINX_PAGE).unwrap();
    std::fs::copy(
        workspace().join("ingest/assets/hls.min.js"),
        Nginx::html_dir().join("hls.min.js"),
    )
    .unwrap();
    let key = nginx.add_user("alice");
    let envoy = Envoy::start(nginx.http, PLUGIN);
    let publisher = timecode_publisher(&format!("rtmp://{}/app/{key}", nginx.rtmp));
    wait_listed(nginx.http);
    let page = format!("https://localhost:{}/index.html", envoy.tls.port());
    let result = glass_to_viewer(&page, seconds);
    drop(publisher);
    result
}

/// `sessions` rounds, each watching every stack in turn: where a plain-HLS player starts
/// relative to segment boundaries sets its latency for the whole session, so one session per
/// stack would be one draw.
fn glass(seconds: u64, sessions: usize) {
    let mut results: Vec<Vec<Session>> = (0..STACKS.len()).map(|_| Vec::new()).collect();
    for _ in 0..sessions {
        for (which, found) in results.iter_mut().enumerate() {
            found.push(session(which, seconds));
        }
    }
    println!(
        "\n## Glass to viewer: Chromium through Envoy (HTTPS, HTTP/2), 2 s GOP, {sessions} sessions × {seconds} s each (`bench/run ll`)\n"
    );
    println!(
        "| stack | median | p95 | each session's median | samples | player errors |\n|---|---|---|---|---|---|"
    );
    let pooled = |found: &[Session]| -> Vec<f64> {
        found
            .iter()
            .flat_map(|s| s.samples.iter().copied())
            .collect()
    };
    let base = median(pooled(&results[0]));
    for (name, found) in STACKS.iter().zip(&results) {
        let all = pooled(found);
        let errors: Vec<String> = found.iter().flat_map(|s| s.errors.clone()).collect();
        println!(
            "| {name} | {:.0} ms ({:.2}×) | {:.0} ms | {} | {} | {} |",
            median(all.clone()),
            median(all.clone()) / base,
            percentile(all.clone(), 0.95),
            (found.iter())
                .map(|s| format!("{:.0} ms", median(s.samples.clone())))
                .collect::<Vec<_>>()
                .join(", "),
            all.len(),
            if errors.is_empty() {
                "none".to_string()
            } else {
                errors.join(", ")
            }
        );
    }
}

fn first(runs: usize) {
    let ll = first_playable("cmaf", runs);
    let ts = first_playable("ts", runs);
    println!(
        "\n## Publish → first playable, after the first keyframe arrives ({runs} publishes each)\n"
    );
    println!("| output | median | each |\n|---|---|---|");
    for (name, xs) in [("first part (CMAF)", &ll), ("first segment (MPEG-TS)", &ts)] {
        println!(
            "| {name} | {:.0} ms | {} |",
            median(xs.clone()),
            xs.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
