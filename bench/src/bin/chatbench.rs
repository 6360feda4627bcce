//! Chat fan-out: N readers in one channel's room (default 1,000), W writers each sending one
//! message a second (the per-user rate) for D seconds, every message stamped with its send time;
//! each reader records how long each message took to reach it. Reports fan-out latency p50/p99,
//! deliveries, the server's CPU per delivery and its memory with the room full. Loopback only,
//! bounded in time.
//!
//! Run through `bench/run chat [N] [D]`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boltstream_bench::{cpu_seconds, peak_rss_mib};
use boltstream_ingest::store::Store;
use boltstream_tests::server::Server;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WRITERS: usize = 10;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (status.lines())
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let readers: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let seconds: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    boltstream_tests::raise_open_file_limit();
    let limit = (readers + WRITERS + 100).to_string();
    let server = Server::start(&[
        "--max-connections-per-ip",
        &limit,
        "--max-http-connections",
        &limit,
    ]);
    server.add_user("alice");
    let store = Store::open(&server.data().join("boltstream.db")).unwrap();
    let cookies: Vec<String> = (0..WRITERS)
        .map(|i| {
            let name = format!("writer{i}");
            store.add_user(&name, false).unwrap();
            format!("bs_session={}", store.create_session(&name).unwrap().0)
        })
        .collect();
    let pid = server.pid();
    let rss_idle = rss_mib(pid);
    let url = format!("ws://{}/api/v1/channels/alice/chat", server.http);

    // Readers: each records latencies of message frames until told to stop.
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<Vec<u64>>();
    let stop = tokio_util_stop();
    let connect_started = Instant::now();
    let mut joined = 0;
    for _ in 0..readers {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect a reader");
        joined += 1;
        let (tx, mut stop_rx) = (lat_tx.clone(), stop.subscribe());
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut lat = Vec::new();
            loop {
                tokio::select! {
                    _ = stop_rx.recv() => break,
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            if let Some(sent) = t.as_str().split("\"body\":\"t").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse::<u64>().ok()) {
                                lat.push(now_us().saturating_sub(sent));
                            }
                        }
                        Some(Ok(Message::Ping(p))) => { let _ = sink.send(Message::Pong(p)).await; }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
            let _ = tx.send(lat);
        });
    }
    drop(lat_tx);
    let connect_s = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_full = rss_mib(pid);

    // Writers: one message a second each, for `seconds`.
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut writers = Vec::new();
    for cookie in &cookies {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect a writer");
        writers.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            // Drain what the room sends this writer, so it is not a slow reader itself.
            tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let end = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < end {
                tick.tick().await;
                let frame = format!(r#"{{"type":"send","body":"t{}"}}"#, now_us());
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for w in writers {
        sent += w.await.unwrap_or(0);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy_s = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss_peak = peak_rss_mib(pid);
    let _ = stop.send(());
    let mut all = Vec::new();
    while let Some(lat) = lat_rx.recv().await {
        all.extend(lat);
    }
    all.sort_unstable();
    let expected = sent as usize * readers;
    println!("{readers} readers joined in {connect_s:.1} s; {WRITERS} writers sent {sent} messages over {seconds} s (one a second each, the per-user limit).");
    println!();
    println!("| readers | messages | deliveries (expected) | fan-out p50 ms | p99 ms | max ms | server CPU s | CPU µs/delivery | RSS idle MiB | RSS room full MiB | peak RSS MiB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {joined} | {sent} | {} ({expected}) | {:.1} | {:.1} | {:.1} | {cpu:.2} (over {busy_s:.0} s) | {:.2} | {rss_idle:.0} | {rss_full:.0} | {rss_peak:.0} |",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().map_or(0.0, |v| *v as f64 / 1000.0),
        cpu / all.len().max(1) as f64 * 1e6,
    );
}

fn tokio_util_stop() -> tokio::sync::broadcast::Sender<()> {
    tokio::sync::broadcast::channel(1).0
}
