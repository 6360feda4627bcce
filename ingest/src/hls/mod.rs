//! The I/O around the HLS core (the `boltstream-hls` crate, which packages and decides without
//! touching a file or a clock): what nginx-rtmp's `hls` application did, without a second
//! connection (so no first GOP is lost) and without ffmpeg.
//!
//! - [`output`]: every channel's state, the sink a publish's media goes into, and the carrying out
//!   of what the channels decide.
//! - [`lowlatency`]: the CMAF output's channels, its sink, and the holding of blocking requests.
//! - [`keys`]: a private publish's media keys and their rotation.
//! - [`disk`]: all segment file I/O, writes and reads, with the read cache; reports completions
//!   over a channel.

pub mod disk;
pub mod keys;
pub mod lowlatency;
pub mod output;

pub use output::HlsOutput;
