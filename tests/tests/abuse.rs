//! Slowloris on HTTP and RTMP from one loopback address (127.0.0.2) does not stop a real publisher
//! and viewer on another (127.0.0.1).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use boltstream_tests::http::get;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;
use socket2::{Domain, Socket, Type};

/// A connection from `source` (another loopback address) to `to`.
fn connect_from(source: &str, to: SocketAddr) -> Option<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).ok()?;
    socket
        .connect_timeout(&to.into(), Duration::from_secs(2))
        .ok()?;
    Some(socket.into())
}

#[test]
fn slowloris_does_not_starve_real_clients() {
    let server = Server::start(&["--max-connections-per-ip", "40", "--handshake-timeout", "3"]);
    let key = server.add_user("alice");
    // 120 half-open HTTP requests and 120 silent RTMP connections from 127.0.0.2.
    let mut idle = Vec::new();
    for _ in 0..120 {
        if let Some(mut s) = connect_from("127.0.0.2", server.http) {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            idle.push(s);
        }
        if let Some(s) = connect_from("127.0.0.2", server.rtmp) {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 80, "could not open attack connections");
    // A real publisher and a real viewer from 127.0.0.1 are served meanwhile.
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let playlist = wait_for(Duration::from_secs(10), || {
        Some(get(server.http, "/live/alice/index.m3u8")).filter(|r| r.status == 200)
    });
    assert!(playlist.is_some(), "the viewer was starved");
    assert!(publisher.running(), "{}", publisher.stderr());
    assert_eq!(get(server.internal, "/internal/health").status, 200);
    // The idle RTMP connections are closed by the handshake timeout, the HTTP ones by the header
    // timeout; the server holds no more than the per-address cap of them at any time.
    std::thread::sleep(Duration::from_secs(4));
    assert!(publisher.running());
    drop(idle);
    let log = server.log();
    assert!(
        log.contains("rtmp connection refused: per-address cap reached"),
        "{log}"
    );
    assert!(
        log.contains("http connection refused: per-address cap reached"),
        "{log}"
    );
}
