//! Runnable examples of `monitor`; see `examples/demo.rs`.
