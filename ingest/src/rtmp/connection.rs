//! One RTMP connection: handshake, connect, the publish decision, then media into the stream's
//! sink until the publisher stops, goes idle, is dropped by an operator, or the server shuts down.
//! Everything a client sends is untrusted: every wait has a deadline, every parser call is
//! contained, and whatever goes wrong ends this connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boltstream_shared::key;
use boltstream_shared::username::Username;
use rml_rtmp::sessions::{ServerSessionEvent, ServerSessionResult, StreamMetadata};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use tracing::{debug, info, warn};

use super::session::{HandshakeStep, ServerHandshake, Session, SessionError};
use super::socket::RtmpSocket;
use super::RtmpContext;
use crate::clock::now_ms;
use crate::limits::Verdict;
use crate::live::{Counters, LiveStream, Media, MediaSink, Metadata, PublishSpec};
use crate::store::{PublishDecision, PublishId, PublishRefusal};

const READ_BUFFER: usize = 64 * 1024;
/// Most output we queue for a peer that has not published yet. Before `connect` rml_rtmp answers
/// pings on its own, so a client that sends them and never reads could otherwise make us queue
/// without end; a real client's replies before publishing are well under a kilobyte.
const MAX_SETUP_OUTPUT: usize = 256 * 1024;
/// Enough for any handshake message (C0+C1 is 1537 bytes).
const HANDSHAKE_BUFFER: usize = 4 * 1024;

thread_local! {
    /// One read buffer per runtime thread, not per connection: bytes are handed to the session
    /// as soon as they are read, so a connection only needs a buffer for that instant — at 100
    /// publishers, per-connection buffers were 6 MB of the process's memory.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_BUFFER]);
}

/// How a connection ended: as connections do, or because something went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionEnd {
    /// The client closed the socket.
    #[error("client closed the connection")]
    Closed,
    /// The publisher ended its stream.
    #[error("publisher finished")]
    Finished,
    /// An operator dropped the publisher (ban or stop).
    #[error("dropped by an operator")]
    Dropped,
    /// The server is shutting down.
    #[error("server shutting down")]
    Shutdown,
    /// We refused a request (a wrong key, an unknown app, playback) and closed.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// Something went wrong.
    #[error(transparent)]
    Failed(#[from] ConnectionError),
}

/// What went wrong with a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// A socket error.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Invalid RTMP.
    #[error(transparent)]
    Protocol(#[from] SessionError),
    /// Handshake or publish did not happen in time.
    #[error("timed out before publishing")]
    SetupTimeout,
    /// A publisher sent no media for the idle timeout.
    #[error("no media received for {0} s")]
    Idle(u64),
    /// A peer that is not publishing let our replies pile up unread.
    #[error("refused: too much unread output before publishing")]
    Unread,
    /// The packager cannot handle the media.
    #[error("media refused: {0}")]
    Media(String),
}

/// What the socket gave.
enum Read {
    /// Nothing yet (a spurious wake-up).
    Nothing,
    /// The peer closed.
    Closed,
    /// What the session made of the bytes.
    Results(Vec<ServerSessionResult>),
}

/// An accepted publish. Dropping it without [`Publishing::end`] (a panic in this task) still takes
/// the stream offline, from a blocking task.
struct Publishing {
    stream: Arc<LiveStream>,
    sink: Box<dyn MediaSink>,
    last_media: Instant,
    /// When the frame that completes the sink's next segment should arrive.
    expected_cut: Option<TokioInstant>,
    last_keyframe: Option<u32>,
    ctx: Arc<RtmpContext>,
    ended: bool,
}

impl Publishing {
    fn cleanup(&mut self) -> (Username, PublishId) {
        self.ended = true;
        self.sink.finish(now_ms());
        self.ctx
            .registry
            .remove(&self.stream.user, self.stream.publish_id);
        (self.stream.user.clone(), self.stream.publish_id)
    }

    async fn end(mut self, reason: &str) {
        let (user, id) = self.cleanup();
        let store = Arc::clone(&self.ctx.store);
        let result = tokio::task::spawn_blocking(move || store.end_publish(&user, id)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                warn!(user = %self.stream.user, error = %err, "could not mark the stream offline")
            }
            Err(err) => {
                warn!(user = %self.stream.user, error = %err, "could not mark the stream offline")
            }
        }
        let c = &self.stream.counters;
        info!(
            user = %self.stream.user,
            reason = %reason,
            seconds = (now_ms() - self.stream.since_ms) / 1000,
            video_frames = Counters::get(&c.video_frames),
            audio_frames = Counters::get(&c.audio_frames),
            bytes = Counters::get(&c.bytes),
            "publish ended"
        );
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        if !self.ended {
            let (user, id) = self.cleanup();
            let store = Arc::clone(&self.ctx.store);
            tokio::task::spawn_blocking(move || store.end_publish(&user, id));
        }
    }
}

/// Serves one connection until it ends; never returns an error to the listener.
pub async fn serve(socket: TcpStream, peer: SocketAddr, ctx: Arc<RtmpContext>) {
    let setup_deadline = TokioInstant::now() + ctx.settings.handshake_timeout;
    let mut conn = Connection {
        socket: RtmpSocket::new(socket),
        peer,
        setup_deadline,
        ctx,
        out: Vec::with_capacity(4096),
        publishing: None,
    };
    let end = conn.run().await.unwrap_or_else(ConnectionEnd::Failed);
    // Reasons can carry rml_rtmp's error text, which quotes client input: scrub before logging.
    let reason = key::for_log(&end.to_string());
    match conn.publishing.take() {
        Some(publishing) => publishing.end(&reason).await,
        None => match &end {
            ConnectionEnd::Closed | ConnectionEnd::Refused(_) => {
                debug!(peer = %peer, reason = %reason, "connection ended")
            }
            _ => info!(peer = %peer, reason = %reason, "connection dropped"),
        },
    }
    conn.socket.shutdown().await;
    if !matches!(end, ConnectionEnd::Shutdown) {
        linger(&mut conn.socket).await;
    }
}

/// Reads and drops what the peer still sends, briefly, before the socket is closed. Closing with
/// unread bytes makes the kernel answer with a reset, which can reach the client before the reply
/// it has not read yet — ffmpeg then shows "Broken pipe" instead of why it was refused (the
/// client pipelines its next commands behind `connect`).
async fn linger(socket: &mut RtmpSocket) {
    const LINGER: Duration = Duration::from_millis(500);
    const MAX_DRAINED: usize = 64 * 1024;
    let deadline = TokioInstant::now() + LINGER;
    let mut buf = [0u8; 2048];
    let mut drained = 0;
    while drained < MAX_DRAINED {
        match socket.read(&mut buf, deadline, None).await {
            Ok(Some(n)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

struct Connection {
    socket: RtmpSocket,
    peer: SocketAddr,
    /// Handshake, connect and publish must be done by then — every wait before publishing,
    /// writes included, ends at this deadline.
    setup_deadline: TokioInstant,
    ctx: Arc<RtmpContext>,
    out: Vec<u8>,
    publishing: Option<Publishing>,
}

/// What the event handler wants next.
enum Flow {
    Continue,
    End(ConnectionEnd),
}

impl Connection {
    /// The RTMP handshake, by the setup deadline; returns what the client sent after it, or
    /// `None` if it closed.
    async fn handshake(&mut self) -> Result<Option<Vec<u8>>, ConnectionError> {
        let setup_deadline = self.setup_deadline;
        let mut buf = vec![0u8; HANDSHAKE_BUFFER];
        let mut handshake = ServerHandshake::default();
        loop {
            let n = match self.socket.read(&mut buf, setup_deadline, None).await? {
                None => return Err(ConnectionError::SetupTimeout),
                Some(0) => return Ok(None),
                Some(n) => n,
            };
            match handshake.feed(&buf[..n])? {
                HandshakeStep::Continue(response) => {
                    self.socket.write_all(&response, setup_deadline).await?
                }
                HandshakeStep::Done {
                    response,
                    remaining,
                } => {
                    self.socket.write_all(&response, setup_deadline).await?;
                    return Ok(Some(remaining));
                }
            }
        }
    }

    async fn run(&mut self) -> Result<ConnectionEnd, ConnectionError> {
        let setup_deadline = self.setup_deadline;
        let Some(remaining) = self.handshake().await? else {
            return Ok(ConnectionEnd::Closed);
        };
        let (mut session, initial) = Session::new()?;
        self.queue(initial);
        self.flush().await?;
        if let Flow::End(end) = self.feed(&mut session, &remaining).await? {
            return Ok(end);
        }
        let shutdown = self.ctx.shutdown.clone();
        loop {
            if self.publishing.is_some() {
                self.socket.poll_on_ticks();
            }
            let deadline = match &self.publishing {
                Some(p) => TokioInstant::from_std(p.last_media + self.ctx.settings.idle_timeout),
                None => setup_deadline,
            };
            let cancel = self.publishing.as_ref().map(|p| p.stream.cancel.clone());
            let expected = self.publishing.as_ref().and_then(|p| p.expected_cut);
            let ready = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(ConnectionEnd::Shutdown),
                () = async { match &cancel { Some(c) => c.cancelled().await, None => std::future::pending().await } } => {
                    return Ok(ConnectionEnd::Dropped)
                }
                ready = self.socket.ready(deadline, expected) => ready?,
            };
            if !ready {
                return Err(match self.publishing {
                    Some(_) => ConnectionError::Idle(self.ctx.settings.idle_timeout.as_secs()),
                    None => ConnectionError::SetupTimeout,
                });
            }
            let socket = &mut self.socket;
            let read = READ_BUF.with_borrow_mut(|buf| -> Result<Read, ConnectionError> {
                Ok(match socket.try_read(buf)? {
                    None => Read::Nothing,
                    Some(0) => Read::Closed,
                    Some(n) => Read::Results(session.feed(&buf[..n])?),
                })
            })?;
            match read {
                Read::Nothing => {}
                Read::Closed => return Ok(ConnectionEnd::Closed),
                Read::Results(results) => {
                    if let Flow::End(end) = self.handle(&mut session, results).await? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    fn queue(&mut self, results: Vec<ServerSessionResult>) -> Vec<ServerSessionEvent> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.out.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => events.push(event),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        events
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.publishing.is_none() && self.out.len() > MAX_SETUP_OUTPUT {
            return Err(ConnectionError::Unread);
        }
        // Publishing, the socket is polled and bounds what a peer may owe itself.
        self.socket
            .write_all(&self.out, self.setup_deadline)
            .await?;
        self.out.clear();
        Ok(())
    }

    async fn feed(&mut self, session: &mut Session, bytes: &[u8]) -> Result<Flow, ConnectionError> {
        if bytes.is_empty() {
            return Ok(Flow::Continue);
        }
        let results = session.feed(bytes)?;
        self.handle(session, results).await
    }

    async fn handle(
        &mut self,
        session: &mut Session,
        results: Vec<ServerSessionResult>,
    ) -> Result<Flow, ConnectionError> {
        let events = self.queue(results);
        for event in events {
            let flow = self.on_event(session, event).await?;
            if let Flow::End(end) = flow {
                self.flush().await?;
                return Ok(Flow::End(end));
            }
        }
        self.flush().await?;
        Ok(Flow::Continue)
    }

    async fn refuse(
        &mut self,
        session: &mut Session,
        request_id: u32,
        code: &str,
        why: &'static str,
    ) -> Result<Flow, ConnectionError> {
        let results = session.reject(request_id, code, why)?;
        self.queue(results);
        Ok(Flow::End(ConnectionEnd::Refused(why)))
    }

    async fn on_connect(
        &mut self,
        session: &mut Session,
        request_id: u32,
        app_name: &str,
    ) -> Result<Flow, ConnectionError> {
        if app_name != self.ctx.settings.rtmp_app {
            info!(peer = %self.peer, app = %key::for_log(app_name), outcome = "refused", reason = "unknown app", "connect");
            return self
                .refuse(
                    session,
                    request_id,
                    "NetConnection.Connect.Rejected",
                    "unknown app",
                )
                .await;
        }
        let results = session.accept(request_id)?;
        self.queue(results);
        Ok(Flow::Continue)
    }

    async fn on_event(
        &mut self,
        session: &mut Session,
        event: ServerSessionEvent,
    ) -> Result<Flow, ConnectionError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => return self.on_connect(session, request_id, &app_name).await,
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => {
                return self.on_publish(session, request_id, stream_key).await;
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                info!(peer = %self.peer, outcome = "refused", "rtmp play refused: viewers watch over HLS");
                return self
                    .refuse(
                        session,
                        request_id,
                        "NetStream.Play.Failed",
                        "playback is not offered over RTMP",
                    )
                    .await;
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                self.media(Media::Metadata(convert_metadata(&metadata)))?;
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.media(Media::Video {
                    timestamp: timestamp.value,
                    data,
                })?;
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.media(Media::Audio {
                    timestamp: timestamp.value,
                    data,
                })?;
            }
            ServerSessionEvent::PublishStreamFinished { .. } if self.publishing.is_some() => {
                return Ok(Flow::End(ConnectionEnd::Finished));
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn media(&mut self, media: Media) -> Result<(), ConnectionError> {
        // rml_rtmp raises media only on a stream it accepted for publishing, which we only do
        // after auth; anything else is ignored.
        let Some(p) = self.publishing.as_mut() else {
            return Ok(());
        };
        if !matches!(media, Media::Metadata(_)) {
            p.last_media = Instant::now();
        }
        p.stream.counters.account(&media, &mut p.last_keyframe);
        p.sink
            .push(media, now_ms())
            .map_err(|e| ConnectionError::Media(e.to_string()))?;
        // Media time maps to wall time for a live publisher: what arrives next is about as far
        // in the future as it is ahead of the newest frame.
        let now = TokioInstant::now();
        p.expected_cut = p.sink.cut_due_in_ms().map(|ms| {
            let by = Duration::from_millis(ms.unsigned_abs());
            if ms >= 0 {
                now + by
            } else {
                now.checked_sub(by).unwrap_or(now)
            }
        });
        Ok(())
    }

    async fn on_publish(
        &mut self,
        session: &mut Session,
        request_id: u32,
        presented: String,
    ) -> Result<Flow, ConnectionError> {
        const BAD_NAME: &str = "NetStream.Publish.BadName";
        let decision = if self.publishing.is_some() {
            Err("already publishing on this connection")
        } else {
            self.authorize(presented).await
        };
        match decision {
            Ok((user, publish_id)) => {
                self.start_publishing(session, request_id, user, publish_id)
                    .await
            }
            Err(why) => self.refuse(session, request_id, BAD_NAME, why).await,
        }
    }

    /// The publish decision for a presented key, with its log line and the failure throttle's
    /// accounting (an attempt counts as it starts; only a wrong key stays counted). `Err` is
    /// what the client is told.
    async fn authorize(
        &mut self,
        presented: String,
    ) -> Result<(Username, PublishId), &'static str> {
        let ip = self.peer.ip();
        if let Verdict::Throttled { first } = self.ctx.throttle.begin_ip(ip, Instant::now()) {
            if first {
                warn!(peer = %self.peer, "publish attempts throttled: too many failures from this address in the last minute");
            }
            return Err("too many failed attempts; try again later");
        }
        let shown = key::redact(&presented);
        let (store, ctx) = (Arc::clone(&self.ctx.store), Arc::clone(&self.ctx));
        let decision = tokio::task::spawn_blocking(move || {
            store.begin_publish(&presented, &ctx.settings.node)
        })
        .await;
        let refusal = match decision {
            Ok(Ok(PublishDecision::Accepted(user, publish_id))) => {
                self.ctx.throttle.succeeded_ip(ip);
                return Ok((user, publish_id));
            }
            Ok(Ok(PublishDecision::Refused(refusal))) => refusal,
            Ok(Err(err)) => {
                self.ctx.throttle.succeeded_ip(ip);
                warn!(peer = %self.peer, key = %shown, outcome = "error", error = %err, "publish");
                return Err("server error; try again");
            }
            Err(join) => {
                self.ctx.throttle.succeeded_ip(ip);
                warn!(peer = %self.peer, key = %shown, outcome = "error", error = %join, "publish: the database task failed");
                return Err("server error; try again");
            }
        };
        if refusal != PublishRefusal::UnknownKey {
            self.ctx.throttle.succeeded_ip(ip);
        }
        info!(peer = %self.peer, key = %shown, outcome = "refused", reason = %refusal, "publish");
        Err(match refusal {
            PublishRefusal::UnknownKey => "invalid stream key",
            PublishRefusal::Banned => "this account may not publish",
            PublishRefusal::AlreadyLive => "this stream is already live",
        })
    }

    /// Registers an accepted publish, opens its sink and tells the client.
    async fn start_publishing(
        &mut self,
        session: &mut Session,
        request_id: u32,
        user: Username,
        publish_id: PublishId,
    ) -> Result<Flow, ConnectionError> {
        let stream = Arc::new(LiveStream {
            user: user.clone(),
            publish_id,
            since_ms: now_ms(),
            cancel: self.ctx.shutdown.child_token(),
            counters: Counters::default(),
        });
        self.ctx.registry.insert(Arc::clone(&stream));
        // Read as the publish starts: a private channel's publish is encrypted from its first
        // segment. A store error is taken as private and unrecorded — never the less safe guess.
        let spec = {
            let (store, name) = (Arc::clone(&self.ctx.store), user.to_string());
            tokio::task::spawn_blocking(move || store.publish_spec(&name))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .unwrap_or(PublishSpec {
                    private: true,
                    ..PublishSpec::default()
                })
        };
        let sink = self.ctx.sinks.open(&user, &spec);
        self.publishing = Some(Publishing {
            stream,
            sink,
            last_media: Instant::now(),
            expected_cut: None,
            last_keyframe: None,
            ctx: Arc::clone(&self.ctx),
            ended: false,
        });
        let results = session.accept(request_id)?;
        let events = self.queue(results);
        info!(peer = %self.peer, user = %user, outcome = "accepted", "publish");
        for event in events {
            if let Flow::End(end) = Box::pin(self.on_event(session, event)).await? {
                return Ok(Flow::End(end));
            }
        }
        Ok(Flow::Continue)
    }
}

fn convert_metadata(m: &StreamMetadata) -> Metadata {
    Metadata {
        width: m.video_width,
        height: m.video_height,
        video_codec_id: m.video_codec_id,
        audio_codec_id: m.audio_codec_id,
        frame_rate: m.video_frame_rate,
        audio_sample_rate: m.audio_sample_rate,
    }
}
