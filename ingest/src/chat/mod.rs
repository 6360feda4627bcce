//! Chat: one room per channel over WebSocket. Anyone who may watch a channel reads its room;
//! signed-in users write; the streamer and admins delete messages, time users out and ban them.
//! Messages are plain text (the page shows them with `textContent`), stored in the database (the
//! last ones are shown on join), and fanned out once per room.
//!
//! - [`text`]: what a message may be, the send rate, and the client's frames — pure rules.
//! - [`room`]: the rooms and their fan-out.
//! - [`bus`]: the fan-out across nodes, over NATS, for a site of several nodes.
//!
//! The WebSocket connections themselves (the upgrade, each connection's loop and bounds) are a
//! page of the website: `web/chat.rs`.

pub mod bus;
pub mod room;
pub mod text;

pub use room::ChatHub;
