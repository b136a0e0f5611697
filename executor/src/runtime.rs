//! The runtime: one thread, one FIFO run queue, timers, and the reactor.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell, RefMut};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_task::Runnable;
use slab::Slab;

use crate::error::Error;
use crate::parker::ParkState;
use crate::queue::Injector;
use crate::reactor::{Notifier, Reactor};
use crate::sync::{Arc, AtomicBool, Ordering};
use crate::task::{self, JoinHandle};
use crate::time::timers::Timers;
use crate::time::{Clock, Instant};

mod builder;
mod turn;

pub use builder::Builder;

/// Tasks run per turn before timers and I/O are checked again.
pub const DEFAULT_POLL_BUDGET: usize = 256;

// Identity only (never affects order), so a plain std atomic even under loom.
static NEXT_RUNTIME_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// What other threads share with the runtime: the injector and the park state.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) id: u64,
    pub(crate) injector: Injector<Runnable>,
    pub(crate) park: ParkState,
    /// Created the first time the runtime blocks: a runtime that never blocks (one
    /// driven by the simulator) holds no descriptors. `std`'s `OnceLock`, not the
    /// loom facade: it is only ever set before the state can read PARKED.
    pub(crate) notifier: std::sync::OnceLock<Notifier>,
}

impl Remote {
    /// Schedules a runnable woken anywhere: on the runtime's thread straight onto the
    /// local queue, elsewhere through the injector plus an unpark.
    pub(crate) fn schedule(&self, runnable: Runnable) {
        let mut slot = Some(runnable);
        let _ = CURRENT.try_with(|cur| {
            if let Ok(cur) = cur.try_borrow()
                && let Some(core) = cur.as_ref()
                && core.remote.id == self.id
                && let Some(r) = slot.take()
            {
                core.local.borrow_mut().push_back(r);
            }
        });
        let leftover = slot;
        if let Some(runnable) = leftover {
            self.injector.push(runnable);
            self.park.unpark(&self.notifier);
        }
    }

    fn is_current_thread(&self) -> bool {
        CURRENT
            .try_with(|cur| {
                cur.try_borrow()
                    .ok()
                    .and_then(|c| c.as_ref().map(|c| c.remote.id == self.id))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
    }
}

/// Counters a runtime keeps about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Tasks spawned since the runtime started.
    pub tasks_spawned: u64,
    /// Tasks alive now.
    pub tasks_alive: u64,
    /// Tasks that ended in a panic.
    pub tasks_panicked: u64,
    /// Runnables polled.
    pub polls: u64,
    /// Turns of the run loop.
    pub turns: u64,
    /// Times the loop blocked waiting for I/O, a timer or a wake.
    pub parks: u64,
    /// Nanoseconds the loop spent blocked in those parks, on the runtime's clock
    /// (under virtual time a park takes no time, but a simulator node's runtime
    /// counts here the virtual time its thread was idle between polls); with the time
    /// since start, the thread's busy fraction.
    pub parked_nanos: u64,
}

/// The state of one runtime, owned by its thread.
pub(crate) struct Core {
    pub(crate) remote: Arc<Remote>,
    pub(crate) local: RefCell<VecDeque<Runnable>>,
    timers: RefCell<Timers>,
    clock: Clock,
    pub(crate) reactor: RefCell<Reactor>,
    pub(crate) tasks: RefCell<Slab<Waker>>,
    extensions: RefCell<BTreeMap<TypeId, Rc<dyn Any>>>,
    budget: usize,
    pub(crate) stats: Cell<RuntimeStats>,
    due: RefCell<Vec<Waker>>,
    /// The clock's value at the last timer check; `None` until the first read.
    turn_now: Cell<Option<Instant>>,
    /// Polls since timers and I/O were last checked.
    polls_since_check: Cell<usize>,
    /// The last id handed out by [`next_id`].
    last_id: Cell<u64>,
    /// Added to the wall clock [`crate::time::wall_now`] reads, in nanoseconds.
    wall_offset: Cell<i64>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.remote.id)
            .field("clock", &self.clock)
            .field("stats", &self.stats.get())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// The runtime whose thread this is.
    ///
    /// # Panics
    ///
    /// Outside a runtime: that is a programming error, and the message says how to fix it.
    pub(crate) fn current() -> Rc<Self> {
        Self::try_current().unwrap_or_else(|| {
            panic!("no tern runtime on this thread: call this inside Runtime::block_on")
        })
    }

    pub(crate) fn try_current() -> Option<Rc<Self>> {
        CURRENT
            .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
            .ok()
            .flatten()
    }

    pub(crate) fn with_current<R>(f: impl FnOnce(&Self) -> R) -> R {
        f(&Self::current())
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn wall_offset(&self) -> i64 {
        self.wall_offset.get()
    }

    /// The scheduler's idea of now: refreshed whenever the loop checks timers (at least
    /// once per poll budget while busy, and around every park), so creating a timer or
    /// a deadline costs no clock read. It lags the clock by at most one poll budget of
    /// work; [`crate::time::now`] reads the clock itself.
    pub(crate) fn turn_now(&self) -> Instant {
        if self.clock.is_virtual() {
            // Free to read, and it may be moved by a driver between turns.
            return self.clock.now();
        }
        match self.turn_now.get() {
            Some(t) => t,
            None => {
                let t = self.clock.now();
                self.turn_now.set(Some(t));
                t
            }
        }
    }

    /// Reads the clock now and makes that the turn's time.
    pub(crate) fn fresh_now(&self) -> Instant {
        let t = self.clock.now();
        self.turn_now.set(Some(t));
        t
    }

    pub(crate) fn timers(&self) -> RefMut<'_, Timers> {
        self.timers.borrow_mut()
    }

    pub(crate) fn try_timers(&self) -> Option<RefMut<'_, Timers>> {
        self.timers.try_borrow_mut().ok()
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut RuntimeStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// Per-runtime singleton of type `T`, created by `init` on first use.
    pub(crate) fn extension<T: 'static>(&self, init: impl FnOnce() -> T) -> Rc<T> {
        let id = TypeId::of::<T>();
        if let Some(v) = self.extensions.borrow().get(&id)
            && let Ok(v) = v.clone().downcast::<T>()
        {
            return v;
        }
        let v = Rc::new(init());
        self.extensions
            .borrow_mut()
            .insert(id, v.clone() as Rc<dyn Any>);
        v
    }
}

/// Sets `CURRENT` for the life of the guard, restoring the previous value after.
struct Enter {
    prev: Option<Rc<Core>>,
}

impl Enter {
    fn new(core: &Rc<Core>) -> Self {
        let prev = CURRENT.with(|c| c.replace(Some(core.clone())));
        Self { prev }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| c.replace(prev));
    }
}

/// The waker of `block_on`'s own future.
struct MainWake {
    ready: AtomicBool,
    remote: Arc<Remote>,
}

impl Wake for MainWake {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &StdArc<Self>) {
        self.ready.store(true, Ordering::Release);
        if !self.remote.is_current_thread() {
            self.remote.park.unpark(&self.remote.notifier);
        }
    }
}

/// A single-threaded container runtime.
///
/// It runs every task on the thread that calls [`Runtime::block_on`], first come, first
/// served: a task woken goes to the back of one FIFO queue, including a task that wakes
/// itself. After at most `poll_budget` tasks it fires due timers and polls I/O, so a busy
/// task can never starve either. Tasks need not be `Send`.
///
/// `Runtime` is neither `Send` nor `Sync`; other threads reach it through
/// [`Waker`]s and [`crossing`](crate::crossing) channels.
///
/// # Shutdown
///
/// Dropping the runtime cancels every task still alive: each task's future is dropped
/// on this thread, including tasks that another thread is waking at that moment.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::cell::Cell;
/// use tern_executor::{Runtime, spawn};
///
/// let rt = Runtime::new().unwrap();
/// let hits = Rc::new(Cell::new(0)); // not Send: fine on a tern runtime
/// let h = hits.clone();
/// let out = rt.block_on(async move {
///     let task = spawn(async move { h.set(h.get() + 1); 40 });
///     task.await.unwrap() + 2
/// });
/// assert_eq!((out, hits.get()), (42, 1));
/// ```
pub struct Runtime {
    core: Rc<Core>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("core", &self.core).finish()
    }
}

impl Runtime {
    /// A runtime on real time with default settings.
    ///
    /// # Errors
    ///
    /// See [`Builder::build`].
    pub fn new() -> Result<Self, Error> {
        Builder::default().build()
    }

    /// Starts configuring a runtime.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// This runtime's clock.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    /// Offsets the wall clock that [`time::wall_now`](crate::time::wall_now) reads on
    /// this runtime by `nanos` (negative: behind), as a skewed host clock would be; the
    /// monotonic [`Runtime::clock`] is unaffected. The simulator sets it per node.
    pub fn set_wall_offset(&self, nanos: i64) {
        self.core.wall_offset.set(nanos);
    }

    /// This runtime's wall clock offset in nanoseconds (default 0).
    #[must_use]
    pub fn wall_offset(&self) -> i64 {
        self.core.wall_offset.get()
    }

    /// Counters about this runtime.
    #[must_use]
    pub fn stats(&self) -> RuntimeStats {
        self.core.stats.get()
    }

    /// Counts `idle` as parked time (the simulator's idle time between polls).
    pub(crate) fn add_parked(&self, idle: Duration) {
        let nanos = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        self.core
            .bump(|s| s.parked_nanos = s.parked_nanos.saturating_add(nanos));
    }

    /// Spawns a task onto this runtime. It starts running at the next `block_on`.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        task::spawn_on(&self.core, future)
    }

    /// Runs `future` to completion on this thread, running every other task meanwhile.
    ///
    /// # Panics
    ///
    /// If called while this thread is already inside a `block_on` (a nested event loop
    /// would starve the outer one). A panic in `future` itself propagates; panics in
    /// spawned tasks do not (see [`JoinHandle`]).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            Core::try_current().is_none(),
            "Runtime::block_on called from inside a runtime; spawn a task instead"
        );
        let _enter = Enter::new(&self.core);
        let main = StdArc::new(MainWake {
            ready: AtomicBool::new(true),
            remote: self.core.remote.clone(),
        });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if main.ready.swap(false, Ordering::AcqRel)
                && let Poll::Ready(v) = future.as_mut().poll(&mut cx)
            {
                return v;
            }
            self.core.turn(&main.ready);
        }
    }

    /// Runs ready tasks and due timers until nothing is ready, without blocking and
    /// without advancing a virtual clock. Returns how many tasks were polled.
    ///
    /// # Panics
    ///
    /// Inside a runtime, like [`Runtime::block_on`].
    pub fn run_until_idle(&self) -> u64 {
        assert!(
            Core::try_current().is_none(),
            "Runtime::run_until_idle called from inside a runtime"
        );
        let _enter = Enter::new(&self.core);
        self.core.turn_now.set(None);
        let before = self.core.stats.get().polls;
        loop {
            match self.core.next_runnable() {
                Some(r) => {
                    r.run();
                    self.core.bump(|s| s.polls += 1);
                }
                None => {
                    self.core.fire_due_timers();
                    if self.core.local.borrow().is_empty() {
                        break;
                    }
                }
            }
        }
        self.core.stats.get().polls - before
    }

    /// Step mode, for drivers such as the simulator: runs at most one ready task (in
    /// FIFO order) and returns whether one ran. Does not fire timers or poll I/O.
    pub fn run_one(&self) -> bool {
        let _enter = Enter::new(&self.core);
        match self.core.next_runnable() {
            Some(r) => {
                r.run();
                self.core.bump(|s| s.polls += 1);
                true
            }
            None => false,
        }
    }

    /// Step mode: whether a task is ready to run.
    #[must_use]
    pub fn has_ready(&self) -> bool {
        !self.core.local.borrow().is_empty() || self.core.remote.injector.maybe_nonempty()
    }

    /// Step mode: the earliest pending timer's deadline.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.timers.borrow_mut().next_deadline()
    }

    /// Step mode: fires every timer due at the clock's current time (waking their
    /// tasks, which then count as ready).
    pub fn fire_timers(&self) {
        let _enter = Enter::new(&self.core);
        self.core.fire_due_timers();
    }

    /// Per-runtime singleton of type `T`: the first call creates it with `init`, later
    /// calls return the same value. Higher layers keep container-wide state here (the
    /// actor registry, the application environment).
    pub fn extension<T: 'static>(&self, init: impl FnOnce() -> T) -> Rc<T> {
        self.core.extension(init)
    }

    fn shutdown(&self) {
        let _enter = Enter::new(&self.core);
        // Wake every live task so each one is queued, then drop queued runnables: that
        // cancels the task and drops its future here, on the owning thread. A wake from
        // another thread may still be on its way into the injector; wait for it.
        let mut rounds = 0u32;
        loop {
            let wakers: Vec<Waker> = self
                .core
                .tasks
                .borrow()
                .iter()
                .map(|(_, w)| w.clone())
                .collect();
            if wakers.is_empty() {
                break;
            }
            for w in wakers {
                w.wake();
            }
            while let Some(r) = self.core.next_runnable() {
                drop(r);
            }
            rounds += 1;
            if rounds > 3 && !self.core.tasks.borrow().is_empty() {
                // A foreign thread is between marking a task scheduled and pushing it:
                // block until its push signals us.
                let _ = self.core.remote.park.park(|| {
                    let _ = self
                        .core
                        .reactor
                        .borrow_mut()
                        .poll(Some(Duration::from_millis(1)));
                });
            }
        }
        let stale = self.core.timers.borrow_mut().clear();
        drop(stale);
        self.core.extensions.borrow_mut().clear();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Spawns a task on the current thread's runtime.
///
/// # Panics
///
/// Outside a runtime (see [`crate::time`]).
///
/// # Examples
///
/// ```
/// use tern_executor::{Runtime, spawn};
///
/// Runtime::new().unwrap().block_on(async {
///     let h = spawn(async { 1 + 1 });
///     assert_eq!(h.await.unwrap(), 2);
/// });
/// ```
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    task::spawn_on(&Core::current(), future)
}

/// A number unique within the current runtime: 1, 2, 3, ... in call order, so ids are
/// the same in every run of the same program (unlike a process-wide counter, which
/// other runtimes in the process would advance).
///
/// # Examples
///
/// ```
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// let a = tern_executor::next_id();
/// assert_eq!(tern_executor::next_id(), a + 1);
/// # });
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[must_use]
pub fn next_id() -> u64 {
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(core) => {
            let id = core.last_id.get() + 1;
            core.last_id.set(id);
            id
        }
        None => panic!("no tern runtime on this thread: call this inside Runtime::block_on"),
    })
}

/// Counters of the current thread's runtime.
#[must_use]
pub fn stats() -> RuntimeStats {
    Core::with_current(|c| c.stats.get())
}

/// The current runtime's per-type singleton; see [`Runtime::extension`].
pub fn extension<T: 'static>(init: impl FnOnce() -> T) -> Rc<T> {
    Core::with_current(|c| c.extension(init))
}

/// Yields once: the current task goes to the back of the run queue.
///
/// # Examples
///
/// ```
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// tern_executor::yield_now().await;
/// # });
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}
