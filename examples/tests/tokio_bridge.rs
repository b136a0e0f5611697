//! `tern::compat::tokio`: a component awaits futures that need tokio (its timers, its
//! channels), a panic there comes back as a typed error, dropping the task cancels it,
//! and dropping the bridge stops its thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tern::compat::tokio::{Tokio, TokioError};
use tern::prelude::*;

struct Client {
    io: Tokio,
}
impl Actor for Client {}

/// Sleeps on tokio's timer, then answers `n * 2` through a tokio channel.
struct Call(u64);
impl Handler<Call> for Client {
    type Reply = Result<u64, TokioError>;
    async fn handle(&mut self, m: Call, _: &mut Context<Self>) -> Result<u64, TokioError> {
        self.io
            .run(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel(1);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let _ = tx.send(m.0 * 2).await;
                });
                rx.recv().await.unwrap_or(0)
            })
            .await
    }
}

struct Fail;
impl Handler<Fail> for Client {
    type Reply = Result<(), TokioError>;
    async fn handle(&mut self, _: Fail, _: &mut Context<Self>) -> Result<(), TokioError> {
        self.io
            .run(async { panic!("expected: a failing tokio call") })
            .await
    }
}

#[test]
fn a_component_awaits_tokio_futures_while_others_run() {
    Runtime::new().unwrap().block_on(async {
        let client = spawn(Client {
            io: Tokio::start().unwrap(),
        });
        // Several calls in flight from several callers; the container keeps running.
        let calls: Vec<_> = (1..=5)
            .map(|i| spawn_task(client.ask(Call(i)).into_future()))
            .collect();
        let mut answers = Vec::new();
        for c in calls {
            answers.push(c.await.unwrap().unwrap().unwrap());
        }
        assert_eq!(answers, [2, 4, 6, 8, 10]);
        match client.ask(Fail).await {
            Ok(Err(TokioError::Panicked(m))) => assert!(m.contains("expected"), "{m}"),
            other => panic!("a panic on the tokio side gave {other:?}"),
        }
        // The component is still there after the failed call.
        assert_eq!(client.ask(Call(21)).await, Ok(Ok(42)));
    });
}

#[test]
fn dropping_the_task_cancels_it_and_dropping_the_bridge_stops_it() {
    let io = Tokio::start().unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    Runtime::new().unwrap().block_on(async {
        let task = io.run(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flag.store(true, Ordering::SeqCst);
        });
        time::sleep(Duration::from_millis(20)).await;
        drop(task);
        time::sleep(Duration::from_millis(400)).await;
    });
    assert!(
        !finished.load(Ordering::SeqCst),
        "the dropped task still ran"
    );
    // The runtime's tasks stop and its thread is joined (bounded by the shutdown
    // timeout); a task still pending is cancelled.
    let never = io.run(std::future::pending::<()>());
    drop(io);
    let got = Runtime::new().unwrap().block_on(never);
    assert_eq!(got, Err(TokioError::Cancelled));
}
