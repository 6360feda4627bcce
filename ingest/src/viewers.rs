//! Concurrent viewers per channel, counted the way sites behind caching edges count them: the
//! origin sees few media requests (the edge answers the rest), so each player sends a small
//! heartbeat with an anonymous viewer id every [`HEARTBEAT_S`] seconds, and a viewer counts while
//! their heartbeats arrive. Pure bookkeeping with the clock passed in; the HTTP side calls it.
//!
//! What one client cannot do: count twice (an id counts once, on one channel at a time), or count
//! many (an address — an IPv6 /64 — holds at most [`IDS_PER_ADDRESS`] live ids; more are ignored),
//! or grow memory without bound ([`MAX_VIEWERS`] ids in all).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use boltstream_shared::username::Username;

use crate::limits::address_group;

/// Seconds between a player's heartbeats (the player script uses the same figure).
pub const HEARTBEAT_S: i64 = 15;
/// A viewer stops counting this long after their last heartbeat: two heartbeats may be lost.
pub const EXPIRE_MS: i64 = 3 * HEARTBEAT_S * 1000 + 5_000;
/// Live viewer ids one address may hold (a household, a small office).
pub const IDS_PER_ADDRESS: usize = 16;
/// Live viewer ids in all, across channels.
pub const MAX_VIEWERS: usize = 200_000;

/// A player's anonymous id: 32 hexadecimal characters, made by the player at random.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ViewerId(u128);

impl ViewerId {
    /// Parses the id a player sent; `None` for anything but 32 hex characters.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(text, 16).ok().map(ViewerId))
            .flatten()
    }
}

struct Seen {
    channel: Username,
    address: IpAddr,
    at_ms: i64,
}

#[derive(Default)]
struct Book {
    viewers: HashMap<ViewerId, Seen>,
    per_address: HashMap<IpAddr, usize>,
}

impl Book {
    fn forget(&mut self, id: &ViewerId) {
        if let Some(seen) = self.viewers.remove(id) {
            if let Some(n) = self.per_address.get_mut(&seen.address) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&seen.address);
                }
            }
        }
    }

    fn expire(&mut self, now_ms: i64) {
        let gone: Vec<ViewerId> = (self.viewers.iter())
            .filter(|(_, s)| now_ms - s.at_ms > EXPIRE_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.forget(&id);
        }
    }
}

/// Whether a heartbeat counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// The viewer counts.
    Counted,
    /// Their address already holds [`IDS_PER_ADDRESS`] live ids, or the server [`MAX_VIEWERS`].
    Ignored,
}

/// See the module documentation.
#[derive(Default)]
pub struct ViewerCounter {
    book: Mutex<Book>,
}

impl ViewerCounter {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A heartbeat from `address` for `channel` at `now_ms`.
    pub fn beat(&self, channel: &Username, id: ViewerId, address: IpAddr, now_ms: i64) -> Beat {
        let address = address_group(address);
        let mut book = self.book();
        if let Some(seen) = book.viewers.get_mut(&id) {
            if seen.address == address {
                seen.at_ms = now_ms;
                seen.channel = channel.clone();
                return Beat::Counted;
            }
            // The same id from elsewhere (a phone changing networks, or a copied id): it moves.
            book.forget(&id);
        }
        if book.viewers.len() >= MAX_VIEWERS {
            book.expire(now_ms);
        }
        let held = book.per_address.get(&address).copied().unwrap_or(0);
        if held >= IDS_PER_ADDRESS {
            book.expire(now_ms);
        }
        let held = book.per_address.get(&address).copied().unwrap_or(0);
        if held >= IDS_PER_ADDRESS || book.viewers.len() >= MAX_VIEWERS {
            return Beat::Ignored;
        }
        book.viewers.insert(
            id,
            Seen {
                channel: channel.clone(),
                address,
                at_ms: now_ms,
            },
        );
        *book.per_address.entry(address).or_default() += 1;
        Beat::Counted
    }

    /// Viewers of each channel with any, at `now_ms` (forgetting those that stopped).
    pub fn counts(&self, now_ms: i64) -> HashMap<Username, usize> {
        let mut book = self.book();
        book.expire(now_ms);
        let mut counts = HashMap::new();
        for seen in book.viewers.values() {
            *counts.entry(seen.channel.clone()).or_default() += 1;
        }
        counts
    }

    /// Viewers of `channel` at `now_ms`.
    pub fn count(&self, channel: &Username, now_ms: i64) -> usize {
        let book = self.book();
        (book.viewers.values())
            .filter(|s| &s.channel == channel && now_ms - s.at_ms <= EXPIRE_MS)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn id(n: u128) -> ViewerId {
        ViewerId(n)
    }

    const T0: i64 = 1_000_000;

    #[test]
    fn ids_are_32_hex_characters() {
        assert!(ViewerId::parse("0123456789abcdefABCDEF0123456789").is_some());
        for bad in [
            "",
            "0123",
            &"0".repeat(33),
            "0123456789abcdef0123456789abcdeg",
            "+123456789abcdef0123456789abcdef",
        ] {
            assert!(ViewerId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_viewer_counts_once_while_heartbeats_arrive() {
        let c = ViewerCounter::default();
        let (alice, bob) = (user("alice"), user("bob"));
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        let office: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(c.beat(&alice, id(1), home, T0), Beat::Counted);
        assert_eq!(c.beat(&alice, id(1), home, T0 + 1), Beat::Counted);
        assert_eq!(c.beat(&alice, id(2), office, T0 + 2), Beat::Counted);
        assert_eq!(c.count(&alice, T0 + 3), 2);
        // Switching channels moves the viewer.
        c.beat(&bob, id(2), office, T0 + 4);
        assert_eq!(c.count(&alice, T0 + 5), 1);
        assert_eq!(c.count(&bob, T0 + 5), 1);
        // Heartbeats stop: the viewer stops counting.
        c.beat(&alice, id(1), home, T0 + 30_000);
        assert_eq!(c.count(&bob, T0 + 4 + EXPIRE_MS + 1), 0);
        assert_eq!(c.count(&alice, T0 + 4 + EXPIRE_MS + 1), 1);
        let counts = c.counts(T0 + 30_000 + EXPIRE_MS + 1);
        assert!(counts.is_empty(), "{:?}", counts.len());
    }

    #[test]
    fn one_address_cannot_inflate_the_count() {
        let c = ViewerCounter::default();
        let alice = user("alice");
        let attacker: IpAddr = "2001:db8::1".parse().unwrap();
        let mut counted = 0;
        for n in 0..1000u128 {
            // Fresh ids, and fresh addresses inside one /64.
            let address = IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16,
            ));
            if c.beat(&alice, id(n), address, T0) == Beat::Counted {
                counted += 1;
            }
        }
        assert_eq!(counted, IDS_PER_ADDRESS);
        assert_eq!(c.count(&alice, T0), IDS_PER_ADDRESS);
        // Once those expire, the address may count again.
        assert_eq!(
            c.beat(&alice, id(5000), attacker, T0 + EXPIRE_MS + 1),
            Beat::Counted
        );
        assert_eq!(c.count(&alice, T0 + EXPIRE_MS + 1), 1);
    }
}
