//! RTMP bytes as the ingest feeds them to rml_rtmp: a handshake, then the server session, both
//! behind the ingest's panic wall. rml_rtmp is known to panic on some inputs; the wall must turn
//! every one into an error, so nothing escapes to kill the server.
#![no_main]
use boltstream_ingest::rtmp::session::{HandshakeStep, ServerHandshake, Session};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    // libfuzzer-sys aborts on any panic via its hook; the ingest catches rml_rtmp's panics, so
    // restore a silent hook and let only escaped panics (which then abort) count as crashes.
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let (first, second) = data.split_at(data.len().min(1537));
    let mut handshake = ServerHandshake::default();
    let _ = handshake.feed(first);
    let Ok((mut session, _)) = Session::new() else { return };
    for chunk in second.chunks(257) {
        if session.feed(chunk).is_err() {
            return;
        }
    }
    let _ = matches!(handshake.feed(&[]), Ok(HandshakeStep::Continue(_)));
});
