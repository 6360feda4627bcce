//! Shared pieces of the benchmark binaries: process CPU and memory from `/proc`, `wrk` runs, and
//! small statistics. Every load loop is bounded, every address is loopback.

pub mod http1;
pub mod nginx;
pub mod tap;

use std::process::Command;
use std::time::Duration;

/// Clock ticks per second for `/proc/<pid>/stat` (Linux's USER_HZ; 100 on every mainstream build).
const TICKS: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far, children excluded.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / TICKS
}

/// CPU seconds a process has used so far, to the nanosecond, from its process CPU-time clock
/// (`clock_getcpuclockid`): `/proc/<pid>/stat` counts 10-ms ticks, which over a 10-s window of a
/// few ms/s per stream is a rounding of several per cent — more than the differences a paired
/// measurement is after. Threads that have ended are still counted, as in `/proc`. `None` once the
/// process is gone.
pub fn cpu_seconds_exact(pid: u32) -> Option<f64> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    let clock = nix::time::clock_getcpuclockid(pid).ok()?;
    let t = clock.now().ok()?;
    Some(t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Peak resident set (VmHWM) in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak for [`peak_rss_mib`] (`VmHWM` goes back to the current RSS), so a level's
/// peak is its own and not the process's lifetime one (an earlier `wrk` run, say). Returns false
/// where the kernel does not allow it.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Child process ids of `pid` (nginx's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A wrk result.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkResult {
    /// Requests per second.
    pub rps: f64,
    /// 99th percentile latency in ms.
    pub p99_ms: f64,
    /// Requests completed.
    pub requests: f64,
    /// Non-2xx/3xx responses.
    pub errors: f64,
}

/// Runs `wrk` for `duration` with `connections` on one thread, returning its figures.
pub fn wrk(url: &str, connections: u32, duration: Duration) -> WrkResult {
    wrk_with(url, connections, duration, &[])
}

/// [`wrk`] sending `headers` (`Name: value`) with every request.
pub fn wrk_with(url: &str, connections: u32, duration: Duration, headers: &[&str]) -> WrkResult {
    let mut args = vec![
        "-t1".to_string(),
        format!("-c{connections}"),
        format!("-d{}s", duration.as_secs()),
        "--latency".to_string(),
    ];
    for h in headers {
        args.push("-H".to_string());
        args.push((*h).to_string());
    }
    args.push(url.to_string());
    let out = Command::new("wrk")
        .args(&args)
        .output()
        .expect("run wrk (installed by bench/run)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_ms = parse_latency(v.trim());
        } else if line.contains("requests in") {
            r.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors = v.trim().parse().unwrap_or(0.0);
        }
    }
    r
}

fn parse_latency(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(0.0);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => n,
    }
}

/// The median of a sample (0 for none).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let mid = xs.len() / 2;
    if xs.len() % 2 == 0 {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    }
}
