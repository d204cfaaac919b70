//! Trace and span ids, as W3C trace context has them (128-bit trace, 64-bit span, lower-case
//! hex), and the flags a span's context carries. Depends on nothing in the crate.

use std::fmt;

/// A 128-bit trace id (W3C Trace Context), shown as 32 lower-case hex digits.
///
/// ```
/// let id = monitor_core::TraceId::from_u128(0xabc);
/// assert_eq!(id.to_string(), "00000000000000000000000000000abc");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

impl TraceId {
    /// A trace id from its numeric value.
    ///
    /// ```
    /// assert_eq!(monitor_core::TraceId::from_u128(7).to_u128(), 7);
    /// ```
    pub const fn from_u128(v: u128) -> Self {
        Self(v)
    }

    /// The numeric value.
    ///
    /// ```
    /// assert_eq!(monitor_core::TraceId::from_u128(7).to_u128(), 7);
    /// ```
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// The 32 lower-case hex digits, as ASCII, without allocating (e.g. for a header value).
    ///
    /// ```
    /// let id = monitor_core::TraceId::from_u128(0xabc);
    /// assert_eq!(id.to_hex(), *id.to_string().as_bytes());
    /// ```
    pub fn to_hex(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        put_hex(self.0, &mut out);
        out
    }
}

/// Writes the low `out.len()` nibbles of `v` into `out` as lower-case hex, most significant first.
pub(crate) fn put_hex(mut v: u128, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// A 64-bit span id, shown as 16 lower-case hex digits. Never zero.
///
/// ```
/// let id = monitor_core::SpanId::from_u64(0xff);
/// assert_eq!(id.to_string(), "00000000000000ff");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl SpanId {
    /// A span id from its numeric value.
    ///
    /// ```
    /// assert_eq!(monitor_core::SpanId::from_u64(9).to_u64(), 9);
    /// ```
    pub const fn from_u64(v: u64) -> Self {
        Self(v)
    }

    /// The numeric value.
    ///
    /// ```
    /// assert_eq!(monitor_core::SpanId::from_u64(9).to_u64(), 9);
    /// ```
    pub const fn to_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// Bits of a span context's flags.
pub(crate) mod flags {
    /// The span has a live record; its end makes a span record.
    pub(crate) const RECORDED: u8 = 1;
    /// The trace is sampled: its spans go to the observers as they end (W3C flag `01`).
    pub(crate) const SAMPLED: u8 = 2;
    /// The context came from another process: not a local call.
    pub(crate) const REMOTE: u8 = 4;
    /// What a child inherits from its parent.
    pub(crate) const INHERITED: u8 = RECORDED | SAMPLED;
}
