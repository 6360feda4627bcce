//! AES-128 media encryption (groundwork for private streams, issue 16) against real decoders: the
//! HLS core's encrypted MPEG-TS segments, and CMAF segments and parts, are read back by ffmpeg
//! through a playlist with EXT-X-KEY and by `openssl enc -d`, and fail to decode without the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use boltstream_hls::cmaf::{Output, PartPackager};
use boltstream_hls::encrypt::{encrypt, sequence_iv};
use boltstream_hls::packager::Packager;
use boltstream_tests::media::{flv_media, run, Clip};
use boltstream_tests::{out_dir, require_tool};

const KEY: [u8; 16] = *b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dir(name: &str) -> PathBuf {
    let dir = out_dir()
        .join("encryption")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `openssl enc -d -aes-128-cbc` of `file` with the test key and `iv`.
fn openssl_decrypt(file: &Path, iv: &[u8; 16]) -> Vec<u8> {
    require_tool("openssl");
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-128-cbc",
            "-K",
            &hex(&KEY),
            "-iv",
            &hex(iv),
        ])
        .arg("-in")
        .arg(file)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ffmpeg reads the playlist (local files, the key from `key.bin`) and decodes every frame.
fn ffmpeg_plays(playlist: &Path) -> String {
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-xerror",
            "-allowed_extensions",
            "ALL",
            "-protocol_whitelist",
            "file,crypto,data",
            "-i",
            playlist.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
        Duration::from_secs(120),
    );
    assert!(ok, "ffmpeg failed on {}: {err}", playlist.display());
    err
}

#[test]
fn encrypted_ts_segments_play_with_the_key_and_only_with_it() {
    let dir = dir("ts");
    std::fs::write(dir.join("key.bin"), KEY).unwrap();
    let mut packager = Packager::new(2000);
    let mut segments = Vec::new();
    for (i, media) in flv_media(&Clip::Short.path()).iter().enumerate() {
        segments.extend(packager.push(media, i as i64).unwrap());
    }
    segments.extend(packager.finish());
    assert!(segments.len() >= 2);
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n",
    );
    for (msn, segment) in segments.iter().enumerate() {
        let iv = sequence_iv(msn as u64);
        let sealed = encrypt(&KEY, &iv, &segment.data);
        let file = dir.join(format!("{msn}.ts"));
        std::fs::write(&file, &sealed).unwrap();
        assert_eq!(
            openssl_decrypt(&file, &iv),
            segment.data.to_vec(),
            "segment {msn}"
        );
        // Without the key it is not MPEG-TS: no sync byte every 188 bytes.
        assert!(sealed.chunks(188).filter(|p| p[0] == 0x47).count() < sealed.len() / 188 / 2);
        playlist.push_str(&format!(
            "#EXTINF:{:.3},\n{msn}.ts\n",
            segment.duration_ms as f64 / 1000.0
        ));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let path = dir.join("index.m3u8");
    std::fs::write(&path, playlist).unwrap();
    assert_eq!(ffmpeg_plays(&path), "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each part encrypted alone from its segment's IV (as hls.js decrypts parts), each segment
/// encrypted again as a whole (as a player of whole segments decrypts them).
#[test]
fn encrypted_cmaf_parts_and_segments_each_decrypt_alone() {
    let dir = dir("cmaf");
    std::fs::write(dir.join("key.bin"), KEY).unwrap();
    let mut packager = PartPackager::new(2000, 333);
    let mut outputs = Vec::new();
    for (i, media) in flv_media(&Clip::Short.path()).iter().enumerate() {
        outputs.extend(packager.push(media, i as i64).unwrap());
    }
    outputs.extend(packager.finish());
    let mut init = Vec::new();
    let mut segments: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    for output in outputs {
        match output {
            Output::Init(bytes) => init = bytes.to_vec(),
            Output::Part(part) => segments.last_mut().unwrap().push(part.data.to_vec()),
            Output::SegmentEnd(_) => segments.push(Vec::new()),
        }
    }
    segments.retain(|parts| !parts.is_empty());
    assert!(segments.len() >= 2 && segments[0].len() >= 3);
    std::fs::write(dir.join("init.mp4"), &init).unwrap();
    // The init section precedes EXT-X-KEY, so it stays clear.
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n",
    );
    for (msn, parts) in segments.iter().enumerate() {
        let iv = sequence_iv(msn as u64);
        for (p, part) in parts.iter().enumerate() {
            let file = dir.join(format!("{msn}.{p}.m4s"));
            std::fs::write(&file, encrypt(&KEY, &iv, part)).unwrap();
            assert_eq!(&openssl_decrypt(&file, &iv), part, "part {msn}.{p}");
        }
        let whole = parts.concat();
        let file = dir.join(format!("{msn}.m4s"));
        std::fs::write(&file, encrypt(&KEY, &iv, &whole)).unwrap();
        assert_eq!(openssl_decrypt(&file, &iv), whole, "segment {msn}");
        playlist.push_str(&format!("#EXTINF:2.000,\n{msn}.m4s\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    let path = dir.join("index.m3u8");
    std::fs::write(&path, playlist).unwrap();
    assert_eq!(ffmpeg_plays(&path), "");
    // Without the key: the init section and an encrypted segment do not decode.
    let sealed = std::fs::read(dir.join("0.m4s")).unwrap();
    let clear = [init.clone(), sealed].concat();
    let file = dir.join("no-key.mp4");
    std::fs::write(&file, clear).unwrap();
    let (ok, _, _) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-xerror",
            "-i",
            file.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
        Duration::from_secs(60),
    );
    assert!(!ok, "an encrypted segment decoded without its key");
    let _ = std::fs::remove_dir_all(&dir);
}
