//! W3C Trace Context: the `traceparent` and `tracestate` header values.

use std::fmt;
use std::str::FromStr;

use crate::ids::{hex16, SpanId, TraceId};

/// Why a `traceparent` or `tracestate` value was refused. Receivers ignore such headers and
/// start a new trace, as the W3C recommendation says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// Not `version-traceid-parentid-flags` with the right widths of lower-case hex.
    #[error("traceparent `{0}` is malformed; expected e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
    Malformed(String),
    /// Version `ff`, which is never valid.
    #[error("traceparent version ff is invalid")]
    BadVersion,
    /// An all-zero trace id or parent id.
    #[error("traceparent has an all-zero trace id or parent id")]
    ZeroId,
    /// A `tracestate` member that is not `key=value` by the grammar, or a duplicate key.
    #[error("tracestate member `{0}` is invalid (keys: lower-case, digits, `_-*/`, optionally `tenant@system`; values: printable ASCII without `,` and `=`)")]
    BadMember(String),
    /// More than 32 `tracestate` members.
    #[error("tracestate has more than 32 members")]
    TooManyMembers,
}

/// A parsed `traceparent`: the caller's trace id, its span id and the trace flags.
///
/// ```
/// use monitor_core::trace::TraceParent;
/// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert!(tp.sampled());
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert!("00-00000000000000000000000000000000-00f067aa0ba902b7-01".parse::<TraceParent>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The caller's span (our parent).
    pub parent_id: SpanId,
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

fn hex_lower(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TraceParent {
    /// A traceparent for the given ids.
    ///
    /// ```
    /// use monitor_core::{trace::TraceParent, SpanId, TraceId};
    /// let tp = TraceParent::new(TraceId::from_u128(1), SpanId::from_u64(2), true);
    /// assert_eq!(tp.to_string(), "00-00000000000000000000000000000001-0000000000000002-01");
    /// ```
    pub fn new(trace_id: TraceId, parent_id: SpanId, sampled: bool) -> TraceParent {
        TraceParent { trace_id, parent_id, flags: u8::from(sampled) }
    }

    /// Whether the caller sampled the trace (flag bit 0).
    ///
    /// ```
    /// # use monitor_core::{trace::TraceParent, SpanId, TraceId};
    /// assert!(!TraceParent::new(TraceId::from_u128(1), SpanId::from_u64(2), false).sampled());
    /// ```
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Parses a header value by the W3C rules: version 00 is exactly 55 characters; a higher
    /// version may carry more fields after a `-`, of which the first four are read.
    ///
    /// ```
    /// use monitor_core::trace::TraceParent;
    /// assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_ok());
    /// assert!(TraceParent::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<TraceParent, TraceContextError> {
        let bad = || TraceContextError::Malformed(value.chars().take(100).collect());
        let v = value.trim_matches(|c| c == ' ' || c == '\t');
        // ASCII only: every index below is then a character boundary (a header value that is
        // not ASCII is malformed anyway).
        if v.len() < 55 || !v.is_ascii() {
            return Err(bad());
        }
        let (head, rest) = v.split_at(55);
        let version = &head[0..2];
        if !hex_lower(version) {
            return Err(bad());
        }
        if version == "ff" {
            return Err(TraceContextError::BadVersion);
        }
        if (version == "00" && !rest.is_empty()) || (!rest.is_empty() && !rest.starts_with('-')) {
            return Err(bad());
        }
        let b = head.as_bytes();
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(bad());
        }
        let (trace, parent, flags) = (&head[3..35], &head[36..52], &head[53..55]);
        if !hex_lower(trace) || !hex_lower(parent) || !hex_lower(flags) {
            return Err(bad());
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad())?;
        let parent_id = u64::from_str_radix(parent, 16).map_err(|_| bad())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad())?;
        if trace_id == 0 || parent_id == 0 {
            return Err(TraceContextError::ZeroId);
        }
        Ok(TraceParent {
            trace_id: TraceId::from_u128(trace_id),
            parent_id: SpanId::from_u64(parent_id),
            flags,
        })
    }
}

impl FromStr for TraceParent {
    type Err = TraceContextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

impl TraceParent {
    /// The header value (version 00) as ASCII, without allocating: what [`fmt::Display`]
    /// writes.
    ///
    /// ```
    /// use monitor_core::trace::TraceParent;
    /// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// assert_eq!(tp.to_bytes(), *tp.to_string().as_bytes());
    /// ```
    pub fn to_bytes(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[0] = b'0';
        out[1] = b'0';
        out[3..35].copy_from_slice(&self.trace_id.to_hex());
        out[36..52].copy_from_slice(&hex16(self.parent_id.to_u64()));
        out[53..55].copy_from_slice(&hex16(u64::from(self.flags))[14..]);
        out
    }
}

impl fmt::Display for TraceParent {
    /// Always version 00, as the recommendation asks of senders.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

/// A parsed `tracestate`: vendor key/value pairs, most recent first, at most 32.
///
/// ```
/// use monitor_core::trace::TraceState;
/// let mut ts = TraceState::parse("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE").unwrap();
/// assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
/// ts.insert("mon", "1").unwrap();
/// assert_eq!(ts.to_string(), "mon=1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert!(TraceState::parse("Bad=1").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

const MAX_MEMBERS: usize = 32;

fn key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

fn valid_key(k: &str) -> bool {
    match k.split_once('@') {
        None => {
            k.len() <= 256
                && k.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                && k.bytes().all(key_char)
        }
        Some((tenant, system)) => {
            (1..=241).contains(&tenant.len())
                && (1..=14).contains(&system.len())
                && tenant.as_bytes()[0].is_ascii_alphanumeric()
                && !tenant.as_bytes()[0].is_ascii_uppercase()
                && tenant.bytes().all(key_char)
                && system.as_bytes()[0].is_ascii_lowercase()
                && system.bytes().all(key_char)
        }
    }
}

fn valid_value(v: &str) -> bool {
    (1..=256).contains(&v.len())
        && v.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !v.ends_with(' ')
}

impl TraceState {
    /// Parses a header value (several `tracestate` headers: join them with `,` first). Empty
    /// members are skipped; an invalid member or duplicate key refuses the whole value.
    ///
    /// ```
    /// assert_eq!(monitor_core::trace::TraceState::parse("a=1,,b=2").unwrap().len(), 2);
    /// ```
    pub fn parse(value: &str) -> Result<TraceState, TraceContextError> {
        let mut members: Vec<(String, String)> = Vec::new();
        for m in value.split(',') {
            let m = m.trim_matches(|c| c == ' ' || c == '\t');
            if m.is_empty() {
                continue;
            }
            let bad = || TraceContextError::BadMember(m.chars().take(100).collect());
            let (k, v) = m.split_once('=').ok_or_else(bad)?;
            if !valid_key(k) || !valid_value(v) || members.iter().any(|(mk, _)| mk == k) {
                return Err(bad());
            }
            if members.len() == MAX_MEMBERS {
                return Err(TraceContextError::TooManyMembers);
            }
            members.push((k.to_string(), v.to_string()));
        }
        Ok(TraceState { members })
    }

    /// The value of `key`.
    ///
    /// ```
    /// assert_eq!(monitor_core::trace::TraceState::default().get("x"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` and moves it to the front, as a vendor updating its entry must; the 33rd
    /// member drops the oldest.
    ///
    /// ```
    /// let mut ts = monitor_core::trace::TraceState::default();
    /// assert!(ts.insert("UPPER", "1").is_err());
    /// ```
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceContextError> {
        if !valid_key(key) || !valid_value(value) {
            return Err(TraceContextError::BadMember(format!("{key}={value}")));
        }
        self.members.retain(|(k, _)| k != key);
        self.members.insert(0, (key.to_string(), value.to_string()));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Number of members.
    ///
    /// ```
    /// assert_eq!(monitor_core::trace::TraceState::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members (then no `tracestate` header is sent).
    ///
    /// ```
    /// assert!(monitor_core::trace::TraceState::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twenty thousand generated headers, mostly near-valid: parsing never panics, and what
    /// parses prints back in the W3C form.
    #[test]
    fn any_header_parses_or_is_refused() {
        const PIECES: &[&str] = &[
            "00",
            "01",
            "ff",
            "-",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            "00000000000000000000000000000000",
            "0000000000000000",
            "ABCDEF",
            "g",
            " ",
            "\t",
            ",",
            "=",
            "@",
            "vendor",
            "k",
            "v",
            "é",
            "\0",
            "🦀",
            "0",
            "9",
            "--",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let n = next() % 9;
            let s: String =
                (0..n).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            if let Ok(tp) = TraceParent::parse(&s) {
                let shown = tp.to_string();
                assert_eq!(TraceParent::parse(&shown).map(|p| p.to_string()), Ok(shown));
            }
            if let Ok(ts) = TraceState::parse(&s) {
                assert_eq!(
                    TraceState::parse(&ts.to_string()).map(|t| t.to_string()),
                    Ok(ts.to_string())
                );
            }
        }
    }

    #[test]
    fn bytes_match_the_display_form() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let tp = TraceParent {
                trace_id: TraceId::from_u128((u128::from(x) << 64) | u128::from(x.rotate_left(7))),
                parent_id: SpanId::from_u64(x | 1),
                flags: (x >> 56) as u8,
            };
            assert_eq!(tp.to_bytes(), *tp.to_string().as_bytes());
            assert_eq!(tp.trace_id.to_hex(), *tp.trace_id.to_string().as_bytes());
        }
    }

    #[test]
    fn traceparent_rules() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(TraceParent::parse(ok).is_ok());
        assert!(TraceParent::parse(&format!("{ok}-")).is_err(), "v00 is exactly 55 chars");
        assert!(TraceParent::parse(&ok[..54]).is_err());
        assert_eq!(
            TraceParent::parse(&ok.replacen("00", "ff", 1)),
            Err(TraceContextError::BadVersion)
        );
        assert!(TraceParent::parse(&ok.replace('-', "_")).is_err());
        assert!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_err()
        );
        assert!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x").is_err()
        );
        assert!(
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_ok()
        );
        assert!(
            TraceParent::parse("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_err()
        );
        assert!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z").is_err()
        );
        assert!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01").is_err()
        );
        let tp = TraceParent::parse(ok).unwrap();
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_string(), ok);
    }

    #[test]
    fn tracestate_rules() {
        assert!(TraceState::parse("a=1,a=2").is_err());
        assert!(TraceState::parse("a=").is_err());
        assert!(TraceState::parse("a=b=c").is_err());
        assert!(TraceState::parse("a=1 ").is_ok());
        assert!(TraceState::parse("t1@sys=x").is_ok());
        assert!(TraceState::parse("@sys=x").is_err());
        assert!(TraceState::parse("t@Sys=x").is_err());
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(TraceState::parse(&many.join(",")), Err(TraceContextError::TooManyMembers));
        assert_eq!(TraceState::parse(&many[..32].join(",")).unwrap().len(), 32);
    }
}
