//! Past broadcasts on the website and in the API: the channel's list, a page that plays one, and
//! the streamer's choices: keep recordings or not, delete one.
//!
//! Who sees what follows the channel's visibility now: a public channel lists its clear
//! recordings to everyone; a private one lists its encrypted recordings to those who may watch it
//! (played with the playback token the live player also uses) and nothing to anyone else. A
//! recording made under the other visibility is hidden until the channel returns to it. A share
//! link's holder — known to no session; the code rides in the page's URL fragment — asks with the
//! code in a POST body, as the live player does, so it reaches no access log.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::routing::{delete, get, put};
use axum::Router;
use boltstream_shared::route::{Access, Route};
use boltstream_shared::username::Username;
use hyper::StatusCode;
use serde_json::json;

use super::api::json_body;
use super::context::{blocking, WebContext};
use super::extract::{ApiChanger, Viewer};
use super::reply::{json, json_error, page, store_error};
use std::collections::HashMap;

use super::views::PastBroadcasts;
use crate::record::RecordingInfo;
use crate::respond::Resp;
use crate::store::StoreError;

/// `/api/v1/...` routes for recordings.
pub fn api_routes() -> Router<Arc<WebContext>> {
    Router::new()
        .route("/channels/{name}/recordings", get(list).post(list_shared))
        .route("/me/recordings/{id}", delete(remove))
        .route("/me/recording", put(set_keep))
}

/// The page routes.
pub fn page_routes() -> Router<Arc<WebContext>> {
    Router::new().route("/{name}/past/{id}", get(watch))
}

/// The finished recordings of `name`'s channel that `caller` (or a share link's holder) may
/// watch now, newest first; `None` for no such channel, a banned one, or a private one they may
/// not watch (answered alike).
pub async fn visible_list(
    ctx: &WebContext,
    name: &str,
    caller: Option<String>,
    share: Option<String>,
) -> Option<Vec<RecordingInfo>> {
    let user = Username::parse(name).ok()?;
    let (store, recordings) = (Arc::clone(&ctx.store), Arc::clone(&ctx.hls.recordings));
    blocking(move || {
        let who = crate::store::Viewer {
            user: caller.as_deref(),
            share_code: share.as_deref(),
        };
        let private = match store.access(user.as_str(), who).ok()? {
            crate::store::Access::Public => false,
            crate::store::Access::Allowed => true,
            _ => return None,
        };
        if store.user(user.as_str()).ok()?.is_none_or(|row| row.banned) {
            return None;
        }
        // With several nodes, the site's index lists every node's recordings.
        let mut found = if store.is_shared() {
            store.indexed_recordings(user.as_str()).ok()?
        } else {
            recordings.list(&user)
        };
        found.retain(|r| r.private == private);
        Some(found)
    })
    .await
}

/// The URL of a recording's playlist: under `/private/<user>/vod/` for an encrypted one.
pub fn playlist_url(user: &Username, r: &RecordingInfo) -> String {
    let route = Route::VodPlaylist {
        user: user.clone(),
        access: if r.private {
            Access::Private
        } else {
            Access::Public
        },
        id: r.id,
    };
    route.canonical_path().unwrap_or_default()
}

/// `GET /api/v1/channels/{name}/recordings`: what the caller's session may watch.
async fn list(
    State(ctx): State<Arc<WebContext>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Resp {
    let caller = viewer.user().map(|s| s.user.username.clone());
    listing(&ctx, &name, caller, None).await
}

/// `POST /api/v1/channels/{name}/recordings` with `{"share": "<code>"}`: what a share link's
/// holder may watch (and the session's, if any).
async fn list_shared(
    State(ctx): State<Arc<WebContext>>,
    viewer: Viewer,
    Path(name): Path<String>,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        share: String,
    }
    let body: Body = match json_body(req, "expected {\"share\": string}").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let caller = viewer.user().map(|s| s.user.username.clone());
    let share = Some(body.share).filter(|c| c.len() <= 128);
    listing(&ctx, &name, caller, share).await
}

async fn listing(
    ctx: &WebContext,
    name: &str,
    caller: Option<String>,
    share: Option<String>,
) -> Resp {
    let Some(found) = visible_list(ctx, name, caller, share).await else {
        return json_error(StatusCode::NOT_FOUND, "no such channel");
    };
    let user = Username::parse(name).expect("listed, so valid");
    let items: Vec<_> = (found.iter())
        .map(|r| {
            json!({
                "id": r.id,
                "title": r.title,
                "started_ms": r.id,
                "ended_ms": r.ended_ms,
                "duration_s": r.duration_ms as f64 / 1000.0,
                "bytes": r.bytes,
                "playlist": playlist_url(&user, r),
                "private": r.private,
                "page": format!("/{user}/past/{}", r.id),
                "thumbnail": r.thumbnail.then(|| format!("/vod/{user}/{}/thumb.jpg", r.id)),
            })
        })
        .collect();
    let mut resp = json(StatusCode::OK, json!({ "recordings": items }));
    // Who may see a private channel's list differs per caller: no shared cache keeps it.
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// Deletes one of `user`'s finished recordings: its files if this node keeps them, and — with
/// several nodes — its entry in the site's index, so it is gone from every node's listing at once
/// and the node keeping it removes the files at its next pass. False when there is no such
/// finished recording.
async fn delete_recording(ctx: &WebContext, user: Username, id: u64) -> bool {
    let (store, recordings) = (Arc::clone(&ctx.store), Arc::clone(&ctx.hls.recordings));
    blocking(move || {
        let here = recordings.delete(&user, id);
        let indexed =
            store.is_shared() && (store.mark_recording_deleted(user.as_str(), id)).unwrap_or(false);
        here || indexed
    })
    .await
}

/// `DELETE /api/v1/me/recordings/{id}`: the caller's recording, files and listing.
async fn remove(
    State(ctx): State<Arc<WebContext>>,
    Path(id): Path<u64>,
    ApiChanger(caller): ApiChanger,
) -> Resp {
    let Ok(user) = Username::parse(&caller.username) else {
        return json_error(StatusCode::NOT_FOUND, "no such recording");
    };
    if delete_recording(&ctx, user, id).await {
        json(StatusCode::OK, json!({ "ok": true }))
    } else {
        json_error(
            StatusCode::NOT_FOUND,
            "no such recording (or it is still recording)",
        )
    }
}

/// `PUT /api/v1/me/recording` `{"keep": bool}`: whether the caller's next publishes are recorded.
async fn set_keep(
    State(ctx): State<Arc<WebContext>>,
    ApiChanger(caller): ApiChanger,
    req: Request,
) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        keep: bool,
    }
    let body: Body = match json_body(req, "expected {\"keep\": bool}").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let store = Arc::clone(&ctx.store);
    let name = caller.username.clone();
    match blocking(move || store.set_keep_recordings(&name, body.keep)).await {
        Ok(()) => json(StatusCode::OK, json!({ "keep": body.keep })),
        Err(e) => store_error(&e),
    }
}

/// The dashboard's "Past broadcasts" card: the choice and every finished recording (the
/// streamer's own, listed even while the channel is private).
pub async fn for_dashboard(ctx: &WebContext, name: &str) -> Result<PastBroadcasts, StoreError> {
    let (store, recordings, name) = (
        Arc::clone(&ctx.store),
        Arc::clone(&ctx.hls.recordings),
        name.to_string(),
    );
    blocking(move || {
        let keep = store.keeps_recordings(&name)?.unwrap_or(false);
        let recordings = Username::parse(&name)
            .map(|u| recordings.list(&u))
            .unwrap_or_default();
        Ok(PastBroadcasts { keep, recordings })
    })
    .await
}

/// The dashboard's recording forms, carried out; the answer is the notice shown.
pub async fn dashboard_action(
    ctx: &WebContext,
    name: &str,
    action: &str,
    form: &HashMap<String, String>,
) -> Result<&'static str, StoreError> {
    let store = Arc::clone(&ctx.store);
    let name = name.to_string();
    if action == "keep-recordings" {
        let keep = form.get("keep").is_some_and(|v| v == "1");
        blocking(move || store.set_keep_recordings(&name, keep)).await?;
        return Ok(if keep {
            "Your streams are recorded from your next stream on."
        } else {
            "Your streams are no longer recorded (what is kept stays until you delete it)."
        });
    }
    let id: Option<u64> = form.get("id").and_then(|v| v.parse().ok());
    let deleted = match (id, Username::parse(&name)) {
        (Some(id), Ok(user)) => delete_recording(ctx, user, id).await,
        _ => false,
    };
    Ok(if deleted {
        "Recording deleted."
    } else {
        "No such recording (or it is still recording)."
    })
}

/// `/{name}/past/{id}`: a player for one recording.
async fn watch(
    State(ctx): State<Arc<WebContext>>,
    viewer: Viewer,
    Path((name, id)): Path<(String, u64)>,
) -> Resp {
    let user = viewer.user();
    let caller = user.map(|s| s.user.username.clone());
    let found = visible_list(&ctx, &name, caller, None)
        .await
        .unwrap_or_default();
    let title = format!("{name}: past broadcast");
    match (found.iter().find(|r| r.id == id), Username::parse(&name)) {
        (Some(r), Ok(channel)) => page(
            StatusCode::OK,
            &title,
            user,
            super::views::past_broadcast(&channel, r, &playlist_url(&channel, r)),
        ),
        // A private channel this session may not watch: the player, which a share link's code
        // (in the fragment, which only the page's script reads) may open. The same for every id,
        // so it tells nobody whether this recording exists.
        (None, Ok(channel)) if is_private(&ctx, &channel).await => page(
            StatusCode::OK,
            &title,
            user,
            super::views::private_past_broadcast(&channel, id),
        ),
        _ => super::reply::error_page(
            StatusCode::NOT_FOUND,
            user,
            "No such broadcast",
            "This past broadcast does not exist, or was deleted.",
        ),
    }
}

/// Whether `channel` exists and is private now (a store error says no).
async fn is_private(ctx: &WebContext, channel: &Username) -> bool {
    let (store, name) = (Arc::clone(&ctx.store), channel.to_string());
    blocking(move || store.is_private(&name))
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
