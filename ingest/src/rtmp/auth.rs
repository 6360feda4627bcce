//! The publish decision: throttle, then the store. Throttling comes first so a client guessing keys
//! is refused without a database lookup once it has failed too often.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Per-address failure counting for publish attempts.
pub struct Throttle {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
    reported: bool,
}

/// What the throttle says about an address.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead and look the key up.
    Allow,
    /// Refuse now. `first` is true once per window, so the refusal is logged once, not per attempt.
    Throttled {
        /// First refusal in this window.
        first: bool,
    },
}

impl Throttle {
    /// At most `limit` failures per address per [`WINDOW`].
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks an address before a lookup.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let mut windows = self.windows();
        match windows.get_mut(&ip) {
            Some(w) if now.duration_since(w.started) < WINDOW && w.failures >= self.limit => {
                let first = !w.reported;
                w.reported = true;
                Verdict::Throttled { first }
            }
            _ => Verdict::Allow,
        }
    }

    /// Records a failed publish from an address.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut windows = self.windows();
        // Bound memory under a flood from many addresses: forget expired windows first.
        if windows.len() > 10_000 {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let w = windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
            reported: false,
        });
        if now.duration_since(w.started) >= WINDOW {
            *w = Window {
                started: now,
                failures: 0,
                reported: false,
            };
        }
        w.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_and_reports_once_per_window() {
        let t = Throttle::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check(ip, start), Verdict::Allow);
            t.failed(ip, start);
        }
        assert_eq!(t.check(ip, start), Verdict::Throttled { first: true });
        assert_eq!(t.check(ip, start), Verdict::Throttled { first: false });
        assert_eq!(t.check(other, start), Verdict::Allow);
        let later = start + WINDOW + Duration::from_secs(1);
        assert_eq!(t.check(ip, later), Verdict::Allow);
        t.failed(ip, later);
        assert_eq!(t.check(ip, later), Verdict::Allow);
    }
}
