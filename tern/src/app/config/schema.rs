//! The configuration schema: every key, its kind and meaning, and the defaults.

use toml::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Int,
    StrList,
}

impl Kind {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::Str => "a string",
            Self::Int => "a non-negative integer",
            Self::StrList => "an array of strings",
        }
    }

    pub(super) fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (Self::Str, Value::String(_)) => true,
            (Self::Int, Value::Integer(i)) => *i >= 0,
            (Self::StrList, Value::Array(a)) => a.iter().all(Value::is_str),
            _ => false,
        }
    }
}

/// The schema: section, key, kind, required, default, meaning.
pub(super) const SCHEMA: &[(&str, &str, Kind, &str)] = &[
    (
        "node",
        "name",
        Kind::Str,
        "this container's node name, unique in the cluster",
    ),
    (
        "node",
        "generation",
        Kind::Int,
        "incarnation; default: milliseconds since the Unix epoch at start",
    ),
    (
        "node",
        "listen",
        Kind::StrList,
        "endpoints to bind, e.g. [\"tcp://127.0.0.1:7101\"]",
    ),
    (
        "node",
        "inbound_bytes_limit",
        Kind::Int,
        "most bytes of inbound requests held for all peers (unanswered asks, queued or held requests)",
    ),
    (
        "node",
        "peer_inbound_bytes_limit",
        Kind::Int,
        "most bytes of inbound requests held for one peer; at most inbound_bytes_limit",
    ),
    (
        "node",
        "max_peers",
        Kind::Int,
        "most peers (configured and found by gossip) this node keeps",
    ),
    (
        "components",
        "host",
        Kind::StrList,
        "names of the application's components this node runs",
    ),
    (
        "timeouts",
        "ask_ms",
        Kind::Int,
        "deadline of remote asks without one",
    ),
    (
        "timeouts",
        "pending_ttl_ms",
        Kind::Int,
        "how long a message waits for an unknown component name",
    ),
    (
        "timeouts",
        "shutdown_grace_ms",
        Kind::Int,
        "how long a stopping node lets work in flight finish",
    ),
    (
        "transport",
        "max_frame",
        Kind::Int,
        "largest frame accepted or sent, bytes",
    ),
    (
        "transport",
        "heartbeat_ivl_ms",
        Kind::Int,
        "ZMTP heartbeat interval",
    ),
    (
        "transport",
        "heartbeat_timeout_ms",
        Kind::Int,
        "connection closed after this long without a heartbeat reply",
    ),
    (
        "transport",
        "handshake_ivl_ms",
        Kind::Int,
        "deadline of a connection's handshake",
    ),
    (
        "transport",
        "send_hwm",
        Kind::Int,
        "messages queued per connection before backpressure",
    ),
    (
        "transport",
        "max_connections_per_address",
        Kind::Int,
        "inbound connections open at once from one IP address; more are closed at once",
    ),
    (
        "gossip",
        "bind",
        Kind::Str,
        "UDP address for membership gossip, e.g. \"127.0.0.1:7946\"; unset: no gossip, static [peers] only",
    ),
    (
        "gossip",
        "advertise",
        Kind::Str,
        "the gossip address other nodes reach this one at; default: bind (required when bind is 0.0.0.0)",
    ),
    (
        "gossip",
        "seeds",
        Kind::StrList,
        "gossip addresses of seed nodes, e.g. [\"10.0.0.1:7946\"]; any one live seed is enough",
    ),
    (
        "gossip",
        "cluster",
        Kind::Str,
        "cluster id, checked on every datagram so separate clusters never merge",
    ),
    (
        "gossip",
        "keys",
        Kind::StrList,
        "gossip keys as \"ID:64 hex digits\" (ID 0-255); the first seals, every one opens",
    ),
    (
        "gossip",
        "network",
        Kind::Str,
        "this node's network name, published as its `net` fact",
    ),
    (
        "gossip",
        "capacity",
        Kind::Int,
        "this node's capacity in the application's units (e.g. worker slots), published as its `capacity` fact; 0: unpublished",
    ),
    (
        "gossip",
        "endpoint",
        Kind::Str,
        "the transport endpoint peers connect to; default: the first node.listen, with advertise's host for 0.0.0.0",
    ),
    (
        "security",
        "mode",
        Kind::Str,
        "\"curve\": ZeroMQ connections authenticated and encrypted (CURVE, allow-listed keys); \"plaintext\": neither, an explicit opt-in logged as a warning",
    ),
    (
        "security",
        "key_file",
        Kind::Str,
        "this node's CURVE key pair (ZeroMQ certificate format; make one with the `keygen` command); required with curve",
    ),
    (
        "security",
        "allow_list",
        Kind::Str,
        "the cluster's allow-list file, one `name = \"public key\"` per line; required with curve; re-read when it changes",
    ),
    (
        "security",
        "reload_ms",
        Kind::Int,
        "how often the allow-list file is checked for changes",
    ),
    (
        "log",
        "format",
        Kind::Str,
        "\"text\" for a terminal, \"json\" for one JSON object per line",
    ),
    (
        "log",
        "filter",
        Kind::Str,
        "RUST_LOG-style filter, e.g. \"info,tern_actors=debug\"; RUST_LOG wins when set; default: --log-level",
    ),
    (
        "log",
        "flood_burst",
        Kind::Int,
        "lines let through per event and remote address in each window; 0: no flood control",
    ),
    (
        "log",
        "flood_window_ms",
        Kind::Int,
        "the flood control window",
    ),
    (
        "admin",
        "bind",
        Kind::Str,
        "TCP address of the admin listener (/metrics, /status), e.g. \"127.0.0.1:9100\"; unset: off",
    ),
    (
        "admin",
        "max_connections",
        Kind::Int,
        "admin connections served at once; more are closed at once",
    ),
    (
        "admin",
        "max_request_bytes",
        Kind::Int,
        "largest admin request head accepted",
    ),
    (
        "admin",
        "request_timeout_ms",
        Kind::Int,
        "time an admin connection has to send its request and take the answer",
    ),
    (
        "trace",
        "otlp_endpoint",
        Kind::Str,
        "OpenTelemetry collector to send spans to, plain http with a port, e.g. \"http://127.0.0.1:4318\" (posted to /v1/traces); needs the `otlp` feature; unset: off",
    ),
    (
        "trace",
        "otlp_timeout_ms",
        Kind::Int,
        "time one span batch has to connect, be sent and be answered",
    ),
    (
        "trace",
        "otlp_queue",
        Kind::Int,
        "span batches waiting to be sent, at most; when full the oldest is dropped",
    ),
    (
        "trace",
        "otlp_every_ms",
        Kind::Int,
        "how often new spans are gathered into a batch",
    ),
];

pub(super) fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("node.inbound_bytes_limit", Value::Integer(64 << 20)),
        ("node.peer_inbound_bytes_limit", Value::Integer(16 << 20)),
        ("node.max_peers", Value::Integer(1024)),
        ("components.host", Value::Array(Vec::new())),
        ("timeouts.ask_ms", Value::Integer(5000)),
        ("timeouts.pending_ttl_ms", Value::Integer(5000)),
        ("timeouts.shutdown_grace_ms", Value::Integer(2000)),
        ("transport.max_frame", Value::Integer(1 << 20)),
        ("transport.heartbeat_ivl_ms", Value::Integer(250)),
        ("transport.heartbeat_timeout_ms", Value::Integer(1500)),
        ("transport.handshake_ivl_ms", Value::Integer(5000)),
        ("transport.send_hwm", Value::Integer(10_000)),
        ("transport.max_connections_per_address", Value::Integer(256)),
        ("gossip.seeds", Value::Array(Vec::new())),
        ("gossip.cluster", Value::String("tern".into())),
        ("gossip.keys", Value::Array(Vec::new())),
        ("gossip.network", Value::String("default".into())),
        ("gossip.capacity", Value::Integer(0)),
        ("security.mode", Value::String("curve".into())),
        ("security.reload_ms", Value::Integer(1000)),
        ("log.format", Value::String("text".into())),
        ("log.flood_burst", Value::Integer(20)),
        ("log.flood_window_ms", Value::Integer(10_000)),
        ("admin.max_connections", Value::Integer(8)),
        ("admin.max_request_bytes", Value::Integer(8192)),
        ("admin.request_timeout_ms", Value::Integer(2000)),
        ("trace.otlp_timeout_ms", Value::Integer(5000)),
        ("trace.otlp_queue", Value::Integer(16)),
        ("trace.otlp_every_ms", Value::Integer(1000)),
    ]
}

/// The schema as text, for `--help` and errors.
#[must_use]
pub fn schema() -> String {
    let mut out = String::new();
    for (section, key, kind, meaning) in SCHEMA {
        out.push_str(&format!(
            "{section}.{key}: {} — {meaning}\n",
            kind.describe()
        ));
    }
    out.push_str("peers.<name>: a string endpoint — a peer node and where it listens\n");
    out.push_str("flows.<name>: a table (rate, burst, overflow, horizon) — a named flow's rate limit and horizon\n");
    out.push_str(
        "horizons.app: a horizon (process, node, network, global) — the application's horizon\n",
    );
    out.push_str("horizons.<component>: a horizon — a component's horizon\n");
    out
}
