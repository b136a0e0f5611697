//! Inbound requests on the driver's side: queue them in their component's mailbox,
//! give them back to the router's backlog when it is full (a task per component with
//! a backlog moves them in as room appears), and send answers without a task per ask.
//!
//! An ask's reply comes back through its [`Answer`], from the component's task (no
//! task waits for it); an ask whose deadline passed while it waited in the mailbox is
//! not handled at all (counted in
//! [`NodeStats::requests_expired`](crate::remote::NodeStats::requests_expired)).

use std::mem;
use std::rc::{Rc, Weak};
use std::time::Duration;

use tern_executor::{Instant, time};
use tern_proto::session::{Nanos, Request};

use super::{Node, Shared, now};
use crate::remote::error::CallError;
use crate::remote::export::{Delivered, Encoded, Exported, Incoming};
use crate::remote::router::{Held, charge_of};
use crate::trace::SpanContext;

/// Where a remote ask's outcome goes: back to its node's router as a reply, once,
/// from whatever task completes it. It carries the request (without its body), so
/// answering copies nothing, and the bytes the request was charged against the
/// inbound budget, given back with the answer (or when it is dropped unanswered).
pub(crate) struct Answer {
    node: Weak<Shared>,
    req: Option<Request>,
    charged: usize,
}

impl Answer {
    /// Sends the outcome (or drops it if the node is gone).
    pub(crate) fn send(mut self, outcome: Result<Encoded, CallError>) {
        if let (Some(shared), Some(req)) = (self.node.upgrade(), self.req.take()) {
            let answer = (req, self.charged, Some(outcome));
            shared.answers.borrow_mut().push_back(answer);
            Node { shared }.flush_answers();
        }
    }

    /// Takes the request back (it was not queued after all): nothing is sent, and its
    /// charge is the caller's to give back.
    fn take(mut self) -> Option<Request> {
        self.req.take()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        // Never answered (the component dropped it): its bytes are given back.
        if let (Some(shared), Some(req)) = (self.node.upgrade(), self.req.take()) {
            shared
                .answers
                .borrow_mut()
                .push_back((req, self.charged, None));
            Node { shared }.wake_driver();
        }
    }
}

/// What offering a request to a mailbox did.
enum Offer {
    /// Queued; a tell's charge (the peer and its bytes) is to be given back now (an
    /// ask's goes back with its answer).
    Queued(Option<(String, usize)>),
    /// The mailbox is full: the request comes back, still charged.
    Full(Request),
    /// Refused: the request comes back with why; its charge is to be given back.
    Refused(Request, CallError, usize),
    /// Refused, and its ask already answered with why (its charge went back with it).
    Answered(CallError),
}

impl Node {
    /// A request for a local component (not a stream, not control), charged to the
    /// inbound budget: queue it, or hold it in the component's backlog.
    pub(super) fn deliver(&self, now: Nanos, req: Request) {
        let charged = charge_of(&req);
        let export = self.shared.router.borrow().export(&req.component).cloned();
        let Some(export) = export else {
            let error = CallError::NotHosted {
                name: req.component.clone(),
            };
            let mut router = self.shared.router.borrow_mut();
            router.release(&req.peer, charged);
            return router.refuse(now, &req, &error);
        };
        let req = if self.shared.router.borrow().is_holding(&req.component) {
            req
        } else {
            match self.offer(&*export, req, charged) {
                Offer::Full(req) => req,
                other => return self.settle(now, other),
            }
        };
        let component = req.component.clone();
        let fresh = self.shared.router.borrow_mut().hold(now, req);
        if fresh {
            let node = self.clone();
            // Ends when the backlog is empty (shutdown empties it).
            tern_executor::spawn(async move { node.drain(&component, &*export).await }).detach();
        }
    }

    /// Queues `req` (charged `charged` bytes) in the component's mailbox if there is
    /// room.
    fn offer(&self, export: &dyn Exported, mut req: Request, charged: usize) -> Offer {
        let payload = mem::take(&mut req.payload);
        let message_type = mem::take(&mut req.message_type);
        let content_type = mem::take(&mut req.content_type);
        let flow = mem::take(&mut req.flow);
        // Named in the handler's span, so copied only while tracing is on.
        let component = if crate::trace::is_enabled() {
            req.component.clone()
        } else {
            String::new()
        };
        let incoming = Incoming {
            message_type: &message_type,
            content_type: &content_type,
            payload: &payload,
            expects_reply: req.expects_reply,
            deadline: req.deadline.map(Instant::from_nanos),
            trace: req.trace.as_deref().and_then(SpanContext::from_wire),
            flow: &flow,
            node: &self.shared.name,
            component: &component,
        };
        let (mut answer, tell) = if req.expects_reply {
            let node = Rc::downgrade(&self.shared);
            let req = Some(req);
            (Some(Answer { node, req, charged }), None)
        } else {
            (None, Some(req))
        };
        let result = export.deliver(&incoming, &mut answer);
        if result == Ok(Delivered::Queued) {
            return Offer::Queued(tell.map(|t| (t.peer, charged)));
        }
        let Some(mut req) = answer.and_then(Answer::take).or(tell) else {
            // The component answered the ask already (it stopped meanwhile).
            return Offer::Answered(result.err().unwrap_or(CallError::Stopped));
        };
        req.payload = payload;
        req.message_type = message_type;
        req.content_type = content_type;
        req.flow = flow;
        match result {
            Err(error) => Offer::Refused(req, error, charged),
            Ok(_) => Offer::Full(req),
        }
    }

    /// Counts what an offer that did not hold its request came to.
    fn settle(&self, now: Nanos, offer: Offer) {
        let mut router = self.shared.router.borrow_mut();
        match offer {
            Offer::Queued(tell) => {
                router.delivered();
                if let Some((peer, charged)) = tell {
                    router.release(&peer, charged);
                }
            }
            Offer::Full(req) => {
                router.release(&req.peer, charge_of(&req));
                router.refuse(now, &req, &CallError::MailboxFull);
            }
            Offer::Refused(req, error, charged) => {
                router.release(&req.peer, charged);
                router.refuse(now, &req, &error);
            }
            Offer::Answered(error) => {
                router.stats_mut().refused += 1;
                tracing::warn!(node = %self.name(), %error, "inbound ask refused by its component");
            }
        }
    }

    /// Moves one component's backlog into its mailbox as room appears, in order;
    /// refuses what waited past its time. Ends when the backlog is empty.
    async fn drain(&self, component: &str, export: &dyn Exported) {
        loop {
            let until = self.shared.router.borrow().held_until(component);
            let Some(until) = until else {
                return;
            };
            let left = Duration::from_nanos(until.saturating_sub(now()));
            let has_room = time::timeout(left, export.room()).await.is_ok();
            loop {
                let now = now();
                let held = self.shared.router.borrow_mut().pop_held(component);
                let Some(Held { req, until, bytes }) = held else {
                    break;
                };
                if !has_room && until <= now {
                    let mut router = self.shared.router.borrow_mut();
                    router.release(&req.peer, bytes);
                    router.refuse(now, &req, &CallError::MailboxFull);
                    continue;
                }
                match self.offer(export, req, bytes) {
                    Offer::Full(req) => {
                        let held = Held { req, until, bytes };
                        self.shared.router.borrow_mut().unpop_held(held);
                        break;
                    }
                    other => self.settle(now, other),
                }
            }
            self.pump(now());
        }
    }

    /// Hands finished answers to the router and sends them; if the router is busy
    /// (this runs inside one of its own calls), the driver does it next.
    pub(super) fn flush_answers(&self) {
        let now = now();
        {
            let Ok(mut router) = self.shared.router.try_borrow_mut() else {
                self.wake_driver();
                return;
            };
            // One at a time, so the queue keeps its buffer (no allocation per answer).
            loop {
                let next = self.shared.answers.borrow_mut().pop_front();
                let Some((req, charged, outcome)) = next else {
                    break;
                };
                match outcome {
                    Some(outcome) => router.answer(now, req, charged, outcome),
                    None => router.release(&req.peer, charged),
                }
            }
        }
        let _ = self.flush();
    }
}
