//! Live publishes: the registry the server, the HTTP side and the operator watchdog consult, and the
//! interface an accepted publish's media flows through ([`MediaSink`]). The RTMP side knows nothing of
//! HLS; the HLS packager knows nothing of RTMP or keys — it only ever sees a [`Username`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use boltstream_hls::media::{Media, MediaError, Metadata};
use boltstream_shared::username::Username;
use tokio_util::sync::CancellationToken;

use crate::store::PublishId;

/// Consumer of one publish's media. Called inline by the connection task, so it must not block:
/// slow work (disk) belongs on another task.
pub trait MediaSink: Send {
    /// Takes the next unit of media, received at `wall_ms` (Unix ms).
    fn push(&mut self, media: Media, wall_ms: i64) -> Result<(), MediaError>;
    /// The publish ended (cleanly or not); flush and mark the output finished.
    fn finish(&mut self, wall_ms: i64);
    /// Media milliseconds from the newest unit pushed until the one expected to complete the next
    /// piece of output (negative: overdue), so the reader is awake when it arrives. `None`: no
    /// output is waiting on timing.
    fn cut_due_in_ms(&self) -> Option<i64> {
        None
    }
}

/// What a publish's outputs are told as it starts, from the channel's settings at that moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishSpec {
    /// Encrypted, under `/private/`; never pictured or recorded in the clear.
    pub private: bool,
    /// The streamer keeps recordings.
    pub record: bool,
    /// The channel's title as the publish starts (a recording keeps it).
    pub title: String,
}

/// Creates a sink for each accepted publish.
pub trait SinkFactory: Send + Sync {
    /// A new sink for `user`'s publish.
    fn open(&self, user: &Username, spec: &PublishSpec) -> Box<dyn MediaSink>;
}

/// A sink that drops everything: for servers without HLS output (tests of the RTMP side alone).
pub struct DiscardSink;

impl MediaSink for DiscardSink {
    fn push(&mut self, _media: Media, _wall_ms: i64) -> Result<(), MediaError> {
        Ok(())
    }
    fn finish(&mut self, _wall_ms: i64) {}
}

impl SinkFactory for DiscardSink {
    fn open(&self, _user: &Username, _spec: &PublishSpec) -> Box<dyn MediaSink> {
        Box::new(DiscardSink)
    }
}

/// Counters a connection updates as media arrives; read by the stats reporter. Relaxed atomics:
/// they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Counters {
    /// Media payload bytes.
    pub bytes: AtomicU64,
    /// Video frames (AVC NALU packets, not sequence headers).
    pub video_frames: AtomicU64,
    /// Audio frames.
    pub audio_frames: AtomicU64,
    /// Keyframes.
    pub keyframes: AtomicU64,
    /// Milliseconds between the last two keyframes.
    pub keyframe_interval_ms: AtomicU64,
    /// What onMetaData said.
    pub metadata: Mutex<Metadata>,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Accounts one media unit. `last_keyframe` is the connection's own memory of the previous
    /// keyframe timestamp.
    pub fn account(&self, media: &Media, last_keyframe: &mut Option<u32>) {
        match media {
            Media::Video { timestamp, data } => {
                Self::add(&self.bytes, data.len() as u64);
                if let Some(keyframe) = boltstream_hls::flv::peek_video_frame(data) {
                    Self::add(&self.video_frames, 1);
                    if keyframe {
                        Self::add(&self.keyframes, 1);
                        if let Some(prev) = last_keyframe.replace(*timestamp) {
                            self.keyframe_interval_ms
                                .store(u64::from(timestamp.wrapping_sub(prev)), Ordering::Relaxed);
                        }
                    }
                }
            }
            Media::Audio { data, .. } => {
                Self::add(&self.bytes, data.len() as u64);
                Self::add(&self.audio_frames, 1);
            }
            Media::Metadata(meta) => {
                *self.metadata.lock().unwrap_or_else(|p| p.into_inner()) = meta.clone();
            }
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One live publish.
#[derive(Debug)]
pub struct LiveStream {
    /// The channel.
    pub user: Username,
    /// The store's id of this publish.
    pub publish_id: PublishId,
    /// Unix ms when it went live.
    pub since_ms: i64,
    /// Cancelled to drop the publisher (ban, admin stop, shutdown).
    pub cancel: CancellationToken,
    /// Live statistics.
    pub counters: Counters,
}

/// The live publishes of this process, by channel.
#[derive(Debug, Default)]
pub struct Registry {
    streams: Mutex<HashMap<Username, Arc<LiveStream>>>,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Username, Arc<LiveStream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a publish the store has just taken live. The database lets a new publish in
    /// only once the old one is no longer live there (its key was rotated), so a publish it
    /// replaces here is dropped.
    pub fn insert(&self, stream: Arc<LiveStream>) {
        if let Some(old) = self.map().insert(stream.user.clone(), stream) {
            tracing::info!(user = %old.user, reason = "its stream key was rotated", "dropping publisher");
            old.cancel.cancel();
        }
    }

    /// Removes a publish, unless a newer one has replaced it.
    pub fn remove(&self, user: &Username, publish_id: PublishId) {
        let mut map = self.map();
        if map.get(user).is_some_and(|s| s.publish_id == publish_id) {
            map.remove(user);
        }
    }

    /// The live publish of a channel.
    pub fn get(&self, user: &Username) -> Option<Arc<LiveStream>> {
        self.map().get(user).cloned()
    }

    /// All live publishes.
    pub fn list(&self) -> Vec<Arc<LiveStream>> {
        self.map().values().cloned().collect()
    }

    /// Drops a channel's publisher if it is `publish_id`; true if one was signalled.
    pub fn cancel(&self, user: &str, publish_id: PublishId) -> bool {
        let Ok(user) = Username::parse(user) else {
            return false;
        };
        match self.map().get(&user) {
            Some(stream) if stream.publish_id == publish_id => {
                stream.cancel.cancel();
                true
            }
            _ => false,
        }
    }
}
