//! The website and JSON API: everything the HTTP side serves that is not live media or internal.
//! Server-rendered pages (no SPA), a small embedded player script, and `/api/v1/` for the same
//! operations.
//!
//! - [`pages`]: HTML pages and forms.
//! - [`api`]: the JSON API.
//! - [`session`]: cookies, API tokens, CSRF.
//! - [`assets`]: embedded hls.js, player script and stylesheet.
//! - [`guard`]: log-in and sign-up limits, and the bound on password hashing.
//! - [`views`]: the HTML, as templates that escape every value.

pub mod api;
pub mod assets;
pub mod guard;
pub mod pages;
pub mod session;
pub mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, StatusCode};

use crate::config::Settings;
use crate::hls::HlsOutput;
use crate::live::Registry;
use crate::respond::{self, Resp};
use crate::store::Store;

/// What the website and the API handlers share: their own context, apart from the HTTP layer's.
pub struct WebContext {
    /// Settings.
    pub settings: Arc<Settings>,
    /// Database.
    pub store: Arc<Store>,
    /// Live publishes of this process.
    pub registry: Arc<Registry>,
    /// HLS output (whether a channel plays).
    pub hls: Arc<HlsOutput>,
    /// The RTMP port actually bound (shown to streamers).
    pub rtmp_port: u16,
    /// Log-in and sign-up limits, and the password-hash permits.
    pub guard: guard::AccountGuard,
}

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
pub async fn read_body(req: Request<Incoming>) -> Result<Bytes, BodyError> {
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
pub async fn read_form(req: Request<Incoming>) -> Result<HashMap<String, String>, BodyError> {
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(BodyError::Invalid);
    }
    let body = read_body(req).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// Routes a website or API request.
pub async fn handle(ctx: &Arc<WebContext>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let path = req.uri().path().to_string();
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        let rest = rest.to_string();
        return api::handle(ctx, req, &rest).await;
    }
    match path.as_str() {
        "/static/hls.min.js" => asset(assets::HLS_JS, "text/javascript; charset=utf-8"),
        "/static/hls.js.LICENSE" => asset(
            assets::HLS_JS_LICENSE.as_bytes(),
            "text/plain; charset=utf-8",
        ),
        "/static/player.js" => asset(
            assets::PLAYER_JS.as_bytes(),
            "text/javascript; charset=utf-8",
        ),
        "/static/style.css" => asset(assets::STYLE_CSS.as_bytes(), "text/css; charset=utf-8"),
        "/favicon.ico" => respond::text(StatusCode::NOT_FOUND, "not found\n"),
        _ => pages::handle(ctx, req, &path, peer).await,
    }
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
