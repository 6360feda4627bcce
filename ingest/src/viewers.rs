//! Concurrent viewers per channel, counted the way sites behind caching edges count them: the
//! origin sees few media requests (the edge answers the rest), so each player sends a small
//! heartbeat with an anonymous viewer id every [`HEARTBEAT_S`] seconds, and a viewer counts while
//! their heartbeats arrive. Pure bookkeeping with the clock passed in; the HTTP side calls it.
//!
//! With several nodes, an edge spreads a viewer's heartbeats over them: each node also writes the
//! ids it counted to the store and shows the site's count, each id once, read back from there.
//!
//! What one client cannot do: count twice (an id counts once, on one channel at a time), count
//! many (an address — an IPv6 /64 — holds at most [`IDS_PER_ADDRESS`] live ids; more are ignored),
//! grow memory without bound ([`MAX_VIEWERS`] ids in all), or make the server walk every viewer
//! per request (counts are kept as ids come and go; expiry walks them at most once a second).

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

/// Ids, and the counts kept beside them so no call walks every viewer: expiry does, at most once
/// a second (a count may include a viewer for up to a second past their expiry).
#[derive(Default)]
struct Book {
    viewers: HashMap<ViewerId, Seen>,
    per_address: HashMap<IpAddr, usize>,
    per_channel: HashMap<Username, usize>,
    expired_at_ms: i64,
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Book {
    fn forget(&mut self, id: &ViewerId) {
        if let Some(seen) = self.viewers.remove(id) {
            decrement(&mut self.per_address, &seen.address);
            decrement(&mut self.per_channel, &seen.channel);
        }
    }

    /// Forgets viewers past their expiry; a walk over every viewer, so at most once a second
    /// however often it is asked for.
    fn expire(&mut self, now_ms: i64) {
        if now_ms - self.expired_at_ms < 1_000 {
            return;
        }
        self.expired_at_ms = now_ms;
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
    /// With several nodes: the site's counts (every node's heartbeats, each id once), as last
    /// read from the store, and the heartbeats counted here since they were last written there.
    site: Mutex<Option<Site>>,
}

#[derive(Default)]
struct Site {
    counts: HashMap<Username, usize>,
    outbox: HashMap<ViewerId, Username>,
}

impl ViewerId {
    /// The id as the player sent it (lowercase hex), as the store keeps it.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

impl ViewerCounter {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn site(&self) -> std::sync::MutexGuard<'_, Option<Site>> {
        self.site.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts across the site's nodes from now on: heartbeats counted here are handed to
    /// [`Self::take_outbox`], and the counts given to [`Self::set_site_counts`] are shown.
    pub fn share(&self) {
        *self.site() = Some(Site::default());
    }

    /// The heartbeats counted since the last call (the newest channel of each id), to be written
    /// to the store; empty when not sharing.
    pub fn take_outbox(&self) -> HashMap<ViewerId, Username> {
        self.site()
            .as_mut()
            .map(|s| std::mem::take(&mut s.outbox))
            .unwrap_or_default()
    }

    /// The site's counts, as the store now has them.
    pub fn set_site_counts(&self, counts: HashMap<Username, usize>) {
        if let Some(site) = self.site().as_mut() {
            site.counts = counts;
        }
    }

    /// A heartbeat from `address` for `channel` at `now_ms`; counted here, and (when sharing)
    /// queued for the site's count.
    pub fn beat(&self, channel: &Username, id: ViewerId, address: IpAddr, now_ms: i64) -> Beat {
        let beat = self.beat_here(channel, id, address, now_ms);
        if beat == Beat::Counted {
            if let Some(site) = self.site().as_mut() {
                // Bounded like the book: ids beyond it wait for the next write.
                if site.outbox.len() < MAX_VIEWERS || site.outbox.contains_key(&id) {
                    site.outbox.insert(id, channel.clone());
                }
            }
        }
        beat
    }

    fn beat_here(&self, channel: &Username, id: ViewerId, address: IpAddr, now_ms: i64) -> Beat {
        let address = address_group(address);
        let mut book = self.book();
        book.expire(now_ms);
        let known = book
            .viewers
            .get(&id)
            .map(|s| (s.address, s.channel.clone()));
        match known {
            Some((known_address, watching)) if known_address == address => {
                if &watching != channel {
                    decrement(&mut book.per_channel, &watching);
                    *book.per_channel.entry(channel.clone()).or_default() += 1;
                }
                let seen = book.viewers.get_mut(&id).expect("known");
                seen.at_ms = now_ms;
                seen.channel = channel.clone();
                return Beat::Counted;
            }
            // The same id from elsewhere (a phone changing networks, or a copied id): it moves.
            Some(_) => book.forget(&id),
            None => {}
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
        *book.per_channel.entry(channel.clone()).or_default() += 1;
        Beat::Counted
    }

    /// Viewers of each channel with any, at `now_ms`.
    pub fn counts(&self, now_ms: i64) -> HashMap<Username, usize> {
        let mut counts = {
            let mut book = self.book();
            book.expire(now_ms);
            book.per_channel.clone()
        };
        // The site's count is a few seconds old; this node's own may be newer, so the larger.
        if let Some(site) = self.site().as_ref() {
            for (channel, n) in &site.counts {
                let here = counts.entry(channel.clone()).or_default();
                *here = (*here).max(*n);
            }
        }
        counts
    }

    /// Viewers of `channel` at `now_ms`.
    pub fn count(&self, channel: &Username, now_ms: i64) -> usize {
        let here = {
            let mut book = self.book();
            book.expire(now_ms);
            book.per_channel.get(channel).copied().unwrap_or(0)
        };
        let site = (self.site().as_ref()).and_then(|s| s.counts.get(channel).copied());
        here.max(site.unwrap_or(0))
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

    /// The counts kept beside the ids agree with counting the ids, through joins, repeats,
    /// channel switches, address changes and expiry.
    #[test]
    fn kept_counts_match_a_recount() {
        let c = ViewerCounter::default();
        let channels = [user("alice"), user("bob"), user("carol")];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut now = T0;
        for _ in 0..20_000 {
            now += next(40) as i64;
            let channel = &channels[next(3) as usize];
            let address = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, next(4) as u8));
            c.beat(channel, id(u128::from(next(60))), address, now);
            if next(50) == 0 {
                let book = c.book();
                for ch in &channels {
                    let recount = book.viewers.values().filter(|s| &s.channel == ch).count();
                    assert_eq!(book.per_channel.get(ch).copied().unwrap_or(0), recount);
                }
                let addresses: usize = book.per_address.values().sum();
                assert_eq!(addresses, book.viewers.len());
                assert!(book.per_address.values().all(|n| *n <= IDS_PER_ADDRESS));
            }
        }
    }

    #[test]
    fn shared_counts_queue_what_counted_here_and_show_the_larger_count() {
        let v = ViewerCounter::default();
        let alice = Username::parse("alice").unwrap();
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let id = |n: u128| ViewerId(n);
        v.beat(&alice, id(1), here, 0);
        assert!(
            v.take_outbox().is_empty(),
            "nothing queued while not sharing"
        );
        v.share();
        v.beat(&alice, id(1), here, 1);
        v.beat(&alice, id(2), here, 2);
        let outbox = v.take_outbox();
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox[&id(1)], alice);
        assert_eq!(id(1).hex(), format!("{:032x}", 1));
        assert!(v.take_outbox().is_empty(), "taken once");
        assert_eq!(
            v.count(&alice, 3),
            2,
            "this node's own until the site's arrives"
        );
        v.set_site_counts(HashMap::from([(alice.clone(), 5)]));
        assert_eq!(v.count(&alice, 3), 5);
        assert_eq!(v.counts(3)[&alice], 5);
        v.set_site_counts(HashMap::from([(alice.clone(), 1)]));
        assert_eq!(
            v.count(&alice, 3),
            2,
            "the site's count may lag this node's"
        );
    }
}
