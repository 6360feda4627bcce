//! Low-Latency HLS in a real browser for a minute: hls.js in low-latency mode through the
//! shipped Envoy over HTTPS and HTTP/2. In a test binary of its own, so it never runs beside the
//! other browser tests' encoders and browsers on a two-core machine: it asserts that the picture
//! never stands still, which two more 720p encoders on the same cores can make untrue.

use std::time::Duration;

use boltstream_tests::browser::Browser;
use boltstream_tests::envoy::Envoy;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

/// The shipped player in low-latency mode, through the real Envoy edge over HTTPS with HTTP/2
/// (the tests' throwaway certificate), for 60 s of a live CMAF stream: it fetches parts with
/// blocking playlist reloads, stalls at most once, has no fatal error, and shows how far behind live it
/// plays. The readout is printed, not asserted as a speed (the benchmark measures it).
#[test]
fn low_latency_plays_through_envoy_over_https_and_http2_for_a_minute() {
    // The minute measures playback alone: what earlier tests left for the kernel to write back
    // is flushed first, and this channel keeps no recording (whose files would reach the disk
    // during the minute; recordings have tests of their own).
    let _ = std::process::Command::new("sync").status();
    let server = Server::start(&["--hls-format", "cmaf"]);
    let key = server.add_user("alice");
    let out = server.cli(&["recordings", "keep", "alice", "off"]);
    assert!(out.status.success());
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let browser = Browser::start_with(&["--ignore-certificate-errors"]);
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    browser.goto(&format!("https://localhost:{}/alice", envoy.tls.port()));
    let current_time = || {
        browser
            .eval("var v = document.getElementById('player'); return v ? v.currentTime : 0")
            .as_f64()
            .unwrap_or(0.0)
    };
    let started = wait_for(Duration::from_secs(40), || {
        let t = current_time();
        (t > 1.0).then_some(t)
    });
    let errors = || browser.eval("return window.boltstreamErrors || []");
    assert!(started.is_some(), "never played; errors: {}", errors());
    assert_eq!(
        browser.eval("return window.boltstreamHls && window.boltstreamHls.lowLatencyMode"),
        true
    );
    // A minute of playing, sampled each second.
    let (t0, wall0) = (current_time(), std::time::Instant::now());
    let mut behind = Vec::new();
    let mut last = t0;
    let mut longest_still = Duration::ZERO;
    let mut still_since = std::time::Instant::now();
    while wall0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        let t = current_time();
        if t > last {
            still_since = std::time::Instant::now();
        } else {
            longest_still = longest_still.max(still_since.elapsed());
        }
        last = t;
        if let Some(ms) = browser
            .eval("var l = document.getElementById('latency'); return Number(l.getAttribute('data-ms')) || null")
            .as_f64()
        {
            behind.push(ms);
        }
    }
    let played = last - t0;
    let errors = errors();
    let list: Vec<String> = (errors.as_array().unwrap().iter())
        .map(|e| e.as_str().unwrap_or("").to_string())
        .collect();
    assert!(!list.iter().any(|e| e.contains("fatal")), "{list:?}");
    // One stall hls.js recovers from (the picture still never stands still for 2 s, below) is
    // what a shared two-core machine gives now and then — a CI run saw exactly one in a minute,
    // and the same build passed alone twice; more than one is a player falling behind.
    let stalls = (list.iter())
        .filter(|e| e.contains("Stall") || e.contains("stall"))
        .count();
    assert!(stalls <= 1, "the player stalled {stalls} times: {list:?}");
    assert!(
        longest_still < Duration::from_secs(2),
        "the picture stood still for {longest_still:?}"
    );
    assert!(played > 55.0, "played {played:.1} s of 60");
    // It fetched parts (`<segment>.<part>.m4s`) with blocking reloads, over HTTP/2.
    let fetched = browser.eval(
        "return performance.getEntriesByType('resource').map(function (e) { return [e.name, e.nextHopProtocol]; })",
    );
    let fetched: Vec<(String, String)> = (fetched.as_array().unwrap().iter())
        .map(|e| {
            (
                e[0].as_str().unwrap().to_string(),
                e[1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let parts = fetched.iter().filter(|(url, _)| {
        url.rsplit('/')
            .next()
            .is_some_and(|f| f.ends_with(".m4s") && f.matches('.').count() == 2)
    });
    assert!(parts.count() > 20, "no parts fetched: {fetched:?}");
    assert!(
        fetched.iter().any(|(url, _)| url.contains("_HLS_msn=")),
        "no blocking reload: {fetched:?}"
    );
    let live: Vec<_> = fetched
        .iter()
        .filter(|(url, _)| url.contains("/live/"))
        .collect();
    assert!(
        live.iter().all(|(_, protocol)| protocol == "h2"),
        "{live:?}"
    );
    behind.sort_by(f64::total_cmp);
    let median = behind.get(behind.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!(
        "low latency through Envoy (HTTPS, h2): played {played:.1} s in 60 s, behind live median {median:.0} ms (of {} samples), errors {list:?}",
        behind.len()
    );
    assert!(!behind.is_empty(), "no latency readout");
    browser.screenshot(&out_dir().join("screenshots/channel-low-latency.png"));
    drop(envoy);
}
