//! The RTMP side: a listener that admits connections within the caps, and one task per connection
//! ([`connection`]) so a misbehaving client can only ever end its own connection.
//!
//! - [`session`]: rml_rtmp behind a panic wall.
//! - [`connection`]: the per-connection state machine.

pub mod connection;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::Settings;
use crate::limits::{PerAddressLimit, Throttle};
use crate::live::{Registry, SinkFactory};
use crate::store::Store;

/// What every RTMP connection task shares.
pub struct RtmpContext {
    /// Resolved settings.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Arc<Store>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// Where accepted media goes.
    pub sinks: Arc<dyn SinkFactory>,
    /// Failed-publish throttle.
    pub throttle: Throttle,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Per-address connection cap.
    pub per_ip: Arc<PerAddressLimit>,
    /// Total connection cap.
    pub connections: Arc<Semaphore>,
}

/// Accepts connections until shutdown; each runs on `tracker` so shutdown can wait for them.
pub async fn listen(listener: TcpListener, ctx: Arc<RtmpContext>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %err, "rtmp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = ctx.per_ip.acquire(peer.ip()) else {
            debug!(peer = %peer, "rtmp connection refused: per-address cap reached");
            continue;
        };
        let Ok(permit) = Arc::clone(&ctx.connections).try_acquire_owned() else {
            debug!(peer = %peer, "rtmp connection refused: connection cap reached");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let ctx = Arc::clone(&ctx);
        tracker.spawn(async move {
            let _held = (slot, permit);
            connection::serve(socket, peer, ctx).await;
        });
    }
}
