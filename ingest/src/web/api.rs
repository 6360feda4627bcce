//! `/api/v1/`: the website's operations as JSON, for scripts and the player. Authenticated by an API
//! token (`Authorization: Bearer bst_…`) or a session cookie (then state-changing calls also need
//! the session's `x-csrf-token`). Errors are `{"error": "..."}` with the right status.

use std::sync::Arc;

use boltstream_shared::username::Username;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::session;
use super::WebContext;
use crate::clock::now_ms;
use crate::ops::{self, ActionError, AdminAction};
use crate::respond::{self, Resp};
use crate::store::{LiveRow, StoreError, UserRow};

fn reply(status: StatusCode, value: Value) -> Resp {
    let mut r = respond::body(status, "application/json", value.to_string());
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Resp {
    reply(status, json!({ "error": message }))
}

fn store_error(err: &StoreError) -> Resp {
    match err {
        StoreError::UnknownUser(_) => error(StatusCode::NOT_FOUND, "no such user"),
        StoreError::Locked => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is busy; retry",
        ),
        other => {
            tracing::warn!(error = %other, "api request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("store call panicked")
}

fn channel_json(ctx: &WebContext, username: &str, live: Option<&LiveRow>) -> Value {
    let playable = Username::parse(username)
        .ok()
        .is_some_and(|u| ctx.hls.playlist(&u).is_some() && ctx.hls.is_publishing(&u));
    match live {
        Some(row) => json!({
            "username": username,
            "live": true,
            "playable": playable,
            "since_ms": row.since_ms,
            "uptime_s": (now_ms() - row.since_ms).max(0) / 1000,
            "playlist": format!("/live/{username}/index.m3u8"),
            "viewers": Value::Null,
            "stats": {
                "video_codec": row.stats.video_codec, "audio_codec": row.stats.audio_codec,
                "width": row.stats.width, "height": row.stats.height,
                "fps": row.stats.fps, "bitrate_kbps": row.stats.bitrate_kbps,
            },
        }),
        None => json!({ "username": username, "live": false, "playable": false }),
    }
}

fn me_json(user: &UserRow) -> Value {
    json!({ "username": user.username, "is_admin": user.is_admin, "live": user.live_since_ms.is_some() })
}

/// Who is calling, and whether a state change is allowed (a bearer token, or a session with its
/// CSRF header).
async fn caller(ctx: &Arc<WebContext>, req: &Request<Incoming>) -> Option<(UserRow, bool)> {
    if let Some(user) = session::from_bearer(&ctx.store, req.headers()).await {
        return Some((user, true));
    }
    let (_, s) = session::from_cookie(&ctx.store, req.headers()).await?;
    let csrf_ok = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| session::same(v, &s.csrf));
    Some((s.user, csrf_ok))
}

/// An admin action from the admin page or the API (`<kind>/<name>/<action>`), carried out by
/// [`crate::ops`]. Returns a message for people, or a status and an error.
pub async fn admin_operation(
    ctx: &Arc<WebContext>,
    kind: &str,
    name: &str,
    action: &str,
    by: &str,
) -> Result<String, (StatusCode, String)> {
    let Some(op) = AdminAction::parse(kind, action) else {
        return Err((StatusCode::NOT_FOUND, "unknown operation".into()));
    };
    let (store, registry) = (Arc::clone(&ctx.store), Arc::clone(&ctx.registry));
    let target = name.to_string();
    match blocking(move || ops::admin(&store, Some(&registry), op, &target)).await {
        Ok(user) => {
            tracing::info!(admin = %by, user = %user, operation = %format!("{kind}/{action}"), "admin operation");
            Ok(format!("{action} {user}: done"))
        }
        Err(ActionError::UnknownUser) => Err((StatusCode::NOT_FOUND, "no such user".into())),
        Err(e @ ActionError::NotLive(_)) => Err((StatusCode::CONFLICT, e.to_string())),
        Err(ActionError::Store(e)) => {
            tracing::warn!(error = %e, "admin operation failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy; try again".into(),
            ))
        }
    }
}

/// Routes an API request; `rest` is the path after `/api/v1/`.
pub async fn handle(ctx: &Arc<WebContext>, req: Request<Incoming>, rest: &str) -> Resp {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let method = req.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["channels"]) => live_channels(ctx).await,
        (&Method::GET, ["channels", name]) => one_channel(ctx, name).await,
        (_, ["me", ..] | ["admin", ..]) => signed_in(ctx, &req, &method, &segments).await,
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

async fn live_channels(ctx: &Arc<WebContext>) -> Resp {
    let store = Arc::clone(&ctx.store);
    match blocking(move || store.live_streams()).await {
        Ok(live) => {
            let channels: Vec<Value> = (live.iter())
                .map(|r| channel_json(ctx, &r.username, Some(r)))
                .collect();
            reply(StatusCode::OK, json!({ "channels": channels }))
        }
        Err(e) => store_error(&e),
    }
}

async fn one_channel(ctx: &Arc<WebContext>, name: &str) -> Resp {
    let Ok(user) = Username::parse(name) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let store = Arc::clone(&ctx.store);
    let lookup = user.to_string();
    let found = blocking(
        move || -> Result<Option<(UserRow, Option<LiveRow>)>, StoreError> {
            let Some(row) = store.user(&lookup)? else {
                return Ok(None);
            };
            let live = store.live_stream(&lookup)?;
            Ok(Some((row, live)))
        },
    )
    .await;
    match found {
        Ok(Some((row, live))) if !row.banned => reply(
            StatusCode::OK,
            channel_json(ctx, &row.username, live.as_ref()),
        ),
        Ok(_) => error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => store_error(&e),
    }
}

/// `/api/v1/me/…` and `/api/v1/admin/…`: for a session or an API token.
async fn signed_in(
    ctx: &Arc<WebContext>,
    req: &Request<Incoming>,
    method: &Method,
    segments: &[&str],
) -> Resp {
    let Some((user, may_change)) = caller(ctx, req).await else {
        return error(
            StatusCode::UNAUTHORIZED,
            "sign in or send an API token (Authorization: Bearer …)",
        );
    };
    let store = Arc::clone(&ctx.store);
    let name = user.username.clone();
    match (method, segments) {
        (&Method::GET, ["me"]) => reply(StatusCode::OK, me_json(&user)),
        (&Method::GET, ["me", "tokens"]) => match blocking(move || store.api_tokens(&name)).await {
            Ok(tokens) => {
                let tokens: Vec<Value> = (tokens.iter())
                    .map(|t| json!({ "id": t.id, "created_ms": t.created_ms }))
                    .collect();
                reply(StatusCode::OK, json!({ "tokens": tokens }))
            }
            Err(e) => store_error(&e),
        },
        (&Method::POST | &Method::DELETE, _) if !may_change => error(
            StatusCode::FORBIDDEN,
            "missing or wrong x-csrf-token header",
        ),
        (&Method::POST, ["me", "rotate-key"]) => {
            let registry = Arc::clone(&ctx.registry);
            match blocking(move || ops::rotate_key(&store, Some(&registry), &name)).await {
                Ok(key) => reply(
                    StatusCode::OK,
                    json!({ "stream_key": key, "note": "shown only now; the old key no longer works" }),
                ),
                Err(ActionError::Store(e)) => store_error(&e),
                Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
            }
        }
        (&Method::DELETE, ["me", "tokens", id]) => {
            let id = id.to_string();
            match blocking(move || store.revoke_api_token(&name, &id)).await {
                Ok(true) => reply(StatusCode::OK, json!({ "ok": true })),
                Ok(false) => error(StatusCode::NOT_FOUND, "no such token"),
                Err(e) => store_error(&e),
            }
        }
        (&Method::POST, ["admin", kind, target, action]) => {
            if !user.is_admin {
                return error(StatusCode::FORBIDDEN, "admins only");
            }
            match admin_operation(ctx, kind, target, action, &user.username).await {
                Ok(message) => reply(StatusCode::OK, json!({ "ok": true, "message": message })),
                Err((status, message)) => error(status, &message),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}
