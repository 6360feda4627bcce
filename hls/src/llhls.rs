//! The low-latency playlist (draft-pantos-hls-rfc8216bis): a channel's CMAF segments with the
//! parts of the last few, the open segment's parts, a preload hint for the next part, and the
//! server-control tags; and the blocking-reload rules (§6.2.5.2) as a pure decision, so the
//! origin only holds a request until the window's version moves and asks again. Pure: rendering
//! and deciding take no clock.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::date::format_date_time;
use crate::playlist::SegmentName;

/// How the low-latency window behaves.
#[derive(Clone, Copy, Debug)]
pub struct LlConfig {
    /// EXT-X-TARGETDURATION to start from, in seconds.
    pub target_s: u64,
    /// EXT-X-PART-INF's PART-TARGET, in microseconds.
    pub part_target_us: u64,
    /// Complete segments listed.
    pub window: usize,
}

/// A listed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Microseconds.
    pub duration_us: u64,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// A segment of the window, complete or still taking parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlSegment {
    /// Its name (files `<name>.m4s`, parts `<name>.<i>.m4s`).
    pub name: SegmentName,
    /// Media sequence number.
    pub sequence: u64,
    /// Wall clock of its first frame (Unix ms), for EXT-X-PROGRAM-DATE-TIME.
    pub start_wall_ms: i64,
    /// Preceded by EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    /// Which init section (`init<id>.mp4`) its parts need.
    pub init: u64,
    /// Its parts so far, in order.
    pub parts: Vec<PartInfo>,
    /// Set when the segment is complete: its duration in microseconds.
    pub duration_us: Option<u64>,
    /// Its key, when encrypted (the same for its parts).
    pub key: Option<crate::encrypt::KeyTag>,
}

/// What a blocking playlist request (`_HLS_msn`, `_HLS_part`) gets now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    /// The playlist holds what was asked for (or the stream ended): answer now.
    Ready,
    /// Not yet: hold the request until the window changes, then ask again.
    Wait,
    /// A request the server must refuse at once (400), with why.
    BadRequest(&'static str),
}

/// The window. See the module documentation.
#[derive(Debug)]
pub struct LlWindow {
    config: LlConfig,
    target_s: u64,
    segments: VecDeque<LlSegment>,
    next_sequence: u64,
    discontinuity_sequence: u64,
    ended: bool,
    /// The name the next segment will have, reserved when the last one ended, for the preload
    /// hint of its first part.
    next_name: Option<SegmentName>,
}

impl LlWindow {
    /// An empty window.
    pub fn new(config: LlConfig) -> Self {
        Self {
            target_s: config.target_s,
            config,
            segments: VecDeque::new(),
            next_sequence: 0,
            discontinuity_sequence: 0,
            ended: false,
            next_name: None,
        }
    }

    /// A segment begins (its first part follows): named `name`, needing init section `init`.
    /// An open segment that never got a part is dropped.
    pub fn begin_segment(
        &mut self,
        name: SegmentName,
        start_wall_ms: i64,
        discontinuity: bool,
        init: u64,
        key: Option<crate::encrypt::KeyTag>,
    ) {
        if self
            .segments
            .back()
            .is_some_and(|s| s.duration_us.is_none())
        {
            self.segments.pop_back();
            self.next_sequence -= 1;
        }
        self.ended = false;
        self.next_name = None;
        self.segments.push_back(LlSegment {
            name,
            sequence: self.next_sequence,
            start_wall_ms,
            discontinuity,
            init,
            parts: Vec::new(),
            duration_us: None,
            key,
        });
        self.next_sequence += 1;
    }

    /// A part of the open segment is complete; returns its (media sequence, index).
    pub fn push_part(&mut self, part: PartInfo) -> Option<(u64, usize)> {
        let open = self
            .segments
            .back_mut()
            .filter(|s| s.duration_us.is_none())?;
        open.parts.push(part);
        Some((open.sequence, open.parts.len() - 1))
    }

    /// The open segment is complete; `next` is the name reserved for the one after it (for the
    /// preload hint). Returns the segments that left the window.
    pub fn end_segment(&mut self, next: Option<SegmentName>) -> Vec<LlSegment> {
        if let Some(open) = self.segments.back_mut().filter(|s| s.duration_us.is_none()) {
            let duration: u64 = open.parts.iter().map(|p| p.duration_us).sum();
            open.duration_us = Some(duration);
            self.target_s = self.target_s.max((duration + 500_000) / 1_000_000);
        }
        self.next_name = next;
        let mut evicted = Vec::new();
        while self.complete() > self.config.window {
            let gone = self.segments.pop_front().expect("longer than the window");
            if gone.discontinuity {
                self.discontinuity_sequence += 1;
            }
            evicted.push(gone);
        }
        evicted
    }

    /// The publish ended: EXT-X-ENDLIST, no preload hint, and every held request is answered.
    pub fn end(&mut self) {
        if self
            .segments
            .back()
            .is_some_and(|s| s.duration_us.is_none())
        {
            self.end_segment(None);
        }
        self.ended = true;
        self.next_name = None;
    }

    /// EXT-X-TARGETDURATION as the playlist states it now: the configured target, or longer once
    /// a segment was (a GOP longer than the target).
    pub fn target_duration_s(&self) -> u64 {
        self.target_s
    }

    /// True once [`Self::end`] was called (until a segment begins again).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    fn complete(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.duration_us.is_some())
            .count()
    }

    /// The segments listed, oldest first (the last may be open).
    pub fn segments(&self) -> impl Iterator<Item = &LlSegment> {
        self.segments.iter()
    }

    /// The media sequence number and part count of the newest segment listed.
    fn last(&self) -> Option<(u64, usize, bool)> {
        let s = self.segments.back()?;
        Some((s.sequence, s.parts.len(), s.duration_us.is_some()))
    }

    /// The most parts a request may run ahead of the newest (§6.2.5.2's Advance Part Limit:
    /// three seconds of parts, or three parts when they are a second or longer).
    fn advance_part_limit(&self) -> u64 {
        if self.config.part_target_us < 1_000_000 {
            3_000_000 / self.config.part_target_us.max(1)
        } else {
            3
        }
    }

    /// Whether a request for `_HLS_msn=msn` (and `_HLS_part=part`) can be answered now.
    pub fn blocking(&self, msn: Option<u64>, part: Option<u64>) -> Blocking {
        if self.ended {
            return Blocking::Ready;
        }
        let Some(msn) = msn else {
            return match part {
                Some(_) => Blocking::BadRequest("_HLS_part without _HLS_msn"),
                None => Blocking::Ready,
            };
        };
        let Some((last, parts, complete)) = self.last() else {
            return if msn > 2 {
                Blocking::BadRequest("_HLS_msn too far ahead")
            } else {
                Blocking::Wait
            };
        };
        if msn > last + 2 {
            return Blocking::BadRequest("_HLS_msn too far ahead");
        }
        let Some(part) = part else {
            // The whole segment: listed once complete.
            let done = msn < last || (msn == last && complete);
            return if done {
                Blocking::Ready
            } else {
                Blocking::Wait
            };
        };
        // Part `part` of segment `msn`; an index past a complete segment's last part means part
        // 0 of the next segment.
        let (msn, part) = match self.segments.iter().find(|s| s.sequence == msn) {
            Some(s) if s.duration_us.is_some() && part >= s.parts.len() as u64 => (msn + 1, 0),
            _ => (msn, part),
        };
        let ahead = match msn.cmp(&last) {
            std::cmp::Ordering::Less => return Blocking::Ready,
            std::cmp::Ordering::Equal if part < parts as u64 => return Blocking::Ready,
            std::cmp::Ordering::Equal => part + 1 - parts as u64,
            std::cmp::Ordering::Greater => part + 1,
        };
        if ahead > self.advance_part_limit() {
            return Blocking::BadRequest("_HLS_part too far ahead");
        }
        Blocking::Wait
    }

    /// The playlist text.
    pub fn render(&self) -> String {
        self.render_delta(false)
    }

    /// CAN-SKIP-UNTIL, in seconds: six target durations (the spec's least), offered only when the
    /// window is longer than that, so a delta update has something to leave out.
    fn skip_until_s(&self) -> Option<u64> {
        let until = 6 * self.target_s;
        (self.config.window as u64 * self.target_s > until).then_some(until)
    }

    /// How many of the oldest segments a delta update leaves out: the complete ones that end at
    /// least CAN-SKIP-UNTIL before the playlist's end.
    fn skippable(&self, until_s: u64) -> usize {
        let until = until_s * 1_000_000;
        let mut after = 0;
        let mut skippable = 0;
        for (i, s) in self.segments.iter().enumerate().rev() {
            if after >= until && s.duration_us.is_some() {
                skippable = i + 1;
                break;
            }
            after += s
                .duration_us
                .unwrap_or_else(|| s.parts.iter().map(|p| p.duration_us).sum());
        }
        skippable
    }

    /// The playlist text; with `skip` (a request's `_HLS_skip`), a delta update (§4.4.5.2): the
    /// oldest segments replaced by EXT-X-SKIP when the server offers CAN-SKIP-UNTIL, the whole
    /// playlist otherwise. Media sequence and discontinuity sequence stay those of the full
    /// playlist, so a player places what follows.
    pub fn render_delta(&self, skip: bool) -> String {
        let mut out = String::with_capacity(512 + self.segments.len() * 400);
        let first = self
            .segments
            .front()
            .map_or(self.next_sequence, |s| s.sequence);
        let until = self.skip_until_s();
        let skipped = match until {
            Some(until) if skip => self.skippable(until),
            _ => 0,
        };
        self.write_header(&mut out, first, until);
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let parts_from = self.parts_listed_from();
        let mut init = None;
        let mut keyed = false;
        for (i, s) in self.segments.iter().enumerate().skip(skipped) {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if init != Some(s.init) {
                // A key applies to the init sections after it too; they are in the clear (codec
                // parameters, no media), so a key in force is ended before one.
                if keyed {
                    out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                    keyed = false;
                }
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"init{}.mp4\"", s.init);
                init = Some(s.init);
            }
            match &s.key {
                Some(key) => {
                    out.push_str(&key.line());
                    keyed = true;
                }
                None if keyed => {
                    out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                    keyed = false;
                }
                None => {}
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_date_time(s.start_wall_ms)
            );
            if i >= parts_from {
                for (n, p) in s.parts.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={:.5},URI=\"{}.{n}.m4s\"{}",
                        p.duration_us as f64 / 1e6,
                        s.name,
                        if p.independent {
                            ",INDEPENDENT=YES"
                        } else {
                            ""
                        }
                    );
                }
            }
            if let Some(d) = s.duration_us {
                let _ = writeln!(out, "#EXTINF:{:.5},\n{}.m4s", d as f64 / 1e6, s.name);
            }
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        } else if let Some(hint) = self.preload_hint() {
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
        }
        out
    }

    /// The tags before the first segment: version, target, server control, part target, media
    /// and discontinuity sequences.
    fn write_header(&self, out: &mut String, first: u64, skip_until: Option<u64>) {
        let part_target = self.config.part_target_us as f64 / 1e6;
        let can_skip = skip_until.map_or(String::new(), |u| format!(",CAN-SKIP-UNTIL={u}.000"));
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES{can_skip},PART-HOLD-BACK={:.3},HOLD-BACK={:.3}\n\
             #EXT-X-PART-INF:PART-TARGET={:.5}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            if skip_until.is_some() { 9 } else { 6 },
            self.target_s,
            3.0 * part_target,
            3.0 * self.target_s as f64,
            part_target,
            first
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
    }

    /// The URI of the part after the newest: in the open segment, or the first of the next.
    pub fn preload_hint(&self) -> Option<String> {
        if self.ended {
            return None;
        }
        match self.segments.back() {
            Some(s) if s.duration_us.is_none() => Some(format!("{}.{}.m4s", s.name, s.parts.len())),
            _ => self.next_name.map(|n| format!("{n}.0.m4s")),
        }
    }

    /// The index of the first segment whose parts are listed: parts are listed while their
    /// segment ends within three target durations of the playlist's end (§6.2.2).
    fn parts_listed_from(&self) -> usize {
        let horizon = 3 * self.target_s * 1_000_000;
        let mut from_end = 0;
        for (i, s) in self.segments.iter().enumerate().rev() {
            if from_end > horizon {
                return i + 1;
            }
            from_end += s
                .duration_us
                .unwrap_or_else(|| s.parts.iter().map(|p| p.duration_us).sum());
        }
        0
    }
}

#[cfg(test)]
mod tests;
