//! HLS packaging in process: what nginx-rtmp's `hls` application did, without a second connection
//! (so no first GOP is lost) and without ffmpeg.
//!
//! Sans-IO core, one file per layer:
//! - [`flv`]: FLV video/audio tag bodies → typed tags (zero-copy `Bytes` views).
//! - [`avc`]: AVCDecoderConfigurationRecord, AVCC → Annex B with AUD and SPS/PPS before IDRs.
//! - [`aac`]: AudioSpecificConfig and ADTS headers.
//! - [`ts`]: the MPEG-TS muxer (PAT/PMT, PES, continuity, PCR, stuffing).
//! - [`packager`]: media in, segments out (keyframe cuts, timestamps, discontinuities).
//! - [`playlist`]: the per-channel sliding window and its rendering.
//! - [`inspect`]: a structural TS checker for tests and benchmarks.
//!
//! The I/O edge is [`output`]: channels in memory (what the origin serves), and [`writer`], the
//! task that mirrors them to `<data>/hls/<username>/`.

pub mod aac;
pub mod avc;
pub mod flv;
pub mod inspect;
pub mod output;
pub mod packager;
pub mod playlist;
pub mod ts;
pub mod writer;

pub use output::HlsOutput;
