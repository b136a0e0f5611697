//! Bounded mailboxes, backpressure, deadlines, and what happens to queued messages.

use std::time::Duration;

use tern_actors::{Actor, AskError, Context, Handler, SendError, build, spawn};
use tern_executor::{Runtime, time};

struct Sink {
    got: Vec<u32>,
}
impl Actor for Sink {}
impl Handler<u32> for Sink {
    type Reply = ();
    async fn handle(&mut self, n: u32, _: &mut Context<Self>) {
        self.got.push(n);
    }
}
struct Get;
impl Handler<Get> for Sink {
    type Reply = Vec<u32>;
    async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> Vec<u32> {
        self.got.clone()
    }
}
struct Nap(Duration);
impl Handler<Nap> for Sink {
    type Reply = ();
    async fn handle(&mut self, n: Nap, _: &mut Context<Self>) {
        time::sleep(n.0).await;
    }
}

#[test]
fn try_tell_gives_the_message_back_when_full_and_tell_waits_for_room() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let sink = build(|| Sink { got: vec![] }).mailbox(2).spawn();
        sink.try_tell(1).unwrap();
        sink.try_tell(2).unwrap();
        match sink.try_tell(3) {
            Err(SendError::Full(m)) => assert_eq!(m, 3),
            other => panic!("expected Full, got {other:?}"),
        }
        // `tell` waits until the component drains its mailbox.
        sink.tell(3).await.unwrap();
        assert_eq!(sink.ask(Get).await.unwrap(), [1, 2, 3]);
        assert_eq!(sink.stats().handled, 4);
    });
}

#[test]
fn tell_and_ask_give_up_at_their_deadlines() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let sink = build(|| Sink { got: vec![] })
            .mailbox(1)
            .timeout(Duration::from_secs(2))
            .spawn();
        sink.try_tell(Nap(Duration::from_secs(60))).unwrap();
        tern_executor::yield_now().await; // it starts napping; the mailbox is empty again
        sink.try_tell(1).unwrap(); // now full
        let t0 = time::now();
        match sink.tell(2).timeout(Duration::from_millis(500)).await {
            Err(SendError::Timeout(m)) => assert_eq!(m, 2),
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert_eq!(time::now() - t0, Duration::from_millis(500));
        // The default deadline applies to asks (waiting for room counts).
        assert_eq!(sink.ask(Get).await, Err(AskError::Timeout));
        assert_eq!(time::now() - t0, Duration::from_millis(2500));
        // A per-call deadline overrides it.
        let r = sink.ask(Get).timeout(Duration::from_millis(10)).await;
        assert_eq!(r, Err(AskError::Timeout));
    });
}

#[test]
fn stop_overtakes_queued_messages_which_are_rejected_and_counted() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let sink = spawn(Sink { got: vec![] });
        sink.try_tell(Nap(Duration::from_secs(1))).unwrap();
        tern_executor::yield_now().await; // napping now
        sink.try_tell(1).unwrap();
        sink.try_tell(2).unwrap();
        let pending = tern_executor::spawn({
            let sink = sink.clone();
            async move { sink.ask(Get).await }
        });
        tern_executor::yield_now().await;
        sink.stop();
        sink.stopped().await;
        assert_eq!(pending.await.unwrap(), Err(AskError::Stopped));
        let stats = sink.stats();
        assert_eq!(stats.dropped, 3, "two tells and one ask rejected");
        assert_eq!(stats.handled, 1, "the nap in progress finished");
        assert!(matches!(sink.try_tell(9), Err(SendError::Stopped(9))));
        assert_eq!(sink.ask(Get).await, Err(AskError::Stopped));
    });
}

#[test]
fn capacity_can_change_at_run_time() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let sink = build(|| Sink { got: vec![] }).mailbox(1).spawn();
        sink.try_tell(1).unwrap();
        assert!(sink.try_tell(2).is_err());
        sink.set_mailbox_capacity(3);
        sink.try_tell(2).unwrap();
        sink.try_tell(3).unwrap();
        assert_eq!(sink.ask(Get).await.unwrap(), [1, 2, 3]);
    });
}
