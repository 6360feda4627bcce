//! Harness for the end-to-end tests: starts the real `boltstream` binary, real ffmpeg publishers and
//! (in later files) Envoy and Chromium, always on loopback, and always cleans up (children are
//! killed on drop). Every wait is bounded.
//!
//! - [`server`]: a `boltstream serve` child with its own data directory and log file.
//! - [`media`]: test clips (made once per run with ffmpeg) and publishers.
//! - [`browser`]: headless Chromium over WebDriver.
//! - [`envoy`]: a real Envoy edge with the filter.
//! - [`http`]: a raw HTTP/1.1 client that sends any bytes as the path.
//! - [`rtmp`]: a raw RTMP client for hostile-input tests.
//! - [`wasm_host`]: a proxy-wasm host on wasmtime for the edge filter.

pub mod browser;
pub mod chat;
pub mod envoy;
pub mod http;
pub mod media;
pub mod nats;
pub mod rtmp;
pub mod server;
pub mod wasm_host;

/// An `EXT-X-PROGRAM-DATE-TIME` value as the origin writes it (`2026-11-30T07:27:47.275Z`), as
/// Unix milliseconds.
pub fn program_date_time_ms(text: &str) -> Option<i64> {
    let (date, time) = text.trim().trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) * 1000 + (sec * 1000.0).round() as i64)
}

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where tests put logs, clips and screenshots: `target/e2e/`.
pub fn out_dir() -> PathBuf {
    let dir = workspace().join("target").join("e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    dir
}

/// A loopback port that was free a moment ago (for children that must be told their port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Fails (never skips) when a tool the test command should have installed is missing.
pub fn require_tool(name: &str) {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run ./scripts/test (it installs the tools the tests need)"
    );
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Raises this process's soft limit on open files to its hard limit (the server does the same for
/// itself) and returns it: a test holding thousands of connections needs more than the 1024 many
/// systems start with.
#[allow(unsafe_code)]
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed, which is valid.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    limit.rlim_cur
}
