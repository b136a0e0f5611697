//! Choosing a loopback port for an endpoint that is bound later, by a test, a demo or
//! a child process.
//!
//! The usual recipe (bind port 0, read the port, close the listener, bind it again
//! later) has two races on a busy machine, both seen in CI: the freed port is in the
//! system's ephemeral range, so any outgoing connection made meanwhile (another test's,
//! or a ZeroMQ socket reconnecting to that very port) can be given it as its source
//! port; on Linux loopback a connection retried to a port that nobody listens on can
//! even connect to itself (TCP simultaneous open) and hold the port. Either way the
//! later bind fails with "address already in use". A port below the ephemeral range is
//! never handed out as a source port, so neither can happen.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

/// The lowest port handed out: above the registered services most machines run.
const LOWEST: u16 = 10_000;

/// Where the ephemeral range starts when the system does not say (Linux's default).
const EPHEMERAL_DEFAULT: u16 = 32_768;

/// Calls so far in this process: each call starts its search somewhere else, so two
/// ports asked for one after the other (before either is bound) differ.
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The first port of the system's ephemeral range (Linux:
/// `/proc/sys/net/ipv4/ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|&p| p > LOWEST + 1_000)
        .unwrap_or(EPHEMERAL_DEFAULT)
}

/// SplitMix64's finaliser: spreads `(process, call)` over the port range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D1_049B_B133_111E);
    z ^ (z >> 31)
}

/// A port on 127.0.0.1, free now for both TCP and UDP (a ZeroMQ endpoint or a gossip
/// socket), that no outgoing connection can take before it is bound: it lies below the system's ephemeral port range (from 10,000 up
/// to where that range starts), where the system never picks source ports.
///
/// The search starts at a place drawn from the process id and a per-process call
/// count (not from the runtime's seeded generator: a port is not part of any
/// simulated run), so parallel test processes and successive calls rarely try the same
/// port; each candidate is checked by binding it. Another process may still bind the
/// port between this check and its use, as with any such recipe; only that race is left.
///
/// # Errors
///
/// The last bind error if none of 2,000 candidates is free.
///
/// ```
/// let a = tern_transport::loopback_port().unwrap();
/// let b = tern_transport::loopback_port().unwrap();
/// assert_ne!(a, b);
/// let endpoint = format!("tcp://127.0.0.1:{a}");
/// # let _ = endpoint;
/// ```
pub fn loopback_port() -> std::io::Result<u16> {
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let start = mix((u64::from(std::process::id()) << 32) ^ call);
    first_free(start, ephemeral_start(), |port| {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))?;
        drop((tcp, udp));
        Ok(())
    })
}

/// Walks `[LOWEST, top)` from `start` (taken modulo its length) one port at a time and
/// returns the first that `bind` accepts, trying at most 2,000.
fn first_free(
    start: u64,
    top: u16,
    mut bind: impl FnMut(u16) -> std::io::Result<()>,
) -> std::io::Result<u16> {
    let span = u64::from(top.saturating_sub(LOWEST)).max(1);
    let mut last = std::io::Error::other("no port tried");
    for i in 0..2_000 {
        let offset = (start.wrapping_add(i)) % span;
        let port = LOWEST.saturating_add(u16::try_from(offset).unwrap_or(0));
        match bind(port) {
            Ok(()) => return Ok(port),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lie_below_the_ephemeral_range_and_differ() {
        let top = ephemeral_start();
        let ports: Vec<u16> = (0..50).map(|_| loopback_port().unwrap()).collect();
        assert!(
            ports.iter().all(|&p| (LOWEST..top).contains(&p)),
            "{ports:?}"
        );
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert!(distinct.len() >= 49, "{ports:?}");
    }

    #[test]
    fn a_port_in_use_is_skipped_and_the_walk_wraps() {
        let busy = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        // Start at the last port of the range; it and the first two are taken.
        let top = LOWEST + 100;
        let taken = [LOWEST + 99, LOWEST, LOWEST + 1];
        let got = first_free(99, top, |p| {
            if taken.contains(&p) {
                Err(std::io::Error::from(busy.kind()))
            } else {
                Ok(())
            }
        });
        assert_eq!(got.unwrap(), LOWEST + 2);
        // Nothing free: the bind error comes back, after a bounded number of tries.
        let mut tries = 0;
        let none = first_free(0, top, |_| {
            tries += 1;
            Err(std::io::Error::from(busy.kind()))
        });
        assert_eq!(none.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
        assert_eq!(tries, 2_000);
    }
}
