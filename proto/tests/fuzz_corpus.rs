//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! `tern_proto::fuzzing` functions the cargo-fuzz targets call, on stable, in every
//! `cargo test`. A missing or empty corpus directory fails, so the corpus cannot vanish
//! unnoticed.
//!
//! `write_seed_corpus` (ignored) writes the hand-made seeds the corpus started from:
//! `cargo test -p tern-proto --test fuzz_corpus -- --ignored`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tern_proto::control::{decode_directory, encode_directory};
use tern_proto::fuzzing;
use tern_proto::session::{Event, Failure, Outgoing, Request, Session};
use tern_proto::v1::{Directory, Envelope, ErrorCode, ErrorInfo, Kind};
use tern_proto::{DecodeError, Limits, encode_envelope};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `f` on every file of `target`'s corpus; fails listing every file that panicked.
fn replay(target: &str, f: fn(&[u8])) {
    let dir = corpus_dir(target);
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let mut failed = Vec::new();
    for path in &files {
        let data = fs::read(path).expect("readable corpus file");
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs failed: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn envelope_corpus() {
    replay("envelope", fuzzing::envelope);
}

#[test]
fn envelope_round_trip_corpus() {
    replay("envelope_round_trip", fuzzing::envelope_round_trip);
}

#[test]
fn directory_corpus() {
    replay("directory", fuzzing::directory);
}

#[test]
fn directory_round_trip_corpus() {
    replay("directory_round_trip", fuzzing::directory_round_trip);
}

#[test]
fn session_corpus() {
    replay("session", fuzzing::session_ops);
}

#[test]
fn stream_corpus() {
    replay("stream", fuzzing::stream_ops);
}

// ---------------------------------------------------------------------------------
// Regressions: what the fuzzers found, as plain tests (their crashing inputs are also
// in the corpus, as `regression-*`).
// ---------------------------------------------------------------------------------

/// Moves every queued frame from `from` (node `from_name`) into `to`.
fn pump(from: &mut Session, from_name: &str, to: &mut Session) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        to.handle_frame(0, from_name, &t.envelope, t.payload);
        n += 1;
    }
    n
}

fn only_request(s: &mut Session) -> Request {
    match s.poll_event() {
        Some(Event::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn an_ask_whose_reply_cannot_be_decoded_still_ends() {
    // Found by `session`: the reply's content_type is over the asker's limit, so the
    // asker refused the frame and the ask, having no deadline, never ended.
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let id = a.ask(
        0,
        "b",
        Outgoing::new("worker", "demo.Job", "text/plain", vec![1]),
        None,
    );
    pump(&mut a, "a", &mut b);
    let req = only_request(&mut b);
    b.reply(0, &req, Ok((vec![2], "x".repeat(300))));
    pump(&mut b, "b", &mut a);
    match a.poll_event() {
        Some(Event::Reply {
            id: got,
            result: Err(Failure::Remote { code, .. }),
        }) => assert_eq!((got, code), (id, ErrorCode::DecodeFailed)),
        other => panic!("{other:?}"),
    }
    assert_eq!((a.outstanding(), a.stats().malformed), (0, 1));
    // An oversized error detail (a handler's panic message, say) ends the ask too.
    let id = a.ask(
        0,
        "b",
        Outgoing::new("worker", "demo.Job", "text/plain", vec![1]),
        None,
    );
    pump(&mut a, "a", &mut b);
    let req = only_request(&mut b);
    b.reply(
        0,
        &req,
        Err((ErrorCode::HandlerPanicked, "!".repeat(5_000))),
    );
    pump(&mut b, "b", &mut a);
    assert!(matches!(
        a.poll_event(),
        Some(Event::Reply { id: got, result: Err(Failure::Remote { code: ErrorCode::DecodeFailed, .. }) })
            if got == id
    ));
    assert_eq!(a.outstanding(), 0);
}

#[test]
fn an_ask_over_the_receivers_size_limit_is_answered_too_large() {
    // Found by `session`: the receiver dropped an oversized ask without answering (the
    // `TooLarge` -> `ERROR_CODE_TOO_LARGE` mapping was unreachable), so the ask waited
    // for its deadline, or forever.
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let id = a.ask(
        0,
        "b",
        Outgoing::new("worker", "x".repeat(9_000), "text/plain", vec![]),
        None,
    );
    pump(&mut a, "a", &mut b);
    assert_eq!((b.poll_event(), b.stats().malformed), (None, 1));
    assert_eq!(pump(&mut b, "b", &mut a), 1);
    match a.poll_event() {
        Some(Event::Reply {
            id: got,
            result: Err(Failure::Remote { code, .. }),
        }) => assert_eq!((got, code), (id, ErrorCode::TooLarge)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn too_many_directory_entries_are_refused_before_decoding() {
    // Found by `directory` (heap measured): 3,000 empty names in 6 KB held 147 KB while
    // decoding (24 bytes per `String` plus the list's growth), and a 1 MB input of empty
    // names about 25 MB before the entry count was checked. Entries are now counted on
    // the wire first.
    let limits = Limits::default();
    let mut buf = Vec::new();
    for _ in 0..5_000 {
        buf.extend_from_slice(&[0x22, 0x00]); // components: ""
    }
    assert_eq!(
        decode_directory(&buf, &limits),
        Err(DecodeError::FieldTooLong {
            field: "components",
            len: 5_000,
            max: limits.max_directory_entries
        })
    );
    // A too-long node name is reported as `node`, not `components[]`.
    let dir = Directory {
        node: "n".repeat(300),
        ..Directory::default()
    };
    assert!(matches!(
        decode_directory(&encode_directory(&dir), &limits),
        Err(DecodeError::FieldTooLong { field: "node", .. })
    ));
}

// ---------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Deterministic filler bytes (xorshift), so the seeds are reproducible.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn full_tell() -> Envelope {
    fuzzing::sample_tell()
}

fn answer(kind: Kind) -> Envelope {
    fuzzing::sample_answer(kind)
}

/// The hand-made envelope seeds: one valid encoding per kind, then the malformed-input
/// cases of the reliability spec (tests 20, 21, 23).
fn envelope_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut ask = full_tell();
    ask.kind = Kind::Ask.into();
    let mut credit = answer(Kind::Credit);
    credit.credit = 16;
    let mut error = answer(Kind::Error);
    error.error = Some(ErrorInfo {
        code: ErrorCode::Timeout.into(),
        detail: "deadline passed".into(),
    });
    let tell = encode_envelope(&full_tell());
    let mut seeds = vec![
        ("tell", tell.clone()),
        ("ask", encode_envelope(&ask)),
        ("reply", encode_envelope(&answer(Kind::Reply))),
        ("stream-item", encode_envelope(&answer(Kind::StreamItem))),
        ("stream-end", encode_envelope(&answer(Kind::StreamEnd))),
        ("cancel", encode_envelope(&answer(Kind::Cancel))),
        ("credit", encode_envelope(&credit)),
        ("error", encode_envelope(&error)),
        ("empty", Vec::new()),
        ("truncated", tell[..tell.len() - 5].to_vec()),
        ("garbage", noise(1, 200)),
        (
            "http-get",
            b"GET / HTTP/1.1\r\nHost: localhost:5555\r\n\r\n".to_vec(),
        ),
    ];
    let mut version2 = full_tell();
    version2.version = 2;
    seeds.push(("version-2", encode_envelope(&version2)));
    let mut negative = full_tell();
    negative.kind = -1;
    seeds.push(("negative-kind", encode_envelope(&negative)));
    // Unknown fields of every wire type after a valid tell: skipped.
    let mut unknown = tell.clone();
    unknown.extend_from_slice(&[0xa8, 0x01, 0x05]); // field 21, varint
    unknown.extend_from_slice(&[0xb5, 0x01, 1, 2, 3, 4]); // field 22, fixed32
    unknown.extend_from_slice(&[0xb9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]); // field 23, fixed64
    unknown.extend_from_slice(&[0xc2, 0x01, 0x02, 0xaa, 0xbb]); // field 24, bytes
    seeds.push(("unknown-fields", unknown));
    // `message_type` claims 1 GiB, and 2^62 bytes, in a short buffer.
    for (name, claim) in [("claims-1gib", 1u64 << 30), ("claims-2pow62", 1u64 << 62)] {
        let mut b = vec![0x08, 0x01, 0x3a];
        varint(claim, &mut b);
        b.extend_from_slice(b"demo");
        seeds.push((name, b));
    }
    // Unknown groups nested 50 deep (fine) and 200 deep (over prost's recursion limit).
    for (name, depth) in [("groups-50-deep", 50), ("groups-200-deep", 200)] {
        let mut b = vec![0x08, 0x01];
        b.extend(std::iter::repeat_n(0x7b, depth)); // field 15, start group
        b.extend(std::iter::repeat_n(0x7c, depth)); // field 15, end group
        seeds.push((name, b));
    }
    // A TLS 1.2 ClientHello record prefix.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03,
    ];
    hello.extend(noise(2, 32));
    hello.extend_from_slice(&[0x20]);
    hello.extend(noise(3, 32));
    hello.extend_from_slice(&[0x00, 0x08, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0x00, 0xff]);
    seeds.push(("tls-client-hello", hello));
    // A ZMTP 3.0 greeting (NULL mechanism) and a ZMTP 2.0 one.
    let mut zmtp3 = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7f, 0x03, 0x00];
    zmtp3.extend_from_slice(b"NULL");
    zmtp3.extend(std::iter::repeat_n(0, 48 - zmtp3.len()));
    seeds.push(("zmtp3-greeting", zmtp3));
    seeds.push((
        "zmtp2-greeting",
        vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x7f, 0x01, 0x05],
    ));
    // Larger than the default 8 KiB limit.
    let mut big = vec![0x08, 0x01, 0xc2, 0x01];
    varint(9_000, &mut big);
    big.extend(std::iter::repeat_n(b'x', 9_000));
    seeds.push(("over-8kib", big));
    seeds
}

fn directory_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let dir = Directory {
        node: "a".into(),
        generation: 3,
        version: 7,
        components: vec!["worker".into(), "front".into(), "tern.directory".into()],
        reply_wanted: true,
    };
    let mut seeds = vec![
        ("valid", encode_directory(&dir)),
        (
            "node-only",
            encode_directory(&Directory {
                node: "b".into(),
                ..Directory::default()
            }),
        ),
        ("empty", Vec::new()),
        ("garbage", noise(4, 300)),
        (
            "http-get",
            b"GET / HTTP/1.1\r\nHost: localhost:5555\r\n\r\n".to_vec(),
        ),
    ];
    let mut claim = vec![0x0a, 0x01, b'a', 0x22];
    varint(1 << 30, &mut claim);
    claim.extend_from_slice(b"worker");
    seeds.push(("claims-1gib", claim));
    // 3,000 empty component names: every entry costs a `String` on decode.
    let mut empties = vec![0x0a, 0x01, b'a'];
    for _ in 0..3_000 {
        empties.extend_from_slice(&[0x22, 0x00]);
    }
    seeds.push(("3000-empty-names", empties));
    let mut groups = vec![0x0a, 0x01, b'a'];
    groups.extend(std::iter::repeat_n(0x7b, 200));
    groups.extend(std::iter::repeat_n(0x7c, 200));
    seeds.push(("groups-200-deep", groups));
    seeds
}

/// Seeds for the targets that read structured input: a few byte patterns, plus
/// pseudo-random runs of several lengths.
fn unstructured_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("zeros", vec![0; 64]),
        ("ones", vec![0xff; 64]),
        ("counting", (0..=255).collect()),
        ("noise-32", noise(5, 32)),
        ("noise-256", noise(6, 256)),
        ("noise-1k", noise(7, 1024)),
        ("noise-4k", noise(8, 4096)),
    ]
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand"]
fn write_seed_corpus() {
    let targets = [
        ("envelope", envelope_seeds()),
        ("directory", directory_seeds()),
        ("envelope_round_trip", unstructured_seeds()),
        ("directory_round_trip", unstructured_seeds()),
        ("session", unstructured_seeds()),
    ];
    for (target, seeds) in targets {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
        }
    }
}
