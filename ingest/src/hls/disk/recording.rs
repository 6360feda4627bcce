//! The writer's side of recordings: a publish being recorded gets each of its segment files
//! hard-linked into its recording's directory as the file completes (the live output's own bytes,
//! kept when the live window deletes its name), and a line appended to the recording's log after
//! the link exists (see `boltstream_hls::vod`). Runs on the writer, in the order of its jobs, so a
//! segment is always logged after its file and its init section.
//!
//! An encrypted segment's key is logged (wrapped under the recording's key-encryption key) before
//! the first segment that uses it, so every segment line names a key the log already holds.
//!
//! A recording stops — with one log line, the live stream untouched — when the filesystem's free
//! space falls under its floor or the recording passes its size bound: recordings must never be
//! what fills the disk the live output needs.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use boltstream_hls::channel::SegmentName;
use boltstream_hls::encrypt::{wrap_key, SegmentKey};
use boltstream_hls::vod::LogLine;
use boltstream_shared::username::Username;
use tracing::{info, warn};

pub use crate::record::{RecordLimits, RecordStart, LOG, META};

/// What a segment write tells the recording of its channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    /// The segment's duration.
    pub duration_ms: u64,
    /// The CMAF init section it needs (`None` for MPEG-TS).
    pub init: Option<u64>,
    /// Its key and IV, when the live output encrypted it.
    pub key: Option<SegmentKey>,
}

/// A recording in progress.
pub(super) struct Recorder {
    dir: PathBuf,
    limits: RecordLimits,
    /// The init section last logged.
    init: Option<u64>,
    /// What an encrypted recording's media keys are wrapped under.
    kek: Option<[u8; 16]>,
    /// The media key last logged.
    key: Option<u64>,
    bytes: u64,
}

/// Every channel's recording in progress, owned by the writer.
pub(super) type Recorders = HashMap<Username, Recorder>;

/// Creates the recording's directory, its description and an empty log; on failure the publish
/// is simply not recorded (said once in the log).
pub(super) fn start(recorders: &mut Recorders, user: Username, start: RecordStart) {
    let made = std::fs::create_dir_all(&start.dir)
        .and_then(|()| super::write_atomically(&start.dir, META, &start.meta))
        .and_then(|()| std::fs::File::create(start.dir.join(LOG)).map(drop));
    match made {
        Ok(()) => {
            recorders.insert(
                user,
                Recorder {
                    dir: start.dir,
                    limits: start.limits,
                    init: None,
                    kek: start.kek,
                    key: None,
                    bytes: 0,
                },
            );
        }
        Err(e) => {
            warn!(user = %user, error = %e, dir = %start.dir.display(), "cannot start a recording; the stream is live but not recorded")
        }
    }
}

/// Keeps segment file `file` (complete in `live_dir`) in `user`'s recording, if one runs.
pub(super) fn segment(
    recorders: &mut Recorders,
    user: &Username,
    live_dir: &Path,
    file: &str,
    line: LogLine,
    meta: SegmentMeta,
) {
    let Some(recorder) = recorders.get_mut(user) else {
        return;
    };
    let bytes = match &line {
        LogLine::Segment { bytes, .. } => *bytes,
        _ => 0,
    };
    let why = over_bounds(recorder, bytes).or_else(|| {
        // A recording is all clear or all encrypted, as its publish was.
        (meta.key.is_some() != recorder.kek.is_some())
            .then(|| "a segment's encryption differs from the recording's".to_string())
    });
    if let Some(why) = why {
        warn!(user = %user, dir = %recorder.dir.display(), reason = %why, "recording stopped; the live stream goes on");
        end(recorders, user, crate::clock::now_ms());
        return;
    }
    let kept = (|| -> std::io::Result<()> {
        if let Some(init) = meta.init.filter(|i| recorder.init != Some(*i)) {
            let init_file = format!("init{init}.mp4");
            keep(&live_dir.join(&init_file), &recorder.dir.join(&init_file))?;
            append(&recorder.dir, &LogLine::Init(init))?;
            recorder.init = Some(init);
        }
        keep(&live_dir.join(file), &recorder.dir.join(file))?;
        if let (Some(key), Some(kek)) = (meta.key, recorder.kek) {
            if recorder.key != Some(key.tag.id) {
                let wrapped = wrap_key(&kek, &key.key);
                append(
                    &recorder.dir,
                    &LogLine::Key {
                        id: key.tag.id,
                        wrapped,
                    },
                )?;
                recorder.key = Some(key.tag.id);
            }
        }
        append(&recorder.dir, &line)
    })();
    match kept {
        Ok(()) => recorder.bytes += bytes,
        Err(e) => {
            warn!(user = %user, dir = %recorder.dir.display(), error = %e, "recording stopped: cannot write it; the live stream goes on");
            end(recorders, user, crate::clock::now_ms());
        }
    }
}

/// Keeps an MPEG-TS segment written while it was made (now complete as `<name>.ts` in `live_dir`).
pub(super) fn finished_ts(
    recorders: &mut Recorders,
    user: &Username,
    live_dir: &Path,
    name: SegmentName,
    duration_ms: u64,
) {
    if !recorders.contains_key(user) {
        return;
    }
    let file = name.file_name();
    let line = LogLine::Segment {
        name: name.0,
        cmaf: false,
        duration_ms,
        // The tail was moved into the file: its size is the segment's.
        bytes: std::fs::metadata(live_dir.join(&file)).map_or(0, |m| m.len()),
        // Only segments in the clear are written while made.
        key: None,
    };
    let meta = SegmentMeta {
        duration_ms,
        init: None,
        key: None,
    };
    segment(recorders, user, live_dir, &file, line, meta);
}

/// Ends `user`'s recording, if one runs: the log's last line says when.
pub(super) fn end(recorders: &mut Recorders, user: &Username, ended_ms: i64) {
    if let Some(recorder) = recorders.remove(user) {
        if recorder.bytes == 0 {
            // Nothing was kept: no empty recording is left to list or to clean up.
            let _ = std::fs::remove_dir_all(&recorder.dir);
            return;
        }
        if let Err(e) = append(&recorder.dir, &LogLine::End(ended_ms)) {
            warn!(user = %user, error = %e, "cannot mark a recording's end; it is listed once the next start-up ends it at its last segment");
        }
        info!(user = %user, bytes = recorder.bytes, "recording ended");
    }
}

fn over_bounds(recorder: &Recorder, next: u64) -> Option<String> {
    if recorder.bytes + next > recorder.limits.max_bytes {
        return Some(format!(
            "it reached its bound of {} MB (recording_channel_quota_mb)",
            recorder.limits.max_bytes >> 20
        ));
    }
    let free = free_bytes(&recorder.dir)?;
    (free < recorder.limits.min_free_bytes + next).then(|| {
        format!(
            "{} MB free on its filesystem, under recording_min_free_mb ({} MB)",
            free >> 20,
            recorder.limits.min_free_bytes >> 20
        )
    })
}

/// Bytes an unprivileged writer may still use on `path`'s filesystem.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// A second name for the live file (no bytes copied), or a copy where links cannot be made.
fn keep(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => std::fs::copy(from, to).map(drop),
    }
}

/// One line in one write, after what it names is complete.
fn append(dir: &Path, line: &LogLine) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(LOG))?
        .write_all(line.format().as_bytes())
}
