//! loom models of every path another thread can take into a container.
//!
//! Run with `RUSTFLAGS="--cfg tern_loom" cargo test -p tern-executor --release --lib loom`.
//! The models use the crate's own `ParkState`, `Injector` and `crossing` channel through
//! the `sync` facade, so loom explores the code that ships.

use std::collections::VecDeque;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crate::crossing;
use crate::parker::{ParkState, Signal};
use crate::queue::Injector;

/// Stands in for the notify descriptor: a flag and a condition variable.
#[derive(Default)]
struct CondSignal {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Signal for CondSignal {
    fn signal(&self) {
        *self.flag.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

impl CondSignal {
    fn wait(&self) {
        let mut f = self.flag.lock().unwrap();
        while !*f {
            f = self.cv.wait(f).unwrap();
        }
        *f = false;
    }
}

struct Shared {
    injector: Injector<u32>,
    park: ParkState,
    signal: CondSignal,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            injector: Injector::new(),
            park: ParkState::new(),
            signal: CondSignal::default(),
        })
    }

    /// What `Remote::schedule` does from a foreign thread.
    fn push(&self, v: u32) {
        self.injector.push(v);
        self.park.unpark(&self.signal);
    }

    /// The runtime loop, reduced: drain, else park (re-checking after PARKED).
    fn take(&self, want: usize) -> Vec<u32> {
        let mut got = VecDeque::new();
        while got.len() < want {
            if self.injector.drain_into(&mut got) > 0 {
                continue;
            }
            self.park.park(|| {
                if !self.injector.maybe_nonempty() {
                    self.signal.wait();
                }
            });
        }
        got.into()
    }
}

#[test]
fn loom_wake_from_another_thread_is_never_lost() {
    loom::model(|| {
        let s = Shared::new();
        let p = s.clone();
        let t = thread::spawn(move || p.push(1));
        // If a wake could be lost, this would block forever and loom reports a deadlock.
        assert_eq!(s.take(1), [1]);
        t.join().unwrap();
    });
}

#[test]
fn loom_two_threads_each_keep_their_order() {
    loom::model(|| {
        let s = Shared::new();
        let (a, b) = (s.clone(), s.clone());
        let ta = thread::spawn(move || {
            a.push(1);
            a.push(2);
        });
        let tb = thread::spawn(move || b.push(10));
        let got = s.take(3);
        let pos = |v| got.iter().position(|&x| x == v).unwrap();
        assert!(pos(1) < pos(2), "thread A's order broken: {got:?}");
        assert!(got.contains(&10));
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

#[test]
fn loom_crossing_keeps_order_per_thread_and_wakes_receiver() {
    loom::model(|| {
        let (tx, mut rx) = crossing::channel::<u32>(4);
        let tx2 = tx.clone();
        let ta = thread::spawn(move || {
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
        });
        let tb = thread::spawn(move || {
            tx2.try_send(10).unwrap();
        });
        let got = loom::future::block_on(async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(got.len(), 3);
        let pos = |v| got.iter().position(|&x| x == v).unwrap();
        assert!(pos(1) < pos(2));
    });
}

#[test]
fn loom_shutdown_with_pending_messages_neither_leaks_nor_panics() {
    loom::model(|| {
        let (tx, rx) = crossing::channel::<Arc<()>>(2);
        let payload = Arc::new(());
        let p = payload.clone();
        let t = thread::spawn(move || {
            // Either queued (then dropped with the receiver) or refused as Closed.
            match tx.try_send(p) {
                Ok(()) => {}
                Err(e) => drop(e.into_inner()),
            }
        });
        drop(rx);
        t.join().unwrap();
        assert_eq!(Arc::strong_count(&payload), 1, "a message leaked");
    });
}
