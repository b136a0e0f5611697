//! Timers and clocks: virtual jumps, stable order, timeouts, intervals, real time.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::time::{self, Instant};
use tern_executor::{Runtime, spawn};

#[test]
fn virtual_time_jumps_to_the_next_timer() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        time::sleep(Duration::from_secs(3600)).await;
    });
    assert_eq!(rt.clock().now(), Instant::ZERO + Duration::from_secs(3600));
}

#[test]
fn equal_deadlines_fire_in_creation_order() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    rt.block_on(async {
        let at = time::now() + Duration::from_millis(10);
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let log = log.clone();
                spawn(async move {
                    time::sleep_until(at).await;
                    log.borrow_mut().push(i);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
}

#[test]
fn timeout_and_interval() {
    let rt = Runtime::builder().virtual_time().build().unwrap();
    rt.block_on(async {
        let r = time::timeout(Duration::from_secs(1), time::sleep(Duration::from_secs(5))).await;
        assert_eq!(r, Err(time::Elapsed));
        assert_eq!(time::now(), Instant::ZERO + Duration::from_secs(1));

        let mut iv = time::interval(Duration::from_millis(100));
        let t0 = iv.tick().await;
        let t1 = iv.tick().await;
        // Miss three ticks: they are skipped, phase kept.
        time::sleep(Duration::from_millis(350)).await;
        let overdue = iv.tick().await; // the late tick fires at once...
        assert_eq!(time::now() - t0, Duration::from_millis(450));
        let t3 = iv.tick().await; // ...and the schedule resumes in phase
        assert_eq!(t1 - t0, Duration::from_millis(100));
        assert_eq!(overdue - t0, Duration::from_millis(200));
        assert_eq!(t3 - t0, Duration::from_millis(500));
    });
}

#[test]
fn real_time_sleep_waits_at_least_the_duration() {
    let rt = Runtime::new().unwrap();
    let clock = rt.clock().clone();
    let t0 = clock.now();
    rt.block_on(async { time::sleep(Duration::from_millis(20)).await });
    assert!(clock.now() - t0 >= Duration::from_millis(20));
}
