//! One live channel's state across its publishes, as a state machine: the caller feeds it events
//! (a publish began, a segment closed, a file was written, the publish ended, time passed) with the
//! wall clock as an argument, and carries out the [`Effect`]s it returns (write this file, delete
//! that one). No locks, files or tasks here, so every rule — names never reused, stale segments
//! of an earlier publish dropped, retired segments deleted after a grace, a finished channel
//! removed after a delay — is tested without a disk.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::packager::Segment;
use crate::playlist::PlaylistWindow;
pub use crate::playlist::SegmentName;

/// Which segment of which publish: orders segments listed out of turn (a segment written while it
/// was made is listed when its file is complete) against those listed directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentId {
    /// Counts publishes to the channel.
    pub generation: u64,
    /// Counts segments within the publish.
    pub seq: u64,
}

/// How a channel behaves.
#[derive(Clone, Copy, Debug)]
pub struct ChannelConfig {
    /// EXT-X-TARGETDURATION to start from, in seconds.
    pub target_s: u64,
    /// Segments listed.
    pub window: usize,
    /// Keep listed segments' bytes in memory while the channel has a publisher, even once they
    /// are on disk.
    pub keep_in_memory: bool,
    /// How long a segment that left the window stays on disk for players a little behind.
    pub retire_grace_ms: i64,
    /// How long a finished channel's files stay.
    pub cleanup_after_ms: i64,
}

/// A file operation the caller carries out, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Write a finished segment's bytes to its file (then report [`ChannelState::written`]).
    WriteSegment {
        /// The segment.
        name: SegmentName,
        /// Its bytes.
        bytes: Bytes,
        /// Its duration (a recording logs it).
        duration_ms: u64,
        /// Its key, when encrypted (a recording logs it).
        key: Option<crate::encrypt::KeyTag>,
    },
    /// Write the playlist file.
    WritePlaylist {
        /// The playlist text.
        body: Bytes,
    },
    /// Delete a segment's file.
    DeleteSegment {
        /// The segment.
        name: SegmentName,
    },
    /// The channel is finished and expired: remove its directory and forget it.
    RemoveChannel,
}

/// The playlist as served.
#[derive(Clone, Debug)]
pub struct Playlist {
    /// The text.
    pub body: Bytes,
    /// Strong validator: changes whenever the body does.
    pub etag: String,
    /// Unix ms of the last change.
    pub modified_ms: i64,
}

struct Listed {
    /// Unix ms it was completed.
    modified_ms: i64,
    /// Its file is written.
    on_disk: bool,
}

/// See the module documentation.
pub struct ChannelState {
    config: ChannelConfig,
    window: PlaylistWindow,
    playlist: Option<Playlist>,
    version: u64,
    /// Segments that left the window, with when: deleted after the grace.
    retired: VecDeque<(i64, SegmentName)>,
    listed: HashMap<SegmentName, Listed>,
    publishing: bool,
    ended_at: Option<i64>,
    generation: u64,
    /// The last segment of this generation listed.
    last_listed: Option<u64>,
}

impl ChannelState {
    /// A channel with nothing listed yet.
    pub fn new(config: ChannelConfig) -> Self {
        Self {
            window: PlaylistWindow::new(config.target_s, config.window),
            config,
            playlist: None,
            version: 0,
            retired: VecDeque::new(),
            listed: HashMap::new(),
            publishing: false,
            ended_at: None,
            generation: 0,
            last_listed: None,
        }
    }

    /// A publish begins; returns its generation. It continues this channel's playlist after a
    /// discontinuity, and makes every segment of an earlier publish still on its way stale.
    pub fn begin_publish(&mut self) -> u64 {
        self.window.begin_publish();
        self.publishing = true;
        self.ended_at = None;
        self.generation += 1;
        self.last_listed = None;
        self.generation
    }

    /// The name of a segment that starts at `start_wall_ms`, before it is listed (a segment
    /// written while it is made needs its file name first).
    pub fn reserve_name(&mut self, start_wall_ms: i64) -> SegmentName {
        self.window.reserve_name(start_wall_ms)
    }

    /// Lists segment `id` at `now`: under `name` when it was reserved (and then `on_disk`
    /// says whether its file is complete and its `data` empty), else under a new name, its bytes
    /// to be written. A segment of an earlier publish, or older than one already listed, is
    /// dropped (its file deleted); one listed after a gap follows a discontinuity.
    pub fn list(
        &mut self,
        id: SegmentId,
        name: Option<SegmentName>,
        mut segment: Segment,
        on_disk: bool,
        now: i64,
    ) -> Vec<Effect> {
        let stale =
            self.generation != id.generation || self.last_listed.is_some_and(|l| id.seq <= l);
        if stale {
            return match name {
                Some(name) if on_disk => vec![Effect::DeleteSegment { name }],
                _ => Vec::new(),
            };
        }
        if id.seq != self.last_listed.map_or(0, |l| l + 1) {
            segment.discontinuity = true;
        }
        self.last_listed = Some(id.seq);
        let name = name.unwrap_or_else(|| self.reserve_name(segment.start_wall_ms));
        let evicted = self.window.push_named(segment, name);
        let (bytes, duration_ms, key) = {
            let entry = self.window.entries().last().expect("just pushed");
            (entry.data.clone(), entry.duration_ms, entry.key)
        };
        self.listed.insert(
            name,
            Listed {
                modified_ms: now,
                on_disk,
            },
        );
        for gone in evicted {
            let gone = gone.name;
            self.listed.remove(&gone);
            self.retired.push_back((now, gone));
        }
        let mut effects = Vec::with_capacity(2);
        if !on_disk {
            effects.push(Effect::WriteSegment {
                name,
                bytes,
                duration_ms,
                key,
            });
        }
        effects.push(Effect::WritePlaylist {
            body: self.render(now),
        });
        effects
    }

    /// A listed segment's file is complete: its bytes may leave memory once nobody publishes to
    /// the channel (or at once, when the window is not kept in memory).
    pub fn written(&mut self, name: SegmentName) {
        let Some(listed) = self.listed.get_mut(&name) else {
            return; // left the window meanwhile
        };
        listed.on_disk = true;
        if !self.config.keep_in_memory || !self.publishing {
            self.window.release(name);
        }
    }

    /// Publish `generation` ended at `now`; its playlist is ended by [`Self::end_playlist`], after
    /// its last segment. A no-op when a newer publish took the channel over.
    pub fn mark_ended(&mut self, generation: u64, now: i64) {
        if self.generation != generation {
            return;
        }
        self.publishing = false;
        self.ended_at = Some(now);
    }

    /// Ends the playlist of publish `generation`, unless the channel went live again meanwhile.
    /// A finished stream's viewers are few and its files are written, so its written segments
    /// leave memory (those that failed to write stay).
    pub fn end_playlist(&mut self, generation: u64, now: i64) -> Vec<Effect> {
        if self.generation != generation || self.publishing {
            return Vec::new();
        }
        self.window.end();
        for (name, listed) in &self.listed {
            if listed.on_disk {
                self.window.release(*name);
            }
        }
        if self.window.is_empty() {
            return Vec::new();
        }
        vec![Effect::WritePlaylist {
            body: self.render(now),
        }]
    }

    /// What is due at `now`: retired segments past their grace are deleted, and a finished
    /// channel past the cleanup delay is removed ([`Effect::RemoveChannel`] comes last).
    pub fn tidy(&mut self, now: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(&(at, name)) = self.retired.front() {
            if now - at < self.config.retire_grace_ms {
                break;
            }
            self.retired.pop_front();
            effects.push(Effect::DeleteSegment { name });
        }
        if self.is_expired(now) {
            effects.push(Effect::RemoveChannel);
        }
        effects
    }

    /// True when the channel is finished and past its cleanup delay.
    pub fn is_expired(&self, now: i64) -> bool {
        !self.publishing
            && self
                .ended_at
                .is_some_and(|t| now - t >= self.config.cleanup_after_ms)
    }

    fn render(&mut self, now: i64) -> Bytes {
        self.version += 1;
        let body = Bytes::from(self.window.render());
        self.playlist = Some(Playlist {
            body: body.clone(),
            etag: format!("\"{:x}-{}\"", now, self.version),
            modified_ms: now,
        });
        body
    }

    /// The playlist, once a segment is listed.
    pub fn playlist(&self) -> Option<&Playlist> {
        self.playlist.as_ref()
    }

    /// A listed segment's bytes while they are in memory, and when it was completed; `None` when
    /// it is not listed or its bytes left memory (it is then read from disk).
    pub fn segment(&self, name: SegmentName) -> Option<(Bytes, i64)> {
        let modified_ms = self.listed.get(&name)?.modified_ms;
        let body = self.window.find(name)?.data.clone();
        (!body.is_empty()).then_some((body, modified_ms))
    }

    /// Bytes of listed segments held in memory.
    pub fn bytes_in_memory(&self) -> usize {
        self.window.entries().map(|e| e.data.len()).sum()
    }

    /// True while a publish is running.
    pub fn is_publishing(&self) -> bool {
        self.publishing
    }

    /// The current publish's generation (0 before the first).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_140_000_000;

    fn config(keep_in_memory: bool) -> ChannelConfig {
        ChannelConfig {
            target_s: 2,
            window: 3,
            keep_in_memory,
            retire_grace_ms: 10_000,
            cleanup_after_ms: 60_000,
        }
    }

    fn segment(start: i64) -> Segment {
        Segment {
            data: Bytes::from(vec![7u8; 100]),
            duration_ms: 2000,
            start_wall_ms: start,
            discontinuity: false,
            streamed: 0,
            key: None,
        }
    }

    fn id(generation: u64, seq: u64) -> SegmentId {
        SegmentId { generation, seq }
    }

    #[test]
    fn listing_writes_the_segment_then_the_playlist_and_retires_what_leaves() {
        let mut ch = ChannelState::new(config(false));
        let g = ch.begin_publish();
        for seq in 0..4 {
            let effects = ch.list(id(g, seq), None, segment(T0 + seq as i64 * 2000), false, T0);
            assert!(matches!(
                &effects[..],
                [Effect::WriteSegment { .. }, Effect::WritePlaylist { .. }]
            ));
        }
        let text = String::from_utf8(ch.playlist().unwrap().body.to_vec()).unwrap();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:1"), "{text}");
        // The first left the window: deleted once its grace has passed, not before.
        assert!(ch.tidy(T0 + 9_999).is_empty());
        assert_eq!(
            ch.tidy(T0 + 10_000),
            vec![Effect::DeleteSegment {
                name: SegmentName(T0 as u64)
            }]
        );
    }

    #[test]
    fn an_earlier_publishs_late_segment_is_dropped_and_its_file_deleted() {
        let mut ch = ChannelState::new(config(false));
        let first = ch.begin_publish();
        let late = ch.reserve_name(T0);
        let second = ch.begin_publish();
        assert_eq!(
            ch.list(id(first, 0), Some(late), segment(T0), true, T0),
            vec![Effect::DeleteSegment { name: late }]
        );
        assert!(ch.playlist().is_none());
        // The new publish lists normally, and an out-of-order older segment is dropped too.
        assert_eq!(
            ch.list(id(second, 1), None, segment(T0), false, T0).len(),
            2
        );
        assert!(ch
            .list(id(second, 0), None, segment(T0), false, T0)
            .is_empty());
        let text = String::from_utf8(ch.playlist().unwrap().body.to_vec()).unwrap();
        assert!(text.contains("#EXT-X-DISCONTINUITY"), "a gap: {text}");
    }

    #[test]
    fn bytes_leave_memory_once_written_or_at_the_end() {
        for keep in [false, true] {
            let mut ch = ChannelState::new(config(keep));
            let g = ch.begin_publish();
            ch.list(id(g, 0), None, segment(T0), false, T0);
            let name = SegmentName(T0 as u64);
            assert!(ch.segment(name).is_some());
            ch.written(name);
            assert_eq!(ch.segment(name).is_some(), keep, "keep_in_memory={keep}");
            ch.mark_ended(g, T0 + 1);
            let effects = ch.end_playlist(g, T0 + 1);
            assert_eq!(effects.len(), 1);
            assert!(ch.segment(name).is_none(), "written bytes leave at the end");
            assert_eq!(ch.bytes_in_memory(), 0);
            let text = String::from_utf8(ch.playlist().unwrap().body.to_vec()).unwrap();
            assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        }
    }

    #[test]
    fn a_newer_publish_is_not_ended_by_the_old_one() {
        let mut ch = ChannelState::new(config(false));
        let old = ch.begin_publish();
        ch.list(id(old, 0), None, segment(T0), false, T0);
        let new = ch.begin_publish();
        ch.mark_ended(old, T0 + 5);
        assert!(ch.end_playlist(old, T0 + 5).is_empty());
        assert!(ch.is_publishing());
        assert!(!ch.is_expired(T0 + 1_000_000));
        ch.mark_ended(new, T0 + 10);
        assert!(!ch.end_playlist(new, T0 + 10).is_empty());
        assert!(!ch.is_expired(T0 + 59_000));
        assert_eq!(ch.tidy(T0 + 60_010).last(), Some(&Effect::RemoveChannel));
    }
}
