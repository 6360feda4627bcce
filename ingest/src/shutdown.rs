//! The graceful-stop signal: SIGTERM or Ctrl-C cancels one token that every listener and connection
//! watches, so publishers are disconnected cleanly and playlists are ended before exit.

use tokio_util::sync::CancellationToken;
use tracing::info;

/// Cancels `token` on SIGTERM or SIGINT.
pub async fn on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => info!("SIGINT received, shutting down"),
                    _ = term.recv() => info!("SIGTERM received, shutting down"),
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
                info!("SIGINT received, shutting down");
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        info!("SIGINT received, shutting down");
    }
    token.cancel();
}
