//! One chat connection: the WebSocket upgrade (who the client is, what it may do) and the loop
//! that carries the room's frames out and the client's in. Every bound is here: the largest
//! frame, frames per second, a send that does not finish, a reader that fell behind.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use boltstream_shared::username::Username;
use hyper::header::{HeaderMap, HOST, ORIGIN};
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};

use super::context::{blocking, WebContext};
use super::extract::Viewer;
use super::reply::json_error;
use crate::chat::room::Room;
use crate::chat::text::{check, ClientFrame, MAX_TIMEOUT_S};
use crate::clock::now_ms;
use crate::store::{Access, Mute, Viewer as StoreViewer};

/// The largest frame (and message) a client may send; a larger one closes the connection.
pub const MAX_FRAME_BYTES: usize = 4096;
/// The read buffer of a connection: two of the largest frames.
const BUFFER_BYTES: usize = 2 * MAX_FRAME_BYTES;
/// Messages shown to whoever joins.
pub const HISTORY: i64 = 50;
/// Frames a client may send per second, of any kind; more closes the connection.
pub const MAX_FRAMES_PER_S: u32 = 20;
/// A frame to a client that has not gone out in this long: the client is not reading.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a private channel's chat waits for a share link's code.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is on the other end.
#[derive(Clone)]
struct Me {
    name: String,
    moderator: bool,
}

/// `GET /api/v1/channels/{name}/chat` (WebSocket): anyone who may watch the channel reads;
/// signed-in users write; the streamer and admins moderate.
pub async fn chat(
    State(ctx): State<Arc<WebContext>>,
    Path(name): Path<String>,
    viewer: Viewer,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(channel) = Username::parse(&name) else {
        return json_error(StatusCode::NOT_FOUND, "no such channel").into_response();
    };
    // A page on another site may open a WebSocket here with this browser's cookies: it reads like
    // anyone, but never writes as the user.
    let me = viewer.user().filter(|_| same_origin(&headers)).map(|s| Me {
        moderator: s.user.is_admin || s.user.username == channel.as_str(),
        name: s.user.username.clone(),
    });
    let (store, lookup, user) = (
        Arc::clone(&ctx.store),
        channel.to_string(),
        me.as_ref().map(|m| m.name.clone()),
    );
    let access = blocking(move || {
        let banned = store.user(&lookup)?.is_none_or(|row| row.banned);
        let who = StoreViewer {
            user: user.as_deref(),
            share_code: None,
        };
        Ok::<_, crate::store::StoreError>(if banned {
            Access::Unknown
        } else {
            store.access(&lookup, who)?
        })
    })
    .await;
    // A private channel's reader is checked again at every ping: revoking them (or the share
    // link, or the channel's privacy) closes their chat within one ping interval.
    let (needs_share, recheck) = match access {
        Ok(Access::Public) => (false, false),
        Ok(Access::Allowed) => (false, true),
        Ok(Access::Denied) => (true, true),
        Ok(Access::Unknown) => {
            return json_error(StatusCode::NOT_FOUND, "no such channel").into_response()
        }
        Err(e) => return super::reply::store_error(&e).into_response(),
    };
    let room = ctx.chat.join(&channel);
    // Buffers sized for chat's small frames: tungstenite's defaults (128 KiB each way) made a
    // room of 1,000 readers cost 133 KiB a connection.
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            Connection {
                ctx,
                room,
                me,
                socket,
                frames: (0, 0),
                share: None,
                recheck,
            }
            .run(needs_share)
            .await
        })
}

/// True when the request's `Origin` (if it has one) names the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true; // not a browser page: cookies are then the client's own
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = (origin.to_str().ok())
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

struct Connection {
    ctx: Arc<WebContext>,
    room: Arc<Room>,
    me: Option<Me>,
    socket: WebSocket,
    /// (second, frames in it).
    frames: (i64, u32),
    /// The share link's code this connection came in with.
    share: Option<String>,
    /// Whether access is checked again at each ping (a private channel).
    recheck: bool,
}

/// Why a connection ends, told to the client in the close frame.
enum End {
    Gone,
    Close(u16, &'static str),
}

impl Connection {
    async fn run(mut self, needs_share: bool) {
        let ctx = Arc::clone(&self.ctx);
        let _counted = ctx.chat.count();
        let end = self.serve(needs_share).await;
        if let End::Close(code, reason) = end {
            debug!(channel = %self.room.channel, code, reason, "chat connection closed");
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                self.socket.send(Message::Close(Some(frame))),
            )
            .await;
        }
    }

    async fn serve(&mut self, needs_share: bool) -> End {
        if needs_share && !self.hello().await {
            return End::Close(1008, "this chat is private");
        }
        let mut rx = self.room.subscribe();
        let (store, channel) = (Arc::clone(&self.ctx.store), self.room.channel.to_string());
        let history = blocking(move || store.recent_chat(&channel, HISTORY))
            .await
            .unwrap_or_default();
        let welcome = json!({
            "type": "welcome",
            "you": self.me.as_ref().map(|m| m.name.clone()),
            "moderator": self.me.as_ref().is_some_and(|m| m.moderator),
            "history": history,
        });
        if !self.send(welcome.to_string()).await {
            return End::Gone;
        }
        // A ping every interval keeps a quiet room's connection open through proxies that close
        // idle streams, and tells a client that stopped reading: it has not answered the last
        // ping by the next. The kernel's socket buffers can hold megabytes for such a client
        // before a write would block, so waiting for a blocked write is not enough.
        let every = self.ctx.settings.chat_ping_interval;
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut unanswered = false;
        loop {
            tokio::select! {
                biased;
                _ = keepalive.tick() => {
                    if unanswered {
                        return End::Close(1008, "not reading");
                    }
                    if self.recheck && !self.may_watch().await {
                        return End::Close(1008, "no longer allowed to watch");
                    }
                    let ping = self.socket.send(Message::Ping(Default::default()));
                    if !matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(()))) {
                        return End::Close(1008, "not reading");
                    }
                    unanswered = true;
                }
                frame = rx.recv() => match frame {
                    Ok(frame) => {
                        if !self.send(frame.to_string()).await {
                            return End::Close(1008, "not reading");
                        }
                    }
                    Err(RecvError::Lagged(_)) => return End::Close(1008, "not reading"),
                    Err(RecvError::Closed) => return End::Gone,
                },
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if !self.count_frame() {
                            return End::Close(1008, "too many frames");
                        }
                        self.handle(text.as_str()).await;
                    }
                    Some(Ok(Message::Pong(_))) => unanswered = false,
                    Some(Ok(Message::Ping(_))) => {
                        if !self.count_frame() {
                            return End::Close(1008, "too many frames");
                        }
                    }
                    Some(Ok(Message::Binary(_))) => return End::Close(1003, "text frames only"),
                    // A frame over the limit is an error here, and ends the connection.
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return End::Gone,
                },
            }
        }
    }

    /// Waits for a share link's code that opens this private channel.
    async fn hello(&mut self) -> bool {
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(HELLO_TIMEOUT, self.socket.recv()).await
        else {
            return false;
        };
        let Ok(ClientFrame::Hello { share }) = serde_json::from_str(text.as_str()) else {
            return false;
        };
        self.share = Some(share).filter(|c| c.len() <= 128);
        self.may_watch().await
    }

    /// Whether this connection's user (or share link) may watch the channel now. The future
    /// owns what it needs: the socket (not `Sync`) must not be borrowed across its await.
    fn may_watch(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let (store, channel) = (Arc::clone(&self.ctx.store), self.room.channel.to_string());
        let user = self.me.as_ref().map(|m| m.name.clone());
        let share = self.share.clone();
        async move {
            blocking(move || {
                let who = StoreViewer {
                    user: user.as_deref(),
                    share_code: share.as_deref(),
                };
                store.access(&channel, who)
            })
            .await
            .is_ok_and(Access::may_watch)
        }
    }

    fn count_frame(&mut self) -> bool {
        let second = now_ms() / 1000;
        if self.frames.0 != second {
            self.frames = (second, 0);
        }
        self.frames.1 += 1;
        self.frames.1 <= MAX_FRAMES_PER_S
    }

    async fn send(&mut self, frame: String) -> bool {
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(frame.into()))).await,
            Ok(Ok(()))
        )
    }

    async fn notice(&mut self, text: &str) {
        let _ = self
            .send(json!({ "type": "notice", "text": text }).to_string())
            .await;
    }

    async fn handle(&mut self, text: &str) {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(_) => return self.notice("unreadable frame").await,
        };
        let Some(me) = self.me.clone() else {
            if !matches!(frame, ClientFrame::Hello { .. }) {
                self.notice("sign in to chat").await;
            }
            return;
        };
        let channel = self.room.channel.to_string();
        let store = Arc::clone(&self.ctx.store);
        match frame {
            ClientFrame::Hello { .. } => {}
            ClientFrame::Send { body } => self.post(&me.name, &body).await,
            _ if !me.moderator => self.notice("only the streamer and admins moderate").await,
            ClientFrame::Delete { id } => {
                if blocking(move || store.delete_chat_message(&channel, id))
                    .await
                    .unwrap_or(false)
                {
                    self.room
                        .broadcast(json!({ "type": "deleted", "id": id }).to_string());
                }
            }
            ClientFrame::Timeout { user, seconds } => {
                if !(1..=MAX_TIMEOUT_S).contains(&seconds) {
                    return self.notice("a timeout lasts 1 s to a week").await;
                }
                let until = now_ms() + seconds as i64 * 1000;
                self.mute(user, Some(until)).await;
            }
            ClientFrame::Ban { user } => self.mute(user, None).await,
            ClientFrame::Unban { user } => {
                let target = user.to_ascii_lowercase();
                let shown = target.clone();
                if blocking(move || store.unmute_in_chat(&channel, &target))
                    .await
                    .is_ok()
                {
                    self.room
                        .broadcast(json!({ "type": "unmuted", "user": shown }).to_string());
                }
            }
        }
    }

    /// A message from `name`: checked, rate-limited, stored (unless they are muted), then fanned
    /// out.
    async fn post(&mut self, name: &str, body: &str) {
        let body = match check(body) {
            Ok(body) => body,
            Err(e) => return self.notice(&e.to_string()).await,
        };
        let now = now_ms();
        if !self.room.may_send(name, now) {
            return self.notice("slow down: one message a second").await;
        }
        let (store, channel) = (Arc::clone(&self.ctx.store), self.room.channel.to_string());
        let name = name.to_string();
        let stored = blocking(move || match store.chat_mute(&channel, &name, now)? {
            Some(mute) => Ok(Err(mute)),
            None => Ok(Ok(store.add_chat_message(&channel, &name, &body, now)?)),
        })
        .await;
        match stored {
            Ok(Ok(message)) => {
                let mut frame = serde_json::to_value(&message).unwrap_or_default();
                frame["type"] = json!("message");
                self.room.broadcast(frame.to_string());
            }
            Ok(Err(Mute::Banned)) => self.notice("you are banned from this chat").await,
            Ok(Err(Mute::Until(_))) => self.notice("you are timed out").await,
            Err(crate::store::StoreError::Locked) | Err(_) => {
                self.notice("the server is busy; try again").await
            }
        }
    }

    async fn mute(&mut self, user: String, until_ms: Option<i64>) {
        let target = user.to_ascii_lowercase();
        if target == self.room.channel.as_str() {
            return self.notice("the streamer cannot be muted").await;
        }
        let (store, channel) = (Arc::clone(&self.ctx.store), self.room.channel.to_string());
        let who = target.clone();
        match blocking(move || store.mute_in_chat(&channel, &who, until_ms)).await {
            Ok(()) => {
                let by = self.me.as_ref().map_or("", |m| m.name.as_str());
                info!(channel = %self.room.channel, user = %target, by = %by, until_ms = ?until_ms, "chat mute");
                self.room.broadcast(
                    json!({ "type": "muted", "user": target, "until_ms": until_ms }).to_string(),
                );
            }
            Err(_) => self.notice("no such user").await,
        }
    }
}
