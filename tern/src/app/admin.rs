//! The admin listener: a small HTTP/1.1 server inside the container's own poll loop
//! (a non-blocking `TcpListener` registered with the executor's reactor, like the
//! gossip socket; no thread), serving `/metrics` (OpenMetrics text), `/status` (JSON,
//! for `app status` and `app top`), `/components` (the cluster's components, for
//! `app components`), `/spans` (the last spans), `/debug` (the debug switches on) and
//! `/` (the status page, plain HTML and JavaScript reading those). `POST /debug` turns
//! a debug switch on (`app trace-flow`), `POST /log` changes the log filter
//! (`app logs --level`), `GET /limits` shows the limits in force and `POST /limits`
//! changes them (`app set-capacity`); see `admin_actions.rs` and `capacity.rs`.
//!
//! Bounded: at most `max_connections` at once (more are closed unanswered), a request
//! head of at most `max_request_bytes` (else `431`), `request_timeout` for the request
//! and the answer together (else the connection is closed), one request per
//! connection; a request body is not read (`POST` takes its arguments in the query).
//! Only `GET`, `HEAD` and `POST`. Off unless `[admin] bind` is set; a bind address
//! that is not loopback is warned about by the configuration (anyone who reaches it
//! can switch debug tracing on, change the log filter and change the limits).

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use tern_discovery::Discovery;
use tern_executor::{Async, JoinHandle, time};

use super::AppError;
use super::admin_actions as actions;
use super::config::AdminSettings;
use crate::metrics::{Sampler, Snapshot};
use crate::remote::Node;

/// What the listener reads its answers from.
#[derive(Debug, Clone)]
pub(super) struct Sources {
    pub(super) name: String,
    pub(super) node: Option<Node>,
    pub(super) generation: u64,
    pub(super) discovery: Option<Discovery>,
    pub(super) peers: Vec<String>,
    /// The container, for debug switches and spans (none for a bare listener).
    pub(super) running: Option<super::Running>,
    /// The span exporter's counters, when spans go to a collector.
    pub(super) export: Option<Rc<crate::trace::ExportStats>>,
}

/// A running admin listener: HTTP/1.1 in the current runtime's poll loop, serving
/// `GET /metrics` (OpenMetrics text, see [`crate::metrics`]) and `GET /status` (JSON),
/// bounded in connections, request size and time per request. Dropping it stops it
/// (and its lag probe). [`crate::app::App`] starts one for a node with an `[admin]`
/// section.
///
/// # Examples
///
/// ```
/// use tern::app::AdminListener;
/// use tern::app::config::AdminSettings;
///
/// tern::Runtime::new().unwrap().block_on(async {
///     let settings = AdminSettings::new("127.0.0.1:0".parse().unwrap());
///     let admin = AdminListener::start(&settings, "n1", None).unwrap();
///     assert!(admin.local_addr().ip().is_loopback());
/// });
/// ```
#[derive(Debug)]
pub struct AdminListener {
    _tasks: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl AdminListener {
    /// Binds `settings.bind` and serves, from the current runtime's poll loop, the
    /// metrics of container `name`: `node`'s components and remote counters (none
    /// without a node) and the runtime's own.
    ///
    /// # Errors
    ///
    /// [`AppError::Admin`] if the address cannot be bound.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn start(
        settings: &AdminSettings,
        name: &str,
        node: Option<&Node>,
    ) -> Result<Self, AppError> {
        start(
            settings,
            Sources {
                name: name.to_owned(),
                node: node.cloned(),
                generation: 0,
                discovery: None,
                peers: Vec::new(),
                running: None,
                export: None,
            },
        )
    }

    /// The address bound (the port chosen by the system for port 0).
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// An answer: status code, reason, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) content_type: &'static str,
    pub(super) body: String,
}

impl Response {
    pub(super) fn text(code: u16, reason: &'static str, body: &str) -> Self {
        Self {
            code,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }

    fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
            self.code,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// A request's method: `GET` and `HEAD` read, `POST` changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
}

/// The request line of a complete request head: `(method, path, query)`, or the
/// error answer.
fn parse(head: &[u8]) -> Result<(Method, &str, &str), Response> {
    let bad = || Response::text(400, "Bad Request", "bad request");
    let line = head.split(|b| *b == b'\r').next().ok_or_else(bad)?;
    let line = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => {
            return Err(Response::text(
                405,
                "Method Not Allowed",
                "only GET, HEAD and POST",
            ));
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok((method, path, query))
}

/// The answer to a read of `path`; `snapshot` is read only for the paths that need it.
fn route(path: &str, sources: &Sources, snapshot: impl FnOnce() -> Snapshot) -> Response {
    match path {
        "/metrics" => Response {
            code: 200,
            reason: "OK",
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: snapshot().openmetrics(),
        },
        "/status" => Response {
            code: 200,
            reason: "OK",
            content_type: "application/json",
            body: snapshot().status().to_string(),
        },
        "/components" => actions::components(sources),
        "/spans" => actions::spans(sources),
        "/debug" => actions::switches(sources),
        "/limits" => super::capacity::get(sources),
        "/" => Response {
            code: 200,
            reason: "OK",
            content_type: "text/html; charset=utf-8",
            body: super::status_page::PAGE.to_owned(),
        },
        _ => Response::text(
            404,
            "Not Found",
            "not found; try / /metrics /status /components /spans /debug /limits",
        ),
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Why a connection was closed unanswered.
#[derive(Debug)]
enum Closed {
    Io(std::io::Error),
    Early,
}

async fn serve(
    io: Async<TcpStream>,
    max_request: usize,
    sources: &Sources,
    snapshot: impl FnOnce() -> Snapshot,
) -> Result<u16, Closed> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let response = loop {
        let n = io
            .read_with(|s| (&*s).read(&mut chunk))
            .await
            .map_err(Closed::Io)?;
        if n == 0 {
            return Err(Closed::Early);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_end(&buf) {
            break match parse(&buf[..end]) {
                Ok((Method::Post, path, query)) => (false, actions::post(path, query, sources)),
                Ok((method, path, _)) => (method == Method::Head, route(path, sources, snapshot)),
                Err(r) => (false, r),
            };
        }
        if buf.len() > max_request {
            break (
                false,
                Response::text(431, "Request Header Fields Too Large", "request too large"),
            );
        }
    };
    let (head_only, response) = response;
    let bytes = response.bytes(head_only);
    let mut sent = 0;
    while sent < bytes.len() {
        sent += io
            .write_with(|s| (&*s).write(&bytes[sent..]))
            .await
            .map_err(Closed::Io)?;
    }
    let _ = io.get_ref().shutdown(Shutdown::Write);
    Ok(response.code)
}

/// Binds the listener and starts serving on the current runtime.
pub(super) fn start(settings: &AdminSettings, sources: Sources) -> Result<AdminListener, AppError> {
    let bind = |e| AppError::Admin {
        addr: settings.bind,
        source: e,
    };
    let listener = TcpListener::bind(settings.bind).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let local = listener.local_addr().map_err(bind)?;
    let listener = Async::new(listener);
    let (sampler, mut tasks) = Sampler::start(sources.node.as_ref());
    let node_name = sources.name.clone();
    tracing::info!(name: "tern.admin.listening", node = %node_name, addr = %local,
        "admin listener: /metrics /status");
    let limits = settings.clone();
    let sources = Rc::new(sources);
    tasks.push(tern_executor::spawn(async move {
        let active = Rc::new(Cell::new(0usize));
        loop {
            let (stream, remote) = match listener.read_with(TcpListener::accept).await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(name: "tern.admin.refused", node = %node_name,
                        reason = "accept failed", error = %e, "admin connection not accepted");
                    time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if active.get() >= limits.max_connections {
                tracing::warn!(name: "tern.admin.refused", node = %node_name, %remote,
                    reason = "too many connections", "admin connection closed unanswered");
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            active.set(active.get() + 1);
            let (active, sources, sampler) = (active.clone(), sources.clone(), sampler.clone());
            let (node_name, limits) = (node_name.clone(), limits.clone());
            tern_executor::spawn(async move {
                let snapshot = || {
                    let mut snap = Snapshot::collect(
                        &sources.name,
                        sources.node.as_ref(),
                        sources.generation,
                        sources.discovery.as_ref(),
                        sources.peers.clone(),
                        &sampler,
                    );
                    snap.export = sources.export.as_ref().map(|e| e.get());
                    snap
                };
                let io = Async::new(stream);
                let served = time::timeout(
                    limits.request_timeout,
                    serve(io, limits.max_request_bytes, &sources, snapshot),
                )
                .await;
                match served {
                    Ok(Ok(code)) => {
                        tracing::debug!(node = %node_name, %remote, code, "admin request served");
                    }
                    Ok(Err(Closed::Early)) => {}
                    Ok(Err(Closed::Io(e))) => {
                        tracing::debug!(node = %node_name, %remote, error = %e, "admin connection failed");
                    }
                    Err(_) => {
                        tracing::warn!(name: "tern.admin.refused", node = %node_name, %remote,
                            reason = "timed out", "admin connection closed unanswered");
                    }
                }
                active.set(active.get() - 1);
            })
            .detach();
        }
    }));
    Ok(AdminListener {
        _tasks: tasks,
        addr: local,
    })
}

/// `GET path` from the admin listener at `addr`, blocking, bounded by `timeout`
/// (for the `status` command, which runs outside any container).
pub(super) fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, AppError> {
    request(addr, "GET", path, timeout)
}

/// `method path` to the admin listener at `addr`, blocking, bounded by `timeout`; the
/// body of a `200` answer, the answer's text otherwise.
pub(super) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<String, AppError> {
    let fail = |why: String| AppError::AdminQuery { addr, why };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(e.to_string()))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e.to_string()))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut raw = Vec::new();
    s.take(64 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| fail(e.to_string()))?;
    let end = find_end(&raw).ok_or_else(|| fail("no complete HTTP answer".into()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        let body = String::from_utf8_lossy(&raw[end + 4..]);
        return Err(fail(format!("answered {status:?}: {}", body.trim())));
    }
    Ok(String::from_utf8_lossy(&raw[end + 4..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a").ok(),
            Some((Method::Get, "/metrics", "x=1"))
        );
        assert_eq!(
            parse(b"HEAD /status HTTP/1.0").ok(),
            Some((Method::Head, "/status", ""))
        );
        assert_eq!(
            parse(b"POST /log?filter=debug HTTP/1.1").ok(),
            Some((Method::Post, "/log", "filter=debug"))
        );
        assert_eq!(
            parse(b"PUT /status HTTP/1.1").err().map(|r| r.code),
            Some(405)
        );
        for bad in [
            &b"GET /status"[..],
            b"GET /status SPDY/3",
            b"GET  /status HTTP/1.1",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(bad).err().map(|r| r.code), Some(400), "{bad:?}");
        }
    }

    #[test]
    fn unknown_paths_are_404_without_reading_counters() {
        let sources = Sources {
            name: "n".into(),
            node: None,
            generation: 0,
            discovery: None,
            peers: Vec::new(),
            running: None,
            export: None,
        };
        let r = route("/nope", &sources, || unreachable!("no snapshot for a 404"));
        assert_eq!(r.code, 404);
        let bytes = String::from_utf8(r.bytes(false)).unwrap();
        assert!(bytes.starts_with("HTTP/1.1 404 Not Found\r\n"), "{bytes}");
        assert!(bytes.contains(&format!("Content-Length: {}\r\n", r.body.len())));
        let head = String::from_utf8(r.bytes(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
