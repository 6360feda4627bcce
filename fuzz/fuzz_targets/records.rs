//! The packager targets' input format: records of kind (1) | timestamp (4) | length (2) | body,
//! as FLV audio, video or metadata. Shared by the TS and CMAF packager targets.
use boltstream_hls::media::{Media, Metadata};
use bytes::Bytes;

/// The media the records in `data` describe, in order.
pub fn media(data: &[u8]) -> Vec<Media> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 7 {
        let kind = rest[0];
        let ts = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
        let body = Bytes::copy_from_slice(&rest[7..7 + len]);
        rest = &rest[7 + len..];
        out.push(match kind % 3 {
            0 => Media::Video { timestamp: ts, data: body },
            1 => Media::Audio { timestamp: ts, data: body },
            _ => Media::Metadata(Metadata {
                video_codec_id: (kind & 4 != 0).then_some(7),
                audio_codec_id: (kind & 8 != 0).then_some(10),
                ..Metadata::default()
            }),
        });
    }
    out
}
