//! Who is asking: session cookies (HttpOnly, SameSite=Lax, Secure when configured), API bearer
//! tokens, and CSRF tokens — per session for signed-in forms, a double-submit cookie for the
//! sign-up and log-in forms that come before a session exists.

use std::sync::Arc;

use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE};
use hyper::HeaderMap;

use crate::store::{SessionUser, Store, UserRow};

/// The session cookie.
pub const SESSION_COOKIE: &str = "bs_session";
/// The pre-session CSRF cookie.
pub const CSRF_COOKIE: &str = "bs_csrf";
/// Marks a browser that logged in to an account before (see [`super::guard`]).
pub const DEVICE_COOKIE: &str = "bs_device";

/// A cookie value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// A `Set-Cookie` value.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("cookie values are token characters")
}

/// Equal-time comparison, so a CSRF token cannot be guessed byte by byte from timing.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The signed-in user, if the session cookie is valid.
pub async fn from_cookie(store: &Arc<Store>, headers: &HeaderMap) -> Option<(String, SessionUser)> {
    let token = cookie(headers, SESSION_COOKIE)?.to_string();
    let store = Arc::clone(store);
    let lookup = token.clone();
    let user = tokio::task::spawn_blocking(move || store.session(&lookup))
        .await
        .ok()?
        .ok()??;
    Some((token, user))
}

/// The user of an `Authorization: Bearer` API token.
pub async fn from_bearer(store: &Arc<Store>, headers: &HeaderMap) -> Option<UserRow> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim().to_string();
    if token.len() > 128 {
        return None;
    }
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || store.api_token_user(&token))
        .await
        .ok()?
        .ok()?
}
