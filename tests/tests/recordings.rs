//! Past broadcasts with real ffmpeg publishing to the real ingest: every test clip becomes a VOD
//! that ffprobe reads with the clip's duration and ffmpeg decodes with no error; a recording
//! survives the server's SIGKILL; retention and quotas take the oldest first; the free-space floor
//! stops recording, not the live stream; deleting removes files and listing; crafted URLs reach
//! nothing else on disk.

use std::time::Duration;

use boltstream_tests::browser::Browser;
use boltstream_tests::http::{get, request, set_cookie_value, Response};
use boltstream_tests::media::{looks_plain, run, Clip, Publisher};
use boltstream_tests::server::{collect_files, Server};
use boltstream_tests::wait_for;

/// Room enough on any test machine's disk; the floor is tested on its own.
const FLOOR: &[&str] = &["--recording-min-free-mb", "64"];

fn recordings(server: &Server, user: &str) -> Vec<serde_json::Value> {
    let r = get(server.http, &format!("/api/v1/channels/{user}/recordings"));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    body["recordings"].as_array().cloned().unwrap_or_default()
}

/// Waits for `n` finished recordings of `user`.
fn wait_recordings(server: &Server, user: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(Duration::from_secs(30), || {
        let list = recordings(server, user);
        (list.len() >= n).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "{user}: {n} recordings never listed: {:?}",
            recordings(server, user)
        )
    })
}

fn duration_of(url: &str) -> f64 {
    duration_with(url, &[])
}

/// ffprobe's duration of `url`, fetched with ffmpeg's `-headers` (a playback token's cookie).
fn duration_with(url: &str, headers: &[&str]) -> f64 {
    let mut args = vec!["-v", "error"];
    args.extend(headers);
    args.extend(["-show_entries", "format=duration", "-of", "csv=p=0", url]);
    let (ok, out, err) = run("ffprobe", &args, Duration::from_secs(60));
    assert!(ok, "ffprobe {url}: {err}");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {url}: {out}"))
}

/// ffmpeg decodes every frame with no error.
fn decodes_cleanly(url: &str) {
    decodes_cleanly_with(url, &[]);
}

/// [`decodes_cleanly`], fetching with ffmpeg's `-headers`.
fn decodes_cleanly_with(url: &str, headers: &[&str]) {
    let mut args = vec!["-v", "error", "-xerror"];
    args.extend(headers);
    args.extend(["-i", url, "-f", "null", "-"]);
    let (ok, _, err) = run("ffmpeg", &args, Duration::from_secs(120));
    assert!(
        ok && err.trim().is_empty(),
        "{url} does not decode cleanly: {err}"
    );
}

/// The duration the page's player reports once it knows it.
fn vod_duration(browser: &Browser) -> Option<f64> {
    wait_for(Duration::from_secs(30), || {
        let d = browser.eval("var v = document.getElementById('player'); return v && v.duration > 0 && isFinite(v.duration) ? v.duration : 0");
        d.as_f64().filter(|d| *d > 0.0)
    })
}

/// Seeks the page's player to the middle of `duration`; whether it then played a second past it,
/// and hls.js's errors.
fn seek_to_the_middle(browser: &Browser, duration: f64) -> (bool, serde_json::Value) {
    let middle = duration / 2.0;
    browser.eval(&format!(
        "document.getElementById('player').currentTime = {middle}; return true;"
    ));
    let played = wait_for(Duration::from_secs(30), || {
        let t = browser
            .eval("var v = document.getElementById('player'); return v.paused ? 0 : v.currentTime")
            .as_f64()?;
        (t > middle + 1.0).then_some(t)
    });
    (
        played.is_some(),
        browser.eval("return window.boltstreamErrors || []"),
    )
}

fn publish_whole(server: &Server, user: &str, clip: Clip) -> Publisher {
    let key = server.add_user(user);
    Publisher::start(clip, &server.publish_url(&key), false)
}

#[test]
fn every_clip_becomes_a_vod_of_its_duration_that_decodes_cleanly() {
    for format in ["cmaf", "ts"] {
        let server = Server::start(&[&["--hls-format", format][..], FLOOR].concat());
        let clips = [
            ("av", Clip::AudioVideo, 2.0),
            ("video", Clip::VideoOnly, 2.0),
            ("audio", Clip::AudioOnly, 2.0),
            ("longgop", Clip::LongGop, 4.0),
            ("short", Clip::Short, 2.0),
            ("highrate", Clip::HighRate, 2.0),
        ];
        let mut publishers: Vec<(String, Clip, f64, Publisher)> = clips
            .iter()
            .map(|(name, clip, segment)| {
                let user = format!("{format}_{name}");
                let p = publish_whole(&server, &user, *clip);
                (user, *clip, *segment, p)
            })
            .collect();
        for (user, clip, segment, publisher) in &mut publishers {
            assert!(
                publisher.wait(Duration::from_secs(40)).is_some(),
                "{user}: ffmpeg never ended"
            );
            let list = wait_recordings(&server, user, 1);
            assert_eq!(list.len(), 1, "{user}: {list:?}");
            let playlist = list[0]["playlist"].as_str().unwrap().to_string();
            let body = get(server.http, &playlist);
            assert_eq!(body.status, 200, "{user}");
            let text = body.text();
            assert!(
                text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.ends_with("#EXT-X-ENDLIST\n"),
                "{text}"
            );
            assert_eq!(
                body.header("cache-control"),
                Some("public, max-age=300"),
                "{user}"
            );
            let url = format!("http://{}{playlist}", server.http);
            let want = duration_of(&clip.path().to_string_lossy());
            let got = duration_of(&url);
            assert!(
                (got - want).abs() <= *segment + 0.1,
                "{format} {user}: VOD {got:.2} s, clip {want:.2} s (± one {segment} s segment)"
            );
            let listed = list[0]["duration_s"].as_f64().unwrap();
            assert!(
                (listed - got).abs() < 0.5,
                "{user}: listed {listed}, ffprobe {got}"
            );
            decodes_cleanly(&url);
        }
    }
}

#[test]
fn a_recording_survives_sigkill_ended_at_its_last_whole_segment() {
    let mut server = Server::start(&[&["--hls-format", "cmaf"][..], FLOOR].concat());
    let key = server.add_user("alice");
    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(server.wait_live("alice", Duration::from_secs(15)));
    std::thread::sleep(Duration::from_secs(9));
    server.signal("KILL");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    publisher.kill();
    server.restart();
    let list = wait_recordings(&server, "alice", 1);
    let playlist = list[0]["playlist"].as_str().unwrap();
    let url = format!("http://{}{playlist}", server.http);
    let got = duration_of(&url);
    assert!((4.0..=12.0).contains(&got), "{got} s recorded of about 9");
    decodes_cleanly(&url);
    // Every file the playlist names exists whole: fetched, and decoded above.
    let text = get(server.http, playlist).text();
    for line in text.lines().filter(|l| l.ends_with(".m4s")) {
        let file = playlist.replace("index.m3u8", line);
        assert_eq!(get(server.http, &file).status, 200, "{file}");
    }
    assert!(
        server
            .log()
            .contains("recordings a stop cut short are kept"),
        "recovery said nothing"
    );
}

#[test]
fn quota_takes_the_oldest_and_retention_takes_what_expired() {
    let mut server = Server::start(&[&["--hls-format", "cmaf"][..], FLOOR].concat());
    for n in 0..3 {
        let mut p = publish_whole(&server, &format!("user{n}"), Clip::AudioVideo);
        assert!(p.wait(Duration::from_secs(40)).is_some());
        wait_recordings(&server, &format!("user{n}"), 1);
    }
    let sizes: Vec<u64> = (0..3)
        .map(|n| {
            recordings(&server, &format!("user{n}"))[0]["bytes"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let total: u64 = sizes.iter().sum();
    // Room for the two newest, not all three.
    let quota_mb = (sizes[1] + sizes[2]).div_ceil(1 << 20);
    assert!(total > quota_mb << 20, "sizes {sizes:?}");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    server.restart_with(&[FLOOR, &["--recording-quota-mb", &quota_mb.to_string()][..]].concat());
    let gone = wait_for(Duration::from_secs(30), || {
        recordings(&server, "user0").is_empty().then_some(())
    });
    assert!(gone.is_some(), "the oldest recording was not deleted");
    assert_eq!(recordings(&server, "user1").len(), 1);
    assert_eq!(recordings(&server, "user2").len(), 1);
    assert!(!server
        .data()
        .join("recordings/user0")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));

    // Retention: anything that ended more than 5 s ago goes.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    server.restart_with(&[FLOOR, &["--recording-retention", "5"][..]].concat());
    let expired = wait_for(Duration::from_secs(30), || {
        (recordings(&server, "user1").is_empty() && recordings(&server, "user2").is_empty())
            .then_some(())
    });
    assert!(expired.is_some(), "expired recordings were kept");
}

#[test]
fn the_free_space_floor_stops_recording_not_the_live_stream() {
    // A floor above what the disk has: recording stops at the first segment, live goes on.
    let server = Server::start(&[
        "--hls-format",
        "cmaf",
        "--recording-min-free-mb",
        "100000000",
    ]);
    let key = server.add_user("alice");
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let live = wait_for(Duration::from_secs(20), || {
        let r = get(server.http, "/live/alice/index.m3u8");
        (r.status == 200 && r.text().matches("#EXTINF").count() >= 3).then_some(())
    });
    assert!(live.is_some(), "the live stream must go on");
    let log = server.log();
    assert_eq!(log.matches("recording stopped").count(), 1, "{log}");
    assert!(log.contains("recording_min_free_mb"), "{log}");
    assert!(recordings(&server, "alice").is_empty());
    assert!(
        !server
            .data()
            .join("recordings/alice")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "an empty recording was left behind"
    );
}

#[test]
fn deleting_removes_files_and_listing_and_crafted_urls_reach_nothing() {
    let server = Server::start(&[&["--hls-format", "ts"][..], FLOOR].concat());
    let mut p = publish_whole(&server, "alice", Clip::Short);
    assert!(p.wait(Duration::from_secs(30)).is_some());
    let list = wait_recordings(&server, "alice", 1);
    let id = list[0]["id"].as_u64().unwrap();
    let dir = server.data().join(format!("recordings/alice/{id}"));
    assert!(dir.join("segments.log").exists());

    // Only what the log names is served: not the log, not the description, nothing beside.
    for path in [
        format!("/vod/alice/{id}/segments.log"),
        format!("/vod/alice/{id}/meta.json"),
        format!("/vod/alice/{id}/..%2f..%2fboltstream.db"),
        format!("/vod/alice/{id}/../../boltstream.db"),
        format!("/vod/alice/{id}/%2e%2e/%2e%2e/boltstream.db"),
        format!("/vod/alice/{}/index.m3u8", id + 1),
        format!("/vod/bob/{id}/index.m3u8"),
        "/vod/alice/1/1.ts".to_string(),
        format!("/vod/alice/{id}/99999999999999.ts"),
    ] {
        let r = request(server.http, "GET", path.as_bytes(), &[], b"").unwrap();
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{path}: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(80)])
        );
        assert!(
            !r.text().contains("SQLite") && !r.text().contains("seg "),
            "{path}"
        );
    }

    // The API needs the owner (CSRF-checked with a session; here the CLI's view of it).
    let r = request(
        server.http,
        "DELETE",
        format!("/api/v1/me/recordings/{id}").as_bytes(),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    let out = server.cli(&["recordings", "list", "alice", "--json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id.to_string()));
    let out = server.cli(&["recordings", "delete", "alice", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists(), "files remain");
    assert!(recordings(&server, "alice").is_empty());
    assert_eq!(
        get(server.http, &format!("/vod/alice/{id}/index.m3u8")).status,
        404
    );
    let again = server.cli(&["recordings", "delete", "alice", &id.to_string()]);
    assert!(!again.status.success());
}

#[test]
fn a_channel_that_keeps_no_recordings_or_turns_private_shows_none() {
    let server = Server::start(&[&["--hls-format", "ts"][..], FLOOR].concat());
    let key = server.add_user("alice");
    let out = server.cli(&["recordings", "keep", "alice", "off"]);
    assert!(out.status.success());
    let mut p = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(p.wait(Duration::from_secs(30)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert!(recordings(&server, "alice").is_empty());
    assert!(!server.data().join("recordings/alice").exists());

    server.cli(&["recordings", "keep", "alice", "on"]);
    let mut p = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(p.wait(Duration::from_secs(30)).is_some());
    let list = wait_recordings(&server, "alice", 1);
    let playlist = list[0]["playlist"].as_str().unwrap().to_string();
    assert_eq!(get(server.http, &playlist).status, 200);
    // Made private: its past broadcasts go with it, from the API and the origin.
    let out = server.cli(&["access", "set", "alice", "private"]);
    assert!(out.status.success());
    assert_eq!(
        get(server.http, "/api/v1/channels/alice/recordings").status,
        404
    );
    assert_eq!(get(server.http, &playlist).status, 404);
    server.cli(&["access", "set", "alice", "public"]);
    assert_eq!(get(server.http, &playlist).status, 200);
}

#[test]
fn a_vod_plays_and_seeks_in_chromium_through_the_edge_which_caches_its_segments() {
    let server = Server::start(&[&["--hls-format", "cmaf"][..], FLOOR].concat());
    let mut p = publish_whole(&server, "alice", Clip::AudioVideo);
    assert!(p.wait(Duration::from_secs(40)).is_some());
    let list = wait_recordings(&server, "alice", 1);
    let (id, playlist) = (
        list[0]["id"].as_u64().unwrap(),
        list[0]["playlist"].as_str().unwrap().to_string(),
    );
    let envoy = boltstream_tests::envoy::Envoy::start(server.http, r#"{"playlist_max_age": 1}"#);

    // Through the edge: the policy's headers, and the second fetch of a segment is the edge's.
    let text = get(envoy.addr, &playlist).text();
    let segment = text
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .expect("a segment")
        .to_string();
    let url = playlist.replace("index.m3u8", &segment);
    let first = get(envoy.addr, &url);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("cache-control"),
        Some("public, max-age=86400, immutable")
    );
    let second = get(envoy.addr, &url);
    assert_eq!(second.body, first.body);
    assert!(
        second.header("age").is_some(),
        "second fetch served from the edge cache"
    );

    // The channel page lists it; its page plays it in Chromium and seeks to the middle.
    let channel = get(envoy.addr, "/alice").text();
    assert!(channel.contains(&format!("/alice/past/{id}")), "{channel}");
    // With the stream's last live picture, as a JPEG.
    let thumb = list[0]["thumbnail"]
        .as_str()
        .expect("a recording's picture")
        .to_string();
    assert!(
        channel.contains(&format!("<img src=\"{thumb}\"")),
        "{channel}"
    );
    let picture = get(envoy.addr, &thumb);
    assert_eq!(
        (picture.status, picture.header("content-type")),
        (200, Some("image/jpeg"))
    );
    assert_eq!(&picture.body[..2], &[0xff, 0xd8]);
    let browser = Browser::start();
    browser.goto(&format!("http://{}/alice/past/{id}", envoy.addr));
    std::fs::create_dir_all(boltstream_tests::out_dir()).unwrap();
    let duration = vod_duration(&browser).expect("the VOD's duration is known");
    assert!((8.0..=12.0).contains(&duration), "duration {duration}");
    let (played, errors) = seek_to_the_middle(&browser, duration);
    assert!(
        played,
        "never played past the middle after seeking: {errors}"
    );
    assert_eq!(
        errors.as_array().map(Vec::len),
        Some(0),
        "hls.js errors: {errors}"
    );
    browser.screenshot(&boltstream_tests::out_dir().join("past-broadcast.png"));
    browser.goto(&format!("http://{}/alice", envoy.addr));
    browser.eval("document.getElementById('past').scrollIntoView(); return true;");
    browser.screenshot(&boltstream_tests::out_dir().join("channel-past-broadcasts.png"));
}

#[test]
fn the_streamer_deletes_from_the_api_and_the_dashboard_and_chooses_to_record() {
    let server = Server::start(&[&["--hls-format", "ts"][..], FLOOR].concat());
    let key = server.add_user("alice");
    for n in 1..=2 {
        let mut p = Publisher::start(Clip::Short, &server.publish_url(&key), false);
        assert!(p.wait(Duration::from_secs(30)).is_some());
        wait_recordings(&server, "alice", n);
    }
    let ids: Vec<u64> = (recordings(&server, "alice").iter())
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    let (cookie, csrf) = server.session_and_csrf("alice");
    let dash = request(
        server.http,
        "GET",
        b"/dashboard",
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    for id in &ids {
        assert!(dash.text().contains(&format!("data-recording=\"{id}\"")));
    }
    // The API: a cookie alone may not (CSRF); with the token it deletes.
    let path = format!("/api/v1/me/recordings/{}", ids[0]);
    let r = request(
        server.http,
        "DELETE",
        path.as_bytes(),
        &[("cookie", &cookie)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403);
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = request(server.http, "DELETE", path.as_bytes(), &headers, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(server.http, "DELETE", path.as_bytes(), &headers, b"").unwrap();
    assert_eq!(r.status, 404);
    // The dashboard's form.
    let form = format!("csrf={csrf}&id={}", ids[1]);
    let r = request(
        server.http,
        "POST",
        b"/dashboard/delete-recording",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
    .unwrap();
    assert!(r.text().contains("Recording deleted."), "{}", r.text());
    assert!(recordings(&server, "alice").is_empty());
    assert!(!server
        .data()
        .join("recordings/alice")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
    // Recording off through the API, then nothing is kept of the next publish.
    let body = br#"{"keep": false}"#;
    let mut put = headers.to_vec();
    put.push(("content-type", "application/json"));
    let r = request(server.http, "PUT", b"/api/v1/me/recording", &put, body).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let mut p = Publisher::start(Clip::Short, &server.publish_url(&key), false);
    assert!(p.wait(Duration::from_secs(30)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert!(recordings(&server, "alice").is_empty());
}

/// Unmounts a test tmpfs even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The data directory on a 40 MB tmpfs: live output and recordings share it, as on a real disk.
/// Recordings fill it until its free space nears the floor; then recording stops and the live
/// output keeps the room it needs.
#[test]
fn a_filling_disk_stops_recording_before_the_live_output_suffers() {
    let dir = tempfile::Builder::new()
        .prefix("boltstream-full-")
        .tempdir()
        .unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: this process may not mount a tmpfs (not root); the floor itself is tested by the_free_space_floor_stops_recording_not_the_live_stream");
        return;
    }
    let _unmount = Unmount(dir.path().to_path_buf());
    let server = Server::start_in(
        dir.path(),
        &["--hls-format", "cmaf", "--recording-min-free-mb", "16"],
    );
    let users = ["alice", "bob", "carol"];
    let publishers: Vec<Publisher> = (users.iter())
        .map(|u| {
            Publisher::start(
                Clip::AudioVideo,
                &server.publish_url(&server.add_user(u)),
                true,
            )
        })
        .collect();
    let stopped = wait_for(Duration::from_secs(90), || {
        (server.log().matches("recording stopped").count() == users.len()).then_some(())
    });
    assert!(
        stopped.is_some(),
        "recordings never stopped: {}",
        server.log()
    );
    // The live output goes on: every playlist still advances, and no live write failed.
    let newest = |u: &str| {
        let r = get(server.http, &format!("/live/{u}/index.m3u8"));
        (
            r.text()
                .lines()
                .rev()
                .find(|l| l.ends_with(".m4s"))
                .map(str::to_string),
            r.status,
        )
    };
    let before: Vec<_> = users.iter().map(|u| newest(u)).collect();
    std::thread::sleep(Duration::from_secs(5));
    for (u, was) in users.iter().zip(before) {
        let now = newest(u);
        assert_eq!(now.1, 200, "{u}");
        assert_ne!(now.0, was.0, "{u}'s live playlist stopped advancing");
    }
    let log = server.log();
    assert!(
        !log.contains("cannot write HLS files"),
        "the live output suffered: {log}"
    );
    assert!(log.contains("recording_min_free_mb"), "{log}");
    drop(publishers);
    // What was recorded before the stop is a whole, playable recording.
    for u in users {
        let list = wait_recordings(&server, u, 1);
        let url = format!(
            "http://{}{}",
            server.http,
            list[0]["playlist"].as_str().unwrap()
        );
        assert!(duration_of(&url) >= 2.0, "{u}");
        decodes_cleanly(&url);
    }
}

fn get_with(addr: std::net::SocketAddr, target: &str, cookie: &str) -> Response {
    request(addr, "GET", target.as_bytes(), &[("cookie", cookie)], b"").unwrap()
}

/// A private channel's publish, in each format, is recorded as its live output encrypted it: the
/// files on disk and the segments served are ciphertext, no file under the data directory holds a
/// media key, and the VOD (playlist and keys) is served only to a playback token's holder, under
/// `/private/<user>/vod/` — where ffmpeg, given the token, decodes it whole. Nobody who may not
/// watch learns it exists; made public, the channel hides it; hls.js in Chromium (signed in as
/// the streamer, through Envoy) plays and seeks in it.
/// Every segment file of alice's recording `id` is ciphertext, and no file under
/// the data directory (the database included) holds any of `keys`, raw or in hex.
fn ciphertext_and_no_key_on_disk(server: &Server, id: u64, keys: &[Vec<u8>]) {
    let mut files = Vec::new();
    collect_files(server.data(), &mut files);
    let recorded: Vec<_> = (files.iter())
        .filter(|f| {
            f.to_string_lossy()
                .contains(&format!("recordings/alice/{id}/"))
        })
        .collect();
    assert!(recorded.iter().any(|f| f.ends_with("segments.log")));
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).to_uppercase();
        for k in keys {
            let hex_upper: String = k.iter().map(|b| format!("{b:02X}")).collect();
            assert!(
                !bytes.windows(16).any(|w| w == &k[..]) && !text.contains(&hex_upper),
                "{} holds a media key",
                f.display()
            );
        }
        let name = f.to_string_lossy();
        if recorded.contains(&f) && (name.ends_with(".ts") || name.ends_with(".m4s")) {
            assert!(bytes.len() % 16 == 0 && !looks_plain(&bytes), "{name}");
        }
    }
}

/// Through Envoy and in Chromium, as a share link's holder: the edge refuses the playlist and key
/// without a token and serves `key` (at `key_url`) with `cookie`; the channel page lists recording
/// `id`, whose page gets the token with `code`, plays and seeks; without the code it says private.
fn share_holder_plays_through_the_edge(
    server: &Server,
    id: u64,
    (playlist, key_url, key): (&str, &str, &[u8]),
    cookie: &str,
    code: &str,
) {
    // hls.js in Chromium through Envoy, as a share link's holder (no session): the
    // channel page lists the broadcast, whose page gets the token, then plays and seeks.
    let plugin = format!(r#"{{"playback_secrets": {}}}"#, server.filter_secrets());
    let envoy = boltstream_tests::envoy::Envoy::start(server.http, &plugin);
    let base_url = format!("http://{}", envoy.addr);
    // The edge checks the token itself: none, or another channel's, is refused there.
    assert_eq!(get(envoy.addr, playlist).status, 403);
    assert_eq!(get(envoy.addr, key_url).status, 403);
    let k = get_with(envoy.addr, key_url, cookie);
    assert_eq!((k.status, &k.body[..]), (200, key));
    let browser = Browser::start();
    browser.goto(&format!("{base_url}/alice#share={code}"));
    let link = wait_for(Duration::from_secs(15), || {
        let href = browser.eval("var a = document.querySelector('#past a.card.past'); return a ? a.getAttribute('href') : ''");
        href.as_str().filter(|h| !h.is_empty()).map(str::to_string)
    });
    assert_eq!(link, Some(format!("/alice/past/{id}#share={code}")));
    browser.goto(&format!("{base_url}/alice/past/{id}#share={code}"));
    let duration = vod_duration(&browser).unwrap_or_else(|| {
        let errors = browser.eval("return window.boltstreamErrors || []");
        panic!("no duration; errors: {errors}")
    });
    let (played, errors) = seek_to_the_middle(&browser, duration);
    assert!(played, "never played past the middle: {errors}");
    assert_eq!(errors.as_array().map(Vec::len), Some(0), "errors: {errors}");
    browser.screenshot(&boltstream_tests::out_dir().join("private-past-broadcast.png"));
    // Without the code, the page says the broadcast is private and plays nothing.
    browser.goto(&format!("{base_url}/alice/past/{id}"));
    let refused = wait_for(Duration::from_secs(10), || {
        let shown =
            browser.eval("var p = document.getElementById('private'); return !!p && !p.hidden");
        shown.as_bool().filter(|s| *s)
    });
    assert!(refused.is_some(), "the private notice never showed");
}

#[test]
fn a_private_channels_recording_stays_encrypted_and_plays_only_for_those_allowed() {
    for format in ["ts", "cmaf"] {
        let args = [
            &["--hls-format", format, "--hls-key-rotation", "1"][..],
            FLOOR,
        ]
        .concat();
        let server = Server::start(&args);
        let key = server.add_user("alice");
        server.add_user("mallory");
        assert!(server
            .cli(&["access", "set", "alice", "private"])
            .status
            .success());
        let clip = if format == "cmaf" {
            Clip::AudioVideo
        } else {
            Clip::Short
        };
        let mut p = Publisher::start(clip, &server.publish_url(&key), false);
        assert!(p.wait(Duration::from_secs(40)).is_some());
        let alice = server.session("alice");
        let mallory = server.session("mallory");
        let list = |cookie: &str| {
            let r = get_with(server.http, "/api/v1/channels/alice/recordings", cookie);
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (
                r.status,
                body["recordings"].as_array().cloned().unwrap_or_default(),
            )
        };
        let listed = wait_for(Duration::from_secs(30), || {
            let (status, list) = list(&alice);
            (status == 200 && !list.is_empty()).then_some(list)
        })
        .unwrap_or_else(|| {
            panic!(
                "{format}: alice never sees her recording: {:?}",
                list(&alice)
            )
        });
        assert_eq!(listed[0]["private"], true);
        let id = listed[0]["id"].as_u64().unwrap();
        let playlist = listed[0]["playlist"].as_str().unwrap().to_string();
        assert_eq!(playlist, format!("/private/alice/vod/{id}/index.m3u8"));
        assert!(
            listed[0]["thumbnail"].is_null(),
            "a private publish is never pictured"
        );
        // Nobody else learns it exists: not from the API, the channel page or the clear prefix.
        assert_eq!(list("").0, 404, "anonymous");
        assert_eq!(list(&mallory).0, 404, "a user not allowed");
        assert!(!get_with(server.http, "/alice", &mallory)
            .text()
            .contains("/past/"));
        assert_eq!(
            get(server.http, &format!("/vod/alice/{id}/index.m3u8")).status,
            404
        );
        assert_eq!(get(server.http, &playlist).status, 403, "no token");

        // The streamer's (any allowed viewer's) playback call gives the token, offline too.
        let r = request(
            server.http,
            "POST",
            b"/api/v1/channels/alice/playback",
            &[("content-type", "application/json"), ("cookie", &alice)],
            b"{}",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let token = set_cookie_value(&r, "bs_play").expect("a playback cookie");
        let cookie = format!("bs_play={token}");
        let text = get_with(server.http, &playlist, &cookie).text();
        assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
        let key_uris: Vec<&str> = (text.lines())
            .filter_map(|l| l.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        let segments: Vec<&str> = (text.lines())
            .filter(|l| l.ends_with(".ts") || l.ends_with(".m4s"))
            .collect();
        assert_eq!(
            key_uris.len(),
            segments.len(),
            "a key line per segment: {text}"
        );
        let mut distinct = key_uris.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 2, "a key per segment here: {text}");
        let base = playlist.trim_end_matches("index.m3u8");
        let mut keys = Vec::new();
        for uri in &distinct {
            let url = format!("{base}{uri}");
            assert_eq!(get(server.http, &url).status, 403, "no key without a token");
            let k = get_with(server.http, &url, &cookie);
            assert_eq!((k.status, k.body.len()), (200, 16), "{url}");
            assert_eq!(k.header("cache-control"), Some("private, no-store"));
            keys.push(k.body);
        }
        let seg = get(server.http, &format!("{base}{}", segments[0]));
        assert_eq!(
            seg.status, 200,
            "segments need no token: they are ciphertext"
        );
        assert_eq!(seg.body.len() % 16, 0);
        assert!(!looks_plain(&seg.body));

        // On disk: every recorded segment is ciphertext, and no file holds a media key.
        ciphertext_and_no_key_on_disk(&server, id, &keys);

        // ffmpeg, given the token, reads the whole recording and decodes it with no error.
        let url = format!("http://{}{playlist}", server.http);
        let headers = format!("Cookie: {cookie}\r\n");
        let token_headers = ["-headers", &headers];
        let duration = duration_with(&url, &token_headers);
        let expected = if format == "cmaf" { 10.0 } else { 4.0 };
        assert!((duration - expected).abs() <= 2.1, "{format}: {duration} s");
        decodes_cleanly_with(&url, &token_headers);

        // A share link opens the list (code in a POST body, never a URL) and so the recording.
        let shared = server.cli(&["access", "share", "alice", "--hours", "1"]);
        let shared = String::from_utf8_lossy(&shared.stdout).to_string();
        let code = shared.rsplit_once("#share=").unwrap().1.trim().to_string();
        let by_share = |code: &str| {
            let body = serde_json::json!({ "share": code }).to_string();
            let headers = [("content-type", "application/json")];
            request(
                server.http,
                "POST",
                b"/api/v1/channels/alice/recordings",
                &headers,
                body.as_bytes(),
            )
            .unwrap()
        };
        let r = by_share(&code);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(&playlist), "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("private, no-store"));
        assert_eq!(by_share("not_a_code").status, 404);
        // The streamer's own page plays it with the token; a visitor gets the same shell for
        // this recording as for one that never existed.
        let page = get_with(server.http, &format!("/alice/past/{id}"), &alice).text();
        assert!(page.contains(&format!("data-vod=\"{playlist}\"")), "{page}");
        let shell = |id: u64| {
            get(server.http, &format!("/alice/past/{id}"))
                .text()
                .replace(&id.to_string(), "ID")
        };
        assert_eq!(
            shell(id),
            shell(id + 1),
            "an anonymous visitor learns nothing"
        );

        if format == "cmaf" {
            let key_url = format!("{base}{}", distinct[0]);
            let edge_view = (playlist.as_str(), key_url.as_str(), &keys[0][..]);
            share_holder_plays_through_the_edge(&server, id, edge_view, &cookie, &code);
        }

        // Made public, the channel hides its encrypted recordings (and serves them nowhere).
        assert!(server
            .cli(&["access", "set", "alice", "public"])
            .status
            .success());
        assert!(recordings(&server, "alice").is_empty());
        assert_eq!(get_with(server.http, &playlist, &cookie).status, 404);
    }
}
