//! OTLP partial success: a collector that accepts a request but refuses part of it says how
//! many spans, data points or log records it refused, in the answer's body.

use super::Protocol;

/// What the collector's answer `body` says it refused, 0 if it says nothing (or the protocol
/// has no partial success).
pub(crate) fn refused(protocol: Protocol, body: &[u8]) -> u64 {
    match protocol {
        #[cfg(feature = "otlp")]
        Protocol::OtlpProtobuf => protobuf(body).unwrap_or(0),
        #[cfg(feature = "grpc")]
        Protocol::OtlpGrpc => protobuf(body).unwrap_or(0),
        #[cfg(feature = "otlp")]
        Protocol::OtlpJson => json(body).unwrap_or(0),
        #[cfg(feature = "zipkin")]
        Protocol::ZipkinJson => {
            let _ = body;
            0
        }
    }
}

/// A varint at the start of `b`, and the bytes it took.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The fields of a message: (field, wire type, value bytes or varint value).
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn fields(mut b: &[u8]) -> Vec<(u64, &[u8], u64)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let Some((key, n)) = varint(b) else { break };
        b = &b[n..];
        match key & 7 {
            0 => {
                let Some((v, n)) = varint(b) else { break };
                out.push((key >> 3, &b[..0], v));
                b = &b[n..];
            }
            1 => {
                let Some(v) = b.get(..8) else { break };
                out.push((key >> 3, v, 0));
                b = &b[8..];
            }
            2 => {
                let Some((len, n)) = varint(b) else { break };
                let Some(v) = usize::try_from(len).ok().and_then(|l| b.get(n..n + l)) else {
                    break;
                };
                out.push((key >> 3, v, 0));
                b = &b[n + v.len()..];
            }
            5 => {
                let Some(v) = b.get(..4) else { break };
                out.push((key >> 3, v, 0));
                b = &b[4..];
            }
            _ => break,
        }
    }
    out
}

/// `Export*ServiceResponse.partial_success.rejected_*` (field 1 in field 1).
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn protobuf(body: &[u8]) -> Option<u64> {
    let (_, partial, _) = fields(body).into_iter().find(|(f, v, _)| *f == 1 && !v.is_empty())?;
    let (_, _, rejected) = fields(partial).into_iter().find(|(f, v, _)| *f == 1 && v.is_empty())?;
    Some(rejected)
}

/// `partialSuccess.rejectedSpans` (or `rejectedDataPoints`, `rejectedLogRecords`), as a number
/// or a string.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn json(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let partial = &text[text.find("\"partialSuccess\"")?..];
    let key = partial.find("\"rejected")?;
    let after = &partial[key + 1..];
    let colon = after.find(':')?;
    let value = after[colon + 1..].trim_start().trim_start_matches('"');
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::*;

    #[test]
    fn partial_successes_are_read() {
        // partial_success { rejected_spans: 3, error_message: "no" }
        let body = [0x0a, 0x06, 0x08, 0x03, 0x12, 0x02, b'n', b'o'];
        assert_eq!(refused(Protocol::OtlpProtobuf, &body), 3);
        assert_eq!(refused(Protocol::OtlpProtobuf, &[]), 0);
        assert_eq!(refused(Protocol::OtlpProtobuf, &[0x0a, 0x09, 0x08]), 0, "cut short");
        let json = br#"{"partialSuccess":{"rejectedDataPoints":"12","errorMessage":"x"}}"#;
        assert_eq!(refused(Protocol::OtlpJson, json), 12);
        let json = br#"{"partialSuccess": {"rejectedSpans": 4}}"#;
        assert_eq!(refused(Protocol::OtlpJson, json), 4);
        assert_eq!(refused(Protocol::OtlpJson, b"{}"), 0);
    }
}
