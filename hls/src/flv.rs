//! FLV tag bodies as RTMP carries them (video/audio message payloads), parsed without copying:
//! the payload slices are `Bytes` views into the received message.

use bytes::Bytes;

use crate::media::{MediaError, Metadata};

/// FLV codec id of AVC/H.264.
pub const CODEC_AVC: u8 = 7;
/// FLV sound format of AAC.
pub const SOUND_AAC: u8 = 10;

/// An FLV codec id (`onMetaData`'s `videocodecid`/`audiocodecid`) as people know it.
pub fn codec_name(id: u32, video: bool) -> String {
    match (id, video) {
        (7, true) => "h264".into(),
        (12, true) => "hevc".into(),
        (10, false) => "aac".into(),
        (2, false) => "mp3".into(),
        (other, true) => format!("video codec {other}"),
        (other, false) => format!("audio codec {other}"),
    }
}

/// What a video tag body is, read from its first two bytes without parsing it: a frame (and
/// whether a keyframe) or something else (a configuration record, end of sequence). For counters on the hot path; [`parse_video`] decides what is packaged.
pub fn peek_video_frame(body: &[u8]) -> Option<bool> {
    // Byte 1 is the AVC packet type: only 1 (NALUs) is a frame; 0 and 2 carry config/EOS.
    match body {
        [first, 1, ..] => Some(first >> 4 == 1),
        _ => None,
    }
}

/// The tracks a publisher's metadata announces (video, audio): a codec id present means the
/// track will come. A codec no output packages is refused here, before any media arrives.
pub fn announced_tracks(meta: &Metadata) -> Result<(bool, bool), MediaError> {
    if let Some(id) = meta.video_codec_id.filter(|id| *id != u32::from(CODEC_AVC)) {
        return Err(MediaError::UnsupportedCodec(format!(
            "video codec id {id} announced (only H.264 is packaged)"
        )));
    }
    if let Some(id) = meta.audio_codec_id.filter(|id| *id != u32::from(SOUND_AAC)) {
        return Err(MediaError::UnsupportedCodec(format!(
            "audio codec id {id} announced (only AAC is packaged)"
        )));
    }
    Ok((meta.video_codec_id.is_some(), meta.audio_codec_id.is_some()))
}

/// A parsed video tag body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoTag {
    /// AVCDecoderConfigurationRecord.
    AvcConfig(Bytes),
    /// One access unit of length-prefixed NAL units.
    AvcFrame {
        /// Frame type 1 (keyframe).
        keyframe: bool,
        /// Composition time offset in ms (PTS − DTS), signed.
        cts: i32,
        /// The NAL units, AVCC-framed.
        data: Bytes,
    },
    /// End of sequence, or a video info/command frame: nothing to package.
    Ignored,
}

/// A parsed audio tag body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioTag {
    /// AudioSpecificConfig.
    AacConfig(Bytes),
    /// One raw AAC frame.
    AacFrame(Bytes),
}

/// Parses a video tag body; other codecs are refused rather than packaged wrongly.
pub fn parse_video(body: &Bytes) -> Result<VideoTag, MediaError> {
    let Some(&first) = body.first() else {
        return Err(MediaError::Malformed("empty video tag"));
    };
    if first & 0x80 != 0 {
        // Enhanced RTMP: a FourCC (hvc1, av01, vp09) follows; MPEG-TS output here is H.264 only.
        let fourcc = body
            .get(1..5)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        return Err(MediaError::UnsupportedCodec(format!(
            "enhanced RTMP video {fourcc:?} (only H.264 is packaged)"
        )));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if frame_type == 5 {
        return Ok(VideoTag::Ignored);
    }
    if codec != CODEC_AVC {
        return Err(MediaError::UnsupportedCodec(format!(
            "FLV video codec {codec} (only H.264 is packaged)"
        )));
    }
    if body.len() < 5 {
        return Err(MediaError::Malformed("short AVC video tag"));
    }
    let cts = i32::from_be_bytes([0, body[2], body[3], body[4]]) << 8 >> 8;
    match body[1] {
        0 => Ok(VideoTag::AvcConfig(body.slice(5..))),
        1 => Ok(VideoTag::AvcFrame {
            keyframe: frame_type == 1,
            cts,
            data: body.slice(5..),
        }),
        2 => Ok(VideoTag::Ignored),
        _ => Err(MediaError::Malformed("unknown AVC packet type")),
    }
}

/// Parses an audio tag body.
pub fn parse_audio(body: &Bytes) -> Result<AudioTag, MediaError> {
    let Some(&first) = body.first() else {
        return Err(MediaError::Malformed("empty audio tag"));
    };
    let format = first >> 4;
    if format != SOUND_AAC {
        let name = match format {
            2 | 14 => "MP3",
            11 => "Speex",
            4..=6 => "Nellymoser",
            7 | 8 => "G.711",
            _ => "PCM or other",
        };
        return Err(MediaError::UnsupportedCodec(format!(
            "FLV audio format {format} ({name}; only AAC is packaged)"
        )));
    }
    match body.get(1) {
        Some(0) => Ok(AudioTag::AacConfig(body.slice(2..))),
        Some(1) => Ok(AudioTag::AacFrame(body.slice(2..))),
        _ => Err(MediaError::Malformed("bad AAC packet type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_ids_and_frames_are_named_in_one_place() {
        assert_eq!(codec_name(7, true), "h264");
        assert_eq!(codec_name(10, false), "aac");
        assert_eq!(codec_name(99, true), "video codec 99");
        assert_eq!(peek_video_frame(&[0x17, 1, 0, 0, 0]), Some(true));
        assert_eq!(peek_video_frame(&[0x27, 1]), Some(false));
        assert_eq!(
            peek_video_frame(&[0x17, 0, 0]),
            None,
            "a configuration record"
        );
        assert_eq!(peek_video_frame(&[0x17]), None);
    }

    #[test]
    fn video_tags() {
        let key = Bytes::from_static(&[0x17, 0x01, 0xff, 0xff, 0xdf, 0xaa]);
        assert_eq!(
            parse_video(&key).unwrap(),
            VideoTag::AvcFrame {
                keyframe: true,
                cts: -33,
                data: Bytes::from_static(&[0xaa])
            }
        );
        let inter = Bytes::from_static(&[0x27, 0x01, 0x00, 0x00, 0x42]);
        assert_eq!(
            parse_video(&inter).unwrap(),
            VideoTag::AvcFrame {
                keyframe: false,
                cts: 66,
                data: Bytes::new()
            }
        );
        let config = Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1, 2]);
        assert_eq!(
            parse_video(&config).unwrap(),
            VideoTag::AvcConfig(Bytes::from_static(&[1, 2]))
        );
        assert_eq!(
            parse_video(&Bytes::from_static(&[0x17, 0x02, 0, 0, 0])).unwrap(),
            VideoTag::Ignored
        );
        assert!(matches!(
            parse_video(&Bytes::from_static(&[0x1c, 0x01, 0, 0, 0])),
            Err(MediaError::UnsupportedCodec(_))
        ));
        assert!(
            matches!(parse_video(&Bytes::from_static(b"\x90hvc1")), Err(MediaError::UnsupportedCodec(m)) if m.contains("hvc1"))
        );
        assert!(matches!(
            parse_video(&Bytes::new()),
            Err(MediaError::Malformed(_))
        ));
        assert!(matches!(
            parse_video(&Bytes::from_static(&[0x17, 0x01])),
            Err(MediaError::Malformed(_))
        ));
    }

    #[test]
    fn audio_tags() {
        assert_eq!(
            parse_audio(&Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10])).unwrap(),
            AudioTag::AacConfig(Bytes::from_static(&[0x12, 0x10]))
        );
        assert_eq!(
            parse_audio(&Bytes::from_static(&[0xaf, 0x01, 0x21])).unwrap(),
            AudioTag::AacFrame(Bytes::from_static(&[0x21]))
        );
        assert!(
            matches!(parse_audio(&Bytes::from_static(&[0x2f, 0x01])), Err(MediaError::UnsupportedCodec(m)) if m.contains("MP3"))
        );
        assert!(matches!(
            parse_audio(&Bytes::from_static(&[0xaf])),
            Err(MediaError::Malformed(_))
        ));
    }
}
