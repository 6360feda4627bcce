//! What the website's and the API's handlers share: their own context, apart from the HTTP
//! layer's, and the way they call the store.

use std::sync::Arc;

use super::guard;
use crate::config::Settings;
use crate::hls::HlsOutput;
use crate::live::Registry;
use crate::store::Store;

/// What the website and the API handlers share: their own context, apart from the HTTP layer's.
pub struct WebContext {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Database.
    pub store: Arc<Store>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// HLS output (whether a channel plays).
    pub hls: Arc<HlsOutput>,
    /// Live thumbnails (the directory's cards, the player's poster).
    pub thumbs: Arc<crate::thumbs::Thumbnails>,
    /// The RTMP port actually bound (shown to streamers).
    pub rtmp_port: u16,
    /// Log-in and sign-up limits, and the password-hash permits.
    pub guard: guard::AccountGuard,
    /// Signs private channels' playback tokens.
    pub playback: Arc<crate::playback::PlaybackSecrets>,
    /// Chat rooms.
    pub chat: Arc<crate::chat::ChatHub>,
    /// Viewers per channel, from players' heartbeats.
    pub viewers: Arc<crate::viewers::ViewerCounter>,
}

/// Runs a store call on the blocking pool. A panic in it is raised again here, with its own
/// message, rather than turned into an error that would read as a busy database.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
