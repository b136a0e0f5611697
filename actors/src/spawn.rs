//! Starting components.

use std::fmt;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::time::Duration;

use tern_executor::spawn as spawn_task;

use crate::actor::Actor;
use crate::addr::{Addr, Component};
use crate::context::Parent;
use crate::error::RegistryError;
use crate::mailbox::Mailbox;
use crate::registry;
use crate::supervision::{Restart, Supervision, Supervisor, run};

/// Default mailbox capacity.
pub const DEFAULT_MAILBOX: usize = 1024;
/// Default deadline for asks and for `tell` waiting for room.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

fn component<A: Actor>(capacity: usize, timeout: Duration) -> Rc<Component<A>> {
    Rc::new(Component {
        mailbox: Mailbox::new(capacity),
        id: tern_executor::next_id(),
        timeout,
    })
}

/// Starts a component from a value, with default options and no restarts (there is
/// no factory to rebuild it from; use [`build`] for that).
///
/// # Panics
///
/// Outside a runtime.
pub fn spawn<A: Actor>(actor: A) -> Addr<A> {
    let comp = component(DEFAULT_MAILBOX, DEFAULT_TIMEOUT);
    let task = run::<A, fn() -> Option<A>>(comp.clone(), Some(actor), None);
    spawn_task(task).detach();
    Addr { inner: comp }
}

/// Configures a component built by `factory`, which makes a fresh instance for the
/// first start and for every restart. Restarts default to [`Restart::OnFailure`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::{Actor, Restart, build};
///
/// struct Worker;
/// impl Actor for Worker {}
///
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// let w = build(|| Worker)
///     .mailbox(64)
///     .restart(Restart::Always)
///     .timeout(Duration::from_secs(1))
///     .spawn();
/// assert_eq!(w.mailbox_capacity(), 64);
/// # });
/// ```
pub fn build<A: Actor, F: FnMut() -> A + 'static>(
    mut factory: F,
) -> Spawn<A, impl FnMut() -> Option<A> + 'static> {
    Spawn::from_factory(move || Some(factory()), Restart::OnFailure)
}

/// Options for starting a component; see [`build`].
///
/// `F` is the factory's type; it is generic so that a component's factory lives
/// unboxed beside its supervision state.
#[must_use = "a Spawn does nothing until `.spawn()`"]
pub struct Spawn<A: Actor, F> {
    factory: F,
    _component: PhantomData<fn() -> A>,
    capacity: usize,
    timeout: Duration,
    supervision: Supervision,
    name: Option<String>,
}

impl<A: Actor, F> fmt::Debug for Spawn<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn")
            .field("component", &std::any::type_name::<A>())
            .field("capacity", &self.capacity)
            .field("timeout", &self.timeout)
            .field("supervision", &self.supervision)
            .finish_non_exhaustive()
    }
}

impl<A: Actor, F: FnMut() -> Option<A> + 'static> Spawn<A, F> {
    fn from_factory(factory: F, restart: Restart) -> Self {
        Self {
            factory,
            _component: PhantomData,
            capacity: DEFAULT_MAILBOX,
            timeout: DEFAULT_TIMEOUT,
            supervision: Supervision {
                restart,
                ..Supervision::default()
            },
            name: None,
        }
    }

    /// Mailbox capacity (default [`DEFAULT_MAILBOX`]; at least 1).
    ///
    /// The mailbox keeps the envelopes of handled messages for reuse, up to this many,
    /// so a component's memory stays at the high-water mark its traffic reached (never
    /// more than a full mailbox) instead of allocating per message.
    pub fn mailbox(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Default deadline for asks to this component and for `tell` waiting for room
    /// (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When to restart.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.supervision.restart = restart;
        self
    }

    /// The whole supervision policy.
    pub fn supervision(mut self, supervision: Supervision) -> Self {
        self.supervision = supervision;
        self
    }

    /// Starts the component. It runs `started`, then takes messages, from the next time
    /// the runtime gets control; messages sent before then wait in its mailbox.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn spawn(self) -> Addr<A> {
        self.start(None)
    }

    /// Starts the component and registers it under `name` (see
    /// [`lookup`](crate::lookup)); the name is released when it stops for good.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NameTaken`], and then nothing is started.
    pub fn spawn_named(mut self, name: &str) -> Result<Addr<A>, RegistryError> {
        if registry::lookup_any(name) {
            return Err(RegistryError::NameTaken(name.to_owned()));
        }
        self.name = Some(name.to_owned());
        Ok(self.start(None))
    }

    pub(crate) fn start(self, parent: Option<Weak<dyn Parent>>) -> Addr<A> {
        let comp = component(self.capacity, self.timeout);
        let addr = Addr {
            inner: comp.clone(),
        };
        if let Some(name) = &self.name
            && let Err(e) = registry::register(name, &addr)
        {
            tracing::error!(error = %e, "name registration failed");
        }
        let sup = Box::new(Supervisor::new(self.factory, self.supervision, parent));
        spawn_task(run(comp, None, Some(sup))).detach();
        addr
    }
}
