//! Low-Latency HLS against the real binary (`--hls-format cmaf`, the shipped default): the
//! playlist's tags and the server's duties of draft-pantos-hls-rfc8216bis, one by one. Timings are
//! asserted only as "held until" (an answer holds what did not exist when it was asked for) and
//! "answered after" (a 503 comes after three target durations) — never as a speed.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use boltstream_tests::http::{get, Response};
use boltstream_tests::media::{decode_errors, Clip, Publisher};
use boltstream_tests::rtmp::{flv, RawPublisher};
use boltstream_tests::server::Server;
use boltstream_tests::{out_dir, wait_for};

const PLAYLIST: &str = "/live/alice/index.m3u8";

fn ll_server(extra: &[&str]) -> Server {
    let mut args = vec!["--hls-format", "cmaf"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A segment of a low-latency playlist as a player reads it.
#[derive(Debug, Clone)]
struct Seg {
    msn: u64,
    name: String,
    init: String,
    date_ms: i64,
    /// (URI, duration in seconds, INDEPENDENT=YES).
    parts: Vec<(String, f64, bool)>,
    /// Set once complete.
    duration: Option<f64>,
}

/// The tags this test reads from a low-latency playlist.
#[derive(Debug, Default)]
struct Ll {
    text: String,
    part_target: f64,
    part_hold_back: f64,
    hold_back: f64,
    target: f64,
    can_block: bool,
    skip_until: Option<f64>,
    skipped: u64,
    hint: Option<String>,
    ended: bool,
    segments: Vec<Seg>,
}

/// An attribute of a tag line (`#TAG:NAME=value,...`; no value here holds a comma).
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, list) = line.split_once(':')?;
    list.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn parse(text: &str) -> Ll {
    let mut ll = Ll {
        text: text.to_string(),
        ..Ll::default()
    };
    let mut msn = 0;
    let mut init = String::new();
    let mut open: Option<Seg> = None;
    let mut date_ms = 0;
    for line in text.lines() {
        let num = |name: &str| attr(line, name).and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            ll.target = v.parse().unwrap();
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            ll.can_block = attr(line, "CAN-BLOCK-RELOAD") == Some("YES");
            ll.part_hold_back = num("PART-HOLD-BACK").unwrap_or(0.0);
            ll.hold_back = num("HOLD-BACK").unwrap_or(0.0);
            ll.skip_until = num("CAN-SKIP-UNTIL");
        } else if line.starts_with("#EXT-X-PART-INF:") {
            ll.part_target = num("PART-TARGET").unwrap();
        } else if line.starts_with("#EXT-X-SKIP:") {
            ll.skipped = num("SKIPPED-SEGMENTS").unwrap() as u64;
            msn += ll.skipped;
        } else if line.starts_with("#EXT-X-MAP:") {
            init = attr(line, "URI").unwrap().to_string();
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date_ms = parse_date(v);
        } else if line.starts_with("#EXT-X-PART:") {
            let uri = attr(line, "URI").unwrap().to_string();
            let seg = open.get_or_insert_with(|| Seg {
                msn,
                name: uri.split('.').next().unwrap().to_string(),
                init: init.clone(),
                date_ms,
                parts: Vec::new(),
                duration: None,
            });
            seg.parts.push((
                uri,
                num("DURATION").unwrap(),
                attr(line, "INDEPENDENT") == Some("YES"),
            ));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let duration = v.trim_end_matches(',').parse().unwrap();
            let mut seg = open.take().unwrap_or(Seg {
                msn,
                name: String::new(),
                init: init.clone(),
                date_ms,
                parts: Vec::new(),
                duration: None,
            });
            seg.duration = Some(duration);
            ll.segments.push(seg);
            msn += 1;
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            ll.hint = attr(line, "URI").map(str::to_string);
        } else if line == "#EXT-X-ENDLIST" {
            ll.ended = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            let seg = ll.segments.last_mut().unwrap();
            seg.name = line.trim_end_matches(".m4s").to_string();
        }
    }
    ll.segments.extend(open);
    ll
}

/// A PROGRAM-DATE-TIME as Unix ms.
fn parse_date(v: &str) -> i64 {
    boltstream_tests::program_date_time_ms(v).unwrap_or_else(|| panic!("bad PROGRAM-DATE-TIME {v}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn playlist(server: &Server, query: &str) -> (Response, Ll) {
    let r = get(server.http, &format!("{PLAYLIST}{query}"));
    let ll = if r.status == 200 {
        parse(&r.text())
    } else {
        Ll::default()
    };
    (r, ll)
}

/// Waits until the playlist lists `complete` complete segments.
fn wait_segments(server: &Server, complete: usize, within: Duration) -> Ll {
    let mut last = String::new();
    wait_for(within, || {
        let (r, ll) = playlist(server, "");
        last = r.text();
        let done = ll.segments.iter().filter(|s| s.duration.is_some()).count();
        (r.status == 200 && done >= complete).then_some(ll)
    })
    .unwrap_or_else(|| panic!("no {complete} segments in\n{last}\n{}", server.log()))
}

fn fetch(server: &Server, uri: &str) -> Vec<u8> {
    let r = get(server.http, &format!("/live/alice/{uri}"));
    assert_eq!(r.status, 200, "{uri}");
    r.body
}

/// Sends a GET and returns at once; the answer is read by [`finish`].
fn send(addr: SocketAddr, source: IpAddr, target: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut stream: TcpStream = socket.into();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    stream
}

/// Reads the status and body of a request sent with [`send`].
fn finish(mut stream: TcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One real publish (ffmpeg, the 10 s H.264 + AAC clip looped in real time) checked against the
/// playlist rules, the parts and segments, and the blocking-reload rules while it runs.
#[test]
fn a_live_cmaf_stream_follows_the_low_latency_server_rules() {
    let server = ll_server(&[]);
    let key = server.add_user("alice");
    let _publisher = Publisher::start(Clip::AudioVideo, &server.publish_url(&key), true);
    // Five complete segments: the oldest have left the part horizon (three target durations).
    let ll = wait_segments(&server, 5, Duration::from_secs(40));
    let text = &ll.text;

    // EXT-X-PART-INF and EXT-X-SERVER-CONTROL.
    assert!(ll.can_block, "{text}");
    assert!((0.33..=0.5).contains(&ll.part_target), "{text}");
    assert!(ll.part_hold_back >= 3.0 * ll.part_target - 1e-9, "{text}");
    assert!(ll.hold_back >= 3.0 * ll.target, "{text}");
    assert_eq!(
        ll.skip_until, None,
        "a 6-segment window is too short for delta updates"
    );
    // Parts: never longer than PART-TARGET; INDEPENDENT=YES exactly on each segment's first (the
    // clip's keyframes start segments).
    let mut with_parts = 0;
    for seg in &ll.segments {
        for (i, (uri, duration, independent)) in seg.parts.iter().enumerate() {
            assert!(
                *duration <= ll.part_target + 1e-6,
                "{uri} {duration}\n{text}"
            );
            assert_eq!(*independent, i == 0, "{uri}\n{text}");
        }
        with_parts += usize::from(!seg.parts.is_empty());
    }
    // Parts are listed for the last segments only (those ending within three target durations
    // of the end), and always for the open one.
    let first_with_parts = ll
        .segments
        .iter()
        .position(|s| !s.parts.is_empty())
        .unwrap();
    assert!(first_with_parts >= 1, "old segments list no parts:\n{text}");
    assert!(ll.segments[first_with_parts..]
        .iter()
        .all(|s| !s.parts.is_empty()));
    assert!((3..=5).contains(&with_parts), "{with_parts}\n{text}");
    // A segment whose parts are no longer listed keeps them downloadable (a player that loaded
    // an older playlist may still ask for them).
    let unlisted = &ll.segments[first_with_parts - 1];
    assert_eq!(
        get(server.http, &format!("/live/alice/{}.0.m4s", unlisted.name)).status,
        200,
        "{}",
        unlisted.name
    );
    // The preload hint names the next part of the open segment (or the next segment's first).
    let open = ll.segments.last().unwrap();
    let hint = ll.hint.clone().expect("a preload hint");
    if open.duration.is_none() {
        assert_eq!(hint, format!("{}.{}.m4s", open.name, open.parts.len()));
    }
    // PROGRAM-DATE-TIME from the wall clock at arrival: the newest segment began within the
    // last two target durations (it is the open one or the one just completed), and dates
    // advance with the segments' durations.
    let newest = ll.segments.last().unwrap().date_ms;
    let age = now_ms() - newest;
    assert!((0..=4_500).contains(&age), "{age} ms\n{text}");
    for pair in ll.segments.windows(2) {
        let step = pair[1].date_ms - pair[0].date_ms;
        let duration = (pair[0].duration.unwrap() * 1000.0) as i64;
        assert!(
            (step - duration).abs() < 400,
            "{step} vs {duration}\n{text}"
        );
    }

    // A complete segment with its parts listed is its parts, byte for byte, and decodes after its
    // init section with ffmpeg, without one error.
    let seg = ll.segments[first_with_parts..]
        .iter()
        .find(|s| s.duration.is_some())
        .unwrap();
    let whole = fetch(&server, &format!("{}.m4s", seg.name));
    let joined: Vec<u8> = seg
        .parts
        .iter()
        .flat_map(|(uri, ..)| fetch(&server, uri))
        .collect();
    assert_eq!(whole.len(), joined.len());
    assert!(whole == joined, "the parts concatenated are the segment");
    let init = get(server.http, &format!("/live/alice/{}", seg.init));
    assert_eq!(init.status, 200);
    assert_eq!(init.header("content-type"), Some("video/mp4"));
    assert!(init.header("cache-control").unwrap().contains("immutable"));
    let file = out_dir().join(format!("ll-{}-{}.mp4", std::process::id(), seg.name));
    std::fs::write(&file, [init.body.clone(), whole].concat()).unwrap();
    let errors = decode_errors(&file);
    assert!(errors.trim().is_empty(), "{errors}");
    let _ = std::fs::remove_file(&file);

    blocking_rules(&server);
}

/// The blocking-reload rules, on the running stream.
fn blocking_rules(server: &Server) {
    // 400: `_HLS_part` without `_HLS_msn`; an `_HLS_msn` more than two ahead; a part further
    // ahead than the Advance Part Limit (three seconds of parts). The part is asked of the segment
    // after the newest: a part index past a *complete* segment's end means the next segment's
    // part 0 (§6.2.5.2), so asking it of the newest would race that segment's end.
    let (_, ll) = playlist(server, "");
    let last = ll.segments.last().unwrap().clone();
    for query in [
        "?_HLS_part=1".to_string(),
        format!("?_HLS_msn={}", last.msn + 3),
        format!("?_HLS_msn={}&_HLS_part=40", last.msn + 1),
    ] {
        let (r, _) = playlist(server, &query);
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"), "{query}");
    }

    // Held until the part exists: the next part of the open segment, asked for before it is made.
    let (_, before) = playlist(server, "");
    let open = before.segments.last().unwrap().clone();
    let (msn, part) = if open.duration.is_none() {
        (open.msn, open.parts.len())
    } else {
        (open.msn + 1, 0)
    };
    let query = format!("?_HLS_msn={msn}&_HLS_part={part}");
    let (r, after) = playlist(server, &query);
    assert_eq!(r.status, 200, "{}", r.text());
    let seg = after.segments.iter().find(|s| s.msn == msn).unwrap();
    assert!(
        seg.parts.len() > part,
        "the answer holds the part:\n{}",
        after.text
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));

    // A part index past a segment's last part means part 0 of the next segment: ask for a part
    // far enough ahead that the open segment will have ended by then.
    let (_, before) = playlist(server, "");
    let open = before.segments.last().unwrap().clone();
    if open.duration.is_none() {
        let query = format!("?_HLS_msn={}&_HLS_part=8", open.msn);
        let (r, after) = playlist(server, &query);
        assert_eq!(r.status, 200, "{}", r.text());
        let done = after.segments.iter().find(|s| s.msn == open.msn).unwrap();
        let parts = done.parts.len();
        assert!(
            parts <= 8,
            "a 2 s segment of 0.3 s parts has 7:\n{}",
            after.text
        );
        assert!(done.duration.is_some(), "{}", after.text);
        let next = after.segments.iter().find(|s| s.msn == open.msn + 1);
        assert!(
            next.is_some_and(|n| !n.parts.is_empty()),
            "part {parts}+ of {} is part 0 of the next:\n{}",
            open.msn,
            after.text
        );
    }

    // The preload-hinted part: held until complete, then sent whole — the same bytes it has
    // once listed.
    let (_, before) = playlist(server, "");
    let hint = before.hint.clone().unwrap();
    let early = get(server.http, &format!("/live/alice/{hint}"));
    assert_eq!(early.status, 200, "{hint}");
    let (_, listed) = playlist(server, "");
    assert!(listed.text.contains(&format!("URI=\"{hint}\"")));
    assert_eq!(early.body, fetch(server, &hint));
    // A part that is neither listed nor hinted is not there.
    let (name, index) = hint.trim_end_matches(".m4s").split_once('.').unwrap();
    let beyond = format!(
        "/live/alice/{name}.{}.m4s",
        index.parse::<u32>().unwrap() + 3
    );
    assert_eq!(get(server.http, &beyond).status, 404);
}

/// A raw publisher's media from 0 to `to_ms`, sent at once: 30 fps video with a keyframe every
/// `gop_ms`, and AAC frames every 23 ms, in time order.
fn send_media(p: &mut RawPublisher, to_ms: u32, gop_ms: u32) {
    let frames_per_gop = gop_ms * 30 / 1000;
    let (mut frame, mut audio) = (0u32, 0u32);
    loop {
        let video = frame * 1000 / 30;
        if video >= to_ms && audio >= to_ms {
            return;
        }
        if video <= audio {
            p.video(&flv::video(frame % frames_per_gop == 0, 2_000), video)
                .unwrap();
            frame += 1;
        } else {
            p.audio(&flv::audio(), audio).unwrap();
            audio += 23;
        }
    }
}

fn threads_and_rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("Threads:"), field("VmRSS:"))
}

/// A stalled stream: requests for what does not come are answered 503 after three target
/// durations, and two thousand of them cost the server memory, not threads. Then the publish ends:
/// ENDLIST answers every held request at once.
#[test]
fn held_requests_cost_no_threads_time_out_with_503_and_end_with_the_stream() {
    // A long idle timeout: the publisher sends nothing after its first 4.5 s, and the 503s must
    // come before the publish is dropped for that.
    let mut server = ll_server(&["--workers", "2", "--idle-timeout", "30"]);
    let key = server.add_user("alice");
    let mut p = RawPublisher::start(server.rtmp, "app", &key).unwrap();
    p.video(&flv::avc_config(), 0).unwrap();
    p.audio(&flv::aac_config(), 0).unwrap();
    send_media(&mut p, 4_500, 2_000);
    let ll = wait_segments(&server, 2, Duration::from_secs(5));
    // Nothing more is sent: the next segment never comes.
    let next = ll.segments.iter().map(|s| s.msn).max().unwrap() + 1;
    let target = format!("{PLAYLIST}?_HLS_msn={next}");
    let (threads_before, rss_before) = threads_and_rss_kib(server.pid());
    let asked = Instant::now();
    // 2000 held requests from ten addresses (each address may hold 200 connections), or as many
    // as this machine's open-file limit allows both processes.
    let count =
        2000.min((boltstream_tests::raise_open_file_limit().saturating_sub(200) / 2) as usize);
    eprintln!("holding {count} requests");
    let held: Vec<TcpStream> = (0..count)
        .map(|i| {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i / 200) as u8));
            send(server.http, source, &target)
        })
        .collect();
    eprintln!("sent in {:?}", asked.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let (threads_held, rss_held) = threads_and_rss_kib(server.pid());
    eprintln!(
        "{count} held requests: threads {threads_before} -> {threads_held}, RSS {rss_before} -> {rss_held} KiB"
    );
    assert!(
        threads_held <= threads_before + 2,
        "held requests took threads: {threads_before} -> {threads_held}"
    );
    assert!(
        rss_held < rss_before + 32 * count as u64,
        "{count} held requests cost {} KiB, more than 32 KiB each",
        rss_held - rss_before
    );
    let answers: Vec<(u16, String)> = held.into_iter().map(finish).collect();
    let waited = asked.elapsed();
    eprintln!("answered after {waited:?}");
    assert!(
        answers.iter().all(|(status, _)| *status == 503),
        "{:?}",
        &answers[..3]
    );
    assert!(
        waited >= Duration::from_millis(5_900),
        "answered after three target durations (6 s), not {waited:?}"
    );
    assert!(server.running());

    // A request held when the publish ends is answered with the ended playlist.
    let held = send(server.http, LOCAL, &target);
    std::thread::sleep(Duration::from_millis(300));
    let ended_at = Instant::now();
    drop(p);
    let (status, body) = finish(held);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("#EXT-X-ENDLIST"), "{body}");
    assert!(
        ended_at.elapsed() < Duration::from_secs(5),
        "ENDLIST answered it, not the timeout"
    );
    let ll = parse(&body);
    assert!(ll.hint.is_none(), "no preload hint after ENDLIST");
}

/// With a window long enough (8 × 1 s here), the server offers delta updates: `_HLS_skip=YES`
/// replaces the oldest segments by EXT-X-SKIP, keeping the media sequence numbering.
#[test]
fn delta_updates_skip_old_segments_when_the_window_is_long_enough() {
    let server = ll_server(&["--hls-target-duration", "1", "--hls-window", "8"]);
    let key = server.add_user("alice");
    let mut p = RawPublisher::start(server.rtmp, "app", &key).unwrap();
    p.video(&flv::avc_config(), 0).unwrap();
    p.audio(&flv::aac_config(), 0).unwrap();
    send_media(&mut p, 9_500, 1_000);
    let full = wait_segments(&server, 8, Duration::from_secs(5));
    assert_eq!(full.skip_until, Some(6.0), "{}", full.text);
    let (r, delta) = playlist(&server, "?_HLS_skip=YES");
    assert_eq!(r.status, 200);
    assert!(delta.skipped >= 1, "{}", delta.text);
    assert!(delta.text.contains("#EXT-X-VERSION:9"), "{}", delta.text);
    // The segments after the skip are the full playlist's, numbered alike.
    let full_last = full
        .segments
        .iter()
        .rfind(|s| s.duration.is_some())
        .unwrap();
    let delta_last = delta
        .segments
        .iter()
        .find(|s| s.name == full_last.name)
        .expect("the newest segments are in the delta");
    assert_eq!(delta_last.msn, full_last.msn);
    assert!(delta.segments.len() < full.segments.len());
    // Entity tags: a delta is not the full playlist; an unchanged playlist revalidates as 304.
    let (full_r, _) = playlist(&server, "");
    let tag = full_r.header("etag").unwrap().to_string();
    assert_ne!(r.header("etag"), Some(tag.as_str()));
    let again = boltstream_tests::http::request(
        server.http,
        "GET",
        PLAYLIST.as_bytes(),
        &[("if-none-match", &tag)],
        b"",
    )
    .unwrap();
    assert_eq!(again.status, 304);
    drop(p);
}
