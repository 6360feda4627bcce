//! Private streams against the real binary and real ffmpeg: who gets a playback token, what the
//! origin refuses without one, and that the media really is AES-128 ciphertext that ffmpeg plays
//! only with the key the origin served. (The edge's half of the check is the filter's, tested on
//! the shared token table in `filter_wasm.rs`.)

use std::time::Duration;

use boltstream_tests::http::{get, request, set_cookie_value, Response};
use boltstream_tests::media::{looks_plain, run, Clip, Publisher};
use boltstream_tests::server::{collect_files, Server};
use boltstream_tests::{out_dir, wait_for};

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn playback(server: &Server, cookie: Option<&str>, body: &str) -> Response {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    request(
        server.http,
        "POST",
        b"/api/v1/channels/alice/playback",
        &headers,
        body.as_bytes(),
    )
    .unwrap()
}

fn get_with(server: &Server, target: &str, cookie: &str) -> Response {
    request(
        server.http,
        "GET",
        target.as_bytes(),
        &[("cookie", cookie)],
        b"",
    )
    .unwrap()
}

#[test]
fn a_private_stream_is_encrypted_and_only_token_holders_get_its_playlist_and_keys() {
    let server = Server::start(&["--hls-key-rotation", "2"]);
    let key = server.add_user("alice");
    server.add_user("bob");
    server.add_user("carol");
    cli_ok(&server, &["access", "set", "alice", "private"]);
    cli_ok(&server, &["access", "allow", "alice", "bob"]);
    let shared = cli_ok(&server, &["access", "share", "alice", "--hours", "1"]);
    let code = shared.trim().rsplit_once("#share=").unwrap().1.to_string();

    let mut publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    assert!(server.wait_live("alice", Duration::from_secs(15)));

    // Nobody who may not watch learns the stream exists.
    let bob = server.session("bob");
    let carol = server.session("carol");
    assert!(!get(server.http, "/api/v1/channels")
        .text()
        .contains("alice"));
    assert_eq!(get(server.http, "/api/v1/channels/alice").status, 404);
    assert_eq!(playback(&server, None, "{}").status, 404);
    assert_eq!(playback(&server, Some(&carol), "{}").status, 404);
    assert_eq!(playback(&server, None, r#"{"share":"wrong"}"#).status, 404);
    assert_eq!(
        get(server.http, "/live/alice/index.m3u8").status,
        404,
        "not under /live/"
    );

    // An allowed user and a share-link holder get a token scoped to the channel.
    let for_bob = playback(&server, Some(&bob), "{}");
    assert_eq!(for_bob.status, 200, "{}", for_bob.text());
    let set = for_bob.header("set-cookie").unwrap().to_string();
    assert!(
        set.contains("Path=/private/alice/")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict"),
        "{set}"
    );
    let token = set_cookie_value(&for_bob, "bs_play").unwrap();
    let by_link = playback(&server, None, &format!(r#"{{"share":"{code}"}}"#));
    assert_eq!(by_link.status, 200);
    let cookie = format!("bs_play={token}");

    // Without a valid token: 403 for the playlist and keys; segments are ciphertext for all.
    assert_eq!(get(server.http, "/private/alice/index.m3u8").status, 403);
    assert_eq!(
        get_with(&server, "/private/alice/index.m3u8", "bs_play=1.1.x").status,
        403
    );
    let playlist = wait_for(Duration::from_secs(20), || {
        let r = get_with(&server, "/private/alice/index.m3u8", &cookie);
        let text = r.text();
        (r.status == 200 && text.matches("#EXTINF").count() >= 3).then_some(text)
    })
    .expect("the private playlist lists segments for a token holder");
    assert!(
        playlist.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"key/"),
        "{playlist}"
    );
    let key_uris: Vec<&str> = (playlist.lines())
        .filter(|l| l.starts_with("#EXT-X-KEY"))
        .filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .collect();
    let mut distinct = key_uris.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "a key serves two segments here, then rotates: {playlist}"
    );
    let key_path = format!("/private/alice/{}", key_uris[0]);
    assert_eq!(
        get(server.http, &key_path).status,
        403,
        "no key without a token"
    );
    let served_key = get_with(&server, &key_path, &cookie);
    assert_eq!(served_key.status, 200);
    assert_eq!(served_key.body.len(), 16);
    assert_eq!(
        served_key.header("cache-control"),
        Some("private, no-store")
    );
    // Another channel's token opens nothing here.
    let segment = playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    let seg = get(server.http, &format!("/private/alice/{segment}"));
    assert_eq!(seg.status, 200, "segments need no token");
    assert_eq!(seg.body.len() % 16, 0, "whole AES blocks");
    assert!(
        !looks_plain(&seg.body),
        "not an MPEG-TS packet in the clear"
    );

    // Segments on disk do not decode; ffmpeg given the playlist (and the key through the origin,
    // with the token) decodes every segment without an error.
    let mut files = Vec::new();
    collect_files(server.data(), &mut files);
    let on_disk: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .collect();
    assert!(!on_disk.is_empty());
    for path in &on_disk {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.len() % 16 == 0 && !looks_plain(&bytes),
            "{} is plaintext",
            path.display()
        );
        let (ok, _, _) = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-f",
                "mpegts",
                "-show_streams",
                &path.to_string_lossy(),
            ],
            Duration::from_secs(20),
        );
        let (_, stdout, _) = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-f",
                "mpegts",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
                &path.to_string_lossy(),
            ],
            Duration::from_secs(20),
        );
        assert!(
            !ok || stdout.trim().is_empty(),
            "{} decodes without the key",
            path.display()
        );
    }
    let url = format!("http://{}/private/alice/index.m3u8", server.http);
    let headers = format!("Cookie: {cookie}\r\n");
    let out = out_dir().join("private_decrypted.ts");
    let (ok, _, stderr) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-xerror",
            "-headers",
            &headers,
            "-live_start_index",
            "0",
            "-i",
            &url,
            "-t",
            "4",
            "-c",
            "copy",
            "-y",
            &out.to_string_lossy(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        ok,
        "ffmpeg with the token could not read the private stream: {stderr}"
    );
    let kinds = boltstream_tests::media::stream_types(&out);
    assert!(
        kinds
            .as_ref()
            .is_ok_and(|k| k.contains("video") && k.contains("audio")),
        "{kinds:?}"
    );

    // Every segment the playlist lists, decrypted with the key and IV its EXT-X-KEY names
    // (openssl, not our code), decodes with no error.
    let listed = get_with(&server, "/private/alice/index.m3u8", &cookie).text();
    let (mut key_hex, mut iv_hex, mut checked) = (String::new(), String::new(), 0);
    for line in listed.lines() {
        if let Some(tag) = line.strip_prefix("#EXT-X-KEY:METHOD=AES-128,URI=\"") {
            let (uri, rest) = tag.split_once('"').unwrap();
            let key = get_with(&server, &format!("/private/alice/{uri}"), &cookie);
            assert_eq!(key.body.len(), 16);
            key_hex = key.body.iter().map(|b| format!("{b:02x}")).collect();
            iv_hex = rest.split("IV=0X").nth(1).unwrap().to_string();
        } else if line.ends_with(".ts") {
            let encrypted = out_dir().join("private-segment.enc");
            let plain = out_dir().join("private-segment.ts");
            std::fs::write(
                &encrypted,
                get(server.http, &format!("/private/alice/{line}")).body,
            )
            .unwrap();
            let (ok, _, err) = run(
                "openssl",
                &[
                    "enc",
                    "-d",
                    "-aes-128-cbc",
                    "-K",
                    &key_hex,
                    "-iv",
                    &iv_hex,
                    "-in",
                    &encrypted.to_string_lossy(),
                    "-out",
                    &plain.to_string_lossy(),
                ],
                Duration::from_secs(20),
            );
            assert!(ok, "openssl could not decrypt {line}: {err}");
            assert_eq!(boltstream_tests::media::decode_errors(&plain), "", "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "{listed}");

    // Revoking bob: no new token for him (his current one lives out its five minutes).
    cli_ok(&server, &["access", "disallow", "alice", "bob"]);
    assert_eq!(playback(&server, Some(&bob), "{}").status, 404);
    publisher.kill();
    // The media key the origin served is nowhere in its log or files.
    assert_eq!(server.leaks(&served_key.body), None);
    if let Some(leak) = server.secret_leak() {
        panic!("{leak}");
    }
    let log = server.log();
    assert!(!log.contains(&token), "a playback token reached the log");
    assert!(!log.contains(&code), "a share code reached the log");
}

/// The who-can-watch API, with every bad input it may get.
#[test]
fn visibility_viewers_and_share_links_through_the_api_refuse_bad_input() {
    let server = Server::start(&[]);
    server.add_user("alice");
    server.add_user("bob");
    let alice = server.session("alice");
    let dashboard = get_with(&server, "/dashboard", &alice).text();
    let csrf = boltstream_tests::http::csrf_field(&dashboard)
        .expect("the dashboard has a form")
        .to_string();
    let call = |method: &str, target: &str, content_type: &str, body: &str| {
        request(
            server.http,
            method,
            target.as_bytes(),
            &[
                ("cookie", alice.as_str()),
                ("x-csrf-token", csrf.as_str()),
                ("content-type", content_type),
            ],
            body.as_bytes(),
        )
        .unwrap()
    };
    let json = "application/json";
    // Visibility.
    assert_eq!(
        call(
            "PUT",
            "/api/v1/me/visibility",
            "text/plain",
            r#"{"private":true}"#
        )
        .status,
        415
    );
    assert_eq!(
        call("PUT", "/api/v1/me/visibility", json, r#"{"private":"yes"}"#).status,
        400
    );
    assert_eq!(
        call(
            "PUT",
            "/api/v1/me/visibility",
            json,
            r#"{"private":true,"x":1}"#
        )
        .status,
        400
    );
    let big = format!(r#"{{"private":true,"pad":"{}"}}"#, "a".repeat(1 << 20));
    assert_eq!(call("PUT", "/api/v1/me/visibility", json, &big).status, 413);
    let no_csrf = request(
        server.http,
        "PUT",
        b"/api/v1/me/visibility",
        &[("cookie", alice.as_str()), ("content-type", json)],
        br#"{"private":true}"#,
    )
    .unwrap();
    assert_eq!(
        no_csrf.status, 403,
        "a session's change needs its CSRF token"
    );
    let anonymous = request(
        server.http,
        "PUT",
        b"/api/v1/me/visibility",
        &[("content-type", json)],
        br#"{"private":true}"#,
    )
    .unwrap();
    assert_eq!(anonymous.status, 401);
    let r = call("PUT", "/api/v1/me/visibility", json, r#"{"private":true}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(cli_ok(&server, &["access", "show", "alice"]).contains("alice: private"));
    // Allowed viewers.
    assert_eq!(
        call("PUT", "/api/v1/me/viewers/nobody_here", json, "").status,
        404
    );
    assert_eq!(call("PUT", "/api/v1/me/viewers/bob", json, "").status, 200);
    assert!(get_with(&server, "/api/v1/me/viewers", &alice)
        .text()
        .contains("\"bob\""));
    assert_eq!(
        call("DELETE", "/api/v1/me/viewers/bob", json, "").status,
        200
    );
    assert!(!get_with(&server, "/api/v1/me/viewers", &alice)
        .text()
        .contains("\"bob\""));
    // Share links: bounded lifetime and count; codes shown once, never listed.
    for bad in [
        r#"{"ttl_s":0}"#,
        r#"{"ttl_s":99999999999}"#,
        r#"{"ttl_s":-1}"#,
        "{}",
    ] {
        assert_eq!(
            call("POST", "/api/v1/me/share-links", json, bad).status,
            400,
            "{bad}"
        );
    }
    let made = call("POST", "/api/v1/me/share-links", json, r#"{"ttl_s":600}"#);
    assert_eq!(made.status, 200);
    let made: serde_json::Value = serde_json::from_slice(&made.body).unwrap();
    let code = made["url"]
        .as_str()
        .unwrap()
        .rsplit_once("#share=")
        .unwrap()
        .1
        .to_string();
    let listed = get_with(&server, "/api/v1/me/share-links", &alice).text();
    assert!(listed.contains(&format!("\"id\":{}", made["id"])) && !listed.contains(&code));
    for _ in 1..50 {
        assert_eq!(
            call("POST", "/api/v1/me/share-links", json, r#"{"ttl_s":600}"#).status,
            200
        );
    }
    assert_eq!(
        call("POST", "/api/v1/me/share-links", json, r#"{"ttl_s":600}"#).status,
        400,
        "past the per-channel limit"
    );
    // The playback call: JSON only, an oversized or wrong code is no code.
    assert_eq!(
        request(
            server.http,
            "POST",
            b"/api/v1/channels/alice/playback",
            &[("content-type", "text/plain")],
            b"{}"
        )
        .unwrap()
        .status,
        415
    );
    let long = format!(r#"{{"share":"{}"}}"#, "a".repeat(200));
    assert_eq!(playback(&server, None, &long).status, 404);
    assert_eq!(playback(&server, None, r#"{"share":5}"#).status, 400);
    assert_eq!(
        playback(&server, None, &format!(r#"{{"share":"{code}"}}"#)).status,
        200
    );
    let path = format!("/api/v1/me/share-links/{}", made["id"]);
    assert_eq!(call("DELETE", &path, json, "").status, 200);
    assert_eq!(call("DELETE", &path, json, "").status, 404);
    assert_eq!(
        call("DELETE", "/api/v1/me/share-links/x", json, "").status,
        400
    );
    assert_eq!(
        playback(&server, None, &format!(r#"{{"share":"{code}"}}"#)).status,
        404,
        "revoked"
    );
    // Bob cannot touch alice's links.
    let bob = server.session("bob");
    let bob_csrf =
        boltstream_tests::http::csrf_field(&get_with(&server, "/dashboard", &bob).text())
            .unwrap()
            .to_string();
    let second =
        serde_json::from_str::<serde_json::Value>(&listed).unwrap()["share_links"][0]["id"].clone();
    let r = request(
        server.http,
        "DELETE",
        format!("/api/v1/me/share-links/{second}").as_bytes(),
        &[
            ("cookie", bob.as_str()),
            ("x-csrf-token", bob_csrf.as_str()),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 404, "not bob's link");
}

/// A channel made private while it is live in the clear: its publish is stopped at once (the
/// encoder reconnects and the new publish is encrypted), and what it published in the clear is
/// served no more — not after the output's cleanup delay.
#[test]
fn a_channel_made_private_while_live_stops_serving_in_the_clear_and_restarts_encrypted() {
    let server = Server::start(&[]);
    let key = server.add_user("alice");
    let mut first = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let listed = wait_for(Duration::from_secs(15), || {
        let r = get(server.http, "/live/alice/index.m3u8");
        (r.status == 200).then(|| r.text())
    })
    .expect("public and live");
    let segment = listed
        .lines()
        .find(|l| l.ends_with(".ts"))
        .unwrap()
        .to_string();
    assert_eq!(
        get(server.http, &format!("/live/alice/{segment}")).status,
        200
    );
    let said = cli_ok(&server, &["access", "set", "alice", "private"]);
    assert!(said.contains("stopped"), "{said}");
    // ffmpeg does not reconnect: its publish ends and it exits.
    assert!(
        first.wait(Duration::from_secs(10)).is_some(),
        "the publish was not stopped"
    );
    let gone = wait_for(Duration::from_secs(5), || {
        (get(server.http, "/live/alice/index.m3u8").status == 404
            && get(server.http, &format!("/live/alice/{segment}")).status == 404)
            .then_some(())
    });
    assert!(gone.is_some(), "the stream is still served in the clear");
    // The encoder comes back: encrypted, under /private/ only.
    let mut second = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    let cookie = server.playback_cookie("alice", 60);
    let private = wait_for(Duration::from_secs(20), || {
        let r = get_with(&server, "/private/alice/index.m3u8", &cookie);
        (r.status == 200 && r.text().contains("#EXTINF")).then(|| r.text())
    })
    .expect("the new publish is private");
    assert!(private.contains("METHOD=AES-128"), "{private}");
    assert_eq!(get(server.http, "/live/alice/index.m3u8").status, 404);
    second.kill();
}

/// The dashboard's "who can watch" card, through its forms (with the session's CSRF token).
#[test]
fn the_dashboard_makes_a_channel_private_allows_viewers_and_shares_links() {
    let server = Server::start(&[]);
    server.add_user("alice");
    server.add_user("bob");
    let alice = server.session("alice");
    let page = get_with(&server, "/dashboard", &alice).text();
    assert!(
        page.contains("Who can watch") && page.contains("Make private"),
        "{page}"
    );
    let csrf = boltstream_tests::http::csrf_field(&page)
        .unwrap()
        .to_string();
    let post = |action: &str, fields: &str| {
        request(
            server.http,
            "POST",
            format!("/dashboard/{action}").as_bytes(),
            &[
                ("cookie", alice.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            format!("csrf={csrf}&{fields}").as_bytes(),
        )
        .unwrap()
        .text()
    };
    assert!(post("visibility", "private=1").contains("Your channel is private."));
    assert!(cli_ok(&server, &["access", "show", "alice"]).contains("alice: private"));
    assert!(post("allow", "viewer=Bob").contains("bob may watch your channel."));
    assert!(post("allow", "viewer=nobody_here").contains("Not done"));
    let shared = post("share", "hours=2");
    let code = shared
        .split("#share=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .expect("the new link is shown once");
    assert_eq!(
        playback(&server, None, &format!(r#"{{"share":"{code}"}}"#)).status,
        200
    );
    assert!(post("share", "hours=0").contains("Not done"));
    let page = get_with(&server, "/dashboard", &alice).text();
    assert!(
        page.contains("Allowed viewers") && page.contains(">bob<"),
        "{page}"
    );
    assert!(
        !page.contains(&code),
        "a share link's code is shown only once"
    );
    let id = page
        .split("name=\"id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(post("revoke-share", &format!("id={id}")).contains("Share link revoked."));
    assert_eq!(
        playback(&server, None, &format!(r#"{{"share":"{code}"}}"#)).status,
        404
    );
    assert!(post("disallow", "viewer=bob").contains("may no longer watch"));
    assert!(post("visibility", "private=0").contains("Your channel is public."));
    // Without the session's CSRF token nothing changes.
    let forged = request(
        server.http,
        "POST",
        b"/dashboard/visibility",
        &[
            ("cookie", alice.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"csrf=wrong&private=1",
    )
    .unwrap();
    assert_ne!(forged.status, 200);
    assert!(cli_ok(&server, &["access", "show", "alice"]).contains("alice: public"));
}
