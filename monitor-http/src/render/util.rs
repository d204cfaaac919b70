//! Escaping and number formatting shared by the renderers.

use std::borrow::Cow;
use std::fmt::{self, Write};

/// Appends `s` with each character `escape` replaces replaced: runs of characters that need
/// no escape (most of any name) are copied whole. Every renderer's escaping goes through here.
pub(crate) fn push_escaped(
    s: &str,
    out: &mut String,
    escape: impl Fn(char) -> Option<Cow<'static, str>>,
) {
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        if let Some(escaped) = escape(c) {
            out.push_str(&s[plain..i]);
            out.push_str(&escaped);
            plain = i + c.len_utf8();
        }
    }
    out.push_str(&s[plain..]);
}

/// Appends `n` in decimal, without the formatting machinery (this runs for every line).
pub(crate) fn push_u64(n: u64, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `n` in decimal: [`push_u64`] for any that fits, which is every sum of durations
/// shorter than 584 years.
pub(crate) fn push_u128(n: u128, out: &mut String) {
    match u64::try_from(n) {
        Ok(n) => push_u64(n, out),
        Err(_) => {
            let _ = write!(out, "{n}");
        }
    }
}

/// Whether every byte of `bytes` is printable ASCII other than `"` and `\\`: a string that
/// needs no escape in JSON or in a Prometheus label value. Eight bytes at a time: the names
/// of 10,000 functions go through here on every `/funcs/json` and `/metrics`.
pub(crate) fn plain_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    // High bit of each zero byte of `w` set (and none, if no byte is zero).
    let zero_bytes = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let plain = |w: u64| {
        // Bytes below 0x20 (exact for a bound up to 0x80), bytes from 0x80 up, quotes and
        // backslashes.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let quote = zero_bytes(w ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(w ^ (ONES * u64::from(b'\\')));
        control | (w & HIGH) | quote | backslash == 0
    };
    let mut words = bytes.chunks_exact(8);
    let all_words = words.by_ref().all(|w| {
        let mut word = [0; 8];
        word.copy_from_slice(w);
        plain(u64::from_ne_bytes(word))
    });
    all_words
        && words.remainder().iter().all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_str(s: &str, out: &mut String) {
    out.push('"');
    // Most strings (every function's name) are printable ASCII without quotes or backslashes:
    // one scan of their bytes, then one copy. Escaping char by char was a third of /funcs/json.
    if plain_ascii(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    push_escaped(s, out, |c| match c {
        '"' => Some("\\\"".into()),
        '\\' => Some("\\\\".into()),
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        '\t' => Some("\\t".into()),
        c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
            Some(format!("\\u{:04x}", u32::from(c)).into())
        }
        _ => None,
    });
    out.push('"');
}

/// Appends `v` as a JSON number. JSON has no NaN or infinity: those are written as 0, so a
/// consumer never chokes on the document (the values we produce are finite anyway).
pub(crate) fn json_f64(v: f64, out: &mut String) {
    if !v.is_finite() {
        out.push('0');
    } else if v == v.trunc() && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if v.abs() >= 1e15 || v.abs() < 1e-5 {
        // With an exponent: `{}` writes `f64::MAX` as 309 digits, which JSON readers refuse
        // as an integer out of range.
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A quantile with two decimals (`0.25`, `1.00`), as the JSON keys and the text view name them.
/// Written from integers: formatting a float to a fixed precision takes the standard library's
/// exact (big-number) path, which was the largest single cost of rendering `/funcs/json`.
pub(crate) struct Quantile(pub(crate) f64);

impl fmt::Display for Quantile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hundredths = (self.0 * 100.0).round();
        if !(0.0..=1e15).contains(&hundredths) {
            return write!(f, "{:.2}", self.0);
        }
        let h = hundredths as u64;
        write!(f, "{}.{:02}", h / 100, h % 100)
    }
}

/// Appends `s` escaped for HTML text and attribute values. Characters XML does not allow and
/// the bidirectional controls (an override in a name would reorder the text after it, the
/// numbers beside the name included) are written as U+FFFD.
pub(crate) fn html(s: &str, out: &mut String) {
    push_escaped(s, out, |c| match c {
        '&' => Some("&amp;".into()),
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        '"' => Some("&quot;".into()),
        '\'' => Some("&#39;".into()),
        c if !xml_char(c) || bidi_control(c) => Some(REPLACEMENT.into()),
        _ => None,
    });
}

/// The characters that change the direction of the text around them.
const fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` for a line of a text view: line breaks, other control characters (a terminal would
/// act on an escape sequence in a name) and bidirectional controls written as Rust escapes,
/// `\n`, `\u{1b}`, `\u{202e}`.
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || bidi_control(c)) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(s, &mut out, |c| match c {
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        '\t' => Some("\\t".into()),
        c if c.is_control() || bidi_control(c) => Some(format!("\\u{{{:x}}}", u32::from(c)).into()),
        _ => None,
    });
    out.into()
}

/// What stands for a character a format cannot carry at all, even escaped.
pub(crate) const REPLACEMENT: &str = "\u{fffd}";

/// Whether XML 1.0 allows `c` in a document (as itself or as a character reference): not
/// the C0 controls but tab and line breaks, nor U+FFFE and U+FFFF. SVG is XML, and the HTML
/// pages follow the same rule.
pub(crate) fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

/// `current: …, highwater: …, success: …, errors: …, panics: …, cancelled: …` of a function,
/// as the text and dot views show it.
pub(crate) fn counts_line(f: &monitor_core::FunctionStats) -> String {
    format!(
        "current: {}, highwater: {}, success: {}, errors: {}, panics: {}, cancelled: {}",
        f.in_flight,
        f.highwater,
        f.success,
        f.errors_total(),
        f.panics,
        f.cancelled
    )
}

/// A duration in nanoseconds, shown with four significant digits in the largest fitting unit.
pub(crate) struct Nanos(pub(crate) u128);

impl std::fmt::Display for Nanos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        let (value, unit) = match ns {
            0..=999 => return write!(f, "{ns}ns"),
            1_000..=999_999 => (ns as f64 / 1e3, "µs"),
            1_000_000..=999_999_999 => (ns as f64 / 1e6, "ms"),
            _ => (ns as f64 / 1e9, "s"),
        };
        let decimals = match value {
            v if v < 10.0 => 3,
            v if v < 100.0 => 2,
            v if v < 1000.0 => 1,
            _ => 0,
        };
        write!(f, "{value:.decimals$}{unit}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut s = String::new();
            super::push_u64(n, &mut s);
            assert_eq!(s, n.to_string());
        }
        for n in [0, 99, u128::from(u64::MAX), u128::from(u64::MAX) + 1, u128::MAX] {
            let mut s = String::new();
            super::push_u128(n, &mut s);
            assert_eq!(s, n.to_string());
        }
    }

    use super::*;

    #[test]
    fn durations_read_well() {
        let show = |ns| Nanos(ns).to_string();
        assert_eq!(show(0), "0ns");
        assert_eq!(show(999), "999ns");
        assert_eq!(show(1_500), "1.500µs");
        assert_eq!(show(5_079_039), "5.079ms");
        assert_eq!(show(61_079_551), "61.08ms");
        assert_eq!(show(7_516_155_880), "7.516s");
        assert_eq!(show(7_516_155_880_000), "7516s");
    }

    /// The eight-bytes-at-a-time check says what a byte-by-byte one says, for every byte
    /// value at every position of words and their remainders.
    #[test]
    fn plain_ascii_is_exact() {
        let slow = |bytes: &[u8]| {
            bytes.iter().all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
        };
        for len in [1, 7, 8, 9, 16, 19] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(super::plain_ascii(&bytes), slow(&bytes), "{b:#x} at {at} of {len}");
                }
            }
        }
        assert!(super::plain_ascii(b""));
    }

    #[test]
    fn json_escapes_and_numbers() {
        let mut s = String::new();
        json_str("a\"b\\c\n\u{1}\u{2028}é", &mut s);
        assert_eq!(s, r#""a\"b\\c\n\u0001\u2028é""#);
        for plain in ["", "plain", "é✓"] {
            let mut s = String::new();
            json_str(plain, &mut s);
            assert_eq!(s, format!("\"{plain}\""));
        }
        for (v, want) in [(1.0, "1"), (0.25, "0.25"), (f64::NAN, "0"), (f64::INFINITY, "0")] {
            let mut s = String::new();
            json_f64(v, &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn quantiles_have_two_decimals() {
        let show = |q| Quantile(q).to_string();
        let shown: Vec<String> = monitor_core::QUANTILES.iter().map(|&q| show(q)).collect();
        let want = ["0.00", "0.10", "0.25", "0.50", "0.75", "0.90", "0.95", "0.99", "1.00"];
        assert_eq!(shown, want);
        assert_eq!(
            (show(0.999), show(0.001), show(12.5)),
            ("1.00".into(), "0.00".into(), "12.50".into())
        );
        assert_eq!(show(-0.5), "-0.50");
        for q in [0.0, 0.05, 0.333, 0.5, 0.875, 0.999] {
            assert_eq!(show(q), format!("{q:.2}"), "as the standard library rounds");
        }
    }

    #[test]
    fn escaping_copies_runs_and_replaces_the_rest() {
        let drop_r = |c| (c == '\r').then_some(Cow::Borrowed(""));
        for (s, want) in [("", ""), ("\r", ""), ("a\rb\r", "ab"), ("\ré✓\r\rz", "é✓z")] {
            let mut out = String::from(">");
            push_escaped(s, &mut out, drop_r);
            assert_eq!(out, format!(">{want}"));
        }
    }

    #[test]
    fn html_escapes() {
        let mut s = String::new();
        html("<a href=\"x\">&'", &mut s);
        assert_eq!(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        s.clear();
        html("a\u{202e}b\u{2067}c\u{200f}d", &mut s);
        assert_eq!(s, "a\u{fffd}b\u{fffd}c\u{200f}d", "overrides and isolates go, marks stay");
    }
}
