//! Streamed replies over ZeroMQ, two nodes in one runtime on tcp loopback: order,
//! backpressure with a stalled consumer, cancellation, and failures.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, StreamMessage, Streaming, spawn};
use tern_executor::Runtime;
use tern_executor::time::sleep;
use tern_transport::{ZmqConfig, ZmqTransport};

#[derive(Default, Clone)]
struct Probe {
    computed: Rc<Cell<u64>>,
    cancelled: Rc<Cell<bool>>,
}

struct Store {
    probe: Probe,
}
impl Actor for Store {}

#[derive(Debug, Serialize, Deserialize)]
struct Scan {
    n: u64,
    fail_at: Option<u64>,
}
impl RemoteMessage for Scan {
    const NAME: &'static str = "test.v1.Scan";
    type Codec = Postcard;
}
impl StreamMessage for Scan {
    type Item = (u64, String);
}
impl Handler<Streaming<Scan>> for Store {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
        let (scan, mut out) = req.into_parts();
        for i in 0..scan.n {
            if out.ready().await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
            if scan.fail_at == Some(i) {
                return out.fail(format!("bad row {i}"));
            }
            self.probe.computed.set(self.probe.computed.get() + 1);
            if out.send((i, format!("row {i}"))).await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
        }
        out.end();
    }
}

/// Nodes a (caller) and b (exports a store) on tcp loopback; a knows the store.
async fn pair() -> (Node, Node, ZmqTransport, Probe) {
    let tb = ZmqTransport::bind(ZmqConfig::new("b").plaintext().listen("tcp://127.0.0.1:0"))
        .expect("setup");
    let endpoint = tb.endpoints()[0].clone();
    let ta = ZmqTransport::bind(
        ZmqConfig::new("a")
            .plaintext()
            .listen("tcp://127.0.0.1:0")
            .peer("b", &endpoint),
    )
    .expect("setup");
    tb.connect("a", &ta.endpoints()[0]).expect("setup");
    let tb2 = tb.clone();
    let probe = Probe::default();
    let b = Node::start(NodeConfig::new("b").peers(["a"]), tb).expect("setup");
    b.export(
        "store",
        &spawn(Store {
            probe: probe.clone(),
        }),
    )
    .expect("setup")
    .accept_stream::<Scan>();
    let a = Node::start(NodeConfig::new("a").peers(["b"]), ta).expect("setup");
    for _ in 0..500 {
        if !a.hosts("store").is_empty() {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    (a, b, tb2, probe)
}

#[test]
fn streams_over_zeromq_are_ordered_lazy_cancellable_and_fail_typed() {
    Runtime::new().expect("setup").block_on(async {
        let (a, b, tb, probe) = pair().await;
        let store = a.lookup::<Store>("store");

        // Order, every item once.
        let rows: Vec<_> = store
            .ask_stream(Scan {
                n: 2_000,
                fail_at: None,
            })
            .credit(32)
            .collect()
            .await;
        let want: Vec<_> = (0..2_000).map(|i| Ok((i, format!("row {i}")))).collect();
        assert_eq!(rows, want);

        // Backpressure: a stalled consumer stalls the producer within the window.
        probe.computed.set(0);
        let mut rows = store
            .ask_stream(Scan {
                n: 1_000_000,
                fail_at: None,
            })
            .credit(8);
        assert_eq!(rows.next().await, Some(Ok((0, "row 0".into()))));
        sleep(Duration::from_millis(300)).await;
        assert!(
            probe.computed.get() <= 9,
            "computed {}",
            probe.computed.get()
        );
        assert!(rows.buffered() <= 8);

        // Cancellation: dropping the stream stops the producer.
        drop(rows);
        sleep(Duration::from_millis(300)).await;
        assert!(probe.cancelled.get(), "the producer saw the cancel");
        assert_eq!(b.stats().streams_producing, 0);
        assert_eq!(a.stats().streams_open, 0);

        // A failure mid-stream is typed.
        let rows: Vec<_> = store
            .ask_stream(Scan {
                n: 10,
                fail_at: Some(2),
            })
            .collect()
            .await;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], Err(CallError::StreamFailed("bad row 2".into())));

        // The producer's node goes away mid-stream: an error, never a hang.
        let mut rows = store
            .ask_stream(Scan {
                n: 1_000_000,
                fail_at: None,
            })
            .credit(4)
            .idle_timeout(Duration::from_secs(5));
        assert!(matches!(rows.next().await, Some(Ok(_))));
        b.shutdown();
        tb.close();
        let mut end = None;
        while let Some(r) = rows.next().await {
            if let Err(e) = r {
                end = Some(e);
            }
        }
        assert!(
            matches!(end, Some(CallError::Stopped | CallError::PeerLost(_))),
            "{end:?}"
        );
    });
}
