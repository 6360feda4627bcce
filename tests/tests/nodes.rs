//! Several nodes as one site, with the real servers: a throwaway PostgreSQL both nodes share, two
//! `boltstream serve` nodes on 127.0.0.2 and 127.0.0.3, the shipped Envoy edge in front of both
//! and the shipped RTMP front (Envoy `tcp_proxy`) before them. Streams published to either node
//! play at one edge URL (a node fetches a stream it does not hold from its holder); a node killed
//! loses its streams within its lease and the publisher, reconnecting through the front, lands on
//! the other; a ban or key rotation made through one node ends a publish on the other.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boltstream_tests::chat::ChatClient;
use boltstream_tests::envoy::{with_nodes, Envoy};
use boltstream_tests::http::{get, request, Response};
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::nats::Nats;
use boltstream_tests::server::Server;
use boltstream_tests::wait_for;

/// Each node's claim on its streams lapses this long after its last renewal.
const LEASE_S: u64 = 2;

struct Site {
    database: String,
    a: Server,
    b: Server,
    edge: Envoy,
    _nats: Nats,
}

fn site() -> Site {
    let database = boltstream_ingest::pg_cluster::shared().new_database();
    let nats = Nats::start();
    let (lease, nats_url) = (LEASE_S.to_string(), nats.url());
    let flags = [
        "--node-lease",
        lease.as_str(),
        "--trusted-proxies",
        "127.0.0.1",
        "--chat-nats",
        nats_url.as_str(),
    ];
    let a = Server::start_node("127.0.0.2", "a", &database, &flags);
    let b = Server::start_node("127.0.0.3", "b", &database, &flags);
    let nodes = [a.http, b.http];
    let edge = Envoy::start_with(a.http, r#"{"playlist_max_age": 1}"#, |yaml| {
        with_nodes(yaml, &nodes)
    });
    Site {
        database,
        a,
        b,
        edge,
        _nats: nats,
    }
}

fn playlist(user: &str) -> String {
    format!("/live/{user}/index.m3u8")
}

/// Requests node `node` had another node answer (its `/internal/metrics`).
fn forwarded(node: &Server) -> u64 {
    let metrics = get(node.internal, "/internal/metrics").text();
    (metrics.lines())
        .find_map(|l| l.strip_prefix("boltstream_forwarded_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no forwarding counter in {metrics}"))
}

fn forwarded_by_both(site: &Site) -> u64 {
    forwarded(&site.a) + forwarded(&site.b)
}

/// The playlist through the edge once it lists a complete segment.
fn wait_playable(edge: SocketAddr, user: &str, within: Duration) -> Option<Response> {
    wait_for(within, || {
        let r = get(edge, &playlist(user));
        (r.status == 200 && r.text().contains("#EXTINF")).then_some(r)
    })
}

/// (media sequence of the first listed segment, number of complete segments, parts of the open
/// segment) of a low-latency playlist.
fn ll_position(text: &str) -> (u64, u64, u64) {
    let sequence = (text.lines())
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a media sequence");
    let complete = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let tail = text.rsplit("#EXTINF").next().unwrap_or_default();
    let open_parts = tail
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .count() as u64;
    (sequence, complete, open_parts)
}

/// A segment the playlist lists (its URI, relative to the playlist).
fn a_segment(text: &str) -> String {
    (text.lines())
        .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("a segment")
        .to_string()
}

#[test]
fn streams_on_either_node_play_at_one_edge_url() {
    let site = site();
    let alice = site.a.add_user("alice");
    let bob = site.b.add_user("bob");
    let _on_a = Publisher::start(Clip::AudioVideo, &site.a.publish_url(&alice), true);
    let _on_b = Publisher::start(Clip::AudioVideo, &site.b.publish_url(&bob), true);
    for user in ["alice", "bob"] {
        assert!(
            wait_playable(site.edge.addr, user, Duration::from_secs(20)).is_some(),
            "{user} never became playable at the edge:\n{}\n{}",
            site.a.log(),
            site.b.log()
        );
    }

    // Asked directly, the node without the stream answers with the holder's answer; a request
    // already forwarded is not forwarded again.
    let before = forwarded(&site.a);
    let direct = get(site.a.http, &playlist("bob"));
    assert_eq!(direct.status, 200, "{}", direct.text());
    assert!(direct.text().contains("#EXT-X-PART"), "{}", direct.text());
    assert_eq!(direct.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(forwarded(&site.a), before + 1, "a asked b");
    let again = request(
        site.a.http,
        "GET",
        playlist("bob").as_bytes(),
        &[("x-boltstream-node", "a")],
        b"",
    )
    .unwrap();
    assert_eq!(again.status, 404, "no forwarding loop");
    assert_eq!(forwarded(&site.a), before + 1);

    // Through the edge: the second fetch of a segment is a cache hit under the viewer's URL,
    // whichever node served the first; and some first fetches were forwarded (Envoy spreads the
    // misses over both nodes, so of a dozen some reach the node without the stream).
    let forwarded_before = forwarded_by_both(&site);
    for user in ["alice", "bob"] {
        let text = get(site.edge.addr, &playlist(user)).text();
        // Segments and the parts of the segments, each an object of its own.
        let uris: Vec<&str> = (text.lines())
            .filter_map(|l| match l.strip_prefix("#EXT-X-PART:") {
                Some(tag) => tag.split("URI=\"").nth(1)?.split('"').next(),
                None => (!l.starts_with('#') && !l.trim().is_empty()).then_some(l),
            })
            .collect();
        assert!(uris.len() >= 4, "{text}");
        for uri in uris.iter().take(10) {
            let path = format!("/live/{user}/{uri}");
            let first = get(site.edge.addr, &path);
            assert_eq!(first.status, 200, "{path}");
            let second = get(site.edge.addr, &path);
            assert_eq!(second.status, 200, "{path}");
            assert_eq!(second.body, first.body);
            assert!(
                second.header("age").is_some(),
                "{path}: the second fetch was not a cache hit"
            );
        }
    }
    assert!(
        forwarded_by_both(&site) > forwarded_before,
        "no edge miss reached the node without the stream: the check proves nothing"
    );

    // An LL-HLS blocking reload works when forwarded: ask for a part that does not exist yet until
    // such a request was forwarded.
    let mut blocked_through_forward = false;
    for attempt in 0..8 {
        // Each user twice in a row: Envoy alternates the nodes, so one of the two is forwarded.
        let (user, holder) = if attempt / 2 % 2 == 0 {
            ("alice", &site.a)
        } else {
            ("bob", &site.b)
        };
        // The holder's playlist now (the edge's may be a second old): the second part of the
        // segment after the open one is at least a part's time away.
        let text = unforwarded(holder, &playlist(user)).text();
        let (sequence, complete, _) = ll_position(&text);
        let want = sequence + complete + 1;
        let before = forwarded_by_both(&site);
        let asked = Instant::now();
        let r = get(
            site.edge.addr,
            &format!("{}?_HLS_msn={want}&_HLS_part=1", playlist(user)),
        );
        assert_eq!(r.status, 200, "{user}: {}", r.text());
        let (seq2, complete2, parts2) = ll_position(&r.text());
        assert!(
            seq2 + complete2 > want || (seq2 + complete2 == want && parts2 >= 2),
            "{user}: the answer does not hold part 1 of segment {want}:\n{}",
            r.text()
        );
        assert!(
            asked.elapsed() > Duration::from_millis(300),
            "{user}: answered at once: it cannot have waited for a part that did not exist"
        );
        if forwarded_by_both(&site) > before {
            blocked_through_forward = true;
            break;
        }
    }
    assert!(blocked_through_forward, "no blocking reload was forwarded");

    // A key-bearing path is still refused at the edge, before any node.
    for path in [format!("/live/{bob}/index.m3u8"), format!("/app/{alice}")] {
        let r = get(site.edge.addr, &path);
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.text().contains(&bob) && !r.text().contains(&alice));
    }
}

/// `path` from `node` itself: asked as if forwarded already, it does not ask another node.
fn unforwarded(node: &Server, path: &str) -> Response {
    request(
        node.http,
        "GET",
        path.as_bytes(),
        &[("x-boltstream-node", "test")],
        b"",
    )
    .unwrap()
}

/// Whether `node` answers `user`'s playlist itself (it holds the stream).
fn holds(node: &Server, user: &str) -> bool {
    unforwarded(node, &playlist(user)).status == 200
}

#[test]
fn a_killed_nodes_streams_go_offline_within_the_lease_and_resume_on_the_other_node() {
    let mut site = site();
    let front = Envoy::start_rtmp_front(&[
        (site.a.rtmp, site.a.internal),
        (site.b.rtmp, site.b.internal),
    ]);
    let bob = site.a.add_user("bob");
    let carol = site.a.add_user("carol");
    let through_front = format!("rtmp://{}/app/{bob}", front.addr);
    let mut publisher = Publisher::start(Clip::AudioVideo, &through_front, true);
    assert!(
        wait_playable(site.edge.addr, "bob", Duration::from_secs(20)).is_some(),
        "bob never became playable through the front and the edge"
    );
    let bob_on_a = holds(&site.a, "bob");
    assert_ne!(
        bob_on_a,
        holds(&site.b, "bob"),
        "exactly one node holds bob"
    );
    // carol streams on the other node throughout, and must not notice.
    let survivor_rtmp = if bob_on_a { site.b.rtmp } else { site.a.rtmp };
    let _carol = Publisher::start(
        Clip::AudioVideo,
        &format!("rtmp://{survivor_rtmp}/app/{carol}"),
        true,
    );
    let carol_text = wait_playable(site.edge.addr, "carol", Duration::from_secs(20))
        .expect("carol playable")
        .text();
    let (carol_seq, carol_complete, _) = ll_position(&carol_text);

    // SIGKILL the node holding bob: nothing is said to the store.
    let (dead, survivor) = if bob_on_a {
        (&mut site.a, &site.b)
    } else {
        (&mut site.b, &site.a)
    };
    dead.kill();
    let killed = Instant::now();
    let offline = wait_for(Duration::from_secs(LEASE_S + 3), || {
        (!survivor.live_users().iter().any(|u| u == "bob")).then_some(killed.elapsed())
    })
    .expect("bob stayed live after his node died");
    assert!(
        offline <= Duration::from_millis(LEASE_S * 1000 + 1000),
        "offline only after {offline:?}"
    );
    let gone = get(site.edge.addr, &playlist("bob"));
    assert_eq!(
        gone.status, 404,
        "nothing stays stuck live at the edge: {gone:?}"
    );
    publisher.kill();

    // The encoder reconnects through the front, which sends it to the live node.
    let resumed = wait_for(Duration::from_secs(30), || {
        let mut again = Publisher::start(Clip::AudioVideo, &through_front, true);
        let playing = wait_playable(site.edge.addr, "bob", Duration::from_secs(8));
        if playing.is_some() {
            Some((again, playing))
        } else {
            again.kill();
            None
        }
    });
    let (_again, text) = resumed.expect("bob never resumed on the surviving node");
    let text = text.unwrap().text();
    assert!(holds(survivor, "bob"), "the survivor serves bob now");
    let segment = format!("/live/bob/{}", a_segment(&text));
    assert_eq!(get(site.edge.addr, &segment).status, 200, "{segment}");

    // carol never stopped: her playlist kept advancing across the kill.
    let after = get(site.edge.addr, &playlist("carol"));
    assert_eq!(after.status, 200);
    let (seq, complete, _) = ll_position(&after.text());
    assert!(
        seq + complete > carol_seq + carol_complete,
        "carol's stream stood still"
    );
    drop(front);
}

/// Publishes `user` straight to `node` and waits until the edge plays it.
fn live_on(node: &Server, edge: &Envoy, key: &str, user: &str) -> Publisher {
    let publisher = Publisher::start(Clip::AudioVideo, &node.publish_url(key), true);
    assert!(
        wait_playable(edge.addr, user, Duration::from_secs(20)).is_some(),
        "{user} never became playable"
    );
    publisher
}

/// How long after `since` the publisher's connection was ended (ffmpeg exits on the reset).
fn ended_after(publisher: &mut Publisher, since: Instant) -> Option<Duration> {
    publisher
        .wait(Duration::from_secs(5))
        .map(|_| since.elapsed())
}

#[test]
fn a_ban_stop_or_key_rotation_through_one_node_ends_the_publish_on_the_other_within_a_second() {
    let site = site();
    let dave = site.a.add_user("dave");
    let erin = site.a.add_user("erin");

    let mut publisher = live_on(&site.b, &site.edge, &dave, "dave");
    assert!(holds(&site.b, "dave"));
    let out = site.a.cli(&["user", "ban", "dave"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let banned = Instant::now();
    let ended = ended_after(&mut publisher, banned).expect("the banned publish went on");
    assert!(
        ended <= Duration::from_secs(1),
        "the ban reached node b after {ended:?}"
    );

    let frank = site.a.add_user("frank");
    let mut publisher = live_on(&site.b, &site.edge, &frank, "frank");
    // An admin's stop through node a's API.
    let store = boltstream_ingest::store::Store::connect_postgres(&site.database).unwrap();
    store.add_user("operator1", true).unwrap();
    let bearer = format!("Bearer {}", store.create_api_token("operator1").unwrap());
    let r = request(
        site.a.http,
        "POST",
        b"/api/v1/admin/streams/frank/stop",
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let stopped = Instant::now();
    let ended = ended_after(&mut publisher, stopped).expect("the stopped publish went on");
    assert!(
        ended <= Duration::from_secs(1),
        "the stop request reached node b after {ended:?}"
    );

    let mut publisher = live_on(&site.b, &site.edge, &erin, "erin");
    site.a.rotate_key("erin");
    let rotated = Instant::now();
    let ended = ended_after(&mut publisher, rotated).expect("the publish on the old key went on");
    assert!(
        ended <= Duration::from_secs(1),
        "the rotation reached node b after {ended:?}"
    );
    assert!(!site.b.live_users().iter().any(|u| u == "erin"));
}

#[test]
fn a_chat_message_sent_through_one_node_reaches_a_viewer_on_the_other() {
    let site = site();
    site.a.add_user("carol");
    site.a.add_user("dave");
    let wait = Duration::from_secs(5);
    let cookie = site.a.session("dave");
    let mut on_b = ChatClient::connect(site.b.http, "carol", None).expect("join on b");
    on_b.next_of("welcome", wait).expect("welcome on b");
    let mut on_a = ChatClient::connect(site.a.http, "carol", Some(&cookie)).expect("join on a");
    on_a.next_of("welcome", wait).expect("welcome on a");
    on_a.send(&serde_json::json!({"type": "send", "body": "hello from a"}));
    let sent = Instant::now();
    let m = on_b
        .next_of("message", wait)
        .expect("the message never reached node b");
    assert_eq!(
        (m["user"].as_str(), m["body"].as_str()),
        (Some("dave"), Some("hello from a"))
    );
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    // The sender's node delivers it once to its own members, not again when it comes back.
    assert!(on_a.next_of("message", wait).is_some());
    assert!(
        on_a.next_of("message", Duration::from_millis(500))
            .is_none(),
        "delivered twice on the sender's node"
    );
    assert!(on_b
        .next_of("message", Duration::from_millis(500))
        .is_none());
    // Through the edge too: a viewer there is on whichever node Envoy picked.
    let received: u64 = [&site.a, &site.b]
        .iter()
        .map(|n| {
            let metrics = get(n.internal, "/internal/metrics").text();
            (metrics.lines())
                .find_map(|l| l.strip_prefix("boltstream_chat_bus_received_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("the bus's counter")
        })
        .sum();
    assert_eq!(received, 1, "one node received the other's frame, once");
}

#[test]
fn a_private_stream_on_one_node_plays_with_its_token_through_the_other() {
    let site = site();
    let key = site.a.add_user("pat");
    let out = site.a.cli(&["access", "set", "pat", "private"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _publisher = Publisher::start(Clip::AudioVideo, &site.b.publish_url(&key), true);
    let cookie = site.a.playback_cookie("pat", 300);
    let private_playlist = "/private/pat/index.m3u8";
    let with_token = |node: &Server, path: &str| {
        request(
            node.http,
            "GET",
            path.as_bytes(),
            &[("cookie", &cookie)],
            b"",
        )
        .unwrap()
    };
    let text = wait_for(Duration::from_secs(20), || {
        let r = with_token(&site.a, private_playlist);
        (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
    })
    .expect("the private playlist never played through node a");
    assert!(holds(&site.b, "pat") || unforwarded(&site.b, private_playlist).status == 403);
    // Forwarded with the viewer's cookie, the holder checked the token and answered.
    let key_uri = (text.lines())
        .find_map(|l| l.strip_prefix("#EXT-X-KEY:"))
        .and_then(|t| t.split("URI=\"").nth(1))
        .and_then(|t| t.split('"').next())
        .expect("a key line")
        .to_string();
    let key_path = if key_uri.starts_with('/') {
        key_uri
    } else {
        format!("/private/pat/{key_uri}")
    };
    let media_key = with_token(&site.a, &key_path);
    assert_eq!(media_key.status, 200, "{key_path}");
    assert_eq!(media_key.body.len(), 16);
    // Without the token node a refuses before asking node b anything.
    let before = forwarded(&site.a);
    assert_eq!(get(site.a.http, private_playlist).status, 403);
    assert_eq!(get(site.a.http, &key_path).status, 403);
    assert_eq!(
        forwarded(&site.a),
        before,
        "a refused request was forwarded"
    );
    // Nor is the stream in the clear under /live/ on either node.
    assert_eq!(get(site.a.http, &playlist("pat")).status, 404);
}

#[test]
fn a_past_broadcast_recorded_on_one_node_is_listed_served_and_deleted_through_the_other() {
    let site = site();
    let key = site.a.add_user("gina");
    let mut publisher = Publisher::start(Clip::Short, &site.b.publish_url(&key), false);
    assert!(
        publisher.wait(Duration::from_secs(30)).is_some(),
        "the clip never ended"
    );
    // Listed through node a (from the site's index) once node b has finished it.
    let listing = wait_for(Duration::from_secs(20), || {
        let r = get(site.a.http, "/api/v1/channels/gina/recordings");
        let json: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let first = json["recordings"].as_array()?.first()?.clone();
        Some(first)
    })
    .expect("the recording never appeared in node a's listing");
    let id = listing["id"].as_u64().unwrap();
    let playlist_path = listing["playlist"].as_str().unwrap().to_string();
    assert!(
        site.b.data().join(format!("recordings/gina/{id}")).is_dir(),
        "recorded on b"
    );
    assert!(!site.a.data().join(format!("recordings/gina/{id}")).exists());

    // Served through node a (forwarded to b) and through the edge.
    let before = forwarded(&site.a);
    let playlist = get(site.a.http, &playlist_path);
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    assert!(playlist.text().contains("#EXT-X-ENDLIST"));
    assert!(forwarded(&site.a) > before, "a served it without asking b?");
    let segment = a_segment(&playlist.text());
    let base = playlist_path.rsplit_once('/').unwrap().0;
    for node in [site.a.http, site.edge.addr] {
        let r = get(node, &format!("{base}/{segment}"));
        assert_eq!(r.status, 200, "{base}/{segment}");
        assert!(!r.body.is_empty());
    }
    assert_eq!(get(site.edge.addr, &playlist_path).status, 200);

    // Deleted through node a: gone from every listing at once, and from b's disk soon after.
    let store = boltstream_ingest::store::Store::connect_postgres(&site.database).unwrap();
    let bearer = format!("Bearer {}", store.create_api_token("gina").unwrap());
    let r = request(
        site.a.http,
        "DELETE",
        format!("/api/v1/me/recordings/{id}").as_bytes(),
        &[("authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    for node in [&site.a, &site.b] {
        let r = get(node.http, "/api/v1/channels/gina/recordings");
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            json["recordings"].as_array().map(Vec::len),
            Some(0),
            "{json}"
        );
    }
    assert_eq!(get(site.a.http, &playlist_path).status, 404);
    let removed = wait_for(Duration::from_secs(10), || {
        (!site.b.data().join(format!("recordings/gina/{id}")).exists()).then_some(())
    });
    assert!(
        removed.is_some(),
        "node b kept the files of a deleted recording"
    );
}

#[test]
fn a_channel_on_one_node_is_playable_and_counts_its_viewers_once_through_every_node() {
    let site = site();
    let key = site.a.add_user("hana");
    let _publisher = Publisher::start(Clip::AudioVideo, &site.b.publish_url(&key), true);
    let channel = |node: &Server| -> serde_json::Value {
        serde_json::from_slice(&get(node.http, "/api/v1/channels/hana").body).unwrap()
    };
    // Node a serves the channel page's API for a stream on node b: live, playable, where.
    let seen = wait_for(Duration::from_secs(15), || {
        let c = channel(&site.a);
        (c["playable"] == true).then_some(c)
    })
    .expect("node a never called the stream on node b playable");
    assert_eq!(seen["live"], true);
    assert_eq!(seen["playlist"], "/live/hana/index.m3u8");

    // The live picture node b made is node a's poster and directory card too, and node a serves
    // it (fetched from b), as does the edge.
    let url = wait_for(Duration::from_secs(15), || {
        channel(&site.a)["thumbnail"].as_str().map(str::to_string)
    })
    .unwrap_or_else(|| panic!("node a never named b's picture:\n{}", site.b.log()));
    assert!(
        url.starts_with("/thumb/hana/") && url.ends_with(".jpg"),
        "{url}"
    );
    let from_b = unforwarded(&site.b, &url);
    assert_eq!(from_b.status, 200, "{url} on b");
    let through_a = get(site.a.http, &url);
    assert_eq!(
        through_a.status,
        200,
        "{url} through a: {}",
        through_a.text()
    );
    assert_eq!(through_a.body, from_b.body);
    assert!(through_a.body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    assert_eq!(through_a.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        unforwarded(&site.a, &url).status,
        404,
        "a has no picture of its own"
    );
    assert_eq!(get(site.edge.addr, &url).body, from_b.body);
    let directory = get(site.a.http, "/").text();
    assert!(directory.contains(&format!("src=\"{url}\"")), "{directory}");

    // Viewer 1's heartbeats reach a, then b (as an edge spreads them); viewer 2's reach b.
    let beat = |node: &Server, viewer: u32| {
        let r = request(
            node.http,
            "POST",
            b"/api/v1/channels/hana/heartbeat",
            &[("content-type", "application/json")],
            format!(r#"{{"viewer": "{viewer:032x}"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    };
    beat(&site.a, 1);
    beat(&site.b, 2);
    beat(&site.b, 1);
    let both = wait_for(Duration::from_secs(10), || {
        let counts = (
            channel(&site.a)["viewers"].clone(),
            channel(&site.b)["viewers"].clone(),
        );
        (counts == (2.into(), 2.into())).then_some(())
    });
    assert!(
        both.is_some(),
        "every node shows the site's two viewers: a {}, b {}",
        channel(&site.a)["viewers"],
        channel(&site.b)["viewers"]
    );
}

#[test]
fn a_node_rides_out_a_database_outage_and_its_streams_are_claimed_again() {
    let mut database = boltstream_ingest::pg_cluster::Owned::start();
    let lease = LEASE_S.to_string();
    let node = Server::start_node(
        "127.0.0.2",
        "a",
        &database.url(),
        &["--node-lease", lease.as_str()],
    );
    let key = node.add_user("ivan");
    let mut publisher = Publisher::start(Clip::AudioVideo, &node.publish_url(&key), true);
    let playable = |within| {
        wait_for(within, || {
            let r = get(node.http, &playlist("ivan"));
            (r.status == 200 && r.text().contains("#EXTINF")).then_some(())
        })
        .is_some()
    };
    assert!(playable(Duration::from_secs(20)), "ivan never played");

    // The database goes away for longer than the lease: the node stays up and keeps serving
    // what it holds; what needs the database fails cleanly.
    let lines_before = node.log().lines().count();
    database.stop();
    std::thread::sleep(Duration::from_millis(LEASE_S * 1000 + 1500));
    assert_eq!(get(node.internal, "/internal/health").status, 200);
    assert_eq!(
        get(node.http, &playlist("ivan")).status,
        200,
        "live media goes on"
    );
    for _ in 0..50 {
        let api = get(node.http, "/api/v1/channels/ivan");
        assert!(api.status >= 500, "{}: {}", api.status, api.text());
    }
    // What the outage costs the log is bounded by time (the duties' polls), not by requests.
    let outage_lines = node.log().lines().count() - lines_before;
    assert!(
        outage_lines < 80,
        "{outage_lines} log lines for a 3.5 s outage and 50 requests"
    );
    assert!(
        publisher.running(),
        "the publish is not dropped while the store cannot say"
    );

    // Back: the lapsed claim is dropped (another node may have taken the stream meanwhile), the
    // encoder reconnects and the stream is claimed again.
    database.resume();
    assert!(
        publisher.wait(Duration::from_secs(10)).is_some(),
        "the publish on a lapsed claim went on"
    );
    let mut again = Publisher::start(Clip::AudioVideo, &node.publish_url(&key), true);
    assert!(
        wait_for(Duration::from_secs(20), || {
            node.live_users().iter().any(|u| u == "ivan").then_some(())
        })
        .is_some(),
        "ivan was not claimed again:\n{}",
        node.log()
    );
    assert!(playable(Duration::from_secs(20)));
    assert!(again.running());
    assert!(
        !node.log().contains("panicked"),
        "the node panicked:\n{}",
        node.log()
    );
}

/// An attacker holds many LL-HLS blocking reloads open through the node that does not hold the
/// stream (more than a node reads forwarded answers at once): a forwarded request for a segment
/// is answered while every one of them still waits, so nobody's forwarded media queues behind
/// requests that wait on the holder.
#[test]
fn blocking_reloads_held_open_through_a_node_do_not_hold_up_its_other_forwarded_requests() {
    /// More than the 64 forwarded answers a node reads at once.
    const HELD: usize = 100;
    let site = site();
    let bob = site.b.add_user("bob");
    let _on_b = Publisher::start(Clip::AudioVideo, &site.b.publish_url(&bob), true);
    let text = wait_for(Duration::from_secs(20), || {
        let r = unforwarded(&site.b, &playlist("bob"));
        (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
    })
    .unwrap_or_else(|| panic!("bob never went live on b:\n{}", site.b.log()));
    let segment = format!("/live/bob/{}", a_segment(&text));
    // Part 4 of the segment after the open one: more than a second away.
    let (sequence, complete, _) = ll_position(&text);
    let blocking = format!(
        "{}?_HLS_msn={}&_HLS_part=4",
        playlist("bob"),
        sequence + complete + 1
    );

    let before = forwarded(&site.a);
    let a = site.a.http;
    let held: Vec<_> = (0..HELD)
        .map(|_| {
            let path = blocking.clone();
            std::thread::spawn(move || {
                let r = get(a, &path);
                (r.status, Instant::now())
            })
        })
        .collect();
    let all_waiting = wait_for(Duration::from_secs(10), || {
        (forwarded(&site.a) >= before + HELD as u64).then_some(())
    });
    assert!(
        all_waiting.is_some(),
        "the blocking reloads were not all forwarded"
    );

    let r = get(site.a.http, &segment);
    let answered = Instant::now();
    assert_eq!(r.status, 200, "{segment}: {}", r.text());
    assert!(!r.body.is_empty());

    for thread in held {
        let (status, done) = thread.join().unwrap();
        assert_eq!(status, 200, "a blocking reload through a failed");
        assert!(
            done > answered,
            "a blocking reload was answered before the segment: the segment waited behind them"
        );
    }
}
