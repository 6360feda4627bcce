//! Boltstream's ingest host: takes RTMP from streamers, checks their stream keys, packages HLS in
//! process and serves it, with the website and API, under the streamer's public username.
//!
//! # Layout
//! - [`config`]: settings from flags, `BOLTSTREAM_*` environment variables and an optional TOML file.
//! - [`store`]: the SQLite database (users, hashed keys, live state), shared with the CLI.
//! - [`rtmp`]: the RTMP listener, one task per connection, and the publish decision.
//! - [`live`]: the registry of live publishes and the interface media flows through.
//! - [`hls`]: the sans-IO packager (FLV payloads → MPEG-TS segments and playlists) and its output.
//! - [`http`]: the HTTP server and the origin for live media.
//! - [`web`]: the website and the JSON API.
//! - [`cli`]: the operator commands on the same database.
//! - [`server`]: wires the listeners together; [`shutdown`]: the graceful-stop signal;
//!   [`limits`]: per-address connection caps; [`ticks`]: the one clock periodic work shares.

pub mod cli;
pub mod config;
pub mod hls;
pub mod http;
pub mod limits;
pub mod live;
pub mod rtmp;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod ticks;
pub mod web;
