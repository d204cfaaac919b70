//! Presentation and export for `monitor`: renderers over a [`monitor_core::Snapshot`] and the
//! HTTP server that serves them.
//!
//! This crate is being built; for now it offers [`write_text`], a plain-text rendering of the
//! function statistics.
#![deny(missing_docs)]

mod text;

pub use text::write_text;
