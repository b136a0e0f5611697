//! Limits reloaded from a file on SIGHUP, on the container's own thread.
//!
//! The file holds the container's whole [`LimitSet`](crate::ops::LimitSet), one
//! `KEY=VALUE` per line (`#` starts a comment; keys as in
//! [`LimitChange::parse`]). On SIGHUP it is read again and applied as one change
//! set: keys it no longer lists are lifted. A file that does not parse is refused
//! whole (logged) and the limits stay as they were.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use signal_hook::consts::SIGHUP;
use signal_hook::low_level::pipe;
use tern_executor::Async;

use crate::ops::{LimitChange, LimitKey, LimitSet, OpsError};
use crate::remote::Node;

/// Why a limits file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file could not be read.
    #[error("limits file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a valid change, or the set could not be applied.
    #[error("limits file {path}, line {line}: {source}")]
    Limit {
        /// The file.
        path: PathBuf,
        /// The line number (1-based; 0 when the set as a whole was refused).
        line: usize,
        /// Why.
        source: OpsError,
    },
}

/// The changes that make `current` equal to what `text` lists: every line's change,
/// and `KEY=none` for each key `current` has that `text` does not list.
///
/// # Errors
///
/// The first line that does not parse, with its number.
///
/// # Examples
///
/// ```
/// use tern::app::limits_from_text;
/// use tern::ops::{LimitChange, LimitSet};
///
/// let mut now = LimitSet::default();
/// now.apply(&[LimitChange::parse("ingress.max=8").unwrap()], None).unwrap();
/// let changes = limits_from_text("# a comment\nmailbox.kv = 16\n", &now).unwrap();
/// let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
/// assert_eq!(text, ["mailbox.kv=16", "ingress.max=none"]);
/// ```
pub fn limits_from_text(
    text: &str,
    current: &LimitSet,
) -> Result<Vec<LimitChange>, (usize, OpsError)> {
    let mut changes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        changes.push(LimitChange::parse(line).map_err(|e| (i + 1, e))?);
    }
    let listed: Vec<LimitKey> = changes.iter().map(|c| c.key.clone()).collect();
    for old in current.entries() {
        if !listed.contains(&old.key) {
            changes.push(LimitChange::new(old.key, None));
        }
    }
    Ok(changes)
}

/// Reads the limits file at `path` and applies it to `node` as one change set;
/// returns the new version.
///
/// # Errors
///
/// [`ReloadError`]: the file cannot be read, a line does not parse, or the set is
/// refused. The node's limits are unchanged then.
pub fn apply_limits_file(node: &Node, path: &Path) -> Result<u64, ReloadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReloadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let changes =
        limits_from_text(&text, &node.limits()).map_err(|(line, source)| ReloadError::Limit {
            path: path.to_owned(),
            line,
            source,
        })?;
    node.set_limits(&changes, None)
        .map_err(|source| ReloadError::Limit {
            path: path.to_owned(),
            line: 0,
            source,
        })
}

/// Reads the configuration file at `path` again and applies its flows and horizons
/// (`[flows.NAME]`, `[horizons]`) to `node`: what the file no longer lists is lifted.
/// A file that does not load is logged (`tern.app.reload_refused`) and changes nothing.
pub(super) fn reload_flows(node: &Node, path: &Path) {
    match super::config::Layered::load(Some(path), std::env::vars()).and_then(|l| l.node(0)) {
        Ok(settings) => {
            node.set_flow_policy(settings.flows.policy());
            tracing::info!(name: "tern.app.flows_reloaded", node = %node.name(),
                path = %path.display(), flows = settings.flows.flows.len(),
                "flows and horizons applied from the configuration file");
        }
        Err(e) => tracing::warn!(name: "tern.app.reload_refused", node = %node.name(),
            path = %path.display(), error = %e,
            "configuration file refused on SIGHUP; flows and horizons unchanged"),
    }
}

/// SIGHUP as an awaitable event on the container's thread: the handler only writes a
/// byte to a pipe whose read end sits in the executor's reactor (no thread).
#[derive(Debug)]
pub struct Hangup {
    read: Async<UnixStream>,
    id: signal_hook::SigId,
}

impl Hangup {
    /// Installs the handler.
    ///
    /// # Errors
    ///
    /// The error of creating the pipe or registering the handler.
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn install() -> std::io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let id = pipe::register(SIGHUP, write)?;
        Ok(Self {
            read: Async::new(read),
            id,
        })
    }

    /// Waits for the next SIGHUP. Returns `false` if the pipe closed (no more signals
    /// can arrive).
    pub async fn wait(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.read.read_with(|mut s| s.read(&mut byte)).await, Ok(1))
    }

    /// Applies the limits file at `path` to `node` now and at every SIGHUP, until the
    /// signal pipe closes; a file that cannot be used is logged and skipped.
    pub async fn reload_limits(&self, node: &Node, path: &Path) {
        loop {
            match apply_limits_file(node, path) {
                Ok(version) => tracing::info!(name: "tern.limits.reloaded", node = %node.name(),
                    version, path = %path.display(), "limits applied from the file"),
                Err(e) => tracing::warn!(name: "tern.limits.refused", node = %node.name(),
                    error = %e, "limits file refused; limits unchanged"),
            }
            if !self.wait().await {
                return;
            }
        }
    }
}

impl Drop for Hangup {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{NodeConfig, sim_nodes};
    use tern_executor::sim::World;

    #[test]
    fn a_bad_line_is_named_and_nothing_changes() {
        let err = limits_from_text("mailbox.kv=4\nspeed=9\n", &LimitSet::default())
            .expect_err("line 2 is bad");
        assert_eq!(err.0, 2);
    }

    #[test]
    fn a_file_is_applied_whole_and_a_bad_one_refused_whole() {
        let dir = std::env::temp_dir().join(format!("tern-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("limits.txt");
        let mut world = World::new(1).expect("world");
        let [(a, t)] = sim_nodes(&mut world, ["a"]).expect("node");
        let p = path.clone();
        let done = world.spawn_on(a, async move {
            let node = Node::start(NodeConfig::new("a"), t).expect("node");
            std::fs::write(&p, "in_flight.kv = 3\ningress.max=9 # cap\n").expect("write");
            let v1 = apply_limits_file(&node, &p).expect("valid file");
            std::fs::write(&p, "in_flight.kv=0\n").expect("write");
            let bad = apply_limits_file(&node, &p).is_err();
            std::fs::write(&p, "ingress.max=9\n").expect("write");
            let v2 = apply_limits_file(&node, &p).expect("valid file");
            let missing = apply_limits_file(&node, &p.with_extension("none")).is_err();
            (v1, bad, v2, missing, node.limits())
        });
        world.run_until(tern_executor::Instant::from_nanos(1_000_000));
        let (v1, bad, v2, missing, limits) = world
            .runtime(a)
            .expect("runtime")
            .block_on(done)
            .expect("task");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((v1, bad, v2, missing), (1, true, 2, true));
        // The key the file no longer lists was lifted.
        assert_eq!(limits.component("kv").in_flight, None);
        assert_eq!(limits.ingress_max(), Some(9));
    }
}
