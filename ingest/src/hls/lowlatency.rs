//! The low-latency (CMAF) side of the HLS output: each channel's [`LlChannelState`] behind a lock
//! with a version other tasks can wait on, the sink a publish's media goes into when the output is
//! CMAF, and the waiting that blocking playlist reload and preload-hinted parts need.
//!
//! A held request is a future parked on a `watch` receiver — a few hundred bytes, no thread — and
//! wakes when the channel changes (a part, a segment end, the end of the publish), asks the pure
//! state again, and either answers or parks again until its deadline.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use boltstream_hls::cmaf::{Output, PartPackager};
use boltstream_hls::llchannel::{LlChannelState, LlEffect, PartLookup};
use boltstream_hls::llhls::Blocking;
use boltstream_hls::playlist::SegmentName;
use boltstream_shared::route::Directives;
use boltstream_shared::username::Username;
use bytes::Bytes;
use tokio::sync::watch;

use super::disk::{DiskFile, SegmentMeta};
use super::output::{Channel, HlsOutput};
use crate::clock::now_ms;
use crate::live::{Media, MediaError, MediaSink};

/// One channel's low-latency output.
pub struct LlChannel {
    state: Mutex<LlChannelState>,
    /// When this channel's state was made: versions restart with it (after a restart, or once a
    /// finished channel was removed), so entity tags carry it and never match an older playlist.
    epoch_ms: i64,
    /// Moves with every change of the state; held requests wait on it.
    version: watch::Sender<u64>,
}

impl LlChannel {
    /// An empty channel.
    pub fn new(state: LlChannelState) -> Self {
        Self {
            state: Mutex::new(state),
            epoch_ms: now_ms(),
            version: watch::Sender::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, LlChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A publish begins; its segments are in the clear until a key is set.
    pub fn begin_publish(&self) {
        let mut state = self.state();
        state.begin_publish();
        state.set_next_key(None);
    }

    /// Wakes the requests held on this channel.
    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Bytes held in memory.
    pub fn bytes_in_memory(&self) -> usize {
        self.state().bytes_in_memory()
    }

    /// Waits until `ready` says the state holds an answer, or `within` passed (`None`), or the
    /// channel was removed (`None`). Subscribes before looking, so no change is missed between
    /// a look and the wait.
    async fn wait_for<T>(
        &self,
        within: Duration,
        mut ready: impl FnMut(&LlChannelState) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.version.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(answer) = ready(&self.state()) {
                return Some(answer);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

/// How long a request is held before 503: three target durations (§6.2.5.2), as the playlist
/// states the target now (a GOP longer than the configured target makes it longer).
fn hold_limit(ll: &LlChannel) -> Duration {
    Duration::from_secs(3 * ll.state().target_duration_s())
}

/// What a low-latency playlist request gets.
pub enum LlPlaylist {
    /// The playlist (or its delta update).
    Ready {
        /// The playlist text.
        body: Bytes,
        /// Its entity tag: the channel's epoch and the playlist's version (and whether it is a
        /// delta update), so no two different playlists share one.
        etag: String,
    },
    /// Refused at once (400), with why.
    BadRequest(&'static str),
    /// Still not there after three target durations (503).
    Timeout,
}

impl HlsOutput {
    fn ll_channel(&self, user: &Username) -> Option<Arc<Channel>> {
        self.channel(user).filter(|c| c.ll.is_some())
    }

    /// A channel's low-latency playlist as `directives` ask for it: at once without `_HLS_msn`,
    /// else held until the asked-for segment or part is listed (§6.2.5.2). `None`: no such
    /// channel, no low-latency output, or nothing listed yet for a request that does not block.
    pub async fn ll_playlist(&self, user: &Username, directives: Directives) -> Option<LlPlaylist> {
        let channel = self.ll_channel(user)?;
        let ll = channel.ll.as_ref()?;
        if directives.msn.is_none() && !ll.state().has_parts() {
            // Nothing to play yet: not found, as the MPEG-TS output answers before its first
            // segment (a blocking request for the first part is held instead).
            return None;
        }
        let epoch = ll.epoch_ms;
        let render = |state: &LlChannelState| {
            let (full, version) = state.playlist();
            let (body, delta) = match directives.skip {
                Some(_) => (state.playlist_delta(), "-d"),
                None => (full, ""),
            };
            let etag = format!("\"ll-{epoch:x}-{version}{delta}\"");
            LlPlaylist::Ready { body, etag }
        };
        let hold = hold_limit(ll);
        let answer = ll
            .wait_for(hold, |state| {
                match state.blocking(directives.msn, directives.part) {
                    Blocking::Ready => Some(render(state)),
                    Blocking::BadRequest(why) => Some(LlPlaylist::BadRequest(why)),
                    Blocking::Wait => None,
                }
            })
            .await;
        Some(answer.unwrap_or(LlPlaylist::Timeout))
    }

    /// A part (`<segment>.<index>.m4s`): at once when it exists; held until it is complete when
    /// it is the one the preload hint names (then sent whole, at once); `None` otherwise.
    pub async fn ll_part(&self, user: &Username, name: SegmentName, index: usize) -> Option<Bytes> {
        let channel = self.ll_channel(user)?;
        let ll = channel.ll.as_ref()?;
        match ll.state().part(name, index) {
            PartLookup::Ready(bytes) => return Some(bytes),
            PartLookup::Missing => return None,
            PartLookup::Hinted => {}
        }
        ll.wait_for(hold_limit(ll), |state| match state.part(name, index) {
            PartLookup::Ready(bytes) => Some(Some(bytes)),
            PartLookup::Missing => Some(None),
            PartLookup::Hinted => None,
        })
        .await
        .flatten()
    }

    /// A complete CMAF segment while it is in memory.
    pub fn ll_segment(&self, user: &Username, name: SegmentName) -> Option<Bytes> {
        let channel = self.ll_channel(user)?;
        let bytes = channel.ll.as_ref()?.state().segment_bytes(name);
        bytes
    }

    /// An init section.
    pub fn ll_init(&self, user: &Username, id: u64) -> Option<Bytes> {
        let channel = self.ll_channel(user)?;
        let bytes = channel.ll.as_ref()?.state().init_bytes(id);
        bytes
    }

    /// True when the channel's output is low-latency (CMAF).
    pub fn is_low_latency(&self, user: &Username) -> bool {
        self.ll_channel(user).is_some()
    }

    /// True once the channel's low-latency output has a whole segment to play (see
    /// `LlChannelState::has_segments`); the playlist itself is served from the first part.
    pub fn ll_playable(&self, user: &Username) -> bool {
        self.ll_channel(user)
            .and_then(|c| c.ll.as_ref().map(|ll| ll.state().has_segments()))
            .unwrap_or(false)
    }

    /// Carries out what a low-latency channel decided, in order.
    fn carry_out_ll(&self, channel: &Channel, effects: Vec<LlEffect>) {
        let user = &channel.user;
        for effect in effects {
            match effect {
                LlEffect::WriteSegment {
                    name,
                    bytes,
                    duration_ms,
                    init,
                    key,
                } => {
                    let meta = SegmentMeta {
                        duration_ms,
                        init,
                        key: channel.segment_key(key),
                    };
                    self.disk
                        .write_segment(user, DiskFile::Fmp4(name), bytes, meta)
                }
                LlEffect::WriteInit { id, bytes } => {
                    self.disk.write(user, DiskFile::Init(id), bytes)
                }
                LlEffect::WritePlaylist { body } => self.disk.write(user, DiskFile::Playlist, body),
                LlEffect::DeleteSegment { name } => self.disk.delete(user, DiskFile::Fmp4(name)),
                LlEffect::DeleteInit { id } => self.disk.delete(user, DiskFile::Init(id)),
            }
        }
    }

    /// The janitor's turn for a low-latency channel.
    pub(super) fn tidy_ll(&self, channel: &Channel, now: i64) {
        let Some(ll) = channel.ll.as_ref() else {
            return;
        };
        let effects = ll.state().tidy(now);
        if !effects.is_empty() {
            self.carry_out_ll(channel, effects);
        }
    }

    /// Ends the low-latency playlist of publish `generation` (ENDLIST, held requests answered),
    /// unless a newer publish took the channel over.
    fn end_ll(&self, channel: &Channel, generation: u64) {
        let Some(ll) = channel.ll.as_ref() else {
            return;
        };
        if channel.state().generation() != generation {
            return;
        }
        let effects = ll.state().end();
        self.carry_out_ll(channel, effects);
        ll.changed();
    }
}

/// The sink of one publish when the output is CMAF: part packager in, low-latency channel out.
pub(super) struct LlSink {
    packager: PartPackager,
    channel: Arc<Channel>,
    output: Arc<HlsOutput>,
    generation: u64,
    /// Sizes of the last complete segments, as many as the window lists, their sum, and the
    /// open segment's bytes so far: the window's bound in bytes, as for the TS output.
    recent_bytes: VecDeque<u64>,
    recent_total: u64,
    open_bytes: u64,
    /// A private publish (its channel holds keys): only then are keys looked at per output.
    private: bool,
}

impl LlSink {
    /// A sink for publish `generation` of `channel`.
    pub(super) fn new(output: Arc<HlsOutput>, channel: Arc<Channel>, generation: u64) -> Self {
        let packager = PartPackager::new(
            output.config.target_s * 1000,
            output.part_target.as_millis() as u64,
        )
        .with_limits(output.limits);
        let window = output.config.window;
        let private = channel.keys().is_some();
        Self {
            packager,
            channel,
            output,
            generation,
            recent_bytes: VecDeque::with_capacity(window),
            recent_total: 0,
            open_bytes: 0,
            private,
        }
    }

    /// Applies what the packager made, unless a newer publish took the channel over.
    fn apply(&mut self, outputs: Vec<Output>) {
        let channel = Arc::clone(&self.channel);
        let Some(ll) = channel.ll.as_ref() else {
            return;
        };
        if outputs.is_empty() || channel.state().generation() != self.generation {
            return;
        }
        let now = now_ms();
        let mut effects = Vec::new();
        {
            let mut keys = self.private.then(|| channel.keys());
            let mut state = ll.state();
            for output in outputs {
                self.count(&output);
                // Each segment of a private publish takes the ring's next key as it begins.
                let ring = keys.as_mut().and_then(|k| k.as_mut());
                if let (Output::Part(part), Some(ring)) = (&output, ring) {
                    if part.first {
                        state.set_next_key(Some(ring.next_segment(now)));
                    }
                }
                effects.extend(state.apply(output, now));
            }
        }
        self.output.carry_out_ll(&channel, effects);
        ll.changed();
    }

    fn count(&mut self, output: &Output) {
        match output {
            Output::Part(part) => self.open_bytes += part.data.len() as u64,
            Output::SegmentEnd(_) => {
                if self.recent_bytes.len() == self.output.config.window {
                    self.recent_total -= self.recent_bytes.pop_front().unwrap_or(0);
                }
                let size = std::mem::take(&mut self.open_bytes);
                self.recent_bytes.push_back(size);
                self.recent_total += size;
            }
            Output::Init(_) => {}
        }
    }
}

impl MediaSink for LlSink {
    fn push(&mut self, media: Media, wall_ms: i64) -> Result<(), MediaError> {
        let outputs = self.packager.push(&media, wall_ms)?;
        self.apply(outputs);
        let held = self.recent_total + self.open_bytes;
        if held > self.output.max_window_bytes {
            return Err(MediaError::LimitExceeded(format!(
                "the stream's window passed {} bytes (the limit for the highest allowed bitrate)",
                self.output.max_window_bytes
            )));
        }
        Ok(())
    }

    fn finish(&mut self, wall_ms: i64) {
        self.channel.state().mark_ended(self.generation, wall_ms);
        let outputs = self.packager.finish();
        self.apply(outputs);
        self.output.end_ll(&self.channel, self.generation);
    }
}
