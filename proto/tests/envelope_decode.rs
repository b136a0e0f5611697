//! Strict, bounded decoding of envelopes: valid ones round-trip, everything else is a
//! typed error, and no input panics.

use tern_proto::v1::{Envelope, ErrorCode, ErrorInfo, Kind, TraceContext};
use tern_proto::{DecodeError, Limits, decode_envelope, encode_envelope, fuzzing};

fn tell() -> Envelope {
    fuzzing::sample_tell()
}

fn reply_to(kind: Kind) -> Envelope {
    fuzzing::sample_answer(kind)
}

fn decode(env: &Envelope) -> Result<Envelope, DecodeError> {
    decode_envelope(&encode_envelope(env), &Limits::default())
}

#[test]
fn every_kind_round_trips() {
    let mut ask = tell();
    ask.kind = Kind::Ask.into();
    let mut credit = reply_to(Kind::Credit);
    credit.credit = 16;
    let mut error = reply_to(Kind::Error);
    error.error = Some(ErrorInfo {
        code: ErrorCode::Timeout.into(),
        detail: "deadline passed".into(),
    });
    for env in [
        tell(),
        ask,
        reply_to(Kind::Reply),
        reply_to(Kind::StreamItem),
        reply_to(Kind::StreamEnd),
        reply_to(Kind::Cancel),
        credit,
        error,
    ] {
        assert_eq!(decode(&env).unwrap(), env);
    }
}

#[test]
fn versions_are_checked() {
    let mut env = tell();
    env.version = 0;
    assert_eq!(decode(&env), Err(DecodeError::MissingVersion));
    env.version = 2;
    assert_eq!(decode(&env), Err(DecodeError::UnsupportedVersion(2)));
}

#[test]
fn unknown_fields_are_skipped() {
    let mut bytes = encode_envelope(&tell());
    // Field 99, wire type 2 (length-delimited), 3 bytes: what a newer sender might add.
    bytes.extend_from_slice(&[0x9a, 0x06, 3, b'n', b'e', b'w']);
    assert_eq!(decode_envelope(&bytes, &Limits::default()).unwrap(), tell());
}

#[test]
fn each_kind_needs_its_fields() {
    let mut env = tell();
    env.kind = 99;
    assert_eq!(decode(&env), Err(DecodeError::UnknownKind(99)));
    env.kind = 0;
    assert_eq!(decode(&env), Err(DecodeError::UnknownKind(0)));

    let mut env = tell();
    env.message_id = 0;
    assert!(matches!(
        decode(&env),
        Err(DecodeError::MissingField {
            field: "message_id",
            ..
        })
    ));
    let mut env = tell();
    env.destination = None;
    assert!(matches!(
        decode(&env),
        Err(DecodeError::MissingField {
            field: "destination.name",
            ..
        })
    ));
    let mut env = tell();
    env.message_type.clear();
    assert!(matches!(
        decode(&env),
        Err(DecodeError::MissingField {
            field: "message_type",
            ..
        })
    ));

    let mut env = reply_to(Kind::Reply);
    env.correlation_id = 0;
    assert!(matches!(
        decode(&env),
        Err(DecodeError::MissingField {
            field: "correlation_id",
            ..
        })
    ));
    assert!(matches!(
        decode(&reply_to(Kind::Credit)),
        Err(DecodeError::MissingField {
            field: "credit",
            ..
        })
    ));
    assert!(matches!(
        decode(&reply_to(Kind::Error)),
        Err(DecodeError::MissingField { field: "error", .. })
    ));
    // Error codes from newer peers are accepted, for forward compatibility.
    let mut env = reply_to(Kind::Error);
    env.error = Some(ErrorInfo {
        code: 1234,
        detail: String::new(),
    });
    assert_eq!(decode(&env).unwrap(), env);
}

#[test]
fn limits_are_enforced() {
    let limits = Limits::default();
    let mut env = tell();
    env.message_type = "x".repeat(limits.max_message_type_len + 1);
    assert!(matches!(
        decode(&env),
        Err(DecodeError::FieldTooLong {
            field: "message_type",
            ..
        })
    ));
    let mut env = tell();
    env.trace = Some(TraceContext {
        trace_id: vec![1; 15],
        span_id: vec![1; 8],
        flags: 0,
    });
    assert_eq!(decode(&env), Err(DecodeError::BadTraceContext));

    let big = vec![0u8; limits.max_envelope_bytes + 1];
    assert_eq!(
        decode_envelope(&big, &limits),
        Err(DecodeError::TooLarge {
            len: big.len(),
            max: limits.max_envelope_bytes
        })
    );
}

#[test]
fn a_field_that_claims_a_gibibyte_is_malformed_not_allocated() {
    // Field 8 (content_type), wire type 2, length varint 2^30, then 4 bytes of data.
    let mut bytes = vec![0x42];
    bytes.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04]);
    bytes.extend_from_slice(b"abcd");
    assert!(matches!(
        decode_envelope(&bytes, &Limits::default()),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn truncations_and_garbage_never_panic() {
    let full = encode_envelope(&tell());
    for cut in 0..full.len() {
        // Every prefix decodes to a typed result (some prefixes are valid envelopes).
        let _ = decode_envelope(&full[..cut], &Limits::default());
    }
    // A fixed-seed xorshift stream of random inputs, and random single-byte corruptions.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_envelope(&junk, &Limits::default());
        let mut flipped = full.clone();
        let at = (next() as usize) % flipped.len();
        flipped[at] ^= next() as u8 | 1;
        let _ = decode_envelope(&flipped, &Limits::default());
    }
}
