//! Chat across the nodes of a site: every frame a room sends is also published on NATS (subject
//! `boltstream.chat.<channel>`), and each node hands what other nodes published to its own members
//! of that room. A room's interface does not change: [`super::room::Room::broadcast`] reaches the
//! room's members on every node, and a single node (no `chat_nats`) keeps its in-process rooms.
//!
//! Core NATS delivers at most once: while the NATS server is unreachable, messages reach only the
//! sender's node (they are stored, and everyone sees them on their next join). The client
//! reconnects by itself; a node starts whether or not NATS is up yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_nats::HeaderMap;
use boltstream_shared::username::Username;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::room::ChatHub;

/// The subject prefix; a room's subject adds its channel's name (usernames are valid tokens).
const SUBJECT: &str = "boltstream.chat";
/// The header naming the node a frame came from, so a node skips its own.
const ORIGIN: &str = "Boltstream-Node";
/// Frames waiting to be published; past it they are dropped (and counted), so a NATS server that
/// stalls cannot make rooms buffer without end.
const QUEUE: usize = 4096;
/// The largest frame taken from NATS: a chat frame is a few hundred bytes.
const MAX_FRAME: usize = 64 * 1024;

/// The publishing side a room sends its frames to.
pub struct Bus {
    tx: mpsc::Sender<(Username, Arc<str>)>,
    dropped: AtomicU64,
    received: Arc<AtomicU64>,
}

impl Bus {
    /// Connects to NATS at `url` as node `node_id`, delivering other nodes' frames to `hub`'s
    /// rooms until `shutdown`.
    pub async fn connect(
        url: &str,
        node_id: &str,
        hub: Arc<ChatHub>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("boltstream {node_id}"))
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        let subscription = client.subscribe(format!("{SUBJECT}.*")).await?;
        let received = Arc::new(AtomicU64::new(0));
        tracker.spawn(deliver(
            subscription,
            node_id.to_string(),
            hub,
            Arc::clone(&received),
            shutdown.clone(),
        ));
        let (tx, rx) = mpsc::channel(QUEUE);
        tracker.spawn(publish(client, node_id.to_string(), rx, shutdown));
        info!("chat fans out across nodes over NATS");
        Ok(Self {
            tx,
            dropped: AtomicU64::new(0),
            received,
        })
    }

    /// Queues a room's frame for the other nodes.
    pub fn send(&self, channel: &Username, frame: Arc<str>) {
        if self.tx.try_send((channel.clone(), frame)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The bus's counters in Prometheus' text format.
    pub fn metrics(&self) -> String {
        format!(
            "# TYPE boltstream_chat_bus_dropped_total counter\nboltstream_chat_bus_dropped_total {}\n\
             # TYPE boltstream_chat_bus_received_total counter\nboltstream_chat_bus_received_total {}\n",
            self.dropped.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

async fn publish(
    client: async_nats::Client,
    node_id: String,
    mut rx: mpsc::Receiver<(Username, Arc<str>)>,
    shutdown: CancellationToken,
) {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, node_id.as_str());
    loop {
        let (channel, frame) = tokio::select! {
            () = shutdown.cancelled() => break,
            next = rx.recv() => match next {
                Some(next) => next,
                None => break,
            },
        };
        let subject = format!("{SUBJECT}.{channel}");
        let payload = bytes::Bytes::copy_from_slice(frame.as_bytes());
        if let Err(err) = client
            .publish_with_headers(subject, headers.clone(), payload)
            .await
        {
            debug!(error = %err, "a chat frame was not published to NATS");
        }
    }
    let _ = client.flush().await;
}

async fn deliver(
    mut subscription: async_nats::Subscriber,
    node_id: String,
    hub: Arc<ChatHub>,
    received: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            next = subscription.next() => match next {
                Some(message) => message,
                None => {
                    warn!("the NATS subscription for chat ended");
                    return;
                }
            },
        };
        let from_here = (message.headers.as_ref())
            .and_then(|h| h.get(ORIGIN))
            .is_some_and(|origin| origin.as_str() == node_id);
        if from_here || message.payload.len() > MAX_FRAME {
            continue;
        }
        let Some(channel) = (message.subject.strip_prefix(SUBJECT))
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|name| Username::parse(name).ok())
        else {
            continue;
        };
        let Ok(frame) = std::str::from_utf8(&message.payload) else {
            continue;
        };
        received.fetch_add(1, Ordering::Relaxed);
        if let Some(room) = hub.room(&channel) {
            room.deliver(Arc::from(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NATS server that stops reading (the publishing task stalls) cannot make rooms buffer
    /// without end: past the queue, frames are dropped and counted, and sending never waits.
    #[test]
    fn a_stalled_bus_drops_past_its_queue_and_counts_it() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let bus = Bus {
            tx,
            dropped: AtomicU64::new(0),
            received: Arc::new(AtomicU64::new(0)),
        };
        let channel = Username::parse("alice").unwrap();
        let frame: Arc<str> = Arc::from("x".repeat(500));
        for _ in 0..QUEUE + 1000 {
            bus.send(&channel, Arc::clone(&frame));
        }
        assert_eq!(bus.dropped.load(Ordering::Relaxed), 1000);
        assert!(bus
            .metrics()
            .contains("boltstream_chat_bus_dropped_total 1000\n"));
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
    }
}
