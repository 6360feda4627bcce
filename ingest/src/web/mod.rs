//! The website and JSON API: everything the HTTP side serves that is not live media or internal.
//! Server-rendered pages (no SPA), a small embedded player script, and `/api/v1/` for the same
//! operations, routed by axum: the routes are one table ([`router`]), and what each handler
//! requires is in its extractors ([`extract`]).
//!
//! - [`context`]: what the handlers share.
//! - [`pages`]: HTML pages and forms.
//! - [`api`]: the JSON API.
//! - [`extract`]: sessions, admins, CSRF-checked forms and API callers.
//! - [`body`]: request bodies, bounded in size and time.
//! - [`reply`]: pages, redirects, error pages and JSON, with their headers.
//! - [`session`]: cookies, API tokens, CSRF tokens.
//! - [`assets`]: embedded hls.js, player script and stylesheet.
//! - [`guard`]: log-in and sign-up limits, and the bound on password hashing.
//! - [`views`]: the HTML, as templates that escape every value.

pub mod api;
pub mod assets;
pub mod body;
pub mod chat;
pub mod context;
pub mod extract;
pub mod guard;
pub mod pages;
pub mod recordings;
pub mod reply;
pub mod session;
pub mod views;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

use crate::respond::{self, Resp};

pub use context::WebContext;

/// Every website and API route. GET routes answer HEAD too (axum drops the body and keeps the
/// length).
pub fn router(ctx: Arc<WebContext>) -> Router {
    Router::new()
        .route(
            "/static/hls.min.js",
            get(|| async { asset(assets::HLS_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/hls.js.LICENSE",
            get(|| async {
                asset(
                    assets::HLS_JS_LICENSE.as_bytes(),
                    "text/plain; charset=utf-8",
                )
            }),
        )
        .route(
            "/static/chat.js",
            get(|| async { asset(assets::CHAT_JS.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/player.js",
            get(|| async {
                asset(
                    assets::PLAYER_JS.as_bytes(),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .route(
            "/static/vod.js",
            get(|| async { asset(assets::VOD_JS.as_bytes(), "text/javascript; charset=utf-8") }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset(assets::STYLE_CSS.as_bytes(), "text/css; charset=utf-8") }),
        )
        .route(
            "/favicon.ico",
            get(|| async { respond::text(StatusCode::NOT_FOUND, "not found\n") }),
        )
        .merge(pages::routes())
        .merge(recordings::page_routes())
        .nest("/api/v1", api::routes().merge(recordings::api_routes()))
        .with_state(ctx)
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Resp {
    let mut r = respond::body(StatusCode::OK, content_type, Bytes::from_static(bytes));
    // Assets change only with the binary; an hour keeps upgrades visible soon enough.
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}
