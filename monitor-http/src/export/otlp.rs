//! OTLP trace export bodies: `ExportTraceServiceRequest` as protobuf (hand-encoded; the message
//! set is small and fixed) and as OTLP/JSON (ids in hex, enums as numbers, 64-bit integers as
//! strings, as the OTLP specification maps them).

use std::sync::Arc;

use monitor_core::trace::{AttributeValue, SpanOutcome, SpanRecord, Status};

use super::Service;
use crate::render::writer::Json;

/// An attribute list: key and value.
pub(super) type Attrs<'a> = Vec<(&'a str, AttributeValue)>;

fn span_attributes(s: &SpanRecord) -> Attrs<'_> {
    let mut a: Attrs<'_> = vec![
        ("code.function", AttributeValue::Str(s.name.into())),
        ("monitor.outcome", AttributeValue::Str(s.outcome.to_string().into())),
    ];
    match s.outcome {
        SpanOutcome::Error(kind) => a.push(("error.type", AttributeValue::Str(kind.into()))),
        SpanOutcome::Panic => a.push(("error.type", AttributeValue::Str("panic".into()))),
        _ => {}
    }
    if let Some(c) = s.category {
        a.push(("monitor.category", AttributeValue::Str(c.into())));
    }
    for (key, value) in super::allocation_attributes(s) {
        a.push((key, AttributeValue::I64(i64::try_from(value).unwrap_or(i64::MAX))));
    }
    a.extend(s.annotations.iter().map(|(k, v)| (k.as_ref(), v.clone())));
    a
}

/// The resource: the service, this process's instance of it, its pid and host, the SDK, and
/// what the user added.
pub(super) fn resource_attributes(service: &Service) -> Attrs<'_> {
    let mut a = vec![
        ("service.name", AttributeValue::Str(service.name.clone().into())),
        ("service.instance.id", AttributeValue::Str(super::instance_id().into())),
        ("process.pid", AttributeValue::I64(i64::from(std::process::id()))),
        ("telemetry.sdk.name", AttributeValue::Str("monitor".into())),
        ("telemetry.sdk.language", AttributeValue::Str("rust".into())),
        ("telemetry.sdk.version", AttributeValue::Str(env!("CARGO_PKG_VERSION").into())),
    ];
    if let Some(host) = super::host_name() {
        a.push(("host.name", AttributeValue::Str(host.into())));
    }
    for (k, v) in &service.attributes {
        a.retain(|(key, _)| key != k);
        a.push((k.as_str(), v.clone()));
    }
    a
}

/// OTLP's `SpanKind`: SERVER 2, CLIENT 3, INTERNAL 1.
fn kind(s: &SpanRecord) -> u64 {
    match super::span_kind(s) {
        super::SpanKind::Server => 2,
        super::SpanKind::Client => 3,
        super::SpanKind::Internal => 1,
    }
}

/// W3C flags plus "whether the parent is remote" (bits 8 and 9 of OTLP's `Span.flags`).
fn flags(s: &SpanRecord) -> u32 {
    u32::from(s.sampled) | 0x100 | if s.remote_parent { 0x200 } else { 0 }
}

fn status(s: &SpanRecord) -> (u64, &str) {
    match &s.status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error(d) => (2, d.as_ref()),
    }
}

// --- protobuf -------------------------------------------------------------------------------

pub(super) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn tag(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint((u64::from(field) << 3) | u64::from(wire), out);
}

pub(super) fn len_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    tag(field, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

pub(super) fn message(field: u32, out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let mut m = Vec::new();
    body(&mut m);
    len_field(field, &m, out);
}

pub(super) fn varint_field(field: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        tag(field, 0, out);
        varint(v, out);
    }
}

pub(super) fn fixed64_field(field: u32, v: u64, out: &mut Vec<u8>) {
    tag(field, 1, out);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(super) fn key_values(field: u32, attrs: &Attrs<'_>, out: &mut Vec<u8>) {
    for (k, v) in attrs {
        message(field, out, |kv| {
            len_field(1, k.as_bytes(), kv);
            message(2, kv, |any| match v {
                AttributeValue::Str(s) => len_field(1, s.as_bytes(), any),
                AttributeValue::Bool(b) => {
                    tag(2, 0, any);
                    varint(u64::from(*b), any);
                }
                AttributeValue::I64(i) => {
                    tag(3, 0, any);
                    varint(*i as u64, any);
                }
                AttributeValue::F64(f) => {
                    tag(4, 1, any);
                    any.extend_from_slice(&f.to_le_bytes());
                }
            });
        });
    }
}

/// `ExportTraceServiceRequest` (opentelemetry/proto/collector/trace/v1) as protobuf.
pub(crate) fn encode_protobuf(service: &Service, spans: &[Arc<SpanRecord>], out: &mut Vec<u8>) {
    message(1, out, |rs| {
        message(1, rs, |res| key_values(1, &resource_attributes(service), res));
        message(2, rs, |ss| {
            message(1, ss, |scope| {
                len_field(1, b"monitor", scope);
                len_field(2, env!("CARGO_PKG_VERSION").as_bytes(), scope);
            });
            for s in spans {
                message(2, ss, |sp| encode_span(s, sp));
            }
        });
    });
}

fn encode_span(s: &SpanRecord, out: &mut Vec<u8>) {
    len_field(1, &s.trace_id.to_u128().to_be_bytes(), out);
    len_field(2, &s.span_id.to_u64().to_be_bytes(), out);
    if let Some(p) = s.parent_id {
        len_field(4, &p.to_u64().to_be_bytes(), out);
    }
    len_field(5, s.name.as_bytes(), out);
    varint_field(6, kind(s), out);
    fixed64_field(7, s.start_unix_ns, out);
    fixed64_field(8, s.end_unix_ns(), out);
    key_values(9, &span_attributes(s), out);
    varint_field(10, u64::from(s.dropped), out);
    for e in &s.events {
        message(11, out, |ev| {
            fixed64_field(1, e.unix_ns, ev);
            len_field(2, e.name.as_bytes(), ev);
            if let Some(ns) = e.since_checkpoint_ns {
                let attrs = vec![("monitor.checkpoint.elapsed_ns", AttributeValue::from(ns))];
                key_values(3, &attrs, ev);
            }
        });
    }
    let (code, msg) = status(s);
    if code != 0 {
        message(15, out, |st| {
            if !msg.is_empty() {
                len_field(2, msg.as_bytes(), st);
            }
            varint_field(3, code, st);
        });
    }
    tag(16, 5, out);
    out.extend_from_slice(&flags(s).to_le_bytes());
}

// --- JSON -----------------------------------------------------------------------------------

pub(super) fn json_key_values(attrs: &Attrs<'_>, j: &mut Json<'_>) {
    j.begin_array();
    for (k, v) in attrs {
        j.begin_object().key("key").str(k).key("value").begin_object();
        match v {
            AttributeValue::Str(s) => j.key("stringValue").str(s),
            AttributeValue::Bool(b) => j.key("boolValue").bool(*b),
            // 64-bit integers are strings in the protobuf JSON mapping.
            AttributeValue::I64(n) => j.key("intValue").str(&n.to_string()),
            // JSON has no NaN or infinity; the protobuf JSON mapping spells them as strings.
            AttributeValue::F64(f) if f.is_nan() => j.key("doubleValue").str("NaN"),
            AttributeValue::F64(f) if f.is_infinite() => {
                j.key("doubleValue").str(if *f < 0.0 { "-Infinity" } else { "Infinity" })
            }
            AttributeValue::F64(f) => j.key("doubleValue").f64(*f),
        };
        j.end_object().end_object();
    }
    j.end_array();
}

/// `ExportTraceServiceRequest` as OTLP/JSON.
pub(crate) fn encode_json(service: &Service, spans: &[Arc<SpanRecord>], out: &mut Vec<u8>) {
    let mut text = String::with_capacity(512 * spans.len());
    let mut j = Json::new(&mut text);
    j.begin_object().key("resourceSpans").begin_array().begin_object();
    j.key("resource").begin_object().key("attributes");
    json_key_values(&resource_attributes(service), &mut j);
    j.end_object();
    j.key("scopeSpans").begin_array().begin_object();
    j.key("scope").begin_object();
    j.key("name").str("monitor").key("version").str(env!("CARGO_PKG_VERSION"));
    j.end_object();
    j.key("spans").begin_array();
    for s in spans {
        j.begin_object();
        j.key("traceId").str(&s.trace_id.to_string());
        j.key("spanId").str(&s.span_id.to_string());
        if let Some(p) = s.parent_id {
            j.key("parentSpanId").str(&p.to_string());
        }
        j.key("flags").u64(u64::from(flags(s)));
        j.key("name").str(s.name);
        j.key("kind").u64(kind(s));
        j.key("startTimeUnixNano").str(&s.start_unix_ns.to_string());
        j.key("endTimeUnixNano").str(&s.end_unix_ns().to_string());
        j.key("attributes");
        json_key_values(&span_attributes(s), &mut j);
        j.key("droppedAttributesCount").u64(u64::from(s.dropped));
        j.key("events").begin_array();
        for e in &s.events {
            j.begin_object();
            j.key("timeUnixNano").str(&e.unix_ns.to_string());
            j.key("name").str(&e.name);
            if let Some(ns) = e.since_checkpoint_ns {
                j.key("attributes");
                json_key_values(
                    &vec![("monitor.checkpoint.elapsed_ns", AttributeValue::from(ns))],
                    &mut j,
                );
            }
            j.end_object();
        }
        j.end_array();
        let (code, msg) = status(s);
        j.key("status").begin_object().key("code").u64(code);
        if !msg.is_empty() {
            j.key("message").str(msg);
        }
        j.end_object().end_object();
    }
    j.end_array().end_object().end_array().end_object().end_array().end_object();
    out.extend_from_slice(text.as_bytes());
}
