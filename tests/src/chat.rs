//! A chat client for tests: a real WebSocket (tungstenite) speaking the chat's JSON frames, with
//! a session cookie when it should be someone.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// One connection to a channel's room.
pub struct ChatClient {
    ws: WebSocket<TcpStream>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The connection dropped without one.
    Dropped,
}

impl ChatClient {
    /// Connects to `channel`'s room on `addr`, sending `cookie` (e.g. `bs_session=…`) if given.
    pub fn connect(addr: SocketAddr, channel: &str, cookie: Option<&str>) -> Result<Self, String> {
        Self::connect_with(addr, channel, cookie, &[])
    }

    /// [`Self::connect`] with extra request headers.
    pub fn connect_with(
        addr: SocketAddr,
        channel: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        let url = format!("ws://{addr}/api/v1/channels/{channel}/chat");
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        if let Some(c) = cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        for (k, v) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (ws, _) = tungstenite::client(req, stream).map_err(|e| e.to_string())?;
        Ok(Self { ws })
    }

    /// Sends a frame (a JSON value).
    pub fn send(&mut self, frame: &Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .unwrap();
    }

    /// Sends raw text.
    pub fn send_text(&mut self, text: String) -> bool {
        self.ws.send(Message::Text(text.into())).is_ok()
    }

    /// Sends a binary frame.
    pub fn send_binary(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.send(Message::Binary(bytes.into())).is_ok()
    }

    /// The next JSON frame within `timeout`, or how the connection ended.
    pub fn recv(&mut self, timeout: Duration) -> Result<Value, Option<Closed>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(None);
            }
            self.ws.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
                Ok(Message::Close(frame)) => {
                    return Err(Some(
                        frame.map_or(Closed::Dropped, |f| Closed::Code(f.code.into())),
                    ))
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(None)
                }
                Err(_) => return Err(Some(Closed::Dropped)),
            }
        }
    }

    /// Reads (without parsing) whatever has arrived, for up to `budget`; answers pings as a
    /// reading client does. Returns the frames read.
    pub fn drain(&mut self, budget: Duration) -> usize {
        let deadline = Instant::now() + budget;
        let mut n = 0;
        self.ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => n += 1,
                Err(_) => break,
            }
        }
        let _ = self.ws.flush();
        n
    }

    /// The next frame of type `kind` within `timeout`, skipping others.
    pub fn next_of(&mut self, kind: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Ok(v) if v["type"] == kind => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Reads until the server closes the connection (or `timeout`); how it ended.
    pub fn closed_within(&mut self, timeout: Duration) -> Option<Closed> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Ok(_) => continue,
                Err(Some(closed)) => return Some(closed),
                Err(None) => return None,
            }
        }
        None
    }
}
