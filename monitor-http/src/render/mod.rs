//! Renderers: pure functions from a [`Snapshot`](monitor_core::Snapshot) to text in each format.

pub(crate) mod active;
pub(crate) mod dot;
pub(crate) mod expvar;
pub(crate) mod history;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod prometheus;
pub(crate) mod stats;
pub(crate) mod text;
pub(crate) mod trace;
pub(crate) mod util;
