//! Fragmented MP4 (ISO/IEC 14496-12, CMAF-shaped) for low-latency HLS: the init section (`ftyp` +
//! `moov`, written once per stream configuration) and one fragment (`moof` + `mdat`) per part.
//! Sans-IO: values in, bytes out.
//!
//! Written by hand. `mp4-atom` 0.14 (typed atoms, well kept) was weighed: its `esds` keeps only
//! the object type, frequency index and channel configuration of an AudioSpecificConfig, so an
//! HE-AAC or explicit-frequency config would be rewritten wrongly (fixed on its master, not
//! released), and its sample-entry defaults (data reference index 0) differ from what 14496-12
//! requires — every field would need checking anyway. The writer needs 22 fixed-layout boxes; the
//! tests parse its output back with `mp4-atom` as an independent reader, and with ffprobe.

use bytes::{BufMut, Bytes, BytesMut};

/// Timescale of the video track: the MPEG 90 kHz clock, so FLV milliseconds map exactly.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Track id of the video track.
pub const VIDEO_TRACK: u32 = 1;
/// Track id of the audio track.
pub const AUDIO_TRACK: u32 = 2;

/// `sample_flags` of a sync sample: depends on no other.
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, is not a sync sample.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// The video track's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    /// The AVCDecoderConfigurationRecord as the publisher sent it (becomes `avcC`).
    pub record: Bytes,
    /// Coded width in pixels.
    pub width: u16,
    /// Coded height in pixels.
    pub height: u16,
}

/// The audio track's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig as the publisher sent it (carried whole in `esds`).
    pub asc: Bytes,
    /// Samples per second (the track's timescale).
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
}

/// One access unit of a track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time, in the track's timescale.
    pub composition_offset: i32,
    /// A sync sample (an IDR picture; every audio frame).
    pub sync: bool,
    /// The access unit: length-prefixed NAL units for H.264 (as FLV carries them), a raw AAC frame.
    pub data: Bytes,
}

/// One track's samples in a fragment.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// [`VIDEO_TRACK`] or [`AUDIO_TRACK`].
    pub track: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    /// The samples, in decode order.
    pub samples: &'a [Sample],
}

/// Appends a box: its size, its type, then what `body` writes.
fn boxed(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).expect("a box under 4 GiB");
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a full box: a box whose body starts with a version and 24 bits of flags.
fn full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    boxed(out, kind, |out| {
        out.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(out);
    });
}

/// The identity transformation matrix of `mvhd` and `tkhd`.
fn put_matrix(out: &mut BytesMut) {
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.put_u32(value);
    }
}

/// The init section: `ftyp` and a `moov` with one track per configuration given, each ready for
/// fragments (`mvex`/`trex`, empty sample tables).
pub fn init_section(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut out = BytesMut::with_capacity(1024);
    boxed(&mut out, b"ftyp", |out| {
        out.put_slice(b"iso6");
        out.put_u32(0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            out.put_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |out| {
        full_box(out, b"mvhd", 0, 0, |out| {
            out.put_u32(0); // creation time
            out.put_u32(0); // modification time
            out.put_u32(1000); // timescale
            out.put_u32(0); // duration: unknown, it is live
            out.put_u32(0x0001_0000); // rate 1.0
            out.put_u16(0x0100); // volume 1.0
            out.put_bytes(0, 10);
            put_matrix(out);
            out.put_bytes(0, 24);
            out.put_u32(AUDIO_TRACK + 1); // next track id
        });
        if let Some(v) = video {
            video_trak(out, v);
        }
        if let Some(a) = audio {
            audio_trak(out, a);
        }
        boxed(out, b"mvex", |out| {
            let tracks = [
                (video.is_some(), VIDEO_TRACK),
                (audio.is_some(), AUDIO_TRACK),
            ];
            for (_, track) in tracks.into_iter().filter(|(present, _)| *present) {
                full_box(out, b"trex", 0, 0, |out| {
                    out.put_u32(track);
                    out.put_u32(1); // sample description index
                    out.put_u32(0); // default duration
                    out.put_u32(0); // default size
                    out.put_u32(0); // default flags
                });
            }
        });
    });
    out.freeze()
}

fn tkhd(out: &mut BytesMut, track: u32, audio: bool, width: u16, height: u16) {
    // Flags: enabled, in movie, in preview.
    full_box(out, b"tkhd", 0, 0x7, |out| {
        out.put_u32(0); // creation time
        out.put_u32(0); // modification time
        out.put_u32(track);
        out.put_u32(0); // reserved
        out.put_u32(0); // duration
        out.put_bytes(0, 8);
        out.put_u16(0); // layer
        out.put_u16(0); // alternate group
        out.put_u16(if audio { 0x0100 } else { 0 }); // volume
        out.put_u16(0);
        put_matrix(out);
        out.put_u32(u32::from(width) << 16);
        out.put_u32(u32::from(height) << 16);
    });
}

/// `mdia` with its `mdhd`, `hdlr` and a `minf` whose media header `media_header` writes.
fn mdia(
    out: &mut BytesMut,
    timescale: u32,
    handler: &[u8; 4],
    name: &str,
    media_header: impl FnOnce(&mut BytesMut),
    sample_entry: impl FnOnce(&mut BytesMut),
) {
    boxed(out, b"mdia", |out| {
        full_box(out, b"mdhd", 0, 0, |out| {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u32(timescale);
            out.put_u32(0);
            out.put_u16(0x55c4); // "und", ISO 639-2/T packed
            out.put_u16(0);
        });
        full_box(out, b"hdlr", 0, 0, |out| {
            out.put_u32(0);
            out.put_slice(handler);
            out.put_bytes(0, 12);
            out.put_slice(name.as_bytes());
            out.put_u8(0);
        });
        boxed(out, b"minf", |out| {
            media_header(out);
            boxed(out, b"dinf", |out| {
                full_box(out, b"dref", 0, 0, |out| {
                    out.put_u32(1);
                    // Flag 1: the media is in this file.
                    full_box(out, b"url ", 0, 1, |_| {});
                });
            });
            boxed(out, b"stbl", |out| {
                full_box(out, b"stsd", 0, 0, |out| {
                    out.put_u32(1);
                    sample_entry(out);
                });
                // Empty tables: every sample is in the fragments.
                for kind in [b"stts", b"stsc", b"stco"] {
                    full_box(out, kind, 0, 0, |out| out.put_u32(0));
                }
                full_box(out, b"stsz", 0, 0, |out| {
                    out.put_u32(0);
                    out.put_u32(0);
                });
            });
        });
    });
}

fn video_trak(out: &mut BytesMut, v: &VideoConfig) {
    boxed(out, b"trak", |out| {
        tkhd(out, VIDEO_TRACK, false, v.width, v.height);
        mdia(
            out,
            VIDEO_TIMESCALE,
            b"vide",
            "VideoHandler",
            |out| {
                full_box(out, b"vmhd", 0, 1, |out| out.put_bytes(0, 8));
            },
            |out| {
                boxed(out, b"avc1", |out| {
                    out.put_bytes(0, 6);
                    out.put_u16(1); // data reference index
                    out.put_bytes(0, 16);
                    out.put_u16(v.width);
                    out.put_u16(v.height);
                    out.put_u32(0x0048_0000); // 72 dpi
                    out.put_u32(0x0048_0000);
                    out.put_u32(0);
                    out.put_u16(1); // frame count
                    out.put_bytes(0, 32); // compressor name
                    out.put_u16(0x0018); // depth
                    out.put_i16(-1);
                    boxed(out, b"avcC", |out| out.put_slice(&v.record));
                });
            },
        );
    });
}

fn audio_trak(out: &mut BytesMut, a: &AudioConfig) {
    boxed(out, b"trak", |out| {
        tkhd(out, AUDIO_TRACK, true, 0, 0);
        mdia(
            out,
            a.sample_rate,
            b"soun",
            "SoundHandler",
            |out| {
                full_box(out, b"smhd", 0, 0, |out| out.put_u32(0));
            },
            |out| {
                boxed(out, b"mp4a", |out| {
                    out.put_bytes(0, 6);
                    out.put_u16(1); // data reference index
                    out.put_bytes(0, 8);
                    out.put_u16(a.channels);
                    out.put_u16(16); // sample size
                    out.put_u32(0);
                    // 16.16 fixed point; rates past 65535 Hz do not occur in AAC from FLV.
                    out.put_u32(a.sample_rate.min(0xffff) << 16);
                    esds(out, &a.asc);
                });
            },
        );
    });
}

/// `esds`: an ES descriptor holding the decoder configuration and the whole AudioSpecificConfig.
fn esds(out: &mut BytesMut, asc: &[u8]) {
    // Tag, then a one-byte length: every descriptor here is far under 128 bytes for any ASC an
    // FLV audio tag can carry (checked by the caller's bound on the config's size).
    fn descriptor(out: &mut BytesMut, tag: u8, body: &[u8]) {
        out.put_u8(tag);
        out.put_u8(u8::try_from(body.len()).expect("descriptors under 128 bytes"));
        out.put_slice(body);
    }
    let mut decoder_config = BytesMut::new();
    decoder_config.put_u8(0x40); // object type: MPEG-4 audio
    decoder_config.put_u8(0x15); // stream type 5 (audio) << 2, reserved bit set
    decoder_config.put_bytes(0, 3); // buffer size
    decoder_config.put_u32(0); // max bitrate
    decoder_config.put_u32(0); // average bitrate
    descriptor(&mut decoder_config, 0x05, asc);
    let mut es = BytesMut::new();
    es.put_u16(0); // ES id
    es.put_u8(0); // no dependency, URL or OCR stream
    descriptor(&mut es, 0x04, &decoder_config);
    descriptor(&mut es, 0x06, &[0x02]); // SL config: predefined for MP4
    full_box(out, b"esds", 0, 0, |out| descriptor(out, 0x03, &es));
}

/// Largest AudioSpecificConfig [`init_section`] accepts; real ones are 2–5 bytes, and the
/// descriptors around it must stay under 128 bytes.
pub const MAX_ASC: usize = 64;

/// One fragment: `moof` with a `traf` per run (in the order given) and one `mdat` holding the runs'
/// samples in the same order. `sequence` starts at 1 and grows by one per fragment.
pub fn fragment(sequence: u32, runs: &[Run<'_>]) -> Bytes {
    let per_sample = |track: u32| if track == VIDEO_TRACK { 16 } else { 8 };
    let traf_len = |run: &Run<'_>| 8 + 16 + 20 + 20 + run.samples.len() * per_sample(run.track);
    let moof_len = 8 + 16 + runs.iter().map(traf_len).sum::<usize>();
    let data_len: usize = (runs.iter())
        .flat_map(|r| r.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let mut out = BytesMut::with_capacity(moof_len + 8 + data_len);
    boxed(&mut out, b"moof", |out| {
        full_box(out, b"mfhd", 0, 0, |out| out.put_u32(sequence));
        // Each run's data starts after the moof, the mdat header and the runs before it.
        let mut data_offset = moof_len + 8;
        for run in runs {
            traf(out, run, data_offset);
            data_offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
        }
    });
    debug_assert_eq!(out.len(), moof_len, "fragment size computed ahead");
    let mdat_len = u32::try_from(8 + data_len).expect("a part under 4 GiB");
    out.put_u32(mdat_len);
    out.put_slice(b"mdat");
    for sample in runs.iter().flat_map(|r| r.samples.iter()) {
        out.put_slice(&sample.data);
    }
    out.freeze()
}

fn traf(out: &mut BytesMut, run: &Run<'_>, data_offset: usize) {
    let video = run.track == VIDEO_TRACK;
    boxed(out, b"traf", |out| {
        // default-base-is-moof: data offsets count from the moof, as CMAF requires.
        full_box(out, b"tfhd", 0, 0x02_0000, |out| out.put_u32(run.track));
        full_box(out, b"tfdt", 1, 0, |out| out.put_u64(run.base_decode_time));
        // Data offset, durations and sizes; video adds flags and composition offsets (version 1:
        // signed offsets).
        let (version, flags) = if video { (1, 0x0f01) } else { (0, 0x0301) };
        full_box(out, b"trun", version, flags, |out| {
            out.put_u32(u32::try_from(run.samples.len()).expect("samples fit in u32"));
            out.put_i32(i32::try_from(data_offset).expect("a part under 2 GiB"));
            for s in run.samples {
                out.put_u32(s.duration);
                out.put_u32(u32::try_from(s.data.len()).expect("a sample under 4 GiB"));
                if video {
                    out.put_u32(if s.sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE });
                    out.put_i32(s.composition_offset);
                }
            }
        });
    });
}

#[cfg(test)]
mod tests;
