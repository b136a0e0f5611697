//! The settings of a simulated container with gossip, shared by the simulator tests of
//! `App` (`SimCluster`): every container gossips on its own port with 127.0.0.1:7001 as
//! the seed and one test key.

use tern::app::config::{Layered, NodeSettings};

/// Container `name`, generation `generation`, listening and gossiping on `port`, hosting
/// `host` (the body of a TOML list: `""`, `"\"echo\""`), in gossip cluster `cluster`;
/// `extra` is appended after the `[gossip]` keys (more gossip keys, or new sections).
pub(crate) fn settings(
    name: &str,
    port: u16,
    generation: u64,
    cluster: &str,
    host: &str,
    extra: &str,
) -> NodeSettings {
    let text = format!(
        r#"
[node]
name = "{name}"
generation = {generation}
listen = ["tcp://127.0.0.1:{port}"]
[components]
host = [{host}]
[gossip]
bind = "127.0.0.1:{port}"
seeds = ["127.0.0.1:7001"]
cluster = "{cluster}"
keys = ["3:{key}"]
{extra}
"#,
        key = "0f".repeat(32)
    );
    Layered::from_toml(&text, &format!("{name}.toml"))
        .expect("the test's configuration parses")
        .node(generation)
        .expect("the test's configuration is valid")
}
