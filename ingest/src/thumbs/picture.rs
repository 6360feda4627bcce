//! One H.264 keyframe in, one small JPEG out. No I/O: the worker hands it bytes and stores what
//! comes back, so it is tested with a fixture.
//!
//! The decoder is Cisco's OpenH264, built from source by the `openh264` crate and run in process.
//! Weighed against spawning ffmpeg per picture: no child process (fork, exec and ffmpeg's own
//! start-up cost more than the decode of one 720p keyframe), no binary the server depends on at
//! run time, and a failure is an error value rather than an exit code to interpret. The price is
//! C++ parsing bytes a streamer chose, in the server's address space; OpenH264 is fuzzed
//! continuously by OSS-Fuzz, it only ever sees a stream's keyframe after the packager has
//! accepted it, the picture size is checked from the SPS before it sees anything, and one
//! picture at a time per core is all it is ever given (see [`super::Thumbnails`]).

use boltstream_hls::avc::{self, AvcConfig};
use boltstream_hls::sps;
use jpeg_encoder::{ColorType, Encoder};
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

/// Largest source picture a thumbnail is made from (3840x2160, 4K UHD): beyond it the decoder's
/// buffers would be the stream's choice of size.
pub const MAX_SOURCE_PIXELS: u32 = 3840 * 2160;
/// The box a thumbnail fits in, keeping the stream's shape: sharp as a directory card and good
/// enough as the player's poster until the first frame plays.
pub const MAX_WIDTH: usize = 640;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: usize = 360;
/// JPEG quality: at 640x360 a picture is 20–60 KB.
const QUALITY: u8 = 80;

/// Why no thumbnail came out of a keyframe.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// The access unit's NAL units do not parse.
    #[error("the keyframe's NAL units are malformed")]
    Malformed,
    /// No SPS to size the picture by.
    #[error("no readable SPS before the keyframe")]
    NoSps,
    /// Larger than [`MAX_SOURCE_PIXELS`].
    #[error("the picture is {0}x{1}, larger than thumbnails are made from")]
    TooLarge(u16, u16),
    /// OpenH264 refused the bitstream (or a profile it does not decode: 4:4:4, 10-bit).
    #[error("the decoder refused the keyframe: {0}")]
    Decode(String),
    /// The decoder took the bytes and gave no picture.
    #[error("the decoder gave no picture")]
    NoPicture,
    /// The encoder refused the picture.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// A finished thumbnail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    /// The JPEG file.
    pub jpeg: Vec<u8>,
    /// Its width in pixels.
    pub width: usize,
    /// Its height in pixels.
    pub height: usize,
}

/// The Annex B access unit of an FLV keyframe (AVCC, `nal_length_size`-prefixed), with the
/// stream's SPS and PPS in front so it decodes alone.
pub fn annex_b(config: &AvcConfig, avcc: &[u8]) -> Result<Vec<u8>, PictureError> {
    let nals = avc::nal_units(avcc, config.nal_length_size).map_err(|_| PictureError::Malformed)?;
    let (parts, _) = avc::annex_b_parts(&nals, config);
    Ok(parts.concat())
}

/// Decodes the keyframe in `annex_b` and encodes it as a JPEG of at most
/// [`MAX_WIDTH`]x[`MAX_HEIGHT`], with a decoder made for this one picture.
pub fn thumbnail(annex_b: &[u8]) -> Result<Picture, PictureError> {
    Thumbnailer::default().picture(annex_b)
}

/// Makes pictures one after another with one decoder. Creating an OpenH264 decoder allocates and
/// clears its picture buffers, which cost more than the decode itself (measured: 37.9 ms a 720p
/// picture with a new decoder each time, mostly page faults in `memset`); a decoding thread keeps
/// one. Each keyframe is an IDR with its own SPS and PPS, so nothing of one stream's picture
/// carries into the next; after an error the decoder is dropped anyway, so a stream that confused
/// it cannot spoil another's picture.
#[derive(Default)]
pub struct Thumbnailer {
    decoder: Option<Decoder>,
}

impl Thumbnailer {
    /// See [`thumbnail`].
    pub fn picture(&mut self, annex_b: &[u8]) -> Result<Picture, PictureError> {
        let (w, h) = split_start_codes(annex_b)
            .find_map(sps::dimensions)
            .ok_or(PictureError::NoSps)?;
        if u32::from(w) * u32::from(h) > MAX_SOURCE_PIXELS || w == 0 || h == 0 {
            return Err(PictureError::TooLarge(w, h));
        }
        let made = self.decode_and_scale(annex_b);
        if made.is_err() {
            self.decoder = None;
        }
        let (width, height, pixels) = made?;
        let mut jpeg = Vec::with_capacity(64 * 1024);
        Encoder::new(&mut jpeg, QUALITY)
            .encode(&pixels, width as u16, height as u16, ColorType::Ycbcr)
            .map_err(|e| PictureError::Encode(e.to_string()))?;
        Ok(Picture {
            jpeg,
            width,
            height,
        })
    }

    fn decode_and_scale(
        &mut self,
        annex_b: &[u8],
    ) -> Result<(usize, usize, Vec<u8>), PictureError> {
        let failed = |e: openh264::Error| PictureError::Decode(e.to_string());
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            none => none.insert(
                Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
                    .map_err(failed)?,
            ),
        };
        if let Some(yuv) = decoder.decode(annex_b).map_err(failed)? {
            return scale_to_jpeg_range(&yuv);
        }
        match decoder.flush_remaining().map_err(failed)?.last() {
            Some(yuv) => scale_to_jpeg_range(yuv),
            None => Err(PictureError::NoPicture),
        }
    }
}

/// The NAL units of an Annex B stream, split at every `00 00 01` (a 4-byte start code leaves its extra zero at the end of the NAL
/// before it, where it is trailing data no parser here reads).
fn split_start_codes(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = (starts.iter().skip(1).map(|s| s - 3))
        .chain(std::iter::once(stream.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(s, e)| &stream[s..e.max(s)])
}

/// The decoded picture shrunk into the thumbnail box by averaging each output pixel's source
/// area, and moved from video range (Y 16–235, Cb/Cr 16–240: what H.264 encoders write) to
/// JPEG's full range, as interleaved Y, Cb, Cr bytes for the encoder.
fn scale_to_jpeg_range(yuv: &impl YUVSource) -> Result<(usize, usize, Vec<u8>), PictureError> {
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 || w * h > MAX_SOURCE_PIXELS as usize {
        return Err(PictureError::NoPicture);
    }
    let (out_w, out_h) = fit(w, h);
    let (y_stride, u_stride, v_stride) = yuv.strides();
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let xs = spans(w, out_w);
    let ys = spans(h, out_h);
    let cxs = spans(cw, out_w);
    let cys = spans(ch, out_h);
    let mut out = Vec::with_capacity(out_w * out_h * 3);
    for (row, crow) in ys.iter().zip(&cys) {
        for (col, ccol) in xs.iter().zip(&cxs) {
            let luma = average(yuv.y(), y_stride, row, col);
            let cb = average(yuv.u(), u_stride, crow, ccol);
            let cr = average(yuv.v(), v_stride, crow, ccol);
            out.push(full_range(luma, 16, 1192));
            out.push(full_range_chroma(cb));
            out.push(full_range_chroma(cr));
        }
    }
    Ok((out_w, out_h, out))
}

/// The largest size within the thumbnail box with the source's shape, never larger than the
/// source.
fn fit(w: usize, h: usize) -> (usize, usize) {
    if w <= MAX_WIDTH && h <= MAX_HEIGHT {
        return (w, h);
    }
    if w * MAX_HEIGHT >= h * MAX_WIDTH {
        (MAX_WIDTH, (h * MAX_WIDTH / w).max(1))
    } else {
        ((w * MAX_HEIGHT / h).max(1), MAX_HEIGHT)
    }
}

/// For each of `out` output samples, the range of the `len` source samples it covers (at least
/// one).
fn spans(len: usize, out: usize) -> Vec<std::ops::Range<usize>> {
    (0..out)
        .map(|i| {
            let start = (i * len / out).min(len - 1);
            let end = ((i + 1) * len / out).clamp(start + 1, len);
            start..end
        })
        .collect()
}

fn average(
    plane: &[u8],
    stride: usize,
    rows: &std::ops::Range<usize>,
    cols: &std::ops::Range<usize>,
) -> i32 {
    let mut sum = 0u32;
    let mut n = 0u32;
    for r in rows.clone() {
        let Some(line) = plane.get(r * stride..r * stride + cols.end) else {
            continue;
        };
        for &v in &line[cols.start..] {
            sum += u32::from(v);
            n += 1;
        }
    }
    (sum.checked_div(n).unwrap_or(0)) as i32
}

/// `(v - offset) * 255/219`, with the factor in 1/1024ths, clamped to a byte.
fn full_range(v: i32, offset: i32, factor: i32) -> u8 {
    (((v - offset) * factor + 512) >> 10).clamp(0, 255) as u8
}

/// `(c - 128) * 255/224 + 128`, clamped to a byte.
fn full_range_chroma(c: i32) -> u8 {
    ((((c - 128) * 1166 + 512) >> 10) + 128).clamp(0, 255) as u8
}

/// The test fixture as an FLV publisher sends it: SPS and PPS in the decoder configuration
/// record, the other NAL units 4-byte length-prefixed.
#[cfg(test)]
pub(crate) fn fixture_as_flv() -> (Vec<u8>, Vec<u8>) {
    let nals: Vec<&[u8]> = split_start_codes(tests::RED_BLUE)
        .map(|n| n.strip_suffix(&[0]).unwrap_or(n))
        .collect();
    let (sps, pps) = (nals[0], nals[1]);
    let mut record = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    let mut avcc = Vec::new();
    for nal in &nals[2..] {
        avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        avcc.extend_from_slice(nal);
    }
    (record, avcc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 640x180 IDR from ffmpeg's libx264 (High profile), left half red (#dd2222) and right half
    /// blue (#2222dd): `ffmpeg -f lavfi -i "color=c=0xdd2222:s=320x180[a];color=c=0x2222dd:
    /// s=320x180[b];[a][b]hstack" -frames:v 1 -c:v libx264 -profile:v high -f h264`.
    pub(super) const RED_BLUE: &[u8] = include_bytes!("testdata/red-blue.h264");

    fn rgb_at(picture: &Picture, x: usize, y: usize) -> [u8; 3] {
        let mut decoder = jpeg_decoder::Decoder::new(&picture.jpeg[..]);
        let pixels = decoder.decode().expect("our JPEG decodes");
        let info = decoder.info().unwrap();
        assert_eq!(
            (usize::from(info.width), usize::from(info.height)),
            (picture.width, picture.height)
        );
        let i = (y * picture.width + x) * 3;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    }

    fn near(got: [u8; 3], want: [u8; 3]) -> bool {
        got.iter()
            .zip(want)
            .all(|(g, w)| (i32::from(*g) - i32::from(w)).abs() <= 12)
    }

    #[test]
    fn a_keyframe_becomes_a_jpeg_with_its_colours_in_place() {
        let picture = thumbnail(RED_BLUE).expect("thumbnail");
        assert_eq!((picture.width, picture.height), (640, 180));
        assert_eq!(&picture.jpeg[..3], &[0xff, 0xd8, 0xff], "JPEG SOI");
        let left = rgb_at(&picture, 100, 90);
        let right = rgb_at(&picture, 540, 90);
        assert!(near(left, [0xdd, 0x22, 0x22]), "left {left:?}");
        assert!(near(right, [0x22, 0x22, 0xdd]), "right {right:?}");
    }

    #[test]
    fn the_flv_form_of_a_keyframe_decodes_the_same() {
        let (record, avcc) = fixture_as_flv();
        let config = AvcConfig::parse(&record).unwrap();
        let picture = thumbnail(&annex_b(&config, &avcc).unwrap()).unwrap();
        assert!(near(rgb_at(&picture, 100, 90), [0xdd, 0x22, 0x22]));
        assert!(annex_b(&config, &[0, 0, 0, 9, 1]).is_err());
    }

    #[test]
    fn one_decoder_serves_picture_after_picture_and_recovers_from_damage() {
        let mut t = Thumbnailer::default();
        let first = t.picture(RED_BLUE).unwrap();
        let mut damaged = RED_BLUE.to_vec();
        damaged.truncate(RED_BLUE.len() / 2);
        let _ = t.picture(&damaged);
        for _ in 0..3 {
            assert_eq!(t.picture(RED_BLUE).unwrap(), first);
        }
    }

    #[test]
    fn large_pictures_shrink_into_the_box_keeping_their_shape() {
        assert_eq!(fit(1920, 1080), (640, 360));
        assert_eq!(fit(1280, 720), (640, 360));
        assert_eq!(fit(1080, 1920), (202, 360));
        assert_eq!(fit(4000, 10), (640, 1));
        assert_eq!(fit(320, 240), (320, 240));
        for (len, out) in [(1920, 640), (7, 3), (5, 5), (1, 1), (1080, 202)] {
            let s = spans(len, out);
            assert_eq!(s.len(), out);
            assert!(s.iter().all(|r| !r.is_empty() && r.end <= len));
            assert_eq!((s[0].start, s[out - 1].end), (0, len));
        }
    }

    #[test]
    fn no_sps_or_a_huge_one_is_refused_before_decoding() {
        let without_sps: Vec<u8> = RED_BLUE
            .windows(5)
            .position(|w| w == [0, 0, 0, 1, 0x68])
            .map(|at| RED_BLUE[at..].to_vec())
            .unwrap();
        assert!(matches!(thumbnail(&without_sps), Err(PictureError::NoSps)));
        assert!(matches!(thumbnail(&[]), Err(PictureError::NoSps)));
    }

    /// Bytes of the keyframe flipped (each of the first 120, which hold the parameter sets and the
    /// slice header, then every 7th) and the keyframe cut short (every 16th length): an error or a
    /// picture, never a crash (the decoder is C++ reading what a streamer sent).
    #[test]
    fn damaged_keyframes_are_errors_not_crashes() {
        let mut pictures = 0;
        for i in (0..RED_BLUE.len()).filter(|i| *i < 120 || i % 7 == 0) {
            let mut damaged = RED_BLUE.to_vec();
            damaged[i] ^= 0x5a;
            if let Ok(p) = thumbnail(&damaged) {
                assert!(p.width <= MAX_WIDTH && p.height <= MAX_HEIGHT);
                pictures += 1;
            }
            if i % 16 == 0 {
                let _ = thumbnail(&RED_BLUE[..i]);
            }
        }
        // Some flips land in padding or in the picture itself and still decode.
        assert!(pictures > 0);
    }
}
