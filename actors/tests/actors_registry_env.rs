//! Names, the container-wide environment, timers, and entry from other threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_actors::{
    Actor, ActorError, Context, Environment, Handler, RegistryError, SendError, build, lookup,
    spawn,
};
use tern_executor::{Runtime, time};

struct Named;
impl Actor for Named {}
struct Other;
impl Actor for Other {}

#[test]
fn names_resolve_to_typed_addresses_and_are_released_on_stop() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let a = build(|| Named).spawn_named("svc").unwrap();
        assert_eq!(lookup::<Named>("svc").unwrap(), a);
        assert!(matches!(
            build(|| Named).spawn_named("svc"),
            Err(RegistryError::NameTaken(_))
        ));
        assert!(matches!(
            lookup::<Other>("svc"),
            Err(RegistryError::WrongType { .. })
        ));
        a.stop();
        a.stopped().await;
        assert!(matches!(
            lookup::<Named>("svc"),
            Err(RegistryError::NotFound(_))
        ));
        build(|| Named).spawn_named("svc").unwrap();
    });
}

struct Hits(u32);

struct Ticker {
    ticks: Rc<RefCell<Vec<Duration>>>,
}
impl Actor for Ticker {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.env().insert(Hits(0));
        ctx.send_every(Duration::from_secs(1), Tick);
        ctx.send_after(Duration::from_millis(2500), Tick);
        Ok(())
    }
}
#[derive(Clone)]
struct Tick;
impl Handler<Tick> for Ticker {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.ticks
            .borrow_mut()
            .push(time::now() - tern_executor::Instant::ZERO);
        let env = Environment::current();
        let n = env.get::<Hits>().map_or(0, |h| h.0);
        env.insert(Hits(n + 1));
    }
}

#[test]
fn timers_deliver_on_schedule_and_end_with_the_incarnation() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let ticks = Rc::new(RefCell::new(Vec::new()));
    rt.block_on(async {
        let t = spawn(Ticker {
            ticks: ticks.clone(),
        });
        time::sleep(Duration::from_millis(3500)).await;
        t.stop();
        t.stopped().await;
        time::sleep(Duration::from_secs(10)).await; // no more ticks after the stop
        assert_eq!(Environment::current().get::<Hits>().unwrap().0, 4);
    });
    let secs: Vec<u128> = ticks.borrow().iter().map(Duration::as_millis).collect();
    assert_eq!(secs, [1000, 2000, 2500, 3000]);
}

struct Sum(u64);
impl Actor for Sum {}
impl Handler<(u8, u64)> for Sum {
    type Reply = u64;
    async fn handle(&mut self, m: (u8, u64), _: &mut Context<Self>) -> u64 {
        self.0 += m.1;
        self.0
    }
}
struct Seen;
impl Handler<Seen> for Sum {
    type Reply = u64;
    async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> u64 {
        self.0
    }
}

#[test]
fn other_threads_send_through_a_remote_address_in_order() {
    let rt = Runtime::new().unwrap();
    let (sum, remote) = rt.block_on(async {
        let sum = spawn(Sum(0));
        let remote = sum.remote();
        (sum, remote)
    });
    let replies = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2u8)
            .map(|t| {
                let remote = remote.clone();
                s.spawn(move || {
                    let mut sent = 0;
                    while sent < 100 {
                        match remote.try_tell((t, 1)) {
                            Ok(()) => sent += 1,
                            Err(SendError::Full(_)) => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    remote.ask((t, 0)).unwrap()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let total = rt.block_on(async {
        let mut last = Vec::new();
        for r in replies {
            // The reply of a thread's final ask counts every tell that thread sent before.
            last.push(r.await.unwrap());
        }
        assert!(last.iter().all(|&v| v >= 100));
        sum.ask(Seen).await.unwrap()
    });
    assert_eq!(total, 200);
}
