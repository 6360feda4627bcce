//! Per-address limits shared by the RTMP and HTTP sides: connection caps (a flood of idle
//! connections from one address must not crowd out everyone else) and failure throttles (key
//! guessing, password guessing).

use std::collections::HashMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts open connections per address.
#[derive(Debug)]
pub struct PerAddressLimit {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Holds one connection's place; released on drop.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<PerAddressLimit>,
    ip: IpAddr,
}

impl PerAddressLimit {
    /// At most `max` connections per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `ip`, or `None` when the address is at its cap.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            limit: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The caps a listener admits connections under: per address and in total.
#[derive(Debug)]
pub struct Admission {
    kind: &'static str,
    per_ip: Arc<PerAddressLimit>,
    total: Arc<tokio::sync::Semaphore>,
}

/// An admitted connection's places; released on drop.
#[derive(Debug)]
pub struct Admitted {
    _slot: Slot,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Admission {
    /// Caps for the `kind` ("rtmp", "http") listener.
    pub fn new(kind: &'static str, per_ip: usize, total: usize) -> Self {
        Self {
            kind,
            per_ip: PerAddressLimit::new(per_ip),
            total: Arc::new(tokio::sync::Semaphore::new(total)),
        }
    }

    /// Accepts the next connection within the caps (others are closed at once), or `None` once
    /// `shutdown` is cancelled.
    pub async fn accept(
        &self,
        listener: &tokio::net::TcpListener,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<(tokio::net::TcpStream, SocketAddr, Admitted)> {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return None,
                accepted = listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "{} accept failed", self.kind);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(slot) = self.per_ip.acquire(peer.ip()) else {
                tracing::debug!(peer = %peer, "{} connection refused: per-address cap reached", self.kind);
                continue;
            };
            let Ok(permit) = Arc::clone(&self.total).try_acquire_owned() else {
                tracing::debug!(peer = %peer, "{} connection refused: connection cap reached", self.kind);
                continue;
            };
            let _ = socket.set_nodelay(true);
            return Some((
                socket,
                peer,
                Admitted {
                    _slot: slot,
                    _permit: permit,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_releases_on_drop() {
        let limit = PerAddressLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = limit.acquire(a).unwrap();
        let _s2 = limit.acquire(a).unwrap();
        assert!(limit.acquire(a).is_none());
        assert!(limit.acquire(b).is_some());
        drop(s1);
        assert!(limit.acquire(a).is_some());
    }
}

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Per-address failure counting (publish attempts with bad keys, website log-ins): after `limit`
/// failures in a [`WINDOW`], further attempts are refused without touching the database.
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
mod throttle_tests {
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
