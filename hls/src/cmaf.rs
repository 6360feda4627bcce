//! The low-latency packager: one publish's FLV payloads in, CMAF output out — an init section,
//! then parts (fMP4 fragments no longer than the part target) grouped into segments that start at
//! a keyframe, as LL-HLS lists them. Sans-IO like [`crate::packager`]: the wall-clock time of each
//! input is passed in.
//!
//! Decisions:
//! - Segments are cut as the TS packager cuts them: at the first keyframe at or after the target.
//!   Parts are cut inside them so that none is longer than the part target: a part closes before
//!   the frame that would take it past the target (judged by the longest of the last few frame
//!   intervals), so with a steady frame rate every part is within the target and all but a
//!   segment's last are within about one frame of it.
//! - Decode times start at the publisher's first timestamp (no offset, unlike the TS output: fMP4
//!   composition offsets are signed, and a stream that starts at 0 has no empty first second).
//! - A video sample's duration is the time to the next one, so the newest frame is held until the
//!   next arrives (one frame of delay, as in every fMP4 live packager); at the end of a publish it
//!   gets the last interval.
//! - Audio decode times count 1024 samples per AAC frame from the first frame's timestamp, so they
//!   are exact in the audio timescale; a gap of more than 100 ms against the publisher's timestamps
//!   re-anchors them. With video, audio before the first keyframe is dropped and each part takes the
//!   audio frames that start before the part's end.
//! - A timestamp jump (an encoder reconnect) or a new codec configuration ends the segment; the next
//!   is marked as a discontinuity, and a new configuration gets a new init section first.

use bytes::Bytes;

use crate::aac::AacConfig;
use crate::avc::AvcConfig;
use crate::flv::{announced_tracks, parse_audio, parse_video, AudioTag, VideoTag};
use crate::fmp4::{self, AudioConfig, Run, Sample, VideoConfig, AUDIO_TRACK, VIDEO_TRACK};
use crate::media::{Media, MediaError};
use crate::packager::{Limits, Timeline};

/// Frame intervals remembered to predict the next one: publishers' millisecond timestamps round a
/// 30 fps interval to 33 or 34 ms, so the longest recent one is the safe guess.
const INTERVALS: usize = 8;
/// Audio re-anchors to the publisher's timestamps when they differ by more than this.
const AUDIO_DRIFT_MS: i64 = 100;

/// What the packager produced from one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A new init section (`EXT-X-MAP`): before the first part, and after a configuration change.
    Init(Bytes),
    /// A finished part of the open segment.
    Part(Part),
    /// The open segment is complete: every part of it was output before this.
    SegmentEnd(SegmentEnd),
}

/// One part: an fMP4 fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// `moof` + `mdat`.
    pub data: Bytes,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Starts a segment.
    pub first: bool,
    /// Wall-clock time (Unix ms) the first frame of its segment arrived, for
    /// EXT-X-PROGRAM-DATE-TIME.
    pub segment_start_wall_ms: i64,
}

/// A completed segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEnd {
    /// Duration in microseconds: the sum of its parts'.
    pub duration_us: u64,
    /// Wall-clock time (Unix ms) its first frame arrived.
    pub start_wall_ms: i64,
    /// Follows a timestamp jump or a configuration change.
    pub discontinuity: bool,
    /// Its parts.
    pub parts: u32,
}

struct OpenSegment {
    start_ms: i64,
    start_wall_ms: i64,
    discontinuity: bool,
    bytes: u64,
    duration_us: u64,
    parts: u32,
}

/// A video frame whose duration is not known yet.
struct Held {
    ms: i64,
    cts_ms: i32,
    sync: bool,
    data: Bytes,
}

/// The part being filled.
#[derive(Default)]
struct OpenPart {
    start_ms: i64,
    video: Vec<Sample>,
    video_base: u64,
    /// Audio frames waiting for the part they start in, and beside them each one's publisher
    /// time (ms) and decode time: kept apart so the frames go to the writer as they are.
    audio: Vec<Sample>,
    audio_times: Vec<(i64, u64)>,
    independent: bool,
}

/// Packages one publish as CMAF parts and segments.
pub struct PartPackager {
    target_ms: i64,
    part_target_ms: i64,
    limits: Limits,
    timeline: Timeline,
    avc: Option<(AvcConfig, Bytes)>,
    aac: Option<(AacConfig, Bytes)>,
    announced_video: Option<bool>,
    announced_audio: Option<bool>,
    size: (u16, u16),
    /// The tracks chosen at the first segment: (video, audio).
    tracks: Option<(bool, bool)>,
    init: Option<(Option<VideoConfig>, Option<AudioConfig>)>,
    sequence: u32,
    segment: Option<OpenSegment>,
    part: OpenPart,
    held: Option<Held>,
    frame_ms: i64,
    /// The last frame intervals (ms), newest last.
    intervals: std::collections::VecDeque<i64>,
    /// Decode times never go backwards: a stray earlier timestamp is clamped to the last one.
    video_floor_ms: i64,
    /// Bytes of media in the open part and the held frame, not yet in a part.
    open_bytes: u64,
    audio_next: Option<u64>,
    pending_discontinuity: bool,
    end_ms: i64,
}

impl PartPackager {
    /// Segments cut at `target_ms`, parts of at most `part_target_ms`.
    pub fn new(target_ms: u64, part_target_ms: u64) -> Self {
        Self {
            target_ms: target_ms as i64,
            part_target_ms: part_target_ms.max(1) as i64,
            limits: Limits::default(),
            timeline: Timeline::default(),
            avc: None,
            aac: None,
            announced_video: None,
            announced_audio: None,
            size: (0, 0),
            tracks: None,
            init: None,
            sequence: 0,
            segment: None,
            part: OpenPart::default(),
            held: None,
            frame_ms: 33,
            intervals: std::collections::VecDeque::with_capacity(INTERVALS),
            video_floor_ms: i64::MIN,
            open_bytes: 0,
            audio_next: None,
            pending_discontinuity: false,
            end_ms: 0,
        }
    }

    /// Replaces the default [`Limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Takes one unit of media received at `wall_ms`; returns what it completed, in order.
    pub fn push(&mut self, media: &Media, wall_ms: i64) -> Result<Vec<Output>, MediaError> {
        let mut out = Vec::new();
        match media {
            Media::Metadata(meta) => {
                let (video, audio) = announced_tracks(meta)?;
                (self.announced_video, self.announced_audio) = (Some(video), Some(audio));
                let dimension = |v: Option<u32>| v.and_then(|v| u16::try_from(v).ok()).unwrap_or(0);
                self.size = (dimension(meta.width), dimension(meta.height));
            }
            Media::Video { timestamp, data } => self.video(*timestamp, data, wall_ms, &mut out)?,
            Media::Audio { timestamp, data } => self.audio(*timestamp, data, wall_ms, &mut out)?,
        }
        self.check_segment(wall_ms)?;
        Ok(out)
    }

    /// The publish ended: the held frame, the open part and the open segment are complete.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        let end = self.end_ms;
        self.end_segment(end, &mut out);
        out
    }

    fn check_segment(&mut self, wall_ms: i64) -> Result<(), MediaError> {
        let Some(segment) = &self.segment else {
            return Ok(());
        };
        let why = if segment.bytes + self.open_bytes > self.limits.max_segment_bytes {
            format!(
                "a segment passed {} bytes (the limit for the highest allowed bitrate)",
                self.limits.max_segment_bytes
            )
        } else if wall_ms - segment.start_wall_ms > self.limits.max_segment_ms {
            format!(
                "a segment stayed open for over {} s of wall-clock time",
                self.limits.max_segment_ms / 1000
            )
        } else {
            return Ok(());
        };
        self.segment = None;
        self.part = OpenPart::default();
        self.held = None;
        self.open_bytes = 0;
        Err(MediaError::LimitExceeded(why))
    }

    fn tracks(&mut self) -> (bool, bool) {
        *self.tracks.get_or_insert((
            self.announced_video.unwrap_or(self.avc.is_some()),
            self.announced_audio.unwrap_or(self.aac.is_some()),
        ))
    }

    /// The extended time of `raw`; a jump ends the segment (at the last time seen).
    fn time(&mut self, raw: u32, wall_ms: i64, out: &mut Vec<Output>) -> Result<i64, MediaError> {
        let (ms, jumped) = (self.timeline)
            .advance(raw, wall_ms, self.limits.max_stall_ms)
            .inspect_err(|_| self.segment = None)?;
        if jumped {
            let end = self.end_ms;
            self.end_segment(end, out);
            self.pending_discontinuity = true;
            self.audio_next = None;
        }
        Ok(ms)
    }

    /// Long because each arm of the cut decision (first keyframe, segment end, no keyframe for too
    /// long, part end) reads best beside the others.
    fn video(
        &mut self,
        raw: u32,
        body: &Bytes,
        wall_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), MediaError> {
        let (keyframe, cts, data) = match parse_video(body)? {
            VideoTag::AvcConfig(record) => {
                self.avc = Some((AvcConfig::parse(&record)?, record));
                return Ok(());
            }
            VideoTag::Ignored => return Ok(()),
            VideoTag::AvcFrame {
                keyframe,
                cts,
                data,
            } => (keyframe, cts, data),
        };
        let Some((config, _)) = &self.avc else {
            return Ok(()); // undecodable without its configuration
        };
        // Validates the framing, as the TS output does, so a part never holds a broken frame.
        crate::avc::nal_units(&data, config.nal_length_size)?;
        let (video, _) = self.tracks();
        if !video {
            return Ok(());
        }
        let ms = self.time(raw, wall_ms, out)?.max(self.video_floor_ms);
        self.finalize_held(ms);
        match &self.segment {
            None if !keyframe => return Ok(()), // wait for a keyframe
            None => self.start_segment(ms, wall_ms, out),
            Some(s) if keyframe && ms - s.start_ms >= self.target_ms => {
                self.end_segment(ms, out);
                self.start_segment(ms, wall_ms, out);
            }
            Some(s) if ms - s.start_ms > self.limits.max_segment_ms => {
                self.segment = None;
                return Err(MediaError::LimitExceeded(format!(
                    "no keyframe for {} s: set a keyframe interval in the encoder",
                    self.limits.max_segment_ms / 1000
                )));
            }
            Some(_) if self.part_is_due(ms, self.longest_interval()) => self.end_part(ms, out),
            Some(_) => {}
        }
        if self.part.video.is_empty() && self.held.is_none() {
            self.part.independent = keyframe;
            self.part.video_base = video_dts(ms);
        }
        self.open_bytes += data.len() as u64;
        self.video_floor_ms = ms;
        self.held = Some(Held {
            ms,
            cts_ms: cts,
            sync: keyframe,
            data,
        });
        self.end_ms = self.end_ms.max(ms + self.frame_ms);
        Ok(())
    }

    /// Whether the open part must close before media at `ms` lasting `next_ms`: it would pass the
    /// part target otherwise.
    fn part_is_due(&self, ms: i64, next_ms: i64) -> bool {
        let has_media =
            self.held.is_some() || !self.part.video.is_empty() || !self.part.audio.is_empty();
        has_media && ms + next_ms - self.part.start_ms > self.part_target_ms
    }

    fn longest_interval(&self) -> i64 {
        self.intervals
            .iter()
            .copied()
            .max()
            .unwrap_or(self.frame_ms)
    }

    /// Gives the held frame its duration, now that the next frame's time `ms` is known.
    fn finalize_held(&mut self, ms: i64) {
        let Some(held) = self.held.take() else {
            return;
        };
        if ms > held.ms {
            self.frame_ms = (ms - held.ms).min(1000);
            if self.intervals.len() == INTERVALS {
                self.intervals.pop_front();
            }
            self.intervals.push_back(self.frame_ms);
        }
        let duration_ms = if ms > held.ms {
            ms - held.ms
        } else {
            self.frame_ms
        };
        self.part.video.push(Sample {
            duration: (duration_ms * 90) as u32,
            composition_offset: held.cts_ms.saturating_mul(90),
            sync: held.sync,
            data: held.data,
        });
    }

    fn audio(
        &mut self,
        raw: u32,
        body: &Bytes,
        wall_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), MediaError> {
        let frame = match parse_audio(body)? {
            AudioTag::AacConfig(asc) => {
                self.aac = Some((AacConfig::parse(&asc)?, asc));
                return Ok(());
            }
            AudioTag::AacFrame(frame) => frame,
        };
        let Some((config, _)) = &self.aac else {
            return Ok(());
        };
        let rate = i64::from(config.sample_rate());
        let (video, audio) = self.tracks();
        if !audio {
            return Ok(());
        }
        let ms = self.time(raw, wall_ms, out)?;
        let frame_ms = 1024 * 1000 / rate;
        if video {
            match &self.segment {
                None => return Ok(()),
                Some(s) if ms < s.start_ms => return Ok(()),
                Some(_) => {}
            }
        } else {
            match &self.segment {
                None => self.start_segment(ms, wall_ms, out),
                Some(s) if ms - s.start_ms >= self.target_ms => {
                    self.end_segment(ms, out);
                    self.start_segment(ms, wall_ms, out);
                }
                Some(_) if self.part_is_due(ms, frame_ms) => self.end_part(ms, out),
                Some(_) => {}
            }
        }
        let dts = self.audio_dts(ms, rate);
        self.open_bytes += frame.len() as u64;
        self.part.audio_times.push((ms, dts));
        self.part.audio.push(Sample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
            data: frame,
        });
        if !video {
            self.part.independent = true;
        }
        self.end_ms = self.end_ms.max(ms + frame_ms);
        Ok(())
    }

    /// The decode time (in samples) of the AAC frame at `ms`: the running count of 1024-sample
    /// frames, re-anchored to the publisher's clock when the two part by more than the drift bound.
    fn audio_dts(&mut self, ms: i64, rate: i64) -> u64 {
        let anchored = (ms.max(0) * rate / 1000) as u64;
        let dts = match self.audio_next {
            Some(next) if (next as i64 - anchored as i64).abs() * 1000 / rate <= AUDIO_DRIFT_MS => {
                next
            }
            _ => anchored,
        };
        self.audio_next = Some(dts + 1024);
        dts
    }

    fn start_segment(&mut self, ms: i64, wall_ms: i64, out: &mut Vec<Output>) {
        let video = (self.tracks().0)
            .then_some(self.avc.as_ref())
            .flatten()
            .map(|(_, record)| {
                // The SPS is what decoders follow; the metadata only when it cannot be read.
                let (width, height) = record_dimensions(record).unwrap_or(self.size);
                VideoConfig {
                    record: record.clone(),
                    width,
                    height,
                }
            });
        let audio = (self.tracks().1)
            .then_some(self.aac.as_ref())
            .flatten()
            .filter(|(_, asc)| asc.len() <= fmp4::MAX_ASC)
            .map(|(config, asc)| AudioConfig {
                asc: asc.clone(),
                sample_rate: config.sample_rate(),
                channels: u16::from(config.channels.max(1)),
            });
        let init = (video, audio);
        if self.init.as_ref() != Some(&init) {
            if self.init.is_some() {
                self.pending_discontinuity = true;
            }
            out.push(Output::Init(fmp4::init_section(
                init.0.as_ref(),
                init.1.as_ref(),
            )));
            self.init = Some(init);
        }
        self.segment = Some(OpenSegment {
            start_ms: ms,
            start_wall_ms: wall_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            bytes: 0,
            duration_us: 0,
            parts: 0,
        });
        self.part = OpenPart {
            start_ms: ms,
            ..OpenPart::default()
        };
    }

    /// Closes the open part at `end_ms`: its video, and the audio frames that start before its end.
    fn end_part(&mut self, end_ms: i64, out: &mut Vec<Output>) {
        let Some(segment) = self.segment.as_mut() else {
            return;
        };
        let start_ms = self.part.start_ms;
        let split = (self.part.audio_times.iter())
            .position(|(ms, _)| *ms >= end_ms)
            .unwrap_or(self.part.audio_times.len());
        let later = self.part.audio.split_off(split);
        let later_times = self.part.audio_times.split_off(split);
        let carried: u64 = later.iter().map(|s| s.data.len() as u64).sum();
        let held: u64 = self.held.as_ref().map_or(0, |h| h.data.len() as u64);
        self.open_bytes = carried + held;
        let part = std::mem::replace(
            &mut self.part,
            OpenPart {
                start_ms: end_ms,
                audio: later,
                audio_times: later_times,
                ..OpenPart::default()
            },
        );
        let mut runs = Vec::with_capacity(2);
        if !part.video.is_empty() {
            runs.push(Run {
                track: VIDEO_TRACK,
                base_decode_time: part.video_base,
                samples: &part.video,
            });
        }
        if let Some((_, base)) = part.audio_times.first() {
            runs.push(Run {
                track: AUDIO_TRACK,
                base_decode_time: *base,
                samples: &part.audio,
            });
        }
        if runs.is_empty() {
            return;
        }
        self.sequence += 1;
        let data = fmp4::fragment(self.sequence, &runs);
        let duration_us = (end_ms - start_ms).max(1) as u64 * 1000;
        segment.bytes += data.len() as u64;
        segment.duration_us += duration_us;
        segment.parts += 1;
        out.push(Output::Part(Part {
            data,
            duration_us,
            independent: part.independent,
            first: segment.parts == 1,
            segment_start_wall_ms: segment.start_wall_ms,
        }));
    }

    /// Closes the held frame, the open part and the open segment at `end_ms`.
    fn end_segment(&mut self, end_ms: i64, out: &mut Vec<Output>) {
        self.finalize_held(end_ms);
        self.end_part(end_ms, out);
        if let Some(s) = self.segment.take() {
            if s.parts > 0 {
                out.push(Output::SegmentEnd(SegmentEnd {
                    duration_us: s.duration_us,
                    start_wall_ms: s.start_wall_ms,
                    discontinuity: s.discontinuity,
                    parts: s.parts,
                }));
            }
        }
    }
}

/// The picture size from the first SPS of an AVCDecoderConfigurationRecord.
fn record_dimensions(record: &[u8]) -> Option<(u16, u16)> {
    let len = usize::from(u16::from_be_bytes([*record.get(6)?, *record.get(7)?]));
    crate::sps::dimensions(record.get(8..8 + len)?)
}

fn video_dts(ms: i64) -> u64 {
    ms.max(0) as u64 * 90
}

#[cfg(test)]
mod tests;
