//! Boltstream's ingest host: takes RTMP from streamers, checks their stream keys, packages HLS in
//! process and serves it, with the website and API, under the streamer's public username.
//!
//! # Layout
//! - [`config`]: settings from flags, `BOLTSTREAM_*` environment variables and an optional TOML file.
//! - [`store`]: the SQLite database (users, hashed keys, live state), shared with the CLI.
//! - [`rtmp`]: the RTMP listener, one task per connection, and the publish decision.
//! - [`live`]: the registry of live publishes and the interface media flows through.
//! - [`hls`]: the I/O around the HLS core (crate `boltstream-hls`): channels, sinks, the disk.
//! - [`http`]: the HTTP listeners and routing, the top layer over [`origin`] (live media) and
//!   [`web`] (the website and the JSON API), which share only [`respond`].
//! - [`channel_info`]: a channel's title and category, and the one check they pass.
//! - [`chat`]: each channel's chat room over WebSocket.
//! - [`thumbs`]: live thumbnails, decoded from keyframes off the media path.
//! - [`record`]: past broadcasts: every public publish kept as video on demand.
//! - [`ops`]: operator actions (ban, stop, rotate a key …) for the CLI, the pages and the API.
//! - [`viewers`]: concurrent viewers per channel, from players' heartbeats.
//! - [`cli`]: the operator commands on the same database.
//! - [`server`]: wires the listeners together; [`shutdown`]: the graceful-stop signal;
//!   [`limits`]: per-address connection caps; [`ticks`]: the one clock periodic work shares;
//!   [`clock`]: the wall clock.

pub mod channel_info;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod hls;
pub mod http;
pub mod limits;
pub mod live;
pub mod nodes;
pub mod ops;
pub mod origin;
#[cfg(any(test, feature = "test-support"))]
pub mod pg_cluster;
pub mod playback;
pub mod read_cache;
pub mod record;
pub mod recording_index;
pub mod respond;
pub mod rtmp;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod thumbs;
pub mod ticks;
pub mod viewers;
pub mod web;
