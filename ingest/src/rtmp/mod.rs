//! The RTMP side: a listener that admits connections within the caps, and one task per connection
//! ([`connection`]) so a misbehaving client can only ever end its own connection.
//!
//! - [`session`]: rml_rtmp behind a panic wall.
//! - [`connection`]: the per-connection state machine.
//! - [`socket`]: reactor-driven until a publish, then polled on the shared tick grid of [`crate::ticks`].

pub mod connection;
pub mod session;
pub mod socket;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::limits::{Admission, Throttle};
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
    /// Connection caps.
    pub admission: Admission,
}

/// Accepts connections until shutdown; each runs on `tracker` so shutdown can wait for them.
pub async fn listen(listener: TcpListener, ctx: Arc<RtmpContext>, tracker: TaskTracker) {
    while let Some((socket, peer, admitted)) = ctx.admission.accept(&listener, &ctx.shutdown).await
    {
        let ctx = Arc::clone(&ctx);
        tracker.spawn(async move {
            let _admitted = admitted;
            connection::serve(socket, peer, ctx).await;
        });
    }
}
