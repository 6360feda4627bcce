//! Request bodies, read with a size bound and a deadline: a client that trickles a body holds a
//! connection slot for as long as it trickles.

use std::collections::HashMap;

use axum::extract::Request;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::CONTENT_TYPE;

use crate::respond;

/// Largest form or JSON body accepted; larger gets 413.
pub const MAX_BODY: usize = 16 * 1024;

/// Why a body could not be read.
pub enum BodyError {
    /// Larger than [`MAX_BODY`].
    TooLarge,
    /// Not the expected content type or encoding.
    Invalid,
    /// Not all there by the body deadline (`http_body_timeout`).
    TooSlow,
}

/// Reads a request body, bounded by [`MAX_BODY`] and by the request's body deadline: a client
/// that trickles a body held its connection slot for as long as it kept trickling.
pub async fn read_body(req: Request) -> Result<Bytes, BodyError> {
    let deadline = req.extensions().get::<respond::BodyDeadline>().map_or_else(
        || tokio::time::Instant::now() + std::time::Duration::from_secs(10),
        |d| d.0,
    );
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let Ok(collected) = tokio::time::timeout_at(deadline, collect).await else {
        return Err(BodyError::TooSlow);
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Err(_) => Err(BodyError::Invalid),
    }
}

/// Reads an `application/x-www-form-urlencoded` body.
pub async fn read_form(req: Request) -> Result<HashMap<String, String>, BodyError> {
    let is_form = (req.headers().get(CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(BodyError::Invalid);
    }
    let body = read_body(req).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}
