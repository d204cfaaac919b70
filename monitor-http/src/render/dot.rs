//! `/funcs/dot`: the call graph as a Graphviz digraph.

use std::fmt::Write;

use monitor_core::{Caller, Snapshot};

use super::util::{counts_line, push_escaped, Nanos, REPLACEMENT};

/// Escapes `s` for a double-quoted Graphviz string: quotes and backslashes (which would
/// otherwise start escapes such as `\N`) are escaped; line breaks become `\n`; other control
/// characters (a NUL ends Graphviz's strings) become U+FFFD.
fn quoted(s: &str, out: &mut String) {
    push_escaped(s, out, |c| match c {
        '"' => Some("\\\"".into()),
        '\\' => Some("\\\\".into()),
        '\n' => Some("\\n".into()),
        '\r' => Some("".into()),
        c if c.is_control() => Some(REPLACEMENT.into()),
        _ => None,
    });
}

/// The most characters of a name a label shows: Graphviz refuses strings past its lexer's
/// buffer (a 20,000-character name failed), and no one reads such a label anyway.
const MAX_NAME: usize = 1000;

/// `name`, cut to [`MAX_NAME`] characters with an ellipsis.
fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(MAX_NAME) {
        None => name.into(),
        Some((cut, _)) => format!("{}…", &name[..cut]).into(),
    }
}

/// `/funcs/dot`: one node per called function (its name, counts and key quantiles), an
/// `entry` node, and an edge caller → callee labelled with the number of calls. Node ids are
/// generated (`f12`), and every label is escaped, so any function name is valid input for
/// `dot`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_dot(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with("digraph monitor {"));
/// ```
pub fn write_dot(snapshot: &Snapshot, out: &mut String) {
    out.push_str("digraph monitor {\n");
    out.push_str("  rankdir=LR;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    out.push_str("  entry [label=\"entry\", shape=ellipse];\n");
    let mut other = false;
    for f in snapshot.iter_called() {
        let _ = write!(out, "  f{} [label=\"", f.id);
        let mut label = String::new();
        // Two lines: in flight, then outcomes.
        let counts = counts_line(f).replacen(", success", "\nsuccess", 1);
        let _ = write!(label, "{}\n{counts}", shown(f.name));
        let d = &f.success_times;
        if d.count > 0 {
            let _ = write!(
                label,
                "\np50: {}, p90: {}, p99: {}",
                Nanos(u128::from(d.quantile(0.5))),
                Nanos(u128::from(d.quantile(0.9))),
                Nanos(u128::from(d.quantile(0.99)))
            );
        }
        quoted(&label, out);
        let color = if f.panics > 0 {
            "red"
        } else if f.errors_total() > 0 {
            "orange"
        } else {
            "black"
        };
        let _ = writeln!(out, "\", color={color}];");
        for c in &f.callers {
            match c.caller {
                Caller::Entry => out.push_str("  entry"),
                Caller::Function { id, .. } => {
                    let _ = write!(out, "  f{id}");
                }
                Caller::Other => {
                    other = true;
                    out.push_str("  other");
                }
            }
            let _ = writeln!(out, " -> f{} [label=\"{}\"];", f.id, c.count);
        }
    }
    if other {
        out.push_str("  other [label=\"other callers\", shape=ellipse, style=dashed];\n");
    }
    out.push_str("}\n");
}
