//! Spans to an OpenTelemetry collector over OTLP/HTTP JSON (`POST /v1/traces`,
//! `Content-Type: application/json`), behind the `otlp` feature: [`otlp_json`]
//! writes a batch as the body, [`OtlpExporter`] posts batches from the container's
//! poll loop. A container run by [`crate::app::App`] exports its spans when its
//! configuration has `[trace] otlp_endpoint = "http://127.0.0.1:4318"`.
//!
//! Tern does not link the OpenTelemetry SDK: `opentelemetry-otlp` brings tonic,
//! hyper and a tokio runtime with it, a second I/O stack in a single-threaded
//! container. The OTLP JSON encoding of a batch is small and stable, and one POST per
//! batch over HTTP/1.1 is a page of code, so both are written here. Plain HTTP only:
//! run the collector next to the container (a sidecar or a local agent) and let it
//! forward over TLS.

mod sender;

pub use sender::{MAX_BATCH_SPANS, MAX_RESPONSE, OtlpExporter};

use serde_json::{Value, json};
use tern_actors::trace::{SpanKind, SpanRecord};

/// OTLP `SpanKind` numbers.
fn kind(k: SpanKind) -> u8 {
    match k {
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
    }
}

/// The `ExportTraceServiceRequest` JSON for `batch`, as the service `service`
/// (`service.name`); instants become Unix nanoseconds through `unix_offset_nanos`
/// (see [`super::SpanExporter::export`]).
#[must_use]
pub fn otlp_json(service: &str, batch: &[SpanRecord], unix_offset_nanos: u64) -> Value {
    let unix =
        |i: tern_executor::Instant| (i.as_nanos().saturating_add(unix_offset_nanos)).to_string();
    let spans: Vec<Value> = batch
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.context.trace_hex(),
                "spanId": s.context.span_hex(),
                "name": s.name(),
                "kind": kind(s.kind),
                "startTimeUnixNano": unix(s.start),
                "endTimeUnixNano": unix(s.end),
                "attributes": [
                    {"key": "tern.node", "value": {"stringValue": s.node}},
                    {"key": "tern.component", "value": {"stringValue": s.component}},
                    {"key": "tern.message_type", "value": {"stringValue": s.message_type}},
                ],
                "status": match &s.error {
                    None => json!({"code": 1}),
                    Some(e) => json!({"code": 2, "message": e}),
                },
            });
            if let Some(p) = s.parent {
                span["parentSpanId"] = Value::String(
                    tern_actors::trace::SpanContext::new(s.context.trace_id, p, true).span_hex(),
                );
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {"name": "tern"}, "spans": spans}],
        }]
    })
}

#[cfg(test)]
mod tests {
    use tern_actors::trace::SpanContext;
    use tern_executor::Instant;

    use super::*;

    #[test]
    fn a_child_span_names_its_parent_and_unix_times() {
        let span = SpanRecord {
            context: SpanContext::new([1; 16], [2; 8], true),
            parent: Some([3; 8]),
            kind: SpanKind::Server,
            node: "w1".into(),
            component: "store".into(),
            message_type: "kv.Get".into(),
            start: Instant::from_nanos(10),
            end: Instant::from_nanos(30),
            error: Some("boom".into()),
        };
        let body = otlp_json("shop", &[span], 1_000);
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "01010101010101010101010101010101");
        assert_eq!(s["parentSpanId"], "0303030303030303");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1010");
        assert_eq!(s["endTimeUnixNano"], "1030");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["name"], "handle store kv.Get");
    }
}
