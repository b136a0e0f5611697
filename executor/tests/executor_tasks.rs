//! Tasks: FIFO order, self-wakes to the back, panics contained, abort/detach/drop, budget.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::{JoinError, Runtime, spawn, time, yield_now};

#[test]
fn tasks_run_first_come_first_served_and_self_wakes_go_to_the_back() {
    let rt = Runtime::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    rt.block_on(async {
        let mut hs = Vec::new();
        for id in 0..3 {
            let log = log.clone();
            hs.push(spawn(async move {
                log.borrow_mut().push((id, 0));
                yield_now().await; // to the back of the queue
                log.borrow_mut().push((id, 1));
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(
        *log.borrow(),
        [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    );
}

#[test]
fn a_panicking_task_reports_through_its_handle_and_the_runtime_keeps_running() {
    let rt = Runtime::new().unwrap();
    let out = rt.block_on(async {
        let bad = spawn(async { panic!("boom") });
        let good = spawn(async { 5 });
        let err = bad.await.unwrap_err();
        assert!(
            matches!(&err, JoinError::Panicked(m) if m == "boom"),
            "{err}"
        );
        good.await.unwrap()
    });
    assert_eq!(out, 5);
    assert_eq!(rt.stats().tasks_panicked, 1);
    // Still usable afterwards.
    assert_eq!(rt.block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}

#[test]
fn dropping_a_handle_cancels_detach_keeps_running_abort_reports_aborted() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let hits = Rc::new(RefCell::new(Vec::new()));
    rt.block_on(async {
        let h1 = hits.clone();
        drop(spawn(async move {
            time::sleep(Duration::from_secs(1)).await;
            h1.borrow_mut().push("dropped");
        }));
        let h2 = hits.clone();
        spawn(async move {
            time::sleep(Duration::from_secs(1)).await;
            h2.borrow_mut().push("detached");
        })
        .detach();
        let h3 = hits.clone();
        let mut aborted = spawn(async move {
            time::sleep(Duration::from_secs(1)).await;
            h3.borrow_mut().push("aborted");
        });
        aborted.abort();
        assert!(matches!(aborted.await, Err(JoinError::Aborted)));
        time::sleep(Duration::from_secs(2)).await;
    });
    assert_eq!(*hits.borrow(), ["detached"]);
    assert_eq!(rt.stats().tasks_alive, 0);
}

#[test]
fn a_busy_task_cannot_starve_timers() {
    let rt = Runtime::builder().poll_budget(16).build().unwrap();
    let spins = rt.block_on(async {
        let stop = Rc::new(std::cell::Cell::new(false));
        let s = stop.clone();
        let spinner = spawn(async move {
            let mut n = 0u64;
            while !s.get() {
                n += 1;
                yield_now().await; // always ready again: a busy task
            }
            n
        });
        time::sleep(Duration::from_millis(5)).await;
        stop.set(true);
        spinner.await.unwrap()
    });
    assert!(spins > 0);
}

#[test]
fn dropping_the_runtime_drops_every_pending_future_on_its_thread() {
    struct Flag(Rc<std::cell::Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let dropped = Rc::new(std::cell::Cell::new(0));
    {
        let rt = Runtime::new().unwrap();
        for _ in 0..3 {
            let f = Flag(dropped.clone());
            rt.spawn(async move {
                let _f = f;
                std::future::pending::<()>().await;
            })
            .detach();
        }
        rt.block_on(yield_now());
        assert_eq!(dropped.get(), 0);
    }
    assert_eq!(dropped.get(), 3);
}

#[test]
fn run_until_idle_runs_ready_work_without_advancing_virtual_time() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (a, b) = (log.clone(), log.clone());
    rt.spawn(async move {
        a.borrow_mut().push("ready");
        yield_now().await;
        a.borrow_mut().push("after yield");
    })
    .detach();
    rt.spawn(async move {
        time::sleep(Duration::from_secs(1)).await;
        b.borrow_mut().push("timer");
    })
    .detach();
    let polled = rt.run_until_idle();
    assert!(polled >= 3);
    assert_eq!(*log.borrow(), ["ready", "after yield"]);
    assert_eq!(rt.clock().now(), tern_executor::Instant::ZERO);
    rt.block_on(async { time::sleep(Duration::from_secs(2)).await });
    assert_eq!(*log.borrow(), ["ready", "after yield", "timer"]);
}
