//! The rules every Boltstream component agrees on, with no I/O so the ingest (native) and the edge
//! filter (wasm32) compile the very same code and cannot drift apart.
//!
//! # Layout
//! - [`key`]: the stream-key format — generate, recognise without a database, redact, hash at rest.
//! - [`username`]: what a public channel name may be.
//! - [`route`]: a request path and query → a typed [`route::Route`], and the canonical path (cache key)
//!   of a live route.
//! - [`policy`]: the response headers (Cache-Control, Content-Type, CORS) a route gets.
//! - [`token`]: signed playback tokens for private channels — sign at the origin, verify at the
//!   edge and the origin.
//! - [`cases`]: the table of route/policy cases that the native tests and the wasm filter tests share.
#![no_std]

extern crate alloc;

pub mod cases;
pub mod key;
pub mod policy;
pub mod route;
pub mod token;
pub mod username;
