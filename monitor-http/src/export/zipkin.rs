//! Zipkin v2 JSON: a list of spans as `POST /api/v2/spans` takes them (ids lower hex, times in
//! epoch microseconds, `duration` at least 1, tags as strings).

use std::fmt::Write as _;
use std::sync::Arc;

use monitor_core::trace::{SpanOutcome, SpanRecord, Status};

use super::Service;
use crate::render::util::json_str;

fn tag(k: &str, v: &str, first: &mut bool, out: &mut String) {
    if !std::mem::take(first) {
        out.push(',');
    }
    json_str(k, out);
    out.push(':');
    json_str(v, out);
}

/// The spans as a Zipkin v2 `ListOfSpans`.
pub(crate) fn encode(service: &Service, spans: &[Arc<SpanRecord>], out: &mut Vec<u8>) {
    let mut j = String::with_capacity(400 * spans.len());
    j.push('[');
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        let _ = write!(j, "{{\"traceId\":\"{}\",\"id\":\"{}\",", s.trace_id, s.span_id);
        if let Some(p) = s.parent_id {
            let _ = write!(j, "\"parentId\":\"{p}\",");
        }
        j.push_str("\"name\":");
        json_str(&s.name.to_lowercase(), &mut j);
        if s.remote_parent {
            j.push_str(",\"kind\":\"SERVER\"");
        }
        let _ = write!(
            j,
            ",\"timestamp\":{},\"duration\":{},\"localEndpoint\":{{\"serviceName\":",
            s.start_unix_ns / 1000,
            (s.duration_ns / 1000).max(1)
        );
        json_str(&service.name.to_lowercase(), &mut j);
        j.push_str("},\"annotations\":[");
        for (n, e) in s.events.iter().enumerate() {
            if n > 0 {
                j.push(',');
            }
            let _ = write!(j, "{{\"timestamp\":{},\"value\":", e.unix_ns / 1000);
            let value = match e.since_checkpoint_ns {
                Some(ns) => format!("{} (+{ns} ns)", e.name),
                None => e.name.to_string(),
            };
            json_str(&value, &mut j);
            j.push('}');
        }
        j.push_str("],\"tags\":{");
        let mut first = true;
        tag("monitor.outcome", &s.outcome.to_string(), &mut first, &mut j);
        if let Some(c) = s.category {
            tag("monitor.category", c, &mut first, &mut j);
        }
        // Zipkin marks a failed span with an `error` tag.
        match (&s.status, s.outcome) {
            (Status::Error(d), _) => tag("error", d, &mut first, &mut j),
            (_, SpanOutcome::Error(kind)) => tag("error", kind, &mut first, &mut j),
            (_, SpanOutcome::Panic) => tag("error", "panic", &mut first, &mut j),
            _ => {}
        }
        for (k, v) in super::allocation_attributes(s) {
            tag(k, &v.to_string(), &mut first, &mut j);
        }
        for (k, v) in &s.annotations {
            tag(k, &v.to_string(), &mut first, &mut j);
        }
        j.push_str("}}");
    }
    j.push(']');
    out.extend_from_slice(j.as_bytes());
}
