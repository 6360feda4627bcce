//! Chat against the real binary over real WebSockets: the room, moderation, and every bound a
//! hostile client meets — floods, oversized and binary frames, frame storms, a peer that never
//! reads, another site's page, a private channel.

use std::io::Write;
use std::time::{Duration, Instant};

use boltstream_ingest::store::Store;
use boltstream_tests::chat::{ChatClient, Closed};
use boltstream_tests::http::get;
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

/// Users (created straight in the server's database, which is fast) and a session cookie each.
fn sessions(server: &Server, names: &[&str]) -> Vec<String> {
    let store = Store::open(&server.data().join("boltstream.db")).unwrap();
    names
        .iter()
        .map(|name| {
            if store.user(name).unwrap().is_none() {
                store.add_user(name, false).unwrap();
            }
            let (token, _) = store.create_session(name).unwrap();
            format!("bs_session={token}")
        })
        .collect()
}

fn join(server: &Server, channel: &str, cookie: Option<&str>) -> (ChatClient, Value) {
    let mut c = ChatClient::connect(server.http, channel, cookie).expect("connect");
    let welcome = c.next_of("welcome", WAIT).expect("a welcome frame");
    (c, welcome)
}

fn chat_connections(server: &Server) -> u64 {
    let metrics = get(server.internal, "/internal/metrics").text();
    (metrics.lines())
        .find_map(|l| l.strip_prefix("boltstream_chat_connections "))
        .and_then(|v| v.parse().ok())
        .expect("the chat gauge")
}

#[test]
fn a_room_carries_messages_and_its_streamer_moderates_it() {
    let server = Server::start(&[]);
    server.add_user("alice");
    let cookies = sessions(&server, &["alice", "bob", "carol"]);
    let (alice, bob, carol) = (&cookies[0], &cookies[1], &cookies[2]);
    let (mut a, w) = join(&server, "alice", Some(alice));
    assert_eq!(
        (w["you"].as_str(), w["moderator"].as_bool()),
        (Some("alice"), Some(true))
    );
    let (mut b, w) = join(&server, "alice", Some(bob));
    assert_eq!(
        (w["you"].as_str(), w["moderator"].as_bool()),
        (Some("bob"), Some(false))
    );
    let (mut c, _) = join(&server, "alice", Some(carol));
    let (mut anon, w) = join(&server, "alice", None);
    assert!(w["you"].is_null());

    // A message reaches everyone, as text: markup is kept as characters, never interpreted here.
    b.send(&json!({"type": "send", "body": "  hi <b>all</b>  "}));
    let mut id = 0;
    for client in [&mut a, &mut b, &mut c, &mut anon] {
        let m = client.next_of("message", WAIT).expect("delivered");
        assert_eq!(
            (m["user"].as_str(), m["body"].as_str()),
            (Some("bob"), Some("hi <b>all</b>"))
        );
        id = m["id"].as_i64().unwrap();
    }
    // Anonymous readers cannot write; bad messages are refused to their sender only.
    anon.send(&json!({"type": "send", "body": "me too"}));
    assert_eq!(
        anon.next_of("notice", WAIT).unwrap()["text"],
        "sign in to chat"
    );
    for bad in [" ", "a\u{202e}b", "line\nbreak"] {
        c.send(&json!({"type": "send", "body": bad}));
        assert!(c.next_of("notice", WAIT).is_some(), "{bad:?}");
    }
    c.send(&json!({"type": "send", "body": "x".repeat(501)}));
    assert!(c.next_of("notice", WAIT).unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("longer"));
    c.send(&json!({"type": "shout", "body": "x"}));
    assert_eq!(
        c.next_of("notice", WAIT).unwrap()["text"],
        "unreadable frame"
    );

    // A newcomer sees the history; a deleted message leaves it and everyone's view.
    let (mut late, w) = join(&server, "alice", None);
    assert_eq!(w["history"][0]["id"].as_i64(), Some(id));
    b.send(&json!({"type": "delete", "id": id}));
    assert!(b.next_of("notice", WAIT).unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("moderate"));
    a.send(&json!({"type": "delete", "id": id}));
    for client in [&mut a, &mut b, &mut late] {
        assert_eq!(
            client.next_of("deleted", WAIT).unwrap()["id"].as_i64(),
            Some(id)
        );
    }
    let (_, w) = join(&server, "alice", None);
    assert_eq!(w["history"].as_array().unwrap().len(), 0);

    // Timed out: cannot send until it ends; banned: cannot send at all; the streamer cannot be.
    a.send(&json!({"type": "timeout", "user": "bob", "seconds": 600}));
    assert_eq!(b.next_of("muted", WAIT).unwrap()["user"], "bob");
    b.send(&json!({"type": "send", "body": "still here?"}));
    assert_eq!(
        b.next_of("notice", WAIT).unwrap()["text"],
        "you are timed out"
    );
    a.send(&json!({"type": "ban", "user": "carol"}));
    let carol_muted = loop {
        let m = c.next_of("muted", WAIT).expect("carol's ban announced");
        if m["user"] == "carol" {
            break m;
        }
    };
    assert!(carol_muted["until_ms"].is_null());
    c.send(&json!({"type": "send", "body": "hello?"}));
    assert_eq!(
        c.next_of("notice", WAIT).unwrap()["text"],
        "you are banned from this chat"
    );
    a.send(&json!({"type": "timeout", "user": "alice", "seconds": 10}));
    assert!(a.next_of("notice", WAIT).is_some());
    a.send(&json!({"type": "timeout", "user": "bob", "seconds": 99_999_999}));
    assert!(a.next_of("notice", WAIT).unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("week"));
    a.send(&json!({"type": "unban", "user": "carol"}));
    assert_eq!(c.next_of("unmuted", WAIT).unwrap()["user"], "carol");
    c.send(&json!({"type": "send", "body": "thanks"}));
    assert_eq!(c.next_of("message", WAIT).unwrap()["body"], "thanks");
    // Rooms are apart: nothing of alice's room reached bob's.
    let (_, w) = join(&server, "bob", None);
    assert_eq!(w["history"].as_array().unwrap().len(), 0);
}

#[test]
fn floods_big_frames_frame_storms_and_foreign_pages_are_bounded() {
    let server = Server::start(&[]);
    server.add_user("alice");
    let cookies = sessions(&server, &["bob", "carol"]);
    let (mut b, _) = join(&server, "alice", Some(&cookies[0]));
    let (mut watcher, _) = join(&server, "alice", None);
    // A flood: a burst of five gets through, then one a second.
    for i in 0..10 {
        b.send(&json!({"type": "send", "body": format!("flood {i}")}));
    }
    let mut delivered = 0;
    while watcher
        .next_of("message", Duration::from_millis(700))
        .is_some()
    {
        delivered += 1;
    }
    assert_eq!(delivered, 5, "the burst, and no more");
    // Over 20 frames in a second: closed.
    let (mut storm, _) = join(&server, "alice", Some(&cookies[1]));
    for _ in 0..40 {
        if !storm.send_text(r#"{"type":"hello","share":"x"}"#.into()) {
            break;
        }
    }
    assert_eq!(storm.closed_within(WAIT), Some(Closed::Code(1008)));
    // A frame over 4 KiB: the connection ends.
    let (mut big, _) = join(&server, "alice", None);
    big.send_text(format!(
        r#"{{"type":"send","body":"{}"}}"#,
        "x".repeat(5000)
    ));
    assert!(
        big.closed_within(WAIT).is_some(),
        "an oversized frame was accepted"
    );
    // Binary frames: closed as unsupported.
    let (mut binary, _) = join(&server, "alice", None);
    binary.send_binary(vec![0; 16]);
    assert_eq!(binary.closed_within(WAIT), Some(Closed::Code(1003)));
    // Another site's page, with bob's cookie: reads, but never writes as bob.
    let (mut foreign, w) = {
        let mut c = ChatClient::connect_with(
            server.http,
            "alice",
            Some(&cookies[0]),
            &[("origin", "https://evil.example")],
        )
        .unwrap();
        let w = c.next_of("welcome", WAIT).unwrap();
        (c, w)
    };
    assert!(w["you"].is_null(), "a foreign page was taken for bob");
    foreign.send(&json!({"type": "send", "body": "as bob"}));
    assert_eq!(
        foreign.next_of("notice", WAIT).unwrap()["text"],
        "sign in to chat"
    );
    // No such channel: refused before the upgrade.
    assert!(ChatClient::connect(server.http, "nobody_here", None).is_err());
    assert!(ChatClient::connect(server.http, "../etc", None).is_err());
}

/// A client that never reads (and so never answers a ping) is dropped within two ping intervals,
/// while the room is busy sending it 300 KB it does not take.
#[test]
fn a_peer_that_never_reads_is_dropped() {
    let server = Server::start(&["--chat-ping-interval", "3"]);
    server.add_user("alice");
    let writers: Vec<String> = (0..30).map(|i| format!("writer{i:02}")).collect();
    let names: Vec<&str> = writers.iter().map(String::as_str).collect();
    let cookies = sessions(&server, &names);
    // The non-reader: joins with a tiny receive buffer and never reads again.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    socket.connect(&server.http.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    let handshake = format!(
        "GET /api/v1/channels/alice/chat HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.http
    );
    stream.write_all(handshake.as_bytes()).unwrap();
    let before = wait_for(WAIT, || {
        let n = chat_connections(&server);
        (n >= 1).then_some(n)
    })
    .expect("the non-reader joined");
    // 30 writers, five 2 KB messages each (the burst): 300 KB for the non-reader.
    let body = "😀".repeat(500);
    let mut clients: Vec<ChatClient> = cookies
        .iter()
        .map(|c| join(&server, "alice", Some(c)).0)
        .collect();
    let started = Instant::now();
    for c in &mut clients {
        for _ in 0..5 {
            c.send(&json!({"type": "send", "body": body}));
        }
    }
    // Drain the writers so they are not slow readers themselves.
    let dropped = wait_for(Duration::from_secs(30), || {
        for c in &mut clients {
            c.drain(Duration::from_millis(50));
        }
        (chat_connections(&server) < before + clients.len() as u64).then_some(started.elapsed())
    });
    assert!(dropped.is_some(), "the non-reader was never dropped");
    assert_eq!(
        chat_connections(&server),
        clients.len() as u64,
        "only the non-reader left"
    );
    drop(stream);
}

#[test]
fn a_private_channels_chat_is_for_those_who_may_watch() {
    let server = Server::start(&["--chat-ping-interval", "2"]);
    server.add_user("alice");
    let cookies = sessions(&server, &["bob", "carol"]);
    let run = |args: &[&str]| {
        let out = server.cli(args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["access", "set", "alice", "private"]);
    run(&["access", "allow", "alice", "bob"]);
    let shared = run(&["access", "share", "alice", "--hours", "1"]);
    let code = shared.trim().rsplit_once("#share=").unwrap().1.to_string();
    // Not allowed, anonymous or signed in: closed as private, after the hello wait at most.
    for cookie in [None, Some(cookies[1].as_str())] {
        let mut c = ChatClient::connect(server.http, "alice", cookie).unwrap();
        assert_eq!(
            c.closed_within(Duration::from_secs(10)),
            Some(Closed::Code(1008))
        );
    }
    let mut wrong = ChatClient::connect(server.http, "alice", None).unwrap();
    wrong.send(&json!({"type": "hello", "share": "not-the-code"}));
    assert_eq!(wrong.closed_within(WAIT), Some(Closed::Code(1008)));
    // Allowed by name, or holding the share link: in.
    let (mut bob, w) = join(&server, "alice", Some(&cookies[0]));
    assert_eq!(w["you"], "bob");
    let mut guest = ChatClient::connect(server.http, "alice", None).unwrap();
    guest.send(&json!({"type": "hello", "share": code}));
    assert!(guest.next_of("welcome", WAIT).is_some());
    bob.send(&json!({"type": "send", "body": "psst"}));
    assert_eq!(guest.next_of("message", WAIT).unwrap()["body"], "psst");
    // Revoked: bob's chat closes within a ping interval or two; so does the guest's once the
    // link is revoked.
    run(&["access", "disallow", "alice", "bob"]);
    assert_eq!(
        bob.closed_within(Duration::from_secs(8)),
        Some(Closed::Code(1008))
    );
    let id = run(&["access", "show", "alice"])
        .lines()
        .find_map(|l| {
            l.strip_prefix("share link ")?
                .split(':')
                .next()
                .map(str::to_string)
        })
        .unwrap();
    run(&["access", "revoke", "alice", &id]);
    assert_eq!(
        guest.closed_within(Duration::from_secs(8)),
        Some(Closed::Code(1008))
    );
}
