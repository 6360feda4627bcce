//! `/api/v1/`: the website's operations as JSON, for scripts and the player. Authenticated by an API
//! token (`Authorization: Bearer bst_…`) or a session cookie (then state-changing calls also need
//! the session's `x-csrf-token`). Errors are `{"error": "..."}` with the right status.

use std::sync::Arc;

use axum::extract::Request;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::Router;
use boltstream_shared::route::Route;
use boltstream_shared::username::Username;
use hyper::StatusCode;
use serde_json::{json, Value};

use super::body::{read_body, BodyError};
use super::context::{blocking, WebContext};
use super::extract::{ApiCaller, ApiChanger, ClientAddr};
use super::reply::{json, json_error, store_error};
use crate::channel_info::ChannelInfo;
use crate::clock::now_ms;
use crate::ops::{self, ActionError, AdminAction};
use crate::respond::Resp;
use crate::store::{LiveRow, StoreError, UserRow};
use crate::viewers::{Beat, ViewerId, HEARTBEAT_S};

fn channel_json(
    ctx: &WebContext,
    username: &str,
    info: &ChannelInfo,
    live: Option<&LiveRow>,
) -> Value {
    let user = Username::parse(username).ok();
    // Published here, this node knows; published on another node, what that node last reported.
    let here = user.as_ref().is_some_and(|u| ctx.hls.is_publishing(u));
    let (playable, private) = match (here, user.as_ref(), live) {
        (true, Some(u), _) => (ctx.hls.is_playable(u), ctx.hls.is_private(u) == Some(true)),
        (false, _, Some(row)) if ctx.store.is_shared() => (row.stats.playable, row.private),
        _ => (false, false),
    };
    match live {
        Some(row) => json!({
            "username": username,
            "title": info.title,
            "category": info.category,
            "live": true,
            "playable": playable,
            "since_ms": row.since_ms,
            "uptime_s": (now_ms() - row.since_ms).max(0) / 1000,
            "playlist": if private {
                format!("/private/{username}/index.m3u8")
            } else {
                format!("/live/{username}/index.m3u8")
            },
            "viewers": Username::parse(username).map_or(0, |u| ctx.viewers.count(&u, now_ms())),
            "thumbnail": thumbnail_url(ctx, username, Some(row)),
            "stats": {
                "video_codec": row.stats.video_codec, "audio_codec": row.stats.audio_codec,
                "width": row.stats.width, "height": row.stats.height,
                "fps": row.stats.fps, "bitrate_kbps": row.stats.bitrate_kbps,
            },
        }),
        None => json!({
            "username": username,
            "title": info.title,
            "category": info.category,
            "live": false,
            "playable": false,
        }),
    }
}

/// Where a live channel's newest picture is, if it has one yet (never for a private publish):
/// this node's own, or for a stream another node holds what that node last reported (`live`),
/// which this node's origin fetches from it.
pub fn thumbnail_url(ctx: &WebContext, username: &str, live: Option<&LiveRow>) -> Option<String> {
    let user = Username::parse(username).ok()?;
    let id = match ctx.thumbs.latest(&user) {
        Some(id) => id,
        None if ctx.store.is_shared() && !ctx.hls.is_publishing(&user) => {
            live.filter(|row| !row.private)?.stats.thumbnail?
        }
        None => return None,
    };
    Route::Thumbnail { user, id }.canonical_path()
}

fn me_json(user: &UserRow) -> Value {
    json!({ "username": user.username, "is_admin": user.is_admin, "live": user.live_since_ms.is_some() })
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

/// The API's routes, under `/api/v1`. An unknown endpoint, or a known one with another method, is
/// `404 {"error": "no such API endpoint"}`.
pub fn routes() -> Router<Arc<WebContext>> {
    Router::new()
        .route("/channels", get(live_channels))
        .route("/channels/{name}", get(one_channel))
        .route("/channels/{name}/heartbeat", post(heartbeat))
        .route("/channels/{name}/playback", post(playback))
        .route("/channels/{name}/chat", get(super::chat::chat))
        .route("/me/visibility", put(set_visibility))
        .route("/me/viewers", get(allowed_viewers))
        .route(
            "/me/viewers/{name}",
            put(allow_viewer).delete(disallow_viewer),
        )
        .route("/me/share-links", get(share_links).post(create_share_link))
        .route("/me/share-links/{id}", delete(revoke_share_link))
        .route("/me", get(me))
        .route("/me/tokens", get(tokens))
        .route("/me/tokens/{id}", delete(revoke_token))
        .route("/me/rotate-key", post(rotate_key))
        .route("/me/channel", put(set_channel))
        .route("/admin/{kind}/{name}/{action}", post(admin))
        .fallback(no_endpoint)
        .method_not_allowed_fallback(no_endpoint)
}

async fn no_endpoint() -> Resp {
    json_error(StatusCode::NOT_FOUND, "no such API endpoint")
}

async fn live_channels(
    State(ctx): State<Arc<WebContext>>,
    viewer: super::extract::Viewer,
    req: Request,
) -> Resp {
    let caller = caller_name(&ctx, &viewer, req.headers()).await;
    let store = Arc::clone(&ctx.store);
    match blocking(move || visible_live(&store, caller.as_deref())).await {
        Ok(live) => {
            let channels: Vec<Value> = (live.iter())
                .map(|r| channel_json(&ctx, &r.username, &r.info, Some(r)))
                .collect();
            json(StatusCode::OK, json!({ "channels": channels }))
        }
        Err(e) => store_error(&e),
    }
}

async fn one_channel(
    State(ctx): State<Arc<WebContext>>,
    Path(name): Path<String>,
    viewer: super::extract::Viewer,
    req: Request,
) -> Resp {
    let Ok(user) = Username::parse(&name) else {
        return json_error(StatusCode::NOT_FOUND, "no such channel");
    };
    let caller = caller_name(&ctx, &viewer, req.headers()).await;
    let store = Arc::clone(&ctx.store);
    let lookup = user.to_string();
    type Found = Option<(UserRow, ChannelInfo, Option<LiveRow>)>;
    let found = blocking(move || -> Result<Found, StoreError> {
        let Some(row) = store.user(&lookup)? else {
            return Ok(None);
        };
        let viewer = crate::store::Viewer {
            user: caller.as_deref(),
            share_code: None,
        };
        if !store.access(&lookup, viewer)?.may_watch() {
            return Ok(None);
        }
        let info = store.channel_info(&lookup)?.unwrap_or_default();
        let live = store.live_stream(&lookup)?;
        Ok(Some((row, info, live)))
    })
    .await;
    match found {
        Ok(Some((row, info, live))) if !row.banned => json(
            StatusCode::OK,
            channel_json(&ctx, &row.username, &info, live.as_ref()),
        ),
        Ok(_) => json_error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => store_error(&e),
    }
}

/// `POST /api/v1/channels/{name}/heartbeat` with `{"viewer": "<32 hex>"}`: a player watching a
/// live channel says so every [`HEARTBEAT_S`] seconds; the answer is the channel's viewer count.
async fn heartbeat(
    State(ctx): State<Arc<WebContext>>,
    Path(name): Path<String>,
    ClientAddr(client): ClientAddr,
    req: Request,
) -> Resp {
    let Ok(user) = Username::parse(&name) else {
        return json_error(StatusCode::NOT_FOUND, "no such channel");
    };
    let caller = (super::session::from_cookie(&ctx.store, req.headers()).await)
        .map(|(_, s)| s.user.username);
    let (id, share) = match heartbeat_body(req).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    // Live here, or (several nodes) on another node: the edge sends heartbeats to any node.
    let private = match ctx.registry.get(&user) {
        Some(_) => Some(ctx.hls.is_private(&user) == Some(true)),
        None if ctx.store.is_shared() => {
            let (store, channel) = (Arc::clone(&ctx.store), user.to_string());
            blocking(move || match store.holder(&channel)? {
                Some(_) => store.is_private(&channel),
                None => Ok(None),
            })
            .await
            .ok()
            .flatten()
        }
        None => None,
    };
    let Some(private) = private else {
        return json_error(StatusCode::NOT_FOUND, "the channel is not live");
    };
    // A private stream's count is for those who may watch it; anyone else learns nothing, not
    // even that it is live.
    if private {
        let (store, channel) = (Arc::clone(&ctx.store), user.to_string());
        let may = blocking(move || {
            let who = crate::store::Viewer {
                user: caller.as_deref(),
                share_code: share.as_deref(),
            };
            store.access(&channel, who)
        })
        .await;
        if !may.is_ok_and(crate::store::Access::may_watch) {
            return json_error(StatusCode::NOT_FOUND, "the channel is not live");
        }
    }
    let now = now_ms();
    let beat = ctx.viewers.beat(&user, id, client.ip(), now);
    json(
        StatusCode::OK,
        json!({
            "viewers": ctx.viewers.count(&user, now),
            "counted": beat == Beat::Counted,
            "next_s": HEARTBEAT_S,
        }),
    )
}

/// A heartbeat's viewer id and share code. JSON only: another site's page cannot send that
/// without a CORS preflight this API never answers, so it cannot make its visitors' browsers
/// count on a channel they do not watch.
async fn heartbeat_body(req: Request) -> Result<(ViewerId, Option<String>), Resp> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        viewer: String,
        share: Option<String>,
    }
    if let Some(refusal) = not_json(&req) {
        return Err(refusal);
    }
    let body = match read_body(req).await {
        Ok(body) => serde_json::from_slice::<Body>(&body).ok(),
        Err(BodyError::TooLarge) => {
            return Err(json_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))
        }
        Err(_) => None,
    };
    body.and_then(|b| {
        Some((
            ViewerId::parse(&b.viewer)?,
            b.share.filter(|c| c.len() <= 128),
        ))
    })
    .ok_or_else(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            "expected {\"viewer\": 32 hexadecimal characters}",
        )
    })
}

async fn me(caller: ApiCaller) -> Resp {
    json(StatusCode::OK, me_json(&caller.user))
}

async fn tokens(State(ctx): State<Arc<WebContext>>, caller: ApiCaller) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = caller.user.username;
    match blocking(move || store.api_tokens(&name)).await {
        Ok(tokens) => {
            let tokens: Vec<Value> = (tokens.iter())
                .map(|t| json!({ "id": t.id, "created_ms": t.created_ms }))
                .collect();
            json(StatusCode::OK, json!({ "tokens": tokens }))
        }
        Err(e) => store_error(&e),
    }
}

async fn rotate_key(State(ctx): State<Arc<WebContext>>, ApiChanger(user): ApiChanger) -> Resp {
    let (store, registry) = (Arc::clone(&ctx.store), Arc::clone(&ctx.registry));
    let name = user.username;
    match blocking(move || ops::rotate_key(&store, Some(&registry), &name)).await {
        Ok(key) => json(
            StatusCode::OK,
            json!({ "stream_key": key, "note": "shown only now; the old key no longer works" }),
        ),
        Err(ActionError::Store(e)) => store_error(&e),
        Err(e) => json_error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// `PUT /api/v1/me/channel` with `{"title": "...", "category": "..."}`: the caller's channel's
/// title and category, checked as the dashboard checks them.
async fn set_channel(
    State(ctx): State<Arc<WebContext>>,
    ApiChanger(user): ApiChanger,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        title: String,
        category: String,
    }
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return json_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
        }
        Err(BodyError::TooSlow) => return json_error(StatusCode::REQUEST_TIMEOUT, "body too slow"),
        Err(BodyError::Invalid) => return json_error(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let Ok(wanted) = serde_json::from_slice::<Body>(&body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "expected {\"title\": string, \"category\": string}",
        );
    };
    let info = match ChannelInfo::new(&wanted.title, &wanted.category) {
        Ok(info) => info,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let store = Arc::clone(&ctx.store);
    let name = user.username.clone();
    let saved = info.clone();
    match blocking(move || store.set_channel_info(&name, &saved)).await {
        Ok(_) => json(
            StatusCode::OK,
            json!({ "username": user.username, "title": info.title, "category": info.category }),
        ),
        Err(e) => store_error(&e),
    }
}

async fn revoke_token(
    State(ctx): State<Arc<WebContext>>,
    Path(id): Path<String>,
    ApiChanger(user): ApiChanger,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = user.username;
    match blocking(move || store.revoke_api_token(&name, &id)).await {
        Ok(true) => json(StatusCode::OK, json!({ "ok": true })),
        Ok(false) => json_error(StatusCode::NOT_FOUND, "no such token"),
        Err(e) => store_error(&e),
    }
}

async fn admin(
    State(ctx): State<Arc<WebContext>>,
    Path((kind, target, action)): Path<(String, String, String)>,
    ApiChanger(user): ApiChanger,
) -> Resp {
    if !user.is_admin {
        return json_error(StatusCode::FORBIDDEN, "admins only");
    }
    match admin_operation(&ctx, &kind, &target, &action, &user.username).await {
        Ok(message) => json(StatusCode::OK, json!({ "ok": true, "message": message })),
        Err((status, message)) => json_error(status, &message),
    }
}

/// The signed-in caller's name, from the session cookie or an API token.
async fn caller_name(
    ctx: &WebContext,
    viewer: &super::extract::Viewer,
    headers: &hyper::HeaderMap,
) -> Option<String> {
    match viewer.user() {
        Some(s) => Some(s.user.username.clone()),
        None => (super::session::from_bearer(&ctx.store, headers).await).map(|u| u.username),
    }
}

/// The live streams `viewer` may see: a private stream is listed only to those who may watch it.
pub fn visible_live(
    store: &crate::store::Store,
    viewer: Option<&str>,
) -> Result<Vec<LiveRow>, StoreError> {
    let mut visible = Vec::new();
    for row in store.live_streams()? {
        let who = crate::store::Viewer {
            user: viewer,
            share_code: None,
        };
        if store.access(&row.username, who)?.may_watch() {
            visible.push(row);
        }
    }
    Ok(visible)
}

/// Reads a small JSON body as `T`, or the error response to send.
/// The 415 for a request that does not say it carries JSON.
fn not_json(req: &Request) -> Option<Resp> {
    let is_json = (req.headers().get(hyper::header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (!is_json).then(|| json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send application/json"))
}

pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request,
    expected: &str,
) -> Result<T, Resp> {
    if let Some(refusal) = not_json(&req) {
        return Err(refusal);
    }
    match read_body(req).await {
        Ok(body) => {
            serde_json::from_slice(&body).map_err(|_| json_error(StatusCode::BAD_REQUEST, expected))
        }
        Err(BodyError::TooLarge) => {
            Err(json_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))
        }
        Err(BodyError::TooSlow) => Err(json_error(StatusCode::REQUEST_TIMEOUT, "body too slow")),
        Err(BodyError::Invalid) => Err(json_error(StatusCode::BAD_REQUEST, "unreadable body")),
    }
}

/// `POST /api/v1/channels/{name}/playback` with `{}` or `{"share": "<code>"}`: the channel as
/// `GET /api/v1/channels/{name}` shows it, plus where the caller plays it (`playlist`). The player
/// polls this. A private channel's answer also sets the playback-token cookie, scoped to
/// `/private/<name>/` and living [`crate::playback::TOKEN_TTL_S`]; someone who may not watch gets
/// the same 404 as for a channel that does not exist. The share code travels in the body (the
/// page reads it from the URL's fragment), so it reaches no access log.
async fn playback(
    State(ctx): State<Arc<WebContext>>,
    Path(name): Path<String>,
    viewer: super::extract::Viewer,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        share: Option<String>,
    }
    let Ok(user) = Username::parse(&name) else {
        return json_error(StatusCode::NOT_FOUND, "no such channel");
    };
    let bearer = super::session::from_bearer(&ctx.store, req.headers()).await;
    let caller = (viewer.user().map(|s| s.user.username.clone())).or(bearer.map(|u| u.username));
    let body: Body = match json_body(req, "expected {} or {\"share\": string}").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let share = body.share.filter(|c| c.len() <= 128);
    let (access, info, live) = match watchable(&ctx, &user, caller, share).await {
        Ok(Some(found)) => found,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => return store_error(&e),
    };
    let mut body = channel_json(&ctx, user.as_str(), &info, live.as_ref());
    // A channel made public while an encrypted publish runs stays under `/private/` until that
    // publish ends: everyone may watch it then, with a token.
    let encrypted_now = ctx.hls.is_private(&user).unwrap_or(false);
    if access == crate::store::Access::Public && !encrypted_now {
        body["private"] = json!(false);
        body["playlist"] = json!(format!("/live/{user}/index.m3u8"));
        return json(StatusCode::OK, body);
    }
    let now = crate::playback::now_s();
    let secure = ctx.settings.secure_cookies;
    let Some((cookie, expires)) = ctx.playback.cookie(user.as_str(), now, secure) else {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "no signing secret");
    };
    body["private"] = json!(true);
    body["playlist"] = json!(format!("/private/{user}/index.m3u8"));
    body["expires_s"] = json!(expires);
    let mut resp = json(StatusCode::OK, body);
    resp.headers_mut().insert(hyper::header::SET_COOKIE, cookie);
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// What the playback call needs of a channel `caller` (or a share link's holder) may watch;
/// `None` when they may not, or it is banned or unknown (answered alike).
async fn watchable(
    ctx: &WebContext,
    user: &Username,
    caller: Option<String>,
    share: Option<String>,
) -> Result<Option<(crate::store::Access, ChannelInfo, Option<LiveRow>)>, StoreError> {
    let (store, channel) = (Arc::clone(&ctx.store), user.to_string());
    blocking(move || {
        let who = crate::store::Viewer {
            user: caller.as_deref(),
            share_code: share.as_deref(),
        };
        let access = store.access(&channel, who)?;
        let banned = store.user(&channel)?.is_none_or(|row| row.banned);
        if !access.may_watch() || banned {
            return Ok(None);
        }
        let info = store.channel_info(&channel)?.unwrap_or_default();
        Ok(Some((access, info, store.live_stream(&channel)?)))
    })
    .await
}

/// `PUT /api/v1/me/visibility` with `{"private": bool}`. Who gets tokens changes at once; a
/// channel made private while live in the clear is restarted encrypted (see
/// [`crate::store::Store::set_private`]).
async fn set_visibility(
    State(ctx): State<Arc<WebContext>>,
    ApiChanger(user): ApiChanger,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        private: bool,
    }
    let body: Body = match json_body(req, "expected {\"private\": bool}").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let store = Arc::clone(&ctx.store);
    let name = user.username.clone();
    match blocking(move || store.set_private(&name, body.private)).await {
        Ok(restarted) => json(
            StatusCode::OK,
            json!({ "username": user.username, "private": body.private, "stream_restarted": restarted }),
        ),
        Err(e) => store_error(&e),
    }
}

/// `GET /api/v1/me/viewers`: the users the caller's channel allows.
async fn allowed_viewers(State(ctx): State<Arc<WebContext>>, caller: ApiCaller) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = caller.user.username;
    match blocking(move || store.allowed_viewers(&name)).await {
        Ok(names) => json(StatusCode::OK, json!({ "viewers": names })),
        Err(e) => store_error(&e),
    }
}

/// `PUT` / `DELETE /api/v1/me/viewers/{name}`: allow a user, or stop allowing them.
async fn allow_viewer(
    State(ctx): State<Arc<WebContext>>,
    Path(viewer): Path<String>,
    ApiChanger(user): ApiChanger,
) -> Resp {
    change_viewer(ctx, user.username, viewer, true).await
}

async fn disallow_viewer(
    State(ctx): State<Arc<WebContext>>,
    Path(viewer): Path<String>,
    ApiChanger(user): ApiChanger,
) -> Resp {
    change_viewer(ctx, user.username, viewer, false).await
}

async fn change_viewer(ctx: Arc<WebContext>, channel: String, viewer: String, allow: bool) -> Resp {
    let store = Arc::clone(&ctx.store);
    let shown = viewer.clone();
    match blocking(move || store.set_viewer_allowed(&channel, &viewer, allow)).await {
        Ok(()) => json(StatusCode::OK, json!({ "viewer": shown, "allowed": allow })),
        Err(StoreError::UnknownUser(_)) => json_error(StatusCode::NOT_FOUND, "no such user"),
        Err(StoreError::Limit(why)) => json_error(StatusCode::CONFLICT, &why),
        Err(e) => store_error(&e),
    }
}

/// `GET /api/v1/me/share-links`, `POST` with `{"ttl_s": n}` (the code is shown only in this
/// answer), `DELETE /api/v1/me/share-links/{id}`.
async fn share_links(State(ctx): State<Arc<WebContext>>, caller: ApiCaller) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = caller.user.username;
    match blocking(move || store.share_links(&name)).await {
        Ok(links) => json(StatusCode::OK, json!({ "share_links": links })),
        Err(e) => store_error(&e),
    }
}

async fn create_share_link(
    State(ctx): State<Arc<WebContext>>,
    ApiChanger(user): ApiChanger,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        ttl_s: u64,
    }
    let body: Body = match json_body(req, "expected {\"ttl_s\": seconds}").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let ttl_ms = i64::try_from(body.ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let store = Arc::clone(&ctx.store);
    let name = user.username.clone();
    match blocking(move || store.create_share_link(&name, ttl_ms)).await {
        Ok((link, code)) => json(
            StatusCode::OK,
            json!({
                "id": link.id,
                "expires_ms": link.expires_ms,
                "url": format!("/{}#share={code}", user.username),
                "note": "shown only now",
            }),
        ),
        Err(StoreError::Limit(why)) => json_error(StatusCode::BAD_REQUEST, &why),
        Err(e) => store_error(&e),
    }
}

async fn revoke_share_link(
    State(ctx): State<Arc<WebContext>>,
    Path(id): Path<i64>,
    ApiChanger(user): ApiChanger,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = user.username;
    match blocking(move || store.revoke_share_link(&name, id)).await {
        Ok(true) => json(StatusCode::OK, json!({ "ok": true })),
        Ok(false) => json_error(StatusCode::NOT_FOUND, "no such share link"),
        Err(e) => store_error(&e),
    }
}
