//! One message at a time, per-sender order, and other components running meanwhile.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::{Runtime, time};

type Log = Rc<RefCell<Vec<String>>>;

struct Slow {
    log: Log,
}
impl Actor for Slow {}

struct Work(u32);
impl Handler<Work> for Slow {
    type Reply = ();
    async fn handle(&mut self, w: Work, _: &mut Context<Self>) {
        self.log.borrow_mut().push(format!("start {}", w.0));
        time::sleep(Duration::from_millis(10)).await;
        self.log.borrow_mut().push(format!("end {}", w.0));
    }
}

struct Fast {
    log: Log,
}
impl Actor for Fast {}
impl Handler<u32> for Fast {
    type Reply = ();
    async fn handle(&mut self, n: u32, _: &mut Context<Self>) {
        self.log.borrow_mut().push(format!("fast {n}"));
    }
}

#[test]
fn a_handler_that_awaits_blocks_its_own_mailbox_but_not_other_components() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log: Log = Rc::default();
    rt.block_on(async {
        let slow = spawn(Slow { log: log.clone() });
        let fast = spawn(Fast { log: log.clone() });
        slow.try_tell(Work(1)).unwrap();
        slow.try_tell(Work(2)).unwrap();
        // Let `slow` start message 1 and suspend in its sleep.
        time::sleep(Duration::from_millis(1)).await;
        fast.try_tell(7).unwrap();
        time::sleep(Duration::from_millis(1)).await;
        slow.ask(Work(3)).await.unwrap();
    });
    let log = log.borrow();
    assert_eq!(
        *log,
        [
            "start 1", "fast 7", "end 1", "start 2", "end 2", "start 3", "end 3"
        ],
        "message 2 must not start before 1 ends, while `fast` runs during 1"
    );
}

struct Recorder {
    seen: Rc<RefCell<Vec<(u8, u32)>>>,
}
impl Actor for Recorder {}
impl Handler<(u8, u32)> for Recorder {
    type Reply = ();
    async fn handle(&mut self, m: (u8, u32), _: &mut Context<Self>) {
        self.seen.borrow_mut().push(m);
        if m.1.is_multiple_of(7) {
            tern_executor::yield_now().await;
        }
    }
}

#[test]
fn messages_from_one_sender_arrive_in_order() {
    let rt = Runtime::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    const N: u32 = 500;
    rt.block_on(async {
        let rec = tern_actors::build({
            let seen = seen.clone();
            move || Recorder { seen: seen.clone() }
        })
        .mailbox(8) // small: senders must wait for room and interleave
        .spawn();
        let senders: Vec<_> = (0..4u8)
            .map(|s| {
                let rec = rec.clone();
                tern_executor::spawn(async move {
                    for i in 0..N {
                        rec.tell((s, i)).await.unwrap();
                        if i.is_multiple_of(3) {
                            tern_executor::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.unwrap();
        }
        rec.stop();
        rec.stopped().await;
    });
    let seen = seen.borrow();
    assert_eq!(seen.len(), 4 * N as usize);
    for s in 0..4u8 {
        let order: Vec<u32> = seen.iter().filter(|m| m.0 == s).map(|m| m.1).collect();
        assert_eq!(order, (0..N).collect::<Vec<_>>(), "sender {s}");
    }
    // Interleaving across senders happened (the promise is only per sender).
    assert!(seen.windows(2).any(|w| w[0].0 != w[1].0));
}

struct Journal {
    seen: Rc<RefCell<Vec<u32>>>,
}
impl Actor for Journal {}
impl Handler<u32> for Journal {
    type Reply = u32;
    async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> u32 {
        self.seen.borrow_mut().push(n);
        n
    }
}

/// `RemoteAddr` keeps one thread's order across asks and tells: an ask sent before a
/// tell is queued before it, also when the mailbox is full and both must wait for room.
#[test]
fn remote_addr_ask_then_tell_from_one_thread_keeps_order() {
    for mailbox in [16, 1] {
        let rt = Runtime::new().unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let (journal, remote) = rt.block_on(async {
            let journal = tern_actors::build({
                let seen = seen.clone();
                move || Journal { seen: seen.clone() }
            })
            .mailbox(mailbox)
            .spawn();
            let remote = journal.remote();
            (journal, remote)
        });
        let replies = std::thread::scope(|s| {
            s.spawn(move || {
                let mut replies = Vec::new();
                for i in 0..20u32 {
                    if i.is_multiple_of(2) {
                        replies.push(remote.ask(i).unwrap());
                    } else {
                        remote.try_tell(i).unwrap();
                    }
                }
                replies
            })
            .join()
            .unwrap()
        });
        rt.block_on(async {
            for (i, r) in replies.into_iter().enumerate() {
                assert_eq!(r.await, Ok(u32::try_from(i).unwrap() * 2));
            }
            journal.stop();
            journal.stopped().await;
        });
        assert_eq!(
            *seen.borrow(),
            (0..20).collect::<Vec<_>>(),
            "mailbox {mailbox}"
        );
    }
}
