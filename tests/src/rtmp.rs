//! A raw RTMP client for hostile-input tests: a real handshake (rml_rtmp's client side), then
//! whatever bytes a test wants to send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::RtmpMessage;
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;

/// Reads what arrived within the socket's read timeout: `Ok(None)` when nothing did.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    match stream.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A raw connection.
pub struct RawRtmp {
    stream: TcpStream,
    serializer: ChunkSerializer,
}

impl RawRtmp {
    /// Connects without handshaking.
    pub fn connect(addr: SocketAddr) -> Self {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to RTMP");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            stream,
            serializer: ChunkSerializer::new(),
        }
    }

    /// Connects with a tiny receive window, as a peer that means not to read would.
    pub fn connect_small_window(addr: SocketAddr) -> Self {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket
            .connect_timeout(&addr.into(), Duration::from_secs(5))
            .expect("connect to RTMP");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            stream,
            serializer: ChunkSerializer::new(),
        }
    }

    /// An RTMP ping request (user control event 6), which rml_rtmp answers even before `connect`.
    pub fn ping_request() -> Vec<u8> {
        // Chunk stream 2, type 4 (user control), 6-byte payload: event 6 + a timestamp.
        vec![
            0x02, 0, 0, 0, 0, 0, 6, 0x04, 0, 0, 0, 0, 0x00, 0x06, 0, 0, 0, 1,
        ]
    }

    /// Sends pings without reading a byte, until the server stops taking them (our writes block
    /// for `stall`) or `limit` bytes went out. True when the server stopped taking them.
    pub fn flood_pings_until_blocked(&mut self, stall: Duration, limit: usize) -> bool {
        let burst: Vec<u8> = Self::ping_request().repeat(1024);
        self.stream.set_write_timeout(Some(stall)).unwrap();
        let mut sent = 0;
        while sent < limit {
            // Whole bursts only: a burst cut short and then sent again from its start would put
            // half a message before a whole one — garbage the parser rejects, not the attack.
            if self.stream.write_all(&burst).is_err() {
                return true;
            }
            sent += burst.len();
        }
        false
    }

    /// Performs a valid client handshake.
    pub fn handshake(&mut self) {
        let mut hs = Handshake::new(PeerType::Client);
        let c0c1 = hs.generate_outbound_p0_and_p1().unwrap();
        self.stream.write_all(&c0c1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "handshake timed out");
            let n = match read_some(&mut self.stream, &mut buf) {
                Ok(None) => continue,
                Ok(Some(0)) => panic!("server closed during handshake"),
                Ok(Some(n)) => n,
                Err(e) => panic!("handshake read: {e}"),
            };
            match hs.process_bytes(&buf[..n]).unwrap() {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.stream.write_all(&response_bytes).unwrap()
                }
                HandshakeProcessResult::Completed { response_bytes, .. } => {
                    self.stream.write_all(&response_bytes).unwrap();
                    return;
                }
            }
        }
    }

    /// Sends bytes; errors (the server already closed) are ignored.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Serialises an AMF0 command on the chunk stream.
    pub fn command(
        &mut self,
        name: &str,
        transaction: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Vec<u8> {
        self.command_on(0, name, transaction, object, args)
    }

    /// Serialises an AMF0 command on message stream `stream_id` (1 is the first createStream's).
    pub fn command_on(
        &mut self,
        stream_id: u32,
        name: &str,
        transaction: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Vec<u8> {
        let message = RtmpMessage::Amf0Command {
            command_name: name.to_string(),
            transaction_id: transaction,
            command_object: object,
            additional_arguments: args,
        };
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), stream_id)
            .unwrap();
        self.serializer
            .serialize(&payload, true, false)
            .unwrap()
            .bytes
    }

    /// Serialises a Set Chunk Size message.
    pub fn set_chunk_size(&mut self, size: u32) -> Vec<u8> {
        // Built by hand: rml_rtmp's serializer refuses sizes it considers invalid.
        let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0];
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes
    }

    /// True when the server closes the connection within `timeout` (EOF or reset).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if matches!(read_some(&mut self.stream, &mut buf), Ok(Some(0)) | Err(_)) {
                return true;
            }
        }
        false
    }
}

/// A publisher speaking RTMP through rml_rtmp's client session, sending whatever FLV tag bodies and
/// timestamps a test chooses, as fast as the socket takes them: what a hostile streamer with a
/// valid key can do that ffmpeg will not.
pub struct RawPublisher {
    raw: RawRtmp,
    session: rml_rtmp::sessions::ClientSession,
}

impl RawPublisher {
    /// Connects to `app` and publishes with `key`; `Err` says why the server refused.
    pub fn start(addr: SocketAddr, app: &str, key: &str) -> Result<Self, String> {
        use rml_rtmp::sessions::{
            ClientSession, ClientSessionConfig, ClientSessionEvent, PublishRequestType,
        };
        let mut raw = RawRtmp::connect(addr);
        raw.handshake();
        let (session, _) =
            ClientSession::new(ClientSessionConfig::new()).map_err(|e| e.to_string())?;
        let mut me = Self { raw, session };
        let request = me
            .session
            .request_connection(app.to_string())
            .map_err(|e| e.to_string())?;
        me.write_result(request)?;
        me.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))?;
        let request = me
            .session
            .request_publishing(key.to_string(), PublishRequestType::Live)
            .map_err(|e| e.to_string())?;
        me.write_result(request)?;
        me.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))?;
        me.raw
            .stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Ok(me)
    }

    fn write_result(
        &mut self,
        result: rml_rtmp::sessions::ClientSessionResult,
    ) -> Result<(), String> {
        if let rml_rtmp::sessions::ClientSessionResult::OutboundResponse(packet) = result {
            self.raw
                .stream
                .write_all(&packet.bytes)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn wait_for(
        &mut self,
        wanted: impl Fn(&rml_rtmp::sessions::ClientSessionEvent) -> bool,
    ) -> Result<(), String> {
        use rml_rtmp::sessions::ClientSessionResult;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let n = match read_some(&mut self.raw.stream, &mut buf) {
                Ok(None) => continue,
                Ok(Some(0)) => return Err("the server closed the connection".into()),
                Ok(Some(n)) => n,
                Err(e) => return Err(e.to_string()),
            };
            let results = self
                .session
                .handle_input(&buf[..n])
                .map_err(|e| e.to_string())?;
            let mut found = false;
            for result in results {
                match result {
                    ClientSessionResult::RaisedEvent(event) => {
                        if let rml_rtmp::sessions::ClientSessionEvent::ConnectionRequestRejected {
                            description,
                        } = &event
                        {
                            return Err(description.clone());
                        }
                        found |= wanted(&event);
                    }
                    other => self.write_result(other)?,
                }
            }
            if found {
                return Ok(());
            }
        }
        Err("no answer from the server".into())
    }

    /// Sends an FLV video tag body at RTMP time `ms`; `Err` once the server has closed.
    pub fn video(&mut self, body: &[u8], ms: u32) -> Result<(), String> {
        self.media(true, body, ms)
    }

    /// Sends an FLV audio tag body at RTMP time `ms`; `Err` once the server has closed.
    pub fn audio(&mut self, body: &[u8], ms: u32) -> Result<(), String> {
        self.media(false, body, ms)
    }

    fn media(&mut self, video: bool, body: &[u8], ms: u32) -> Result<(), String> {
        let (data, at) = (bytes::Bytes::copy_from_slice(body), RtmpTimestamp::new(ms));
        let packet = if video {
            self.session.publish_video_data(data, at, false)
        } else {
            self.session.publish_audio_data(data, at, false)
        };
        self.write_result(packet.map_err(|e| e.to_string())?)
    }
}

/// FLV tag bodies for [`RawPublisher`]: a minimal H.264 configuration and frames of any size, and
/// AAC-LC 48 kHz stereo, enough for the packager to package.
pub mod flv {
    const RECORD: &[u8] = &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03,
        0x68, 0xeb, 0xe3,
    ];

    /// The AVC sequence header.
    pub fn avc_config() -> Vec<u8> {
        let mut body = vec![0x17, 0x00, 0, 0, 0];
        body.extend_from_slice(RECORD);
        body
    }

    /// One frame of `size` bytes.
    pub fn video(keyframe: bool, size: usize) -> Vec<u8> {
        let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.push(if keyframe { 0x65 } else { 0x41 });
        body.resize(body.len() + size - 1, 0xab);
        body
    }

    /// The AAC sequence header.
    pub fn aac_config() -> Vec<u8> {
        vec![0xaf, 0x00, 0x11, 0x90]
    }

    /// One AAC frame.
    pub fn audio() -> Vec<u8> {
        let mut body = vec![0xaf, 0x01];
        body.resize(302, 0x21);
        body
    }
}
