//! Server-rendered pages. Small on purpose: a directory, channel pages with the player, sign-up and
//! log-in, a streamer dashboard and an admin page. Every form is CSRF-protected; every page sends a
//! strict Content-Security-Policy (scripts only from this origin, no inline script).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use boltstream_shared::username::Username;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::guard::Refusal;
use super::session::{self, CSRF_COOKIE, DEVICE_COOKIE, SESSION_COOKIE};
use super::{read_form, BodyError};
use super::{views, WebContext};
use crate::respond::{self, Resp};
use crate::store::{random_token, LiveRow, SessionUser, StoreError, UserRow, SESSION_MS};

fn page(status: StatusCode, title: &str, user: Option<&SessionUser>, body: maud::Markup) -> Resp {
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

fn redirect(to: &'static str) -> Resp {
    let mut r = respond::text(StatusCode::SEE_OTHER, "see other\n");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

fn error_page(status: StatusCode, user: Option<&SessionUser>, title: &str, message: &str) -> Resp {
    page(status, title, user, views::message(title, message))
}

fn body_error(e: BodyError, user: Option<&SessionUser>) -> Resp {
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

fn server_error(user: Option<&SessionUser>, err: &StoreError) -> Resp {
    tracing::warn!(error = %err, "website request failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        user,
        "Try again",
        "The server is busy; please try again in a moment.",
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("store call panicked")
}

/// Routes a page request.
pub async fn handle(
    ctx: &Arc<WebContext>,
    req: Request<Incoming>,
    path: &str,
    peer: SocketAddr,
) -> Resp {
    let signed_in = session::from_cookie(&ctx.store, req.headers()).await;
    let user = signed_in.as_ref().map(|(_, s)| s);
    let method = req.method().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => directory(ctx, user).await,
        (&Method::GET, ["signup"]) => auth_form(ctx, user, Form::Signup, None),
        (&Method::POST, ["signup"]) => signup(ctx, req, peer).await,
        (&Method::GET, ["login"]) => auth_form(ctx, user, Form::Login, None),
        (&Method::POST, ["login"]) => login(ctx, req, peer).await,
        (&Method::POST, ["logout"]) => logout(ctx, req, signed_in).await,
        (&Method::GET, ["dashboard"]) => match user {
            Some(u) => dashboard(ctx, &req, u, None).await,
            None => redirect("/login"),
        },
        (&Method::POST, ["dashboard", action]) => {
            let action = action.to_string();
            dashboard_action(ctx, req, signed_in, &action).await
        }
        (&Method::GET, ["admin"]) => match user {
            Some(u) if u.user.is_admin => admin(ctx, u, None).await,
            Some(u) => error_page(
                StatusCode::FORBIDDEN,
                Some(u),
                "Admins only",
                "This page is for administrators.",
            ),
            None => redirect("/login"),
        },
        (&Method::POST, ["admin", kind, name, action]) => {
            let (kind, name, action) = (kind.to_string(), name.to_string(), action.to_string());
            admin_action(ctx, req, signed_in, &kind, &name, &action).await
        }
        (&Method::GET, [name]) => channel(ctx, user, name).await,
        (&Method::GET | &Method::HEAD, _) => error_page(
            StatusCode::NOT_FOUND,
            user,
            "Not found",
            "There is nothing at this address.",
        ),
        _ => {
            let mut r = error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                user,
                "Not allowed",
                "That method is not allowed here.",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            r
        }
    }
}

async fn directory(ctx: &Arc<WebContext>, user: Option<&SessionUser>) -> Resp {
    let store = Arc::clone(&ctx.store);
    let live = match blocking(move || store.live_streams()).await {
        Ok(l) => l,
        Err(e) => return server_error(user, &e),
    };
    page(
        StatusCode::OK,
        "Live channels",
        user,
        views::directory(&live),
    )
}

async fn channel(ctx: &Arc<WebContext>, user: Option<&SessionUser>, name: &str) -> Resp {
    let Ok(username) = Username::parse(name) else {
        return error_page(
            StatusCode::NOT_FOUND,
            user,
            "No such channel",
            "There is no channel with that name.",
        );
    };
    let store = Arc::clone(&ctx.store);
    let lookup = username.to_string();
    let row = match blocking(move || store.user(&lookup)).await {
        Ok(Some(row)) if !row.banned => row,
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
    let live = row.live_since_ms.is_some();
    let body = views::channel(username.as_str(), live);
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

/// Reads a signed-in user's form and checks its CSRF token against the session's; returns the
/// form's fields.
async fn check_signed_form(
    req: Request<Incoming>,
    s: &SessionUser,
) -> Result<std::collections::HashMap<String, String>, Resp> {
    let form = read_form(req).await.map_err(|e| body_error(e, Some(s)))?;
    if !form.get("csrf").is_some_and(|c| session::same(c, &s.csrf)) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            Some(s),
            "Form expired",
            "Please reload the page and try again.",
        ));
    }
    Ok(form)
}

/// Reads a pre-session form (sign-up, log-in) and checks its double-submit CSRF token against the
/// `bs_csrf` cookie the form page set.
async fn pre_session_form(
    req: Request<Incoming>,
    cookie: Option<&str>,
    page: &str,
) -> Result<std::collections::HashMap<String, String>, Resp> {
    let form = read_form(req).await.map_err(|e| body_error(e, None))?;
    if !matches!((cookie, form.get("csrf")), (Some(c), Some(f)) if session::same(c, f)) {
        let message = format!("Please reload the {page} page and try again.");
        return Err(error_page(
            StatusCode::FORBIDDEN,
            None,
            "Form expired",
            &message,
        ));
    }
    Ok(form)
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

fn host_shell<B>(req: &Request<B>) -> Request<()> {
    let host = req
        .headers()
        .get(header::HOST)
        .cloned()
        .unwrap_or(HeaderValue::from_static("this-server"));
    Request::builder()
        .header(header::HOST, host)
        .body(())
        .expect("valid request")
}

async fn signup(ctx: &Arc<WebContext>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    if !ctx.settings.signup {
        return error_page(
            StatusCode::FORBIDDEN,
            None,
            "Sign-up is closed",
            "This server does not accept new accounts.",
        );
    }
    let cookie = session::cookie(req.headers(), CSRF_COOKIE).map(str::to_string);
    let shell = host_shell(&req);
    let form = match pre_session_form(req, cookie.as_deref(), "sign-up").await {
        Ok(form) => form,
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
        Ok((user, key, token)) => welcome(ctx, &shell, &user, &key, &token).await,
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
async fn welcome<B>(
    ctx: &Arc<WebContext>,
    req: &Request<B>,
    user: &str,
    key: &str,
    token: &str,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let lookup = token.to_string();
    match blocking(move || store.session(&lookup)).await {
        Ok(Some(s)) => {
            tracing::info!(user = %user, "account created");
            let page = dashboard(ctx, req, &s, Some(key)).await;
            signed_in_response(ctx, token, page)
        }
        _ => redirect("/login"),
    }
}

async fn login(ctx: &Arc<WebContext>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let cookie = session::cookie(req.headers(), CSRF_COOKIE).map(str::to_string);
    let device = session::cookie(req.headers(), DEVICE_COOKIE).map(str::to_string);
    let form = match pre_session_form(req, cookie.as_deref(), "log-in").await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
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

async fn logout(
    ctx: &Arc<WebContext>,
    req: Request<Incoming>,
    signed_in: Option<(String, SessionUser)>,
) -> Resp {
    let Some((token, s)) = signed_in else {
        return redirect("/");
    };
    if let Err(refused) = check_signed_form(req, &s).await {
        return refused;
    }
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
fn rtmp_url<B>(ctx: &WebContext, req: &Request<B>) -> String {
    if let Some(url) = &ctx.settings.public_rtmp_url {
        return url.clone();
    }
    let host = req
        .headers()
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

async fn dashboard<B>(
    ctx: &Arc<WebContext>,
    req: &Request<B>,
    s: &SessionUser,
    fresh: Option<&str>,
) -> Resp {
    dashboard_with(ctx, req, s, fresh, None).await
}

async fn dashboard_with<B>(
    ctx: &Arc<WebContext>,
    req: &Request<B>,
    s: &SessionUser,
    fresh: Option<&str>,
    notice: Option<&str>,
) -> Resp {
    let store = Arc::clone(&ctx.store);
    let name = s.user.username.clone();
    let found = blocking(move || -> Result<_, StoreError> {
        Ok((store.live_stream(&name)?, store.api_tokens(&name)?))
    })
    .await;
    let (live, tokens) = match found {
        Ok(found) => found,
        Err(e) => return server_error(Some(s), &e),
    };
    let rtmp_url = rtmp_url(ctx, req);
    let view = views::Dashboard {
        session: s,
        live: live.as_ref(),
        tokens: &tokens,
        fresh,
        notice,
        rtmp_url: &rtmp_url,
    };
    page(
        StatusCode::OK,
        "Dashboard",
        Some(s),
        views::dashboard(&view),
    )
}

/// The dashboard with a short message at the top (a token revoked, a password changed).
async fn dashboard_notice<B>(
    ctx: &Arc<WebContext>,
    req: &Request<B>,
    s: &SessionUser,
    notice: &str,
) -> Resp {
    dashboard_with(ctx, req, s, None, Some(notice)).await
}

/// Changes the signed-in user's password after checking the current one, and signs out every
/// other session of theirs.
async fn change_password<B>(
    ctx: &Arc<WebContext>,
    req: &Request<B>,
    token: String,
    s: &SessionUser,
    form: &std::collections::HashMap<String, String>,
) -> Resp {
    let current = form.get("current").cloned().unwrap_or_default();
    let new = form.get("new").cloned().unwrap_or_default();
    if new.chars().count() < crate::store::MIN_PASSWORD {
        return dashboard_notice(
            ctx,
            req,
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
    dashboard_notice(ctx, req, s, notice).await
}

async fn dashboard_action(
    ctx: &Arc<WebContext>,
    req: Request<Incoming>,
    signed_in: Option<(String, SessionUser)>,
    action: &str,
) -> Resp {
    let Some((signed_token, s)) = signed_in else {
        return redirect("/login");
    };
    let shell = host_shell(&req);
    let form = match check_signed_form(req, &s).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
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
            return dashboard_notice(ctx, &shell, &s, notice).await;
        }
        "password" => return change_password(ctx, &shell, signed_token, &s, &form).await,
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
            dashboard(ctx, &shell, &s, Some(&secret)).await
        }
        Err(e) => server_error(Some(&s), &e),
    }
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

async fn admin_action(
    ctx: &Arc<WebContext>,
    req: Request<Incoming>,
    signed_in: Option<(String, SessionUser)>,
    kind: &str,
    name: &str,
    action: &str,
) -> Resp {
    let Some((_, s)) = signed_in else {
        return redirect("/login");
    };
    if !s.user.is_admin {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(&s),
            "Admins only",
            "This action is for administrators.",
        );
    }
    if let Err(refused) = check_signed_form(req, &s).await {
        return refused;
    }
    match super::api::admin_operation(ctx, kind, name, action, &s.user.username).await {
        Ok(message) => admin(ctx, &s, Some(&message)).await,
        Err((status, message)) => error_page(status, Some(&s), "Could not do that", &message),
    }
}
