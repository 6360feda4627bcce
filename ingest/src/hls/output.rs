//! The HLS output: every live channel's window in memory (the origin serves from here, never
//! waiting on disk; once a stream ends, what is safely on disk is served from there) and the
//! [`writer`](super::writer) that mirrors it to `<data>/hls/<username>/`. With the window not kept
//! in memory, a segment is written while it is made and listed once it is complete on disk.
//!
//! Disk trouble (read-only, full) is logged once and the stream continues from memory: a viewer of
//! the origin notices nothing, and no other stream is affected.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltstream_shared::username::Username;
use bytes::Bytes;
use hashlink::LinkedHashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::packager::{Packager, Segment};
use super::playlist::PlaylistWindow;
use super::writer::{writer, Job};
use crate::config::Settings;
use crate::live::{Media, MediaError, MediaSink, SinkFactory};
use crate::store::now_ms;

/// Disk jobs queued beyond this are dropped (and logged): a stalled disk must not grow memory or
/// slow a publisher.
const WRITE_QUEUE: usize = 4096;
/// Without the window in memory, the open segment goes to disk whenever this much is waiting.
const CHUNK: usize = 48 * 1024;
/// Capacity of each chunk's buffer: room for a frame past [`CHUNK`], and under glibc's mmap
/// threshold (64 KiB, see `main.rs`) so chunk buffers are reused, not mapped and unmapped.
const CHUNK_CAPACITY: usize = 60 * 1024;
/// A writer batch running this long means the disk is stalled: segments stay whole in memory.
const STALLED_MS: i64 = 1_000;

/// Which segment of which publish: orders what the writer lists against what is listed directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartId {
    /// Counts publishes to the channel.
    pub generation: u64,
    /// Counts segments within the publish.
    pub seq: u64,
}

/// A served playlist snapshot.
#[derive(Clone, Debug)]
pub struct PlaylistSnapshot {
    /// The text.
    pub body: Bytes,
    /// Strong validator: changes whenever the body does.
    pub etag: String,
    /// Unix ms of the last change.
    pub modified_ms: i64,
}

/// A served segment.
#[derive(Clone, Debug)]
pub struct SegmentSnapshot {
    /// The bytes.
    pub body: Bytes,
    /// Unix ms it was completed.
    pub modified_ms: i64,
}

struct ChannelState {
    window: PlaylistWindow,
    playlist: Option<PlaylistSnapshot>,
    version: u64,
    /// Names of segments that left the window: no longer in memory (players a little behind get
    /// them from disk), deleted from disk after the grace period.
    retired: VecDeque<(i64, String)>,
    /// What the origin needs to know of each listed segment, by name.
    listed: HashMap<String, Listed>,
    publishing: bool,
    ended_at: Option<i64>,
    generation: u64,
    /// The last segment of this generation listed.
    last_listed: Option<u64>,
}

struct Listed {
    /// Unix ms it was completed.
    modified_ms: i64,
    /// Its file is written: its bytes may leave memory once nobody is publishing to the channel
    /// (or at once, when the window is not kept in memory).
    on_disk: bool,
}

/// One channel's output.
pub struct Channel {
    user: Username,
    dir: PathBuf,
    /// Keep the live window in memory even once it is on disk.
    keep_in_memory: bool,
    /// The last write for this channel failed: its segments stay whole in memory until one
    /// succeeds.
    disk_failing: AtomicBool,
    state: Mutex<ChannelState>,
}

impl Channel {
    fn state(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn user(&self) -> &Username {
        &self.user
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn set_disk_failing(&self, failing: bool) {
        self.disk_failing.store(failing, Ordering::Relaxed);
    }

    /// A listed segment's file is complete on disk.
    pub(super) fn written(&self, name: &str) {
        let mut state = self.state();
        let Some(listed) = state.listed.get_mut(name) else {
            return; // left the window meanwhile
        };
        listed.on_disk = true;
        if !self.keep_in_memory || !state.publishing {
            state.window.release(name);
        }
    }
}

/// Segments recently read from disk, least recently used first, within a byte budget. Segment
/// names never repeat, so an entry is never stale; it goes when its file is deleted.
struct DiskCache {
    entries: LinkedHashMap<(Username, String), SegmentSnapshot>,
    bytes: usize,
    budget: usize,
}

impl DiskCache {
    fn new(budget: usize) -> Self {
        Self {
            entries: LinkedHashMap::new(),
            bytes: 0,
            budget,
        }
    }

    fn get(&mut self, user: &Username, name: &str) -> Option<SegmentSnapshot> {
        let key = (user.clone(), name.to_string());
        let found = self.entries.get(&key).cloned()?;
        self.entries.to_back(&key);
        Some(found)
    }

    /// Keeps a segment, dropping the least recently used beyond the budget. One segment may take
    /// at most a quarter of the budget, so a few large ones cannot flush it.
    fn insert(&mut self, user: &Username, name: &str, segment: SegmentSnapshot) {
        let size = segment.body.len();
        if size > self.budget / 4 {
            return;
        }
        if let Some(old) = self
            .entries
            .insert((user.clone(), name.to_string()), segment)
        {
            self.bytes -= old.body.len();
        }
        self.bytes += size;
        while self.bytes > self.budget {
            let Some((_, gone)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= gone.body.len();
        }
    }

    /// Forgets `user`'s segments (all of them, or the one named).
    fn forget(&mut self, user: &Username, name: Option<&str>) {
        if let Some(name) = name {
            if let Some(gone) = self.entries.remove(&(user.clone(), name.to_string())) {
                self.bytes -= gone.body.len();
            }
            return;
        }
        let bytes = &mut self.bytes;
        self.entries.retain(|(u, _), segment| {
            let keep = u != user;
            if !keep {
                *bytes -= segment.body.len();
            }
            keep
        });
    }
}

/// All channels' output.
pub struct HlsOutput {
    root: PathBuf,
    limits: super::packager::Limits,
    max_window_bytes: u64,
    target_s: u64,
    window: usize,
    in_memory: bool,
    retire_grace_ms: i64,
    cleanup_after_ms: i64,
    channels: Mutex<HashMap<Username, Arc<Channel>>>,
    jobs: mpsc::Sender<Job>,
    /// When the writer's running batch started (Unix ms; 0: idle).
    writer_busy_since: Arc<AtomicI64>,
    disk_cache: Mutex<DiskCache>,
}

impl HlsOutput {
    /// Clears what an earlier run left (no stream can be live at start-up) and starts the writer
    /// and the janitor.
    pub fn start(
        settings: &Settings,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Arc<Self>> {
        let root = settings.hls_dir();
        if root.exists() {
            for entry in std::fs::read_dir(&root)?.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("cannot create HLS directory {}: {e}", root.display()))?;
        let (jobs, rx) = mpsc::channel(WRITE_QUEUE);
        let target_s = settings.hls_target_duration.as_secs();
        let output = Arc::new(Self {
            root,
            limits: settings.packager_limits(),
            max_window_bytes: settings.max_window_bytes(),
            target_s,
            window: settings.hls_window,
            in_memory: settings.hls_window_in_memory,
            retire_grace_ms: (target_s * settings.hls_window as u64 * 1000) as i64,
            cleanup_after_ms: settings.hls_cleanup_after.as_millis() as i64,
            channels: Mutex::new(HashMap::new()),
            jobs,
            writer_busy_since: Arc::new(AtomicI64::new(0)),
            disk_cache: Mutex::new(DiskCache::new(settings.hls_disk_cache_bytes)),
        });
        // Not on the tracker: it drains until the last sender is gone, after connections ended.
        tokio::spawn(writer(
            rx,
            Arc::downgrade(&output),
            Arc::clone(&output.writer_busy_since),
        ));
        tracker.spawn(janitor(Arc::clone(&output), shutdown));
        Ok(output)
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Username, Arc<Channel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn channel(&self, user: &Username) -> Option<Arc<Channel>> {
        self.channels().get(user).cloned()
    }

    /// The channel's playlist, once its first segment is complete.
    pub fn playlist(&self, user: &Username) -> Option<PlaylistSnapshot> {
        self.channel(user)?.state().playlist.clone()
    }

    /// A segment of the current window, from memory; `None` when it is not in memory (left the
    /// window, or released once on disk: at once when the window is not kept in memory, else when
    /// the publish ends).
    pub fn segment(&self, user: &Username, name: &str) -> Option<SegmentSnapshot> {
        let channel = self.channel(user)?;
        let state = channel.state();
        let modified_ms = state.listed.get(name)?.modified_ms;
        let body = state.window.find(name)?.data.clone();
        (!body.is_empty()).then_some(SegmentSnapshot { body, modified_ms })
    }

    fn disk_cache(&self) -> std::sync::MutexGuard<'_, DiskCache> {
        self.disk_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A segment read from disk earlier and still in the cache.
    pub fn cached(&self, user: &Username, name: &str) -> Option<SegmentSnapshot> {
        self.disk_cache().get(user, name)
    }

    /// Keeps a segment just read from disk for the next viewers.
    pub fn cache(&self, user: &Username, name: &str, segment: SegmentSnapshot) {
        self.disk_cache().insert(user, name, segment);
    }

    fn uncache(&self, user: &Username, name: Option<&str>) {
        self.disk_cache().forget(user, name);
    }

    /// Bytes of segments in the disk cache (a metric for operators).
    pub fn disk_cache_bytes(&self) -> usize {
        self.disk_cache().bytes
    }

    /// Where a channel's files are on disk (for segments that left memory but are still there).
    pub fn segment_path(&self, user: &Username, name: &str) -> PathBuf {
        self.root.join(user.as_str()).join(format!("{name}.ts"))
    }

    /// Bytes of finished segments held in memory across all channels (a metric for operators).
    pub fn segment_bytes_in_memory(&self) -> usize {
        let channels: Vec<Arc<Channel>> = self.channels().values().cloned().collect();
        channels
            .iter()
            .map(|c| {
                c.state()
                    .window
                    .entries()
                    .map(|e| e.data.len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// True while the channel has a publisher.
    pub fn is_publishing(&self, user: &Username) -> bool {
        self.channel(user).is_some_and(|c| c.state().publishing)
    }

    /// Waits until every queued disk job is done.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }

    fn queue(&self, job: Job) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.jobs.try_send(job) {
            warn!("HLS disk writer is behind; a file write was skipped (the origin still serves from memory)");
        }
    }

    fn writer_stalled(&self) -> bool {
        let since = self.writer_busy_since.load(Ordering::Relaxed);
        since != 0 && now_ms() - since > STALLED_MS
    }

    /// Opens (or reopens) `user`'s channel for a publish; returns it and the publish's generation.
    fn open_channel(&self, user: &Username) -> (Arc<Channel>, u64) {
        let mut channels = self.channels();
        let channel = channels.entry(user.clone()).or_insert_with(|| {
            Arc::new(Channel {
                user: user.clone(),
                dir: self.root.join(user.as_str()),
                keep_in_memory: self.in_memory,
                disk_failing: AtomicBool::new(false),
                state: Mutex::new(ChannelState {
                    window: PlaylistWindow::new(self.target_s, self.window),
                    playlist: None,
                    version: 0,
                    retired: VecDeque::new(),
                    listed: HashMap::new(),
                    publishing: false,
                    ended_at: None,
                    generation: 0,
                    last_listed: None,
                }),
            })
        });
        let mut state = channel.state();
        state.window.begin_publish();
        state.publishing = true;
        state.ended_at = None;
        state.generation += 1;
        state.last_listed = None;
        let generation = state.generation;
        drop(state);
        (Arc::clone(channel), generation)
    }

    /// Lists a segment: `on_disk` when its file is complete (its `data` is then empty), else its
    /// bytes are listed from memory and queued for writing. A segment of an earlier publish, or
    /// older than one already listed, is dropped; one listed after a gap follows a discontinuity.
    pub(super) fn publish(
        &self,
        channel: &Arc<Channel>,
        id: PartId,
        name: Option<u64>,
        mut segment: Segment,
        on_disk: bool,
    ) {
        let now = now_ms();
        let mut state = channel.state();
        if state.generation != id.generation || state.last_listed.is_some_and(|l| id.seq <= l) {
            drop(state);
            if on_disk {
                if let Some(name) = name {
                    self.queue(Job::Delete {
                        path: channel.dir.join(format!("{name}.ts")),
                    });
                }
            }
            return;
        }
        if id.seq != state.last_listed.map_or(0, |l| l + 1) {
            segment.discontinuity = true;
        }
        state.last_listed = Some(id.seq);
        let name = name.unwrap_or_else(|| state.window.reserve_name(segment.start_wall_ms));
        let evicted = state.window.push_named(segment, name);
        let entry = state.window.entries().last().expect("just pushed").clone();
        state.listed.insert(
            entry.name.clone(),
            Listed {
                modified_ms: now,
                on_disk,
            },
        );
        for gone in evicted {
            state.listed.remove(&gone.name);
            state.retired.push_back((now, gone.name));
        }
        let playlist = self.render(&mut state, now);
        drop(state);
        if !on_disk {
            self.queue(Job::Write {
                dir: channel.dir.clone(),
                name: format!("{}.ts", entry.name),
                body: entry.data,
                user: channel.user.clone(),
                segment_of: Some(Arc::clone(channel)),
            });
        }
        self.queue(Job::Write {
            dir: channel.dir.clone(),
            name: "index.m3u8".into(),
            body: playlist,
            user: channel.user.clone(),
            segment_of: None,
        });
    }

    fn render(&self, state: &mut ChannelState, now: i64) -> Bytes {
        state.version += 1;
        let body = Bytes::from(state.window.render());
        state.playlist = Some(PlaylistSnapshot {
            body: body.clone(),
            etag: format!("\"{:x}-{}\"", now, state.version),
            modified_ms: now,
        });
        body
    }

    /// Publish `generation` ended; its playlist is ended by [`Self::end_playlist`], after its last
    /// segment. A no-op when a newer publish took the channel over (a rotated key's thief ending
    /// after the owner went live again).
    fn mark_ended(&self, channel: &Channel, generation: u64) {
        let mut state = channel.state();
        if state.generation != generation {
            return;
        }
        state.publishing = false;
        state.ended_at = Some(now_ms());
    }

    /// Ends the playlist of publish `generation`, unless the user went live again meanwhile.
    pub(super) fn end_playlist(&self, channel: &Channel, generation: u64) {
        let now = now_ms();
        let mut state = channel.state();
        if state.generation != generation || state.publishing {
            return;
        }
        state.window.end();
        // A finished stream's viewers are few and its files are written: its window need not
        // hold memory until the cleanup (segments that failed to write stay).
        let written: Vec<String> = (state.listed.iter())
            .filter(|(_, l)| l.on_disk)
            .map(|(name, _)| name.clone())
            .collect();
        for name in written {
            state.window.release(&name);
        }
        if state.window.is_empty() {
            return;
        }
        let playlist = self.render(&mut state, now);
        drop(state);
        self.queue(Job::Write {
            dir: channel.dir.clone(),
            name: "index.m3u8".into(),
            body: playlist,
            user: channel.user.clone(),
            segment_of: None,
        });
    }

    /// Deletes retired segments after their grace period, and finished channels after the cleanup
    /// delay (unless their user went live again).
    fn tidy(&self, now: i64) {
        let channels: Vec<Arc<Channel>> = self.channels().values().cloned().collect();
        for channel in channels {
            let mut state = channel.state();
            while state
                .retired
                .front()
                .is_some_and(|(at, _)| now - at >= self.retire_grace_ms)
            {
                let (_, name) = state.retired.pop_front().expect("checked");
                self.uncache(&channel.user, Some(&name));
                self.queue(Job::Delete {
                    path: channel.dir.join(format!("{name}.ts")),
                });
            }
            let expired = !state.publishing
                && state
                    .ended_at
                    .is_some_and(|t| now - t >= self.cleanup_after_ms);
            drop(state);
            if expired {
                let mut channels = self.channels();
                // Re-check under the map lock: a publish may have reopened it meanwhile.
                if channels
                    .get(&channel.user)
                    .is_some_and(|c| Arc::ptr_eq(c, &channel) && !c.state().publishing)
                {
                    channels.remove(&channel.user);
                    self.uncache(&channel.user, None);
                    self.queue(Job::RemoveDir {
                        dir: channel.dir.clone(),
                    });
                    info!(user = %channel.user, "finished stream's HLS output removed");
                }
            }
        }
    }
}

async fn janitor(output: Arc<HlsOutput>, shutdown: CancellationToken) {
    let mut tick = crate::ticks::aligned_interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => output.tidy(now_ms()),
        }
    }
}

/// The sink of one publish: packager in, channel out.
struct HlsSink {
    packager: Packager,
    channel: Arc<Channel>,
    output: Arc<HlsOutput>,
    /// The open segment.
    part: PartId,
    /// Write the open segment to disk as it is made (the window is not kept in memory).
    stream: bool,
    /// Sizes of the last segments closed, as many as the window lists.
    recent_bytes: VecDeque<u64>,
}

impl HlsSink {
    fn close(&mut self, segment: Segment, end_after: bool) {
        let part = self.part;
        self.part.seq += 1;
        if segment.streamed == 0 {
            self.output
                .publish(&self.channel, part, None, segment, false);
            if end_after {
                self.output.end_playlist(&self.channel, part.generation);
            }
            return;
        }
        let name = self
            .channel
            .state()
            .window
            .reserve_name(segment.start_wall_ms);
        let finish = Job::Finish {
            channel: Arc::clone(&self.channel),
            part,
            name,
            segment,
            end_after,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.output.jobs.try_send(finish) {
            warn!(user = %self.channel.user, "HLS disk writer is stalled; a segment written in part was lost");
            if end_after {
                self.output.end_playlist(&self.channel, part.generation);
            }
        }
    }

    /// Hands the open segment's bytes so far to the writer, when the disk is keeping up.
    fn stream_open(&mut self) {
        if !self.stream
            || self.packager.open_len() < CHUNK
            || self.channel.disk_failing.load(Ordering::Relaxed)
            || self.output.writer_stalled()
        {
            return;
        }
        let Ok(permit) = self.output.jobs.try_reserve() else {
            return; // the queue is full: the bytes wait in the open segment
        };
        if let Some(bytes) = self.packager.take_open() {
            permit.send(Job::Append {
                channel: Arc::clone(&self.channel),
                part: self.part,
                bytes,
            });
        }
    }
}

impl HlsSink {
    /// Refuses a stream whose window (the segments listed and the open one) passed its bound in
    /// bytes: segments within their own bound can still add up past what one stream may hold.
    fn check_window(&mut self, closed: Option<u64>) -> Result<(), MediaError> {
        if let Some(size) = closed {
            if self.recent_bytes.len() == self.output.window {
                self.recent_bytes.pop_front();
            }
            self.recent_bytes.push_back(size);
        }
        let held = self.recent_bytes.iter().sum::<u64>() + self.packager.open_total();
        if held <= self.output.max_window_bytes {
            return Ok(());
        }
        self.packager.discard_open();
        Err(MediaError::LimitExceeded(format!(
            "the stream's window passed {} bytes (the limit for the highest allowed bitrate)",
            self.output.max_window_bytes
        )))
    }
}

impl MediaSink for HlsSink {
    fn push(&mut self, media: Media, wall_ms: i64) -> Result<(), MediaError> {
        let closed = self.packager.push(&media, wall_ms)?;
        let closed_bytes = closed.as_ref().map(|s| s.streamed + s.data.len() as u64);
        if let Some(segment) = closed {
            self.close(segment, false);
        }
        self.check_window(closed_bytes)?;
        self.stream_open();
        Ok(())
    }

    fn cut_due_in_ms(&self) -> Option<i64> {
        self.packager.cut_due_in_ms()
    }

    fn finish(&mut self, _wall_ms: i64) {
        self.output.mark_ended(&self.channel, self.part.generation);
        match self.packager.finish() {
            Some(segment) => self.close(segment, true),
            None => self
                .output
                .end_playlist(&self.channel, self.part.generation),
        }
    }
}

impl SinkFactory for Arc<HlsOutput> {
    fn open(&self, user: &Username) -> Box<dyn MediaSink> {
        let (channel, generation) = self.open_channel(user);
        let mut packager = Packager::new(self.target_s * 1000).with_limits(self.limits);
        if !self.in_memory {
            packager.stream_in_chunks(CHUNK_CAPACITY);
        }
        Box::new(HlsSink {
            packager,
            channel,
            output: Arc::clone(self),
            part: PartId { generation, seq: 0 },
            stream: !self.in_memory,
            recent_bytes: VecDeque::with_capacity(self.window),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(len: usize) -> SegmentSnapshot {
        SegmentSnapshot {
            body: Bytes::from(vec![7u8; len]),
            modified_ms: 1,
        }
    }

    #[test]
    fn the_disk_cache_keeps_the_recently_used_within_its_budget() {
        let alice = Username::parse("alice").unwrap();
        let bob = Username::parse("bob").unwrap();
        let mut cache = DiskCache::new(1000);
        cache.insert(&alice, "1", seg(200));
        cache.insert(&alice, "2", seg(200));
        cache.insert(&bob, "1", seg(200));
        assert_eq!(cache.bytes, 600);
        assert!(cache.get(&alice, "1").is_some()); // now the most recent
        cache.insert(&alice, "3", seg(250));
        cache.insert(&alice, "4", seg(250));
        assert!(cache.bytes <= 1000);
        assert!(
            cache.get(&alice, "2").is_none(),
            "least recently used left first"
        );
        assert!(cache.get(&alice, "1").is_some());
        assert_eq!(cache.get(&bob, "1").map(|s| s.body.len()), Some(200));
        cache.insert(&alice, "big", seg(251));
        assert!(
            cache.get(&alice, "big").is_none(),
            "over a quarter of the budget"
        );
        cache.insert(&alice, "1", seg(100)); // replaced, not counted twice
        let held: usize = cache.entries.values().map(|s| s.body.len()).sum();
        assert_eq!(cache.bytes, held);
        cache.forget(&alice, Some("3"));
        assert!(cache.get(&alice, "3").is_none() && cache.get(&alice, "4").is_some());
        cache.forget(&alice, None);
        assert_eq!(
            (cache.entries.len(), cache.bytes),
            (1, 200),
            "only bob's is left"
        );
        let mut off = DiskCache::new(0);
        off.insert(&alice, "1", seg(1));
        assert!(
            off.get(&alice, "1").is_none(),
            "a zero budget caches nothing"
        );
    }
}
