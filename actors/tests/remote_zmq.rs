//! Remote components over ZeroMQ, two nodes in one runtime on loopback.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::Runtime;
use tern_transport::{ZmqConfig, ZmqTransport};

struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize)]
struct Hello(String, u32);
impl RemoteMessage for Hello {
    const NAME: &'static str = "test.v1.Hello";
    type Codec = Postcard;
}
impl Handler<Hello> for Echo {
    type Reply = String;
    async fn handle(&mut self, m: Hello, _: &mut Context<Self>) -> String {
        format!("{} #{}", m.0, m.1)
    }
}

#[test]
fn asks_cross_tcp_loopback_and_a_node_that_shuts_down_withdraws_its_names() {
    Runtime::new().unwrap().block_on(async {
        let tb = ZmqTransport::bind(ZmqConfig::new("b").plaintext().listen("tcp://127.0.0.1:0"))
            .unwrap();
        let endpoint = tb.endpoints()[0].clone();
        let ta = ZmqTransport::bind(
            ZmqConfig::new("a")
                .plaintext()
                .listen("tcp://127.0.0.1:0")
                .peer("b", &endpoint),
        )
        .unwrap();
        let a_endpoint = ta.endpoints()[0].clone();
        let tb2 = tb.clone();
        tb.connect("a", &a_endpoint).unwrap();
        let b = Node::start(NodeConfig::new("b").peers(["a"]), tb).unwrap();
        b.export("echo", &spawn(Echo)).unwrap().accept::<Hello>();
        let a = Node::start(NodeConfig::new("a").peers(["b"]), ta).unwrap();
        let echo = a.lookup::<Echo>("echo");
        for i in 0..100 {
            let r = echo.ask(Hello("hi".into(), i)).await;
            assert_eq!(r, Ok(format!("hi #{i}")));
        }
        // b shuts down cleanly: a's next ask waits for the name, then fails typed.
        b.shutdown();
        tb2.close();
        tern_executor::time::sleep(Duration::from_millis(300)).await;
        let r = echo
            .ask(Hello("gone".into(), 0))
            .timeout(Duration::from_secs(3))
            .await;
        // b withdrew its exports as it shut down: the name was hosted, and is not now.
        assert_eq!(
            r,
            Err(CallError::NotHosted {
                name: "echo".into()
            })
        );
    });
}
