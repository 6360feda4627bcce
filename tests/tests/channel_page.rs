//! The channel page as two viewers use it, in two Chromium sessions through the shipped Envoy
//! (HTTPS, the chat's WebSocket through Envoy's upgrade support): both see the title and the
//! viewer count reach 2; a chat message from one shows in the other within a second; a message
//! the streamer deletes disappears from both; a viewer the streamer times out cannot send. Both
//! see the stream's live thumbnail: on its directory card and as the player's poster.

use std::time::{Duration, Instant};

use boltstream_tests::browser::Browser;
use boltstream_tests::envoy::Envoy;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

fn password(server: &Server, user: &str, password: &str) {
    let out = server.cli_with_stdin(&["user", "password", user], &format!("{password}\n"));
    assert!(out.status.success());
}

/// The chat log's message texts in `browser`, in order.
fn chat_lines(browser: &Browser) -> Vec<String> {
    (browser.eval(
        "return Array.prototype.map.call(document.querySelectorAll('#chat-log li'), function (li) { return li.textContent; })",
    ))
    .as_array()
    .map(|a| a.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect())
    .unwrap_or_default()
}

fn type_and_send(browser: &Browser, text: &str) {
    browser.eval(&format!(
        "document.getElementById('chat-input').value = {};
         document.getElementById('chat-form').requestSubmit(); return true;",
        serde_json::Value::from(text)
    ));
}

#[test]
fn two_viewers_share_the_channel_page_title_count_and_chat() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    server.add_user("bob");
    password(&server, "alice", "alice password 1");
    password(&server, "bob", "bob password 1");
    let out = server.cli(&[
        "channel",
        "set",
        "alice",
        "--title",
        "Speedrun <any%>",
        "--category",
        "Games",
    ]);
    assert!(out.status.success());
    let envoy = Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(server.wait_live("alice", Duration::from_secs(15)));
    let base = format!("https://localhost:{}", envoy.tls.port());
    let pictured = wait_for(Duration::from_secs(15), || {
        let r = boltstream_tests::http::get(server.http, "/api/v1/channels/alice");
        let c: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        c["thumbnail"].as_str().map(str::to_string)
    });
    assert!(pictured.is_some(), "no thumbnail for alice's stream");

    let alice = Browser::start_with(&["--ignore-certificate-errors"]);
    alice.sign_in(&base, "alice", "alice password 1");
    alice.goto(&format!("{base}/"));
    assert!(
        (alice
            .eval("return document.body.textContent")
            .as_str()
            .unwrap_or(""))
        .contains("Speedrun <any%>"),
        "the directory shows the title"
    );
    // The card's picture loaded, through the edge.
    let card = wait_for(Duration::from_secs(10), || {
        let w = alice.eval("var i = document.querySelector('.thumb img'); return i && i.complete ? i.naturalWidth : 0");
        (w.as_u64().unwrap_or(0) > 0).then(|| w.as_u64().unwrap())
    });
    assert_eq!(card, Some(640), "the directory card's thumbnail");
    std::fs::create_dir_all(out_dir()).unwrap();
    alice.screenshot(&out_dir().join("directory.png"));
    alice.goto(&format!("{base}/alice"));
    let bob = Browser::start_with(&["--ignore-certificate-errors"]);
    bob.sign_in(&base, "bob", "bob password 1");
    bob.goto(&format!("{base}/alice"));

    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        assert_eq!(
            b.eval("return document.getElementById('title').textContent"),
            "Speedrun <any%>",
            "{who}: the title, as text"
        );
        let ready = wait_for(Duration::from_secs(15), || {
            (b.eval("return !document.getElementById('chat-form').hidden") == true).then_some(())
        });
        assert!(ready.is_some(), "{who}: the chat never opened for writing");
    }
    // Both have the picture as the player's poster, and it loads.
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        let poster =
            b.eval("return document.getElementById('player').getAttribute('poster') || ''");
        let poster = poster.as_str().unwrap_or("").to_string();
        assert!(
            poster.starts_with("/thumb/alice/"),
            "{who}: poster {poster:?}"
        );
        b.eval(&format!(
            "window.posterCheck = new Image(); window.posterCheck.src = {}; return true;",
            serde_json::Value::from(poster)
        ));
        let loaded = wait_for(Duration::from_secs(10), || {
            let w =
                b.eval("return window.posterCheck.complete ? window.posterCheck.naturalWidth : 0");
            (w.as_u64().unwrap_or(0) > 0).then_some(())
        });
        assert!(loaded.is_some(), "{who}: the poster never loaded");
    }
    // Both play, both count: the count reaches 2 on both pages.
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        let two = wait_for(Duration::from_secs(40), || {
            let n = b.eval("var v = document.getElementById('viewers'); return Number(v.getAttribute('data-count')) || 0");
            (n.as_u64() == Some(2)).then_some(())
        });
        assert!(two.is_some(), "{who} never saw 2 viewers");
    }

    // Bob writes; alice sees it within a second, as text.
    let sent = Instant::now();
    type_and_send(&bob, "hello <i>alice</i>");
    let seen = wait_for(Duration::from_secs(5), || {
        chat_lines(&alice)
            .iter()
            .any(|l| l.contains("hello <i>alice</i>"))
            .then(|| sent.elapsed())
    })
    .expect("alice never saw bob's message");
    assert!(seen < Duration::from_secs(1), "it took {seen:?}");
    assert_eq!(
        alice.eval("return document.querySelectorAll('#chat-log i').length"),
        0,
        "rendered as HTML"
    );
    alice.screenshot(&out_dir().join("channel-page.png"));

    // Alice (the streamer) deletes it: gone from both.
    alice.eval("document.querySelector('#chat-log li button.chat-mod').click(); return true;");
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        let gone = wait_for(Duration::from_secs(5), || {
            (!chat_lines(b)
                .iter()
                .any(|l| l.contains("hello <i>alice</i>")))
            .then_some(())
        });
        assert!(gone.is_some(), "{who} still shows the deleted message");
    }

    // Bob writes again; alice times him out from that message; he cannot send any more.
    type_and_send(&bob, "second");
    assert!(wait_for(Duration::from_secs(5), || {
        chat_lines(&alice)
            .iter()
            .any(|l| l.contains("second"))
            .then_some(())
    })
    .is_some());
    alice.eval(
        "var b = Array.prototype.filter.call(document.querySelectorAll('#chat-log li button.chat-mod'), function (b) { return b.textContent === 'timeout'; }); b[b.length - 1].click(); return true;",
    );
    let told = wait_for(Duration::from_secs(5), || {
        let note = bob.eval("return document.getElementById('chat-note').textContent");
        (note == "You are timed out.").then_some(())
    });
    assert!(told.is_some(), "bob was not told");
    type_and_send(&bob, "third");
    let refused = wait_for(Duration::from_secs(5), || {
        let note = bob.eval("return document.getElementById('chat-note').textContent");
        (note == "you are timed out").then_some(())
    });
    assert!(refused.is_some(), "bob's message was not refused");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !chat_lines(&alice).iter().any(|l| l.contains("third")),
        "a timed-out user sent"
    );

    // Bob leaves: the count falls back to 1 once his heartbeats stop counting.
    drop(bob);
    let one = wait_for(Duration::from_secs(75), || {
        let n = alice.eval("var v = document.getElementById('viewers'); return Number(v.getAttribute('data-count')) || 0");
        (n.as_u64() == Some(1)).then_some(())
    });
    assert!(one.is_some(), "the count never fell back to 1");
}
