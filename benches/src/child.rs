//! Servers in child processes, for the tcp loopback benchmarks: the bench binary
//! re-executes itself with a role variable set; the child prints `READY <address>` and
//! serves until its standard input closes (so it never outlives the parent).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

/// A server in a child process: this binary, re-executed with `role_var = role` (and
/// `peer_var = peer`, if given).
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it printed.
    pub addr: String,
}

impl Server {
    /// Starts the child and waits for its `READY <address>` line.
    ///
    /// # Panics
    ///
    /// If the child cannot start or says something else first.
    #[must_use]
    pub fn start(role_var: &str, role: &str, peer_var: &str, peer: Option<&str>) -> Self {
        let exe = std::env::current_exe().expect("the bench binary");
        let mut cmd = Command::new(exe);
        cmd.env(role_var, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(p) = peer {
            cmd.env(peer_var, p);
        }
        let mut child = cmd.spawn().expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        let addr = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("server {role} said {line:?}"))
            .to_owned();
        Self { child, addr }
    }
}

impl Server {
    /// The child's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// In the child: says it is ready at `addr`.
///
/// # Panics
///
/// If standard output is closed.
pub fn ready(addr: &str) {
    let mut out = std::io::stdout();
    writeln!(out, "READY {addr}").expect("stdout");
    out.flush().expect("stdout");
}

/// In the child: exits as soon as the parent closes our standard input (or dies).
pub fn exit_when_stdin_closes() {
    // A benchmark helper outside any tern container: a plain watcher thread.
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
}
