//! `/funcs/json`: every called function as a JSON object.

use std::borrow::Borrow;

use monitor_core::{Distribution, FunctionStats, Snapshot, QUANTILES};

use super::util::{push_u128, Quantile};
use super::writer::Json;
use super::Parts;

/// `/funcs/json`: a list with one object per called function: `id`, `name`, `module`, `file`,
/// `line`, `category`, `entry`, `callers` (`[{"name", "count"}]`), `current`, `highwater`,
/// `success`, `errors` (kind → count), `panics`, `cancelled`, `allocations` and
/// `allocated_bytes` (while its calls ran; 0 without the counting allocator), and `success_times` /
/// `failure_times` (`count`, `sum_ns`, `min_ns`, `max_ns`, `avg_ns`, `recent_ns` and
/// `quantiles` keyed `"0.00"` … `"1.00"`, all integer nanoseconds); and for an async function
/// polled while [poll timing](monitor_core::polls) was on, `polls` (`count`, `slow`, `busy_ns`,
/// `longest_ns`).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_functions_json(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with('['));
/// ```
pub fn write_functions_json(snapshot: &Snapshot, out: &mut String) {
    let mut writer = FunctionsJsonWriter::new(snapshot);
    while writer.write(out, usize::MAX) {}
}

/// `/funcs/json` written a function at a time, for a response that sends it as it is written
/// (see [`Parts`]). `S` is the snapshot, owned or borrowed.
pub(crate) struct FunctionsJsonWriter<S> {
    snapshot: S,
    /// `"0.00":` … `"1.00":`, the quantile keys with their colon.
    keys: [String; QUANTILES.len()],
    /// The next function to look at in `snapshot.functions`.
    next: usize,
    /// Functions written so far.
    written: usize,
    done: bool,
}

impl<S: Borrow<Snapshot>> FunctionsJsonWriter<S> {
    pub(crate) fn new(snapshot: S) -> Self {
        let keys = QUANTILES.map(|q| format!("\"{}\":", Quantile(q)));
        FunctionsJsonWriter { snapshot, keys, next: 0, written: 0, done: false }
    }
}

impl<S: Borrow<Snapshot> + Send> Parts for FunctionsJsonWriter<S> {
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
            // The list spans the parts, so its commas are written here, not by a writer.
            out.push_str(if self.written == 0 { "\n" } else { ",\n" });
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
    let mut j = Json::new(out);
    j.begin_object();
    j.key("id").u64(f.id as u64);
    j.key("name").str(f.name);
    j.key("module").str(f.module);
    j.key("file").str(f.file);
    j.key("line").u64(u64::from(f.line));
    j.key("category").opt_str(f.category);
    j.key("entry").bool(f.is_entry());
    j.key("callers").begin_array();
    for c in &f.callers {
        j.begin_object().key("name").str(c.caller.name()).key("count").u64(c.count).end_object();
    }
    j.end_array();
    j.key("current").u64(f.in_flight).key("highwater").u64(f.highwater);
    j.key("success").u64(f.success);
    j.key("errors").begin_object();
    for (kind, n) in &f.errors {
        j.key(kind).u64(*n);
    }
    j.end_object();
    j.key("panics").u64(f.panics).key("cancelled").u64(f.cancelled);
    j.key("allocations").u64(f.allocations).key("allocated_bytes").u64(f.allocated_bytes);
    j.key("success_times");
    times(&f.success_times, keys, &mut j);
    j.key("failure_times");
    times(&f.failure_times, keys, &mut j);
    if let Some(p) = &f.polls {
        j.key("polls").begin_object();
        j.key("count").u64(p.polls).key("slow").u64(p.slow_polls);
        j.key("busy_ns").raw(|out| push_u128(p.busy.as_nanos(), out));
        j.key("longest_ns").raw(|out| push_u128(p.longest.as_nanos(), out));
        j.end_object();
    }
    j.end_object();
}

fn times(d: &Distribution, keys: &[String], j: &mut Json<'_>) {
    j.begin_object();
    j.key("count").u64(d.count);
    j.key("sum_ns").raw(|out| push_u128(d.sum_ns, out));
    j.key("min_ns").u64(d.min_ns).key("max_ns").u64(d.max_ns);
    j.key("avg_ns").u64(d.avg_ns().round() as u64).key("recent_ns").u64(d.recent_ns);
    j.key("quantiles").begin_object();
    for ((_, ns), key) in d.quantiles().iter().zip(keys) {
        // The keys are written once per render, not once per function.
        j.escaped_key(key).u64(*ns);
    }
    j.end_object().end_object();
}

#[cfg(test)]
mod tests {
    use super::{write_functions_json, FunctionsJsonWriter};
    use crate::render::{in_parts, traffic};

    #[test]
    fn written_in_parts_it_is_the_same_json() {
        let snap = traffic();
        let mut whole = String::new();
        write_functions_json(&snap, &mut whole);
        let v: serde_json::Value = serde_json::from_str(&whole).expect("valid JSON");
        let list = v.as_array().expect("a list");
        assert_eq!(list.len(), snap.iter_called().count());
        let fail = list.iter().find(|f| f["name"] == "tests \"fail\"\n").expect("the failing one");
        assert_eq!(fail["errors"]["Other"], 20, "{fail}");
        assert_eq!(fail["failure_times"]["count"], 20);
        assert_eq!(fail["failure_times"]["quantiles"].as_object().map(|q| q.len()), Some(9));
        for min in [1, 60, 700, 5000, usize::MAX] {
            let parts = in_parts(FunctionsJsonWriter::new(&snap), min);
            assert_eq!(parts.concat(), whole, "in parts of {min} bytes or more");
            if min == 1 {
                // `[`, each function, then `]`.
                assert_eq!(parts.len(), list.len() + 1);
            }
        }
        let mut empty = snap.clone();
        empty.functions.clear();
        let mut out = String::new();
        write_functions_json(&empty, &mut out);
        assert_eq!(out, "[\n]\n");
    }
}
