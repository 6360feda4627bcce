//! The origin for live media: playlists and segments from the HLS output (the window in memory, or
//! the disk's reads for a segment that left it), with `shared`'s header policy so an origin used
//! without the edge is already right, and conditional GET so edges revalidate cheaply.

use std::time::{Duration, UNIX_EPOCH};

use boltstream_shared::route::{Access, MediaKind, Route};
use boltstream_shared::username::Username;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use boltstream_shared::policy::Policy;

use boltstream_hls::playlist::SegmentName;

use crate::clock::now_ms;
use crate::hls::lowlatency::LlPlaylist;
use crate::hls::output::SegmentBody;
use crate::hls::HlsOutput;
use crate::nodes::Nodes;
use crate::playback::{now_s, PlaybackSecrets};
use crate::respond::{self, Resp};
use crate::thumbs::Thumbnails;

/// Chunk size when a file is sent in chunks.
const SEND_CHUNK: usize = 64 * 1024;

/// Answers a live route. Only the request's head is read, whatever carries its body.
pub async fn serve<B>(
    hls: &HlsOutput,
    thumbs: &Thumbnails,
    playback: &PlaybackSecrets,
    nodes: &Nodes,
    policy: &Policy,
    route: &Route,
    req: &Request<B>,
) -> Resp {
    let mut response = if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else if let Some(refusal) = token_refusal(playback, route, req) {
        refusal
    } else if let Some(forwarded) = elsewhere(hls, nodes, route, req).await {
        // Past the token check: a viewer without one learns nothing of other nodes either. The
        // holder's answer carries its own policy headers; HEAD was forwarded as HEAD.
        return forwarded;
    } else if let Some(refusal) = refusal(hls, route) {
        refusal
    } else if let Route::Thumbnail { user, id } = route {
        thumbnail(hls, thumbs, user, *id, req)
    } else {
        answer(hls, route, req).await
    };
    let status = response.status().as_u16();
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
    for (name, value) in policy.cors(route) {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    if req.method() == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, respond::full(Bytes::new()));
    }
    response
}

/// A private channel's playlists and keys (live or past) only with a valid playback token — the
/// same check the edge makes, made again here so an origin reached without the edge is as strict.
/// Checked first, whatever the channel's state: a 403 for every request without one, so nobody
/// learns from the status whether a private stream is live or a recording exists.
fn token_refusal<B>(playback: &PlaybackSecrets, route: &Route, req: &Request<B>) -> Option<Resp> {
    let scope = route.token_scope()?;
    if playback.verify(req.headers(), &scope, now_s()).is_err() {
        return Some(respond::text(StatusCode::FORBIDDEN, "forbidden\n"));
    }
    None
}

/// The live channel a route asks for, and under which prefix.
fn live_channel(route: &Route) -> Option<(&Username, Access)> {
    match route {
        Route::LivePlaylist { user, access, .. } | Route::LiveSegment { user, access, .. } => {
            Some((user, *access))
        }
        Route::MediaKey { user, .. } => Some((user, Access::Private)),
        _ => None,
    }
}

/// The answer of the node holding a live stream, or keeping a past broadcast, that this node does
/// not have (see [`Nodes`]).
async fn elsewhere<B>(
    hls: &HlsOutput,
    nodes: &Nodes,
    route: &Route,
    req: &Request<B>,
) -> Option<Resp> {
    // A single node has nobody to ask: its hot path makes none of the checks below.
    if !nodes.is_shared() {
        return None;
    }
    let recording = match route {
        Route::VodPlaylist { user, id, .. }
        | Route::VodSegment { user, id, .. }
        | Route::VodKey { user, id, .. }
        | Route::VodThumbnail { user, id } => Some((user, *id)),
        _ => None,
    };
    if let Some((user, id)) = recording {
        if hls.recordings.keeps(user, id) {
            return None;
        }
        return nodes.forward_recording(user, id, req).await;
    }
    let user = match route {
        Route::Thumbnail { user, .. } => user,
        _ => live_channel(route)?.0,
    };
    if hls.served_under(user).is_some() {
        return None;
    }
    nodes.forward(user, req).await
}

/// Why a live route is not answered with content, if it is not: a channel's live media only
/// under the prefix its current publish has (`/live/` in the clear, `/private/` encrypted).
fn refusal(hls: &HlsOutput, route: &Route) -> Option<Resp> {
    let (user, access) = live_channel(route)?;
    if hls.served_under(user) != Some(access) {
        // A private stream's media is not under `/live/`, a public one's not under `/private/`, a
        // withdrawn one's nowhere: each answered as if it did not exist.
        return Some(respond::text(
            StatusCode::NOT_FOUND,
            "no such live stream or segment\n",
        ));
    }
    None
}

/// The response to a GET or HEAD of a live route, before the policy's headers.
async fn answer<B>(hls: &HlsOutput, route: &Route, req: &Request<B>) -> Resp {
    let not_found = || respond::text(StatusCode::NOT_FOUND, "no such live stream or segment\n");
    match route {
        Route::LivePlaylist {
            user, directives, ..
        } => {
            if let Some(answer) = hls.ll_playlist(user, *directives).await {
                return match answer {
                    LlPlaylist::Ready { body, etag } => {
                        media_response(req, SegmentBody::Bytes(body), &etag, now_ms())
                    }
                    LlPlaylist::BadRequest(why) => respond::text(StatusCode::BAD_REQUEST, why),
                    LlPlaylist::Timeout => respond::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the requested part did not appear in time\n",
                    ),
                };
            }
            if hls.is_low_latency(user) {
                return not_found(); // nothing listed yet
            }
            if !directives.is_empty() {
                // The MPEG-TS playlist does not offer blocking reload (no CAN-BLOCK-RELOAD), so a
                // request that asks to block is refused rather than answered with a playlist that
                // may not hold what it asked for — which an edge would then keep under that
                // request's key.
                return respond::text(
                    StatusCode::BAD_REQUEST,
                    "this playlist does not support blocking reload\n",
                );
            }
            match hls.playlist(user) {
                Some(p) => media_response(req, SegmentBody::Bytes(p.body), &p.etag, p.modified_ms),
                None => not_found(),
            }
        }
        Route::LiveSegment {
            user, name, kind, ..
        } => {
            let found = match kind {
                MediaKind::Ts => hls.segment(user, name).await,
                MediaKind::Fmp4 => match cmaf_name(name) {
                    Some((segment, None)) => hls.ll_segment(user, segment),
                    Some((segment, Some(part))) => hls.ll_part(user, segment, part).await,
                    None => None,
                }
                .map(|bytes| (SegmentBody::Bytes(bytes), now_ms())),
                MediaKind::Init => (name.strip_prefix("init"))
                    .and_then(|id| id.parse().ok())
                    .and_then(|id| hls.ll_init(user, id))
                    .map(|bytes| (SegmentBody::Bytes(bytes), now_ms())),
            };
            match found {
                // Media names never repeat, so the name is the entity tag.
                Some((body, modified_ms)) => {
                    media_response(req, body, &format!("\"{name}\""), modified_ms)
                }
                None => not_found(),
            }
        }
        Route::VodPlaylist { .. }
        | Route::VodSegment { .. }
        | Route::VodKey { .. }
        | Route::VodThumbnail { .. } => past_broadcast(hls, route, req).await,
        Route::MediaKey { user, id } => match hls.media_key(user, *id) {
            Some(key) => key_response(key),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// An AES-128 key's body.
fn key_response(key: [u8; 16]) -> Resp {
    let mut r = Response::new(respond::full(Bytes::copy_from_slice(&key)));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(key.len()));
    r
}

/// A past broadcast's playlist, media file, key or picture, from its recording on disk.
async fn past_broadcast<B>(hls: &HlsOutput, route: &Route, req: &Request<B>) -> Resp {
    match route {
        Route::VodPlaylist { user, access, id } => match hls.vod_playlist(user, *access, *id).await
        {
            // A finished recording's playlist never changes: its id is its validator.
            Some(body) => media_response(
                req,
                SegmentBody::Bytes(body),
                &format!("\"vod-{id}\""),
                *id as i64,
            ),
            None => respond::text(StatusCode::NOT_FOUND, "no such recording\n"),
        },
        Route::VodSegment {
            user,
            access,
            id,
            name,
            kind,
        } => {
            let file = format!("{name}.{}", kind.extension());
            match hls.vod_file(user, *access, *id, file).await {
                Some((body, modified_ms)) => {
                    media_response(req, body, &format!("\"{name}\""), modified_ms)
                }
                None => respond::text(StatusCode::NOT_FOUND, "no such recording or file\n"),
            }
        }
        Route::VodKey { user, id, key } => match hls.vod_key(user, *id, *key).await {
            Some(key) => key_response(key),
            None => respond::text(StatusCode::NOT_FOUND, "no such recording or key\n"),
        },
        Route::VodThumbnail { user, id } => {
            let file = crate::record::THUMB.into();
            match hls.vod_file(user, Access::Public, *id, file).await {
                Some((body, modified_ms)) => {
                    media_response(req, body, &format!("\"thumb-{id}\""), modified_ms)
                }
                None => respond::text(StatusCode::NOT_FOUND, "no such picture\n"),
            }
        }
        _ => respond::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A public channel's picture while its publish is live and public; a picture id is never
/// reused, so it is its own entity tag.
fn thumbnail<B>(
    hls: &HlsOutput,
    thumbs: &Thumbnails,
    user: &Username,
    id: u64,
    req: &Request<B>,
) -> Resp {
    let public = hls.served_under(user) == Some(Access::Public);
    match thumbs.get(user, id).filter(|_| public) {
        Some(jpeg) => media_response(
            req,
            SegmentBody::Bytes(jpeg),
            &format!("\"{id}\""),
            id as i64,
        ),
        None => respond::text(StatusCode::NOT_FOUND, "no such thumbnail\n"),
    }
}

/// `<segment>` or `<segment>.<part>`, as the low-latency output names them.
fn cmaf_name(name: &str) -> Option<(SegmentName, Option<usize>)> {
    match name.split_once('.') {
        Some((segment, part)) => {
            Some((SegmentName(segment.parse().ok()?), Some(part.parse().ok()?)))
        }
        None => Some((SegmentName(name.parse().ok()?), None)),
    }
}

fn media_response<B>(req: &Request<B>, content: SegmentBody, etag: &str, modified_ms: i64) -> Resp {
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
            SegmentBody::Bytes(body) => {
                let len = body.len() as u64;
                (respond::full(body), len)
            }
            SegmentBody::File { file, len } => {
                use futures_util::TryStreamExt as _;
                let frame: fn(Bytes) -> hyper::body::Frame<Bytes> = hyper::body::Frame::data;
                let chunks = tokio_util::io::ReaderStream::with_capacity(file, SEND_CHUNK);
                let body = http_body_util::StreamBody::new(chunks.map_ok(frame));
                (respond::Body::Right(body), len)
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
