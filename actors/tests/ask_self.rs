//! A component that asks itself waits for a reply only it can give: in debug builds a
//! warning says so when the ask is sent (the ask then ends by its deadline). Asking
//! another component, or asking a component from outside, says nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tern_actors::{Actor, Addr, AskError, Context, Handler, spawn};
use tern_executor::Runtime;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts warnings whose message mentions a component asking itself.
#[derive(Default)]
struct Counter(Arc<AtomicUsize>);

struct Message(String);
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Counter {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if *event.metadata().level() == Level::WARN && m.0.contains("asked itself") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

struct Selfish {
    me: Option<Addr<Self>>,
}
impl Actor for Selfish {}

struct Ping;
impl Handler<Ping> for Selfish {
    type Reply = u8;
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u8 {
        1
    }
}

/// Asks `target` for a Ping, from inside this component's handler.
struct AskOf(Addr<Selfish>);
impl Handler<AskOf> for Selfish {
    type Reply = Result<u8, AskError>;
    async fn handle(&mut self, m: AskOf, _: &mut Context<Self>) -> Result<u8, AskError> {
        m.0.ask(Ping).timeout(Duration::from_millis(20)).await
    }
}

struct Remember(Addr<Selfish>);
impl Handler<Remember> for Selfish {
    type Reply = ();
    async fn handle(&mut self, m: Remember, _: &mut Context<Self>) {
        self.me = Some(m.0);
    }
}

#[test]
fn asking_itself_warns_in_debug_builds_and_times_out() {
    let warnings = Arc::new(AtomicUsize::new(0));
    let subscriber = Counter(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        Runtime::new().unwrap().block_on(async {
            let a = spawn(Selfish { me: None });
            let b = spawn(Selfish { me: None });
            a.ask(Remember(a.clone())).await.unwrap();
            // From outside, and from a to b: fine, and silent.
            assert_eq!(a.ask(Ping).await, Ok(1));
            assert_eq!(a.ask(AskOf(b.clone())).await, Ok(Ok(1)));
            assert_eq!(warnings.load(Ordering::SeqCst), 0);
            // From a to a: the deadline, and a warning in debug builds.
            assert_eq!(a.ask(AskOf(a.clone())).await, Ok(Err(AskError::Timeout)));
        });
    });
    let expected = usize::from(cfg!(debug_assertions));
    assert_eq!(warnings.load(Ordering::SeqCst), expected);
}
