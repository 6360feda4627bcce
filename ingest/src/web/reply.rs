//! The website's and the API's answers: HTML pages with their security headers, redirects, error
//! pages, and JSON replies and errors — so handlers and extractors state a decision, not headers.

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use serde_json::{json, Value};

use super::body::BodyError;
use super::views;
use crate::respond::{self, Resp};
use crate::store::{SessionUser, StoreError};

pub fn page(
    status: StatusCode,
    title: &str,
    user: Option<&SessionUser>,
    body: maud::Markup,
) -> Resp {
    html(status, views::layout(title, user, body).into_string())
}

fn html(status: StatusCode, page: String) -> Resp {
    let mut r = respond::body(status, "text/html; charset=utf-8", page);
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub fn redirect(to: &'static str) -> Resp {
    let mut r = respond::text(StatusCode::SEE_OTHER, "see other\n");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

pub fn error_page(
    status: StatusCode,
    user: Option<&SessionUser>,
    title: &str,
    message: &str,
) -> Resp {
    page(status, title, user, views::message(title, message))
}

pub fn body_error(e: BodyError, user: Option<&SessionUser>) -> Resp {
    match e {
        BodyError::TooLarge => error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            user,
            "Too large",
            "That form was larger than this site accepts.",
        ),
        BodyError::TooSlow => error_page(
            StatusCode::REQUEST_TIMEOUT,
            user,
            "Too slow",
            "The form did not arrive in time.",
        ),
        BodyError::Invalid => error_page(
            StatusCode::BAD_REQUEST,
            user,
            "Bad request",
            "That form could not be read.",
        ),
    }
}

pub fn server_error(user: Option<&SessionUser>, err: &StoreError) -> Resp {
    tracing::warn!(error = %err, "website request failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        user,
        "Try again",
        "The server is busy; please try again in a moment.",
    )
}

pub fn json(status: StatusCode, value: Value) -> Resp {
    let mut r = respond::body(status, "application/json", value.to_string());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A JSON error: `{"error": message}`.
pub fn json_error(status: StatusCode, message: &str) -> Resp {
    json(status, json!({ "error": message }))
}

pub fn store_error(err: &StoreError) -> Resp {
    match err {
        StoreError::UnknownUser(_) => json_error(StatusCode::NOT_FOUND, "no such user"),
        StoreError::Locked => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is busy; retry",
        ),
        // Not logged per request: the node's duties say it once per poll while it lasts.
        StoreError::Unavailable => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unreachable; retry",
        ),
        other => {
            tracing::warn!(error = %other, "api request failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
