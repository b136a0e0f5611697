//! What the admin listener does besides reading counters: turn a debug switch on
//! (`POST /debug?target=NAME&for_ms=60000&budget=1000`, the target a component, a
//! message type, `flow:NAME` or a trace id), change the log filter
//! (`POST /log?filter=info,tern=debug`), and list the cluster's components, the last
//! spans and the debug switches on.
//!
//! Query strings are percent-decoded here by hand: a dozen lines for the one thing
//! needed (`%XX` and `+`), rather than a URL crate for the whole listener.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tern_actors::trace::debug::{self, Target};

use super::admin::{Response, Sources};

/// Messages a debug switch records per container unless the request says.
pub(super) const DEFAULT_BUDGET: u32 = 1000;

/// `key=value&...` percent-decoded; a pair that does not decode is left out.
pub(super) fn query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// `s` percent-encoded for a query value (everything but letters, digits, `-_.~`).
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn json(body: &Value) -> Response {
    Response {
        code: 200,
        reason: "OK",
        content_type: "application/json",
        body: body.to_string(),
    }
}

fn bad(why: &str) -> Response {
    Response::text(400, "Bad Request", why)
}

/// `POST path?query`.
pub(super) fn post(path: &str, q: &str, sources: &Sources) -> Response {
    let args = query(q);
    match path {
        "/debug" => switch_on(&args, sources),
        "/log" => {
            let Some(filter) = args.get("filter") else {
                return bad("POST /log?filter=<RUST_LOG-style filter>");
            };
            match crate::log::set_filter(filter) {
                Ok(()) => Response::text(200, "OK", &format!("log filter now {filter:?}")),
                Err(e) => bad(&e.to_string()),
            }
        }
        "/limits" => super::capacity::post(&args, sources),
        _ => Response::text(
            405,
            "Method Not Allowed",
            "POST only to /debug, /log and /limits",
        ),
    }
}

fn switch_on(args: &BTreeMap<String, String>, sources: &Sources) -> Response {
    let Some(running) = &sources.running else {
        return Response::text(503, "Service Unavailable", "no container to switch");
    };
    let target: Target = match args.get("target").map(|t| t.parse()) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return bad(&e.to_string()),
        None => return bad("POST /debug?target=NAME&for_ms=N[&budget=N]"),
    };
    let Some(for_ms) = args.get("for_ms").and_then(|v| v.parse::<u64>().ok()) else {
        return bad("for_ms: milliseconds, a positive integer");
    };
    let budget = match args.get("budget").map(|b| b.parse::<u32>()) {
        None => DEFAULT_BUDGET,
        Some(Ok(b)) => b,
        Some(Err(_)) => return bad("budget: a positive integer"),
    };
    match running.trace_flow(target.clone(), Duration::from_millis(for_ms), budget) {
        Ok(()) => Response::text(
            200,
            "OK",
            &format!(
                "debug tracing of {target} on for {for_ms} ms, at most {budget} messages per container{}",
                if running.discovery().is_some() {
                    ", spreading to the cluster"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => bad(&e.to_string()),
    }
}

/// `GET /components`: the cluster's components by name, from gossip (this node's
/// exports alone without gossip).
pub(super) fn components(sources: &Sources) -> Response {
    if let Some(d) = &sources.discovery {
        return json(&crate::metrics::components(&d.members()));
    }
    let own: Vec<Value> = sources
        .node
        .as_ref()
        .map(crate::remote::Node::exports)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, s)| {
            json!({"name": name, "hosts": [{"node": sources.name, "state": "alive", "load": s.queued}]})
        })
        .collect();
    json(&Value::Array(own))
}

/// `GET /spans`: the container's last spans, newest last (at most 200).
pub(super) fn spans(sources: &Sources) -> Response {
    let Some(running) = &sources.running else {
        return json(&json!([]));
    };
    let all = running.spans().spans();
    let rows: Vec<Value> = all
        .iter()
        .skip(all.len().saturating_sub(200))
        .map(|s| {
            json!({
                "trace_id": s.context.trace_hex(),
                "span_id": s.context.span_hex(),
                "parent_id": s.parent.map(|p| crate::trace::SpanContext::new(s.context.trace_id, p, true).span_hex()),
                "kind": s.kind.as_str(),
                "name": s.name(),
                "node": s.node,
                "duration_ms": s.end.saturating_duration_since(s.start).as_secs_f64() * 1e3,
                "error": s.error,
            })
        })
        .collect();
    json(&Value::Array(rows))
}

/// `GET /debug`: the debug switches on in this container.
pub(super) fn switches(sources: &Sources) -> Response {
    let now = tern_executor::time::now();
    let rows: Vec<Value> = debug::switches(&sources.name)
        .into_iter()
        .map(|w| {
            json!({
                "target": w.target.to_string(),
                "left_ms": u64::try_from(w.until.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX),
                "budget": w.budget,
            })
        })
        .collect();
    json(&Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_round_trip_through_percent_encoding() {
        let filter = "info,tern=debug,x[span{a=1}]";
        let q = format!("filter={}&for_ms=5&bad=%zz&=x", encode(filter));
        let args = query(&q);
        assert_eq!(args.get("filter").map(String::as_str), Some(filter));
        assert_eq!(args.get("for_ms").map(String::as_str), Some("5"));
        assert!(!args.contains_key("bad"), "{args:?}");
        assert_eq!(args.len(), 2, "{args:?}");
        assert_eq!(decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(decode("%4"), None);
    }
}
