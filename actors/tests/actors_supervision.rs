//! Failures at the component boundary, restart policies, escalation, stop order.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_actors::{
    Actor, ActorError, Addr, AskError, Context, Handler, Restart, Supervision, build, spawn,
};
use tern_executor::{Runtime, time};

type Log = Rc<RefCell<Vec<String>>>;

struct Flaky {
    count: u32,
    log: Log,
}
impl Actor for Flaky {
    async fn started(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.log.borrow_mut().push("started".into());
        Ok(())
    }
}
struct Inc;
impl Handler<Inc> for Flaky {
    type Reply = u32;
    async fn handle(&mut self, _: Inc, _: &mut Context<Self>) -> u32 {
        self.count += 1;
        self.count
    }
}
struct Boom;
impl Handler<Boom> for Flaky {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom at {}", self.count);
    }
}
struct FailSoft;
impl Handler<FailSoft> for Flaky {
    type Reply = &'static str;
    async fn handle(&mut self, _: FailSoft, ctx: &mut Context<Self>) -> &'static str {
        ctx.fail("bad state");
        "replied anyway"
    }
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn a_panic_fails_the_ask_restarts_the_component_and_keeps_the_address() {
    quiet_panics();
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log: Log = Rc::default();
    rt.block_on(async {
        let l = log.clone();
        let c = build(move || Flaky {
            count: 0,
            log: l.clone(),
        })
        .spawn();
        assert_eq!(c.ask(Inc).await, Ok(1));
        assert_eq!(c.ask(Inc).await, Ok(2));
        assert_eq!(
            c.ask(Boom).await,
            Err(AskError::HandlerPanicked("boom at 2".into()))
        );
        // Same address, fresh state from the factory.
        assert_eq!(c.ask(Inc).await, Ok(1));
        // A soft failure delivers its reply, then restarts.
        assert_eq!(c.ask(FailSoft).await, Ok("replied anyway"));
        assert_eq!(c.ask(Inc).await, Ok(1));
        let s = c.stats();
        assert_eq!((s.restarts, s.failures), (2, 2));
    });
    assert_eq!(*log.borrow(), ["started", "started", "started"]);
}

#[test]
fn restart_never_stops_the_component_for_good() {
    quiet_panics();
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let c = spawn(Flaky {
            count: 0,
            log: Rc::default(),
        });
        assert!(matches!(
            c.ask(Boom).await,
            Err(AskError::HandlerPanicked(_))
        ));
        c.stopped().await;
        assert_eq!(c.ask(Inc).await, Err(AskError::Stopped));
    });
}

#[test]
fn restarts_back_off_exponentially_and_stop_when_the_window_is_exhausted() {
    quiet_panics();
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let c = build(|| Flaky {
            count: 0,
            log: Rc::default(),
        })
        .supervision(Supervision {
            restart: Restart::OnFailure,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            max_restarts: 3,
            window: Duration::from_secs(60),
        })
        .spawn();
        let t0 = time::now();
        let mut restarted_at = Vec::new();
        for _ in 0..3 {
            let _ = c.ask(Boom).await;
            assert_eq!(c.ask(Inc).await, Ok(1)); // waits out the backoff
            restarted_at.push(time::now() - t0);
        }
        assert_eq!(
            restarted_at,
            [
                Duration::from_millis(100),
                Duration::from_millis(300),
                Duration::from_millis(700)
            ]
        );
        let _ = c.ask(Boom).await; // the fourth failure exhausts the policy
        c.stopped().await;
        assert_eq!(c.stats().restarts, 3);
    });
}

struct Parent {
    log: Log,
    child_policy: Supervision,
    kids: Vec<Addr<Child>>,
}
impl Actor for Parent {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.log.borrow_mut().push("parent started".into());
        for name in ["a", "b"] {
            let log = self.log.clone();
            let kid = ctx.spawn_child(
                build(move || Child {
                    name,
                    log: log.clone(),
                })
                .supervision(self.child_policy),
            );
            self.kids.push(kid);
        }
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.borrow_mut().push("parent stopped".into());
    }
}
struct Child {
    name: &'static str,
    log: Log,
}
impl Actor for Child {
    async fn started(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.log.borrow_mut().push(format!("{} started", self.name));
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.borrow_mut().push(format!("{} stopped", self.name));
    }
}
struct Kid(usize);
impl Handler<Kid> for Parent {
    type Reply = Addr<Child>;
    async fn handle(&mut self, k: Kid, _: &mut Context<Self>) -> Addr<Child> {
        self.kids[k.0].clone()
    }
}
impl Handler<Boom> for Child {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("child boom");
    }
}

fn parent(
    log: &Log,
    child_policy: Supervision,
) -> tern_actors::Spawn<Parent, impl FnMut() -> Option<Parent> + 'static> {
    let log = log.clone();
    build(move || Parent {
        log: log.clone(),
        child_policy,
        kids: Vec::new(),
    })
}

#[test]
fn stopping_a_parent_stops_children_newest_first_then_the_parent() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log: Log = Rc::default();
    rt.block_on(async {
        let p = parent(&log, Supervision::default()).spawn();
        let a = p.ask(Kid(0)).await.unwrap();
        p.stop();
        p.stopped().await;
        assert!(a.is_stopped());
    });
    assert_eq!(
        *log.borrow(),
        [
            "parent started",
            "a started",
            "b started",
            "b stopped",
            "a stopped",
            "parent stopped"
        ]
    );
}

#[test]
fn a_child_that_exhausts_its_restarts_escalates_and_its_parent_restarts() {
    quiet_panics();
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log: Log = Rc::default();
    rt.block_on(async {
        let escalating = Supervision {
            restart: Restart::OnFailure,
            max_restarts: 1,
            ..Supervision::default()
        };
        let p = parent(&log, escalating).restart(Restart::OnFailure).spawn();
        let b = p.ask(Kid(1)).await.unwrap();
        let _ = b.ask(Boom).await; // restarted once
        let _ = b.ask(Boom).await; // exhausted: escalates to the parent
        b.stopped().await;
        // The parent failed and restarted, with fresh children.
        let new_b = p.ask(Kid(1)).await.unwrap();
        assert_ne!(new_b, b);
        assert!(!new_b.is_stopped());
        assert_eq!(p.stats().restarts, 1);
        p.stop();
        p.stopped().await;
    });
    let log = log.borrow();
    assert_eq!(log.iter().filter(|l| *l == "parent started").count(), 2);
    assert_eq!(log.iter().filter(|l| *l == "b started").count(), 3);
}

struct Quitter {
    log: Log,
}
impl Actor for Quitter {
    async fn started(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.log.borrow_mut().push("started".into());
        Ok(())
    }
}
struct Quit;
impl Handler<Quit> for Quitter {
    type Reply = ();
    async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[test]
fn restart_always_restarts_after_a_normal_stop_but_not_after_a_requested_one() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log: Log = Rc::default();
    rt.block_on(async {
        let l = log.clone();
        let q = build(move || Quitter { log: l.clone() })
            .restart(Restart::Always)
            .spawn();
        q.ask(Quit).await.unwrap(); // normal exit: restarted
        q.ask(Quit).await.unwrap(); // and again
        q.ask(Quit).await.unwrap();
        time::sleep(Duration::from_secs(1)).await; // let the last backoff run out
        assert!(!q.is_stopped());
        assert_eq!(q.stats().restarts, 3);
        q.stop(); // requested: final, even under Always
        q.stopped().await;
        assert_eq!(q.stats().restarts, 3);
        // With OnFailure, a normal exit is final.
        let l = log.clone();
        let once = build(move || Quitter { log: l.clone() }).spawn();
        once.ask(Quit).await.unwrap();
        once.stopped().await;
        assert_eq!(once.stats().restarts, 0);
    });
    assert_eq!(log.borrow().len(), 5);
}
