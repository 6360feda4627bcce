//! What a publish feeds the packager: FLV tag bodies with their RTMP timestamps, and what the
//! publisher announced. Defined here, not on the RTMP side, so the HLS core knows nothing of RTMP,
//! sessions or keys.

use bytes::Bytes;

/// What the publisher announced in `onMetaData`. Advisory: the packager trusts the codec
/// configuration records in the media itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// FLV video codec id (7 = AVC).
    pub video_codec_id: Option<u32>,
    /// FLV audio codec id (10 = AAC).
    pub audio_codec_id: Option<u32>,
    /// Frames per second.
    pub frame_rate: Option<f32>,
    /// Audio sample rate.
    pub audio_sample_rate: Option<u32>,
}

/// One unit of media from a publisher: FLV tag bodies with their RTMP timestamps (DTS, in
/// milliseconds, 32-bit and wrapping). `Bytes` so the payload is shared, never copied, on its way
/// into a segment.
#[derive(Clone, Debug)]
pub enum Media {
    /// `@setDataFrame`/`onMetaData`.
    Metadata(Metadata),
    /// An FLV video tag body.
    Video {
        /// DTS in ms.
        timestamp: u32,
        /// Tag body.
        data: Bytes,
    },
    /// An FLV audio tag body.
    Audio {
        /// DTS in ms.
        timestamp: u32,
        /// Tag body.
        data: Bytes,
    },
}

/// Why a sink cannot continue; the publish is dropped with this as the log line.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A codec the packager does not package (HEVC, AV1, MP3, Speex, ...).
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// Bytes that cannot be parsed as what they claim to be.
    #[error("malformed media: {0}")]
    Malformed(&'static str),
    /// The publish passed a bound on what it may make the server hold.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}
