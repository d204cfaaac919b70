//! Zipkin v2 JSON: a list of spans as `POST /api/v2/spans` takes them (ids lower hex, times in
//! epoch microseconds, `duration` at least 1, tags as strings).

use std::sync::Arc;

use monitor_core::trace::{SpanOutcome, SpanRecord, Status};

use super::Service;
use crate::render::writer::Json;

/// The spans as a Zipkin v2 `ListOfSpans`.
pub(crate) fn encode(service: &Service, spans: &[Arc<SpanRecord>], out: &mut Vec<u8>) {
    let mut text = String::with_capacity(400 * spans.len());
    let mut j = Json::new(&mut text);
    j.begin_array();
    for s in spans {
        j.begin_object();
        j.key("traceId").str(&s.trace_id.to_string());
        j.key("id").str(&s.span_id.to_string());
        if let Some(p) = s.parent_id {
            j.key("parentId").str(&p.to_string());
        }
        j.key("name").str(&s.name.to_lowercase());
        match super::span_kind(s) {
            super::SpanKind::Server => {
                j.key("kind").str("SERVER");
            }
            super::SpanKind::Client => {
                j.key("kind").str("CLIENT");
            }
            super::SpanKind::Internal => {}
        }
        j.key("timestamp").u64(s.start_unix_ns / 1000);
        j.key("duration").u64((s.duration_ns / 1000).max(1));
        j.key("localEndpoint").begin_object();
        j.key("serviceName").str(&service.name.to_lowercase());
        j.end_object();
        j.key("annotations").begin_array();
        for e in &s.events {
            let value = match e.since_checkpoint_ns {
                Some(ns) => format!("{} (+{ns} ns)", e.name),
                None => e.name.to_string(),
            };
            j.begin_object().key("timestamp").u64(e.unix_ns / 1000).key("value").str(&value);
            j.end_object();
        }
        j.end_array();
        j.key("tags").begin_object();
        j.key("monitor.outcome").str(&s.outcome.to_string());
        if let Some(c) = s.category {
            j.key("monitor.category").str(c);
        }
        // Zipkin marks a failed span with an `error` tag.
        match (&s.status, s.outcome) {
            (Status::Error(d), _) => {
                j.key("error").str(d);
            }
            (_, SpanOutcome::Error(kind)) => {
                j.key("error").str(kind);
            }
            (_, SpanOutcome::Panic) => {
                j.key("error").str("panic");
            }
            _ => {}
        }
        for (k, v) in super::allocation_attributes(s) {
            j.key(k).str(&v.to_string());
        }
        for (k, v) in &s.annotations {
            j.key(k).str(&v.to_string());
        }
        j.end_object().end_object();
    }
    j.end_array();
    out.extend_from_slice(text.as_bytes());
}
