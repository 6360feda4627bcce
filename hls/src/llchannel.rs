//! One low-latency channel's state, as a state machine like [`crate::channel`]'s: the caller
//! feeds it what the CMAF packager made (init sections, parts, segment ends) and the wall clock,
//! and carries out the [`LlEffect`]s it returns. It keeps what players fetch while it is listed —
//! parts, whole segments (their parts concatenated), init sections — in memory, keeps a segment's
//! parts downloadable for three target durations after they leave the playlist (§6.2.2), and
//! counts a version that moves with every change, so held blocking requests know when to look
//! again.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::cmaf::{Output, Part, SegmentEnd};
use crate::encrypt::{encrypt, CbcStream, MediaKey, SegmentKey};
use crate::llhls::{Blocking, LlConfig, LlWindow, PartInfo};
use crate::playlist::SegmentName;

/// A file operation the caller carries out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LlEffect {
    /// Write a complete segment (`<name>.m4s`, its parts concatenated).
    WriteSegment {
        /// The segment.
        name: SegmentName,
        /// Its bytes.
        bytes: Bytes,
        /// Its duration (a recording logs it).
        duration_ms: u64,
        /// The init section it needs.
        init: Option<u64>,
        /// Its key, when encrypted (a recording logs it).
        key: Option<crate::encrypt::KeyTag>,
    },
    /// Write an init section (`init<id>.mp4`).
    WriteInit {
        /// Its id: from the wall clock and never reused, like segment names, because an edge
        /// caches it as immutable — a restarted server's first init section must not share a URL
        /// with an earlier one.
        id: u64,
        /// Its bytes.
        bytes: Bytes,
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
    /// Delete an init section's file (no segment needs it any more).
    DeleteInit {
        /// Its id.
        id: u64,
    },
}

/// A part, as a request for it finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartLookup {
    /// Complete: its bytes.
    Ready(Bytes),
    /// The part the preload hint names: not yet complete.
    Hinted,
    /// Neither listed nor hinted (or no longer fetchable).
    Missing,
}

/// What players fetch of one segment.
struct Held {
    parts: Vec<Bytes>,
    /// The whole segment once complete.
    whole: Option<Bytes>,
    /// True when parts and whole are encrypted apart (each part alone, the whole segment as one
    /// stream), so the parts are not views into the whole.
    encrypted: bool,
}

/// See the module documentation.
pub struct LlChannelState {
    window: LlWindow,
    target_ms: i64,
    held: HashMap<SegmentName, Held>,
    /// Segments that left the playlist, with when: their parts stay fetchable for three target
    /// durations, their files until `retire_grace_ms`.
    delisted: VecDeque<(i64, SegmentName)>,
    retire_grace_ms: i64,
    inits: HashMap<u64, Bytes>,
    /// Init sections no listed segment needs, with since when: kept for the retire grace like
    /// delisted segments' files, then forgotten — a publisher that changes its configuration
    /// again and again must not grow them without bound.
    unused_inits: VecDeque<(i64, u64)>,
    /// The current init section's id.
    init: Option<u64>,
    /// The open segment's name.
    open: Option<SegmentName>,
    /// The name the next segment gets, reserved when the last one ended: the preload hint
    /// already names its first part.
    next: Option<SegmentName>,
    pending_discontinuity: bool,
    last_name: u64,
    version: u64,
    playlist: Bytes,
    /// The key the next segment is encrypted with (a private stream), set by the caller.
    next_key: Option<MediaKey>,
    /// The open segment's key and its whole-segment ciphertext so far.
    open_cipher: Option<(SegmentKey, CbcStream)>,
}

impl LlChannelState {
    /// An empty channel; delisted segments' files are deleted after `retire_grace_ms`.
    pub fn new(config: LlConfig, retire_grace_ms: i64) -> Self {
        let window = LlWindow::new(config);
        let playlist = Bytes::from(window.render());
        Self {
            window,
            target_ms: config.target_s as i64 * 1000,
            held: HashMap::new(),
            delisted: VecDeque::new(),
            retire_grace_ms,
            inits: HashMap::new(),
            unused_inits: VecDeque::new(),
            init: None,
            open: None,
            next: None,
            pending_discontinuity: false,
            last_name: 0,
            version: 0,
            playlist,
            next_key: None,
            open_cipher: None,
        }
    }

    /// Encrypts the segments that begin from now on under `key` (`None`: in the clear). The
    /// caller picks keys and rotates them; this state only applies them.
    pub fn set_next_key(&mut self, key: Option<MediaKey>) {
        self.next_key = key;
    }

    /// A name forced to increase, from the wall clock (as the TS channel names segments).
    fn reserve_name(&mut self, now_ms: i64) -> SegmentName {
        self.last_name = (now_ms.max(0) as u64).max(self.last_name + 1);
        SegmentName(self.last_name)
    }

    /// A publish begins: its first segment follows a discontinuity if anything came before.
    pub fn begin_publish(&mut self) {
        if self.init.is_some() {
            self.pending_discontinuity = true;
        }
    }

    /// Applies what the packager made at `now_ms`; returns the file operations, in order.
    pub fn apply(&mut self, output: Output, now_ms: i64) -> Vec<LlEffect> {
        let mut effects = Vec::new();
        match output {
            Output::Init(bytes) => {
                let id = self.reserve_name(now_ms).0;
                if self.init.replace(id).is_some() {
                    self.pending_discontinuity = true;
                }
                self.inits.insert(id, bytes.clone());
                effects.push(LlEffect::WriteInit { id, bytes });
                return effects;
            }
            Output::Part(part) => self.take_part(part, now_ms),
            Output::SegmentEnd(end) => {
                if !self.end_segment(&end, now_ms, &mut effects) {
                    return effects;
                }
            }
        }
        self.changed(&mut effects);
        effects
    }

    /// The open segment is complete: its whole bytes are written, and the next one is named.
    /// False when no segment was open (nothing changed).
    fn end_segment(&mut self, end: &SegmentEnd, now_ms: i64, effects: &mut Vec<LlEffect>) -> bool {
        let Some(name) = self.open.take() else {
            return false;
        };
        let next = self.reserve_name(now_ms);
        let cipher = self.open_cipher.take();
        let key = cipher.as_ref().map(|(k, _)| k.tag);
        // The segment is its parts in one buffer; the parts then become views into it,
        // so a complete segment is held once, not twice. Encrypted, it is its own
        // ciphertext (see `crate::encrypt`).
        let whole = self.held.get_mut(&name).map(|held| {
            if let Some((_, stream)) = cipher {
                let bytes = Bytes::from(stream.finish());
                held.whole = Some(bytes.clone());
                return bytes;
            }
            let mut bytes = BytesMut::with_capacity(held.parts.iter().map(Bytes::len).sum());
            held.parts.iter().for_each(|p| bytes.extend_from_slice(p));
            let bytes = bytes.freeze();
            let mut at = 0;
            for part in &mut held.parts {
                let len = part.len();
                *part = bytes.slice(at..at + len);
                at += len;
            }
            held.whole = Some(bytes.clone());
            bytes
        });
        if let Some(bytes) = whole {
            effects.push(LlEffect::WriteSegment {
                name,
                bytes,
                duration_ms: end.duration_us / 1000,
                init: self.init,
                key,
            });
        }
        debug_assert_eq!(
            end.parts as usize,
            self.held.get(&name).map_or(0, |h| h.parts.len())
        );
        self.next = Some(next);
        for gone in self.window.end_segment(Some(next)) {
            self.delisted.push_back((now_ms, gone.name));
        }
        true
    }

    fn take_part(&mut self, part: Part, now_ms: i64) {
        if part.first {
            let name = match self.next.take() {
                Some(name) => name,
                None => self.reserve_name(part.segment_start_wall_ms.min(now_ms)),
            };
            let discontinuity = std::mem::take(&mut self.pending_discontinuity);
            let start = part.segment_start_wall_ms;
            let key = self.next_key.map(|k| k.for_segment(name.0));
            self.window.begin_segment(
                name,
                start,
                discontinuity,
                self.init.unwrap_or(0),
                key.map(|k| k.tag),
            );
            self.open_cipher = key.map(|k| (k, CbcStream::new(&k.key, &k.tag.iv)));
            self.held.insert(
                name,
                Held {
                    parts: Vec::new(),
                    whole: None,
                    encrypted: key.is_some(),
                },
            );
            self.open = Some(name);
        }
        let Some(name) = self.open else {
            return;
        };
        self.window.push_part(PartInfo {
            duration_us: part.duration_us,
            independent: part.independent,
        });
        let data = match &mut self.open_cipher {
            Some((key, whole)) => {
                whole.push(&part.data);
                Bytes::from(encrypt(&key.key, &key.tag.iv, &part.data))
            }
            None => part.data,
        };
        if let Some(held) = self.held.get_mut(&name) {
            held.parts.push(data);
        }
    }

    fn changed(&mut self, effects: &mut Vec<LlEffect>) {
        self.version += 1;
        self.playlist = Bytes::from(self.window.render());
        effects.push(LlEffect::WritePlaylist {
            body: self.playlist.clone(),
        });
    }

    /// The publish ended: the playlist gets ENDLIST, and every held request is answered.
    pub fn end(&mut self) -> Vec<LlEffect> {
        let mut effects = Vec::new();
        self.open = None;
        self.next = None;
        self.window.end();
        self.changed(&mut effects);
        effects
    }

    /// Forgets parts delisted for three target durations and deletes files of segments delisted
    /// for the retire grace.
    pub fn tidy(&mut self, now_ms: i64) -> Vec<LlEffect> {
        let mut effects = Vec::new();
        for (at, name) in &self.delisted {
            if now_ms - at > 3 * self.target_ms {
                self.held.remove(name);
            }
        }
        while let Some(&(at, name)) = self.delisted.front() {
            if now_ms - at <= self.retire_grace_ms {
                break;
            }
            self.delisted.pop_front();
            self.held.remove(&name);
            effects.push(LlEffect::DeleteSegment { name });
        }
        self.tidy_inits(now_ms, &mut effects);
        effects
    }

    fn tidy_inits(&mut self, now_ms: i64, effects: &mut Vec<LlEffect>) {
        let needed = |id: u64, window: &LlWindow, current: Option<u64>| {
            current == Some(id) || window.segments().any(|s| s.init == id)
        };
        for &id in self.inits.keys() {
            let noted = self.unused_inits.iter().any(|&(_, u)| u == id);
            if !noted && !needed(id, &self.window, self.init) {
                self.unused_inits.push_back((now_ms, id));
            }
        }
        while let Some(&(at, id)) = self.unused_inits.front() {
            if now_ms - at <= self.retire_grace_ms {
                break;
            }
            self.unused_inits.pop_front();
            if !needed(id, &self.window, self.init) {
                self.inits.remove(&id);
                effects.push(LlEffect::DeleteInit { id });
            }
        }
    }

    /// The playlist and its version (moves with every change).
    pub fn playlist(&self) -> (Bytes, u64) {
        (self.playlist.clone(), self.version)
    }

    /// The playlist as a delta update, for a request with `_HLS_skip` (see
    /// [`LlWindow::render_delta`]); rendered on demand, as few players ask for it.
    pub fn playlist_delta(&self) -> Bytes {
        Bytes::from(self.window.render_delta(true))
    }

    /// Whether a blocking request can be answered now (see [`LlWindow::blocking`]).
    pub fn blocking(&self, msn: Option<u64>, part: Option<u64>) -> Blocking {
        self.window.blocking(msn, part)
    }

    /// A part, while it is fetchable.
    pub fn part_bytes(&self, name: SegmentName, index: usize) -> Option<Bytes> {
        self.held.get(&name)?.parts.get(index).cloned()
    }

    /// A part as a request finds it: there, announced by the preload hint (the request is held
    /// until it is complete, §6.2.6), or neither.
    pub fn part(&self, name: SegmentName, index: usize) -> PartLookup {
        match self.part_bytes(name, index) {
            Some(bytes) => PartLookup::Ready(bytes),
            None if self.window.preload_hint() == Some(format!("{name}.{index}.m4s")) => {
                PartLookup::Hinted
            }
            None => PartLookup::Missing,
        }
    }

    /// Bytes held in memory: parts, whole segments and init sections.
    pub fn bytes_in_memory(&self) -> usize {
        let held: usize = self
            .held
            .values()
            .map(|h| match &h.whole {
                // Complete: the parts are views into the whole segment (unless encrypted).
                Some(whole) if !h.encrypted => whole.len(),
                whole => {
                    h.parts.iter().map(Bytes::len).sum::<usize>()
                        + whole.as_ref().map_or(0, Bytes::len)
                }
            })
            .sum();
        held + self.inits.values().map(Bytes::len).sum::<usize>()
    }

    /// EXT-X-TARGETDURATION now, in seconds.
    pub fn target_duration_s(&self) -> u64 {
        self.window.target_duration_s()
    }

    /// True once a part is listed: there is something to play.
    pub fn has_parts(&self) -> bool {
        self.window.segments().any(|s| !s.parts.is_empty())
    }

    /// True once a whole segment is listed. hls.js reports a playlist of parts alone as an
    /// empty level (and then stalls once), so the website starts its player from here.
    pub fn has_segments(&self) -> bool {
        self.window.segments().any(|s| s.duration_us.is_some())
    }

    /// True once the publish ended and the playlist carries EXT-X-ENDLIST.
    pub fn is_ended(&self) -> bool {
        self.window.is_ended()
    }

    /// A complete segment, while it is in memory.
    pub fn segment_bytes(&self, name: SegmentName) -> Option<Bytes> {
        self.held.get(&name)?.whole.clone()
    }

    /// An init section.
    pub fn init_bytes(&self, id: u64) -> Option<Bytes> {
        self.inits.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests;
