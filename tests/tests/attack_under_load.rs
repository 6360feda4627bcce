//! Under load: while ten real ffmpeg publishers stream, the attacks of flaws
//! 1–4 run at once for a bounded time — line-rate publishers with frozen and crawling timestamps,
//! RTMP peers that never read, slow request bodies and slow readers, parallel password guessing
//! and a sign-up flood. Every legitimate playlist must stay fresh (its newest segment at most
//! twice the target old), a legitimate log-in and a new legitimate publish must succeed, the
//! server's memory must stay under a stated bound, and no legitimate stream may lose anything.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use boltstream_tests::http::{get, log_in_from, set_cookie_value, sign_up_from};
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::rtmp::{flv, RawPublisher, RawRtmp};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

/// How long the attacks run.
const ATTACK: Duration = Duration::from_secs(25);
/// The stated memory bound: the server's baseline (~15 MB), ten 2.5 Mb/s streams, and the open
/// segments of the hostile publishers (8 Mb/s × 30 s = 30 MB each at most, written while made).
const RSS_BOUND_KIB: u64 = 300 * 1024;
/// Twice the 2 s target.
const FRESH_MS: i64 = 4_000;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Milliseconds since the newest listed segment was complete (its start + its duration), from
/// the playlist's program date-times.
fn staleness_ms(playlist: &str, now_ms: i64) -> Option<i64> {
    let mut start = None;
    let mut last = None;
    for line in playlist.lines() {
        if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            start = boltstream_tests::program_date_time_ms(date);
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = d.trim_end_matches(',').parse().ok()?;
            let begun = start?;
            last = Some(begun + (secs * 1000.0) as i64);
            start = Some(begun + (secs * 1000.0) as i64);
        }
    }
    last.map(|end| now_ms - end)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Posts the log-in form from `source`, with a device cookie if given; returns the status and the
/// device cookie the server set, if any.
fn log_in(
    source: &str,
    server: &Server,
    user: &str,
    password: &str,
    device: Option<&str>,
) -> Option<(u16, Option<String>)> {
    let cookie = device.map(|d| format!("bs_device={d}"));
    let ip = source.parse().ok()?;
    let r = log_in_from(ip, server.http, user, password, cookie.as_deref(), &[]).ok()?;
    Some((r.status, set_cookie_value(&r, "bs_device")))
}

fn connect_from(
    source: &str,
    to: std::net::SocketAddr,
    rcvbuf: Option<usize>,
) -> Option<std::net::TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).ok()?;
    }
    let from: std::net::SocketAddr = format!("{source}:0").parse().ok()?;
    socket.bind(&from.into()).ok()?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(2))
        .ok()?;
    Some(socket.into())
}

/// A hostile publisher: 2.5 s of ordinary media, then line-rate frames with a frozen (or, when
/// `crawl`, a crawling) timestamp, again each time it is cut off, until `stop`.
fn hostile_publisher(server: &Server, key: &str, crawl: bool, stop: &AtomicBool) -> usize {
    let mut cut_off = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut p) = RawPublisher::start(server.rtmp, "app", key) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let _ = p.video(&flv::avc_config(), 0);
        let _ = p.audio(&flv::aac_config(), 0);
        for ms in (0..2_500u32).step_by(33) {
            let _ = p.video(&flv::video(ms % 2_000 < 33, 2_000), ms);
            let _ = p.audio(&flv::audio(), ms);
        }
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let ms = if crawl { 2_500 + i / 8 } else { 2_500 };
            let sent = if i % 2 == 0 {
                p.video(&flv::video(false, 8_000), ms)
            } else {
                p.audio(&flv::audio(), ms)
            };
            if sent.is_err() {
                cut_off += 1;
                break;
            }
            i += 1;
        }
    }
    cut_off
}

#[test]
fn attacks_of_flaws_1_to_4_at_once_leave_ten_real_streams_untouched() {
    let server = Server::start(&[
        "--hls-max-bitrate-mbps",
        "8",
        "--handshake-timeout",
        "3",
        "--http-body-timeout",
        "3",
        "--http-write-timeout",
        "3",
    ]);
    let mut publishers = Vec::new();
    for i in 0..10 {
        let key = server.add_user(&format!("pub{i}"));
        publishers.push(Publisher::start(
            Clip::AudioVideo,
            &server.publish_url(&key),
            true,
        ));
        std::thread::sleep(Duration::from_millis(150));
    }
    let streams: Vec<String> = (0..10).map(|i| format!("pub{i}")).collect();
    for user in &streams {
        let ready = wait_for(Duration::from_secs(20), || {
            let r = get(server.http, &format!("/live/{user}/index.m3u8"));
            (r.status == 200).then_some(())
        });
        assert!(ready.is_some(), "{user} never played: {}", server.log());
    }
    let owner_key = server.add_user("owner");
    let pw = server.cli_with_stdin(&["user", "password", "owner"], "correct horse battery\n");
    assert!(pw.status.success());
    // The owner has logged in before, from home: their browser holds a device cookie.
    let (status, device) = log_in("127.0.0.1", &server, "owner", "correct+horse+battery", None)
        .expect("the log-in form answers");
    assert_eq!(status, 303);
    let device = device.expect("a device cookie");
    let evil: Vec<String> = (0..3)
        .map(|i| server.add_user(&format!("evil{i}")))
        .collect();
    let before_log = server.log().len();

    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (worst_staleness, peak_rss, login_ok, publish_ok, hostile_cuts) = std::thread::scope(|s| {
        let stop = &stop;
        let server = &server;
        // Flaw 1: three line-rate publishers with frozen and crawling timestamps.
        let hostile: Vec<_> = evil
            .iter()
            .enumerate()
            .map(|(i, key)| s.spawn(move || hostile_publisher(server, key, i == 1, stop)))
            .collect();
        // Flaw 2: RTMP peers that send pings and never read.
        s.spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if held.len() < 20 {
                    let mut raw = RawRtmp::connect_small_window(server.rtmp);
                    raw.handshake();
                    raw.flood_pings_until_blocked(Duration::from_millis(200), 16 << 20);
                    held.push(raw);
                } else {
                    held.remove(0);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Flaw 3: slow request bodies and slow readers.
        s.spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(mut c) = connect_from("127.0.0.3", server.http, None) {
                    let _ = c.write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nu");
                    held.push(c);
                }
                if let Some(mut c) = connect_from("127.0.0.3", server.http, Some(4096)) {
                    let _ = c.write_all(&b"GET /static/hls.min.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20));
                    held.push(c);
                }
                if held.len() > 300 {
                    held.drain(..100);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        // Flaw 4: parallel password guessing from several addresses, and a sign-up flood.
        for t in 0..8 {
            s.spawn(move || {
                let ip = format!("127.0.2.{}", t + 1);
                while !stop.load(Ordering::Relaxed) {
                    log_in(&ip, server, "owner", "wrong", None);
                }
            });
        }
        s.spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let ip: std::net::IpAddr = format!("127.0.3.{}", n % 200 + 1).parse().unwrap();
                let name = format!("flood{n}");
                let _ = sign_up_from(ip, server.http, &name, "a+long+password");
                n += 1;
            }
        });

        // Meanwhile, as a viewer, an owner and a new streamer would.
        let mut worst = 0i64;
        let mut peak = 0u64;
        let mut login_ok = 0;
        let mut publish_ok = false;
        let mut newcomer: Option<Publisher> = None;
        while started.elapsed() < ATTACK {
            for user in &streams {
                let r = get(server.http, &format!("/live/{user}/index.m3u8"));
                assert_eq!(r.status, 200, "{user}'s playlist went away");
                let stale = staleness_ms(&r.text(), now_ms()).expect("dated segments");
                worst = worst.max(stale);
            }
            peak = peak.max(rss_kib(server.pid()));
            // The owner logs in from an address the account has never seen (say, a phone),
            // with the browser that logged in before, while guesses for that account pour in
            // from eight other addresses.
            if started.elapsed() > Duration::from_secs(5) && login_ok == 0 {
                let answer = log_in(
                    "127.0.0.9",
                    server,
                    "owner",
                    "correct+horse+battery",
                    Some(&device),
                );
                if answer.is_some_and(|(status, _)| status == 303) {
                    login_ok += 1;
                }
            }
            if started.elapsed() > Duration::from_secs(8) && newcomer.is_none() {
                newcomer = Some(Publisher::start(
                    Clip::Short,
                    &server.publish_url(&owner_key),
                    false,
                ));
            }
            if newcomer.is_some() && !publish_ok {
                publish_ok = server.live_users().contains(&"owner".to_string());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        stop.store(true, Ordering::Relaxed);
        let cuts: usize = hostile.into_iter().map(|h| h.join().unwrap()).sum();
        (worst, peak, login_ok, publish_ok, cuts)
    });

    let log = server.log();
    let during = &log[before_log..];
    eprintln!(
        "under attack for {:?}: worst playlist staleness {worst_staleness} ms, peak RSS {peak_rss} KiB, \
         hostile publishers cut off {hostile_cuts} times, owner log-ins {login_ok}, newcomer live {publish_ok}",
        started.elapsed()
    );
    assert!(
        worst_staleness <= FRESH_MS,
        "a legitimate playlist went stale: {worst_staleness} ms"
    );
    assert!(
        peak_rss <= RSS_BOUND_KIB,
        "server RSS reached {peak_rss} KiB"
    );
    assert!(
        login_ok >= 1,
        "the owner could not log in during the attack"
    );
    assert!(
        publish_ok,
        "a new legitimate publish did not go live during the attack"
    );
    assert!(hostile_cuts >= 3, "the hostile publishers were not cut off");
    // Nothing lost: every legitimate publisher is still streaming, and none of its playlists shows
    // a gap, a skipped write or a lost segment.
    for (i, p) in publishers.iter_mut().enumerate() {
        assert!(p.running(), "pub{i} was dropped: {}", p.stderr());
    }
    for user in &streams {
        let text = get(server.http, &format!("/live/{user}/index.m3u8")).text();
        assert!(!text.contains("#EXT-X-DISCONTINUITY"), "{user}: {text}");
    }
    for needle in ["was lost", "write was skipped", "publish ended user=pub"] {
        assert!(!during.contains(needle), "{needle}: {during}");
    }
    assert!(
        during.contains("limit exceeded"),
        "the hostile publishers were ended for their bounds"
    );
}
