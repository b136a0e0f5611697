//! Inbound requests on the driver's side: queue them in their component's mailbox,
//! give them back to the router's backlog when it is full (a task per component with
//! a backlog moves them in as room appears), and send answers without a task per ask.
//!
//! An ask's reply comes back through a callback from the component's task (no task
//! waits for it); an ask whose deadline passed while it waited in the mailbox is not
//! handled at all (counted in
//! [`NodeStats::requests_expired`](crate::remote::NodeStats::requests_expired)).

use std::rc::Rc;
use std::time::Duration;

use tern_executor::{Instant, time};
use tern_proto::session::{Nanos, Request};

use super::{Node, now};
use crate::remote::error::CallError;
use crate::remote::export::{Answer, Delivered, Exported, Incoming};

impl Node {
    /// A request for a local component (not a stream, not control): queue it, or
    /// hold it in the component's backlog.
    pub(super) fn deliver(&self, now: Nanos, req: Request) {
        let export = self.shared.router.borrow().export(&req.component).cloned();
        let Some(export) = export else {
            let error = CallError::UnknownComponent(req.component.clone());
            return self.shared.router.borrow_mut().refuse(now, &req, &error);
        };
        let mut answer = req.expects_reply.then(|| self.answer_to(&req));
        if !self.shared.router.borrow().is_holding(&req.component) {
            match export.deliver(&incoming(&req), &mut answer) {
                Ok(Delivered::Queued) => return self.shared.router.borrow_mut().delivered(),
                Ok(Delivered::Full) => {}
                Err(error) => {
                    return self.shared.router.borrow_mut().refuse(now, &req, &error);
                }
            }
        }
        let component = req.component.clone();
        let fresh = self.shared.router.borrow_mut().hold(now, req, answer);
        if fresh {
            let node = self.clone();
            // Ends when the backlog is empty (shutdown empties it).
            tern_executor::spawn(async move { node.drain(&component, &*export).await }).detach();
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
                let Some(mut held) = held else {
                    break;
                };
                if !has_room && held.until <= now {
                    self.shared
                        .router
                        .borrow_mut()
                        .refuse(now, &held.req, &CallError::MailboxFull);
                    continue;
                }
                if held.req.expects_reply && held.answer.is_none() {
                    // Held by the router before the driver saw it.
                    held.answer = Some(self.answer_to(&held.req));
                }
                match export.deliver(&incoming(&held.req), &mut held.answer) {
                    Ok(Delivered::Queued) => self.shared.router.borrow_mut().delivered(),
                    Ok(Delivered::Full) => {
                        self.shared.router.borrow_mut().unpop_held(held);
                        break;
                    }
                    Err(error) => self
                        .shared
                        .router
                        .borrow_mut()
                        .refuse(now, &held.req, &error),
                }
            }
            self.pump(now());
        }
    }

    /// Where an ask's outcome goes: back to the router as a reply, from whatever task
    /// completes it.
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
                let Some((req, outcome)) = next else {
                    break;
                };
                router.answer(now, &req, outcome);
            }
        }
        let _ = self.flush();
    }
}

fn incoming(req: &Request) -> Incoming<'_> {
    Incoming {
        message_type: &req.message_type,
        content_type: &req.content_type,
        payload: &req.payload,
        expects_reply: req.expects_reply,
        deadline: req.deadline.map(Instant::from_nanos),
    }
}
