//! Boltstream's edge filter: a proxy-wasm HTTP filter loaded into Envoy in front of the origins.
//!
//! Every decision is a call into `boltstream-shared`, so the edge and the origin cannot disagree.
//! The pure decisions live in [`decision`] and [`config`] and are tested natively; the proxy-wasm glue
//! ([`glue`], wasm only) stays thin: one root context that parses the plugin configuration once, and
//! per-request contexts that make as few host calls as possible (each costs more than the logic).
//!
//! # Layout
//! - [`config`]: the plugin configuration (JSON) and its validation.
//! - [`decision`]: what to do with a request and which headers a response gets.
//! - `glue` (wasm32 only): the proxy-wasm root and HTTP contexts.

pub mod config;
pub mod decision;

#[cfg(target_family = "wasm")]
mod glue;
