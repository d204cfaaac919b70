//! Escaping and number formatting shared by the renderers.

use std::fmt::Write;

/// Appends `s` as a JSON string literal.
pub(crate) fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `v` as a JSON number. JSON has no NaN or infinity: those are written as 0, so a
/// consumer never chokes on the document (the values we produce are finite anyway).
pub(crate) fn json_f64(v: f64, out: &mut String) {
    if v.is_finite() {
        if v == v.trunc() && v.abs() < 1e15 {
            let _ = write!(out, "{}", v as i64);
        } else {
            let _ = write!(out, "{v}");
        }
    } else {
        out.push('0');
    }
}

/// Appends `s` escaped for HTML text and attribute values.
pub(crate) fn html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `current: …, highwater: …, success: …, errors: …, panics: …, cancelled: …` of a function,
/// as the text and dot views show it.
pub(crate) fn counts_line(f: &monitor_core::FunctionStats) -> String {
    format!(
        "current: {}, highwater: {}, success: {}, errors: {}, panics: {}, cancelled: {}",
        f.current,
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

    #[test]
    fn json_escapes_and_numbers() {
        let mut s = String::new();
        json_str("a\"b\\c\n\u{1}\u{2028}é", &mut s);
        assert_eq!(s, r#""a\"b\\c\n\u0001\u2028é""#);
        for (v, want) in [(1.0, "1"), (0.25, "0.25"), (f64::NAN, "0"), (f64::INFINITY, "0")] {
            let mut s = String::new();
            json_f64(v, &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn html_escapes() {
        let mut s = String::new();
        html("<a href=\"x\">&'", &mut s);
        assert_eq!(s, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
