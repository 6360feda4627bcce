//! Server-rendered pages. Small on purpose: a directory, channel pages with the player, sign-up and
//! log-in, a streamer dashboard and an admin page. Every form is CSRF-protected; every page sends a
//! strict Content-Security-Policy (scripts only from this origin, no inline script).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Path, Request, State};
use axum::routing::{get, post};
use axum::Router;
use boltstream_shared::username::Username;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};

use super::context::{blocking, WebContext};
use super::extract::{Admin, ClientAddr, PreSessionForm, SignedForm, SignedIn, Viewer};
use super::guard::Refusal;
use super::reply::{error_page, page, redirect, server_error};
use super::session::{self, CSRF_COOKIE, DEVICE_COOKIE, SESSION_COOKIE};
use super::views;
use crate::channel_info::ChannelInfo;
use crate::respond::Resp;
use crate::store::{random_token, LiveRow, SessionUser, StoreError, UserRow, SESSION_MS};

/// The pages. What no route answers is refused as before the router: a GET or HEAD with the 404
/// page, another method with the 405 page.
pub fn routes() -> Router<Arc<WebContext>> {
    Router::new()
        .route("/", get(directory))
        .route("/signup", get(signup_form).post(signup))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/{action}", post(dashboard_action))
        .route("/admin", get(admin_page))
        .route("/admin/{kind}/{name}/{action}", post(admin_action))
        .route("/{name}", get(channel))
        .fallback(|method: Method, viewer: Viewer| async move {
            let mut r = no_route(&method, &viewer);
            if r.status() == StatusCode::METHOD_NOT_ALLOWED {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            }
            r
        })
        // axum adds the path's own `Allow` header.
        .method_not_allowed_fallback(|method: Method, viewer: Viewer| async move {
            no_route(&method, &viewer)
        })
}

fn no_route(method: &Method, viewer: &Viewer) -> Resp {
    if method == Method::GET || method == Method::HEAD {
        return error_page(
            StatusCode::NOT_FOUND,
            viewer.user(),
            "Not found",
            "There is nothing at this address.",
        );
    }
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        viewer.user(),
        "Not allowed",
        "That method is not allowed here.",
    )
}

async fn directory(State(ctx): State<Arc<WebContext>>, viewer: Viewer) -> Resp {
    let user = viewer.user();
    let store = Arc::clone(&ctx.store);
    let name = user.map(|s| s.user.username.clone());
    let live = match blocking(move || super::api::visible_live(&store, name.as_deref())).await {
        Ok(l) => l,
        Err(e) => return server_error(user, &e),
    };
    let viewers: HashMap<String, usize> = (ctx.viewers.counts(crate::clock::now_ms()))
        .into_iter()
        .map(|(channel, n)| (channel.to_string(), n))
        .collect();
    let thumbnails: HashMap<String, String> = (live.iter())
        .filter_map(|row| {
            let url = super::api::thumbnail_url(&ctx, &row.username, Some(row))?;
            Some((row.username.clone(), url))
        })
        .collect();
    page(
        StatusCode::OK,
        "Live channels",
        user,
        views::directory(&live, &viewers, &thumbnails),
    )
}

async fn channel(
    State(ctx): State<Arc<WebContext>>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Resp {
    let user = viewer.user();
    let Ok(username) = Username::parse(&name) else {
        return error_page(
            StatusCode::NOT_FOUND,
            user,
            "No such channel",
            "There is no channel with that name.",
        );
    };
    let store = Arc::clone(&ctx.store);
    let lookup = username.to_string();
    let watcher = user.map(|s| s.user.username.clone());
    let found = blocking(move || -> Result<_, StoreError> {
        let who = crate::store::Viewer {
            user: watcher.as_deref(),
            share_code: None,
        };
        let access = store.access(&lookup, who)?;
        Ok(match store.user(&lookup)? {
            // A private channel shows someone who may not watch it (yet: a share link is read
            // by the page's script) nothing of itself: no title, no live state.
            Some(row) if !access.may_watch() => Some((row, None)),
            Some(row) => Some((row, Some(store.channel_info(&lookup)?.unwrap_or_default()))),
            None => None,
        })
    })
    .await;
    let (row, info) = match found {
        Ok(Some((row, info))) if !row.banned => (row, info),
        Ok(_) => {
            return error_page(
                StatusCode::NOT_FOUND,
                user,
                "No such channel",
                "There is no channel with that name.",
            )
        }
        Err(e) => return server_error(user, &e),
    };
    let body = match info {
        Some(info) => {
            // A stream held by another node gets its poster from the channel API once the page runs.
            let poster = super::api::thumbnail_url(&ctx, username.as_str(), None);
            let live = row.live_since_ms.is_some();
            let caller = user.map(|s| s.user.username.clone());
            let past = super::recordings::visible_list(&ctx, username.as_str(), caller, None)
                .await
                .unwrap_or_default();
            maud::html! {
                (views::channel(username.as_str(), live, &info, false, poster.as_deref()))
                (views::past_broadcasts(username.as_str(), &past))
            }
        }
        None => views::channel(
            username.as_str(),
            false,
            &ChannelInfo::default(),
            true,
            None,
        ),
    };
    page(StatusCode::OK, username.as_str(), user, body)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Signup,
    Login,
}

impl Form {
    fn label(&self) -> &'static str {
        match self {
            Form::Signup => "sign-up",
            Form::Login => "log-in",
        }
    }
}

async fn signup_form(State(ctx): State<Arc<WebContext>>, viewer: Viewer) -> Resp {
    auth_form(&ctx, viewer.user(), Form::Signup, None)
}

async fn login_form(State(ctx): State<Arc<WebContext>>, viewer: Viewer) -> Resp {
    auth_form(&ctx, viewer.user(), Form::Login, None)
}

fn auth_form(
    ctx: &Arc<WebContext>,
    user: Option<&SessionUser>,
    form: Form,
    error: Option<&str>,
) -> Resp {
    if user.is_some() {
        return redirect("/dashboard");
    }
    if form == Form::Signup && !ctx.settings.signup {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "Sign-up is closed",
            "This server does not accept new accounts. Ask its operator for one.",
        );
    }
    let csrf = random_token();
    let view = match form {
        Form::Signup => views::AuthForm {
            title: "Create your channel",
            action: "/signup",
            button: "Sign up",
            hint: "3–25 characters: a–z, 0–9 and _. This is your channel's address.",
            autocomplete: "new-password",
        },
        Form::Login => views::AuthForm {
            title: "Log in",
            action: "/login",
            button: "Log in",
            hint: "",
            autocomplete: "current-password",
        },
    };
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let mut r = page(
        status,
        view.title,
        None,
        views::auth_form(&view, &csrf, error),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(CSRF_COOKIE, &csrf, 3600, ctx.settings.secure_cookies),
    );
    r
}

fn signed_in_response(ctx: &Arc<WebContext>, token: &str, mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(
            SESSION_COOKIE,
            token,
            SESSION_MS / 1000,
            ctx.settings.secure_cookies,
        ),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(CSRF_COOKIE, "", 0, ctx.settings.secure_cookies),
    );
    r
}

/// `form` is taken as a `Result` so a closed sign-up says so whatever the form held.
async fn signup(
    State(ctx): State<Arc<WebContext>>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: Result<PreSessionForm, Resp>,
) -> Resp {
    let ctx = &ctx;
    if !ctx.settings.signup {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "Sign-up is closed",
            "This server does not accept new accounts.",
        );
    }
    let form = match form {
        Ok(PreSessionForm(form)) => form,
        Err(refused) => return refused,
    };
    let name = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    if password.chars().count() < crate::store::MIN_PASSWORD {
        return auth_form(
            ctx,
            None,
            Form::Signup,
            Some("Choose a password of at least 8 characters."),
        );
    }
    if let Err(refusal) = ctx.guard.begin_signup(peer.ip(), Instant::now()) {
        return throttled(ctx, Form::Signup, &refusal, peer);
    }
    let store = Arc::clone(&ctx.store);
    let created = ctx
        .guard
        .hashing(move || -> Result<(String, String, String), StoreError> {
            let (user, key) = store.add_user(&name, false)?;
            store.set_password(user.as_str(), &password)?;
            let (token, _) = store.create_session(user.as_str())?;
            Ok((user.to_string(), key, token))
        })
        .await;
    let Some(created) = created else {
        return busy(Form::Signup, ctx);
    };
    match created {
        Ok((user, key, token)) => welcome(ctx, &headers, &user, &key, &token).await,
        Err(StoreError::UserExists(_)) => {
            auth_form(ctx, None, Form::Signup, Some("That username is taken."))
        }
        Err(StoreError::InvalidUsername(e)) => {
            auth_form(ctx, None, Form::Signup, Some(&e.to_string()))
        }
        Err(e) => server_error(None, &e),
    }
}

/// A new account's first page: signed in, the dashboard showing the stream key once.
async fn welcome(
    ctx: &Arc<WebContext>,
    headers: &HeaderMap,
    user: &str,
    key: &str,
    token: &str,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let lookup = token.to_string();
    match blocking(move || store.session(&lookup)).await {
        Ok(Some(s)) => {
            tracing::info!(user = %user, "account created");
            let page = dashboard(ctx, headers, &s, Some(key)).await;
            signed_in_response(ctx, token, page)
        }
        _ => redirect("/login"),
    }
}

async fn login(
    State(ctx): State<Arc<WebContext>>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    PreSessionForm(form): PreSessionForm,
) -> Resp {
    let ctx = &ctx;
    let device = session::cookie(&headers, DEVICE_COOKIE).map(str::to_string);
    let name = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    if let Err(refusal) = ctx
        .guard
        .begin_login(peer.ip(), &name, device.as_deref(), Instant::now())
    {
        return throttled(ctx, Form::Login, &refusal, peer);
    }
    let store = Arc::clone(&ctx.store);
    let checked_name = name.clone();
    let result = ctx
        .guard
        .hashing(move || -> Result<Option<(String, String)>, StoreError> {
            match store.verify_password(&checked_name, &password)? {
                Some(user) => Ok(Some((
                    user.username.clone(),
                    store.create_session(&user.username)?.0,
                ))),
                None => Ok(None),
            }
        })
        .await;
    match result {
        None => busy(Form::Login, ctx),
        Some(Ok(Some((user, token)))) => {
            let fresh = ctx
                .guard
                .login_succeeded(peer.ip(), &name, device.as_deref());
            tracing::info!(user = %user, peer = %peer, "logged in");
            let mut r = signed_in_response(ctx, &token, redirect("/dashboard"));
            if let Some(device) = fresh {
                // A year: it only ever lets this browser try its accounts during an attack.
                r.headers_mut().append(
                    header::SET_COOKIE,
                    session::set_cookie(
                        DEVICE_COOKIE,
                        &device,
                        365 * 24 * 3600,
                        ctx.settings.secure_cookies,
                    ),
                );
            }
            r
        }
        Some(Ok(None)) => auth_form(ctx, None, Form::Login, Some("Wrong username or password.")),
        Some(Err(e)) => server_error(None, &e),
    }
}

/// The answer to an attempt a limit refused, before any work was done for it.
fn throttled(ctx: &Arc<WebContext>, form: Form, refusal: &Refusal, peer: SocketAddr) -> Resp {
    let (first, what, message) = match refusal {
        Refusal::Address { first } => (
            *first,
            "from this address",
            "Too many attempts from your address. Wait a while and try again.",
        ),
        Refusal::Account { first } => (
            *first,
            "to one account from addresses it does not know",
            "Too many failed log-ins to this account. Wait a minute and try again.",
        ),
        Refusal::Site { first } => (
            *first,
            "site-wide",
            "Too many new accounts right now. Try again in a minute.",
        ),
    };
    if first {
        tracing::warn!(peer = %peer, form = form.label(), "attempts throttled: too many {what}");
    }
    let mut r = auth_form(ctx, None, form, Some(message));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r
}

/// Every password-hash permit stayed busy for seconds: a flood is on; ask the visitor to retry.
fn busy(form: Form, ctx: &Arc<WebContext>) -> Resp {
    let mut r = auth_form(
        ctx,
        None,
        form,
        Some("The server is busy. Try again in a moment."),
    );
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// Without a session there is nothing to end: home, rather than the log-in page.
async fn logout(State(ctx): State<Arc<WebContext>>, viewer: Viewer, req: Request) -> Resp {
    if viewer.0.is_none() {
        return redirect("/");
    }
    let token = match SignedForm::from_request(req, &ctx).await {
        Ok(form) => form.session.token,
        Err(refused) => return refused,
    };
    let store = Arc::clone(&ctx.store);
    let _ = blocking(move || store.delete_session(&token)).await;
    let mut r = redirect("/");
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", 0, ctx.settings.secure_cookies),
    );
    r
}

/// The RTMP URL to show: configured, or this site's host with the RTMP port and app.
fn rtmp_url(ctx: &WebContext, headers: &HeaderMap) -> String {
    if let Some(url) = &ctx.settings.public_rtmp_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(host, _)| host))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .unwrap_or("this-server");
    format!("rtmp://{host}:{}/{}", ctx.rtmp_port, ctx.settings.rtmp_app)
}

async fn dashboard_page(
    State(ctx): State<Arc<WebContext>>,
    SignedIn(s): SignedIn,
    headers: HeaderMap,
) -> Resp {
    dashboard(&ctx, &headers, &s.user, None).await
}

async fn dashboard(
    ctx: &Arc<WebContext>,
    headers: &HeaderMap,
    s: &SessionUser,
    fresh: Option<&str>,
) -> Resp {
    dashboard_with(ctx, headers, s, fresh, None).await
}

async fn dashboard_with(
    ctx: &Arc<WebContext>,
    headers: &HeaderMap,
    s: &SessionUser,
    fresh: Option<&str>,
    notice: Option<&str>,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = s.user.username.clone();
    let found = blocking(move || -> Result<_, StoreError> {
        let access = views::WhoWatches {
            private: store.is_private(&name)?.unwrap_or(false),
            allowed: store.allowed_viewers(&name)?,
            links: store.share_links(&name)?,
        };
        Ok((
            store.live_stream(&name)?,
            store.api_tokens(&name)?,
            store.channel_info(&name)?.unwrap_or_default(),
            access,
        ))
    })
    .await;
    let (live, tokens, info, access) = match found {
        Ok(found) => found,
        Err(e) => return server_error(Some(s), &e),
    };
    let past = match super::recordings::for_dashboard(ctx, &s.user.username).await {
        Ok(past) => past,
        Err(e) => return server_error(Some(s), &e),
    };
    let rtmp_url = rtmp_url(ctx, headers);
    let view = views::Dashboard {
        session: s,
        live: live.as_ref(),
        tokens: &tokens,
        fresh,
        notice,
        rtmp_url: &rtmp_url,
        info: &info,
        access: &access,
        past: &past,
    };
    page(
        StatusCode::OK,
        "Dashboard",
        Some(s),
        views::dashboard(&view),
    )
}

/// The dashboard with a short message at the top (a token revoked, a password changed).
async fn dashboard_notice(
    ctx: &Arc<WebContext>,
    headers: &HeaderMap,
    s: &SessionUser,
    notice: &str,
) -> Resp {
    dashboard_with(ctx, headers, s, None, Some(notice)).await
}

/// Changes the signed-in user's password after checking the current one, and signs out every
/// other session of theirs.
async fn change_password(
    ctx: &Arc<WebContext>,
    headers: &HeaderMap,
    token: String,
    s: &SessionUser,
    form: &HashMap<String, String>,
) -> Resp {
    let current = form.get("current").cloned().unwrap_or_default();
    let new = form.get("new").cloned().unwrap_or_default();
    if new.chars().count() < crate::store::MIN_PASSWORD {
        return dashboard_notice(
            ctx,
            headers,
            s,
            "Choose a new password of at least 8 characters.",
        )
        .await;
    }
    let store = Arc::clone(&ctx.store);
    let name = s.user.username.clone();
    let changed = ctx
        .guard
        .hashing(move || -> Result<bool, StoreError> {
            if store.verify_password(&name, &current)?.is_none() {
                return Ok(false);
            }
            store.change_password(&name, &new, Some(&token))?;
            Ok(true)
        })
        .await;
    let notice = match changed {
        None => "The server is busy. Try again in a moment.",
        Some(Ok(true)) => {
            tracing::info!(user = %s.user.username, "password changed; other sessions ended");
            "Password changed. Every other session of yours was signed out."
        }
        Some(Ok(false)) => "That is not your current password.",
        Some(Err(e)) => return server_error(Some(s), &e),
    };
    dashboard_notice(ctx, headers, s, notice).await
}

async fn dashboard_action(
    State(ctx): State<Arc<WebContext>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    SignedForm { session, fields }: SignedForm,
) -> Resp {
    let (ctx, shell, form, action) = (&ctx, &headers, fields, action.as_str());
    let (signed_token, s) = (session.token, session.user);
    let store = Arc::clone(&ctx.store);
    let name = s.user.username.clone();
    let secret = match action {
        "rotate" => {
            let registry = Arc::clone(&ctx.registry);
            match blocking(move || crate::ops::rotate_key(&store, Some(&registry), &name)).await {
                Ok(key) => Ok(key),
                Err(crate::ops::ActionError::Store(e)) => Err(e),
                Err(e) => {
                    return error_page(StatusCode::NOT_FOUND, Some(&s), "Not found", &e.to_string())
                }
            }
        }
        "token" => blocking(move || store.create_api_token(&name)).await,
        "revoke-token" => {
            let id = form.get("id").cloned().unwrap_or_default();
            let notice = match blocking(move || store.revoke_api_token(&name, &id)).await {
                Ok(true) => "API token revoked.",
                Ok(false) => "No such API token.",
                Err(e) => return server_error(Some(&s), &e),
            };
            return dashboard_notice(ctx, shell, &s, notice).await;
        }
        "password" => return change_password(ctx, shell, signed_token, &s, &form).await,
        "keep-recordings" | "delete-recording" => {
            let notice = super::recordings::dashboard_action(ctx, &name, action, &form).await;
            let notice = match notice {
                Ok(notice) => notice,
                Err(e) => return server_error(Some(&s), &e),
            };
            return dashboard_notice(ctx, shell, &s, notice).await;
        }
        "visibility" | "allow" | "disallow" | "share" | "revoke-share" => {
            let notice = match access_action(&store, &name, action, &form).await {
                Ok(notice) => notice,
                Err(e @ (StoreError::UnknownUser(_) | StoreError::Limit(_))) => {
                    format!("Not done: {e}.")
                }
                Err(e) => return server_error(Some(&s), &e),
            };
            return dashboard_notice(ctx, shell, &s, &notice).await;
        }
        "channel" => {
            let field = |name: &str| form.get(name).cloned().unwrap_or_default();
            let notice = match ChannelInfo::new(&field("title"), &field("category")) {
                Err(e) => format!("Not saved: {e}."),
                Ok(info) => match blocking(move || store.set_channel_info(&name, &info)).await {
                    Ok(_) => "Title and category saved.".to_string(),
                    Err(e) => return server_error(Some(&s), &e),
                },
            };
            return dashboard_notice(ctx, shell, &s, &notice).await;
        }
        _ => {
            return error_page(
                StatusCode::NOT_FOUND,
                Some(&s),
                "Not found",
                "There is nothing at this address.",
            )
        }
    };
    match secret {
        Ok(secret) => {
            tracing::info!(user = %s.user.username, action = action, "dashboard action");
            dashboard(ctx, shell, &s, Some(&secret)).await
        }
        Err(e) => server_error(Some(&s), &e),
    }
}

/// The dashboard's "who can watch" forms, carried out; the answer is the notice shown.
async fn access_action(
    store: &Arc<crate::store::Store>,
    name: &str,
    action: &str,
    form: &HashMap<String, String>,
) -> Result<String, StoreError> {
    let (store, name, action) = (Arc::clone(store), name.to_string(), action.to_string());
    let field = |n: &str| form.get(n).cloned().unwrap_or_default();
    let (value, viewer) = (field("private"), field("viewer").to_ascii_lowercase());
    let (hours, id) = (field("hours"), field("id"));
    blocking(move || match action.as_str() {
        "visibility" => {
            let private = value == "1";
            let restarted = store.set_private(&name, private)?;
            Ok(match (private, restarted) {
                (true, true) => "Your channel is private. Your stream was stopped so it restarts encrypted when your encoder reconnects.".to_string(),
                (true, false) => "Your channel is private.".to_string(),
                (false, _) => "Your channel is public.".to_string(),
            })
        }
        "allow" => {
            store.set_viewer_allowed(&name, &viewer, true)?;
            Ok(format!("{viewer} may watch your channel."))
        }
        "disallow" => {
            store.set_viewer_allowed(&name, &viewer, false)?;
            Ok(format!("{viewer} may no longer watch (within five minutes)."))
        }
        "share" => {
            let hours: i64 = hours.parse().unwrap_or(0);
            let (_, code) = store.create_share_link(&name, hours.saturating_mul(3_600_000))?;
            Ok(format!("Share link (shown only now): /{name}#share={code}"))
        }
        _ => {
            let revoked = id.parse().is_ok_and(|id| store.revoke_share_link(&name, id).unwrap_or(false));
            Ok(if revoked { "Share link revoked." } else { "No such share link." }.to_string())
        }
    })
    .await
}

async fn admin_page(State(ctx): State<Arc<WebContext>>, Admin(s): Admin) -> Resp {
    admin(&ctx, &s.user, None).await
}

async fn admin(ctx: &Arc<WebContext>, s: &SessionUser, notice: Option<&str>) -> Resp {
    let store = Arc::clone(&ctx.store);
    let data = blocking(
        move || -> Result<(Vec<UserRow>, Vec<LiveRow>), StoreError> {
            Ok((store.list_users()?, store.live_streams()?))
        },
    )
    .await;
    let (users, live) = match data {
        Ok(d) => d,
        Err(e) => return server_error(Some(s), &e),
    };
    let body = views::admin(s, &users, &live, notice);
    page(StatusCode::OK, "Admin", Some(s), body)
}

/// [`Admin`] is checked before the form is read, so a non-admin learns nothing from its CSRF
/// answer.
async fn admin_action(
    State(ctx): State<Arc<WebContext>>,
    Path((kind, name, action)): Path<(String, String, String)>,
    _: Admin,
    SignedForm { session, .. }: SignedForm,
) -> Resp {
    let s = &session.user;
    match super::api::admin_operation(&ctx, &kind, &name, &action, &s.user.username).await {
        Ok(message) => admin(&ctx, s, Some(&message)).await,
        Err((status, message)) => error_page(status, Some(s), "Could not do that", &message),
    }
}
