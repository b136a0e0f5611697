//! Restart policies and the loop that runs a component through its incarnations.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_lite::FutureExt;
use tern_executor::panic_message;
use tern_executor::time::{self, Instant};

use crate::actor::Actor;
use crate::addr::{Addr, Component};
use crate::context::{Context, Exit, Parent};
use crate::mailbox::{Interrupt, Mailbox};
use crate::registry;

/// When a component is restarted from its factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Never: any end is final (Erlang's *temporary*). The default for
    /// [`spawn`](crate::spawn), which has no factory to restart from.
    #[default]
    Never,
    /// After a failure (a panic, an `Err` from `started`, [`Context::fail`], an
    /// escalating child), not after a normal stop (Erlang's *transient*). The default for
    /// [`build`](crate::build).
    OnFailure,
    /// After any end except a stop requested through the address or by the parent
    /// (Erlang's *permanent*).
    Always,
}

/// A component's supervision policy.
///
/// Restarts wait `backoff_initial`, doubling per restart within the window up to
/// `backoff_max`. More than `max_restarts` restarts within `window` exhaust the policy:
/// the component stops for good and, if it has a parent, escalates (the parent fails,
/// and the parent's own policy decides). While a component waits to restart, its
/// address stays valid and messages queue up in its mailbox.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::{Restart, Supervision};
///
/// let policy = Supervision {
///     restart: Restart::OnFailure,
///     max_restarts: 3,
///     window: Duration::from_secs(5),
///     ..Supervision::default()
/// };
/// assert_eq!(policy.backoff_initial, Duration::from_millis(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// When to restart.
    pub restart: Restart,
    /// Delay before the first restart in a window (default 10 ms).
    pub backoff_initial: Duration,
    /// Upper bound of the doubling delay (default 1 s).
    pub backoff_max: Duration,
    /// Restarts allowed within `window` before the policy is exhausted (default 5).
    pub max_restarts: u32,
    /// The sliding window for `max_restarts` (default 10 s).
    pub window: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            restart: Restart::Never,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            max_restarts: 5,
            window: Duration::from_secs(10),
        }
    }
}

/// What to do after an incarnation ends.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Restart(Duration),
    Stop,
    Escalate(String),
}

impl Supervision {
    fn decide(&self, exit: &Exit, recent: &mut VecDeque<Instant>, now: Instant) -> Decision {
        let wants = match exit {
            Exit::Requested => false,
            Exit::Normal => self.restart == Restart::Always,
            Exit::Failed(_) => self.restart != Restart::Never,
        };
        if !wants {
            return Decision::Stop;
        }
        while recent.front().is_some_and(|&t| now - t >= self.window) {
            recent.pop_front();
        }
        if recent.len() >= self.max_restarts as usize {
            let why = match exit {
                Exit::Failed(r) => r.clone(),
                _ => "stopped".to_owned(),
            };
            return Decision::Escalate(format!(
                "{} restarts within {:?} exhausted; last: {why}",
                recent.len(),
                self.window
            ));
        }
        recent.push_back(now);
        let doublings = u32::try_from(recent.len() - 1).unwrap_or(u32::MAX).min(20);
        let delay = self
            .backoff_initial
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        Decision::Restart(delay)
    }
}

/// What a component's task needs only between incarnations, boxed so that the task of
/// an idle component stays small.
pub(crate) struct Supervisor<F> {
    /// Makes a fresh component for each incarnation; `None` when it cannot.
    pub(crate) factory: F,
    pub(crate) policy: Supervision,
    pub(crate) parent: Option<Weak<dyn Parent>>,
    recent: VecDeque<Instant>,
}

impl<F> Supervisor<F> {
    pub(crate) fn new(factory: F, policy: Supervision, parent: Option<Weak<dyn Parent>>) -> Self {
        Self {
            factory,
            policy,
            parent,
            recent: VecDeque::new(),
        }
    }
}

/// Runs a component through its incarnations until it stops for good: from `first`
/// if given (a component spawned from a value, never restarted), else from the
/// supervisor's factory.
pub(crate) async fn run<A: Actor, F: FnMut() -> Option<A>>(
    comp: Rc<Component<A>>,
    first: Option<A>,
    mut sup: Option<Box<Supervisor<F>>>,
) {
    quiet::install();
    let mb = &comp.mailbox;
    let mut incarnations = 0u64;
    // `first` is consumed here, before any await, so the task does not keep a slot for it.
    let mut made = match first {
        Some(actor) => Ok(Some(actor)),
        None => make(&mut sup),
    };
    loop {
        let exit = match made {
            Ok(Some(mut actor)) => {
                if incarnations > 0 {
                    mb.bump(|s| s.restarts += 1);
                }
                incarnations += 1;
                let mut ctx = Context::new(Addr {
                    inner: comp.clone(),
                });
                let exit = {
                    let run = std::pin::pin!(incarnation(&mut actor, &mut ctx, mb));
                    quiet::Quiet(comp.id, run).await
                };
                // Cold path, boxed so that an idle component's task stays small.
                quiet::Quiet(comp.id, Box::pin(finish(&mut actor, &mut ctx, comp.id))).await;
                exit
            }
            Ok(None) => Exit::Requested,
            Err(p) => Exit::Failed(format!("factory panicked: {}", panic_message(&*p))),
        };
        match &exit {
            Exit::Failed(reason) => {
                tracing::warn!(component = comp.id, kind = std::any::type_name::<A>(), %reason, "component failed");
            }
            other => tracing::debug!(component = comp.id, exit = ?other, "incarnation ended"),
        }
        let Some(s) = sup.as_mut() else { break };
        let s = &mut **s;
        match s.policy.decide(&exit, &mut s.recent, time::now()) {
            Decision::Restart(delay) => {
                tracing::info!(component = comp.id, ?delay, "restarting");
                if Box::pin(backoff(mb, delay)).await == Some(Interrupt::Stop) {
                    break;
                }
                made = make(&mut sup);
            }
            Decision::Stop => break,
            Decision::Escalate(reason) => {
                tracing::error!(component = comp.id, %reason, "restart limit reached; stopping");
                if let Some(p) = s.parent.as_ref().and_then(Weak::upgrade) {
                    p.escalate(format!(
                        "child {} ({}): {reason}",
                        comp.id,
                        std::any::type_name::<A>()
                    ));
                }
                break;
            }
        }
    }
    registry::release(comp.id);
    mb.close();
}

/// Builds the next incarnation from the supervisor's factory, catching a panic; a
/// component that can never restart drops its supervisor once it has started.
fn make<A, F: FnMut() -> Option<A>>(
    sup: &mut Option<Box<Supervisor<F>>>,
) -> Result<Option<A>, Box<dyn std::any::Any + Send>> {
    let Some(s) = sup.as_mut() else {
        return Ok(None);
    };
    let made = quiet::within(None, || {
        std::panic::catch_unwind(AssertUnwindSafe(&mut s.factory))
    });
    if s.policy.restart == Restart::Never {
        *sup = None;
    }
    made
}

/// Ends an incarnation: children stop newest first, then the `stopped` hook runs.
async fn finish<A: Actor>(actor: &mut A, ctx: &mut Context<A>, id: u64) {
    ctx.stop_children().await;
    if let Err(p) = AssertUnwindSafe(actor.stopped(ctx)).catch_unwind().await {
        tracing::warn!(component = id, panic = %panic_message(&*p), "stopped hook panicked");
    }
}

/// Waits out a restart delay; a stop request cuts it short. An escalation arriving
/// now belongs to children that are already gone, so it is dropped.
async fn backoff<A: Actor>(mb: &Mailbox<A>, delay: Duration) -> Option<Interrupt> {
    let interrupted = async { Some(poll_fn(|cx| mb.poll_interrupt(cx)).await) };
    let slept = async {
        time::sleep(delay).await;
        None
    };
    // `or` polls the interrupt first: a stop that is already there wins, deterministically.
    interrupted.or(slept).await
}

async fn incarnation<A: Actor>(actor: &mut A, ctx: &mut Context<A>, mb: &Mailbox<A>) -> Exit {
    match AssertUnwindSafe(Box::pin(actor.started(ctx)))
        .catch_unwind()
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            mb.bump(|s| s.failures += 1);
            return Exit::Failed(format!("started failed: {e}"));
        }
        Err(p) => {
            mb.bump(|s| s.failures += 1);
            return Exit::Failed(format!("started panicked: {}", panic_message(&*p)));
        }
    }
    loop {
        if let Some(exit) = ctx.exit.take() {
            return exit;
        }
        let env = match poll_fn(|cx| mb.poll_next(cx)).await {
            Ok(env) => env,
            Err(Interrupt::Stop) => return Exit::Requested,
            Err(Interrupt::Escalated(reason)) => {
                mb.bump(|s| s.failures += 1);
                return Exit::Failed(reason);
            }
        };
        let mut env = env;
        let handling = env.handle(actor, ctx);
        mb.recycle(env);
        let Some(handling) = handling else { continue };
        let outcome = AssertUnwindSafe(handling).catch_unwind().await;
        mb.bump(|s| s.handled += 1);
        if let Err(p) = outcome {
            mb.bump(|s| s.failures += 1);
            return Exit::Failed(format!("handler panicked: {}", panic_message(&*p)));
        }
    }
}

/// Quiet panics: a panic inside a component (its factory, hooks or handlers) is caught
/// and becomes a typed error and one `component failed` warning, so the standard
/// panic hook's message (and, with `RUST_BACKTRACE`, its backtrace) is not printed for
/// it; the backtrace goes to the `debug` log instead. Panics anywhere else go to the
/// hook that was installed before, unchanged.
///
/// It also knows which component's code is running, so an ask can tell when a
/// component asks itself ([`current_component`]).
pub(crate) mod quiet {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Once;
    use std::task::{Context, Poll};

    thread_local! {
        /// How deep this thread is inside component code right now.
        static INSIDE: Cell<u32> = const { Cell::new(0) };
        /// The component whose code runs now (its id), if known.
        static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// The id of the component whose code (handler, hook) this thread runs now.
    pub(crate) fn current_component() -> Option<u64> {
        CURRENT.with(Cell::get)
    }

    /// Installs the process-wide hook, once; it wraps the hook installed before.
    pub(super) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if INSIDE.with(Cell::get) == 0 {
                    previous(info);
                } else if tracing::enabled!(tracing::Level::DEBUG) {
                    let backtrace = std::backtrace::Backtrace::force_capture();
                    tracing::debug!(panic = %info, %backtrace, "component panicked (caught)");
                }
            }));
        });
    }

    /// Runs `f` as the code of component `id` (`None`: not yet known).
    pub(super) fn within<T>(id: Option<u64>, f: impl FnOnce() -> T) -> T {
        struct Leave(Option<u64>);
        impl Drop for Leave {
            fn drop(&mut self) {
                INSIDE.with(|d| d.set(d.get().saturating_sub(1)));
                CURRENT.with(|c| c.set(self.0));
            }
        }
        INSIDE.with(|d| d.set(d.get() + 1));
        let _leave = Leave(CURRENT.with(|c| c.replace(id)));
        f()
    }

    /// A future whose polls are the code of component `.0`.
    pub(super) struct Quiet<F>(pub(super) u64, pub(super) F);

    impl<F: Future + Unpin> Future for Quiet<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let id = self.0;
            within(Some(id), || Pin::new(&mut self.1).poll(cx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_the_window_is_exhausted() {
        let p = Supervision {
            restart: Restart::OnFailure,
            max_restarts: 3,
            ..Supervision::default()
        };
        let mut recent = VecDeque::new();
        let f = Exit::Failed("x".into());
        let t = Instant::ZERO;
        assert_eq!(
            p.decide(&f, &mut recent, t),
            Decision::Restart(Duration::from_millis(10))
        );
        assert_eq!(
            p.decide(&f, &mut recent, t),
            Decision::Restart(Duration::from_millis(20))
        );
        assert_eq!(
            p.decide(&f, &mut recent, t),
            Decision::Restart(Duration::from_millis(40))
        );
        assert!(matches!(
            p.decide(&f, &mut recent, t),
            Decision::Escalate(_)
        ));
        // Outside the window, restarts are allowed again.
        let later = t + Duration::from_secs(11);
        assert_eq!(
            p.decide(&f, &mut recent, later),
            Decision::Restart(Duration::from_millis(10))
        );
        assert_eq!(
            p.decide(&Exit::Requested, &mut recent, later),
            Decision::Stop
        );
        assert_eq!(p.decide(&Exit::Normal, &mut recent, later), Decision::Stop);
    }
}
