//! Response builders, so handlers read as decisions rather than header plumbing.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{Body, Resp};

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
