//! The operator's commands that talk to a running container's admin listener:
//! `components`, `top`, `trace-flow`, `logs --level` and `set-capacity` (`status` is
//! in `cli.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::admin;
use super::admin_actions::encode;
use super::config::Layered;
use super::{AppError, wall_ms};

/// How long a command waits for the listener.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A duration such as `60s`, `500ms`, `5m` or `1h` (a bare number is seconds).
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a number and a unit (ms, s, m, h), such as 60s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        _ => Err(format!("{s:?}: the unit is one of ms, s, m, h")),
    }
}

/// The admin listener's address in the configuration at `config`.
pub(super) fn admin_addr(
    config: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<SocketAddr, AppError> {
    let settings = Layered::load(Some(config), env)?.node(0)?;
    let Some(a) = &settings.admin else {
        return Err(AppError::NoAdmin(config.to_owned()));
    };
    let mut addr = a.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(addr)
}

fn json(addr: SocketAddr, body: &str) -> Result<serde_json::Value, AppError> {
    serde_json::from_str(body).map_err(|e| AppError::AdminQuery {
        addr,
        why: format!("the answer is not JSON: {e}"),
    })
}

/// `components`: the cluster's components as a table.
pub(super) fn components(
    config: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    timeout: Duration,
) -> Result<(), AppError> {
    let addr = admin_addr(config, env)?;
    let doc = json(addr, &admin::get(addr, "/components", timeout)?)?;
    // The command's output is the table itself.
    #[allow(clippy::print_stdout)]
    {
        print!("{}", crate::metrics::components_table(&doc));
    }
    Ok(())
}

/// `top`: the status table, redrawn every `every`, `count` times or until
/// interrupted.
pub(super) fn top(
    config: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    every: Duration,
    count: Option<u64>,
) -> Result<(), AppError> {
    let addr = admin_addr(config, env)?;
    let every = every.max(Duration::from_millis(100));
    let mut shown = 0u64;
    loop {
        let doc = json(addr, &admin::get(addr, "/status", TIMEOUT)?)?;
        // The command's output is the refreshed table: clear the screen, home, draw.
        #[allow(clippy::print_stdout)]
        {
            print!(
                "\x1b[2J\x1b[H{}\n(refreshed at {} ms since the epoch, every {every:?}; Ctrl-C to stop)\n",
                crate::metrics::status_table(&doc),
                wall_ms()
            );
        }
        shown += 1;
        if count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        // A command-line process outside any container: a plain sleep between polls.
        std::thread::sleep(every);
    }
}

/// `trace-flow NAME --for D --budget N`.
pub(super) fn trace_flow(
    config: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    name: &str,
    duration: Duration,
    budget: u32,
) -> Result<(), AppError> {
    let addr = admin_addr(config, env)?;
    let path = format!(
        "/debug?target={}&for_ms={}&budget={budget}",
        encode(name),
        duration.as_millis()
    );
    let answer = admin::request(addr, "POST", &path, TIMEOUT)?;
    eprintln!("{}", answer.trim());
    Ok(())
}

/// `logs --level FILTER`.
pub(super) fn logs(
    config: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    level: &str,
) -> Result<(), AppError> {
    let addr = admin_addr(config, env)?;
    let answer = admin::request(
        addr,
        "POST",
        &format!("/log?filter={}", encode(level)),
        TIMEOUT,
    )?;
    eprintln!("{}", answer.trim());
    Ok(())
}

/// `set-capacity [--network] KEY=VALUE ...`: the changes are checked here with the
/// limits' own parser, then sent to the listener, which checks and applies them whole.
pub(super) fn set_capacity(
    addr: SocketAddr,
    changes: &[String],
    network: bool,
) -> Result<(), AppError> {
    super::capacity::parse_all(changes.iter().map(String::as_str))?;
    let mut path = format!("/limits?set={}", encode(&changes.join("\n")));
    if network {
        path.push_str("&network=1");
    }
    let answer = admin::request(addr, "POST", &path, TIMEOUT)?;
    eprintln!("{}", answer.trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert!(duration("1d").is_err());
        assert!(duration("s").is_err());
    }
}
