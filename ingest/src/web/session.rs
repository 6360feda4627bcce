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

/// A cookie value from the request: only the token characters this site ever sets, so a value
/// is safe to hash, log as absent, or compare.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure when the site is served over
/// HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let built = cookie::Cookie::build((name, value))
        .path("/")
        .max_age(time::Duration::seconds(max_age_s))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .build();
    HeaderValue::from_str(&built.to_string()).expect("cookie values are token characters")
}

/// Equal-time comparison, so a CSRF token cannot be guessed byte by byte from timing.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_strictly_and_set_with_every_flag() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; bs_session=abc_123"));
        headers.append(COOKIE, HeaderValue::from_static("bs_csrf=x%20y; junk"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc_123"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), None, "not a token");
        assert_eq!(cookie(&headers, "missing"), None);
        let set = set_cookie(SESSION_COOKIE, "tok", 60, true);
        let set = set.to_str().unwrap();
        for part in [
            "bs_session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "", 0, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
