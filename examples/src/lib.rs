//! Runnable examples of `monitor`.
//!
//! [`vlite`] is a small instrumented service, a caching proxy in front of a simulated upstream,
//! with [`vlite::traffic`] to drive it. `examples/demo.rs` runs it and shows what the monitor
//! records. [`shop`] is a web shop of two axum services behind the monitor's middleware;
//! `examples/axum_service.rs` runs it alone, and the demo runs it beside the proxy.

pub mod shop;
pub mod vlite;
