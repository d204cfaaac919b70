//! `/funcs/json`: every called function as a JSON object.

use std::borrow::Borrow;

use monitor_core::{Distribution, FunctionStats, Snapshot, QUANTILES};

use super::util::{json_str, push_u128, push_u64, Quantile};
use super::Parts;

/// `/funcs/json`: a list with one object per called function: `id`, `name`, `module`, `file`,
/// `line`, `category`, `entry`, `callers` (`[{"name", "count"}]`), `current`, `highwater`,
/// `success`, `errors` (kind → count), `panics`, `cancelled`, `allocations` and
/// `allocated_bytes` (while its calls ran; 0 without the counting allocator), and `success_times` /
/// `failure_times` (`count`, `sum_ns`, `min_ns`, `max_ns`, `avg_ns`, `recent_ns` and
/// `quantiles` keyed `"0.00"` … `"1.00"`, all integer nanoseconds).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_funcs_json(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with('['));
/// ```
pub fn write_funcs_json(snapshot: &Snapshot, out: &mut String) {
    let mut writer = FuncsJsonWriter::new(snapshot);
    while writer.write(out, usize::MAX) {}
}

/// `/funcs/json` written a function at a time, for a response that sends it as it is written
/// (see [`Parts`]). `S` is the snapshot, owned or borrowed.
pub(crate) struct FuncsJsonWriter<S> {
    snapshot: S,
    /// `"0.00": ` … `"1.00": `, the quantile keys with their colon.
    keys: [String; QUANTILES.len()],
    /// The next function to look at in `snapshot.functions`.
    next: usize,
    /// Functions written so far.
    written: usize,
    done: bool,
}

impl<S: Borrow<Snapshot>> FuncsJsonWriter<S> {
    pub(crate) fn new(snapshot: S) -> Self {
        let keys = QUANTILES.map(|q| format!("\"{}\": ", Quantile(q)));
        FuncsJsonWriter { snapshot, keys, next: 0, written: 0, done: false }
    }
}

impl<S: Borrow<Snapshot> + Send> Parts for FuncsJsonWriter<S> {
    fn write(&mut self, out: &mut String, min: usize) -> bool {
        if self.done {
            return false;
        }
        let functions = &self.snapshot.borrow().functions;
        if self.next == 0 {
            out.push('[');
        }
        while let Some(f) = functions.get(self.next) {
            self.next += 1;
            if !f.is_called() {
                continue;
            }
            out.push_str(if self.written == 0 { "\n  " } else { ",\n  " });
            function(f, &self.keys, out);
            self.written += 1;
            if out.len() >= min {
                return true;
            }
        }
        out.push_str("\n]\n");
        self.done = true;
        false
    }
}

fn function(f: &FunctionStats, keys: &[String], out: &mut String) {
    out.push_str("{\"id\": ");
    push_u64(f.id as u64, out);
    out.push_str(", \"name\": ");
    json_str(f.name, out);
    out.push_str(", \"module\": ");
    json_str(f.module, out);
    out.push_str(", \"file\": ");
    json_str(f.file, out);
    out.push_str(", \"line\": ");
    push_u64(u64::from(f.line), out);
    out.push_str(", \"category\": ");
    match f.category {
        Some(c) => json_str(c, out),
        None => out.push_str("null"),
    }
    out.push_str(if f.is_entry() { ", \"entry\": true" } else { ", \"entry\": false" });
    out.push_str(", \"callers\": [");
    for (i, c) in f.callers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"name\": ");
        json_str(c.caller.name(), out);
        out.push_str(", \"count\": ");
        push_u64(c.count, out);
        out.push('}');
    }
    let fields = [("current", f.current), ("highwater", f.highwater), ("success", f.success)];
    out.push(']');
    push_fields(&fields, out);
    out.push_str(", \"errors\": {");
    for (i, (kind, n)) in f.errors.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_str(kind, out);
        out.push_str(": ");
        push_u64(*n, out);
    }
    out.push('}');
    let fields = [
        ("panics", f.panics),
        ("cancelled", f.cancelled),
        ("allocations", f.allocations),
        ("allocated_bytes", f.allocated_bytes),
    ];
    push_fields(&fields, out);
    out.push_str(", \"success_times\": ");
    times(&f.success_times, keys, out);
    out.push_str(", \"failure_times\": ");
    times(&f.failure_times, keys, out);
    out.push('}');
}

/// `, "name": value` for each field.
fn push_fields(fields: &[(&str, u64)], out: &mut String) {
    for (name, v) in fields {
        out.push_str(", \"");
        out.push_str(name);
        out.push_str("\": ");
        push_u64(*v, out);
    }
}

fn times(d: &Distribution, keys: &[String], out: &mut String) {
    out.push_str("{\"count\": ");
    push_u64(d.count, out);
    out.push_str(", \"sum_ns\": ");
    push_u128(d.sum_ns, out);
    let fields = [
        ("min_ns", d.min_ns),
        ("max_ns", d.max_ns),
        ("avg_ns", d.avg_ns().round() as u64),
        ("recent_ns", d.recent_ns),
    ];
    push_fields(&fields, out);
    out.push_str(", \"quantiles\": {");
    for (i, ((_, ns), key)) in d.quantiles().iter().zip(keys).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key);
        push_u64(*ns, out);
    }
    out.push_str("}}");
}

#[cfg(test)]
mod tests {
    use super::{write_funcs_json, FuncsJsonWriter};
    use crate::render::{in_parts, traffic};

    #[test]
    fn written_in_parts_it_is_the_same_json() {
        let snap = traffic();
        let mut whole = String::new();
        write_funcs_json(&snap, &mut whole);
        let v: serde_json::Value = serde_json::from_str(&whole).expect("valid JSON");
        let list = v.as_array().expect("a list");
        assert_eq!(list.len(), snap.iter_called().count());
        let fail = list.iter().find(|f| f["name"] == "tests \"fail\"\n").expect("the failing one");
        assert_eq!(fail["errors"]["Other"], 20, "{fail}");
        assert_eq!(fail["failure_times"]["count"], 20);
        assert_eq!(fail["failure_times"]["quantiles"].as_object().map(|q| q.len()), Some(9));
        for min in [1, 60, 700, 5000, usize::MAX] {
            let parts = in_parts(FuncsJsonWriter::new(&snap), min);
            assert_eq!(parts.concat(), whole, "in parts of {min} bytes or more");
            if min == 1 {
                // `[`, each function, then `]`.
                assert_eq!(parts.len(), list.len() + 1);
            }
        }
        let mut empty = snap.clone();
        empty.functions.clear();
        let mut out = String::new();
        write_funcs_json(&empty, &mut out);
        assert_eq!(out, "[\n]\n");
    }
}
