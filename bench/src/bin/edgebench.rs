//! Edge filter cost in a real Envoy: no wasm filter, a do-nothing wasm filter (the floor of the
//! proxy-wasm call), and Boltstream's filter, on a segment and a playlist, in one run.
//!
//! With a third argument `private`: a public and a private channel side by side — the public
//! playlist, the private playlist (whose playback token the filter verifies) and a cached
//! encrypted segment (whose cookie the filter strips), through the do-nothing filter and ours.
//!
//! Run through `bench/run edge` / `bench/run private` (builds everything first).

use std::time::Duration;

use boltstream_bench::{cpu_seconds, median, wrk_with};
use boltstream_tests::envoy::Envoy;
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{wait_for, workspace};

/// Removes every `- name: boltstream` filter entry (listener and upstream) from the YAML.
fn without_wasm(yaml: String) -> String {
    let mut out = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if indent > level || (indent == level && !line.trim_start().starts_with("- ")) {
                continue;
            }
            skipping = None;
        }
        if line.trim_start() == "- name: boltstream" {
            skipping = Some(indent);
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    if std::env::args().nth(3).as_deref() == Some("private") {
        return private(seconds, rounds);
    }
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playlist = wait_for(Duration::from_secs(15), || {
        Some(get(server.http, "/live/alice/index.m3u8")).filter(|r| r.status == 200)
    })
    .expect("live");
    let segment = playlist
        .text()
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    let noop = workspace().join("target/noop/wasm32-wasip1/release/boltstream_filter.wasm");
    let readpath = workspace().join("target/readpath/wasm32-wasip1/release/boltstream_filter.wasm");
    let ours = boltstream_tests::wasm_host::wasm_path();
    assert!(
        noop.exists() && readpath.exists() && ours.exists(),
        "build both filters first (bench/run does)"
    );

    let variants = [
        "no wasm",
        "do-nothing wasm",
        "reads :path only",
        "boltstream filter",
    ];
    let envoys: Vec<Envoy> =
        variants
            .iter()
            .map(|variant| {
                let (noop, readpath, ours) = (noop.clone(), readpath.clone(), ours.clone());
                Envoy::start_with(server.http, r#"{"playlist_max_age": 1}"#, move |yaml| {
                    match *variant {
                        "no wasm" => without_wasm(yaml),
                        "do-nothing wasm" => {
                            yaml.replace(&ours.display().to_string(), &noop.display().to_string())
                        }
                        "reads :path only" => yaml
                            .replace(&ours.display().to_string(), &readpath.display().to_string()),
                        _ => yaml,
                    }
                })
            })
            .collect();
    println!("Median of {rounds} interleaved rounds of `wrk -t1 -c16 -d{seconds}s` per cell; Envoy `--concurrency 1` with the in-memory cache, so both objects are edge cache hits.");
    println!();
    println!("| variant | object | req/s | p99 ms | Envoy CPU µs/request | added CPU µs/request vs no wasm |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for object in [
        format!("/live/alice/{segment}"),
        "/live/alice/index.m3u8".to_string(),
    ] {
        report_object(&envoys, &variants, &object, &[], seconds, rounds);
    }
}

/// The private-stream figures: alice public, bob private, both live on one ingest.
fn private(seconds: u64, rounds: usize) {
    let server = Server::start(&[]);
    let alice = server.add_user("alice");
    let bob = server.add_user("bob");
    let cli = |args: &[&str]| {
        let out = server.cli(args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["access", "set", "bob", "private"]);
    let secrets = server.filter_secrets();
    let cookie = format!("Cookie: {}", server.playback_cookie("bob", 3600));
    let _p1 = Publisher::start(Clip::AudioVideo, &server.publish_url(&alice), true);
    let _p2 = Publisher::start(Clip::AudioVideo, &server.publish_url(&bob), true);
    let header = cookie.trim_start_matches("Cookie: ").to_string();
    let playlist = wait_for(Duration::from_secs(15), || {
        let r = boltstream_tests::http::request(
            server.http,
            "GET",
            b"/private/bob/index.m3u8",
            &[("cookie", &header)],
            b"",
        )
        .ok()?;
        (r.status == 200).then_some(r)
    })
    .expect("bob live and private");
    let segment = (playlist.text().lines())
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    assert!(wait_for(Duration::from_secs(15), || {
        Some(get(server.http, "/live/alice/index.m3u8")).filter(|r| r.status == 200)
    })
    .is_some());
    let noop = workspace().join("target/noop/wasm32-wasip1/release/boltstream_filter.wasm");
    let ours = boltstream_tests::wasm_host::wasm_path();
    assert!(noop.exists() && ours.exists(), "build both filters first");
    let plugin = format!(r#"{{"playlist_max_age": 1, "playback_secrets": {secrets}}}"#);
    let before = workspace().join("target/baseline/wasm32-wasip1/release/boltstream_filter.wasm");
    assert!(
        before.exists(),
        "build the baseline filter first (bench/run private does)"
    );
    let variants = [
        "no wasm",
        "do-nothing wasm",
        "filter before private streams",
        "boltstream filter",
    ];
    let envoys: Vec<Envoy> = (variants.iter())
        .map(|variant| {
            let (noop, ours, before) = (noop.clone(), ours.clone(), before.clone());
            // The filter from before private streams knows no `playback_secrets`.
            let plugin = if *variant == "filter before private streams" {
                r#"{"playlist_max_age": 1}"#.to_string()
            } else {
                plugin.clone()
            };
            Envoy::start_with(server.http, &plugin, move |yaml| match *variant {
                "no wasm" => without_wasm(yaml),
                "do-nothing wasm" => {
                    yaml.replace(&ours.display().to_string(), &noop.display().to_string())
                }
                "filter before private streams" => {
                    yaml.replace(&ours.display().to_string(), &before.display().to_string())
                }
                _ => yaml,
            })
        })
        .collect();
    println!("Median of {rounds} interleaved rounds of `wrk -t1 -c16 -d{seconds}s` per cell; Envoy `--concurrency 1` with the in-memory cache, so every object is an edge cache hit. Private requests carry a valid playback-token cookie, as a player's do.");
    println!();
    println!("| variant | object | req/s | p99 ms | Envoy CPU µs/request | added CPU µs/request vs no wasm |");
    println!("| --- | --- | --- | --- | --- | --- |");
    // The segment first, while the origin still has it (each Envoy fetches it once, then serves
    // it from its cache).
    report_object(
        &envoys,
        &variants,
        &format!("/private/bob/{segment}"),
        &[&cookie],
        seconds,
        rounds,
    );
    report_object(
        &envoys,
        &variants,
        "/live/alice/index.m3u8",
        &[],
        seconds,
        rounds,
    );
    report_object(
        &envoys,
        &variants,
        "/private/bob/index.m3u8",
        &[&cookie],
        seconds,
        rounds,
    );
}

/// One object's rows: each variant's median over interleaved rounds.
fn report_object(
    envoys: &[Envoy],
    variants: &[&str],
    object: &str,
    headers: &[&str],
    seconds: u64,
    rounds: usize,
) {
    let kind = match (object.ends_with(".ts"), object.starts_with("/private/")) {
        (true, false) => "segment",
        (true, true) => "encrypted segment (private)",
        (false, false) => "playlist",
        (false, true) => "playlist (private, token checked)",
    };
    let mut samples: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); variants.len()];
    for envoy in envoys {
        let _ = wrk_with(
            &format!("http://{}{object}", envoy.addr),
            4,
            Duration::from_secs(1),
            headers,
        ); // warm cache and VM
    }
    for round in 0..rounds {
        // Each round starts with a different variant, so no variant always runs first or
        // last (a fixed order showed position effects on this shared machine).
        for k in 0..envoys.len() {
            let i = (round + k) % envoys.len();
            let envoy = &envoys[i];
            let before = cpu_seconds(envoy.pid());
            let r = wrk_with(
                &format!("http://{}{object}", envoy.addr),
                16,
                Duration::from_secs(seconds),
                headers,
            );
            let cpu = cpu_seconds(envoy.pid()) - before;
            assert_eq!(r.errors, 0.0, "{} answered errors", variants[i]);
            samples[i].push((r.rps, r.p99_ms, cpu / r.requests.max(1.0) * 1e6));
        }
    }
    let med = |i: usize, f: fn(&(f64, f64, f64)) -> f64| median(samples[i].iter().map(f).collect());
    let base = med(0, |s| s.2);
    for (i, variant) in variants.iter().enumerate() {
        let cpu = med(i, |s| s.2);
        println!(
            "| {variant} | {kind} | {:.0} | {:.2} | {cpu:.1} | {:.1} |",
            med(i, |s| s.0),
            med(i, |s| s.1),
            cpu - base
        );
    }
}
