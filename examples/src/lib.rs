//! Runnable examples of `monitor`.
//!
//! [`vlite`] is a small instrumented service, a caching proxy in front of a simulated upstream,
//! with [`vlite::traffic`] to drive it. `examples/demo.rs` runs it and shows what the monitor
//! records.

pub mod vlite;
