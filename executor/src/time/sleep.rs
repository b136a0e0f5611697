//! Timer-backed futures: `Sleep`, `Timeout`, `Interval`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;
use super::timers::TimerKey;
use crate::runtime::Core;

/// Waits until `duration` has passed on the runtime's clock.
///
/// The duration counts from the scheduler's last clock reading (taken at least once per
/// poll budget while busy, and whenever the loop goes idle), so on a real clock the sleep
/// may end up to one poll budget of work early; under a virtual clock it is exact.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::{Runtime, time};
///
/// Runtime::new().unwrap().block_on(async {
///     time::sleep(Duration::from_millis(1)).await;
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let core = Core::current();
    let deadline = core.turn_now() + duration;
    Sleep::new(core, deadline)
}

/// Waits until the runtime's clock reaches `deadline`.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(Core::current(), deadline)
}

/// A future that completes at a deadline. Dropping it cancels the timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    core: Rc<Core>,
    deadline: Instant,
    key: Option<TimerKey>,
}

impl Sleep {
    fn new(core: Rc<Core>, deadline: Instant) -> Self {
        Self {
            core,
            deadline,
            key: None,
        }
    }

    /// When this sleep completes.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, keeping the same future.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    /// Whether the deadline has passed.
    #[must_use]
    pub fn is_elapsed(&self) -> bool {
        self.core.turn_now() >= self.deadline
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            self.core.timers().cancel(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_elapsed() {
            self.cancel();
            return Poll::Ready(());
        }
        let this = &mut *self;
        let mut timers = this.core.timers();
        match this.key {
            Some(key) if timers.update(key, cx.waker()) => {}
            _ => this.key = Some(timers.insert(this.deadline, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // A runtime being torn down may already hold its timer table.
            if let Some(mut timers) = self.core.try_timers() {
                timers.cancel(key);
            }
        }
    }
}

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `future` until it completes or `duration` passes, whichever is first.
///
/// The future is polled before the deadline is checked, so a future that is ready at
/// the deadline wins.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::{Runtime, time};
///
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async {
///     let slow = time::sleep(Duration::from_secs(10));
///     assert!(time::timeout(Duration::from_secs(1), slow).await.is_err());
///     assert_eq!(time::timeout(Duration::from_secs(1), async { 7 }).await, Ok(7));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

pin_project_lite::pin_project! {
    /// A future with a deadline; see [`timeout`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks every `period`, the first tick at once.
///
/// When ticks are missed (the task was busy), the missed ones are skipped and the
/// next tick keeps the original schedule's phase.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::{Runtime, time};
///
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async {
///     let mut every = time::interval(Duration::from_secs(1));
///     let t0 = every.tick().await;
///     let t1 = every.tick().await;
///     assert_eq!(t1 - t0, Duration::from_secs(1));
/// });
/// ```
///
/// # Panics
///
/// Panics if `period` is zero.
pub fn interval(period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    let core = Core::current();
    let start = core.turn_now();
    Interval {
        period,
        sleep: Sleep::new(core, start),
    }
}

/// A periodic timer; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    pub async fn tick(&mut self) -> Instant {
        (&mut self.sleep).await;
        let scheduled = self.sleep.deadline();
        let now = self.sleep.core.turn_now();
        let mut next = scheduled + self.period;
        if next <= now {
            let behind = (now - scheduled).as_nanos() / self.period.as_nanos();
            let skip = u32::try_from(behind).unwrap_or(u32::MAX);
            next = scheduled + self.period.saturating_mul(skip.saturating_add(1));
        }
        self.sleep.reset(next);
        scheduled
    }

    /// The tick period.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_lite::future;

    use super::*;
    use crate::Runtime;

    fn queued() -> (usize, usize) {
        let core = Core::current();
        let timers = core.timers();
        (timers.len(), timers.heap_len())
    }

    #[test]
    fn dropped_sleeps_and_timeouts_leave_the_timer_queue_at_once() {
        let rt = Runtime::builder().virtual_time().build().unwrap();
        rt.block_on(async {
            // A timer that outlives everything below (a heartbeat, a gossip period).
            let mut long = std::pin::pin!(sleep(Duration::from_secs(3_600)));
            assert!(future::poll_once(long.as_mut()).await.is_none());
            for _ in 0..1_000_000 {
                // An ask's timeout: armed, then dropped when the reply wins.
                let pending = future::pending::<()>();
                let t = timeout(Duration::from_secs(30), pending);
                assert!(future::poll_once(t).await.is_none());
            }
            assert_eq!(queued(), (1, 1));
            let mut s = sleep(Duration::from_secs(1));
            assert!(future::poll_once(&mut s).await.is_none());
            assert_eq!(queued(), (2, 2));
            s.reset(Instant::from_nanos(5));
            assert_eq!(queued(), (1, 1));
            drop(s);
            long.await;
            assert_eq!(queued(), (0, 0));
        });
    }
}
