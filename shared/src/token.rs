//! Signed playback tokens: what lets a viewer fetch a private channel's playlists and media keys
//! through an edge that has no database. The origin signs a token for one channel and an expiry
//! with a secret it shares with the edge; the edge's filter and the origin verify it with this
//! same code, so they cannot disagree on what a valid token is.
//!
//! The style is Akamai EdgeAuth's and nginx `secure_link`'s: an HMAC over the path prefix it grants
//! and its expiry. Wire form: `<expires>.<key id>.<signature>` — expiry in Unix seconds, the id
//! (0–9) of the secret that signed it (so a secret can be rotated with both accepted for a while),
//! and HMAC-SHA256 over `bs-playback-v1`, the scope and the expiry, base64url without padding.
//! The scope is not in the token: the verifier derives it from the request (the channel's
//! `/private/<user>/` prefix, [`scope`]), so a token for one channel is worthless for another.

use alloc::string::String;
use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: a signature made for anything else never verifies as a playback token.
const CONTEXT: &[u8] = b"bs-playback-v1";
/// The longest token accepted (a valid one is at most 20 + 1 + 1 + 1 + 43 = 66 characters);
/// anything longer is refused before any hashing.
pub const MAX_TOKEN_LEN: usize = 96;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Base64url characters of a full HMAC-SHA256 signature.
const SIGNATURE_LEN: usize = 43;

/// A signing secret and its id.
#[derive(Clone)]
pub struct Secret {
    id: u8,
    bytes: alloc::vec::Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: a secret must not reach a log through a debug print.
        write!(f, "Secret {{ id: {}, .. }}", self.id)
    }
}

/// Why a secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretError {
    /// Fewer than [`MIN_SECRET_LEN`] bytes.
    TooShort,
    /// An id past 9.
    BadId,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::TooShort => {
                write!(f, "a signing secret needs at least {MIN_SECRET_LEN} bytes")
            }
            SecretError::BadId => f.write_str("a signing secret's id is a digit, 0 to 9"),
        }
    }
}

impl Secret {
    /// A secret with id `id` (0–9).
    pub fn new(id: u8, bytes: &[u8]) -> Result<Self, SecretError> {
        if id > 9 {
            return Err(SecretError::BadId);
        }
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        Ok(Self {
            id,
            bytes: bytes.to_vec(),
        })
    }

    /// Its id.
    pub fn id(&self) -> u8 {
        self.id
    }

    fn mac(&self, scope: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(CONTEXT);
        mac.update(b"\n");
        mac.update(scope.as_bytes());
        mac.update(b"\n");
        let mut digits = [0u8; 20];
        mac.update(decimal(expires, &mut digits));
        mac
    }
}

/// The cookie that carries a playback token. A cookie, not a query parameter: players fetch
/// relative URLs from the playlist (a query on the playlist would not reach its keys), and access
/// logs record query strings but not cookies, so the token never lands in a log line.
pub const COOKIE: &str = "bs_play";
/// How many `bs_play` cookies of one request are tried: a browser sends the one for the channel's
/// path, but a client can send many, and each costs an HMAC.
pub const MAX_COOKIES_TRIED: usize = 4;

/// The path prefix a token for `user`'s private channel grants, and the path its cookie is
/// scoped to.
pub fn scope(user: &str) -> String {
    alloc::format!("/private/{user}/")
}

/// Why a token was refused. Every variant means 403; they are told apart for tests and metrics,
/// never shown to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// No token at all.
    Missing,
    /// Not `<expires>.<id>.<signature>` (or longer than [`MAX_TOKEN_LEN`]).
    Malformed,
    /// Signed with a secret id this verifier does not hold.
    UnknownKey,
    /// The signature does not match this scope and expiry.
    BadSignature,
    /// Past its expiry.
    Expired,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenError::Missing => "no playback token",
            TokenError::Malformed => "malformed playback token",
            TokenError::UnknownKey => "playback token signed with an unknown key",
            TokenError::BadSignature => "playback token does not match",
            TokenError::Expired => "playback token expired",
        })
    }
}

/// A token granting `scope` (a path prefix, e.g. `/live/alice/`) until `expires` (Unix seconds).
pub fn sign(secret: &Secret, scope: &str, expires: u64) -> String {
    let tag = secret.mac(scope, expires).finalize().into_bytes();
    let mut out = String::with_capacity(8 + 20 + SIGNATURE_LEN);
    let mut digits = [0u8; 20];
    out.push_str(core::str::from_utf8(decimal(expires, &mut digits)).expect("digits"));
    out.push('.');
    out.push(char::from(b'0' + secret.id));
    out.push('.');
    base64url(&tag, &mut out);
    out
}

/// Checks `token` for `scope` at `now` (Unix seconds) against the secrets held (one, or two while a
/// secret is rotated). Constant-time in the signature.
pub fn verify(secrets: &[Secret], token: &str, scope: &str, now: u64) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut fields = token.split('.');
    let (Some(expires), Some(id), Some(signature), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(TokenError::Malformed);
    };
    let expires = parse_decimal(expires).ok_or(TokenError::Malformed)?;
    let id = match id.as_bytes() {
        [d @ b'0'..=b'9'] => d - b'0',
        _ => return Err(TokenError::Malformed),
    };
    if signature.len() != SIGNATURE_LEN {
        return Err(TokenError::Malformed);
    }
    let tag = decode_base64url_32(signature).ok_or(TokenError::Malformed)?;
    let secret = (secrets.iter())
        .find(|s| s.id == id)
        .ok_or(TokenError::UnknownKey)?;
    secret
        .mac(scope, expires)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if now >= expires {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Checks the playback cookies among `cookie_headers` (each a `Cookie` header's value; HTTP/2 may
/// split one into several) for `scope` at `now`: accepted when one of the first
/// [`MAX_COOKIES_TRIED`] verifies. The origin and the edge both call this, so they read cookies
/// alike.
pub fn verify_cookies<'a>(
    secrets: &[Secret],
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    scope: &str,
    now: u64,
) -> Result<(), TokenError> {
    let mut outcome = Err(TokenError::Missing);
    let values = cookie_headers
        .into_iter()
        .flat_map(|header| header.split(|&b| b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == COOKIE.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
        .take(MAX_COOKIES_TRIED);
    for value in values {
        let Ok(token) = core::str::from_utf8(value) else {
            outcome = Err(TokenError::Malformed);
            continue;
        };
        outcome = verify(secrets, token, scope, now);
        if outcome.is_ok() {
            break;
        }
    }
    outcome
}

/// `n` in decimal, in `buf`'s tail.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A canonical decimal (digits only, no leading zero unless `0`, fits in u64): one spelling per
/// number, so a token cannot be re-encoded into another valid one.
fn parse_decimal(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 20 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding. Written here rather than taken from a crate: 20 lines for the one
/// fixed-size case, and the filter's wasm stays small.
fn base64url(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
}

/// The 32 bytes of a 43-character unpadded base64url signature; `None` for anything else, and for
/// a non-canonical last character (its unused low bits set), so each signature has one spelling.
fn decode_base64url_32(text: &str) -> Option<[u8; 32]> {
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32);
    let chars = text.as_bytes();
    if chars.len() != SIGNATURE_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    let mut at = 0;
    for chunk in chars.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        if bytes < 3 && n & (0xff_ffff >> (8 * bytes)) != 0 {
            return None;
        }
        for i in 0..bytes {
            out[at] = (n >> (16 - 8 * i)) as u8;
            at += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
