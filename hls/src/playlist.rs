//! A channel's live playlist window (RFC 8216 media playlist). Owned by the channel, not by a
//! publish, so a republish continues the same playlist with a discontinuity instead of restarting
//! media sequence numbers under the players' feet. Pure: rendering takes no clock.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};

use bytes::Bytes;

use crate::date::format_date_time;
use crate::packager::Segment;

/// A segment's name: the wall-clock ms its first frame arrived, forced to increase per channel
/// (like nginx-rtmp's `hls_fragment_naming system`), so a name is never reused — across
/// republishes and restarts too. The one place its file name is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName(pub u64);

impl SegmentName {
    /// `<n>.ts`.
    pub fn file_name(self) -> String {
        format!("{}.ts", self.0)
    }

    /// The name in a segment URL (without `.ts`); `None` for anything this server never names.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(SegmentName)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A segment listed in (or recently evicted from) the window.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Unique and increasing per channel.
    pub name: SegmentName,
    /// Media sequence number.
    pub sequence: u64,
    /// Duration in ms.
    pub duration_ms: u64,
    /// Wall clock of its first frame (Unix ms), for EXT-X-PROGRAM-DATE-TIME.
    pub start_wall_ms: i64,
    /// Preceded by EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    /// The bytes.
    pub data: Bytes,
    /// Its key, when encrypted.
    pub key: Option<crate::encrypt::KeyTag>,
}

/// The sliding window.
#[derive(Debug)]
pub struct PlaylistWindow {
    target_s: u64,
    window: usize,
    entries: VecDeque<Entry>,
    next_sequence: u64,
    discontinuity_sequence: u64,
    ended: bool,
    next_is_discontinuity: bool,
    last_name: SegmentName,
}

impl PlaylistWindow {
    /// A window of `window` segments with target duration `target_s`.
    pub fn new(target_s: u64, window: usize) -> Self {
        Self {
            target_s,
            window,
            entries: VecDeque::new(),
            next_sequence: 0,
            discontinuity_sequence: 0,
            ended: false,
            next_is_discontinuity: false,
            last_name: SegmentName(0),
        }
    }

    /// A new publish continues this playlist: its first segment follows a discontinuity.
    pub fn begin_publish(&mut self) {
        if !self.entries.is_empty() || self.next_sequence > 0 {
            self.next_is_discontinuity = true;
        }
        self.ended = false;
    }

    /// Appends a segment; returns the entries that left the window.
    pub fn push(&mut self, segment: Segment) -> Vec<Entry> {
        let name = self.reserve_name(segment.start_wall_ms);
        self.push_named(segment, name)
    }

    /// The name of a segment that starts at `start_wall_ms`, before it is listed (a segment
    /// written to disk while it is made needs its file name first). Names are wall-clock ms (like
    /// nginx-rtmp's `hls_fragment_naming system`), forced to increase, so a name is never reused —
    /// across republishes and restarts too, and also when a reserved segment never gets listed.
    pub fn reserve_name(&mut self, start_wall_ms: i64) -> SegmentName {
        let name = SegmentName((start_wall_ms.max(0) as u64).max(self.last_name.0 + 1));
        self.last_name = name;
        name
    }

    /// Appends a segment under a name from [`Self::reserve_name`]; returns the entries that left
    /// the window.
    pub fn push_named(&mut self, segment: Segment, name: SegmentName) -> Vec<Entry> {
        let rounded = (segment.duration_ms + 500) / 1000;
        self.target_s = self.target_s.max(rounded);
        self.entries.push_back(Entry {
            name,
            sequence: self.next_sequence,
            duration_ms: segment.duration_ms,
            start_wall_ms: segment.start_wall_ms,
            discontinuity: segment.discontinuity || std::mem::take(&mut self.next_is_discontinuity),
            data: segment.data,
            key: segment.key,
        });
        self.next_sequence += 1;
        let mut evicted = Vec::new();
        while self.entries.len() > self.window {
            let gone = self.entries.pop_front().expect("longer than the window");
            if gone.discontinuity {
                self.discontinuity_sequence += 1;
            }
            evicted.push(gone);
        }
        evicted
    }

    /// The publish ended: the playlist gets EXT-X-ENDLIST.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// True once the publish ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True when no segment is listed yet (no playlist is served before the first segment).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A listed segment by name.
    pub fn find(&self, name: SegmentName) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Drops a listed segment's bytes once they are safely on disk; [`Self::find`] still lists
    /// it, with empty `data`, so the origin knows to read the file instead.
    pub fn release(&mut self, name: SegmentName) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.name == name) {
            entry.data = Bytes::new();
        }
    }

    /// The listed segments, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The current target duration in seconds.
    pub fn target_duration(&self) -> u64 {
        self.target_s
    }

    /// The playlist text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(128 + self.entries.len() * 96);
        let first_sequence = self
            .entries
            .front()
            .map_or(self.next_sequence, |e| e.sequence);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.target_s, first_sequence
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        for entry in &self.entries {
            if entry.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(key) = &entry.key {
                out.push_str(&key.line());
            }
            let _ = write!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{}.{:03},\n{}\n",
                format_date_time(entry.start_wall_ms),
                entry.duration_ms / 1000,
                entry.duration_ms % 1000,
                entry.name.file_name()
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_and_parsed_in_one_place() {
        assert_eq!(SegmentName(17).file_name(), "17.ts");
        assert_eq!(SegmentName::parse("17"), Some(SegmentName(17)));
        for bad in ["", "a1", "1.ts", "-1", "123456789012345678901"] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
    }

    fn seg(wall: i64, ms: u64, discontinuity: bool) -> Segment {
        Segment {
            data: Bytes::from_static(b"ts"),
            duration_ms: ms,
            start_wall_ms: wall,
            discontinuity,
            streamed: 0,
            key: None,
        }
    }

    const T0: i64 = 1_764_140_000_000;

    #[test]
    fn golden_sliding_window_with_republish_and_end() {
        let mut w = PlaylistWindow::new(2, 3);
        w.begin_publish();
        assert!(w.is_empty());
        w.push(seg(T0, 2000, false));
        w.push(seg(T0 + 2000, 2000, false));
        w.push(seg(T0 + 4000, 1967, false));
        assert_eq!(
            w.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:20.000Z\n#EXTINF:2.000,\n1764140000000.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:22.000Z\n#EXTINF:2.000,\n1764140002000.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:24.000Z\n#EXTINF:1.967,\n1764140004000.ts\n"
        );
        w.end();
        w.begin_publish(); // republish: a discontinuity, no ENDLIST
        let evicted = w.push(seg(T0 + 9000, 2000, false));
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].name, SegmentName(1_764_140_000_000));
        let evicted = w.push(seg(T0 + 11000, 2000, false));
        assert_eq!(evicted.len(), 1);
        w.push(seg(T0 + 13000, 2000, false));
        w.push(seg(T0 + 15000, 2000, false));
        w.end();
        assert_eq!(
            w.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:31.000Z\n#EXTINF:2.000,\n1764140011000.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:33.000Z\n#EXTINF:2.000,\n1764140013000.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:35.000Z\n#EXTINF:2.000,\n1764140015000.ts\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn target_duration_covers_long_gops_and_never_shrinks() {
        let mut w = PlaylistWindow::new(2, 6);
        w.push(seg(T0, 4004, false));
        assert_eq!(w.target_duration(), 4);
        w.push(seg(T0 + 5000, 2000, false));
        assert_eq!(w.target_duration(), 4);
        w.push(seg(T0 + 7000, 2499, false));
        assert_eq!(w.target_duration(), 4);
        assert!(w.render().contains("#EXT-X-TARGETDURATION:4\n"));
    }

    #[test]
    fn names_never_repeat_even_if_the_clock_goes_back() {
        let mut w = PlaylistWindow::new(2, 6);
        w.push(seg(T0, 2000, false));
        w.push(seg(T0 - 5000, 2000, true));
        let names: Vec<_> = w.entries().map(|e| e.name).collect();
        assert_eq!(
            names,
            vec![
                SegmentName(1_764_140_000_000),
                SegmentName(1_764_140_000_001)
            ]
        );
        assert!(w
            .render()
            .contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2025-11-26T06:53:15.000Z"));
    }
}
