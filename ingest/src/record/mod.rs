//! Past broadcasts: every public publish of a channel that keeps recordings is recorded as it
//! happens — the live output's own segment files, hard-linked into the recording's directory by
//! the disk writer as each completes (see `hls/disk/recording.rs`), so nothing is encoded or
//! written twice — and offered afterwards as a VOD playlist at `/vod/<user>/<id>/index.m3u8`,
//! where the id is the Unix ms the publish began (the channel page shows that date anyway).
//!
//! The disk is the index: `<data>/recordings/<user>/<id>/` holds `meta.json` (title, start),
//! `segments.log` (`boltstream_hls::vod`) and the files. A crash leaves a log whose last whole
//! line names a complete file, so a recording survives it as it was, ended at its last segment;
//! start-up ends such logs and removes files no line names. The operator's retention and quotas
//! are kept by [`janitor`], oldest recordings first; the writer stops a recording (never the live
//! stream) before the filesystem's free space falls under its floor.
//!
//! A private publish is recorded encrypted, as its live output was: its media keys, which the
//! live output keeps in memory only (`hls/keys.rs`), are logged wrapped under the site's
//! key-encryption key, which lives in the database — never beside the files — so a recording's
//! directory alone never decrypts. Such a recording is served under `/private/<user>/vod/<id>/`,
//! its playlist and keys only to a playback token's holder; and a recording is served only while
//! the channel's visibility is the one it was made under (a clear one is never shown on a
//! private channel, an encrypted one never to the public).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use boltstream_hls::encrypt::unwrap_key;
use boltstream_hls::vod::{LogLine, Recording};
use boltstream_shared::username::Username;
use bytes::Bytes;
use hashlink::LinkedHashMap;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Settings;
use crate::read_cache::ReadCache;

/// The log's file name in a recording's directory (written by the disk writer,
/// `hls/disk/recording.rs`, which takes these definitions from here).
pub const LOG: &str = "segments.log";
/// The recording's description (title, start), written when it starts.
pub const META: &str = "meta.json";

/// Bounds of one recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLimits {
    /// Stop when the filesystem has less free than this.
    pub min_free_bytes: u64,
    /// Stop when the recording's segments reach this.
    pub max_bytes: u64,
}

/// A recording to begin.
#[derive(Clone, Debug)]
pub struct RecordStart {
    /// Its directory (created by the writer).
    pub dir: PathBuf,
    /// `meta.json`'s bytes.
    pub meta: Bytes,
    /// Its bounds.
    pub limits: RecordLimits,
    /// For an encrypted recording, what its media keys are wrapped under.
    pub kek: Option<[u8; 16]>,
}

/// A recording's picture.
pub const THUMB: &str = "thumb.jpg";
/// How often retention and quotas are enforced.
const JANITOR_EVERY: Duration = Duration::from_secs(10);
/// Finished recordings kept parsed, the least recently used dropped first.
const PARSED_KEPT: usize = 1024;

/// A finished recording, as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordingInfo {
    /// Its id: the Unix ms its publish began.
    pub id: u64,
    /// The channel's title when it began.
    pub title: String,
    /// Its length.
    pub duration_ms: u64,
    /// Its segments' size.
    pub bytes: u64,
    /// When it ended (Unix ms).
    pub ended_ms: i64,
    /// It has a picture (`thumb.jpg`, the last live thumbnail of its publish).
    pub thumbnail: bool,
    /// Recorded from a private publish: encrypted, served under `/private/`.
    pub private: bool,
}

/// A finished recording as read from its directory.
struct Finished {
    recording: Recording,
    meta: Meta,
}

impl Finished {
    /// Whether `file` is one this recording serves: a file its log names, or its picture.
    fn serves(&self, file: &str) -> bool {
        if file == THUMB {
            return !self.meta.private;
        }
        self.recording.segments.iter().any(|s| {
            s.file_name() == file || s.init.is_some_and(|i| format!("init{i}.mp4") == file)
        })
    }
}

/// A parsed recording and its log's size and modification time when read: a finished log never
/// changes, so while a `stat` finds the same, the parse holds — and a recording deleted by the
/// operator's CLI (another process) is gone with its log at the next request.
struct Parsed {
    finished: Arc<Finished>,
    stamp: LogStamp,
}

type LogStamp = (u64, SystemTime);

fn log_stamp(dir: &Path) -> Option<LogStamp> {
    let meta = std::fs::metadata(dir.join(LOG)).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// A recording's file in the read cache: channel, recording, file name.
type FileKey = (Username, u64, String);

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    title: String,
    started_ms: i64,
    #[serde(default)]
    private: bool,
}

/// Every channel's recordings under one directory.
pub struct Recordings {
    root: PathBuf,
    retention_ms: i64,
    total_quota: u64,
    channel_quota: u64,
    min_free: u64,
    /// The key-encryption key of private recordings' media keys; without one (the operator's
    /// CLI) nothing is recorded or decrypted.
    kek: Option<[u8; 16]>,
    /// Each channel's recording in progress (its id).
    active: Mutex<HashMap<Username, u64>>,
    /// Finished recordings recently read: a request for a VOD file or playlist reads no log.
    parsed: Mutex<LinkedHashMap<(Username, u64), Parsed>>,
    /// Their files recently served (finished, so never changing).
    files: Mutex<ReadCache<FileKey>>,
}

impl Recordings {
    /// Recordings under `<data>/recordings`, bound by `settings`; `kek` wraps private
    /// recordings' media keys.
    pub fn new(settings: &Settings, kek: Option<[u8; 16]>) -> Arc<Self> {
        Arc::new(Self {
            root: settings.data.join("recordings"),
            retention_ms: i64::try_from(settings.recording_retention.as_millis())
                .unwrap_or(i64::MAX),
            total_quota: settings.recording_quota_mb << 20,
            channel_quota: settings.recording_channel_quota_mb << 20,
            min_free: settings.recording_min_free_mb << 20,
            kek,
            active: Mutex::default(),
            parsed: Mutex::default(),
            files: Mutex::new(ReadCache::new(settings.hls_disk_cache_bytes)),
        })
    }

    fn parsed(&self) -> std::sync::MutexGuard<'_, LinkedHashMap<(Username, u64), Parsed>> {
        self.parsed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn files(&self) -> std::sync::MutexGuard<'_, ReadCache<FileKey>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A finished recording as parsed before, if its log is still the one parsed (one `stat`).
    fn fresh(&self, user: &Username, id: u64) -> Option<Arc<Finished>> {
        let (finished, stamp) = {
            let parsed = self.parsed();
            let p = parsed.get(&(user.clone(), id))?;
            (Arc::clone(&p.finished), p.stamp)
        };
        if log_stamp(&self.dir(user, id)) == Some(stamp) {
            return Some(finished);
        }
        self.forget(user, id);
        None
    }

    /// Forgets what is kept of `user`'s recording `id`.
    fn forget(&self, user: &Username, id: u64) {
        self.parsed().remove(&(user.clone(), id));
        self.files().forget(|(u, i, _)| u == user && *i == id);
    }

    /// A finished recording's file `file`, if it is served (as [`Recordings::file`] says) and
    /// was read before: no read, only a `stat` of its log.
    pub fn cached_file(
        &self,
        user: &Username,
        id: u64,
        file: &str,
        private: bool,
    ) -> Option<(Bytes, i64)> {
        let finished = self.fresh(user, id)?;
        if finished.meta.private != private || !finished.serves(file) {
            return None;
        }
        self.files().get(&(user.clone(), id, file.to_string()))
    }

    /// Keeps a finished recording's file just read, for the next request.
    pub fn keep_file(&self, user: &Username, id: u64, file: &str, body: Bytes, modified_ms: i64) {
        if self.fresh(user, id).is_some() {
            (self.files()).insert((user.clone(), id, file.to_string()), body, modified_ms);
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<Username, u64>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's job for a publish of `user` beginning at `now_ms`, which it records;
    /// `None` for a private one when there is no key-encryption key.
    pub fn begin(
        &self,
        user: &Username,
        title: &str,
        now_ms: i64,
        private: bool,
    ) -> Option<RecordStart> {
        let kek = match (private, self.kek) {
            (false, _) => None,
            (true, Some(kek)) => Some(kek),
            (true, None) => return None,
        };
        let id = u64::try_from(now_ms).unwrap_or(0);
        self.active().insert(user.clone(), id);
        let meta = Meta {
            title: title.to_string(),
            started_ms: now_ms,
            private,
        };
        Some(RecordStart {
            dir: self.dir(user, id),
            meta: Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
            limits: RecordLimits {
                min_free_bytes: self.min_free,
                max_bytes: self.channel_quota,
            },
            kek,
        })
    }

    /// `user`'s recording `id` ended (the writer has been told).
    pub fn ended(&self, user: &Username, id: u64) {
        let mut active = self.active();
        if active.get(user) == Some(&id) {
            active.remove(user);
        }
    }

    fn dir(&self, user: &Username, id: u64) -> PathBuf {
        self.root.join(user.as_str()).join(id.to_string())
    }

    fn is_active(&self, user: &Username, id: u64) -> bool {
        self.active().get(user) == Some(&id)
    }

    /// A finished recording's log and description; `None` while it records (its log has no end
    /// yet: the writer may still be adding its last segments), or for none. Blocking (unless
    /// read recently).
    fn read(&self, user: &Username, id: u64) -> Option<Arc<Finished>> {
        if self.is_active(user, id) {
            return None;
        }
        if let Some(finished) = self.fresh(user, id) {
            return Some(finished);
        }
        let dir = self.dir(user, id);
        let stamp = log_stamp(&dir);
        let read = (|| {
            let log = std::fs::read(dir.join(LOG)).ok()?;
            let meta = serde_json::from_slice(&std::fs::read(dir.join(META)).ok()?).ok()?;
            let recording = Recording::parse(&log);
            recording.ended_ms.is_some().then_some(())?;
            Some(Arc::new(Finished { recording, meta }))
        })();
        let (Some(finished), Some(stamp)) = (read, stamp) else {
            self.forget(user, id);
            return None;
        };
        let mut parsed = self.parsed();
        let entry = Parsed {
            finished: Arc::clone(&finished),
            stamp,
        };
        parsed.replace((user.clone(), id), entry);
        if parsed.len() > PARSED_KEPT {
            parsed.pop_front();
        }
        Some(finished)
    }

    /// `user`'s finished recordings with at least one segment, newest first. Blocking (reads the
    /// disk).
    pub fn list(&self, user: &Username) -> Vec<RecordingInfo> {
        let mut out: Vec<RecordingInfo> = ids(&self.root.join(user.as_str()))
            .into_iter()
            .filter_map(|id| self.info(user, id))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.id));
        out
    }

    /// One finished recording with at least one segment, as listed. Blocking.
    pub fn info(&self, user: &Username, id: u64) -> Option<RecordingInfo> {
        let finished = self.read(user, id)?;
        let (recording, meta) = (&finished.recording, &finished.meta);
        (!recording.segments.is_empty()).then(|| RecordingInfo {
            id,
            title: meta.title.clone(),
            duration_ms: recording.duration_ms(),
            bytes: recording.bytes(),
            ended_ms: (recording.ended_ms)
                .unwrap_or(meta.started_ms + recording.duration_ms() as i64),
            thumbnail: self.dir(user, id).join(THUMB).is_file(),
            private: meta.private,
        })
    }

    /// Whether this node keeps `user`'s recording `id` (one `stat`).
    pub fn keeps(&self, user: &Username, id: u64) -> bool {
        self.dir(user, id).is_dir()
    }

    /// Every recording directory on this node, finished or not (names only: one directory read
    /// per channel). Blocking.
    pub fn all_ids(&self) -> Vec<(Username, u64)> {
        subdirs(&self.root)
            .iter()
            .filter_map(|dir| Username::parse(dir.file_name()?.to_str()?).ok())
            .flat_map(|user| {
                let ids = ids(&self.root.join(user.as_str()));
                ids.into_iter().map(move |id| (user.clone(), id))
            })
            .collect()
    }

    /// A finished recording made private or not, as `private` says: each is served only under
    /// its own prefix.
    fn read_as(&self, user: &Username, id: u64, private: bool) -> Option<Arc<Finished>> {
        let finished = self.read(user, id)?;
        (finished.meta.private == private).then_some(finished)
    }

    /// The VOD playlist of a finished recording (of a private publish, or not). Blocking.
    pub fn playlist(&self, user: &Username, id: u64, private: bool) -> Option<String> {
        self.read_as(user, id, private)?.recording.playlist()
    }

    /// Media key `key` of a finished private recording, unwrapped. Blocking.
    pub fn key(&self, user: &Username, id: u64, key: u64) -> Option<[u8; 16]> {
        let finished = self.read_as(user, id, true)?;
        unwrap_key(self.kek.as_ref()?, finished.recording.key(key)?)
    }

    /// The path of a finished recording's file named `file` (`<n>.ts`, `<n>.m4s`, `init<n>.mp4`),
    /// when its log names it: nothing else under the recording (or anywhere) is ever served.
    /// Blocking.
    pub fn file(&self, user: &Username, id: u64, file: &str, private: bool) -> Option<PathBuf> {
        let finished = self.read_as(user, id, private)?;
        (file != THUMB && finished.serves(file)).then(|| self.dir(user, id).join(file))
    }

    /// The directory of `user`'s recording in progress, where its pictures are kept.
    pub fn active_dir(&self, user: &Username) -> Option<PathBuf> {
        let id = *self.active().get(user)?;
        Some(self.dir(user, id))
    }

    /// A finished public recording's picture, if it has one. Blocking.
    pub fn thumbnail(&self, user: &Username, id: u64) -> Option<PathBuf> {
        self.read_as(user, id, false)?;
        Some(self.dir(user, id).join(THUMB)).filter(|p| p.is_file())
    }

    /// Whether a recording's log has no end yet (it records, or a crash cut it and no server has
    /// started since). Blocking.
    pub fn is_open(&self, user: &Username, id: u64) -> bool {
        std::fs::read(self.dir(user, id).join(LOG))
            .is_ok_and(|log| Recording::parse(&log).ended_ms.is_none())
    }

    /// Deletes a finished recording (files and listing); false when there is none. Blocking.
    pub fn delete(&self, user: &Username, id: u64) -> bool {
        if self.is_active(user, id) {
            return false;
        }
        self.forget(user, id);
        let dir = self.dir(user, id);
        dir.is_dir() && std::fs::remove_dir_all(&dir).is_ok()
    }

    /// At start-up (nothing records yet): ends every log a crash left open and removes the files
    /// no line names (linked, then the crash came before their line). Blocking.
    pub fn recover(&self, now_ms: i64) -> usize {
        let mut ended = 0;
        for user_dir in subdirs(&self.root) {
            for id in ids(&user_dir) {
                let dir = user_dir.join(id.to_string());
                let Ok(log) = std::fs::read(dir.join(LOG)) else {
                    let _ = std::fs::remove_dir_all(&dir); // never got its log: nothing in it
                    continue;
                };
                let recording = Recording::parse(&log);
                if recording.ended_ms.is_some() {
                    continue;
                }
                let mut keep: Vec<String> =
                    recording.segments.iter().map(|s| s.file_name()).collect();
                keep.extend(
                    recording
                        .segments
                        .iter()
                        .filter_map(|s| s.init)
                        .map(|i| format!("init{i}.mp4")),
                );
                keep.extend([LOG.to_string(), META.to_string(), THUMB.to_string()]);
                for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !keep.contains(&name) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                // A torn last line is cut off first, so the end line starts a line of its own.
                let whole = log.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let mut fixed = log[..whole].to_vec();
                fixed.extend_from_slice(LogLine::End(now_ms).format().as_bytes());
                if std::fs::write(dir.join(LOG), fixed).is_ok() {
                    ended += 1;
                }
            }
        }
        if ended > 0 {
            info!(recordings = ended, "recordings a stop cut short are kept as they were, ended at their last whole segment");
        }
        ended
    }

    /// Deletes recordings past their retention, then the oldest of each channel over its quota,
    /// then the oldest of all over the total quota. Recordings in progress are never deleted
    /// (the writer bounds them). Returns what it deleted. Blocking.
    pub fn enforce(&self, now_ms: i64) -> Vec<(Username, u64)> {
        let mut all: Vec<(Username, RecordingInfo)> = Vec::new();
        for user_dir in subdirs(&self.root) {
            let Some(user) = (user_dir.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| Username::parse(n).ok())
            else {
                continue;
            };
            all.extend(self.list(&user).into_iter().map(|r| (user.clone(), r)));
        }
        // Oldest first.
        all.sort_by_key(|(_, r)| r.id);
        let mut doomed: Vec<(Username, u64)> = Vec::new();
        let expired = |r: &RecordingInfo| now_ms.saturating_sub(r.ended_ms) > self.retention_ms;
        let mut per_channel: HashMap<Username, u64> = HashMap::new();
        for (user, r) in &all {
            if expired(r) {
                doomed.push((user.clone(), r.id));
            } else {
                *per_channel.entry(user.clone()).or_default() += r.bytes;
            }
        }
        for (user, r) in &all {
            let held = per_channel.entry(user.clone()).or_default();
            if *held > self.channel_quota && !doomed.contains(&(user.clone(), r.id)) {
                *held -= r.bytes;
                doomed.push((user.clone(), r.id));
            }
        }
        let mut total: u64 = per_channel.values().sum();
        for (user, r) in &all {
            if total > self.total_quota && !doomed.contains(&(user.clone(), r.id)) {
                total -= r.bytes;
                doomed.push((user.clone(), r.id));
            }
        }
        doomed.retain(|(user, id)| {
            let gone = self.delete(user, *id);
            if gone {
                info!(user = %user, recording = id, "recording deleted (retention or quota)");
            }
            gone
        });
        doomed
    }
}

/// Enforces retention and quotas until shutdown.
pub async fn janitor(recordings: Arc<Recordings>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(JANITOR_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let r = Arc::clone(&recordings);
        if let Err(e) = tokio::task::spawn_blocking(move || r.enforce(crate::clock::now_ms())).await
        {
            warn!(error = %e, "recording retention check failed");
        }
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    (std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// The recording ids (numeric directory names) under a channel's directory.
fn ids(dir: &Path) -> Vec<u64> {
    subdirs(dir)
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests;
