//! The origin for live media: playlists and segments from the HLS output's memory (disk only for a
//! segment that has left memory but is still on disk, and then through a small cache of recently
//! read segments, since every viewer of a stream asks for the same few), with `shared`'s header
//! policy so an origin used without the edge is already right, and conditional GET so edges
//! revalidate cheaply.

use std::time::{Duration, UNIX_EPOCH};

use boltstream_shared::route::Route;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{respond, HttpContext, Resp};

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
                .map(|p| (p.body, p.etag, p.modified_ms)),
            Route::LiveSegment { user, name } => match ctx.hls.segment(user, name) {
                Some(s) => Some((s.body, format!("\"{name}\""), s.modified_ms)),
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
        return Response::from_parts(parts, Full::new(Bytes::new()));
    }
    response
}

async fn from_disk(
    ctx: &HttpContext,
    user: &boltstream_shared::username::Username,
    name: &str,
) -> Option<(Bytes, String, i64)> {
    if let Some(hit) = ctx.hls.cached(user, name) {
        return Some((hit.body, format!("\"{name}\""), hit.modified_ms));
    }
    // The path is built from a validated username and segment name: no traversal possible.
    let path = ctx.hls.segment_path(user, name);
    // One trip to the blocking pool for open, stat and read: each trip is a thread hand-off.
    let (body, modified) = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let mut body = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
        file.read_to_end(&mut body).ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_millis() as i64;
        Some((body, modified))
    })
    .await
    .ok()??;
    let body = Bytes::from(body);
    ctx.hls.cache(
        user,
        name,
        crate::hls::output::SegmentSnapshot {
            body: body.clone(),
            modified_ms: modified,
        },
    );
    Some((body, format!("\"{name}\""), modified))
}

fn media_response(req: &Request<Incoming>, body: Bytes, etag: &str, modified_ms: i64) -> Resp {
    let modified = UNIX_EPOCH + Duration::from_millis(modified_ms.max(0) as u64);
    let last_modified = httpdate::fmt_http_date(modified);
    let not_modified = match req.headers().get(header::IF_NONE_MATCH) {
        Some(tags) => tags
            .to_str()
            .is_ok_and(|t| t.split(',').any(|t| t.trim() == etag || t.trim() == "*")),
        None => req
            .headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                modified_ms / 1000
                    <= since
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0)
            }),
    };
    let mut response = if not_modified {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let len = body.len();
        let mut r = Response::new(Full::new(body));
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
