//! `send_every` under virtual time: a component busy for several periods gets one late
//! tick and then the original schedule (skip, the default), or every missed tick back
//! to back (burst), and the ticks stop with the incarnation.

use std::time::Duration;

use tern_actors::{Actor, ActorError, Context, Handler, MissedTicks, spawn};
use tern_executor::{Runtime, time};

#[derive(Clone)]
struct Tick;

struct Poller {
    missed: Option<MissedTicks>,
    seen: Vec<u64>,
}
impl Actor for Poller {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let period = Duration::from_millis(100);
        match self.missed {
            Some(m) => ctx.send_every_with(period, Tick, m),
            None => ctx.send_every(period, Tick),
        }
        Ok(())
    }
}
impl Handler<Tick> for Poller {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.seen.push(time::now().as_nanos() / 1_000_000);
        if self.seen.len() == 2 {
            // Busy from 200 ms to 550 ms: the ticks at 300, 400 and 500 ms come due.
            time::sleep(Duration::from_millis(350)).await;
        }
    }
}
struct Seen;
impl Handler<Seen> for Poller {
    type Reply = Vec<u64>;
    async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

fn ticks_seen(missed: Option<MissedTicks>) -> Vec<u64> {
    let rt = Runtime::builder()
        .virtual_time()
        .build()
        .expect("a virtual-time runtime");
    rt.block_on(async {
        let p = spawn(Poller {
            missed,
            seen: Vec::new(),
        });
        time::sleep(Duration::from_millis(850)).await;
        p.ask(Seen).await.expect("the poller answers")
    })
}

#[test]
fn skip_is_the_default_one_late_tick_then_the_schedule() {
    let skip = ticks_seen(Some(MissedTicks::Skip));
    assert_eq!(skip, [100, 200, 550, 600, 700, 800]);
    assert_eq!(ticks_seen(None), skip);
}

#[test]
fn burst_delivers_every_missed_tick_back_to_back() {
    assert_eq!(
        ticks_seen(Some(MissedTicks::Burst)),
        [100, 200, 550, 550, 550, 600, 700, 800]
    );
}

#[test]
fn ticks_stop_with_the_component() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let p = spawn(Poller {
            missed: None,
            seen: Vec::new(),
        });
        time::sleep(Duration::from_millis(250)).await;
        assert_eq!(p.ask(Seen).await.unwrap(), [100, 200]);
        p.stop();
        // A stopped component's timers end: the runtime goes idle, virtual time
        // jumps, and nothing is delivered or logged as skipped in between.
        time::sleep(Duration::from_secs(3600)).await;
        assert!(p.is_stopped());
    });
}
