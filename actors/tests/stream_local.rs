//! Streamed replies in process: laziness and credit, borrowed and detached producers,
//! cancellation, failures and deadlines.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{StreamExt, stream};
use tern_actors::{Actor, Context, Handler, StreamError, StreamMessage, Streaming, build, spawn};
use tern_executor::Runtime;
use tern_executor::time::sleep;

/// Counts how many items were computed and whether the producer saw a cancel.
#[derive(Default, Clone)]
struct Probe {
    computed: Rc<Cell<u64>>,
    cancelled: Rc<Cell<bool>>,
    freed: Rc<Cell<bool>>,
}

struct Table {
    probe: Probe,
}
impl Actor for Table {}

/// Rows 0..n, produced by the handler from its own state (borrowed).
struct Scan {
    n: u64,
    fail_at: Option<u64>,
}
impl StreamMessage for Scan {
    type Item = u64;
}
impl Handler<Streaming<Scan>> for Table {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
        let (scan, mut out) = req.into_parts();
        for i in 0..scan.n {
            if out.ready().await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
            if scan.fail_at == Some(i) {
                return out.fail(format!("disk error at row {i}"));
            }
            self.probe.computed.set(self.probe.computed.get() + 1);
            if out.send(i).await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
        }
        out.end();
    }
}

/// Rows 0..n from an owned, lazy stream on its own task (detached).
struct Export {
    n: u64,
}
impl StreamMessage for Export {
    type Item = u64;
}

/// Sets a flag when dropped: shows the detached stream was freed.
struct OnDrop(Rc<Cell<bool>>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

impl Handler<Streaming<Export>> for Table {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Export>, _: &mut Context<Self>) {
        let (m, out) = req.into_parts();
        let computed = self.probe.computed.clone();
        let guard = OnDrop(self.probe.freed.clone());
        out.detach(stream::iter(0..m.n).map(move |i| {
            let _held = &guard;
            computed.set(computed.get() + 1);
            i
        }));
    }
}

/// Answers at once: shows whether the component is free.
struct Ping;
impl Handler<Ping> for Table {
    type Reply = &'static str;
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> &'static str {
        "pong"
    }
}

/// Panics after two items.
struct Boom;
impl StreamMessage for Boom {
    type Item = u64;
}
impl Handler<Streaming<Boom>> for Table {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Boom>, _: &mut Context<Self>) {
        let (_, mut out) = req.into_parts();
        let _ = out.send(1).await;
        let _ = out.send(2).await;
        panic!("boom");
    }
}

fn table() -> (tern_actors::Addr<Table>, Probe) {
    let probe = Probe::default();
    let p = probe.clone();
    (spawn(Table { probe: p }), probe)
}

#[test]
fn a_borrowed_stream_is_lazy_in_order_and_keeps_the_component_busy() {
    Runtime::new().unwrap().block_on(async {
        let (t, probe) = table();
        let mut rows = t
            .ask_stream(Scan {
                n: 100,
                fail_at: None,
            })
            .credit(4);
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(rows.next().await.unwrap().unwrap());
            sleep(Duration::from_millis(1)).await;
            // Never more than a window ahead of what was taken.
            assert!(
                probe.computed.get() <= got.len() as u64 + 4,
                "{}",
                probe.computed.get()
            );
            assert!(rows.buffered() <= 4);
        }
        // Busy: a ping waits behind the stream.
        let ping = t.ask(Ping).timeout(Duration::from_millis(20)).await;
        assert_eq!(ping, Err(tern_actors::AskError::Timeout));
        while let Some(r) = rows.next().await {
            got.push(r.unwrap());
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(t.ask(Ping).await, Ok("pong"));
    });
}

#[test]
fn a_detached_stream_frees_the_component_and_stays_lazy_when_stalled() {
    Runtime::new().unwrap().block_on(async {
        let (t, probe) = table();
        let mut rows = t.ask_stream(Export { n: 1_000_000 }).credit(8);
        assert_eq!(rows.next().await, Some(Ok(0)));
        // Free at once.
        assert_eq!(t.ask(Ping).await, Ok("pong"));
        // The consumer stalls: the producer stops at the window.
        sleep(Duration::from_millis(50)).await;
        let computed = probe.computed.get();
        assert!(computed <= 1 + 8, "computed {computed}");
        assert!(rows.buffered() <= 8);
        for i in 1..100 {
            assert_eq!(rows.next().await, Some(Ok(i)));
        }
        assert!(probe.computed.get() <= 100 + 8);
        // Dropping the stream cancels the producer and frees its data.
        drop(rows);
        sleep(Duration::from_millis(1)).await;
        assert!(probe.freed.get(), "the detached stream was dropped");
    });
}

#[test]
fn dropping_the_stream_cancels_a_borrowed_producer() {
    Runtime::new().unwrap().block_on(async {
        let (t, probe) = table();
        let mut rows = t
            .ask_stream(Scan {
                n: 1_000,
                fail_at: None,
            })
            .credit(2);
        assert_eq!(rows.next().await, Some(Ok(0)));
        drop(rows);
        // The component is free again right after.
        assert_eq!(t.ask(Ping).await, Ok("pong"));
        assert!(probe.cancelled.get());
        assert!(probe.computed.get() <= 3);
    });
}

#[test]
fn failures_end_the_stream_with_a_typed_error() {
    Runtime::new().unwrap().block_on(async {
        let (t, _) = table();
        let got: Vec<_> = t
            .ask_stream(Scan {
                n: 10,
                fail_at: Some(3),
            })
            .collect()
            .await;
        assert_eq!(
            got,
            vec![
                Ok(0),
                Ok(1),
                Ok(2),
                Err(StreamError::Failed("disk error at row 3".into()))
            ]
        );

        let restarting = build(|| Table {
            probe: Probe::default(),
        })
        .restart(tern_actors::Restart::OnFailure)
        .spawn();
        let got: Vec<_> = restarting.ask_stream(Boom).collect().await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[..2], [Ok(1), Ok(2)]);
        assert!(
            matches!(
                got[2],
                Err(StreamError::HandlerPanicked(_) | StreamError::Abandoned)
            ),
            "{got:?}"
        );

        let (stopped, _) = table();
        stopped.stop();
        stopped.stopped().await;
        let got: Vec<_> = stopped
            .ask_stream(Scan {
                n: 1,
                fail_at: None,
            })
            .collect()
            .await;
        assert_eq!(got, vec![Err(StreamError::Stopped)]);
    });
}

/// Sleeps `gap` before each item.
struct Slowly {
    gap: Duration,
}
impl StreamMessage for Slowly {
    type Item = u32;
}
impl Handler<Streaming<Slowly>> for Table {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Slowly>, _: &mut Context<Self>) {
        let (m, out) = req.into_parts();
        let seen = Rc::new(RefCell::new(0u32));
        out.detach(stream::unfold(seen, move |n| async move {
            sleep(m.gap).await;
            let i = *n.borrow();
            *n.borrow_mut() += 1;
            Some((i, n))
        }));
    }
}

#[test]
fn the_whole_stream_deadline_and_the_idle_deadline_differ() {
    Runtime::new().unwrap().block_on(async {
        let (t, _) = table();
        // 10 ms between items: an idle timeout of 50 ms never fires, the whole
        // deadline of 105 ms does after ~10 items.
        let got: Vec<_> = t
            .ask_stream(Slowly {
                gap: Duration::from_millis(10),
            })
            .idle_timeout(Duration::from_millis(50))
            .timeout(Duration::from_millis(105))
            .collect()
            .await;
        assert_eq!(got.last(), Some(&Err(StreamError::Timeout)));
        assert!((2..=11).contains(&got.len()), "{}", got.len());
        // 100 ms between items: the idle timeout of 30 ms fires first.
        let got: Vec<_> = t
            .ask_stream(Slowly {
                gap: Duration::from_millis(100),
            })
            .idle_timeout(Duration::from_millis(30))
            .collect()
            .await;
        assert_eq!(got, vec![Err(StreamError::Idle)]);
        // A consumer that stops polling does not time itself out.
        let mut s = t
            .ask_stream(Slowly {
                gap: Duration::from_millis(1),
            })
            .idle_timeout(Duration::from_millis(20))
            .credit(2);
        assert_eq!(s.next().await, Some(Ok(0)));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(s.next().await, Some(Ok(1)));
    });
}
