//! Unit tests of the configuration parser (beside `config.rs`).
use super::*;
use crate::log::LogFormat;

fn file(text: &str) -> tempfile_free::TempFile {
    tempfile_free::TempFile::new(text)
}

/// A tiny temp-file helper without a dependency.
mod tempfile_free {
    use std::path::PathBuf;

    pub(super) struct TempFile(pub(super) PathBuf);

    impl TempFile {
        pub(super) fn new(text: &str) -> Self {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("tern-config-test-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, text).expect("write temp config");
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

const GOOD: &str = r#"
[node]
name = "w1"
listen = ["tcp://127.0.0.1:7101"]

[peers]
front = "tcp://127.0.0.1:7100"

[components]
host = ["worker-1"]
"#;

#[test]
fn a_file_and_env_overrides_merge_with_their_sources() {
    let f = file(GOOD);
    let env = [
        ("TERN_TIMEOUTS__ASK_MS".to_owned(), "750".to_owned()),
        (
            "TERN_PEERS__W2".to_owned(),
            "tcp://127.0.0.1:7102".to_owned(),
        ),
        ("PATH".to_owned(), "/bin".to_owned()),
    ];
    let layered = Layered::load(Some(&f.0), env).unwrap();
    let node = layered.node(99).unwrap();
    assert_eq!(node.name, "w1");
    assert_eq!(node.generation, 99);
    assert_eq!(node.ask_timeout, Duration::from_millis(750));
    assert_eq!(node.peers.len(), 2);
    let text = layered.describe();
    assert!(
        text.contains("timeouts.ask_ms = 750    # environment variable TERN_TIMEOUTS__ASK_MS"),
        "{text}"
    );
    assert!(text.contains("node.name = \"w1\"    # file"), "{text}");
    assert!(
        text.contains("transport.send_hwm = 10000    # default"),
        "{text}"
    );
}

#[test]
fn every_error_names_the_key_its_source_and_what_was_expected() {
    let f = file(&format!("{GOOD}\n[timeouts]\nask_sm = 3\n"));
    let e = Layered::load(Some(&f.0), []).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("timeouts.ask_sm")
            && text.contains("file")
            && text.contains("timeouts.ask_ms"),
        "{text}"
    );

    let f = file(GOOD);
    let env = [("TERN_NODE__LISTEN".to_owned(), "7".to_owned())];
    let e = Layered::load(Some(&f.0), env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`node.listen` (environment variable TERN_NODE__LISTEN): expected an array of strings, found the integer 7"
    );

    let env = [("TERN_PEERS__X".to_owned(), "udp://nope".to_owned())];
    let e = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap_err();
    assert!(
        e.to_string().contains("peers.x") && e.to_string().contains("TERN_PEERS__X"),
        "{e}"
    );

    let e = Layered::load(None, []).unwrap().node(0).unwrap_err();
    assert!(
        matches!(e, ConfigError::Missing { ref key, .. } if key == "node.name"),
        "{e}"
    );

    let f = file("[node]\nname = ");
    assert!(matches!(
        Layered::load(Some(&f.0), []),
        Err(ConfigError::File { .. })
    ));

    let env = [("TERN_TIMEOUTS__ASK_MS".to_owned(), "0".to_owned())];
    let f = file(GOOD);
    let e = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap_err();
    assert!(e.to_string().contains("positive"), "{e}");
}

#[test]
fn log_and_admin_sections_are_checked_and_off_by_default() {
    let f = file(GOOD);
    let node = Layered::load(Some(&f.0), []).unwrap().node(0).unwrap();
    assert!(node.admin.is_none());
    assert_eq!(node.log.format, LogFormat::Text);
    assert_eq!(node.log.settings(None, "warn").filter, "warn");

    let env = [
        ("TERN_LOG__FORMAT".to_owned(), "json".to_owned()),
        (
            "TERN_LOG__FILTER".to_owned(),
            "info,tern_actors=debug".to_owned(),
        ),
        ("TERN_ADMIN__BIND".to_owned(), "127.0.0.1:9100".to_owned()),
    ];
    let node = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap();
    assert_eq!(node.log.format, LogFormat::Json);
    let s = node.log.settings(None, "warn");
    assert_eq!(s.filter, "info,tern_actors=debug");
    assert_eq!(
        node.log.settings(Some("trace".into()), "warn").filter,
        "trace"
    );
    let admin = node.admin.unwrap();
    assert_eq!(admin.bind, "127.0.0.1:9100".parse().unwrap());
    assert_eq!(admin.max_connections, 8);
    assert!(node.warnings.is_empty(), "{:?}", node.warnings);

    let bad = |k: &str, v: &str| {
        let env = [(k.to_owned(), v.to_owned())];
        Layered::load(Some(&f.0), env)
            .unwrap()
            .node(0)
            .unwrap_err()
            .to_string()
    };
    assert!(bad("TERN_LOG__FORMAT", "xml").contains("log.format"));
    assert!(bad("TERN_LOG__FILTER", "tern=verbose").contains("log.filter"));
    assert!(bad("TERN_ADMIN__BIND", "nowhere").contains("admin.bind"));
    let env = [
        ("TERN_ADMIN__BIND".to_owned(), "127.0.0.1:9100".to_owned()),
        ("TERN_ADMIN__MAX_CONNECTIONS".to_owned(), "0".to_owned()),
    ];
    let e = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap_err();
    assert!(e.to_string().contains("admin.max_connections"), "{e}");
    let env = [("TERN_ADMIN__BIND".to_owned(), "0.0.0.0:9100".to_owned())];
    let node = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap();
    assert!(node.warnings.iter().any(|w| w.contains("not a loopback")));
}

#[test]
fn gossip_settings_are_checked_with_clear_errors_and_warnings() {
    const KEY: &str = "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let load = |gossip: &str| {
        let f = file(&format!("{GOOD}\n[gossip]\n{gossip}\n"));
        Layered::load(Some(&f.0), []).unwrap().node(0)
    };
    let ok = load(&format!(
        "bind = \"127.0.0.1:7946\"\nseeds = [\"10.0.0.1:7946\"]\nkeys = [\"{KEY}\"]\ncapacity = 8"
    ))
    .unwrap();
    let g = ok.gossip.clone().unwrap();
    assert_eq!(g.advertise, "127.0.0.1:7946".parse().unwrap());
    assert_eq!(g.keys.len(), 1);
    assert_eq!(g.capacity, 8);
    assert!(
        ok.warnings.iter().any(|w| w.contains("loopback")),
        "{:?}",
        ok.warnings
    );

    let e = load(&format!("bind = \"0.0.0.0:7946\"\nkeys = [\"{KEY}\"]")).unwrap_err();
    assert!(
        e.to_string().contains("gossip.advertise") && e.to_string().contains("every interface"),
        "{e}"
    );
    let e = load("bind = \"127.0.0.1:7946\"").unwrap_err();
    assert!(e.to_string().contains("gossip.keys"), "{e}");
    let e = load("bind = \"127.0.0.1:7946\"\nkeys = [\"1:abc\"]").unwrap_err();
    assert!(e.to_string().contains("64 hexadecimal"), "{e}");
    let e = load(&format!("bind = \"nowhere\"\nkeys = [\"{KEY}\"]")).unwrap_err();
    assert!(e.to_string().contains("gossip.bind"), "{e}");
    let e = load(&format!(
        "bind = \"127.0.0.1:7946\"\nkeys = [\"{KEY}\"]\nseeds = [\"10.0.0.1\"]"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("gossip.seeds"), "{e}");
    let off = load("seeds = [\"10.0.0.1:7946\"]").unwrap();
    assert!(off.gossip.is_none());
    assert!(off.warnings.iter().any(|w| w.contains("gossip is off")));
}

#[test]
fn bounds_have_defaults_and_bad_values_are_typed_errors() {
    let f = file(GOOD);
    let node = Layered::load(Some(&f.0), Vec::new())
        .unwrap()
        .node(1)
        .unwrap();
    assert_eq!(
        (
            node.inbound_bytes_limit,
            node.peer_inbound_bytes_limit,
            node.max_peers,
            node.max_connections_per_address
        ),
        (64 << 20, 16 << 20, 1024, 256)
    );
    let env = [
        ("TERN_SECURITY__MODE", "plaintext"),
        ("TERN_TRANSPORT__MAX_CONNECTIONS_PER_ADDRESS", "8"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let z = Layered::load(Some(&f.0), env.to_vec())
        .and_then(|l| l.node(1))
        .and_then(|n| n.zmq())
        .unwrap();
    assert_eq!(z.max_connections_per_address, 8);
    let bad = |var: &str, value: &str, key: &str| {
        let env = vec![(var.to_owned(), value.to_owned())];
        match Layered::load(Some(&f.0), env).and_then(|l| l.node(1)) {
            Err(ConfigError::BadValue { key: k, .. }) => assert_eq!(k, key, "{var}={value}"),
            other => panic!("{var}={value}: {other:?}"),
        }
    };
    bad(
        "TERN_NODE__INBOUND_BYTES_LIMIT",
        "0",
        "node.inbound_bytes_limit",
    );
    bad(
        "TERN_NODE__PEER_INBOUND_BYTES_LIMIT",
        "134217728",
        "node.peer_inbound_bytes_limit",
    );
    bad("TERN_NODE__MAX_PEERS", "0", "node.max_peers");
    bad(
        "TERN_TRANSPORT__MAX_CONNECTIONS_PER_ADDRESS",
        "0",
        "transport.max_connections_per_address",
    );
}

#[test]
fn trace_endpoints_are_checked_and_need_the_feature() {
    let with = |extra: &str| {
        let text = format!(
            "[node]\nname = \"w1\"\nlisten = [\"tcp://127.0.0.1:7101\"]\n[trace]\n{extra}\n"
        );
        Layered::from_toml(&text, "w1.toml").expect("schema")
    };
    let none = with("otlp_queue = 4");
    assert_eq!(none.otlp_in_build(true).expect("no endpoint"), None);
    let good = with("otlp_endpoint = \"http://127.0.0.1:4318\"\notlp_every_ms = 250");
    let s = good.otlp_in_build(true).expect("good").expect("on");
    assert_eq!(s.endpoint.path(), "/v1/traces");
    assert_eq!(
        (s.every, s.queue, s.timeout),
        (Duration::from_millis(250), 16, Duration::from_secs(5))
    );
    let off = good.otlp_in_build(false).expect_err("no feature");
    assert!(off.to_string().contains("`otlp` feature"), "{off}");
    for (bad, why) in [
        ("https://127.0.0.1:4318", "https"),
        ("http://collector", "port"),
        ("127.0.0.1:4318", "http://"),
    ] {
        let e = with(&format!("otlp_endpoint = \"{bad}\""))
            .otlp_in_build(true)
            .expect_err(bad);
        assert!(matches!(e, ConfigError::BadValue { .. }), "{e:?}");
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    let zero = with("otlp_endpoint = \"http://127.0.0.1:4318\"\notlp_timeout_ms = 0");
    assert!(zero.otlp_in_build(true).is_err());
}

#[test]
fn flows_and_horizons_are_checked_and_make_the_flow_policy() {
    use crate::flow::{Horizon, Overflow};
    let f = file(&format!(
        "{GOOD}\n[flows.thumbs]\nrate = 200\noverflow = \"bounce\"\nhorizon = \"network\"\n\
         [flows.audit]\nhorizon = \"node\"\n[horizons]\napp = \"global\"\nkv = \"process\"\n"
    ));
    let env = [(
        "TERN_FLOWS__BULK".to_owned(),
        "{ rate = 10, burst = 3, overflow = \"local\" }".to_owned(),
    )];
    let node = Layered::load(Some(&f.0), env).unwrap().node(0).unwrap();
    let flows = &node.flows;
    assert_eq!(flows.app_horizon, Some(Horizon::Global));
    assert_eq!(flows.component_horizons.get("kv"), Some(&Horizon::Process));
    let thumbs = flows.flows["thumbs"];
    assert_eq!(thumbs.rate, Some((200, 200)), "burst: one second's worth");
    assert_eq!(thumbs.overflow, Overflow::Bounce);
    assert_eq!(thumbs.horizon, Some(Horizon::Network));
    assert_eq!(flows.flows["audit"].rate, None);
    assert_eq!(flows.flows["bulk"].rate, Some((10, 3)));
    assert_eq!(flows.flows["bulk"].overflow, Overflow::LOCAL);
    assert!(!flows.policy().limits.is_empty());
    assert!(
        Layered::load(Some(&file(GOOD).0), [])
            .unwrap()
            .node(0)
            .unwrap()
            .flows
            .is_empty()
    );

    // Bad values: typed errors naming the key and what was expected.
    for (text, key, why) in [
        ("[flows.x]\nrate = 0\n", "flows.x", "`rate`"),
        ("[flows.x]\nrate = -5\n", "flows.x", "`rate`"),
        (
            "[flows.x]\nrate = 5\noverflow = \"spill\"\n",
            "flows.x",
            "`overflow`",
        ),
        ("[flows.x]\nhorizon = \"planet\"\n", "flows.x", "`horizon`"),
        (
            "[flows.x]\nrate = 5\nspeed = 1\n",
            "flows.x",
            "unknown key `speed`",
        ),
        ("[flows.x]\nburst = 5\n", "flows.x", "without `rate`"),
        ("[flows.x]\noverflow = \"drop\"\n", "flows.x", "at least"),
        ("[flows]\nx = 3\n", "flows.x", "a table"),
        (
            "[horizons]\napp = \"planet\"\n",
            "horizons.app",
            "\"process\"",
        ),
        ("[horizons]\nkv = 1\n", "horizons.kv", "\"global\""),
    ] {
        let f = file(&format!("{GOOD}\n{text}"));
        let e = Layered::load(Some(&f.0), []).unwrap_err();
        assert!(
            matches!(&e, ConfigError::BadValue { key: k, .. } if k == key)
                && e.to_string().contains(why),
            "{text}: {e}"
        );
    }
}
