//! The packager: one publish's FLV payloads in, finished MPEG-TS segments out. Sans-IO — no
//! sockets, files or clocks; the wall-clock time of each input is passed in — so it is tested with
//! byte-exact fixtures and benchmarked alone.
//!
//! Decisions:
//! - Segments start at an IDR and are cut at the first keyframe at or after the target duration. A
//!   GOP longer than the target makes a longer segment (the playlist's target duration then grows to
//!   cover it) rather than a segment that does not start with an IDR.
//! - Audio before the first IDR is dropped, so audio and video start together.
//! - RTMP timestamps are 32-bit milliseconds: they are extended across the wrap, and a jump (an
//!   encoder reconnect resets to 0) closes the segment, marks a discontinuity and is rebased so the
//!   output timeline stays monotonic.

use bytes::{Bytes, BytesMut};

use super::aac::AacConfig;
use super::avc::{annex_b_parts, nal_units, AvcConfig};
use super::flv::{announced_tracks, parse_audio, parse_video, AudioTag, VideoTag};
use super::ts::{Pes, Tracks, TsMuxer, AUDIO_PID, VIDEO_PID};
use crate::media::{Media, MediaError};

/// Output timestamps start here (ms) so negative composition offsets and the PCR lead stay positive.
const TIMESTAMP_OFFSET_MS: i64 = 1_000;
/// PCR runs this far ahead of DTS, like ffmpeg's default mux delay.
const PCR_LEAD_MS: i64 = 700;
/// A timestamp step larger than this (either way) is a jump, not jitter or A/V interleave.
const JUMP_BACKWARD_MS: i64 = 2_000;
const JUMP_FORWARD_MS: i64 = 10_000;

/// What one publish may make the packager hold. The publisher chooses its timestamps, so media time
/// alone bounds nothing: a keyframe followed by frames with a frozen or crawling timestamp would
/// grow one segment at line rate. Past any bound the open segment is dropped and [`Packager::push`]
/// fails, which ends the publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes one segment may reach.
    pub max_segment_bytes: u64,
    /// How long one segment may stay open, in wall-clock time and (for video, cut at keyframes)
    /// in media time.
    pub max_segment_ms: i64,
    /// How long media may keep arriving while its time stands still.
    pub max_stall_ms: i64,
}

impl Limits {
    /// Bounds for streams of at most `mbps` megabits per second and segments of at most
    /// `max_segment_ms`.
    pub fn for_bitrate(mbps: u64, max_segment_ms: i64, max_stall_ms: i64) -> Self {
        Self {
            max_segment_bytes: mbps * 125_000 * max_segment_ms.max(0) as u64 / 1000,
            max_segment_ms,
            max_stall_ms,
        }
    }
}

impl Default for Limits {
    /// 50 Mb/s (well above any live encoder's setting) for 30 s segments; media time may stand
    /// still for 10 s.
    fn default() -> Self {
        Self::for_bitrate(50, 30_000, 10_000)
    }
}

/// One finished segment.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The MPEG-TS bytes.
    pub data: Bytes,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Wall-clock time (Unix ms) its first frame arrived.
    pub start_wall_ms: i64,
    /// Follows a timestamp jump.
    pub discontinuity: bool,
    /// Bytes of this segment taken with [`Packager::take_open`] before it closed: `data` is what
    /// follows them.
    pub streamed: u64,
    /// Set when `data` is encrypted (a private stream): the key the playlist names for it.
    pub key: Option<crate::encrypt::KeyTag>,
}

struct Open {
    buf: BytesMut,
    taken: u64,
    start_ms: i64,
    start_wall_ms: i64,
    discontinuity: bool,
}

/// Extends 32-bit wrapping RTMP milliseconds into a monotonic 64-bit timeline starting at 0.
/// Shared with the CMAF packager, so both outputs read a publisher's clock the same way.
/// It also watches for media whose time stands still while it keeps arriving (a stalled or hostile
/// publisher), which no media-time bound catches.
#[derive(Debug)]
pub(crate) struct Timeline {
    last_raw: Option<u32>,
    last_ext: i64,
    /// The newest media time seen, and the wall-clock time it was first seen.
    newest_ms: i64,
    advanced_wall_ms: i64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            last_raw: None,
            last_ext: 0,
            newest_ms: -1,
            advanced_wall_ms: 0,
        }
    }
}

impl Timeline {
    /// The extended time of `raw`, received at `wall_ms`, and whether it jumped; refused once
    /// media time has not advanced for `max_stall_ms` of wall-clock time.
    pub(crate) fn advance(
        &mut self,
        raw: u32,
        wall_ms: i64,
        max_stall_ms: i64,
    ) -> Result<(i64, bool), MediaError> {
        let (ms, jumped) = self.extend(raw);
        if ms > self.newest_ms || self.newest_ms < 0 {
            self.newest_ms = ms;
            self.advanced_wall_ms = wall_ms;
        } else if wall_ms - self.advanced_wall_ms > max_stall_ms {
            return Err(MediaError::LimitExceeded(format!(
                "media time stood still for over {} s while media kept arriving",
                max_stall_ms / 1000
            )));
        }
        Ok((ms, jumped))
    }

    /// The extended time of `raw`, and whether it jumped.
    fn extend(&mut self, raw: u32) -> (i64, bool) {
        let Some(last_raw) = self.last_raw else {
            self.last_raw = Some(raw);
            return (0, false);
        };
        let delta = i64::from(raw.wrapping_sub(last_raw) as i32);
        self.last_raw = Some(raw);
        if !(-JUMP_BACKWARD_MS..=JUMP_FORWARD_MS).contains(&delta) {
            // Rebase: continue just after the last time seen.
            self.last_ext += 1;
            return (self.last_ext, true);
        }
        self.last_ext += delta;
        (self.last_ext, false)
    }
}

/// Packages one publish.
pub struct Packager {
    target_ms: i64,
    mux: TsMuxer,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    announced_video: Option<bool>,
    announced_audio: Option<bool>,
    tracks: Option<Tracks>,
    timeline: Timeline,
    open: Option<Open>,
    pending_discontinuity: bool,
    last_video_ms: Option<i64>,
    /// Decode times never go backwards per track (nor, so, the PCR): a publisher's stray earlier
    /// timestamp is clamped to the last one written.
    video_floor_ms: i64,
    audio_floor_ms: i64,
    video_frame_ms: i64,
    end_ms: i64,
    size_hint: usize,
    /// The last segment's length: with keyframe-aligned cuts, the encoder's GOP when it is at
    /// least the target.
    last_duration_ms: i64,
    /// Set when the open segment is taken out in chunks: the capacity of each new buffer.
    chunk_capacity: Option<usize>,
    limits: Limits,
}

impl Packager {
    /// A packager cutting segments at `target_ms`.
    pub fn new(target_ms: u64) -> Self {
        Self {
            target_ms: target_ms as i64,
            mux: TsMuxer::default(),
            avc: None,
            aac: None,
            announced_video: None,
            announced_audio: None,
            tracks: None,
            timeline: Timeline::default(),
            open: None,
            pending_discontinuity: false,
            last_video_ms: None,
            video_floor_ms: i64::MIN,
            audio_floor_ms: i64::MIN,
            video_frame_ms: 33,
            end_ms: 0,
            size_hint: 64 * 1024,
            last_duration_ms: 0,
            chunk_capacity: None,
            limits: Limits::default(),
        }
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Drops the open segment: the publish is being ended for passing a bound, and what it made of
    /// the segment is not to be listed.
    pub fn discard_open(&mut self) {
        self.open = None;
    }

    /// Bytes of the open segment, taken or not.
    pub fn open_total(&self) -> u64 {
        self.open
            .as_ref()
            .map_or(0, |o| o.taken + o.buf.len() as u64)
    }

    /// The AVC configuration seen so far.
    pub fn avc(&self) -> Option<&AvcConfig> {
        self.avc.as_ref()
    }

    /// The AAC configuration seen so far.
    pub fn aac(&self) -> Option<&AacConfig> {
        self.aac.as_ref()
    }

    /// The open segment will be taken out in chunks ([`Self::take_open`]): new buffers start at
    /// `capacity` instead of the last segment's size.
    pub fn stream_in_chunks(&mut self, capacity: usize) {
        self.chunk_capacity = Some(capacity);
    }

    /// Bytes of the open segment not yet taken.
    pub fn open_len(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.buf.len())
    }

    /// Takes the open segment's bytes so far, in order; the segment goes on filling a new buffer.
    /// Concatenating every chunk taken and the closed segment's `data` gives exactly the bytes
    /// the segment would have had.
    pub fn take_open(&mut self) -> Option<Bytes> {
        let capacity = self.chunk_capacity.unwrap_or(self.size_hint);
        let open = self.open.as_mut().filter(|o| !o.buf.is_empty())?;
        let chunk = std::mem::replace(&mut open.buf, BytesMut::with_capacity(capacity));
        open.taken += chunk.len() as u64;
        Some(chunk.freeze())
    }

    /// Media milliseconds from the newest input to the one expected to close the open segment:
    /// the first keyframe at or after the target, assumed one GOP (the last segment's length)
    /// after the segment's start. Negative when overdue; `None` with no segment open.
    pub fn cut_due_in_ms(&self) -> Option<i64> {
        let open = self.open.as_ref()?;
        let expected = if self.tracks.is_some_and(|t| t.video) {
            self.target_ms.max(self.last_duration_ms)
        } else {
            self.target_ms
        };
        Some(open.start_ms + expected - self.timeline.last_ext)
    }

    /// Takes one unit of media received at `wall_ms`; returns a segment when this input closed one.
    pub fn push(&mut self, media: &Media, wall_ms: i64) -> Result<Option<Segment>, MediaError> {
        match media {
            Media::Metadata(meta) => {
                let (video, audio) = announced_tracks(meta)?;
                (self.announced_video, self.announced_audio) = (Some(video), Some(audio));
                Ok(None)
            }
            Media::Video { timestamp, data } => {
                let closed = self.video(*timestamp, data, wall_ms)?;
                self.check_open(wall_ms).map(|()| closed)
            }
            Media::Audio { timestamp, data } => {
                let closed = self.audio(*timestamp, data, wall_ms)?;
                self.check_open(wall_ms).map(|()| closed)
            }
        }
    }

    /// Refuses an open segment past its bounds in bytes or wall-clock time, dropping it.
    fn check_open(&mut self, wall_ms: i64) -> Result<(), MediaError> {
        let Some(open) = &self.open else {
            return Ok(());
        };
        let bytes = self.open_total();
        let why = if bytes > self.limits.max_segment_bytes {
            format!(
                "a segment passed {} bytes (the limit for the highest allowed bitrate)",
                self.limits.max_segment_bytes
            )
        } else if wall_ms - open.start_wall_ms > self.limits.max_segment_ms {
            format!(
                "a segment stayed open for over {} s of wall-clock time",
                self.limits.max_segment_ms / 1000
            )
        } else {
            return Ok(());
        };
        self.open = None;
        Err(MediaError::LimitExceeded(why))
    }

    fn tracks(&mut self) -> Tracks {
        *self.tracks.get_or_insert(Tracks {
            video: self.announced_video.unwrap_or(self.avc.is_some()),
            audio: self.announced_audio.unwrap_or(self.aac.is_some()),
        })
    }

    fn time(&mut self, raw: u32, wall_ms: i64) -> Result<(i64, Option<Segment>), MediaError> {
        let (ms, jumped) = (self.timeline)
            .advance(raw, wall_ms, self.limits.max_stall_ms)
            .inspect_err(|_| self.open = None)?;
        if !jumped {
            return Ok((ms, None));
        }
        self.pending_discontinuity = true;
        self.last_video_ms = None;
        // The rebased timeline continues after the last time seen, so the floors stay valid.
        Ok((ms, self.close(self.end_ms)))
    }

    fn video(
        &mut self,
        raw: u32,
        body: &Bytes,
        wall_ms: i64,
    ) -> Result<Option<Segment>, MediaError> {
        let (keyframe, cts, data) = match parse_video(body)? {
            VideoTag::AvcConfig(record) => {
                self.avc = Some(AvcConfig::parse(&record)?);
                return Ok(None);
            }
            VideoTag::Ignored => return Ok(None),
            VideoTag::AvcFrame {
                keyframe,
                cts,
                data,
            } => (keyframe, cts, data),
        };
        if self.avc.is_none() {
            return Ok(None); // undecodable without its configuration
        }
        // Settled while the configuration is still in place: a publisher that sends no metadata
        // has video because it sent an AVC configuration.
        self.tracks();
        let Some(config) = self.avc.take() else {
            return Ok(None);
        };
        let result = self.video_frame(&config, raw, keyframe, cts, &data, wall_ms);
        self.avc = Some(config);
        result
    }

    fn video_frame(
        &mut self,
        config: &AvcConfig,
        raw: u32,
        keyframe: bool,
        cts: i32,
        data: &[u8],
        wall_ms: i64,
    ) -> Result<Option<Segment>, MediaError> {
        let nals = nal_units(data, config.nal_length_size)?;
        let (parts, idr) = annex_b_parts(&nals, config);
        let random_access = keyframe || idr;
        let tracks = self.tracks();
        if !tracks.video {
            return Ok(None);
        }
        let (ms, mut closed) = self.time(raw, wall_ms)?;
        let ms = ms.max(self.video_floor_ms);
        if let Some(prev) = self.last_video_ms.replace(ms) {
            if ms > prev {
                self.video_frame_ms = (ms - prev).min(1000);
            }
        }
        match &self.open {
            None if !random_access => return Ok(closed), // wait for an IDR
            None => self.start(ms, wall_ms),
            Some(open) if random_access && ms - open.start_ms >= self.target_ms => {
                closed = self.close(ms);
                self.start(ms, wall_ms);
            }
            Some(open) if ms - open.start_ms > self.limits.max_segment_ms => {
                self.open = None;
                return Err(MediaError::LimitExceeded(format!(
                    "no keyframe for {} s: set a keyframe interval in the encoder",
                    self.limits.max_segment_ms / 1000
                )));
            }
            Some(_) => {}
        }
        let dts = (ms + TIMESTAMP_OFFSET_MS) as u64 * 90;
        let pts = (ms + i64::from(cts) + TIMESTAMP_OFFSET_MS).max(0) as u64 * 90;
        let pes = Pes {
            pid: VIDEO_PID,
            stream_id: 0xe0,
            pts,
            dts,
            pcr: Some((ms + TIMESTAMP_OFFSET_MS - PCR_LEAD_MS) as u64 * 90),
            random_access,
        };
        let open = self.open.as_mut().expect("a segment is open");
        self.mux.write_pes(&mut open.buf, &pes, &parts);
        self.video_floor_ms = ms;
        self.end_ms = self.end_ms.max(ms + self.video_frame_ms);
        Ok(closed)
    }

    fn audio(
        &mut self,
        raw: u32,
        body: &Bytes,
        wall_ms: i64,
    ) -> Result<Option<Segment>, MediaError> {
        let frame = match parse_audio(body)? {
            AudioTag::AacConfig(asc) => {
                self.aac = Some(AacConfig::parse(&asc)?);
                return Ok(None);
            }
            AudioTag::AacFrame(frame) => frame,
        };
        let Some(config) = self.aac else {
            return Ok(None);
        };
        let tracks = self.tracks();
        if !tracks.audio {
            return Ok(None);
        }
        let (ms, mut closed) = self.time(raw, wall_ms)?;
        let ms = ms.max(self.audio_floor_ms);
        if tracks.video {
            match &self.open {
                // Before the first IDR, or from before the segment's start: dropped, so both
                // tracks start together.
                None => return Ok(closed),
                Some(open) if ms < open.start_ms => return Ok(closed),
                Some(_) => {}
            }
        } else {
            match &self.open {
                None => self.start(ms, wall_ms),
                Some(open) if ms - open.start_ms >= self.target_ms => {
                    closed = self.close(ms);
                    self.start(ms, wall_ms);
                }
                Some(_) => {}
            }
        }
        let adts = config.adts_header(frame.len())?;
        let ts = (ms + TIMESTAMP_OFFSET_MS) as u64 * 90;
        let pes = Pes {
            pid: AUDIO_PID,
            stream_id: 0xc0,
            pts: ts,
            dts: ts,
            pcr: (!tracks.video)
                .then(|| (ms + TIMESTAMP_OFFSET_MS - PCR_LEAD_MS).max(0) as u64 * 90),
            random_access: !tracks.video,
        };
        let open = self.open.as_mut().expect("a segment is open");
        self.mux.write_pes(&mut open.buf, &pes, &[&adts, &frame]);
        self.audio_floor_ms = ms;
        let frame_ms = 1024 * 1000 / i64::from(config.sample_rate());
        self.end_ms = self.end_ms.max(ms + frame_ms);
        Ok(closed)
    }

    fn start(&mut self, ms: i64, wall_ms: i64) {
        let mut buf = BytesMut::with_capacity(self.chunk_capacity.unwrap_or(self.size_hint));
        let tracks = self.tracks();
        self.mux.write_tables(&mut buf, tracks);
        self.open = Some(Open {
            buf,
            taken: 0,
            start_ms: ms,
            start_wall_ms: wall_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
        });
    }

    fn close(&mut self, end_ms: i64) -> Option<Segment> {
        let open = self.open.take()?;
        self.last_duration_ms = end_ms - open.start_ms;
        // The frozen buffer keeps its whole allocation alive in the window: slack is memory.
        let len = open.taken as usize + open.buf.len();
        self.size_hint = len + len / 16;
        Some(Segment {
            duration_ms: (end_ms - open.start_ms).max(1) as u64,
            data: open.buf.freeze(),
            start_wall_ms: open.start_wall_ms,
            discontinuity: open.discontinuity,
            streamed: open.taken,
            key: None,
        })
    }

    /// The publish ended: the open segment, if any, is complete.
    pub fn finish(&mut self) -> Option<Segment> {
        self.close(self.end_ms)
    }
}

#[cfg(test)]
mod tests;
