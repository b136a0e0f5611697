//! Posting batches to a collector from the container's own poll loop: a
//! non-blocking TCP connection registered with the executor's reactor (as the admin
//! listener's sockets are), HTTP/1.1, one request per connection, no thread.
//!
//! Bounded everywhere: at most [`OtlpSettings::queue`] batches wait (the oldest is
//! dropped first, counted); one batch has [`OtlpSettings::timeout`] on the runtime
//! clock to connect, be sent and be answered; at most [`MAX_RESPONSE`] bytes of the
//! answer are read (its status line is all that is needed). A failure is counted
//! and logged (`tern.trace.export_failed`), never retried: tracing must not hold the
//! container back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tern_actors::trace::SpanRecord;
use tern_executor::{Async, JoinHandle, time};

use super::otlp_json;
use crate::trace::{ExportError, ExportStats, OtlpSettings, SpanExporter, SpanRing};

/// Bytes of a collector's answer read at most (the status line is in the first
/// few).
pub const MAX_RESPONSE: usize = 4096;

/// Spans per request at most (the OpenTelemetry SDKs' default batch size).
pub const MAX_BATCH_SPANS: usize = 512;

/// Why one batch did not reach the collector.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("connection failed: {0}")]
    Io(io::Error),
    #[error("the collector answered {0}")]
    Status(u16),
    #[error("the collector's answer is not HTTP/1.x")]
    BadAnswer,
    #[error("the collector closed the connection without an answer")]
    NoAnswer,
}

/// One batch waiting: its JSON body and how many spans it holds.
#[derive(Debug)]
struct Batch {
    body: Vec<u8>,
    spans: usize,
}

struct Shared {
    service: String,
    settings: OtlpSettings,
    addr: SocketAddr,
    queue: RefCell<VecDeque<Batch>>,
    waker: Cell<Option<Waker>>,
    stats: Rc<ExportStats>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("endpoint", &self.settings.endpoint)
            .field("addr", &self.addr)
            .field("queued", &self.queue.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Sends spans to an OpenTelemetry collector over OTLP/HTTP JSON
/// (`POST /v1/traces`), from the container's poll loop. As a [`SpanExporter`] it
/// queues each batch it is given; its task posts them one at a time. Dropping it
/// stops the task (batches still queued are dropped).
///
/// ```no_run
/// use std::rc::Rc;
/// use tern::trace::otlp::OtlpExporter;
/// use tern::trace::{OtlpSettings, SpanRing};
///
/// tern::Runtime::new().unwrap().block_on(async {
///     let settings = OtlpSettings::new("http://127.0.0.1:4318".parse().unwrap());
///     let ring = Rc::new(SpanRing::new(2048));
///     tern::actors::trace::install(ring.clone(), 1);
///     let exporter = OtlpExporter::start(&settings, "shop").unwrap();
///     let _following = exporter.follow(ring);
///     // ... remote calls; their spans reach the collector every second.
///     println!("{:?}", exporter.stats().get());
/// });
/// ```
#[derive(Debug)]
pub struct OtlpExporter {
    shared: Rc<Shared>,
    _task: Rc<JoinHandle<()>>,
}

impl OtlpExporter {
    /// Resolves the collector's address (once, now: a host name is looked up with
    /// the system resolver, which may block briefly) and starts the sending task on
    /// the current runtime; `service` is the `service.name` of the spans.
    ///
    /// # Errors
    ///
    /// [`ExportError`] when the host has no address.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn start(settings: &OtlpSettings, service: &str) -> Result<Self, ExportError> {
        let e = &settings.endpoint;
        let addr = (e.host(), e.port())
            .to_socket_addrs()
            .map_err(|err| ExportError(format!("collector {e}: {err}")))?
            .next()
            .ok_or_else(|| ExportError(format!("collector {e}: the host has no address")))?;
        let shared = Rc::new(Shared {
            service: service.to_owned(),
            settings: settings.clone(),
            addr,
            queue: RefCell::new(VecDeque::new()),
            waker: Cell::new(None),
            stats: Rc::default(),
        });
        let task = tern_executor::spawn(send_all(shared.clone()));
        tracing::info!(name: "tern.trace.exporting", endpoint = %e, %addr,
            "spans exported to an OpenTelemetry collector");
        Ok(Self {
            shared,
            _task: Rc::new(task),
        })
    }

    /// The exporter's counters.
    #[must_use]
    pub fn stats(&self) -> Rc<ExportStats> {
        self.shared.stats.clone()
    }

    /// Every [`OtlpSettings::every`], queues the spans `ring` recorded since last
    /// time (they stay in the ring); spans the ring pushed out before they were read
    /// are counted as lost. Runs until the handle is dropped.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn follow(&self, ring: Rc<SpanRing>) -> JoinHandle<()> {
        let mut me = Self {
            shared: self.shared.clone(),
            _task: self._task.clone(),
        };
        tern_executor::spawn(async move {
            let mut seen = ring.recorded();
            loop {
                time::sleep(me.shared.settings.every).await;
                let (batch, now_seen, missed) = ring.since(seen);
                seen = now_seen;
                if missed > 0 {
                    me.shared.stats.update(|c| c.spans_lost += missed);
                    tracing::warn!(name: "tern.trace.export_missed", spans = missed,
                        "spans pushed out of the ring before they were exported");
                }
                if !batch.is_empty() {
                    let _ = me.export(&batch, crate::trace::export::unix_offset());
                }
            }
        })
    }

    fn push(&self, batch: Batch) {
        let shared = &self.shared;
        let mut queue = shared.queue.borrow_mut();
        if queue.len() >= shared.settings.queue.max(1)
            && let Some(old) = queue.pop_front()
        {
            shared.stats.update(|c| {
                c.batches_dropped += 1;
                c.spans_lost += to_u64(old.spans);
            });
            tracing::warn!(name: "tern.trace.export_dropped", spans = old.spans,
                queue = shared.settings.queue, "span batch dropped: the export queue is full");
        }
        queue.push_back(batch);
        if let Some(w) = shared.waker.take() {
            w.wake();
        }
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl SpanExporter for OtlpExporter {
    /// Queues `batch` (in requests of at most [`MAX_BATCH_SPANS`] spans); never
    /// waits. Whether the collector took it shows in [`OtlpExporter::stats`].
    fn export(&mut self, batch: &[SpanRecord], unix_offset_nanos: u64) -> Result<(), ExportError> {
        for chunk in batch.chunks(MAX_BATCH_SPANS) {
            let body = otlp_json(&self.shared.service, chunk, unix_offset_nanos).to_string();
            self.push(Batch {
                body: body.into_bytes(),
                spans: chunk.len(),
            });
        }
        Ok(())
    }
}

/// The sending task: one batch at a time, each within the timeout.
async fn send_all(shared: Rc<Shared>) {
    loop {
        let batch = poll_fn(|cx| match shared.queue.borrow_mut().pop_front() {
            Some(b) => Poll::Ready(b),
            None => {
                shared.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        let timeout = shared.settings.timeout;
        let result = time::timeout(timeout, post(&shared, &batch.body)).await;
        let error = match result {
            Ok(Ok(())) => {
                shared.stats.update(|c| {
                    c.batches_exported += 1;
                    c.spans_exported += to_u64(batch.spans);
                });
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        shared.stats.update(|c| {
            c.batches_failed += 1;
            c.spans_lost += to_u64(batch.spans);
        });
        tracing::warn!(name: "tern.trace.export_failed", endpoint = %shared.settings.endpoint,
            spans = batch.spans, error = %error, "span batch dropped");
    }
}

/// Posts `body` and reads the answer's status line.
async fn post(shared: &Shared, body: &[u8]) -> Result<(), PostError> {
    let io = connect(shared.addr).await.map_err(PostError::Connect)?;
    let e = &shared.settings.endpoint;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nUser-Agent: tern\r\nConnection: close\r\n\r\n",
        e.path(),
        e.host_header(),
        body.len()
    );
    write_all(&io, head.as_bytes()).await?;
    write_all(&io, body).await?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let line_end = loop {
        if let Some(end) = answer.windows(2).position(|w| w == b"\r\n") {
            break end;
        }
        if answer.len() >= MAX_RESPONSE {
            return Err(PostError::BadAnswer);
        }
        let n = io
            .read_with(|s| (&*s).read(&mut chunk))
            .await
            .map_err(PostError::Io)?;
        if n == 0 {
            return Err(PostError::NoAnswer);
        }
        answer.extend_from_slice(&chunk[..n]);
    };
    let _ = io.get_ref().shutdown(Shutdown::Both);
    match status(&answer[..line_end]) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(PostError::Status(code)),
        None => Err(PostError::BadAnswer),
    }
}

/// The status code of an HTTP/1.x status line.
fn status(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

async fn write_all(io: &Async<TcpStream>, mut bytes: &[u8]) -> Result<(), PostError> {
    while !bytes.is_empty() {
        let n = io
            .write_with(|s| (&*s).write(bytes))
            .await
            .map_err(PostError::Io)?;
        if n == 0 {
            return Err(PostError::Io(io::ErrorKind::WriteZero.into()));
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Connects without blocking the thread: a non-blocking socket whose connection is
/// under way, registered with the reactor, until it is writable (connected) or
/// reports its error.
async fn connect(addr: SocketAddr) -> io::Result<Async<TcpStream>> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock
                || e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) => return Err(e),
    }
    let io = Async::new(TcpStream::from(socket));
    loop {
        io.writable().await;
        if let Some(e) = io.get_ref().take_error()? {
            return Err(e);
        }
        match io.get_ref().peer_addr() {
            Ok(_) => return Ok(io),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                // Woken before the connection settled: wait again (bounded by the
                // caller's timeout).
                time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::trace::ring::test_span as span;

    #[test]
    fn a_full_queue_drops_its_oldest_batches_and_counts_them() {
        let rt = tern_executor::Runtime::new().expect("runtime");
        rt.block_on(async {
            let mut settings = OtlpSettings::new("http://127.0.0.1:9".parse().expect("url"));
            settings.queue = 2;
            let mut exporter = OtlpExporter::start(&settings, "svc").expect("start");
            // Nothing is sent before this task yields: five batches for two places.
            for n in 1..=5 {
                exporter.export(&[span(n), span(n)], 0).expect("queued");
            }
            let c = exporter.stats().get();
            assert_eq!((c.batches_dropped, c.spans_lost), (3, 6));
            assert_eq!(exporter.shared.queue.borrow().len(), 2);
            // A big batch is split into requests of at most MAX_BATCH_SPANS spans.
            let many: Vec<SpanRecord> = (0..=MAX_BATCH_SPANS).map(|_| span(9)).collect();
            exporter.export(&many, 0).expect("queued");
            let sizes: Vec<usize> = exporter
                .shared
                .queue
                .borrow()
                .iter()
                .map(|b| b.spans)
                .collect();
            assert_eq!(sizes, [MAX_BATCH_SPANS, 1]);
        });
    }

    #[test]
    fn a_refused_connection_is_a_counted_failure() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let rt = tern_executor::Runtime::new().expect("runtime");
        let counts = rt.block_on(async {
            let url = format!("http://127.0.0.1:{port}");
            let mut settings = OtlpSettings::new(url.parse().expect("url"));
            settings.timeout = Duration::from_secs(2);
            let mut exporter = OtlpExporter::start(&settings, "svc").expect("start");
            exporter.export(&[span(1)], 0).expect("queued");
            // Bounded: the batch fails at once (refused) or by its 2 s timeout.
            for _ in 0..300 {
                if exporter.stats().get().batches_failed > 0 {
                    break;
                }
                time::sleep(Duration::from_millis(10)).await;
            }
            exporter.stats().get()
        });
        assert_eq!(counts.batches_failed, 1, "{counts:?}");
        assert_eq!((counts.batches_exported, counts.spans_lost), (0, 1));
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status(b"HTTP/1.0 503 Busy now"), Some(503));
        assert_eq!(status(b"HTTP/1.1 204"), Some(204));
        for bad in [&b"HTTP/2 200 OK"[..], b"HTTP/1.1 20 OK", b"hello", b"\xff"] {
            assert_eq!(status(bad), None, "{bad:?}");
        }
    }
}
