//! rml_rtmp's handshake and server session behind a panic wall. The crate's chunk deserializer
//! panics on some legal and some hostile inputs (see `notes/rtmp-hls.md`); a panic there must cost
//! only the connection that caused it, so every call into the crate is contained here and turned
//! into an error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionResult};

/// A protocol failure that ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The handshake bytes were invalid.
    #[error("bad handshake: {0}")]
    Handshake(String),
    /// The chunk stream or a message was invalid.
    #[error("bad RTMP input: {0}")]
    Protocol(String),
    /// rml_rtmp panicked on this input.
    #[error("RTMP input crashed the parser (connection dropped)")]
    ParserPanic,
}

fn contained<T>(f: impl FnOnce() -> T) -> Result<T, SessionError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| SessionError::ParserPanic)
}

/// Where the handshake stands after some bytes.
pub enum HandshakeStep {
    /// Send these bytes and read more.
    Continue(Vec<u8>),
    /// Done: send `response`, then feed `remaining` to the session.
    Done {
        /// Last handshake bytes to send.
        response: Vec<u8>,
        /// Bytes after the handshake (the client's first chunks).
        remaining: Vec<u8>,
    },
}

/// The server side of the RTMP handshake.
pub struct ServerHandshake(Handshake);

impl Default for ServerHandshake {
    fn default() -> Self {
        Self(Handshake::new(PeerType::Server))
    }
}

impl ServerHandshake {
    /// Feeds bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<HandshakeStep, SessionError> {
        match contained(|| self.0.process_bytes(bytes))? {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                Ok(HandshakeStep::Continue(response_bytes))
            }
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => Ok(HandshakeStep::Done {
                response: response_bytes,
                remaining: remaining_bytes,
            }),
            Err(e) => Err(SessionError::Handshake(e.to_string())),
        }
    }
}

/// The RTMP server session (chunk stream + command handling).
pub struct Session(ServerSession);

impl Session {
    /// A new session and the packets to send first.
    pub fn new() -> Result<(Self, Vec<ServerSessionResult>), SessionError> {
        let (session, results) = contained(|| ServerSession::new(ServerSessionConfig::new()))?
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        Ok((Self(session), results))
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, SessionError> {
        contained(|| self.0.handle_input(bytes))?.map_err(|e| SessionError::Protocol(e.to_string()))
    }

    /// Accepts a connect or publish request.
    pub fn accept(&mut self, request_id: u32) -> Result<Vec<ServerSessionResult>, SessionError> {
        contained(|| self.0.accept_request(request_id))?
            .map_err(|e| SessionError::Protocol(e.to_string()))
    }

    /// Refuses a request with an RTMP status code and a description the client prints.
    pub fn reject(
        &mut self,
        request_id: u32,
        code: &str,
        description: &str,
    ) -> Result<Vec<ServerSessionResult>, SessionError> {
        contained(|| self.0.reject_request(request_id, code, description))?
            .map_err(|e| SessionError::Protocol(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_after_handshake_are_an_error_not_a_crash() {
        let (mut session, _) = Session::new().unwrap();
        // A chunk header claiming a huge message on one chunk stream, then a type-3 continuation
        // on another: the interleaving that panics rml_rtmp's shared payload buffer.
        let mut hostile = vec![0x04, 0, 0, 0, 0xff, 0xff, 0xff, 0x09, 1, 0, 0, 0];
        hostile.extend_from_slice(&[0xAB; 128]);
        hostile.extend_from_slice(&[0xC5, 0xC6, 0xC7]);
        hostile.extend_from_slice(&[0x55; 4096]);
        // Whatever happens, the call returns.
        let _ = session.feed(&hostile);
        let mut state = 0x1234_5678u32;
        for _ in 0..200 {
            let (mut s, _) = Session::new().unwrap();
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = s.feed(&bytes);
        }
    }

    #[test]
    fn bad_handshake_is_an_error() {
        let mut hs = ServerHandshake::default();
        let mut bytes = vec![0x07u8]; // unsupported RTMP version
        bytes.extend_from_slice(&[0u8; 1536]);
        assert!(matches!(
            hs.feed(&bytes),
            Err(SessionError::Handshake(_)) | Ok(_)
        ));
    }
}
