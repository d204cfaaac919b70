//! Procedural macros of `monitor`: `#[monitored]` and `#[derive(ErrorName)]`.
//!
//! Use them through `monitor-core`, which re-exports both; the generated code refers to
//! `::monitor_core` (or the path given with `crate = …`).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proc_macro::TokenStream;

mod error_name;
mod monitored;

/// Records every call of a function, method, `async fn` or every method of an `impl` block:
/// calls in flight, highwater, outcomes (success, error by kind, panic, cancelled), latency
/// distributions and the caller. See the `monitor-core` crate documentation.
///
/// Options: `name = "…"` (instead of the function's path), `category = "…"` (free text such as
/// `"sql"` or `"http"`), `skip` (on a method inside a monitored `impl` block), `crate = path`
/// (where `monitor_core` is, when renamed).
#[proc_macro_attribute]
pub fn monitored(args: TokenStream, item: TokenStream) -> TokenStream {
    monitored::expand(args.into(), item.into()).into()
}

/// Implements `ErrorName` so `#[monitored]` counts each error under its variant's name (or the
/// type's name, for a struct). `#[monitor(name = "…")]` on a variant or the type overrides it.
#[proc_macro_derive(ErrorName, attributes(monitor))]
pub fn derive_error_name(input: TokenStream) -> TokenStream {
    error_name::expand(input.into()).into()
}
