//! Entry points for the fuzz targets and the corpus replay test.
//!
//! Each function takes raw bytes (what libFuzzer generated, or one file of the committed
//! corpus in `fuzz/corpus/<target>/`), drives one decoder or the wire session with them,
//! and checks what this crate promises. It returns normally when every promise held and
//! panics, naming the broken promise, when one did not: libFuzzer records that input as
//! a crash, and the replay test fails on it.
//!
//! | function | fuzz target | what it checks |
//! |---|---|---|
//! | [`envelope`] | `envelope` | [`decode_envelope`] on raw bytes: no panic, a decoded envelope is valid and holds at most as many string and bytes as the input, and it round-trips |
//! | [`envelope_round_trip`] | `envelope_round_trip` | an envelope built field by field: encode then decode gives it back, or exactly the [`DecodeError`] the validation rules predict |
//! | [`directory`] | `directory` | [`decode_directory`] on raw bytes, as for envelopes |
//! | [`directory_round_trip`] | `directory_round_trip` | a directory built field by field, as for envelopes |
//! | [`session_ops`] | `session` | two [`Session`]s talking through a lossy, reordering, forging network, step by step against a model |
//! | [`stream_ops`] | `stream` | streamed replies between two [`Session`]s: items in order and once, within credit, through loss, duplication, reordering and forged stream frames |
//!
//! Structured inputs are read from the bytes with [`arbitrary::Unstructured`], so the
//! same bytes mean the same input under libFuzzer (nightly) and under `cargo test`
//! (stable). The `envelope` and `directory` fuzz targets also measure the heap a decode
//! holds (with a counting allocator, which needs `unsafe` and so lives in `fuzz/`).
//! Nothing here is meant for production code paths.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arbitrary::{Result as ArbResult, Unstructured};
use prost::Message;

use crate::control::{decode_directory, encode_directory};
use crate::envelope::{Ids, scan_ids};
use crate::session::{Event, Failure, Nanos, Outgoing, Reply, Request, Session};
use crate::v1::{ComponentRef, Directory, Envelope, ErrorCode, ErrorInfo, Kind, TraceContext};
use crate::{DecodeError, Limits, PROTOCOL_VERSION, decode_envelope, encode_envelope};

mod stream_ops;
pub use stream_ops::stream_ops;

/// A valid TELL with every optional field set: the seed of the envelope corpus, and
/// the fixture of the decoding tests.
#[must_use]
pub fn sample_tell() -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        message_id: 42,
        kind: Kind::Tell.into(),
        source: Some(ComponentRef {
            node: "n1".into(),
            name: "front".into(),
            generation: 0,
        }),
        destination: Some(ComponentRef {
            node: "n2".into(),
            name: "worker".into(),
            generation: 0,
        }),
        message_type: "demo.v1.Work".into(),
        content_type: "application/postcard".into(),
        timeout_ms: 1500,
        trace: Some(TraceContext {
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            flags: 1,
        }),
        flow: "checkout".into(),
        horizon: 3,
        ..Envelope::default()
    }
}

/// A minimal answer of `kind` (REPLY, ERROR, a stream kind) to ask 42.
#[must_use]
pub fn sample_answer(kind: Kind) -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        message_id: 43,
        correlation_id: 42,
        kind: kind.into(),
        ..Envelope::default()
    }
}

/// Limits far below the defaults, so short inputs reach every "too long" branch.
const TIGHT: Limits = Limits {
    max_envelope_bytes: 96,
    max_name_len: 6,
    max_message_type_len: 10,
    max_content_type_len: 5,
    max_flow_len: 3,
    max_error_detail_len: 12,
    max_directory_entries: 3,
};

// ---------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------

/// Decodes `data` as an envelope under the default and under tight [`Limits`].
///
/// Checks: no panic; a decoded envelope passes the validation rules, holds no more
/// string and bytes content than `data.len()` (the bounded-allocation promise),
/// re-encodes to at most `data.len()` bytes and decodes back to the same value; a
/// refused input is refused for the reason the rules give when it parses as protobuf,
/// and as [`DecodeError::Malformed`] (or [`DecodeError::TooLarge`]) when it does not;
/// the allocation-free wire scanner the session reads refused frames with finds the
/// same ids as prost in every input prost decodes.
pub fn envelope(data: &[u8]) {
    if let Ok(raw) = Envelope::decode(data) {
        let ids = Ids {
            kind: raw.kind,
            message_id: raw.message_id,
            correlation_id: raw.correlation_id,
        };
        assert_eq!(
            scan_ids(data),
            Some(ids),
            "the wire scanner disagrees with prost"
        );
    }
    for limits in [Limits::default(), TIGHT] {
        match decode_envelope(data, &limits) {
            Ok(env) => {
                assert!(
                    envelope_content_len(&env) <= data.len(),
                    "a {}-byte input decoded to {} bytes of strings and bytes",
                    data.len(),
                    envelope_content_len(&env)
                );
                assert_eq!(expected_envelope_error(&env, data.len(), &limits), None);
                let again = encode_envelope(&env);
                assert!(
                    again.len() <= data.len(),
                    "re-encoding grew {} bytes to {}",
                    data.len(),
                    again.len()
                );
                assert_eq!(decode_envelope(&again, &limits).as_ref(), Ok(&env));
            }
            Err(e) => {
                let expected = if data.len() > limits.max_envelope_bytes {
                    Some(DecodeError::TooLarge {
                        len: data.len(),
                        max: limits.max_envelope_bytes,
                    })
                } else {
                    match Envelope::decode(data) {
                        Ok(raw) => expected_envelope_error(&raw, data.len(), &limits),
                        Err(_) => {
                            assert!(matches!(e, DecodeError::Malformed(_)), "{e:?}");
                            continue;
                        }
                    }
                };
                assert_eq!(Some(e), expected);
            }
        }
    }
}

/// Builds an envelope (and decoding limits) field by field from `data`, encodes it with
/// [`encode_envelope`] and decodes it with [`decode_envelope`].
///
/// Checks: a valid envelope comes back equal (values, not bytes); an invalid one is
/// refused with exactly the [`DecodeError`] the validation rules predict; nothing
/// panics.
pub fn envelope_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(limits) = arb_limits(&mut u) else {
        return;
    };
    let Ok(env) = arb_envelope(&mut u, &[]) else {
        return;
    };
    let bytes = encode_envelope(&env);
    let got = decode_envelope(&bytes, &limits);
    match expected_envelope_error(&env, bytes.len(), &limits) {
        None => assert_eq!(got, Ok(env)),
        Some(e) => assert_eq!(got, Err(e), "for {env:?}"),
    }
}

/// Total length of an envelope's strings and bytes: what decoding it had to allocate
/// for content.
fn envelope_content_len(env: &Envelope) -> usize {
    let refs = [&env.source, &env.destination]
        .into_iter()
        .flatten()
        .map(|r| r.node.len() + r.name.len())
        .sum::<usize>();
    let trace = env
        .trace
        .as_ref()
        .map_or(0, |t| t.trace_id.len() + t.span_id.len());
    let error = env.error.as_ref().map_or(0, |e| e.detail.len());
    refs + trace + error + env.message_type.len() + env.content_type.len() + env.flow.len()
}

/// The first rule an envelope of `encoded_len` bytes breaks, as [`decode_envelope`]
/// must report it; `None` when it is valid. Written from the rules in the crate docs
/// and `envelope.proto`, independently of the decoder.
fn expected_envelope_error(
    env: &Envelope,
    encoded_len: usize,
    limits: &Limits,
) -> Option<DecodeError> {
    if encoded_len > limits.max_envelope_bytes {
        return Some(DecodeError::TooLarge {
            len: encoded_len,
            max: limits.max_envelope_bytes,
        });
    }
    if env.version == 0 {
        return Some(DecodeError::MissingVersion);
    }
    if env.version != PROTOCOL_VERSION {
        return Some(DecodeError::UnsupportedVersion(env.version));
    }
    let kind = match Kind::try_from(env.kind) {
        Ok(Kind::Unspecified) | Err(_) => return Some(DecodeError::UnknownKind(env.kind)),
        Ok(k) => k,
    };
    let missing = |field| {
        Some(DecodeError::MissingField {
            kind: kind.as_str_name(),
            field,
        })
    };
    let too_long = |field, len: usize, max: usize| {
        (len > max).then_some(DecodeError::FieldTooLong { field, len, max })
    };
    if env.message_id == 0 {
        return missing("message_id");
    }
    let mut lengths = Vec::new();
    for (field, r) in [("source", &env.source), ("destination", &env.destination)] {
        if let Some(r) = r {
            lengths.push((field, r.node.len(), limits.max_name_len));
            lengths.push((field, r.name.len(), limits.max_name_len));
        }
    }
    lengths.push((
        "message_type",
        env.message_type.len(),
        limits.max_message_type_len,
    ));
    lengths.push((
        "content_type",
        env.content_type.len(),
        limits.max_content_type_len,
    ));
    lengths.push(("flow", env.flow.len(), limits.max_flow_len));
    if let Some(e) = lengths
        .into_iter()
        .find_map(|(field, len, max)| too_long(field, len, max))
    {
        return Some(e);
    }
    if let Some(t) = &env.trace
        && (t.trace_id.len() != 16 || t.span_id.len() != 8)
    {
        return Some(DecodeError::BadTraceContext);
    }
    match kind {
        Kind::Tell | Kind::Ask => {
            if env.destination.as_ref().is_none_or(|d| d.name.is_empty()) {
                return missing("destination.name");
            }
            if env.message_type.is_empty() {
                return missing("message_type");
            }
        }
        Kind::Unspecified => return Some(DecodeError::UnknownKind(env.kind)),
        _ => {
            if env.correlation_id == 0 {
                return missing("correlation_id");
            }
            match (kind, &env.error) {
                (Kind::Credit, _) if env.credit == 0 => return missing("credit"),
                (Kind::Error, None) => return missing("error"),
                (Kind::Error, Some(info)) => {
                    return too_long(
                        "error.detail",
                        info.detail.len(),
                        limits.max_error_detail_len,
                    );
                }
                _ => {}
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------

/// Decodes `data` as a control-plane [`Directory`] under the default and under tight
/// [`Limits`].
///
/// Checks: no panic; a decoded directory passes the rules of [`decode_directory`],
/// holds no more string content than `data.len()` and no more names than the input could
/// frame (two bytes each), and round-trips; a refused input is refused for the reason
/// the rules give when it parses as protobuf.
pub fn directory(data: &[u8]) {
    for limits in [Limits::default(), TIGHT] {
        match decode_directory(data, &limits) {
            Ok(dir) => {
                let content: usize =
                    dir.node.len() + dir.components.iter().map(String::len).sum::<usize>();
                assert!(
                    content <= data.len(),
                    "{content} bytes of names from {} bytes",
                    data.len()
                );
                assert!(2 * dir.components.len() <= data.len());
                assert_eq!(expected_directory_error(&dir, data.len(), &limits), None);
                let again = encode_directory(&dir);
                assert!(again.len() <= data.len());
                assert_eq!(decode_directory(&again, &limits).as_ref(), Ok(&dir));
            }
            Err(e) => {
                if data.len() > directory_max_bytes(&limits) {
                    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
                } else if let Ok(raw) = Directory::decode(data) {
                    assert_eq!(Some(e), expected_directory_error(&raw, data.len(), &limits));
                } else {
                    // Broken wire format: malformed, unless the entries before the break
                    // were already too many.
                    let ok = match &e {
                        DecodeError::Malformed(_) => true,
                        DecodeError::FieldTooLong { field, len, max } => {
                            *field == "components" && len > max
                        }
                        _ => false,
                    };
                    assert!(ok, "{e:?}");
                }
            }
        }
    }
}

/// Builds a [`Directory`] (and decoding limits) field by field from `data`, encodes it
/// with [`encode_directory`] and decodes it with [`decode_directory`].
///
/// Checks: a valid directory comes back equal; an invalid one is refused with exactly
/// the [`DecodeError`] the rules predict; nothing panics.
pub fn directory_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(limits) = arb_limits(&mut u) else {
        return;
    };
    let Ok(dir) = arb_directory(&mut u) else {
        return;
    };
    let bytes = encode_directory(&dir);
    let got = decode_directory(&bytes, &limits);
    match expected_directory_error(&dir, bytes.len(), &limits) {
        None => assert_eq!(got, Ok(dir)),
        Some(e) => assert_eq!(got, Err(e)),
    }
}

/// The largest encoded directory [`decode_directory`] reads: every entry at its longest
/// with a 3-byte key and length, plus the node name and the scalar fields.
fn directory_max_bytes(limits: &Limits) -> usize {
    limits.max_directory_entries * (limits.max_name_len + 3) + limits.max_name_len + 32
}

/// The first rule a directory of `encoded_len` bytes breaks; `None` when it is valid.
fn expected_directory_error(
    dir: &Directory,
    encoded_len: usize,
    limits: &Limits,
) -> Option<DecodeError> {
    let max = directory_max_bytes(limits);
    if encoded_len > max {
        return Some(DecodeError::TooLarge {
            len: encoded_len,
            max,
        });
    }
    // Too many entries is seen before decoding, so it comes before every other rule.
    if dir.components.len() > limits.max_directory_entries {
        return Some(DecodeError::FieldTooLong {
            field: "components",
            len: dir.components.len(),
            max: limits.max_directory_entries,
        });
    }
    if dir.node.is_empty() {
        return Some(DecodeError::MissingField {
            kind: "Directory",
            field: "node",
        });
    }
    let names = std::iter::once(("node", &dir.node))
        .chain(dir.components.iter().map(|c| ("components[]", c)));
    for (field, name) in names {
        if name.is_empty() {
            return Some(DecodeError::MissingField {
                kind: "Directory",
                field,
            });
        }
        if name.len() > limits.max_name_len {
            return Some(DecodeError::FieldTooLong {
                field,
                len: name.len(),
                max: limits.max_name_len,
            });
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------

/// Default limits most of the time, otherwise small arbitrary ones.
fn arb_limits(u: &mut Unstructured<'_>) -> ArbResult<Limits> {
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
fn arb_string(u: &mut Unstructured<'_>) -> ArbResult<String> {
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

fn arb_bytes(u: &mut Unstructured<'_>, usual: usize) -> ArbResult<Vec<u8>> {
    let len = if u.ratio(3, 4)? {
        usual
    } else {
        u.int_in_range(0usize..=40)?
    };
    Ok((0..len).map(|i| i as u8).collect())
}

fn arb_ref(u: &mut Unstructured<'_>) -> ArbResult<Option<ComponentRef>> {
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
fn arb_id(u: &mut Unstructured<'_>, known: &[u64]) -> ArbResult<u64> {
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
fn arb_envelope(u: &mut Unstructured<'_>, known: &[u64]) -> ArbResult<Envelope> {
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

fn arb_directory(u: &mut Unstructured<'_>) -> ArbResult<Directory> {
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

/// The nodes of the session harness: `a` and `b` run a [`Session`] each; `c` is a node
/// that never answers (frames to it vanish), though frames can be forged from it.
const NODES: [&str; 3] = ["a", "b", "c"];

/// Most operations one input runs.
const MAX_OPS: usize = 512;

/// One step of the session harness.
#[derive(Debug)]
enum Op {
    /// `side` asks `peer`.
    Ask {
        side: usize,
        peer: usize,
        out: Outgoing,
        timeout: Option<Nanos>,
    },
    /// `side` tells `peer`.
    Tell {
        side: usize,
        peer: usize,
        out: Outgoing,
    },
    /// `side` answers one of the requests it received (`pick` chooses which); `keep`
    /// leaves it answerable again (a buggy application answering twice).
    Reply {
        side: usize,
        pick: usize,
        result: Result<(Vec<u8>, String), (ErrorCode, String)>,
        keep: bool,
    },
    /// The network delivers its first `n` frames.
    Deliver { n: usize },
    /// The network loses its first frame.
    Drop,
    /// The network delivers its first frame twice.
    Duplicate,
    /// The network swaps its first two frames.
    Swap,
    /// The network flips bits in its first frame's envelope.
    Mutate { pos: usize, xor: u8 },
    /// Time passes; each side in `fire` handles its timeouts.
    Advance { delta: Nanos, fire: [bool; 2] },
    /// `side`'s driver loses `peer`.
    PeerLost { side: usize, peer: usize },
    /// `side` cancels an ask (`pick` chooses among every ask it made) or any id.
    Cancel { side: usize, id: Choice },
    /// Raw bytes arrive at `side` as if from `from`.
    Inject {
        side: usize,
        from: usize,
        envelope: Vec<u8>,
        payload: Vec<u8>,
    },
    /// A forged (often valid) envelope arrives at `side` as if from `from`.
    Forge {
        side: usize,
        from: usize,
        envelope: Box<Envelope>,
    },
}

/// An id to cancel: one the side handed out, or any.
#[derive(Debug)]
enum Choice {
    Issued(usize),
    Any(u64),
}

fn arb_outgoing(u: &mut Unstructured<'_>) -> ArbResult<Outgoing> {
    let component = if u.ratio(7, 8)? {
        "worker".to_owned()
    } else {
        arb_string(u)?
    };
    let message_type = if u.ratio(7, 8)? {
        "demo.v1.Add".to_owned()
    } else {
        arb_string(u)?
    };
    let content_type = if u.ratio(7, 8)? {
        "application/postcard".to_owned()
    } else {
        arb_string(u)?
    };
    let len = u.int_in_range(0usize..=8)?.min(u.len());
    Ok(Outgoing::new(
        component,
        message_type,
        content_type,
        u.bytes(len)?.to_vec(),
    ))
}

fn arb_nanos(u: &mut Unstructured<'_>) -> ArbResult<Nanos> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => u.arbitrary()?,
        2 => u64::MAX - u64::from(u.arbitrary::<u16>()?),
        3 => u.int_in_range(0..=1_000)?,
        _ => u.int_in_range(0..=3_000_000_000)?,
    })
}

impl Op {
    fn arbitrary(u: &mut Unstructured<'_>, world: &World) -> ArbResult<Self> {
        let side = usize::from(u.arbitrary::<bool>()?);
        Ok(match u.int_in_range(0u8..=15)? {
            0..=2 => Self::Ask {
                side,
                peer: u.choose_index(3)?,
                out: arb_outgoing(u)?,
                timeout: if u.ratio(3, 4)? {
                    Some(arb_nanos(u)?)
                } else {
                    None
                },
            },
            3 => Self::Tell {
                side,
                peer: u.choose_index(3)?,
                out: arb_outgoing(u)?,
            },
            4 | 5 => Self::Reply {
                side,
                pick: u.arbitrary()?,
                result: if u.ratio(3, 4)? {
                    Ok((arb_bytes(u, 2)?, arb_string(u)?))
                } else {
                    let code = u.int_in_range(0..=9)?;
                    let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified);
                    Err((code, arb_string(u)?))
                },
                keep: u.ratio(1, 8)?,
            },
            6..=8 => Self::Deliver {
                n: u.int_in_range(1..=8)?,
            },
            9 => match u.int_in_range(0u8..=3)? {
                0 => Self::Drop,
                1 => Self::Duplicate,
                2 => Self::Swap,
                _ => Self::Mutate {
                    pos: u.arbitrary()?,
                    xor: u.int_in_range(1..=255)?,
                },
            },
            10 | 11 => {
                // Often exactly to (or just before) the next deadline.
                let next = world.sides[side].session.poll_timeout();
                let delta = match (u.int_in_range(0u8..=3)?, next) {
                    (0, Some(d)) => d.saturating_sub(world.now),
                    (1, Some(d)) => d.saturating_sub(world.now).saturating_sub(1),
                    _ => arb_nanos(u)?,
                };
                Self::Advance {
                    delta,
                    fire: [u.ratio(3, 4)?, u.ratio(3, 4)?],
                }
            }
            12 => Self::PeerLost {
                side,
                peer: u.choose_index(3)?,
            },
            13 => Self::Cancel {
                side,
                id: if u.ratio(3, 4)? {
                    Choice::Issued(u.arbitrary()?)
                } else {
                    Choice::Any(u.arbitrary()?)
                },
            },
            14 => {
                let len = u.arbitrary_len::<u8>()?.min(256);
                Self::Inject {
                    side,
                    from: u.choose_index(3)?,
                    envelope: u.bytes(len)?.to_vec(),
                    payload: arb_bytes(u, 1)?,
                }
            }
            _ => {
                let known = &world.sides[side].issued;
                Self::Forge {
                    side,
                    from: u.choose_index(3)?,
                    envelope: Box::new(arb_envelope(u, known)?),
                }
            }
        })
    }
}

/// What the harness knows of one ask still waiting.
#[derive(Debug)]
struct AskModel {
    peer: usize,
    deadline: Option<Nanos>,
}

/// One session and the model it is checked against.
#[derive(Debug)]
struct Side {
    session: Session,
    limits: Limits,
    /// Asks not ended yet.
    asks: BTreeMap<u64, AskModel>,
    /// Every ask id handed out, ended or not.
    issued: Vec<u64>,
    /// Requests received (tells and asks), for `Op::Reply`.
    requests: Vec<Request>,
    /// Streams this side produces (a forged ask with credit opens one): (caller, id).
    producing: BTreeSet<(usize, u64)>,
    /// Highest message id this side has sent: ids only grow, so frames leave in order.
    last_sent: u64,
    /// The latest time `handle_timeout` ran.
    handled: Option<Nanos>,
    /// `Failure::Timeout` events seen.
    timeouts: u64,
    /// Stats expected after the current step.
    malformed: u64,
    unmatched: u64,
    unmatched_streams: u64,
    fenced: u64,
}

/// A frame on the simulated network, from node `from` to side `to`.
#[derive(Debug, Clone)]
struct Frame {
    from: usize,
    to: usize,
    envelope: Vec<u8>,
    payload: Vec<u8>,
}

/// Two sessions, the network between them, and the clock.
#[derive(Debug)]
struct World {
    sides: [Side; 2],
    now: Nanos,
    wire: VecDeque<Frame>,
    /// Whether a frame was lost or damaged: then an answer may never come.
    lossy: bool,
}

/// Runs two [`Session`]s (nodes `a` and `b`, with a silent node `c` beside them)
/// through a sequence of operations decoded from `data`: asks, tells and replies from
/// the applications; delivery, loss, duplication, reordering and corruption of frames
/// on the network; time passing and timeouts firing; lost peers; cancels; raw and
/// forged frames.
///
/// After every operation each session's outputs are compared with a model: the exact
/// events and frames it must produce and its counters. In particular every ask ends
/// exactly once (a reply, an error, [`Failure::Timeout`] at or after its deadline, or
/// [`Failure::PeerLost`]) unless cancelled; [`Session::outstanding`] is the number of
/// asks not ended; [`Session::poll_timeout`] is the earliest deadline among them and is
/// never earlier than a time already handled; frames leave in the order they were made.
/// At the end, when no frame was lost or damaged, every ask to a live peer has been
/// answered once all frames are delivered and all requests answered.
///
/// With `TERN_FUZZ_TRACE` set in the environment, each operation is printed to stderr
/// before it runs, to read a crashing input.
pub fn session_ops(data: &[u8]) {
    let trace = std::env::var_os("TERN_FUZZ_TRACE").is_some();
    let mut u = Unstructured::new(data);
    let Ok(limits_b) = arb_limits(&mut u) else {
        return;
    };
    let mut world = World {
        sides: [
            Side::new(NODES[0], Limits::default()),
            Side::new(NODES[1], limits_b),
        ],
        now: 0,
        wire: VecDeque::new(),
        lossy: false,
    };
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u, &world) else {
            break;
        };
        if trace {
            eprintln!("t={} {op:?}", world.now);
        }
        world.apply(op);
        world.check();
    }
    world.settle();
}

impl Side {
    fn new(node: &str, limits: Limits) -> Self {
        Self {
            session: Session::with_limits(node, limits),
            limits,
            asks: BTreeMap::new(),
            issued: Vec::new(),
            requests: Vec::new(),
            producing: BTreeSet::new(),
            last_sent: 0,
            handled: None,
            timeouts: 0,
            malformed: 0,
            unmatched: 0,
            unmatched_streams: 0,
            fenced: 0,
        }
    }

    fn earliest_deadline(&self) -> Option<Nanos> {
        self.asks.values().filter_map(|a| a.deadline).min()
    }

    /// Drains the events, which must be exactly `expected`, and ends the asks they
    /// answer in the model.
    fn expect_events(&mut self, expected: &[Event]) {
        let mut got = Vec::new();
        while let Some(e) = self.session.poll_event() {
            got.push(e);
        }
        assert_eq!(got, expected, "events");
        for e in expected {
            if let Event::Reply { id, result } = e {
                assert!(self.asks.remove(id).is_some(), "ask {id} ended twice");
                if result == &Err(Failure::Timeout) {
                    self.timeouts += 1;
                }
            }
        }
    }
}

/// The envelope a session's own encoder produced; it always parses.
fn parse_own(bytes: &[u8]) -> Envelope {
    match Envelope::decode(bytes) {
        Ok(env) => env,
        Err(e) => panic!("a session encoded an unparsable envelope: {e}"),
    }
}

fn node_index(name: &str) -> usize {
    match NODES.iter().position(|n| *n == name) {
        Some(i) => i,
        None => panic!("a frame to unknown node {name:?}"),
    }
}

impl World {
    /// Drains side `i`'s frames: each has a fresh, larger id; frames to `a` or `b` go
    /// on the wire.
    fn drain(&mut self, i: usize) -> Vec<Envelope> {
        let mut sent = Vec::new();
        while let Some(t) = self.sides[i].session.poll_transmit() {
            let env = parse_own(&t.envelope);
            let side = &mut self.sides[i];
            assert!(
                env.message_id > side.last_sent,
                "frame {} after frame {}",
                env.message_id,
                side.last_sent
            );
            side.last_sent = env.message_id;
            let to = node_index(&t.peer);
            if to < 2 {
                self.wire.push_back(Frame {
                    from: i,
                    to,
                    envelope: t.envelope,
                    payload: t.payload.clone(),
                });
            }
            sent.push(env);
        }
        sent
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Ask {
                side,
                peer,
                out,
                timeout,
            } => {
                let id = self.sides[side]
                    .session
                    .ask(now, NODES[peer], out.clone(), timeout);
                let sent = self.drain(side);
                let deadline = timeout.map(|t| now.saturating_add(t));
                let s = &mut self.sides[side];
                assert!(!s.issued.contains(&id), "ask id {id} reused");
                assert_eq!(sent.len(), 1);
                let env = &sent[0];
                assert_eq!(
                    (env.kind, env.message_id, env.correlation_id),
                    (Kind::Ask.into(), id, 0)
                );
                let dest = env.destination.clone().unwrap_or_default();
                assert_eq!(
                    (dest.node.as_str(), dest.name.as_str()),
                    (NODES[peer], out.component.as_str())
                );
                assert_eq!(env.message_type, out.message_type);
                match deadline {
                    // A deadline is never sent as "none".
                    Some(d) => {
                        let left = d - now;
                        let ms = u64::from(env.timeout_ms);
                        assert!(ms >= 1, "deadline in {left} ns sent as no deadline");
                        assert!(
                            ms == u64::from(u32::MAX) || ms == left.div_ceil(1_000_000).max(1),
                            "{left} ns sent as {ms} ms"
                        );
                    }
                    None => assert_eq!(env.timeout_ms, 0),
                }
                s.issued.push(id);
                s.asks.insert(id, AskModel { peer, deadline });
                s.expect_events(&[]);
            }
            Op::Tell { side, peer, out } => {
                let id = self.sides[side].session.tell(now, NODES[peer], out.clone());
                let sent = self.drain(side);
                assert_eq!(sent.len(), 1);
                assert_eq!((sent[0].kind, sent[0].message_id), (Kind::Tell.into(), id));
                self.sides[side].expect_events(&[]);
            }
            Op::Reply {
                side,
                pick,
                result,
                keep,
            } => {
                let s = &mut self.sides[side];
                if s.requests.is_empty() {
                    return;
                }
                let at = pick % s.requests.len();
                let req = if keep {
                    s.requests[at].clone()
                } else {
                    s.requests.swap_remove(at)
                };
                s.session.reply(now, &req, result.clone());
                if req.credit > 0 {
                    s.producing.remove(&(node_index(&req.peer), req.message_id));
                }
                let sent = self.drain(side);
                if !req.expects_reply {
                    assert!(sent.is_empty(), "a tell was answered");
                } else {
                    assert_eq!(sent.len(), 1);
                    let env = &sent[0];
                    assert_eq!(env.correlation_id, req.message_id);
                    let want = if result.is_ok() {
                        Kind::Reply
                    } else {
                        Kind::Error
                    };
                    assert_eq!(env.kind, i32::from(want));
                }
                self.sides[side].expect_events(&[]);
            }
            Op::Deliver { n } => {
                for _ in 0..n {
                    let Some(frame) = self.wire.pop_front() else {
                        break;
                    };
                    self.deliver(frame);
                }
            }
            Op::Drop => {
                if self.wire.pop_front().is_some() {
                    self.lossy = true;
                }
            }
            Op::Duplicate => {
                if let Some(f) = self.wire.front().cloned() {
                    self.wire.push_front(f);
                }
            }
            Op::Swap => {
                if self.wire.len() >= 2 {
                    self.wire.swap(0, 1);
                }
            }
            Op::Mutate { pos, xor } => {
                if let Some(f) = self.wire.front_mut() {
                    if f.envelope.is_empty() {
                        f.envelope.push(xor);
                    } else {
                        let at = pos % f.envelope.len();
                        f.envelope[at] ^= xor;
                    }
                    self.lossy = true;
                }
            }
            Op::Advance { delta, fire } => {
                self.now = self.now.saturating_add(delta);
                for (side, go) in fire.into_iter().enumerate() {
                    if go {
                        self.fire(side);
                    }
                }
            }
            Op::PeerLost { side, peer } => {
                let s = &mut self.sides[side];
                let mut expected: Vec<Event> = s
                    .asks
                    .iter()
                    .filter(|(_, a)| a.peer == peer)
                    .map(|(&id, _)| Event::Reply {
                        id,
                        result: Err(Failure::PeerLost),
                    })
                    .collect();
                let lost: Vec<(usize, u64)> = s
                    .producing
                    .iter()
                    .filter(|(p, _)| *p == peer)
                    .copied()
                    .collect();
                for (p, id) in lost {
                    s.producing.remove(&(p, id));
                    expected.push(Event::Cancelled {
                        peer: NODES[p].to_owned(),
                        id,
                    });
                }
                s.session.peer_lost(NODES[peer]);
                assert!(self.drain(side).is_empty());
                self.sides[side].expect_events(&expected);
            }
            Op::Cancel { side, id } => {
                let s = &mut self.sides[side];
                let id = match id {
                    Choice::Issued(_) if s.issued.is_empty() => return,
                    Choice::Issued(pick) => s.issued[pick % s.issued.len()],
                    Choice::Any(id) => id,
                };
                let was = s.asks.remove(&id).is_some();
                assert_eq!(s.session.cancel(id), was, "cancel({id})");
                assert!(self.drain(side).is_empty());
                self.sides[side].expect_events(&[]);
            }
            Op::Inject {
                side,
                from,
                envelope,
                payload,
            } => self.deliver(Frame {
                from,
                to: side,
                envelope,
                payload,
            }),
            Op::Forge {
                side,
                from,
                envelope,
            } => self.deliver(Frame {
                from,
                to: side,
                envelope: encode_envelope(&envelope),
                payload: Vec::new(),
            }),
        }
    }

    /// `handle_timeout(now)` on `side`: exactly the asks due end, in deadline order.
    fn fire(&mut self, side: usize) {
        let now = self.now;
        let s = &mut self.sides[side];
        let mut due: Vec<(Nanos, u64)> = s
            .asks
            .iter()
            .filter_map(|(&id, a)| a.deadline.filter(|&d| d <= now).map(|d| (d, id)))
            .collect();
        due.sort_unstable();
        let expected: Vec<Event> = due
            .into_iter()
            .map(|(_, id)| Event::Reply {
                id,
                result: Err(Failure::Timeout),
            })
            .collect();
        s.session.handle_timeout(now);
        assert!(self.drain(side).is_empty());
        let s = &mut self.sides[side];
        s.expect_events(&expected);
        s.handled = Some(now);
        if let Some(next) = s.session.poll_timeout() {
            assert!(
                next > now,
                "deadline {next} still pending after handling {now}"
            );
        }
    }

    /// Hands `frame` to its side and checks the outcome against what the envelope
    /// says.
    fn deliver(&mut self, frame: Frame) {
        let now = self.now;
        let Frame {
            from,
            to,
            envelope,
            payload,
        } = frame;
        let s = &mut self.sides[to];
        let mut expected = Vec::new();
        // What an undecodable ask is answered with, if it is answered.
        let mut refusal = None;
        match decode_envelope(&envelope, &s.limits) {
            Err(e) => {
                // Refused; what the frame names still ends: an ask is answered, an
                // answer to an outstanding ask ends it.
                s.malformed += 1;
                let code = match e {
                    DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
                    DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
                    _ => ErrorCode::DecodeFailed,
                };
                let ids = scan_ids(&envelope);
                if let Ok(raw) = Envelope::decode(envelope.as_slice()) {
                    assert_eq!(
                        ids.map(|i| (i.kind, i.message_id)),
                        Some((raw.kind, raw.message_id))
                    );
                }
                match ids.map(|i| (Kind::try_from(i.kind), i)) {
                    Some((Ok(Kind::Ask), i)) if i.message_id != 0 => {
                        refusal = Some((i.message_id, code));
                    }
                    Some((Ok(Kind::Reply | Kind::Error), i))
                        if s.asks
                            .get(&i.correlation_id)
                            .is_some_and(|a| a.peer == from) =>
                    {
                        expected.push(Event::Reply {
                            id: i.correlation_id,
                            result: Err(Failure::Remote {
                                code,
                                detail: e.to_string(),
                            }),
                        });
                    }
                    _ => {}
                }
            }
            Ok(env) => match Kind::try_from(env.kind) {
                // Addressed to a generation the receiver (generation 0) does not run:
                // refused, an ask answered with `Stopped`.
                Ok(k @ (Kind::Tell | Kind::Ask))
                    if env.destination.as_ref().is_some_and(|d| d.generation != 0) =>
                {
                    s.fenced += 1;
                    if k == Kind::Ask && env.message_id != 0 {
                        refusal = Some((env.message_id, ErrorCode::Stopped));
                    }
                }
                Ok(k @ (Kind::Tell | Kind::Ask)) => {
                    let deadline = (env.timeout_ms > 0)
                        .then(|| now.saturating_add(u64::from(env.timeout_ms) * 1_000_000));
                    let credit = if k == Kind::Ask { env.credit } else { 0 };
                    if credit > 0 && !s.producing.insert((from, env.message_id)) {
                        // A repeat of a stream request still being produced: dropped.
                        s.unmatched_streams += 1;
                        s.session.handle_frame(now, NODES[from], &envelope, payload);
                        assert!(self.drain(to).is_empty());
                        self.sides[to].expect_events(&[]);
                        return;
                    }
                    let req = Request {
                        peer: NODES[from].to_owned(),
                        message_id: env.message_id,
                        expects_reply: k == Kind::Ask,
                        source: env.source,
                        component: env.destination.map(|d| d.name).unwrap_or_default(),
                        message_type: env.message_type,
                        content_type: env.content_type,
                        payload: payload.clone(),
                        deadline,
                        credit,
                    };
                    s.requests.push(req.clone());
                    expected.push(Event::Request(req));
                }
                Ok(k @ (Kind::Reply | Kind::Error)) => {
                    let id = env.correlation_id;
                    if s.asks.get(&id).is_some_and(|a| a.peer == from) {
                        let result = if k == Kind::Reply {
                            Ok(Reply {
                                content_type: env.content_type,
                                payload: payload.clone(),
                            })
                        } else {
                            let info = env.error.unwrap_or_default();
                            Err(Failure::Remote {
                                code: ErrorCode::try_from(info.code)
                                    .unwrap_or(ErrorCode::Unspecified),
                                detail: info.detail,
                            })
                        };
                        expected.push(Event::Reply { id, result });
                    } else {
                        s.unmatched += 1;
                    }
                }
                // This harness never asks for a stream, so items and ends match none.
                Ok(Kind::StreamItem | Kind::StreamEnd) => s.unmatched_streams += 1,
                Ok(Kind::Credit) if s.producing.contains(&(from, env.correlation_id)) => {
                    expected.push(Event::Credit {
                        peer: NODES[from].to_owned(),
                        id: env.correlation_id,
                        credit: env.credit,
                    });
                }
                Ok(Kind::Cancel) if s.producing.remove(&(from, env.correlation_id)) => {
                    expected.push(Event::Cancelled {
                        peer: NODES[from].to_owned(),
                        id: env.correlation_id,
                    });
                }
                Ok(Kind::Credit | Kind::Cancel) => s.unmatched_streams += 1,
                _ => s.malformed += 1,
            },
        }
        s.session.handle_frame(now, NODES[from], &envelope, payload);
        let sent = self.drain(to);
        match refusal {
            None => assert!(sent.is_empty(), "unexpected frames {sent:?}"),
            Some((id, code)) => {
                assert_eq!(sent.len(), 1, "refusal of ask {id}");
                let env = &sent[0];
                assert_eq!((env.kind, env.correlation_id), (i32::from(Kind::Error), id));
                assert_eq!(env.error.as_ref().map(|e| e.code), Some(code.into()));
            }
        }
        self.sides[to].expect_events(&expected);
    }

    /// The invariants that hold between any two steps.
    fn check(&self) {
        for s in &self.sides {
            assert_eq!(s.session.outstanding(), s.asks.len(), "outstanding()");
            let next = s.session.poll_timeout();
            assert_eq!(next, s.earliest_deadline(), "poll_timeout()");
            if let (Some(next), Some(handled)) = (next, s.handled) {
                assert!(
                    next >= handled,
                    "poll_timeout {next} before handled {handled}"
                );
            }
            let stats = s.session.stats();
            assert_eq!(stats.timeouts, s.timeouts, "stats.timeouts");
            assert_eq!(stats.malformed, s.malformed, "stats.malformed");
            assert_eq!(stats.fenced, s.fenced, "stats.fenced");
            assert_eq!(
                stats.unmatched_replies, s.unmatched,
                "stats.unmatched_replies"
            );
            assert_eq!(
                stats.unmatched_stream_frames, s.unmatched_streams,
                "stats.unmatched_stream_frames"
            );
            assert_eq!(s.session.streams_producing(), s.producing.len());
        }
    }

    /// Delivers everything and answers every request until the network is quiet; then,
    /// unless frames were lost or damaged, only asks to the silent node may still wait.
    /// Finally every peer is lost, which must end every ask.
    fn settle(&mut self) {
        for _ in 0..16 {
            if self.wire.is_empty() && self.sides.iter().all(|s| s.requests.is_empty()) {
                break;
            }
            while let Some(frame) = self.wire.pop_front() {
                self.deliver(frame);
                self.check();
            }
            for side in 0..2 {
                while !self.sides[side].requests.is_empty() {
                    self.apply(Op::Reply {
                        side,
                        pick: 0,
                        result: Ok((Vec::new(), "application/octet-stream".to_owned())),
                        keep: false,
                    });
                    self.check();
                }
            }
        }
        assert!(self.wire.is_empty(), "the network did not settle");
        if !self.lossy {
            for s in &self.sides {
                let waiting: Vec<_> = s.asks.iter().filter(|(_, a)| a.peer != 2).collect();
                assert!(waiting.is_empty(), "asks never answered: {waiting:?}");
            }
        }
        for side in 0..2 {
            for peer in 0..3 {
                self.apply(Op::PeerLost { side, peer });
            }
        }
        self.check();
        for s in &self.sides {
            assert_eq!(s.session.outstanding(), 0);
            assert_eq!(s.session.poll_timeout(), None);
        }
    }
}
