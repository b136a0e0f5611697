//! [`Builder`]: how a [`Runtime`] is configured and put together.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use slab::Slab;

use super::{Core, DEFAULT_POLL_BUDGET, NEXT_RUNTIME_ID, Remote, Runtime, RuntimeStats};
use crate::error::Error;
use crate::parker::ParkState;
use crate::queue::Injector;
use crate::reactor::Reactor;
use crate::sync::{Arc, Ordering};
use crate::time::timers::Timers;
use crate::time::{Clock, Instant};

/// Configures a [`Runtime`].
///
/// # Examples
///
/// ```
/// use tern_executor::Runtime;
///
/// let rt = Runtime::builder().virtual_time().poll_budget(64).build().unwrap();
/// assert!(rt.clock().is_virtual());
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    clock: Option<Clock>,
    virtual_time: bool,
    budget: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            clock: None,
            virtual_time: false,
            budget: DEFAULT_POLL_BUDGET,
        }
    }
}

impl Builder {
    /// Uses a virtual clock starting at [`Instant::ZERO`]: time jumps to the next timer
    /// whenever no task is ready.
    pub fn virtual_time(&mut self) -> &mut Self {
        self.virtual_time = true;
        self
    }

    /// Uses this clock (real or virtual), for example one shared with a simulator.
    pub fn clock(&mut self, clock: Clock) -> &mut Self {
        self.clock = Some(clock);
        self
    }

    /// Tasks run per turn before timers and I/O are looked at again (default
    /// [`DEFAULT_POLL_BUDGET`]). Values below 1 count as 1.
    pub fn poll_budget(&mut self, budget: usize) -> &mut Self {
        self.budget = budget.max(1);
        self
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// None today (the notify descriptor is created lazily, the first time the runtime
    /// blocks); the `Result` is kept for configurations that will need OS resources.
    pub fn build(&self) -> Result<Runtime, Error> {
        let clock = match (&self.clock, self.virtual_time) {
            (Some(c), _) => c.clone(),
            (None, true) => Clock::virtual_at(Instant::ZERO),
            (None, false) => Clock::real(),
        };
        let remote = Arc::new(Remote {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            injector: Injector::new(),
            park: ParkState::new(),
            notifier: std::sync::OnceLock::new(),
        });
        let core = Rc::new(Core {
            remote,
            local: RefCell::new(VecDeque::with_capacity(1024)),
            timers: RefCell::new(Timers::default()),
            clock,
            reactor: RefCell::new(Reactor::new()),
            tasks: RefCell::new(Slab::new()),
            extensions: RefCell::new(BTreeMap::new()),
            budget: self.budget,
            stats: Cell::new(RuntimeStats::default()),
            due: RefCell::new(Vec::new()),
            turn_now: Cell::new(None),
            polls_since_check: Cell::new(0),
            last_id: Cell::new(0),
            wall_offset: Cell::new(0),
        });
        Ok(Runtime { core })
    }
}
