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
            match self.stream.write(&burst) {
                Ok(n) => sent += n,
                Err(_) => return true,
            }
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
            let n = match self.stream.read(&mut buf) {
                Ok(0) => panic!("server closed during handshake"),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
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
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}
