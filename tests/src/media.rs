//! Test media: clips made once per test run with Debian's ffmpeg (lavfi `testsrc2` + `sine`,
//! H.264 with B-frames + AAC), and ffmpeg publishers pushing them with `-re -c copy`.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{out_dir, require_tool};

/// A kind of test clip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Clip {
    /// 10 s 1280x720 30 fps H.264 (B-frames, 2 s GOP) + 48 kHz stereo AAC.
    AudioVideo,
    /// 6 s of the same video, no audio.
    VideoOnly,
    /// 6 s of 44.1 kHz AAC, no video.
    AudioOnly,
    /// 12 s 640x360 with a 4 s GOP (longer than the 2 s target).
    LongGop,
    /// 4 s 320x240, for quick publishes.
    Short,
    /// 4 s 1920x1080 60 fps (B-frames, 2 s GOP) + 44.1 kHz stereo AAC.
    HighRate,
}

static MAKING: Mutex<()> = Mutex::new(());

impl Clip {
    /// The clip's file, made on first use. Long because ffmpeg's arguments are written out one
    /// per line, so each clip's encoding is read in one place.
    pub fn path(self) -> PathBuf {
        let name = format!("{self:?}.flv").to_lowercase();
        let path = out_dir().join("clips").join(name);
        let _guard = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        if path.exists() {
            return path;
        }
        require_tool("ffmpeg");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let video_at = |size: &str, rate: u32, secs: u32, gop: u32| {
            vec![
                "-f".to_string(),
                "lavfi".into(),
                "-i".into(),
                format!("testsrc2=size={size}:rate={rate}:duration={secs}"),
                "-c:v".into(),
                "libx264".into(),
                "-preset".into(),
                "veryfast".into(),
                "-profile:v".into(),
                "high".into(),
                "-bf".into(),
                "2".into(),
                "-g".into(),
                gop.to_string(),
                "-keyint_min".into(),
                gop.to_string(),
                "-sc_threshold".into(),
                "0".into(),
                "-b:v".into(),
                "2500k".into(),
                "-pix_fmt".into(),
                "yuv420p".into(),
            ]
        };
        let video = |size: &str, secs: u32, gop: u32| video_at(size, 30, secs, gop);
        let audio = |rate: u32, secs: u32| {
            vec![
                "-f".to_string(),
                "lavfi".into(),
                "-i".into(),
                format!("sine=frequency=440:sample_rate={rate}:duration={secs}"),
                "-c:a".into(),
                "aac".into(),
                "-b:a".into(),
                "128k".into(),
                "-ac".into(),
                "2".into(),
            ]
        };
        let mut args: Vec<String> = vec![
            "-hide_banner".into(),
            "-v".into(),
            "error".into(),
            "-y".into(),
        ];
        match self {
            Clip::AudioVideo => {
                let (v, a) = (video("1280x720", 10, 60), audio(48000, 10));
                args.extend(v[..4].iter().cloned());
                args.extend(a[..4].iter().cloned());
                args.extend(v[4..].iter().cloned());
                args.extend(a[4..].iter().cloned());
            }
            Clip::VideoOnly => args.extend(video("1280x720", 6, 60)),
            Clip::AudioOnly => args.extend(audio(44100, 6)),
            Clip::LongGop => args.extend(video("640x360", 12, 120)),
            Clip::HighRate => {
                let (v, a) = (video_at("1920x1080", 60, 4, 120), audio(44100, 4));
                args.extend(v[..4].iter().cloned());
                args.extend(a[..4].iter().cloned());
                args.extend(v[4..].iter().cloned());
                args.extend(a[4..].iter().cloned());
            }
            Clip::Short => {
                let (v, a) = (video("320x240", 4, 60), audio(48000, 4));
                args.extend(v[..4].iter().cloned());
                args.extend(a[..4].iter().cloned());
                args.extend(v[4..].iter().cloned());
                args.extend(a[4..].iter().cloned());
            }
        }
        let tmp = path.with_extension("tmp.flv");
        args.extend([
            "-f".into(),
            "flv".into(),
            tmp.to_string_lossy().into_owned(),
        ]);
        let status = Command::new("ffmpeg")
            .args(&args)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg could not make the {self:?} clip");
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// An ffmpeg publisher; killed on drop.
pub struct Publisher {
    child: Child,
    stderr: PathBuf,
    /// When it started.
    pub started: Instant,
}

impl Publisher {
    /// Publishes `clip` in real time to `url`; `looped` repeats it forever.
    pub fn start(clip: Clip, url: &str, looped: bool) -> Self {
        require_tool("ffmpeg");
        let stderr =
            out_dir()
                .join("logs")
                .join(format!("ffmpeg-{}-{}.log", std::process::id(), next_id()));
        std::fs::create_dir_all(stderr.parent().unwrap()).unwrap();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-re"]);
        if looped {
            cmd.args(["-stream_loop", "-1"]);
        }
        cmd.arg("-i").arg(clip.path()).args([
            "-c",
            "copy",
            "-f",
            "flv",
            "-flvflags",
            "no_duration_filesize",
            url,
        ]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().expect("spawn ffmpeg");
        Self {
            child,
            stderr,
            started: Instant::now(),
        }
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        crate::wait_for(timeout, || self.child.try_wait().ok().flatten())
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What ffmpeg printed.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.kill();
    }
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs a short command (ffprobe) with a bounded wait, returning (success, stdout, stderr).
pub fn run(program: &str, args: &[&str], timeout: Duration) -> (bool, String, String) {
    require_tool(program);
    let out_path = out_dir().join("logs").join(format!(
        "{program}-{}-{}.out",
        std::process::id(),
        next_id()
    ));
    let err_path = out_path.with_extension("err");
    std::fs::create_dir_all(out_path.parent().unwrap()).unwrap();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn");
    let status = crate::wait_for(timeout, || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    (
        status.is_some_and(|s| s.success()),
        read(&out_path),
        read(&err_path),
    )
}

/// The media of an FLV file as a publisher would send it: each audio and video tag body with its
/// timestamp, after metadata naming the codecs present (the script tag itself is not parsed).
/// Written by hand: FLV's file framing is a 9-byte header and 11-byte tag headers.
pub fn flv_media(path: &std::path::Path) -> Vec<boltstream_hls::media::Media> {
    use boltstream_hls::media::{Media, Metadata};
    let file = std::fs::read(path).expect("read the clip");
    assert_eq!(&file[..3], b"FLV", "an FLV file");
    let flags = file[4];
    let mut out = vec![Media::Metadata(Metadata {
        video_codec_id: (flags & 0x01 != 0).then_some(7),
        audio_codec_id: (flags & 0x04 != 0).then_some(10),
        ..Metadata::default()
    })];
    let header_len = u32::from_be_bytes(file[5..9].try_into().unwrap()) as usize;
    let mut pos = header_len + 4; // the first PreviousTagSize
    while pos + 11 <= file.len() {
        let kind = file[pos] & 0x1f;
        let size = u32::from_be_bytes([0, file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        let timestamp =
            u32::from_be_bytes([file[pos + 7], file[pos + 4], file[pos + 5], file[pos + 6]]);
        let body = bytes::Bytes::copy_from_slice(&file[pos + 11..pos + 11 + size]);
        match kind {
            8 => out.push(Media::Audio {
                timestamp,
                data: body,
            }),
            9 => out.push(Media::Video {
                timestamp,
                data: body,
            }),
            _ => {}
        }
        pos += 11 + size + 4;
    }
    out
}

/// The stream kinds ffprobe reads in `path` ("video", "audio", a line each), or why not.
pub fn stream_types(path: &std::path::Path) -> Result<String, String> {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(20),
    );
    if ok {
        Ok(out)
    } else {
        Err(err)
    }
}

/// ffmpeg decodes the file completely; returns what it printed (empty when clean).
pub fn decode_errors(path: &std::path::Path) -> String {
    let (ok, _, err) = run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-xerror",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ],
        Duration::from_secs(120),
    );
    assert!(ok, "ffmpeg failed on {}: {err}", path.display());
    err
}

/// Whether `bytes` read as media in the clear: MPEG-TS sync bytes at 0, 188 and 376, or an fMP4
/// box type at 4..8. Ciphertext begins with 0x47 in one file of 256, so a first-byte check alone
/// would fail good runs.
pub fn looks_plain(bytes: &[u8]) -> bool {
    let ts = [0, 188, 376].iter().all(|&i| bytes.get(i) == Some(&0x47));
    let mp4 =
        (bytes.get(4..8)).is_some_and(|t| [&b"styp"[..], b"moof", b"ftyp", b"moov"].contains(&t));
    ts || mp4
}
