//! The response type every handler returns and small builders for it, so handlers read as
//! decisions rather than header plumbing. A leaf: the origin, the website and the HTTP layer all
//! use it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// A response body: whole bytes, or a file read in chunks as it is sent (a segment too large to
/// read into memory for each request).
pub type Body = http_body_util::Either<Full<Bytes>, FileBody>;

/// A file sent in chunks.
pub type FileBody = http_body_util::StreamBody<
    futures_util::stream::MapOk<
        tokio_util::io::ReaderStream<tokio::fs::File>,
        fn(Bytes) -> hyper::body::Frame<Bytes>,
    >,
>;

/// The response type of every handler.
pub type Resp = Response<Body>;

/// When a request's body must have arrived (`http_body_timeout` after its head), for the handlers
/// that read one.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// The response to a HEAD: the GET's status and headers, its length, no body.
pub fn without_body(response: Resp) -> Resp {
    use hyper::body::Body as _;
    let (mut parts, body) = response.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts
            .headers
            .entry(hyper::header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(len));
    }
    Response::from_parts(parts, full(Bytes::new()))
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Body::Left(Full::new(bytes.into()))
}

/// A plain-text response that is never cached.
pub fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut response = Response::new(full(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A response with a body and content type.
pub fn body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
