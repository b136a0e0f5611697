//! Structured inputs read from fuzz bytes: limits, strings, ids, envelopes, directories.

use arbitrary::{Result as ArbResult, Unstructured};

use crate::v1::{ComponentRef, Directory, Envelope, ErrorInfo, TraceContext};
use crate::{Limits, PROTOCOL_VERSION};

/// Default limits most of the time, otherwise small arbitrary ones.
pub(super) fn arb_limits(u: &mut Unstructured<'_>) -> ArbResult<Limits> {
    if u.ratio(3, 4)? {
        return Ok(Limits::default());
    }
    Ok(Limits {
        max_envelope_bytes: u.int_in_range(0..=10_000)?,
        max_name_len: u.int_in_range(0..=300)?,
        max_message_type_len: u.int_in_range(0..=300)?,
        max_content_type_len: u.int_in_range(0..=300)?,
        max_flow_len: u.int_in_range(0..=300)?,
        max_error_detail_len: u.int_in_range(0..=5_000)?,
        max_directory_entries: u.int_in_range(0..=5_000)?,
    })
}

/// Names the protocol uses, so generated envelopes are often valid.
const WORDS: &[&str] = &[
    "",
    "a",
    "b",
    "worker",
    "tern.directory",
    "demo.v1.Add",
    "application/postcard",
    "application/x-protobuf",
    "checkout",
    "é✓",
];

/// A string: a common word, a run of one character at a length chosen to cross limits
/// cheaply, or arbitrary UTF-8.
pub(super) fn arb_string(u: &mut Unstructured<'_>) -> ArbResult<String> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 | 1 => (*u.choose(WORDS)?).to_owned(),
        2 => {
            let len = u.int_in_range(0usize..=9_000)?;
            "x".repeat(len)
        }
        _ => {
            let len = u.int_in_range(0usize..=64)?.min(u.len());
            let raw = u.bytes(len)?;
            match std::str::from_utf8(raw) {
                Ok(s) => s.to_owned(),
                Err(e) => String::from_utf8_lossy(&raw[..e.valid_up_to()]).into_owned(),
            }
        }
    })
}

pub(super) fn arb_bytes(u: &mut Unstructured<'_>, usual: usize) -> ArbResult<Vec<u8>> {
    let len = if u.ratio(3, 4)? {
        usual
    } else {
        u.int_in_range(0usize..=40)?
    };
    Ok((0..len).map(|i| i as u8).collect())
}

pub(super) fn arb_ref(u: &mut Unstructured<'_>) -> ArbResult<Option<ComponentRef>> {
    if u.ratio(1, 5)? {
        return Ok(None);
    }
    Ok(Some(ComponentRef {
        node: arb_string(u)?,
        name: arb_string(u)?,
        // Mostly "any generation"; sometimes one the receiver does not run (fenced).
        generation: if u.ratio(1, 8)? { u.arbitrary()? } else { 0 },
    }))
}

/// An id: usually small, sometimes one of `known`, sometimes 0 or anything.
pub(super) fn arb_id(u: &mut Unstructured<'_>, known: &[u64]) -> ArbResult<u64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => u.arbitrary()?,
        2 | 3 if !known.is_empty() => *u.choose(known)?,
        _ => u.int_in_range(1..=64)?,
    })
}

/// An envelope built field by field (prost types have no `Arbitrary`), biased towards
/// the values the protocol uses so that valid and nearly valid envelopes are common.
/// `known` ids are likely correlation ids.
pub(super) fn arb_envelope(u: &mut Unstructured<'_>, known: &[u64]) -> ArbResult<Envelope> {
    let version = match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => 2,
        2 => u.arbitrary()?,
        _ => PROTOCOL_VERSION,
    };
    let kind = if u.ratio(1, 10)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=9)?
    };
    Ok(Envelope {
        version,
        message_id: arb_id(u, &[])?,
        correlation_id: arb_id(u, known)?,
        kind,
        source: arb_ref(u)?,
        destination: arb_ref(u)?,
        message_type: arb_string(u)?,
        content_type: arb_string(u)?,
        timeout_ms: if u.arbitrary()? { u.arbitrary()? } else { 0 },
        trace: if u.ratio(1, 3)? {
            Some(TraceContext {
                trace_id: arb_bytes(u, 16)?,
                span_id: arb_bytes(u, 8)?,
                flags: u.arbitrary()?,
            })
        } else {
            None
        },
        flow: if u.arbitrary()? {
            arb_string(u)?
        } else {
            String::new()
        },
        horizon: u.arbitrary()?,
        credit: if u.arbitrary()? { u.arbitrary()? } else { 0 },
        error: if u.arbitrary()? {
            Some(ErrorInfo {
                code: if u.ratio(1, 8)? {
                    u.arbitrary()?
                } else {
                    u.int_in_range(0..=10)?
                },
                detail: arb_string(u)?,
            })
        } else {
            None
        },
        sequence: if u.arbitrary()? {
            u.int_in_range(0..=8)?
        } else {
            0
        },
    })
}

pub(super) fn arb_directory(u: &mut Unstructured<'_>) -> ArbResult<Directory> {
    let node = arb_string(u)?;
    let mut components = Vec::new();
    if u.ratio(1, 8)? {
        // Many entries at once, to cross `max_directory_entries` with a short input.
        // The name stays short, so the directory stays small enough to fuzz quickly.
        let n = u.int_in_range(0usize..=5_000)?;
        let name = if u.arbitrary()? {
            (*u.choose(WORDS)?).to_owned()
        } else {
            "y".repeat(u.int_in_range(0usize..=300)?)
        };
        components = vec![name; n];
    } else {
        while components.len() < 64 && u.arbitrary()? {
            components.push(arb_string(u)?);
        }
    }
    Ok(Directory {
        node,
        generation: u.arbitrary()?,
        version: u.arbitrary()?,
        components,
        reply_wanted: u.arbitrary()?,
    })
}

// ---------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------
