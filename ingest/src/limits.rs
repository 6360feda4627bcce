//! Per-address limits shared by the RTMP and HTTP sides: connection caps (a flood of idle
//! connections from one address must not crowd out everyone else) and throttles (key guessing,
//! password guessing, sign-ups). Addresses are grouped as one client holds them: an IPv6 client
//! gets a whole /64, so it is counted by its /64.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;

/// The address a limit counts `ip` under: IPv4 as it is (also when mapped into IPv6), IPv6 by its
/// /64, since one subscriber is handed a whole /64 and could otherwise take a fresh address per
/// attempt.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

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
        let ip = address_group(ip);
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
    /// Addresses not capped per address: trusted proxies (the edge) carry every viewer's requests.
    exempt: Vec<ipnet::IpNet>,
}

/// An admitted connection's places; released on drop.
#[derive(Debug)]
pub struct Admitted {
    _slot: Option<Slot>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Admission {
    /// Caps for the `kind` ("rtmp", "http") listener.
    pub fn new(kind: &'static str, per_ip: usize, total: usize) -> Self {
        Self {
            kind,
            per_ip: PerAddressLimit::new(per_ip),
            total: Arc::new(tokio::sync::Semaphore::new(total)),
            exempt: Vec::new(),
        }
    }

    /// Leaves connections from `proxies` out of the per-address cap (the total cap still holds).
    pub fn exempting(mut self, proxies: &[ipnet::IpNet]) -> Self {
        self.exempt = proxies.to_vec();
        self
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
            let slot = if self.exempt.iter().any(|net| net.contains(&peer.ip())) {
                None
            } else {
                let Some(slot) = self.per_ip.acquire(peer.ip()) else {
                    tracing::debug!(peer = %peer, "{} connection refused: per-address cap reached", self.kind);
                    continue;
                };
                Some(slot)
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

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limit = PerAddressLimit::new(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = limit.acquire(one).unwrap();
        assert!(limit.acquire(same_64).is_none());
        assert!(limit.acquire(other_64).is_some());
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert_eq!(
            address_group(mapped),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }
}

/// Most keys a [`Throttle`] remembers. Under a flood of distinct addresses the oldest windows are
/// forgotten first, so memory stays bounded (about 64 bytes a key); an attacker needs that many
/// addresses (/64s, for IPv6) to make it forget one.
pub const MAX_TRACKED: usize = 65_536;

/// Counts attempts per key (an address group, an account name, or one key for everyone) in fixed
/// windows: after `limit` in a window, further attempts are refused without touching the database
/// or hashing a password.
pub struct Throttle<K = IpAddr> {
    limit: u32,
    window: Duration,
    windows: Mutex<LinkedHashMap<K, Window>>,
}

struct Window {
    started: Instant,
    count: u32,
    reported: bool,
}

/// What the throttle says about a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refuse now. `first` is true once per window, so the refusal is logged once, not per attempt.
    Throttled {
        /// First refusal in this window.
        first: bool,
    },
}

impl Throttle<IpAddr> {
    /// At most `limit` failures per address group per minute.
    pub fn new(limit: u32) -> Self {
        Self::per(limit, Duration::from_secs(60))
    }

    /// [`Throttle::begin`] for an address, counted by its [`address_group`].
    pub fn begin_ip(&self, ip: IpAddr, now: Instant) -> Verdict {
        self.begin(&address_group(ip), now)
    }

    /// [`Throttle::succeeded`] for an address.
    pub fn succeeded_ip(&self, ip: IpAddr) {
        self.succeeded(&address_group(ip));
    }
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// At most `limit` attempts per key per `window`.
    pub fn per(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(LinkedHashMap::new()),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<K, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a key and counts this attempt at once, before the slow work it guards: counting
    /// only after it (as the log-in did, after a ~19 MiB password hash) let parallel attempts
    /// all pass the check. An attempt that then succeeds is given back with [`Self::succeeded`].
    pub fn begin(&self, key: &K, now: Instant) -> Verdict {
        let mut windows = self.windows();
        let fresh = windows
            .get(key)
            .is_none_or(|w| now.duration_since(w.started) >= self.window);
        if fresh {
            if windows.len() >= MAX_TRACKED && !windows.contains_key(key) {
                windows.pop_front();
            }
            windows.replace(
                key.clone(),
                Window {
                    started: now,
                    count: 0,
                    reported: false,
                },
            );
        }
        let w = windows.get_mut(key).expect("just ensured");
        if w.count >= self.limit {
            let first = !w.reported;
            w.reported = true;
            return Verdict::Throttled { first };
        }
        w.count += 1;
        Verdict::Allow
    }

    /// True when `key` is at its limit now (without counting an attempt).
    pub fn is_throttled(&self, key: &K, now: Instant) -> bool {
        self.windows()
            .get(key)
            .is_some_and(|w| now.duration_since(w.started) < self.window && w.count >= self.limit)
    }

    /// Gives back an attempt that succeeded: only failures count against a key.
    pub fn succeeded(&self, key: &K) {
        if let Some(w) = self.windows().get_mut(key) {
            w.count = w.count.saturating_sub(1);
        }
    }

    /// Keys remembered now.
    pub fn tracked(&self) -> usize {
        self.windows().len()
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn counts_attempts_as_they_start_and_gives_back_successes() {
        let t = Throttle::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Instant::now();
        // Three attempts in flight at once: the fourth is refused before any of them finished.
        for _ in 0..3 {
            assert_eq!(t.begin_ip(ip, start), Verdict::Allow);
        }
        assert_eq!(t.begin_ip(ip, start), Verdict::Throttled { first: true });
        assert_eq!(t.begin_ip(ip, start), Verdict::Throttled { first: false });
        assert_eq!(t.begin_ip(other, start), Verdict::Allow);
        // One of the three succeeded: one more attempt is allowed.
        t.succeeded_ip(ip);
        assert_eq!(t.begin_ip(ip, start), Verdict::Allow);
        assert!(t.is_throttled(&ip, start));
        let later = start + Duration::from_secs(61);
        assert!(!t.is_throttled(&ip, later));
        assert_eq!(t.begin_ip(ip, later), Verdict::Allow);
    }

    #[test]
    fn a_flood_of_distinct_addresses_stays_bounded() {
        let t = Throttle::new(1);
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 5_000) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.begin_ip(ip, now);
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // IPv6 from one /64 is one key, however many addresses it uses.
        let t = Throttle::new(2);
        for i in 0..1000u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, i, i, i, i));
            t.begin_ip(ip, now);
        }
        assert_eq!(t.tracked(), 1);
        let blocked = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 7, 7, 7, 7));
        assert!(matches!(
            t.begin_ip(blocked, now),
            Verdict::Throttled { .. }
        ));
    }
}
