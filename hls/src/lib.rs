//! Boltstream's HLS core: everything between FLV tag bodies from a publisher and the bytes and
//! decisions of a live HLS channel, with no sockets, files, clocks or runtime inside — the wall
//! clock is an argument — so it is tested with byte-exact fixtures, fuzzed, and benchmarked alone.
//! The ingest binary does the I/O around it.
//!
//! # Layout
//! - [`media`]: what a publish feeds in (FLV tag bodies, metadata) and why it can be refused.
//! - [`flv`]: FLV video/audio tag bodies → typed tags (zero-copy `Bytes` views).
//! - [`avc`]: AVCDecoderConfigurationRecord, AVCC → Annex B with AUD and SPS/PPS before IDRs.
//! - [`aac`]: AudioSpecificConfig and ADTS headers.
//! - [`ts`]: the MPEG-TS muxer (PAT/PMT, PES, continuity, PCR, stuffing).
//! - [`packager`]: media in, MPEG-TS segments out (keyframe cuts, timestamps, discontinuities,
//!   bounds).
//! - [`fmp4`]: the fragmented-MP4 (CMAF) writer: init sections and fragments.
//! - [`cmaf`]: media in, CMAF parts and segments out, for low-latency HLS.
//! - [`llchannel`]: one low-latency channel's state: what players fetch, the playlist's version,
//!   retiring.
//! - [`llhls`]: the low-latency playlist (parts, preload hint, server control) and the
//!   blocking-reload rules.
//! - [`playlist`]: the sliding window of listed segments and its rendering.
//! - [`channel`]: one channel's state across publishes — naming, generations, what is listed,
//!   retired and ended — taking events and returning the file effects to carry out.
//! - [`encrypt`]: AES-128 (CBC, PKCS7) of segments and parts for private streams.
//! - [`sps`]: the picture size from an H.264 SPS.
//! - [`date`]: wall-clock times as HLS writes them.
//! - [`inspect`]: a structural TS checker for tests, fuzzing and benchmarks.
//! - [`synthetic`]: realistic-shaped media for benchmarks.

pub mod aac;
pub mod avc;
pub mod channel;
pub mod cmaf;
pub mod date;
pub mod encrypt;
pub mod flv;
pub mod fmp4;
pub mod inspect;
pub mod llchannel;
pub mod llhls;
pub mod media;
pub mod packager;
pub mod playlist;
pub mod sps;
pub mod synthetic;
pub mod ts;
pub mod vod;
