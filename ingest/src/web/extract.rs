//! Who is asking and what they sent, as axum extractors, so a handler's signature states what it
//! requires (a session, an admin, a CSRF-checked form) and cannot forget a check: the handler runs
//! only once its extractors have passed, and each refusal is the page or JSON error a person or
//! script expects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use hyper::StatusCode;

use super::body::read_form;
use super::context::WebContext;
use super::reply;
use super::session::{self, CSRF_COOKIE};
use crate::respond::Resp;
use crate::store::{SessionUser, UserRow};

/// The client a request is from, after trusted proxies; the HTTP layer puts it in the request.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

impl<S: Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only a request that bypassed the HTTP layer (a unit test) lacks one.
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(SocketAddr::from(([0, 0, 0, 0], 0)))))
    }
}

/// A signed-in browser session: its cookie token and user.
#[derive(Clone, Debug)]
pub struct Session {
    /// The session token (from the cookie).
    pub token: String,
    /// The user and the session's CSRF token.
    pub user: SessionUser,
}

/// Whoever views a page: a session or nobody. Looked up once per request and kept in the
/// request, so several extractors do not query the store several times.
#[derive(Clone, Debug)]
pub struct Viewer(pub Option<Session>);

impl Viewer {
    /// The signed-in user, for the page frame.
    pub fn user(&self) -> Option<&SessionUser> {
        self.0.as_ref().map(|s| &s.user)
    }
}

impl FromRequestParts<Arc<WebContext>> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<WebContext>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(viewer) = parts.extensions.get::<Viewer>() {
            return Ok(viewer.clone());
        }
        let found = session::from_cookie(&ctx.store, &parts.headers).await;
        let viewer = Viewer(found.map(|(token, user)| Session { token, user }));
        parts.extensions.insert(viewer.clone());
        Ok(viewer)
    }
}

/// A page that needs a session; without one the browser is sent to log in.
pub struct SignedIn(pub Session);

impl FromRequestParts<Arc<WebContext>> for SignedIn {
    type Rejection = Resp;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<WebContext>,
    ) -> Result<Self, Self::Rejection> {
        let Ok(Viewer(found)) = Viewer::from_request_parts(parts, ctx).await;
        found.map(SignedIn).ok_or_else(|| reply::redirect("/login"))
    }
}

/// A page or action for administrators only.
pub struct Admin(pub Session);

impl FromRequestParts<Arc<WebContext>> for Admin {
    type Rejection = Resp;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<WebContext>,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(s) = SignedIn::from_request_parts(parts, ctx).await?;
        if !s.user.user.is_admin {
            return Err(reply::error_page(
                StatusCode::FORBIDDEN,
                Some(&s.user),
                "Admins only",
                "This is for administrators.",
            ));
        }
        Ok(Admin(s))
    }
}

/// A signed-in user's form whose CSRF token matched the session's.
pub struct SignedForm {
    /// Whose form it is.
    pub session: Session,
    /// The form's fields.
    pub fields: HashMap<String, String>,
}

impl FromRequest<Arc<WebContext>> for SignedForm {
    type Rejection = Resp;

    async fn from_request(req: Request, ctx: &Arc<WebContext>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let SignedIn(session) = SignedIn::from_request_parts(&mut parts, ctx).await?;
        let req = Request::from_parts(parts, body);
        let user = Some(&session.user);
        let fields = read_form(req)
            .await
            .map_err(|e| reply::body_error(e, user))?;
        if !(fields.get("csrf")).is_some_and(|c| session::same(c, &session.user.csrf)) {
            return Err(reply::error_page(
                StatusCode::FORBIDDEN,
                user,
                "Form expired",
                "Please reload the page and try again.",
            ));
        }
        Ok(SignedForm { session, fields })
    }
}

/// A form sent before any session exists (sign-up, log-in), whose CSRF token matched the
/// double-submit `bs_csrf` cookie its form page set.
pub struct PreSessionForm(pub HashMap<String, String>);

impl<S: Sync> FromRequest<S> for PreSessionForm {
    type Rejection = Resp;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let cookie = session::cookie(req.headers(), CSRF_COOKIE).map(str::to_string);
        let page = match req.uri().path() {
            "/signup" => "sign-up",
            _ => "log-in",
        };
        let fields = read_form(req)
            .await
            .map_err(|e| reply::body_error(e, None))?;
        if !matches!((cookie.as_deref(), fields.get("csrf")), (Some(c), Some(f)) if session::same(c, f))
        {
            let message = format!("Please reload the {page} page and try again.");
            return Err(reply::error_page(
                StatusCode::FORBIDDEN,
                None,
                "Form expired",
                &message,
            ));
        }
        Ok(PreSessionForm(fields))
    }
}

/// An API caller: a bearer token's user or a session's. `may_change` says whether a state change
/// is allowed: always for a token, for a session only with its `x-csrf-token` header.
pub struct ApiCaller {
    /// Who is calling.
    pub user: UserRow,
    /// Whether state-changing calls are allowed.
    pub may_change: bool,
}

impl FromRequestParts<Arc<WebContext>> for ApiCaller {
    type Rejection = Resp;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<WebContext>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = session::from_bearer(&ctx.store, &parts.headers).await {
            return Ok(ApiCaller {
                user,
                may_change: true,
            });
        }
        let Ok(Viewer(found)) = Viewer::from_request_parts(parts, ctx).await;
        let Some(s) = found else {
            return Err(reply::json_error(
                StatusCode::UNAUTHORIZED,
                "sign in or send an API token (Authorization: Bearer …)",
            ));
        };
        let may_change = (parts.headers.get("x-csrf-token"))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| session::same(v, &s.user.csrf));
        Ok(ApiCaller {
            user: s.user.user,
            may_change,
        })
    }
}

/// An API caller allowed to change state; a session without its CSRF header is refused.
pub struct ApiChanger(pub UserRow);

impl FromRequestParts<Arc<WebContext>> for ApiChanger {
    type Rejection = Resp;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<WebContext>,
    ) -> Result<Self, Self::Rejection> {
        let caller = ApiCaller::from_request_parts(parts, ctx).await?;
        if !caller.may_change {
            return Err(reply::json_error(
                StatusCode::FORBIDDEN,
                "missing or wrong x-csrf-token header",
            ));
        }
        Ok(ApiChanger(caller.user))
    }
}
