//! The rooms: one per channel with anyone in it, each a broadcast channel every connection of the
//! room subscribes to. A message is serialised once and shared by every subscriber; a subscriber
//! that falls [`BACKLOG`] frames behind (a client that stopped reading) is dropped by its
//! connection rather than buffered for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use boltstream_shared::username::Username;
use tokio::sync::broadcast;

use super::bus::Bus;
use super::text::Bucket;

/// Frames a connection may be behind before it is dropped.
pub const BACKLOG: usize = 256;
/// Writers whose send rates one room remembers; the oldest is forgotten past this (their next
/// message starts a full bucket, which bounds the memory, not the rate: the rate is also bounded
/// per connection).
const MAX_BUCKETS: usize = 10_000;

/// One channel's room.
pub struct Room {
    /// The channel.
    pub channel: Username,
    tx: broadcast::Sender<Arc<str>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The other nodes' members of this room, when the site has several nodes.
    bus: Option<Arc<Bus>>,
}

impl Room {
    /// Subscribes a connection.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }

    /// Sends a frame to everyone in the room, on every node.
    pub fn broadcast(&self, frame: String) {
        let frame: Arc<str> = Arc::from(frame);
        if let Some(bus) = &self.bus {
            bus.send(&self.channel, Arc::clone(&frame));
        }
        let _ = self.tx.send(frame);
    }

    /// Sends a frame another node broadcast to this node's members of the room.
    pub fn deliver(&self, frame: Arc<str>) {
        let _ = self.tx.send(frame);
    }

    /// Connections in the room.
    pub fn members(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Whether `user` may send a message now (their bucket has a token).
    pub fn may_send(&self, user: &str, now_ms: i64) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(user) {
            buckets.clear();
        }
        (buckets.entry(user.to_string()))
            .or_insert_with(|| Bucket::new(now_ms))
            .take(now_ms)
    }
}

/// Every room with someone in it.
#[derive(Default)]
pub struct ChatHub {
    rooms: Mutex<HashMap<Username, Weak<Room>>>,
    connections: AtomicUsize,
    bus: OnceLock<Arc<Bus>>,
}

/// Counts a connection while it lives.
pub struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ChatHub {
    /// Counts a connection until the returned guard drops.
    pub fn count(&self) -> Counted<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        Counted(&self.connections)
    }

    /// Fans every room out over `bus` too (set once, at start, before anyone joins).
    pub fn set_bus(&self, bus: Bus) {
        let _ = self.bus.set(Arc::new(bus));
    }

    /// The cross-node bus's counters, if there is one (metrics).
    pub fn bus_metrics(&self) -> String {
        self.bus.get().map(|b| b.metrics()).unwrap_or_default()
    }

    /// Open chat connections (a metric).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The channel's room, made if nobody is in it; it lives while a connection holds it.
    pub fn join(&self, channel: &Username) -> Arc<Room> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = rooms.get(channel).and_then(Weak::upgrade) {
            return room;
        }
        // Forget rooms everyone left, so the map holds only rooms in use.
        rooms.retain(|_, r| r.strong_count() > 0);
        let room = Arc::new(Room {
            channel: channel.clone(),
            tx: broadcast::Sender::new(BACKLOG),
            buckets: Mutex::new(HashMap::new()),
            bus: self.bus.get().cloned(),
        });
        rooms.insert(channel.clone(), Arc::downgrade(&room));
        room
    }

    /// The room of a channel, if anyone is in it.
    pub fn room(&self, channel: &Username) -> Option<Arc<Room>> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms.get(channel).and_then(Weak::upgrade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_room_lives_while_someone_is_in_it_and_fans_out_once() {
        let hub = ChatHub::default();
        let alice = Username::parse("alice").unwrap();
        let room = hub.join(&alice);
        let (mut a, mut b) = (room.subscribe(), room.subscribe());
        assert!(Arc::ptr_eq(&room, &hub.join(&alice)));
        room.broadcast("hi".into());
        let (x, y) = (a.recv().await.unwrap(), b.recv().await.unwrap());
        assert!(Arc::ptr_eq(&x, &y), "one copy for every subscriber");
        drop(room);
        assert!(hub.room(&alice).is_none(), "gone once nobody holds it");
    }

    #[tokio::test]
    async fn a_subscriber_that_stops_reading_falls_behind_and_is_told() {
        let hub = ChatHub::default();
        let room = hub.join(&Username::parse("alice").unwrap());
        let mut slow = room.subscribe();
        for i in 0..BACKLOG + 10 {
            room.broadcast(format!("{i}"));
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }

    #[test]
    fn send_rates_are_per_user() {
        let hub = ChatHub::default();
        let room = hub.join(&Username::parse("alice").unwrap());
        assert!((0..5).all(|_| room.may_send("bob", 0)));
        assert!(!room.may_send("bob", 0));
        assert!(room.may_send("carol", 0));
    }
}
