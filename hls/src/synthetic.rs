//! Synthetic media for benchmarks: FLV tag bodies with the sizes and timing of a real 720p30 stream,
//! so a benchmark measures the packager and the server with realistic shapes without a media file.
//! The payload bytes are filler: this is not decodable video.

use bytes::Bytes;

use crate::media::{Media, Metadata};

/// A minimal AVCDecoderConfigurationRecord (High profile, one 4-byte SPS, one 3-byte PPS).
const RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x03, 0x68,
    0xeb, 0xe3,
];

/// `seconds` of media shaped like the benchmark clip: 2.5 Mb/s 30 fps video (IDR every 2 s, 6× a
/// P-frame), 128 kb/s AAC at 48 kHz, with the sequence headers first.
pub fn stream(seconds: u32) -> Vec<Media> {
    let mut out = vec![Media::Metadata(Metadata {
        video_codec_id: Some(7),
        audio_codec_id: Some(10),
        ..Metadata::default()
    })];
    let mut cfg = vec![0x17, 0x00, 0, 0, 0];
    cfg.extend_from_slice(RECORD);
    out.push(Media::Video {
        timestamp: 0,
        data: Bytes::from(cfg),
    });
    out.push(Media::Audio {
        timestamp: 0,
        data: Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90]),
    });
    let video_bytes_per_gop = 2_500_000 / 8 * 2;
    let (idr, p) = (video_bytes_per_gop * 6 / 65, video_bytes_per_gop / 65);
    let mut audio_ms = 0.0f64;
    for f in 0..(seconds * 30) {
        let ms = f * 1000 / 30;
        let key = f % 60 == 0;
        let size = if key { idr } else { p };
        let mut body = Vec::with_capacity(size + 9);
        body.extend_from_slice(&[
            if key { 0x17 } else { 0x27 },
            0x01,
            0,
            0,
            if f % 3 == 0 { 0 } else { 33 },
        ]);
        body.extend_from_slice(&(size as u32).to_be_bytes());
        body.push(if key { 0x65 } else { 0x41 });
        body.resize(size + 9, 0x5a);
        out.push(Media::Video {
            timestamp: ms,
            data: Bytes::from(body),
        });
        while audio_ms <= f64::from(ms) {
            let mut a = vec![0xaf, 0x01];
            a.resize(2 + 340, 0x21);
            out.push(Media::Audio {
                timestamp: audio_ms as u32,
                data: Bytes::from(a),
            });
            audio_ms += 1024.0 * 1000.0 / 48000.0;
        }
    }
    out
}
