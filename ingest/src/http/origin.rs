//! The origin for live media: playlists and segments from the HLS output's memory (disk only for a
//! segment that has left memory but is still on disk, and then through a small cache of recently
//! read segments, since every viewer of a stream asks for the same few), with `shared`'s header
//! policy so an origin used without the edge is already right, and conditional GET so edges
//! revalidate cheaply.

use std::time::{Duration, UNIX_EPOCH};

use boltstream_shared::route::Route;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{respond, HttpContext, Resp};

/// A segment file larger than this is sent in chunks as it is read, not read into memory for each
/// request (nor cached): segments are bounded (`hls_max_bitrate_mbps` × the longest segment, 187 MB
/// by default), and a few viewers of one huge one must not cost its size each.
const READ_WHOLE_UP_TO: u64 = 4 << 20;
/// Chunk size when a file is sent in chunks.
const SEND_CHUNK: usize = 64 * 1024;

/// What a media response carries.
enum Content {
    Bytes(Bytes),
    File { file: tokio::fs::File, len: u64 },
}

/// Answers a live route.
pub async fn serve(ctx: &HttpContext, route: &Route, req: &Request<Incoming>) -> Resp {
    let mut response = if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        let found = match route {
            Route::LivePlaylist { user } => ctx
                .hls
                .playlist(user)
                .map(|p| (Content::Bytes(p.body), p.etag, p.modified_ms)),
            Route::LiveSegment { user, name } => match ctx.hls.segment(user, name) {
                Some(s) => Some((Content::Bytes(s.body), format!("\"{name}\""), s.modified_ms)),
                None => from_disk(ctx, user, name).await,
            },
            _ => None,
        };
        match found {
            Some((body, etag, modified_ms)) => media_response(req, body, &etag, modified_ms),
            None => respond::text(StatusCode::NOT_FOUND, "no such live stream or segment\n"),
        }
    };
    let status = response.status().as_u16();
    let policy = &ctx.settings.policy;
    let headers = response.headers_mut();
    if let Some(cc) = policy.cache_control(route, status) {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(cc).expect("policy values are header-safe"),
        );
    }
    if let Some(ct) = policy.content_type(route, status) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if let Some((name, value)) = policy.cors(route) {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if req.method() == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, respond::full(Bytes::new()));
    }
    response
}

async fn from_disk(
    ctx: &HttpContext,
    user: &boltstream_shared::username::Username,
    name: &str,
) -> Option<(Content, String, i64)> {
    let etag = format!("\"{name}\"");
    if let Some(hit) = ctx.hls.cached(user, name) {
        return Some((Content::Bytes(hit.body), etag, hit.modified_ms));
    }
    // The path is built from a validated username and segment name: no traversal possible.
    let path = ctx.hls.segment_path(user, name);
    // One trip to the blocking pool for open, stat and (for all but huge files) read: each trip
    // is a thread hand-off.
    let (content, modified) = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_millis() as i64;
        if meta.len() > READ_WHOLE_UP_TO {
            let file = tokio::fs::File::from_std(file);
            return Some((
                Content::File {
                    file,
                    len: meta.len(),
                },
                modified,
            ));
        }
        let mut body = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
        file.read_to_end(&mut body).ok()?;
        Some((Content::Bytes(Bytes::from(body)), modified))
    })
    .await
    .ok()??;
    if let Content::Bytes(body) = &content {
        ctx.hls.cache(
            user,
            name,
            crate::hls::output::SegmentSnapshot {
                body: body.clone(),
                modified_ms: modified,
            },
        );
    }
    Some((content, etag, modified))
}

fn media_response(req: &Request<Incoming>, content: Content, etag: &str, modified_ms: i64) -> Resp {
    let modified = UNIX_EPOCH + Duration::from_millis(modified_ms.max(0) as u64);
    let last_modified = httpdate::fmt_http_date(modified);
    let not_modified = is_not_modified(
        req.headers()
            .get(header::IF_NONE_MATCH)
            .map(|v| v.to_str().unwrap_or("")),
        req.headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok()),
        etag,
        modified_ms,
    );
    let mut response = if not_modified {
        let mut r = Response::new(respond::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let (body, len) = match content {
            Content::Bytes(body) => {
                let len = body.len() as u64;
                (respond::full(body), len)
            }
            Content::File { file, len } => {
                use futures_util::TryStreamExt as _;
                let frame: fn(Bytes) -> hyper::body::Frame<Bytes> = hyper::body::Frame::data;
                let chunks = tokio_util::io::ReaderStream::with_capacity(file, SEND_CHUNK);
                let body = http_body_util::StreamBody::new(chunks.map_ok(frame));
                (super::Body::Right(body), len)
            }
        };
        let mut r = Response::new(body);
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    response
}

/// Whether a conditional GET may be answered 304. The entity tag is exact; `Last-Modified` has whole
/// seconds, and a playlist changes several times a second, so a date alone proves the copy fresh
/// only when the object changed before the second it names began — never a stale 304.
fn is_not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    modified_ms: i64,
) -> bool {
    if let Some(tags) = if_none_match {
        return tags.split(',').any(|t| t.trim() == etag || t.trim() == "*");
    }
    if_modified_since
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|since| since.duration_since(UNIX_EPOCH).ok())
        .is_some_and(|since| modified_ms < since.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revalidation_is_never_stale() {
        let date = |ms: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms));
        // The client's copy is from 10.2 s ("10 s"); the playlist changed again at 10.7 s.
        let sent = date(10_200);
        assert!(!is_not_modified(None, Some(&sent), "\"b\"", 10_700));
        // Changed before the named second began: the copy is fresh.
        assert!(is_not_modified(None, Some(&date(11_000)), "\"b\"", 10_700));
        // Entity tags decide exactly, and win over the date.
        assert!(is_not_modified(Some("\"a\", \"b\""), None, "\"b\"", 0));
        assert!(!is_not_modified(
            Some("\"a\""),
            Some(&date(99_000)),
            "\"b\"",
            0
        ));
        assert!(!is_not_modified(None, Some("not a date"), "\"b\"", 0));
        assert!(!is_not_modified(None, None, "\"b\"", 0));
    }
}
