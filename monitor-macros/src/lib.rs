//! Procedural macros of `monitor`: `#[monitored]`, `#[derive(ErrorKind)]` and
//! `#[derive(Metrics)]`.
//!
//! Use them through `monitor-core`, which re-exports all three; the generated code refers to
//! `::monitor_core` (or the path given with `crate = …`).
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proc_macro::TokenStream;

mod error_kind;
mod metrics_derive;
mod monitored;

/// Records every call of a function, method, `async fn` or every method of an `impl` block:
/// calls in flight, highwater, outcomes (success, error by kind, panic, cancelled), latency
/// distributions and the caller. See the `monitor-core` crate documentation.
///
/// Options: `name = "…"` (instead of the function's path), `category = "…"` (free text such as
/// `"sql"` or `"http"`), `skip` (on a method inside a monitored `impl` block), `crate = path`
/// (where `monitor_core` is, when renamed).
///
/// # Examples
///
/// ```
/// use monitor_core::monitored;
///
/// #[monitored(name = "orders::place", category = "db")]
/// fn place(qty: u32) -> Result<u32, String> {
///     if qty == 0 {
///         return Err("empty order".into());
///     }
///     Ok(qty)
/// }
///
/// struct Cart;
///
/// #[monitored]
/// impl Cart {
///     async fn checkout(&self) -> u32 { 1 }
///
///     #[monitored(skip)]
///     fn helper(&self) {}
/// }
///
/// assert!(place(0).is_err());
/// let snap = monitor_core::registry().snapshot();
/// assert_eq!(snap.function("orders::place").unwrap().error("String"), 1);
/// ```
#[proc_macro_attribute]
pub fn monitored(args: TokenStream, item: TokenStream) -> TokenStream {
    monitored::expand(args.into(), item.into()).into()
}

/// Implements `ErrorKind` so `#[monitored]` counts each error under its variant's name (or the
/// type's name, for a struct). `#[monitor(kind = "…")]` on a variant or the type overrides it.
///
/// # Examples
///
/// ```
/// use monitor_core::ErrorKind;
///
/// #[derive(Debug, ErrorKind)]
/// enum PayError {
///     Declined,
///     #[monitor(kind = "gateway_timeout")]
///     Timeout { after_ms: u64 },
/// }
///
/// assert_eq!(PayError::Declined.error_kind(), "Declined");
/// assert_eq!(PayError::Timeout { after_ms: 5 }.error_kind(), "gateway_timeout");
/// ```
#[proc_macro_derive(ErrorKind, attributes(monitor))]
pub fn derive_error_kind(input: TokenStream) -> TokenStream {
    error_kind::expand(input.into()).into()
}

/// Implements `monitor_core::Metrics` for a struct of instruments: each field is registered
/// as `<prefix>.<field>` with its doc comment as description. Options: `#[metric(prefix =
/// "…")]` on the struct; `#[metric(name = "…")]`, `#[metric(skip)]`, `#[metric(tags(k =
/// "v"))]` on fields.
///
/// # Examples
///
/// ```
/// use monitor_core::{Counter, Metrics, Scope};
///
/// #[derive(Metrics)]
/// #[metric(prefix = "http")]
/// struct Http {
///     /// Requests served.
///     requests: Counter,
/// }
///
/// let http = Http::register(&Scope::new("metrics_macro_doc"));
/// http.requests.inc();
/// assert!(monitor_core::registry().snapshot().metric("metrics_macro_doc", "http.requests").is_some());
/// ```
#[proc_macro_derive(Metrics, attributes(metric))]
pub fn derive_metrics(input: TokenStream) -> TokenStream {
    metrics_derive::expand(input.into()).into()
}
