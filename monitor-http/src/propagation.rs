//! W3C Trace Context over `http::HeaderMap`: continue a caller's trace from its `traceparent`
//! and `tracestate` headers, and send the current span's to the next service.
//!
//! ```
//! use http::HeaderMap;
//! use monitor_core::monitored;
//! use monitor_http::propagation::{extract, inject};
//!
//! #[monitored(name = "propagation_doc::handle")]
//! fn handle(state: &monitor_core::trace::TraceState) -> HeaderMap {
//!     // An outgoing request made here carries this call as the parent.
//!     let mut out = HeaderMap::new();
//!     inject(&monitor_core::Span::current(), Some(state), &mut out);
//!     out
//! }
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
//! incoming.insert("tracestate", "vendor=abc".parse().unwrap());
//! let remote = extract(&incoming).unwrap();
//! let out = remote.span().in_scope(|| handle(&remote.state));
//! assert!(out["traceparent"].to_str().unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! assert_eq!(out["tracestate"], "vendor=abc");
//! ```

use http::header::{HeaderMap, HeaderName, HeaderValue};
use monitor_core::trace::{TraceParent, TraceState};
use monitor_core::Span;

/// The `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A caller's trace context, from its request headers.
///
/// ```
/// # use monitor_http::propagation::RemoteContext;
/// fn trace_of(ctx: &RemoteContext) -> monitor_core::TraceId { ctx.parent.trace_id }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteContext {
    /// The caller's trace, span and flags.
    pub parent: TraceParent,
    /// Its vendor entries (empty when absent or invalid).
    pub state: TraceState,
}

impl RemoteContext {
    /// The span to run the request's handling under (see [`Span::from_remote`]).
    ///
    /// ```
    /// # use monitor_http::propagation::extract;
    /// let mut h = http::HeaderMap::new();
    /// h.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".parse().unwrap());
    /// let span = extract(&h).unwrap().span();
    /// assert!(!span.is_sampled());
    /// ```
    pub fn span(&self) -> Span {
        Span::from_remote(self.parent)
    }
}

/// Reads `traceparent` and `tracestate` by the W3C rules. `None` when there is no valid
/// `traceparent` (absent, malformed, or sent more than once): start a new trace then. An
/// invalid `tracestate` is dropped and the `traceparent` kept; several `tracestate` headers are
/// joined in order.
///
/// ```
/// let mut h = http::HeaderMap::new();
/// h.insert("traceparent", "garbage".parse().unwrap());
/// assert_eq!(monitor_http::propagation::extract(&h), None);
/// ```
pub fn extract(headers: &HeaderMap) -> Option<RemoteContext> {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let parent = TraceParent::parse(first.to_str().ok()?).ok()?;
    let joined: Option<Vec<&str>> =
        headers.get_all(TRACESTATE).iter().map(|v| v.to_str().ok()).collect();
    let state =
        joined.and_then(|parts| TraceState::parse(&parts.join(",")).ok()).unwrap_or_default();
    Some(RemoteContext { parent, state })
}

/// Bytes of header values are cut from a chunk of this size, per thread.
const HEADER_CHUNK: usize = 16 * 1024;

std::thread_local! {
    /// The rest of this thread's chunk.
    static HEADER_BYTES: std::cell::RefCell<bytes::BytesMut> =
        std::cell::RefCell::new(bytes::BytesMut::new());
}

/// A header value of `bytes` (a `traceparent`, a trace id) that shares a per-thread 16 KiB
/// chunk with the values made before it, so a request's header costs no allocation of its
/// own: one chunk serves about 290 `traceparent`s, and is freed when the last value cut from
/// it is dropped. `None` if `bytes` is not a valid header value.
pub(crate) fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    HEADER_BYTES
        .with(|chunk| {
            let mut chunk = chunk.try_borrow_mut().ok()?;
            if chunk.capacity() - chunk.len() < bytes.len() {
                *chunk = bytes::BytesMut::with_capacity(HEADER_CHUNK.max(bytes.len()));
            }
            chunk.extend_from_slice(bytes);
            let bytes = chunk.split().freeze();
            if !visible_ascii(&bytes) {
                return HeaderValue::from_maybe_shared(bytes).ok();
            }
            // SAFETY: every byte was just checked to be visible ASCII or a space, all of which a
            // header value may hold; the check this skips costs a branch per byte.
            #[allow(unsafe_code)]
            Some(unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) })
        })
        .or_else(|| HeaderValue::from_bytes(bytes).ok())
}

/// Whether every byte of `bytes` is visible ASCII or a space: a header value may hold them.
/// No early exit, so that it is checked many bytes at a time.
fn visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & (b' '..=b'~').contains(&b))
}

/// Writes `span`'s `traceparent` (and `state`, if not empty, as `tracestate`) into `headers`,
/// replacing any there. Does nothing for the empty span.
///
/// ```
/// let mut h = http::HeaderMap::new();
/// monitor_http::propagation::inject(&monitor_core::Span::none(), None, &mut h);
/// assert!(h.is_empty());
/// ```
pub fn inject(span: &Span, state: Option<&TraceState>, headers: &mut HeaderMap) {
    let Some(tp) = span.traceparent() else { return };
    if let Some(v) = header_value(&tp.to_bytes()) {
        headers.insert(TRACEPARENT, v);
    }
    match state.filter(|s| !s.is_empty()).map(|s| HeaderValue::from_str(&s.to_string())) {
        Some(Ok(v)) => {
            headers.insert(TRACESTATE, v);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn header_values_hold_their_bytes_and_refuse_what_a_header_may_not_hold() {
        // Visible ASCII takes the unchecked path (whose check `http` repeats in debug builds),
        // anything else the checked one.
        let printable: Vec<u8> = (b' '..=b'~').collect();
        assert_eq!(header_value(&printable).map(|v| v.as_bytes().to_vec()), Some(printable));
        assert_eq!(header_value(TP.as_bytes()).expect("valid").to_str().ok(), Some(TP));
        for bad in [&b"a\x00b"[..], b"line\r\nbreak", b"del\x7f"] {
            assert!(header_value(bad).is_none(), "{bad:?}");
        }
        let obs_text = "caf\u{e9}".as_bytes();
        assert_eq!(header_value(obs_text).map(|v| v.as_bytes().to_vec()), Some(obs_text.to_vec()));
        assert!(!visible_ascii(b"\tx") && visible_ascii(b"") && visible_ascii(b" ~"));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn extract_follows_the_rules() {
        let ctx =
            extract(&headers(&[("traceparent", TP), ("tracestate", "a=1"), ("tracestate", "b=2")]))
                .unwrap();
        assert_eq!(ctx.parent.to_string(), TP);
        assert_eq!(ctx.state.to_string(), "a=1,b=2");
        // Header names are case-insensitive.
        assert!(extract(&headers(&[("TraceParent", TP)])).is_some());
        assert_eq!(extract(&headers(&[("traceparent", TP), ("traceparent", TP)])), None);
        assert_eq!(extract(&headers(&[("traceparent", &TP.to_uppercase())])), None);
        assert_eq!(extract(&HeaderMap::new()), None);
        let bad_state = extract(&headers(&[("traceparent", TP), ("tracestate", "A=1")])).unwrap();
        assert!(bad_state.state.is_empty(), "an invalid tracestate is dropped, traceparent kept");
    }
}
