//! Several nodes as one site, measured on this machine: the server's CPU per stream on each node
//! with N publishers on one node (SQLite, the shipped default; and PostgreSQL) and N/2 on each of
//! two nodes sharing one PostgreSQL, in interleaved rounds of one run; the store's load per live
//! stream (PostgreSQL transactions per second over the window, each statement being one); and what
//! a node pays to answer for a stream another node holds (requests per second for a segment, from
//! the holder and forwarded through the other node; `nodebench forward` runs only this).
//!
//! `nodebench marginal LOW HIGH [HOLD] [ROUNDS]` measures what one more stream costs the site on
//! one node and on two (all nodes' CPU at LOW and at HIGH streams), so the costs a node has
//! whatever it holds cancel out.
//!
//! `nodebench together N WINDOW WINDOWS ROUNDS` runs one node on SQLite, one on PostgreSQL and a
//! two-node site side by side, N streams on each of the four nodes, and reads their CPU over the
//! same windows: a shared machine's noise (other sessions, publishers, frequency) then falls on
//! every layout alike, and each window's ratio is a paired comparison. The two nodes of the pair do
//! the same job, so their ratio to each other is the method's own spread (an A/A control), stated
//! beside the result.
//!
//! Run through `bench/run nodes [N] [HOLD] [ROUNDS]` and `bench/run together [N] [W] [K] [R]`.
//! Prints markdown tables.

use std::time::{Duration, Instant};

use boltstream_bench::{cpu_seconds, cpu_seconds_exact, median, wrk_with};
use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

/// How a round runs the site.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    OneSqlite,
    OnePostgres,
    TwoPostgres,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::OneSqlite => "one node, SQLite (shipped default)",
            Layout::OnePostgres => "one node, PostgreSQL",
            Layout::TwoPostgres => "two nodes, one PostgreSQL",
        }
    }
}

/// The same for every layout: the shipped output (CMAF, low-latency HLS), no thumbnails, room for
/// every publisher from one address.
const FLAGS: [&str; 8] = [
    "--hls-format",
    "cmaf",
    "--max-connections-per-ip",
    "1000",
    "--recording-min-free-mb",
    "1024",
    "--thumbnail-interval",
    "0",
];

/// A node of a PostgreSQL site, logging as an operator would.
fn node(ip: &str, id: &str, database: &str) -> Server {
    Server::start_node_logging(ip, id, database, &FLAGS, "info")
}

/// PostgreSQL transactions so far in the database at `url` (committed and rolled back).
fn transactions(url: &str) -> i64 {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    // Statistics are flushed by each backend about once a second; ask for the current ones.
    let row = client
        .query_one(
            "SELECT (xact_commit + xact_rollback)::BIGINT FROM pg_stat_database
             WHERE datname = current_database()",
            &[],
        )
        .expect("pg_stat_database");
    row.get(0)
}

/// A new user `user` on `node`, not recorded, publishing the 720p clip in real time; a short
/// pause after it, so publishers do not all start at one instant.
fn publisher(node: &Server, user: &str) -> Publisher {
    let key = node.add_user(user);
    let out = node.cli(&["recordings", "keep", user, "off"]);
    assert!(out.status.success());
    let publisher = Publisher::start(Clip::AudioVideo, &node.publish_url(&key), true);
    std::thread::sleep(Duration::from_millis(40));
    publisher
}

/// One round: per node, (server CPU ms/s per stream); and store transactions per second per
/// live stream (PostgreSQL only).
fn round(layout: Layout, streams: usize, hold: Duration) -> (Vec<f64>, Option<f64>) {
    let database = (layout != Layout::OneSqlite)
        .then(|| boltstream_ingest::pg_cluster::shared().new_database());
    let nodes: Vec<Server> = match (layout, &database) {
        (Layout::OneSqlite, _) => vec![Server::start_logging(&FLAGS, "info")],
        (Layout::OnePostgres, Some(db)) => vec![node("127.0.0.2", "a", db)],
        (Layout::TwoPostgres, Some(db)) => {
            vec![node("127.0.0.2", "a", db), node("127.0.0.3", "b", db)]
        }
        _ => unreachable!("a PostgreSQL layout has a database"),
    };
    let mut publishers = Vec::new();
    for i in 0..streams {
        let user = format!("stream{i}");
        let node = &nodes[i % nodes.len()];
        publishers.push(publisher(node, &user));
    }
    let live = wait_for(Duration::from_secs(30), || {
        (nodes[0].live_users().len() == streams).then_some(())
    });
    assert!(live.is_some(), "not every publisher went live");
    std::thread::sleep(Duration::from_secs(5));
    let before: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.pid())).collect();
    let tx0 = database.as_deref().map(transactions);
    let t0 = Instant::now();
    std::thread::sleep(hold);
    let after: Vec<f64> = nodes.iter().map(|n| cpu_seconds(n.pid())).collect();
    let tx1 = database.as_deref().map(transactions);
    let secs = t0.elapsed().as_secs_f64();
    let dead = (publishers.iter_mut())
        .map(|p| !p.running())
        .filter(|d| *d)
        .count();
    assert_eq!(dead, 0, "publishers failed during the round");
    let per_node = streams as f64 / nodes.len() as f64;
    let cpu = (before.iter().zip(&after))
        .map(|(b, a)| (a - b) / secs * 1000.0 / per_node)
        .collect();
    // The two reads of the counter are themselves transactions; they are left in (2 in a window).
    let store = tx0
        .zip(tx1)
        .map(|(a, b)| (b - a) as f64 / secs / streams as f64);
    (cpu, store)
}

/// Requests per second for a segment of a stream on node b: from b itself, and through a.
fn forwarding(seconds: u64, rounds: usize) {
    let db = boltstream_ingest::pg_cluster::shared().new_database();
    let (a, b) = (node("127.0.0.2", "a", &db), node("127.0.0.3", "b", &db));
    let key = b.add_user("bob");
    let _publisher = Publisher::start(Clip::AudioVideo, &b.publish_url(&key), true);
    assert!(
        wait_for(Duration::from_secs(20), || {
            let r = get(b.http, "/live/bob/index.m3u8");
            (r.status == 200 && r.text().contains("#EXTINF")).then_some(())
        })
        .is_some(),
        "bob live"
    );
    let mut direct = Vec::new();
    let mut forwarded = Vec::new();
    let mut latency = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // The newest complete segment now: it stays in the window for the round (12 s).
        let text = get(b.http, "/live/bob/index.m3u8").text();
        let segment = (text.lines())
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .expect("a segment")
            .to_string();
        let path = format!("/live/bob/{segment}");
        let d = wrk_with(
            &format!("http://{}{path}", b.http),
            8,
            Duration::from_secs(seconds),
            &[],
        );
        let f = wrk_with(
            &format!("http://{}{path}", a.http),
            8,
            Duration::from_secs(seconds),
            &[],
        );
        assert_eq!(d.errors + f.errors, 0.0, "errors under load");
        direct.push(d.rps);
        forwarded.push(f.rps);
        latency.0.push(d.p99_ms);
        latency.1.push(f.p99_ms);
    }
    let (d, f) = (median(direct.clone()), median(forwarded.clone()));
    println!(
        "\n| the newest segment of a stream on node b, wrk 8 connections, {seconds} s × {rounds} rounds | req/s (median) | p99 latency (median) | ratio |"
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| from b, the holder | {d:.0} | {:.2} ms | 1.00× |",
        median(latency.0)
    );
    println!(
        "| through a (forwarded to b) | {f:.0} | {:.2} ms | {:.2}× |",
        median(latency.1),
        f / d
    );
}

/// What one more stream costs the site, on one node and spread over two: all nodes' CPU with
/// `low` and with `high` streams in all, `(high − low) / (high − low streams)`, so costs a node has
/// whatever it holds cancel out.
fn marginal(low: usize, high: usize, hold: Duration, rounds: usize) {
    let layouts = [Layout::OnePostgres, Layout::TwoPostgres];
    let mut per_stream: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    let mut fixed: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    for r in 0..rounds {
        for (i, layout) in layouts.iter().enumerate() {
            let total = |streams: usize| {
                eprintln!("[round {r}] {}: {streams} publishers", layout.name());
                let (nodes, _) = round(*layout, streams, hold);
                let each = streams as f64 / nodes.len() as f64;
                nodes.iter().map(|cpu| cpu * each).sum::<f64>()
            };
            let (a, b) = (total(low), total(high));
            let slope = (b - a) / (high - low) as f64;
            let nodes = if *layout == Layout::OnePostgres {
                1.0
            } else {
                2.0
            };
            eprintln!("  {a:.1} -> {b:.1} ms/s in all: {slope:.2} ms/s per stream");
            per_stream[i].push(slope);
            fixed[i].push((a - slope * low as f64) / nodes);
        }
    }
    println!(
        "| {low} → {high} streams in all, {} s windows × {rounds} rounds | CPU one more stream adds to the site (median) | CPU a node spends whatever it holds (median) | ratio to one node |",
        hold.as_secs()
    );
    println!("| --- | --- | --- | --- |");
    let one = median(per_stream[0].clone());
    for (i, layout) in layouts.iter().enumerate() {
        let m = median(per_stream[i].clone());
        println!(
            "| {} | {m:.2} ms/s | {:.1} ms/s | {:.2}× |",
            layout.name(),
            median(fixed[i].clone()),
            m / one
        );
    }
}

/// One node on SQLite (the shipped default), one node on its own PostgreSQL database and two
/// nodes sharing another, side by side with `per_node` publishers on each of the four, CPU read
/// for all four over the same windows.
fn together(per_node: usize, window: Duration, windows: usize, rounds: usize) {
    // Per round (fresh processes, the independent unit: a process keeps its placement and caches
    // for the round, so its windows are not independent of each other): CPU ms/s per stream of
    // [SQLite node, PostgreSQL node, node a, node b] over all the round's windows, and the two
    // PostgreSQL sites' transactions/s per live stream.
    let (cpu, store): (Vec<[f64; 4]>, Vec<[f64; 2]>) = (0..rounds)
        .map(|r| together_round(r, per_node, window, windows))
        .unzip();
    let column = |f: &dyn Fn(&[f64; 4]) -> f64| -> Vec<f64> { cpu.iter().map(f).collect() };
    let pair = |c: &[f64; 4]| (c[2] + c[3]) / 2.0;
    let spread = |xs: Vec<f64>| {
        let each: Vec<String> = xs.iter().map(|x| format!("{x:.2}")).collect();
        format!("{:.3}× ({})", median(xs), each.join("; "))
    };
    println!(
        "| {per_node} streams on each node, side by side, {rounds} rounds of {windows} × {} s | server CPU per stream per node (median of rounds) | store transactions/s per live stream (median) | two nodes against it in the same windows: median (each round) |",
        window.as_secs()
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| one node, SQLite (shipped default) | {:.2} ms/s | — (a file) | {} |",
        median(column(&|c| c[0])),
        spread(column(&|c| pair(c) / c[0]))
    );
    println!(
        "| one node, PostgreSQL | {:.2} ms/s | {:.2} | {} |",
        median(column(&|c| c[1])),
        median(store.iter().map(|s| s[0]).collect()),
        spread(column(&|c| pair(c) / c[1]))
    );
    println!(
        "| two nodes, one PostgreSQL (mean of the two) | {:.2} ms/s | {:.2} | — |",
        median(column(&pair)),
        median(store.iter().map(|s| s[1]).collect()),
    );
    println!(
        "| control: node b against node a (the same job), the method's own spread | — | — | {} |",
        spread(column(&|c| c[3] / c[2]))
    );
}

/// CPU seconds each of `nodes` used and transactions each of `databases` ran over one window
/// of `window`, and the window's length in seconds.
fn read_window(
    nodes: &[&Server; 4],
    databases: [&str; 2],
    window: Duration,
) -> ([f64; 4], [f64; 2], f64) {
    let cpu_now = || nodes.map(|n| cpu_seconds_exact(n.pid()).expect("node running"));
    let tx_now = || databases.map(|db| transactions(db) as f64);
    let (cpu0, tx0, t0) = (cpu_now(), tx_now(), Instant::now());
    std::thread::sleep(window);
    let (cpu1, tx1) = (cpu_now(), tx_now());
    let secs = t0.elapsed().as_secs_f64();
    (
        std::array::from_fn(|i| cpu1[i] - cpu0[i]),
        std::array::from_fn(|i| tx1[i] - tx0[i]),
        secs,
    )
}

/// `per_node` publishers on each of [`together`]'s nodes, started in turn (from another node first
/// each round), once all are live.
fn publish_side_by_side(nodes: &[&Server; 4], r: usize, per_node: usize) -> Vec<Publisher> {
    let mut publishers = Vec::new();
    for i in 0..per_node {
        for k in 0..nodes.len() {
            let j = (k + r) % nodes.len();
            publishers.push(publisher(nodes[j], &format!("s{j}n{i}")));
        }
    }
    // Nodes a and b share a database, so each lists both's streams.
    let live = wait_for(Duration::from_secs(60), || {
        let all = nodes[0].live_users().len() == per_node
            && nodes[1].live_users().len() == per_node
            && nodes[2].live_users().len() == 2 * per_node;
        all.then_some(())
    });
    assert!(live.is_some(), "not every publisher went live");
    publishers
}

/// Round `r` of [`together`]: four fresh nodes with `per_node` publishers each, read over
/// `windows` windows; (CPU ms/s per stream of each node, each PostgreSQL site's transactions/s
/// per live stream).
fn together_round(
    r: usize,
    per_node: usize,
    window: Duration,
    windows: usize,
) -> ([f64; 4], [f64; 2]) {
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let cluster = boltstream_ingest::pg_cluster::shared();
    let (one_db, two_db) = (cluster.new_database(), cluster.new_database());
    // Each round gives each PostgreSQL role another address, and every role another start
    // slot, so neither favours a layout.
    let lite = Server::start_logging(&FLAGS, "info");
    let solo = node(ips[r % 3], "solo", &one_db);
    let a = node(ips[(r + 1) % 3], "a", &two_db);
    let b = node(ips[(r + 2) % 3], "b", &two_db);
    let nodes = [&lite, &solo, &a, &b];
    let mut publishers = publish_side_by_side(&nodes, r, per_node);
    std::thread::sleep(Duration::from_secs(5));
    let (mut used, mut tx, mut elapsed) = ([0.0; 4], [0.0; 2], 0.0);
    for w in 0..windows {
        let (cpu, transactions, secs) = read_window(&nodes, [&one_db, &two_db], window);
        let dead = (publishers.iter_mut())
            .map(|p| p.running())
            .filter(|up| !up)
            .count();
        assert_eq!(dead, 0, "publishers failed during the window");
        let c = cpu.map(|u| u / secs * 1000.0 / per_node as f64);
        let pair = (c[2] + c[3]) / 2.0;
        eprintln!(
            "[round {r} window {w}] SQLite, PostgreSQL, a, b: {c:.2?} ms/s per stream: {:.3}x, {:.3}x",
            pair / c[0],
            pair / c[1],
        );
        for (u, c) in used.iter_mut().zip(cpu) {
            *u += c;
        }
        for (t, n) in tx.iter_mut().zip(transactions) {
            *t += n;
        }
        elapsed += secs;
    }
    let c = used.map(|u| u / elapsed * 1000.0 / per_node as f64);
    eprintln!(
        "[round {r}] {c:.2?} ms/s per stream: two nodes {:.3}x SQLite, {:.3}x PostgreSQL; b {:.3}x a",
        (c[2] + c[3]) / 2.0 / c[0],
        (c[2] + c[3]) / 2.0 / c[1],
        c[3] / c[2]
    );
    (
        c,
        [
            tx[0] / elapsed / per_node as f64,
            tx[1] / elapsed / (2 * per_node) as f64,
        ],
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("together") {
        let arg =
            |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        return together(
            arg(2, 10) as usize,
            Duration::from_secs(arg(3, 10)),
            arg(4, 3) as usize,
            arg(5, 8) as usize,
        );
    }
    if args.get(1).map(String::as_str) == Some("forward") {
        return forwarding(3, 3);
    }
    if args.get(1).map(String::as_str) == Some("marginal") {
        let arg =
            |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        let (low, high) = (arg(2, 10) as usize, arg(3, 20) as usize);
        return marginal(
            low,
            high,
            Duration::from_secs(arg(4, 20)),
            arg(5, 1) as usize,
        );
    }
    let streams: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let hold = Duration::from_secs(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20));
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let layouts = [Layout::OneSqlite, Layout::OnePostgres, Layout::TwoPostgres];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    let mut per_node: Vec<Vec<Vec<f64>>> = vec![Vec::new(); layouts.len()];
    let mut store: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    for r in 0..rounds {
        for (i, layout) in layouts.iter().enumerate() {
            eprintln!(
                "[round {r}] {}: {streams} publishers for {hold:?}",
                layout.name()
            );
            let (nodes, tx) = round(*layout, streams, hold);
            eprintln!("  {nodes:.2?} ms/s per stream per node, {tx:.2?} transactions/s per stream");
            cpu[i].push(nodes.iter().sum::<f64>() / nodes.len() as f64);
            per_node[i].push(nodes);
            if let Some(tx) = tx {
                store[i].push(tx);
            }
        }
    }
    let first = median(cpu[0].clone());
    println!(
        "| {streams} streams in all, {} s windows × {rounds} rounds | server CPU per stream per node (median) | each round, each node | store transactions/s per live stream | ratio to the first |",
        hold.as_secs()
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, layout) in layouts.iter().enumerate() {
        let c = median(cpu[i].clone());
        let each: Vec<String> = (per_node[i].iter())
            .map(|n| {
                let v: Vec<String> = n.iter().map(|x| format!("{x:.2}")).collect();
                v.join(" / ")
            })
            .collect();
        let tx = if store[i].is_empty() {
            "— (a file)".to_string()
        } else {
            format!("{:.2}", median(store[i].clone()))
        };
        println!(
            "| {} | {c:.2} ms/s | {} | {tx} | {:.2}× |",
            layout.name(),
            each.join("; "),
            c / first
        );
    }
    forwarding(3, 3);
}
