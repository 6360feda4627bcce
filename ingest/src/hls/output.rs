//! The HLS output: every live channel's state (the pure [`ChannelState`] of the HLS core, behind a
//! lock), the sink each publish's media goes into, and the carrying out of what the channels decide
//! on the [`Disk`](super::disk::Disk). The origin serves playlists and the window from here, and
//! segments that left memory through the disk's reads.
//!
//! Disk trouble (read-only, full) is logged once and the stream continues from memory: a viewer of
//! the origin notices nothing, and no other stream is affected.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltstream_hls::channel::{
    ChannelConfig, ChannelState, Effect, Playlist, SegmentId, SegmentName,
};
use boltstream_hls::encrypt::{KeyTag, SegmentKey};
use boltstream_hls::packager::{Limits, Packager, Segment};
use boltstream_shared::route::Access;
use boltstream_shared::username::Username;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::disk::{Disk, DiskEvent, DiskFile, SegmentMeta, SegmentRead};
use super::keys::KeyRing;
use super::lowlatency::{LlChannel, LlSink};
use crate::clock::now_ms;
use crate::config::HlsFormat;
use crate::config::Settings;
use crate::live::{Media, MediaError, MediaSink, PublishSpec, SinkFactory};
use crate::record::Recordings;
use boltstream_hls::llchannel::LlChannelState;
use boltstream_hls::llhls::LlConfig;

/// Without the window in memory, the open segment goes to disk whenever this much is waiting.
const CHUNK: usize = 48 * 1024;
/// Capacity of each chunk's buffer: room for a frame past [`CHUNK`], and under glibc's mmap
/// threshold (64 KiB, see `main.rs`) so chunk buffers are reused, not mapped and unmapped.
const CHUNK_CAPACITY: usize = 60 * 1024;

/// A served segment.
pub enum SegmentBody {
    /// From memory (the window) or the disk's read cache.
    Bytes(Bytes),
    /// A file too large to read whole.
    File {
        /// The open file.
        file: tokio::fs::File,
        /// Its length.
        len: u64,
    },
}

/// A file the disk read, as the origin sends it, with its modification time (Unix ms).
fn served(read: SegmentRead) -> (SegmentBody, i64) {
    match read {
        SegmentRead::Bytes { body, modified_ms } => (SegmentBody::Bytes(body), modified_ms),
        SegmentRead::File {
            file,
            len,
            modified_ms,
        } => (SegmentBody::File { file, len }, modified_ms),
    }
}

/// One channel.
pub(super) struct Channel {
    pub(super) user: Username,
    /// The last write for this channel failed: its segments stay whole in memory until one
    /// succeeds.
    disk_failing: AtomicBool,
    /// The TS output's state; for a CMAF channel only its life cycle (publishing, generation,
    /// expiry) is used.
    state: Mutex<ChannelState>,
    /// The low-latency output, when the format is CMAF.
    pub(super) ll: Option<LlChannel>,
    /// The current publish's keys, when it is private: its media is served only under
    /// `/private/<user>/`, encrypted.
    keys: Mutex<Option<KeyRing>>,
    /// Made private while live in the clear: nothing of this output is served any more.
    withdrawn: AtomicBool,
}

impl Channel {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn keys(&self) -> std::sync::MutexGuard<'_, Option<KeyRing>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key a written segment was encrypted with, for its recording (the ring still holds it:
    /// a segment is written as it is listed).
    pub(super) fn segment_key(&self, tag: Option<KeyTag>) -> Option<SegmentKey> {
        let tag = tag?;
        let key = self.keys().as_ref()?.key(tag.id)?;
        Some(SegmentKey { tag, key })
    }
}

/// All channels' output.
pub struct HlsOutput {
    pub(super) config: ChannelConfig,
    pub(super) format: HlsFormat,
    pub(super) part_target: Duration,
    pub(super) limits: Limits,
    pub(super) max_window_bytes: u64,
    /// Segments per media key of a private stream.
    key_rotation: u32,
    channels: Mutex<HashMap<Username, Arc<Channel>>>,
    pub(super) disk: Arc<Disk>,
    /// Disk events applied so far: with [`Disk::events_sent`], tells when all are.
    events_applied: AtomicU64,
    /// Past broadcasts, recorded from the segments this output writes.
    pub recordings: Arc<Recordings>,
}

impl HlsOutput {
    /// Clears what an earlier run left (no stream can be live at start-up) and starts the disk,
    /// the task that applies what it reports, and the janitor.
    pub fn start(
        settings: &Settings,
        kek: [u8; 16],
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Arc<Self>> {
        let root = settings.hls_dir();
        let (disk, events) = Disk::start(root.clone(), settings.hls_disk_cache_bytes)
            .map_err(|e| anyhow::anyhow!("cannot create HLS directory {}: {e}", root.display()))?;
        let target_s = settings.hls_target_duration.as_secs();
        let output = Arc::new(Self {
            config: ChannelConfig {
                target_s,
                window: settings.hls_window,
                keep_in_memory: settings.hls_window_in_memory,
                retire_grace_ms: (target_s * settings.hls_window as u64 * 1000) as i64,
                cleanup_after_ms: settings.hls_cleanup_after.as_millis() as i64,
            },
            format: settings.hls_format,
            part_target: settings.hls_part_target,
            limits: settings.packager_limits(),
            max_window_bytes: settings.max_window_bytes(),
            key_rotation: settings.hls_key_rotation,
            channels: Mutex::new(HashMap::new()),
            disk,
            events_applied: AtomicU64::new(0),
            recordings: Recordings::new(settings, Some(kek)),
        });
        output.recordings.recover(now_ms());
        // Not on the tracker: it runs until the disk stops (see `stop`), after connections ended.
        tokio::spawn(apply_disk_events(Arc::clone(&output), events));
        tracker.spawn(janitor(Arc::clone(&output), shutdown.clone()));
        tracker.spawn(crate::record::janitor(
            Arc::clone(&output.recordings),
            shutdown,
        ));
        Ok(output)
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Username, Arc<Channel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn channel(&self, user: &Username) -> Option<Arc<Channel>> {
        self.channels().get(user).cloned()
    }

    /// The channel's MPEG-TS playlist, once its first segment is complete.
    pub fn playlist(&self, user: &Username) -> Option<Playlist> {
        self.channel(user)?.state().playlist().cloned()
    }

    /// Whether the channel's output is private (encrypted, under `/private/`); `None` when the
    /// channel has no output.
    pub fn is_private(&self, user: &Username) -> Option<bool> {
        self.channel(user).map(|c| c.keys().is_some())
    }

    /// Stops serving the channel's current output (it was made private while live in the clear);
    /// the next publish opens it again.
    pub fn withdraw(&self, user: &Username) {
        if let Some(channel) = self.channel(user) {
            channel.withdrawn.store(true, Ordering::Relaxed);
            info!(user = %user, "channel made private: its output in the clear is withdrawn");
        }
    }

    /// Under which prefix the channel's output is served, if at all: one lookup, for the origin's
    /// check on every live request.
    pub fn served_under(&self, user: &Username) -> Option<Access> {
        let channel = self.channel(user)?;
        if channel.withdrawn.load(Ordering::Relaxed) {
            return None;
        }
        let private = channel.keys().is_some();
        Some(if private {
            Access::Private
        } else {
            Access::Public
        })
    }

    /// A private channel's media key, while a fetchable segment needs it.
    pub fn media_key(&self, user: &Username, id: u64) -> Option<[u8; 16]> {
        self.channel(user)?.keys().as_ref()?.key(id)
    }

    /// True once the channel has something to play, in whichever format.
    pub fn is_playable(&self, user: &Username) -> bool {
        self.playlist(user).is_some() || self.ll_playable(user)
    }

    /// A finished recording's VOD playlist (of a private publish when `access` is private).
    pub async fn vod_playlist(&self, user: &Username, access: Access, id: u64) -> Option<Bytes> {
        let (recordings, user) = (Arc::clone(&self.recordings), user.clone());
        let private = access == Access::Private;
        let text = tokio::task::spawn_blocking(move || recordings.playlist(&user, id, private))
            .await
            .ok()??;
        Some(Bytes::from(text))
    }

    /// A finished private recording's media key.
    pub async fn vod_key(&self, user: &Username, id: u64, key: u64) -> Option<[u8; 16]> {
        let (recordings, user) = (Arc::clone(&self.recordings), user.clone());
        tokio::task::spawn_blocking(move || recordings.key(&user, id, key))
            .await
            .ok()?
    }

    /// A finished recording's file `file` (one its log names, or its picture).
    pub async fn vod_file(
        &self,
        user: &Username,
        access: Access,
        id: u64,
        file: String,
    ) -> Option<(SegmentBody, i64)> {
        let private = access == Access::Private;
        if let Some((body, modified_ms)) = self.recordings.cached_file(user, id, &file, private) {
            return Some((SegmentBody::Bytes(body), modified_ms));
        }
        let (recordings, who) = (Arc::clone(&self.recordings), user.clone());
        let name = file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let path = if name == crate::record::THUMB {
                recordings.thumbnail(&who, id)?
            } else {
                recordings.file(&who, id, &name, private)?
            };
            super::disk::read_file(&path)
        })
        .await
        .ok()??;
        if let SegmentRead::Bytes { body, modified_ms } = &read {
            (self.recordings).keep_file(user, id, &file, body.clone(), *modified_ms);
        }
        Some(served(read))
    }

    /// A segment of a channel: from memory while the window holds it, else from disk. `name` is
    /// as the URL spelled it.
    pub async fn segment(&self, user: &Username, name: &str) -> Option<(SegmentBody, i64)> {
        let name = SegmentName::parse(name)?;
        if let Some((body, modified_ms)) = self.channel(user).and_then(|c| c.state().segment(name))
        {
            return Some((SegmentBody::Bytes(body), modified_ms));
        }
        Some(served(self.disk.read(user, name).await?))
    }

    /// Bytes of segments in the disk's read cache (a metric for operators).
    pub fn disk_cache_bytes(&self) -> usize {
        self.disk.cache_bytes()
    }

    /// Bytes of finished segments held in memory across all channels (a metric for operators).
    pub fn segment_bytes_in_memory(&self) -> usize {
        let channels: Vec<Arc<Channel>> = self.channels().values().cloned().collect();
        (channels.iter())
            .map(|c| {
                c.state().bytes_in_memory() + c.ll.as_ref().map_or(0, LlChannel::bytes_in_memory)
            })
            .sum()
    }

    /// True while the channel has a publisher.
    pub fn is_publishing(&self, user: &Username) -> bool {
        self.channel(user)
            .is_some_and(|c| c.state().is_publishing())
    }

    /// Waits (a few seconds at most) until every queued disk job is done and what the disk
    /// reported is applied — including the work that applying it queued (a segment completed on
    /// disk is listed, which writes the playlist).
    pub async fn flush(&self) {
        for _ in 0..5 {
            let before = self.disk.events_sent();
            self.disk.flush().await;
            let sent = self.disk.events_sent();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while self.events_applied.load(Ordering::Acquire) < sent
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if sent == before {
                return;
            }
        }
    }

    /// Stops the disk after everything queued and reported; run last, when no publish can add
    /// work.
    pub async fn stop(&self) {
        self.flush().await;
        self.disk.stop().await;
    }

    /// Carries out what a channel decided, in order.
    fn carry_out(&self, channel: &Channel, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::WriteSegment {
                    name,
                    bytes,
                    duration_ms,
                    key,
                } => {
                    let meta = SegmentMeta {
                        duration_ms,
                        init: None,
                        key: channel.segment_key(key),
                    };
                    (self.disk).write_segment(&channel.user, DiskFile::Ts(name), bytes, meta)
                }
                Effect::WritePlaylist { body } => {
                    self.disk.write(&channel.user, DiskFile::Playlist, body)
                }
                Effect::DeleteSegment { name } => {
                    self.disk.delete(&channel.user, DiskFile::Ts(name))
                }
                Effect::RemoveChannel => self.remove(channel),
            }
        }
    }

    /// Forgets an expired channel and its files, unless a publish reopened it meanwhile.
    fn remove(&self, channel: &Channel) {
        let mut channels = self.channels();
        let current = channels
            .get(&channel.user)
            .is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), channel) && !c.state().is_publishing());
        if current {
            channels.remove(&channel.user);
            drop(channels);
            self.disk.remove_channel(&channel.user);
            info!(user = %channel.user, "finished stream's HLS output removed");
        }
    }

    /// Opens (or reopens) `user`'s channel for a publish; returns it and the publish's generation.
    fn open_channel(&self, user: &Username, private: bool) -> (Arc<Channel>, u64) {
        let mut channels = self.channels();
        // A publish of the other kind (or after a withdrawal) starts from nothing: a private
        // publish must not list what the last one published in the clear, nor a public one what
        // was encrypted.
        let stale = channels.get(user).is_some_and(|c| {
            (c.keys().is_some() != private || c.withdrawn.load(Ordering::Relaxed))
                && !c.state().is_publishing()
        });
        if stale {
            channels.remove(user);
            self.disk.remove_channel(user);
        }
        let channel = channels.entry(user.clone()).or_insert_with(|| {
            Arc::new(Channel {
                user: user.clone(),
                disk_failing: AtomicBool::new(false),
                state: Mutex::new(ChannelState::new(self.config)),
                ll: (self.format == HlsFormat::Cmaf).then(|| {
                    LlChannel::new(LlChannelState::new(
                        LlConfig {
                            target_s: self.config.target_s,
                            part_target_us: self.part_target.as_micros() as u64,
                            window: self.config.window,
                        },
                        self.config.retire_grace_ms,
                    ))
                }),
                keys: Mutex::new(None),
                withdrawn: AtomicBool::new(false),
            })
        });
        channel.withdrawn.store(false, Ordering::Relaxed);
        // Fresh keys for every private publish; a public one drops the last publish's keys (its
        // segments were under `/private/` and are no longer served).
        *channel.keys() = private.then(|| KeyRing::new(self.key_rotation, now_ms()));
        let generation = channel.state().begin_publish();
        if let Some(ll) = &channel.ll {
            ll.begin_publish();
        }
        (Arc::clone(channel), generation)
    }

    fn list(
        &self,
        channel: &Channel,
        id: SegmentId,
        name: Option<SegmentName>,
        segment: Segment,
        on_disk: bool,
    ) {
        let effects = channel.state().list(id, name, segment, on_disk, now_ms());
        self.carry_out(channel, effects);
    }

    fn end(&self, channel: &Channel, generation: u64) {
        let effects = channel.state().end_playlist(generation, now_ms());
        self.carry_out(channel, effects);
    }

    fn apply(&self, event: DiskEvent) {
        let user = match &event {
            DiskEvent::Written { user, .. }
            | DiskEvent::Finished { user, .. }
            | DiskEvent::Lost { user, .. }
            | DiskEvent::Health { user, .. } => user,
        };
        let Some(channel) = self.channel(user) else {
            return; // removed meanwhile
        };
        match event {
            DiskEvent::Written { name, .. } => channel.state().written(name),
            DiskEvent::Finished {
                id,
                name,
                segment,
                on_disk,
                end_after,
                ..
            } => {
                self.list(&channel, id, Some(name), segment, on_disk);
                if end_after {
                    self.end(&channel, id.generation);
                }
            }
            DiskEvent::Lost { id, end_after, .. } => {
                warn!(user = %channel.user, "a segment was lost to a disk failure; the playlist continues after a discontinuity");
                if end_after {
                    self.end(&channel, id.generation);
                }
            }
            DiskEvent::Health { failing, .. } => {
                channel.disk_failing.store(failing, Ordering::Relaxed)
            }
        }
    }

    /// Deletes retired segments after their grace period, and finished channels after the
    /// cleanup delay (unless their user went live again).
    fn tidy(&self, now: i64) {
        let channels: Vec<Arc<Channel>> = self.channels().values().cloned().collect();
        for channel in channels {
            self.tidy_ll(&channel, now);
            let effects = channel.state().tidy(now);
            self.carry_out(&channel, effects);
        }
    }
}

/// Applies what the disk reports until it stops.
async fn apply_disk_events(output: Arc<HlsOutput>, mut events: mpsc::UnboundedReceiver<DiskEvent>) {
    while let Some(event) = events.recv().await {
        output.apply(event);
        output.events_applied.fetch_add(1, Ordering::Release);
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
    id: SegmentId,
    /// Write the open segment to disk while it is made (the window is not kept in memory).
    write_while_made: bool,
    /// Sizes of the last segments closed, as many as the window lists, and their sum (checked on
    /// every frame).
    recent_bytes: VecDeque<u64>,
    recent_total: u64,
}

impl HlsSink {
    fn close(&mut self, segment: Segment, end_after: bool) {
        let id = self.id;
        self.id.seq += 1;
        if segment.streamed == 0 {
            let segment = self.encrypted(segment);
            self.output.list(&self.channel, id, None, segment, false);
            if end_after {
                self.output.end(&self.channel, id.generation);
            }
            return;
        }
        let name = self.channel.state().reserve_name(segment.start_wall_ms);
        let user = &self.channel.user;
        if !self.output.disk.finish(user, id, name, segment, end_after) {
            warn!(user = %user, "HLS disk writer is stalled; a segment written while made was lost");
            if end_after {
                self.output.end(&self.channel, id.generation);
            }
        }
    }

    /// A private stream's segment, encrypted whole under the ring's next key (a private publish
    /// never streams its open segment to disk, so `data` is the whole segment).
    fn encrypted(&self, mut segment: Segment) -> Segment {
        if let Some(ring) = self.channel.keys().as_mut() {
            debug_assert_eq!(segment.streamed, 0);
            let key = ring.next_ts_segment(now_ms());
            segment.data = Bytes::from(boltstream_hls::encrypt::encrypt(
                &key.key,
                &key.tag.iv,
                &segment.data,
            ));
            segment.key = Some(key.tag);
        }
        segment
    }

    /// Hands the open segment's bytes so far to the disk, when it is keeping up.
    fn write_open(&mut self) {
        if !self.write_while_made
            || self.packager.open_len() < CHUNK
            || self.channel.disk_failing.load(Ordering::Relaxed)
        {
            return;
        }
        let packager = &mut self.packager;
        self.output
            .disk
            .append(&self.channel.user, self.id, || packager.take_open());
    }

    /// Refuses a stream whose window (the segments listed and the open one) passed its bound in
    /// bytes: segments within their own bound can still add up past what one stream may hold.
    fn check_window(&mut self, closed: Option<u64>) -> Result<(), MediaError> {
        if let Some(size) = closed {
            if self.recent_bytes.len() == self.output.config.window {
                self.recent_total -= self.recent_bytes.pop_front().unwrap_or(0);
            }
            self.recent_bytes.push_back(size);
            self.recent_total += size;
        }
        let held = self.recent_total + self.packager.open_total();
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
        self.write_open();
        Ok(())
    }

    fn cut_due_in_ms(&self) -> Option<i64> {
        self.packager.cut_due_in_ms()
    }

    fn finish(&mut self, wall_ms: i64) {
        self.channel.state().mark_ended(self.id.generation, wall_ms);
        match self.packager.finish() {
            Some(segment) => self.close(segment, true),
            None => self.output.end(&self.channel, self.id.generation),
        }
    }
}

impl HlsOutput {
    /// The packaging sink of a publish of `user`.
    fn open_sink(self: &Arc<Self>, user: &Username, private: bool) -> Box<dyn MediaSink> {
        let (channel, generation) = self.open_channel(user, private);
        if channel.ll.is_some() {
            return Box::new(LlSink::new(Arc::clone(self), channel, generation));
        }
        let mut packager = Packager::new(self.config.target_s * 1000).with_limits(self.limits);
        // A private segment is encrypted whole before any byte of it is written.
        let write_while_made = !self.config.keep_in_memory && !private;
        if write_while_made {
            packager.stream_in_chunks(CHUNK_CAPACITY);
        }
        Box::new(HlsSink {
            packager,
            channel,
            output: Arc::clone(self),
            id: SegmentId { generation, seq: 0 },
            write_while_made,
            recent_bytes: VecDeque::with_capacity(self.config.window),
            recent_total: 0,
        })
    }
}

impl SinkFactory for Arc<HlsOutput> {
    fn open(&self, user: &Username, spec: &PublishSpec) -> Box<dyn MediaSink> {
        let sink = self.open_sink(user, spec.private);
        let began_ms = now_ms();
        let start = spec
            .record
            .then(|| (self.recordings).begin(user, &spec.title, began_ms, spec.private))
            .flatten();
        let Some(start) = start else {
            return sink;
        };
        self.disk.record_start(user, start);
        Box::new(RecordedSink {
            inner: sink,
            output: Arc::clone(self),
            user: user.clone(),
            id: u64::try_from(began_ms).unwrap_or(0),
        })
    }
}

/// A recorded publish's sink: the recording ends after the publish's last segment is written.
struct RecordedSink {
    inner: Box<dyn MediaSink>,
    output: Arc<HlsOutput>,
    user: Username,
    id: u64,
}

impl MediaSink for RecordedSink {
    fn push(&mut self, media: Media, wall_ms: i64) -> Result<(), MediaError> {
        self.inner.push(media, wall_ms)
    }

    fn finish(&mut self, wall_ms: i64) {
        self.inner.finish(wall_ms);
        self.output.disk.record_end(&self.user, wall_ms);
        self.output.recordings.ended(&self.user, self.id);
    }

    fn cut_due_in_ms(&self) -> Option<i64> {
        self.inner.cut_due_in_ms()
    }
}
