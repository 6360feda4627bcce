//! All segment file I/O of the HLS output, both ways, in one place: a writer task that runs every
//! write, append, rename and delete on the blocking pool in the order asked (so connections never
//! wait on a disk), and reads for the origin with a small cache of recently read segments (every
//! viewer of a stream asks for the same newest ones). What the writer completes is reported as
//! [`DiskEvent`]s over a channel; this module knows nothing of channels' state.
//!
//! Finished segments and playlists are written to a temporary name and renamed. A segment written
//! while it is made is appended to an in-progress file as its bytes come (so a stream holds one
//! small chunk in memory, not its whole open segment) and renamed when it closes. If the disk fails
//! halfway, what reached the file is read back and the segment is handed back in memory, so a
//! failing disk interrupts no viewer.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use boltstream_hls::channel::{SegmentId, SegmentName};
use boltstream_hls::packager::Segment;
use boltstream_shared::username::Username;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::clock::now_ms;
use boltstream_hls::vod::LogLine;
pub use recording::{RecordLimits, RecordStart, SegmentMeta};

use crate::read_cache::ReadCache;

/// Jobs queued beyond this are dropped (and logged): a stalled disk must not grow memory or slow a
/// publisher.
const QUEUE: usize = 4096;
/// A writer batch running this long means the disk is stalled.
const STALLED_MS: i64 = 1_000;
/// A segment file larger than this is sent in chunks as it is read, not read into memory for each
/// request (nor cached): a few viewers of one huge segment must not cost its size each.
const READ_WHOLE_UP_TO: u64 = 4 << 20;
/// The in-progress file of a channel's open segment.
const IN_PROGRESS: &str = ".open.ts.tmp";

/// What the writer reports.
#[derive(Debug)]
pub enum DiskEvent {
    /// A finished segment's file is complete.
    Written {
        /// The channel.
        user: Username,
        /// The segment.
        name: SegmentName,
    },
    /// A segment written while it was made is complete: on disk (its `data` empty), or — the disk
    /// having failed — in memory.
    Finished {
        /// The channel.
        user: Username,
        /// Which segment of which publish.
        id: SegmentId,
        /// Its reserved name.
        name: SegmentName,
        /// The segment.
        segment: Segment,
        /// True when its file is complete.
        on_disk: bool,
        /// The publish ended with it.
        end_after: bool,
    },
    /// A segment written while it was made was lost to the disk.
    Lost {
        /// The channel.
        user: Username,
        /// Which segment of which publish.
        id: SegmentId,
        /// The publish ended with it.
        end_after: bool,
    },
    /// Writes for a channel started failing, or work again.
    Health {
        /// The channel.
        user: Username,
        /// True while they fail.
        failing: bool,
    },
}

/// A segment read for the origin.
pub enum SegmentRead {
    /// Its bytes.
    Bytes {
        /// The bytes.
        body: Bytes,
        /// Unix ms of the file's last change.
        modified_ms: i64,
    },
    /// A file too large to read whole, to be sent in chunks.
    File {
        /// The open file.
        file: tokio::fs::File,
        /// Its length.
        len: u64,
        /// Unix ms of its last change.
        modified_ms: i64,
    },
}

/// A file of a channel's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFile {
    /// `index.m3u8`.
    Playlist,
    /// An MPEG-TS segment, `<name>.ts`: its completion is reported ([`DiskEvent::Written`]), as
    /// the TS output may then let it leave memory.
    Ts(SegmentName),
    /// A CMAF segment, `<name>.m4s` (the low-latency output serves from memory; the file is the
    /// mirror for what reads the directory).
    Fmp4(SegmentName),
    /// A CMAF init section, `init<id>.mp4`.
    Init(u64),
}

impl DiskFile {
    fn file_name(self) -> String {
        match self {
            DiskFile::Playlist => "index.m3u8".to_string(),
            DiskFile::Ts(name) => name.file_name(),
            DiskFile::Fmp4(name) => format!("{name}.m4s"),
            DiskFile::Init(id) => format!("init{id}.mp4"),
        }
    }
}

enum Job {
    Write {
        user: Username,
        file: DiskFile,
        body: Bytes,
        /// Set for segments, which a recording keeps.
        meta: Option<SegmentMeta>,
    },
    RecordStart {
        user: Username,
        start: RecordStart,
    },
    RecordEnd {
        user: Username,
        ended_ms: i64,
    },
    Append {
        user: Username,
        id: SegmentId,
        bytes: Bytes,
    },
    Finish {
        user: Username,
        id: SegmentId,
        name: SegmentName,
        segment: Segment,
        end_after: bool,
    },
    Delete {
        user: Username,
        file: DiskFile,
    },
    RemoveChannel {
        user: Username,
    },
    Flush(oneshot::Sender<()>),
    Stop,
}

/// See the module documentation. Shared behind an `Arc`.
pub struct Disk {
    root: PathBuf,
    jobs: mpsc::Sender<Job>,
    /// When the running writer batch started (Unix ms; 0: idle).
    busy_since: Arc<AtomicI64>,
    /// Events the writer has sent so far.
    events_sent: Arc<AtomicU64>,
    /// Segments read back from disk; their names never repeat, so an entry goes only when its
    /// file is deleted.
    cache: Mutex<ReadCache<(Username, SegmentName)>>,
}

impl Disk {
    /// Clears what an earlier run left under `root` (no stream can be live at start-up) and starts
    /// the writer; its events come out of the returned receiver until [`Self::stop`].
    pub fn start(
        root: PathBuf,
        cache_bytes: usize,
    ) -> std::io::Result<(Arc<Self>, mpsc::UnboundedReceiver<DiskEvent>)> {
        if root.exists() {
            for entry in std::fs::read_dir(&root)?.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&root)?;
        let (jobs, rx) = mpsc::channel(QUEUE);
        let (events_tx, events) = mpsc::unbounded_channel();
        let disk = Arc::new(Self {
            root: root.clone(),
            jobs,
            busy_since: Arc::new(AtomicI64::new(0)),
            events_sent: Arc::new(AtomicU64::new(0)),
            cache: Mutex::new(ReadCache::new(cache_bytes)),
        });
        let sender = EventSender {
            events: events_tx,
            sent: Arc::clone(&disk.events_sent),
        };
        tokio::spawn(writer(root, rx, sender, Arc::clone(&disk.busy_since)));
        Ok((disk, events))
    }

    fn dir(&self, user: &Username) -> PathBuf {
        self.root.join(user.as_str())
    }

    fn queue(&self, job: Job) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.jobs.try_send(job) {
            warn!("HLS disk writer is behind; a file write was skipped (the origin still serves from memory)");
        }
    }

    /// Writes a file whole (a TS segment's completion is reported with [`DiskEvent::Written`]).
    pub fn write(&self, user: &Username, file: DiskFile, body: Bytes) {
        self.queue(Job::Write {
            user: user.clone(),
            file,
            body,
            meta: None,
        });
    }

    /// Writes a segment file whole; the channel's recording, if one runs, keeps it.
    pub fn write_segment(&self, user: &Username, file: DiskFile, body: Bytes, meta: SegmentMeta) {
        self.queue(Job::Write {
            user: user.clone(),
            file,
            body,
            meta: Some(meta),
        });
    }

    /// Starts recording `user`'s segments from the next one written.
    pub fn record_start(&self, user: &Username, start: RecordStart) {
        self.queue(Job::RecordStart {
            user: user.clone(),
            start,
        });
    }

    /// Ends `user`'s recording after the segments queued so far.
    pub fn record_end(&self, user: &Username, ended_ms: i64) {
        self.queue(Job::RecordEnd {
            user: user.clone(),
            ended_ms,
        });
    }

    /// Appends to the in-progress file of segment `id`, when the disk is keeping up; false when
    /// it is not (the bytes then stay with the caller).
    pub fn append(
        &self,
        user: &Username,
        id: SegmentId,
        bytes: impl FnOnce() -> Option<Bytes>,
    ) -> bool {
        if self.stalled() {
            return false;
        }
        let Ok(permit) = self.jobs.try_reserve() else {
            return false;
        };
        if let Some(bytes) = bytes() {
            permit.send(Job::Append {
                user: user.clone(),
                id,
                bytes,
            });
        }
        true
    }

    /// Completes segment `id` (its first bytes appended) under `name`: reported with
    /// [`DiskEvent::Finished`] or [`DiskEvent::Lost`]. False when the queue is full: the bytes
    /// appended so far are lost.
    pub fn finish(
        &self,
        user: &Username,
        id: SegmentId,
        name: SegmentName,
        segment: Segment,
        end_after: bool,
    ) -> bool {
        let job = Job::Finish {
            user: user.clone(),
            id,
            name,
            segment,
            end_after,
        };
        self.jobs.try_send(job).is_ok()
    }

    /// Deletes a file.
    pub fn delete(&self, user: &Username, file: DiskFile) {
        if let DiskFile::Ts(name) = file {
            self.cache().remove(&(user.clone(), name));
        }
        self.queue(Job::Delete {
            user: user.clone(),
            file,
        });
    }

    /// Removes a channel's directory.
    pub fn remove_channel(&self, user: &Username) {
        self.cache().forget(|(u, _)| u == user);
        self.queue(Job::RemoveChannel { user: user.clone() });
    }

    /// Events the writer has reported so far (so a caller can tell when it has applied them all).
    pub fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Acquire)
    }

    /// Waits (5 s at most) until every queued job is done.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }

    /// Ends the writer after the jobs queued so far; its event channel then closes.
    pub async fn stop(&self) {
        let _ = self.jobs.send(Job::Stop).await;
    }

    /// True while a writer batch has run for over a second: segments then stay whole in memory.
    pub fn stalled(&self) -> bool {
        let since = self.busy_since.load(Ordering::Relaxed);
        since != 0 && now_ms() - since > STALLED_MS
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ReadCache<(Username, SegmentName)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of segments in the read cache (a metric for operators).
    pub fn cache_bytes(&self) -> usize {
        self.cache().bytes()
    }

    /// Reads a segment's file: from the cache, else from disk in one trip to the blocking pool
    /// (open, stat and — for all but huge files — read: each trip is a thread hand-off).
    pub async fn read(&self, user: &Username, name: SegmentName) -> Option<SegmentRead> {
        if let Some((body, modified_ms)) = self.cache().get(&(user.clone(), name)) {
            return Some(SegmentRead::Bytes { body, modified_ms });
        }
        let path = self.dir(user).join(name.file_name());
        let read = tokio::task::spawn_blocking(move || read_file(&path))
            .await
            .ok()??;
        if let SegmentRead::Bytes { body, modified_ms } = &read {
            (self.cache()).insert((user.clone(), name), body.clone(), *modified_ms);
        }
        Some(read)
    }
}

/// A media file, whole or (when large) open to be sent in chunks. Blocking.
pub fn read_file(path: &Path) -> Option<SegmentRead> {
    use std::io::Read;
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let modified_ms = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as i64;
    if meta.len() > READ_WHOLE_UP_TO {
        let file = tokio::fs::File::from_std(file);
        return Some(SegmentRead::File {
            file,
            len: meta.len(),
            modified_ms,
        });
    }
    let mut body = Vec::with_capacity(usize::try_from(meta.len()).ok()?);
    file.read_to_end(&mut body).ok()?;
    Some(SegmentRead::Bytes {
        body: Bytes::from(body),
        modified_ms,
    })
}

/// How far a segment being written while it is made has got.
enum InProgress {
    Disk {
        file: File,
        len: u64,
    },
    /// The disk failed: the segment is collected here instead.
    Memory(Vec<Bytes>),
    /// The disk failed and what it had could not be read back.
    Lost,
}

/// What the writer keeps between batches: each channel's in-progress segment.
#[derive(Default)]
struct State {
    open: HashMap<Username, (SegmentId, InProgress)>,
    recorders: recording::Recorders,
}

/// What one batch reports: events, per channel whether its writes worked, and the flushes to
/// answer once those are out.
#[derive(Default)]
struct Outcome {
    events: Vec<DiskEvent>,
    health: Vec<(Username, Result<(), String>)>,
    flushed: Vec<oneshot::Sender<()>>,
}

/// The writer's side of the event channel, counting what it sends.
struct EventSender {
    events: mpsc::UnboundedSender<DiskEvent>,
    sent: Arc<AtomicU64>,
}

impl EventSender {
    fn send(&self, event: DiskEvent) {
        if self.events.send(event).is_ok() {
            self.sent.fetch_add(1, Ordering::Release);
        }
    }
}

/// Runs jobs on the blocking pool, one batch at a time, logging a failing channel once until it
/// recovers. `busy_since` holds when the running batch started (0: idle).
async fn writer(
    root: PathBuf,
    mut rx: mpsc::Receiver<Job>,
    events: EventSender,
    busy_since: Arc<AtomicI64>,
) {
    let mut failing: HashSet<Username> = HashSet::new();
    let mut state = State::default();
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 64).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let stop = jobs.iter().any(|j| matches!(j, Job::Stop));
        let root_for_batch = root.clone();
        busy_since.store(now_ms(), Ordering::Relaxed);
        let done = tokio::task::spawn_blocking(move || {
            let mut outcome = Outcome::default();
            for job in jobs {
                run(&root_for_batch, &mut state, job, &mut outcome);
            }
            (state, outcome)
        })
        .await;
        busy_since.store(0, Ordering::Relaxed);
        let Ok((back, outcome)) = done else {
            // A panic in a job: the segments in progress are abandoned, later ones start anew.
            state = State::default();
            continue;
        };
        state = back;
        report(&mut failing, outcome, &events);
        if stop {
            return;
        }
    }
}

/// Logs and sends what a batch did; a flush is answered only once its batch's events are out.
fn report(failing: &mut HashSet<Username>, outcome: Outcome, events: &EventSender) {
    for (user, result) in outcome.health {
        let now_failing = result.is_err();
        let changed = match &result {
            Ok(()) => failing.remove(&user),
            Err(_) => failing.insert(user.clone()),
        };
        match result {
            Ok(()) if changed => info!(user = %user, "HLS files are being written to disk again"),
            Err(err) if changed => {
                warn!(user = %user, error = %err, "cannot write HLS files; serving this stream from memory only")
            }
            _ => {}
        }
        events.send(DiskEvent::Health {
            user,
            failing: now_failing,
        });
    }
    for event in outcome.events {
        events.send(event);
    }
    for done in outcome.flushed {
        let _ = done.send(());
    }
}

fn run(root: &Path, state: &mut State, job: Job, out: &mut Outcome) {
    match job {
        Job::Write {
            user,
            file,
            body,
            meta,
        } => {
            let dir = root.join(user.as_str());
            let name = file.file_name();
            let result = write_atomically(&dir, &name, &body);
            if let (DiskFile::Ts(name), Ok(())) = (file, &result) {
                out.events.push(DiskEvent::Written {
                    user: user.clone(),
                    name,
                });
            }
            if let (Some(meta), Ok(())) = (meta, &result) {
                let line = match file {
                    DiskFile::Ts(n) => Some((n, false)),
                    DiskFile::Fmp4(n) => Some((n, true)),
                    _ => None,
                }
                .map(|(n, cmaf)| LogLine::Segment {
                    name: n.0,
                    cmaf,
                    duration_ms: meta.duration_ms,
                    bytes: body.len() as u64,
                    key: meta.key.map(|k| k.tag),
                });
                if let Some(line) = line {
                    recording::segment(&mut state.recorders, &user, &dir, &name, line, meta);
                }
            }
            let result = result.map_err(|e| format!("{}: {e}", dir.join(&name).display()));
            out.health.push((user, result));
        }
        Job::Append { user, id, bytes } => append_job(root, state, user, id, bytes, out),
        Job::Finish {
            user,
            id,
            name,
            segment,
            end_after,
        } => finish_job(root, state, user, id, name, segment, end_after, out),
        Job::Delete { user, file } => {
            let _ = std::fs::remove_file(root.join(user.as_str()).join(file.file_name()));
        }
        Job::RemoveChannel { user } => {
            state.open.remove(&user);
            let _ = std::fs::remove_dir_all(root.join(user.as_str()));
        }
        Job::RecordStart { user, start } => recording::start(&mut state.recorders, user, start),
        Job::RecordEnd { user, ended_ms } => recording::end(&mut state.recorders, &user, ended_ms),
        Job::Flush(done) => out.flushed.push(done),
        Job::Stop => {}
    }
}

fn append_job(
    root: &Path,
    state: &mut State,
    user: Username,
    id: SegmentId,
    bytes: Bytes,
    out: &mut Outcome,
) {
    let dir = root.join(user.as_str());
    let failed = |out: &mut Outcome, error: std::io::Error, doing: &str| {
        let path = dir.join(IN_PROGRESS);
        out.health.push((
            user.clone(),
            Err(format!("{doing} {}: {error}", path.display())),
        ));
    };
    let current = match state.open.remove(&user) {
        Some((open_id, progress)) if open_id == id => progress,
        stale => {
            // A new segment (the last one's Finish never came: its file is abandoned).
            if stale.is_some() {
                let _ = std::fs::remove_file(dir.join(IN_PROGRESS));
            }
            start_in_progress(&dir).unwrap_or_else(|e| {
                failed(out, e, "creating");
                InProgress::Memory(Vec::new())
            })
        }
    };
    let next = append(current, &dir, bytes, |e| failed(out, e, "appending to"));
    state.open.insert(user, (id, next));
}

#[allow(clippy::too_many_arguments)] // one job's fields, taken apart where the job is matched
fn finish_job(
    root: &Path,
    state: &mut State,
    user: Username,
    id: SegmentId,
    name: SegmentName,
    mut segment: Segment,
    end_after: bool,
    out: &mut Outcome,
) {
    let dir = root.join(user.as_str());
    let progress = state
        .open
        .remove(&user)
        .filter(|(open_id, _)| *open_id == id)
        .map_or(InProgress::Lost, |(_, progress)| progress);
    // Only a segment still going to disk says anything about the disk's health now.
    let mut touched_disk = matches!(progress, InProgress::Disk { .. });
    let (done, failure) = complete(progress, &dir, name, &mut segment);
    touched_disk |= failure.is_some();
    if touched_disk {
        let health = match failure {
            Some((e, doing)) => Err(format!("{doing} {}: {e}", dir.join(IN_PROGRESS).display())),
            None => Ok(()),
        };
        out.health.push((user.clone(), health));
    }
    if done == Some(true) {
        recording::finished_ts(&mut state.recorders, &user, &dir, name, segment.duration_ms);
    }
    out.events.push(match done {
        Some(on_disk) => DiskEvent::Finished {
            user,
            id,
            name,
            segment,
            on_disk,
            end_after,
        },
        None => DiskEvent::Lost {
            user,
            id,
            end_after,
        },
    });
}

/// Appends a segment's tail to its in-progress file and renames it to `name`: `Some(true)` when
/// the file is complete, `Some(false)` when the disk failed and the whole segment is back in
/// `segment.data`, `None` when it is lost; with the failure, if any.
fn complete(
    progress: InProgress,
    dir: &Path,
    name: SegmentName,
    segment: &mut Segment,
) -> (Option<bool>, Option<(std::io::Error, &'static str)>) {
    let mut failure = None;
    let tail = std::mem::take(&mut segment.data);
    let done = match append(progress, dir, tail, |e| failure = Some((e, "appending to"))) {
        InProgress::Disk { file, .. } => {
            drop(file);
            let from = dir.join(IN_PROGRESS);
            match std::fs::rename(&from, dir.join(name.file_name())) {
                Ok(()) => Some(true),
                Err(e) => {
                    failure = Some((e, "renaming"));
                    let back = std::fs::read(&from).ok();
                    let _ = std::fs::remove_file(&from);
                    back.map(|bytes| {
                        segment.data = Bytes::from(bytes);
                        false
                    })
                }
            }
        }
        InProgress::Memory(chunks) => {
            segment.data = Bytes::from(chunks.concat());
            Some(false)
        }
        InProgress::Lost => None,
    };
    (done, failure)
}

fn start_in_progress(dir: &Path) -> std::io::Result<InProgress> {
    std::fs::create_dir_all(dir)?;
    Ok(InProgress::Disk {
        file: create_exclusive(&dir.join(IN_PROGRESS))?,
        len: 0,
    })
}

/// Appends `bytes`; on a disk error, falls back to memory with what the file holds.
fn append(
    progress: InProgress,
    dir: &Path,
    bytes: Bytes,
    on_error: impl FnOnce(std::io::Error),
) -> InProgress {
    match progress {
        InProgress::Disk { mut file, len } => match file.write_all(&bytes) {
            Ok(()) => InProgress::Disk {
                file,
                len: len + bytes.len() as u64,
            },
            Err(e) => {
                on_error(e);
                drop(file);
                let path = dir.join(IN_PROGRESS);
                // Only the bytes written before this chunk count: a failed write may leave some
                // of it behind.
                let back = std::fs::read(&path).ok().filter(|b| b.len() as u64 >= len);
                let _ = std::fs::remove_file(&path);
                match back {
                    Some(mut prefix) => {
                        prefix.truncate(len as usize);
                        InProgress::Memory(vec![Bytes::from(prefix), bytes])
                    }
                    None => InProgress::Lost,
                }
            }
        },
        InProgress::Memory(mut chunks) => {
            chunks.push(bytes);
            InProgress::Memory(chunks)
        }
        InProgress::Lost => InProgress::Lost,
    }
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = create_exclusive(&tmp).and_then(|mut file| file.write_all(body));
    written.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Creates `path` afresh (`O_CREAT | O_EXCL`, which never follows a symlink): whatever was there —
/// a file left by a crash, or a link planted to make us write elsewhere — is removed first (the
/// link itself, never its target).
fn create_exclusive(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

pub mod recording;
#[cfg(test)]
mod tests;
