//! Inbound requests: admission per component, and answers without a task per ask.
//!
//! A request for a component whose mailbox has room is queued at once. One that finds
//! it full waits in that component's **backlog** (in arrival order; later requests
//! for the same component queue behind it, so order holds), and one task per
//! component with a backlog moves them in as room appears. Nothing else waits: the
//! receive loop keeps reading, so other components' requests, replies to this node's
//! own asks, credits and control messages are never held up by a full mailbox. The
//! bytes held in backlogs are bounded ([`NodeConfig::held_bytes_limit`]); past the
//! bound, or past its deadline, a request is refused: an ask is answered with
//! [`CallError::MailboxFull`], a tell dropped, counted and logged.
//!
//! An ask's reply comes back through a callback from the component's task (no task
//! waits for it); an ask whose deadline passed while it waited in the mailbox is not
//! handled at all (counted in [`NodeStats::requests_expired`]).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::{Instant, time};
use tern_proto::session::{Nanos, Request};

use super::{Node, now};
use crate::remote::error::CallError;
use crate::remote::export::{Answer, Delivered, Exported, Incoming};

/// Bytes a held request is charged beyond its payload (its names, the entry).
const HELD_OVERHEAD: usize = 128;

/// A request waiting in a component's backlog.
pub(in crate::remote) struct Held {
    req: Request,
    answer: Option<Answer>,
    /// When it stops waiting: its deadline, or arrival + the default timeout.
    until: Nanos,
    bytes: usize,
}

/// One component's backlog.
pub(in crate::remote) type Backlog = VecDeque<Held>;

fn deadline_instant(deadline: Option<Nanos>) -> Option<Instant> {
    deadline.map(Instant::from_nanos)
}

impl Node {
    /// A request for a local component (not a stream, not control): queue it, hold
    /// it in the component's backlog, or refuse it.
    pub(super) fn on_component_request(&self, now: Nanos, req: Request) {
        let export = self
            .shared
            .state
            .borrow()
            .exports
            .get(&req.component)
            .cloned();
        let export = match export {
            None => {
                let error = CallError::NotHosted {
                    name: req.component.clone(),
                };
                return self.refuse(&req, None, &error);
            }
            Some(e) if e.is_stopped() => {
                self.withdraw_stopped();
                return self.refuse(&req, None, &CallError::Stopped);
            }
            Some(e) => e,
        };
        let mut answer = req.expects_reply.then(|| self.answer_to(&req));
        if !self
            .shared
            .state
            .borrow()
            .backlogs
            .contains_key(&req.component)
        {
            match export.deliver(&incoming(&req), &mut answer) {
                Ok(Delivered::Queued) => {
                    self.shared.state.borrow_mut().stats.requests_delivered += 1;
                    return;
                }
                Ok(Delivered::Full) => {}
                Err(error) => return self.refuse(&req, answer, &error),
            }
        }
        self.hold(now, req, answer, &export);
    }

    /// Puts a request in its component's backlog (starting the task that drains it),
    /// or refuses it when the node holds too much already.
    fn hold(&self, now: Nanos, req: Request, answer: Option<Answer>, export: &Rc<dyn Exported>) {
        let bytes = req.payload.len() + HELD_OVERHEAD;
        let limit = self.shared.config.held_bytes_limit;
        let mut st = self.shared.state.borrow_mut();
        if st.held_bytes.saturating_add(bytes) > limit {
            let held = st.held_bytes;
            drop(st);
            let error = CallError::MailboxFull;
            tracing::debug!(node = %self.name(), held, limit, "inbound backlog bound reached");
            return self.refuse(&req, answer, &error);
        }
        let wait = super::nanos(self.shared.config.default_timeout);
        let until = req.deadline.unwrap_or_else(|| now.saturating_add(wait));
        st.held_bytes += bytes;
        st.stats.held += 1;
        let component = req.component.clone();
        let fresh = !st.backlogs.contains_key(&component);
        st.backlogs
            .entry(component.clone())
            .or_default()
            .push_back(Held {
                req,
                answer,
                until,
                bytes,
            });
        drop(st);
        if fresh {
            let (node, export) = (self.clone(), export.clone());
            // Ends when the backlog is empty (shutdown empties it).
            tern_executor::spawn(async move { node.drain(&component, &*export).await }).detach();
        }
    }

    /// Moves one component's backlog into its mailbox as room appears, in order;
    /// refuses what waited past its time. Ends when the backlog is empty.
    async fn drain(&self, component: &str, export: &dyn Exported) {
        loop {
            let Some(until) = self.front(component).map(|h| h.until) else {
                return;
            };
            let left = Duration::from_nanos(until.saturating_sub(now()));
            let has_room = time::timeout(left, export.room()).await.is_ok();
            loop {
                let Some(mut held) = self.pop_front(component) else {
                    break;
                };
                if !has_room && held.until <= now() {
                    self.refuse(&held.req, held.answer, &CallError::MailboxFull);
                    continue;
                }
                match export.deliver(&incoming(&held.req), &mut held.answer) {
                    Ok(Delivered::Queued) => {
                        self.shared.state.borrow_mut().stats.requests_delivered += 1;
                    }
                    Ok(Delivered::Full) => {
                        self.push_front(component, held);
                        break;
                    }
                    Err(error) => self.refuse(&held.req, held.answer, &error),
                }
            }
        }
    }

    /// Refuses every held request: the node is shutting down.
    pub(super) fn shutdown_backlogs(&self) {
        let backlogs = {
            let mut st = self.shared.state.borrow_mut();
            st.held_bytes = 0;
            std::mem::take(&mut st.backlogs)
        };
        for held in backlogs.into_values().flatten() {
            self.refuse(&held.req, held.answer, &CallError::Stopped);
        }
    }

    fn front(&self, component: &str) -> Option<std::cell::Ref<'_, Held>> {
        let st = self.shared.state.borrow();
        std::cell::Ref::filter_map(st, |st| st.backlogs.get(component)?.front()).ok()
    }

    fn pop_front(&self, component: &str) -> Option<Held> {
        let mut st = self.shared.state.borrow_mut();
        let backlog = st.backlogs.get_mut(component)?;
        let held = backlog.pop_front();
        if backlog.is_empty() {
            st.backlogs.remove(component);
        }
        if let Some(h) = &held {
            st.held_bytes -= h.bytes;
        }
        held
    }

    fn push_front(&self, component: &str, held: Held) {
        let mut st = self.shared.state.borrow_mut();
        st.held_bytes += held.bytes;
        st.backlogs
            .entry(component.to_owned())
            .or_default()
            .push_front(held);
    }

    /// Where an ask's outcome goes: back to the session as a reply, from whatever
    /// task completes it.
    fn answer_to(&self, req: &Request) -> Answer {
        let weak = Rc::downgrade(&self.shared);
        // What the session needs to answer: not the body.
        let req = Request {
            peer: req.peer.clone(),
            message_id: req.message_id,
            expects_reply: req.expects_reply,
            source: req.source.clone(),
            component: req.component.clone(),
            message_type: String::new(),
            content_type: String::new(),
            payload: Vec::new(),
            deadline: req.deadline,
            credit: req.credit,
        };
        Box::new(move |outcome| {
            if let Some(shared) = weak.upgrade() {
                shared.answers.borrow_mut().push_back((req, outcome));
                Self { shared }.flush_answers();
            }
        })
    }

    /// Hands finished answers to the session and sends them; if the node is busy
    /// (this runs inside one of its own calls), its answer task does it next.
    pub(super) fn flush_answers(&self) {
        let Ok(mut st) = self.shared.state.try_borrow_mut() else {
            if let Some(w) = self.shared.answers_waker.take() {
                w.wake();
            }
            return;
        };
        let now = now();
        // One at a time, so the queue keeps its buffer (no allocation per answer).
        loop {
            let Some((req, outcome)) = self.shared.answers.borrow_mut().pop_front() else {
                break;
            };
            if req.deadline.is_some_and(|d| d <= now) {
                if outcome == Err(CallError::Timeout) {
                    // Its deadline passed while it waited in the mailbox: not handled.
                    st.stats.requests_expired += 1;
                    tracing::debug!(node = %self.name(), peer = %req.peer, component = %req.component,
                        message_id = req.message_id, "ask expired in the mailbox; not handled");
                }
                // The caller has given up; an answer would be counted as unmatched.
                continue;
            }
            let result = outcome
                .map(|(bytes, content_type)| (bytes, content_type.to_owned()))
                .map_err(|e| e.to_wire());
            st.session.reply(now, &req, result);
        }
        drop(st);
        self.flush();
    }

    /// The task that sends answers completed while the node was busy.
    pub(super) async fn answer_loop(&self) {
        loop {
            std::future::poll_fn(|cx| {
                if self.shared.answers.borrow().is_empty() {
                    self.shared.answers_waker.set(Some(cx.waker().clone()));
                    std::task::Poll::Pending
                } else {
                    std::task::Poll::Ready(())
                }
            })
            .await;
            self.flush_answers();
        }
    }

    /// An inbound request that cannot be delivered: an ask is answered with `error`,
    /// a tell counted in `dropped`; both logged.
    pub(super) fn refuse(&self, req: &Request, answer: Option<Answer>, error: &CallError) {
        tracing::warn!(
            node = %self.name(),
            peer = %req.peer,
            component = %req.component,
            message_type = %req.message_type,
            message_id = req.message_id,
            %error,
            "inbound message not delivered"
        );
        if !req.expects_reply {
            self.shared.state.borrow_mut().stats.dropped += 1;
            return;
        }
        self.shared.state.borrow_mut().stats.refused += 1;
        match answer {
            Some(answer) => answer(Err(error.clone())),
            None => {
                self.shared
                    .answers
                    .borrow_mut()
                    .push_back((req.clone(), Err(error.clone())));
                self.flush_answers();
            }
        }
    }
}

fn incoming(req: &Request) -> Incoming<'_> {
    Incoming {
        message_type: &req.message_type,
        content_type: &req.content_type,
        payload: &req.payload,
        expects_reply: req.expects_reply,
        deadline: deadline_instant(req.deadline),
    }
}
