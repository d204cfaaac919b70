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
        // Truncations meant: the two halves of the id.
        #[allow(clippy::cast_possible_truncation)]
        let (high, low) = ((self.0 >> 64) as u64, self.0 as u64);
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&hex16(high));
        out[16..].copy_from_slice(&hex16(low));
        out
    }
}

/// The 16 lower-case hex digits of `v`, as ASCII. Each nibble is spread into a byte of its own
/// (halves of ever smaller widths moved apart by shifts and masks), then each byte gets `'0'`
/// added, and `'a' - '0' - 10` more where it is 10 or above.
#[inline]
pub(crate) fn hex16(v: u64) -> [u8; 16] {
    const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let spread = |half: u32| {
        let x = u64::from(half);
        let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        let x = (x | x << 4) & LOW_NIBBLES;
        // 1 in each byte holding 10 or more (adding 6 carries it into the byte's high nibble).
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
    };
    // Truncations meant: the two halves of `v`.
    #[allow(clippy::cast_possible_truncation)]
    let (high, low) = ((v >> 32) as u32, v as u32);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&spread(high));
    out[8..].copy_from_slice(&spread(low));
    out
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

#[cfg(test)]
mod tests {
    use super::{hex16, TraceId};

    #[test]
    fn hex_digits() {
        let v = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128;
        let hex = |v: u128| String::from_utf8(TraceId::from_u128(v).to_hex().to_vec()).unwrap();
        assert_eq!(hex(v), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(&hex16(0xab)[14..], b"ab");
        for n in [0u128, 1, 0xab, u128::MAX, u128::from(u64::MAX)] {
            assert_eq!(hex(n), format!("{n:032x}"));
        }
        // Every nibble value in every position.
        for digit in 0..16u128 {
            for at in 0..32 {
                let n = digit << (4 * at) | 0x5a5a << (4 * ((at + 8) % 28));
                assert_eq!(hex(n), format!("{n:032x}"));
            }
        }
    }
}
