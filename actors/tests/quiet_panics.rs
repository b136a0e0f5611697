//! A panic inside a component is caught and reported as a typed error and one log
//! line: the process's panic hook is not called for it (no message and no backtrace
//! on stderr). A panic anywhere else still reaches the hook.
//!
//! One test in its own process, because the panic hook is process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use tern_actors::{Actor, AskError, Context, Handler, spawn};
use tern_executor::Runtime;

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

struct Fragile;
impl Actor for Fragile {}

struct Boom;
impl Handler<Boom> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("expected: a handler that fails");
    }
}

#[test]
fn a_component_panic_skips_the_hook_and_another_panic_reaches_it() {
    // The application's own hook, installed before any component starts.
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    Runtime::new().unwrap().block_on(async {
        let fragile = spawn(Fragile);
        let got = fragile.ask(Boom).await;
        assert!(
            matches!(&got, Err(AskError::HandlerPanicked(m)) if m.contains("expected")),
            "{got:?}"
        );
    });
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        0,
        "the component's panic reached the hook"
    );

    // Outside a component the hook runs as before.
    let caught = std::panic::catch_unwind(|| panic!("expected: not in a component"));
    assert!(caught.is_err());
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1);
}
