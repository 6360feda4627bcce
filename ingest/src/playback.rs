//! Playback tokens at the origin: the signing secrets (kept in the database, so every process of
//! a site and the operator's CLI see the same ones), the token an authorised viewer is given,
//! and the check the origin makes on a private channel's playlists and keys — the very check the
//! edge filter makes, through `boltstream_shared::token`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use boltstream_shared::token::{self, Secret, TokenError};
use hyper::header::{HeaderMap, HeaderValue, COOKIE};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::{Store, StoreError};

/// How long a playback token lives. Revoking a viewer, a share link or a channel's privacy takes
/// effect within this long: the player asks for a new token every half of it.
pub const TOKEN_TTL_S: u64 = 300;
/// How often the secrets are read again, so a rotation made with the CLI reaches a running server.
pub const REFRESH: Duration = Duration::from_secs(10);

/// The secrets: the newest signs, all verify.
#[derive(Default)]
pub struct PlaybackSecrets {
    secrets: RwLock<Vec<Secret>>,
}

impl PlaybackSecrets {
    /// Loads the secrets (making the first one if the database has none).
    pub fn load(store: &Store) -> Result<Arc<Self>, StoreError> {
        let this = Arc::new(Self::default());
        this.refresh(store)?;
        Ok(this)
    }

    fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let secrets: Vec<Secret> = (store.playback_secrets()?.into_iter())
            .filter_map(|(id, bytes)| Secret::new(id, &bytes).ok())
            .collect();
        *self.secrets.write().unwrap_or_else(|p| p.into_inner()) = secrets;
        Ok(())
    }

    /// A token for `user`'s private channel, and when it expires (Unix seconds).
    pub fn sign(&self, user: &str, now_s: u64) -> Option<(String, u64)> {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let expires = now_s + TOKEN_TTL_S;
        let newest = secrets.first()?;
        Some((token::sign(newest, &token::scope(user), expires), expires))
    }

    /// A fresh token for `user`'s channel as the `Set-Cookie` value the player's browser keeps
    /// (HttpOnly, SameSite=Strict, scoped to the channel's `/private/<user>/` prefix, living as
    /// long as the token), with the token's expiry; `None` without a signing secret.
    pub fn cookie(&self, user: &str, now_s: u64, secure: bool) -> Option<(HeaderValue, u64)> {
        let (token, expires) = self.sign(user, now_s)?;
        let cookie = cookie::Cookie::build((token::COOKIE, token))
            .path(token::scope(user))
            .max_age(time::Duration::seconds(TOKEN_TTL_S as i64))
            .http_only(true)
            .same_site(cookie::SameSite::Strict)
            .secure(secure)
            .build();
        Some((HeaderValue::from_str(&cookie.to_string()).ok()?, expires))
    }

    /// Checks the playback cookies of a request for `scope`.
    pub fn verify(&self, headers: &HeaderMap, scope: &str, now_s: u64) -> Result<(), TokenError> {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let cookies = headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes);
        token::verify_cookies(&secrets, cookies, scope, now_s)
    }
}

/// Reads the secrets again every [`REFRESH`] until shutdown.
pub async fn refresher(
    secrets: Arc<PlaybackSecrets>,
    store: Arc<Store>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (s, st) = (Arc::clone(&secrets), Arc::clone(&store));
        match tokio::task::spawn_blocking(move || s.refresh(&st)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "cannot read the playback secrets; keeping the last ones")
            }
            Err(e) => warn!(error = %e, "the playback secrets task failed"),
        }
    }
}

/// The current time in Unix seconds.
pub fn now_s() -> u64 {
    (crate::clock::now_ms().max(0) / 1000) as u64
}
