//! Real I/O through the reactor, and wakes and messages from other threads.

use std::cell::Cell;
use std::net::UdpSocket;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tern_executor::{Async, Runtime, ZmqSocket, crossing, spawn, time};

#[test]
fn zeromq_and_udp_share_one_poll_loop() {
    let rt = Runtime::new().unwrap();
    let ctx = zmq::Context::new();
    let (zmq_got, udp_got) = rt.block_on(async {
        let pull = ZmqSocket::new(ctx.socket(zmq::PULL).unwrap());
        pull.get_ref().bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = pull.get_ref().get_last_endpoint().unwrap().unwrap();
        let push = ZmqSocket::new(ctx.socket(zmq::PUSH).unwrap());
        push.get_ref().connect(&endpoint).unwrap();

        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let (a, b) = (Async::new(a), Async::new(b));
        let b_addr = b.get_ref().local_addr().unwrap();

        // Both receivers wait in the reactor at the same time.
        let zmq_rx = spawn(async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(pull.recv_bytes().await.unwrap());
            }
            got
        });
        let udp_rx = spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            for _ in 0..3 {
                let (n, _) = b.read_with(|s| s.recv_from(&mut buf)).await.unwrap();
                got.push(buf[..n].to_vec());
            }
            got
        });
        for i in 0..3u8 {
            push.send(&[b'z', i], 0).await.unwrap();
            a.write_with(|s| s.send_to(&[b'u', i], b_addr))
                .await
                .unwrap();
            time::sleep(Duration::from_millis(1)).await;
        }
        (zmq_rx.await.unwrap(), udp_rx.await.unwrap())
    });
    assert_eq!(zmq_got, [vec![b'z', 0], vec![b'z', 1], vec![b'z', 2]]);
    assert_eq!(udp_got, [vec![b'u', 0], vec![b'u', 1], vec![b'u', 2]]);
}

#[test]
fn a_waker_fired_from_another_thread_wakes_a_blocked_runtime() {
    let rt = Runtime::new().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let slot: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
    let (f2, s2) = (flag.clone(), slot.clone());
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // Wait until the runtime has parked with the waker stored, then wake it.
            loop {
                if let Some(w) = s2.lock().unwrap().take() {
                    std::thread::sleep(Duration::from_millis(20));
                    f2.store(true, Ordering::SeqCst);
                    w.wake();
                    break;
                }
                std::thread::yield_now();
            }
        });
        rt.block_on(std::future::poll_fn(|cx: &mut Context<'_>| {
            if flag.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
        }));
    });
    assert!(rt.stats().parks >= 1);
}

#[test]
fn messages_from_other_threads_keep_per_thread_order() {
    let rt = Runtime::new().unwrap();
    let (tx, mut rx) = crossing::channel::<(u8, u32)>(64);
    const N: u32 = 2_000;
    let got = std::thread::scope(|scope| {
        for t in 0..3u8 {
            let tx = tx.clone();
            scope.spawn(move || {
                let mut i = 0;
                while i < N {
                    match tx.try_send((t, i)) {
                        Ok(()) => i += 1,
                        Err(crossing::TrySendError::Full(_)) => std::thread::yield_now(),
                        Err(crossing::TrySendError::Closed(_)) => panic!("closed"),
                    }
                }
            });
        }
        drop(tx);
        rt.block_on(async {
            let mut got = Vec::new();
            while let Some(m) = rx.recv().await {
                got.push(m);
            }
            got
        })
    });
    assert_eq!(got.len(), 3 * N as usize);
    for t in 0..3u8 {
        let seq: Vec<u32> = got.iter().filter(|m| m.0 == t).map(|m| m.1).collect();
        assert_eq!(seq, (0..N).collect::<Vec<_>>(), "thread {t} out of order");
    }
}

/// Hammer one task with wakes from several threads; its poll must never overlap itself
/// and every wake must lead to a poll that sees the latest count.
#[test]
fn a_task_woken_from_many_threads_is_never_polled_twice_at_once() {
    let rt = Runtime::new().unwrap();
    let woken = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let slot: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
    let in_poll = Rc::new(Cell::new(false));
    const WAKES: u32 = 5_000;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (woken, slot) = (woken.clone(), slot.clone());
            scope.spawn(move || {
                for _ in 0..WAKES {
                    woken.fetch_add(1, Ordering::SeqCst);
                    let w = slot.lock().unwrap().clone();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            });
        }
        let (woken, slot, in_poll) = (woken.clone(), slot.clone(), in_poll.clone());
        rt.block_on(async move {
            let task = spawn(std::future::poll_fn(move |cx: &mut Context<'_>| {
                assert!(!in_poll.replace(true), "polled twice at once");
                *slot.lock().unwrap() = Some(cx.waker().clone());
                let done = woken.load(Ordering::SeqCst) >= 2 * WAKES;
                in_poll.set(false);
                if done { Poll::Ready(()) } else { Poll::Pending }
            }));
            // Guard against a lost final wake turning into a hang: the test fails instead.
            time::timeout(Duration::from_secs(30), task)
                .await
                .expect("a wake was lost")
                .unwrap();
        });
    });
}

#[test]
fn multipart_messages_cross_a_router_dealer_pair_intact() {
    let rt = Runtime::new().unwrap();
    let ctx = zmq::Context::new();
    let got = rt.block_on(async {
        let router = ZmqSocket::new(ctx.socket(zmq::ROUTER).unwrap());
        router.get_ref().set_router_mandatory(true).unwrap();
        router.get_ref().bind("inproc://multipart").unwrap();
        let dealer = ZmqSocket::new(ctx.socket(zmq::DEALER).unwrap());
        dealer.get_ref().set_identity(b"d1").unwrap();
        dealer.get_ref().connect("inproc://multipart").unwrap();
        dealer
            .send_multipart([&b"head"[..], b"", b"body"])
            .await
            .unwrap();
        let frames = router.recv_multipart().await.unwrap();
        // Reply through the identity frame the router prepended.
        router.send_multipart(&frames).await.unwrap();
        dealer.recv_multipart().await.unwrap()
    });
    assert_eq!(got, [b"head".to_vec(), vec![], b"body".to_vec()]);
}
