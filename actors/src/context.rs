//! What a component can do from inside a handler.

use std::fmt;
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tern_executor::{JoinHandle, spawn, time};

use crate::actor::{Actor, Handler};
use crate::addr::{Addr, Component};
use crate::env::Environment;
use crate::mailbox::Interrupt;
use crate::spawn::Spawn;

/// How an incarnation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Stopped through its address or by a stopping parent: final.
    Requested,
    /// The component called [`Context::stop`].
    Normal,
    /// A panic, an `Err` from `started`, [`Context::fail`], or an escalating child.
    Failed(String),
}

/// A child as its parent sees it, whatever its type.
pub(crate) trait Child {
    fn stop(&self);
    fn poll_stopped(&self, cx: &mut TaskContext<'_>) -> Poll<()>;
    fn is_stopped(&self) -> bool;
}

impl<C: Actor> Child for Component<C> {
    fn stop(&self) {
        self.mailbox.interrupt(Interrupt::Stop);
    }
    fn poll_stopped(&self, cx: &mut TaskContext<'_>) -> Poll<()> {
        self.mailbox.poll_stopped(cx)
    }
    fn is_stopped(&self) -> bool {
        self.mailbox.is_stopped()
    }
}

/// A parent as its children see it: where escalations go.
pub(crate) trait Parent {
    fn escalate(&self, reason: String);
}

impl<P: Actor> Parent for Component<P> {
    fn escalate(&self, reason: String) {
        self.mailbox.interrupt(Interrupt::Escalated(reason));
    }
}

/// A component's view of itself while it handles a message.
///
/// One `Context` lives per incarnation: timers set through it and children spawned
/// through it end with the incarnation (children stop newest first, then
/// [`Actor::stopped`] runs).
pub struct Context<A: Actor> {
    addr: Addr<A>,
    /// Children and timers, allocated on first use: most components have neither.
    extras: Option<Box<Extras>>,
    pub(crate) exit: Option<Exit>,
}

#[derive(Default)]
struct Extras {
    children: Vec<Rc<dyn Child>>,
    timers: Vec<JoinHandle<()>>,
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("addr", &self.addr)
            .field(
                "children",
                &self.extras.as_ref().map_or(0, |e| e.children.len()),
            )
            .field(
                "timers",
                &self.extras.as_ref().map_or(0, |e| e.timers.len()),
            )
            .finish()
    }
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(addr: Addr<A>) -> Self {
        Self {
            addr,
            extras: None,
            exit: None,
        }
    }

    /// This component's own address.
    #[must_use]
    pub fn address(&self) -> &Addr<A> {
        &self.addr
    }

    /// Ends this incarnation after the current message, as a normal exit: the component
    /// stops for good unless its policy is [`Restart::Always`](crate::Restart::Always).
    pub fn stop(&mut self) {
        if self.exit.is_none() {
            self.exit = Some(Exit::Normal);
        }
    }

    /// Ends this incarnation after the current message, as a failure: supervision
    /// restarts it, stops it or escalates, per its policy. A failure overrides a stop.
    pub fn fail(&mut self, reason: impl fmt::Display) {
        self.addr.inner.mailbox.bump(|s| s.failures += 1);
        self.exit = Some(Exit::Failed(reason.to_string()));
    }

    /// Spawns a child this component supervises: if the child exhausts its restarts it
    /// escalates, and this component fails in turn. Children stop when this
    /// incarnation ends, newest first.
    pub fn spawn_child<C, F>(&mut self, child: Spawn<C, F>) -> Addr<C>
    where
        C: Actor,
        F: FnMut() -> Option<C> + 'static,
    {
        let parent: Weak<dyn Parent> = {
            let rc: Rc<dyn Parent> = self.addr.inner.clone();
            Rc::downgrade(&rc)
        };
        let addr = child.start(Some(parent));
        let children = &mut self.extras.get_or_insert_with(Box::default).children;
        children.retain(|c| !c.is_stopped());
        children.push(addr.inner.clone());
        addr
    }

    /// Delivers `msg` to this component after `delay`, unless the incarnation ends first.
    pub fn send_after<M: 'static>(&mut self, delay: Duration, msg: M)
    where
        A: Handler<M>,
    {
        let addr = self.addr.clone();
        self.add_timer(spawn(async move {
            time::sleep(delay).await;
            if let Err(e) = addr.tell(msg).await {
                tracing::warn!(component = addr.id(), error = %e, "timer message not delivered");
            }
        }));
    }

    /// Delivers a clone of `msg` every `period` until the incarnation ends, skipping
    /// ticks that come due while the previous tick's message is still queued or being
    /// handled: [`MissedTicks::Skip`], see [`Context::send_every_with`].
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn send_every<M: Clone + 'static>(&mut self, period: Duration, msg: M)
    where
        A: Handler<M>,
    {
        self.send_every_with(period, msg, MissedTicks::default());
    }

    /// Delivers a clone of `msg` every `period` until the incarnation ends; `missed`
    /// says what happens to ticks that come due while the component is busy (like
    /// tokio's `MissedTickBehavior`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tern_actors::{Actor, Context, Handler, MissedTicks, spawn};
    /// use tern_executor::{Runtime, time};
    ///
    /// #[derive(Clone)]
    /// struct Tick;
    /// struct Poller { seen: Vec<u64> }
    /// impl Actor for Poller {
    ///     async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), tern_actors::ActorError> {
    ///         ctx.send_every_with(Duration::from_millis(100), Tick, MissedTicks::Skip);
    ///         Ok(())
    ///     }
    /// }
    /// impl Handler<Tick> for Poller {
    ///     type Reply = ();
    ///     async fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
    ///         self.seen.push(time::now().as_nanos() / 1_000_000);
    ///         if self.seen.len() == 1 {
    ///             // Busy for 3.5 periods: the ticks at 200, 300 and 400 ms are missed.
    ///             time::sleep(Duration::from_millis(350)).await;
    ///         }
    ///     }
    /// }
    /// struct Seen;
    /// impl Handler<Seen> for Poller {
    ///     type Reply = Vec<u64>;
    ///     async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> Vec<u64> { self.seen.clone() }
    /// }
    ///
    /// let rt = Runtime::builder().virtual_time().build().unwrap();
    /// let seen = rt.block_on(async {
    ///     let p = spawn(Poller { seen: Vec::new() });
    ///     time::sleep(Duration::from_millis(750)).await;
    ///     p.ask(Seen).await.unwrap()
    /// });
    /// // One late tick as soon as the component is free, then the original schedule.
    /// assert_eq!(seen, [100, 450, 500, 600, 700]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero.
    pub fn send_every_with<M: Clone + 'static>(
        &mut self,
        period: Duration,
        msg: M,
        missed: MissedTicks,
    ) where
        A: Handler<M>,
    {
        let addr = self.addr.clone();
        let mut ticks = time::interval(period);
        self.add_timer(spawn(async move {
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let sent = match missed {
                    // Waits until the message is handled; the ticks that came due
                    // meanwhile collapse into one (the interval skips the rest).
                    MissedTicks::Skip => addr
                        .ask(msg.clone())
                        .timeout(NO_DEADLINE)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    MissedTicks::Burst => addr.try_tell(msg.clone()).map_err(|e| e.to_string()),
                };
                if let Err(error) = sent {
                    if addr.is_stopped() {
                        break;
                    }
                    tracing::warn!(component = addr.id(), %error, "periodic message skipped");
                }
            }
        }));
    }

    fn add_timer(&mut self, h: JoinHandle<()>) {
        let timers = &mut self.extras.get_or_insert_with(Box::default).timers;
        timers.retain(|t| !t.is_finished());
        timers.push(h);
    }

    /// The container-wide environment: state shared by every component on this
    /// container that outlives any one message or incarnation.
    #[must_use]
    pub fn env(&self) -> Rc<Environment> {
        Environment::current()
    }

    /// Stops every child, newest first, each fully stopped before the next.
    pub(crate) async fn stop_children(&mut self) {
        let Some(extras) = self.extras.as_mut() else {
            return;
        };
        while let Some(child) = extras.children.pop() {
            child.stop();
            poll_fn(|cx| child.poll_stopped(cx)).await;
        }
    }
}

/// What [`Context::send_every_with`] does with ticks that come due while the component
/// is still busy with an earlier tick (or anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTicks {
    /// At most one tick message is queued or being handled at a time. Ticks that come
    /// due meanwhile collapse into one, sent as soon as the earlier one is handled;
    /// then the original schedule resumes (tokio's `MissedTickBehavior::Skip`). The
    /// default.
    #[default]
    Skip,
    /// One message per tick, whatever the component is doing: a component busy for
    /// ten periods then handles the ten queued ticks back to back (tokio's `Burst`).
    /// A tick that finds the mailbox full is dropped and logged.
    Burst,
}

/// The deadline of a [`MissedTicks::Skip`] tick's ask: none in practice (a year), so a
/// slow handler never makes a second tick queue up behind the first.
const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);
