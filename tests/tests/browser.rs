//! The website in a real browser. Headless Chromium plays the channel with hls.js while
//! ffmpeg publishes; the page follows live/offline without a reload. Screenshots go to
//! `target/e2e/screenshots/`.

use std::time::Duration;

use boltstream_tests::browser::Browser;
use boltstream_tests::media::{Clip, Publisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

#[test]
fn channel_plays_in_chromium_and_follows_live_state() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let base = format!("http://{}", server.http);
    let browser = Browser::start();

    // Offline first: the offline card, no reload needed later.
    browser.goto(&format!("{base}/alice"));
    assert_eq!(
        browser.eval("return document.getElementById('state').textContent"),
        "OFFLINE"
    );

    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let played = wait_for(Duration::from_secs(40), || {
        let t = browser
            .eval("var v = document.getElementById('player'); return v ? v.currentTime : 0")
            .as_f64()
            .unwrap_or(0.0);
        (t > 3.0).then_some(t)
    });
    let errors = browser.eval("return window.boltstreamErrors || []");
    assert!(
        played.is_some(),
        "the video never passed 3 s; player errors: {errors}"
    );
    let fatal: Vec<_> = errors
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.as_str().unwrap_or("").contains("fatal"))
        .collect();
    assert!(fatal.is_empty(), "fatal player errors: {errors}");
    assert_eq!(
        browser.eval("return document.getElementById('state').textContent"),
        "LIVE"
    );
    let width = browser.eval("return document.getElementById('player').videoWidth");
    assert_eq!(width, 1280);
    // The player's heartbeat counts this viewer, and the page shows it.
    let counted = wait_for(Duration::from_secs(10), || {
        let v = browser.eval("var v = document.getElementById('viewers'); return [v.getAttribute('data-count'), v.textContent]");
        (v[0] == "1").then_some(v)
    });
    assert!(counted.is_some(), "no viewer count on the page");
    assert_eq!(counted.unwrap()[1], "1 viewer");
    // How far behind live the viewer is, from the playhead's PROGRAM-DATE-TIME: shown and
    // plausible for plain HLS (three 2 s segments held back, plus the one being made).
    let behind = wait_for(Duration::from_secs(10), || {
        let ms = browser.eval(
            "var l = document.getElementById('latency'); return l.getAttribute('data-ms') ? [Number(l.getAttribute('data-ms')), l.textContent] : null",
        );
        ms.as_array().cloned()
    })
    .expect("the latency readout appears while playing");
    let ms = behind[0].as_f64().unwrap();
    eprintln!("viewer behind live: {ms} ms ({})", behind[1]);
    assert!((500.0..30_000.0).contains(&ms), "{behind:?}");
    assert!(
        behind[1].as_str().unwrap().ends_with("s behind live"),
        "{behind:?}"
    );
    browser.screenshot(&out_dir().join("screenshots/channel.png"));

    // The directory lists the channel.
    browser.goto(&format!("{base}/"));
    let text = browser
        .eval("return document.body.innerText")
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("alice") && text.contains("LIVE"), "{text}");
    let link = browser.eval(
        "var a = document.querySelector('a.channel'); return a ? a.getAttribute('href') : null",
    );
    assert_eq!(link, "/alice");
    browser.screenshot(&out_dir().join("screenshots/directory.png"));

    // After the publisher stops, the channel page shows offline by itself.
    browser.goto(&format!("{base}/alice"));
    assert!(wait_for(Duration::from_secs(10), || (browser
        .eval("return document.getElementById('state').textContent")
        == "LIVE")
        .then_some(()))
    .is_some());
    publisher.kill();
    let offline = wait_for(Duration::from_secs(20), || {
        (browser.eval("return document.getElementById('state').textContent") == "OFFLINE"
            && browser.eval("return document.getElementById('offline').hidden") == false)
            .then_some(())
    });
    assert!(offline.is_some(), "the page did not switch to offline");
}

#[test]
fn signup_and_dashboard_in_the_browser() {
    let server = Server::start(&[]);
    let base = format!("http://{}", server.http);
    let browser = Browser::start();
    browser.goto(&format!("{base}/signup"));
    browser.eval(
        "document.getElementById('username').value = 'newstreamer';
         document.getElementById('password').value = 'a long enough password';
         document.querySelector('form[action=\"/signup\"]').submit(); return true",
    );
    let key = wait_for(Duration::from_secs(15), || {
        let k = browser
            .eval("var e = document.getElementById('stream-key'); return e ? e.textContent : null");
        k.as_str().map(str::to_string)
    })
    .expect("the dashboard shows the new stream key once");
    assert!(boltstream_shared::key::is_well_formed(&key));
    let text = browser
        .eval("return document.body.innerText")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("rtmp://127.0.0.1:") && text.contains("Rotate stream key"),
        "{text}"
    );
    browser.screenshot(&out_dir().join("screenshots/dashboard.png"));
    // A reload no longer shows the key.
    browser.goto(&format!("{base}/dashboard"));
    assert_eq!(
        browser.eval("return document.getElementById('stream-key')"),
        serde_json::Value::Null
    );
    // And the key works.
    let mut publisher = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(
        publisher.wait(Duration::from_secs(20)).unwrap().success(),
        "{}",
        publisher.stderr()
    );
}
