//! The component the process tests run in their containers: `Echo` answers a `Ping`
//! with its number. One place for `admin_metrics`, `app_node` and `gossip_processes`.

use serde::{Deserialize, Serialize};
use tern::app::App;
use tern::remote::{Json, Node, RemoteMessage};
use tern::{Actor, Context, Handler};

/// Answers every [`Ping`] with its number.
pub(crate) struct Echo;
impl Actor for Echo {}

/// A request carrying a number.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ping(pub(crate) u32);
impl RemoteMessage for Ping {
    const NAME: &'static str = "test.v1.Ping";
    type Codec = Json;
}
impl Handler<Ping> for Echo {
    type Reply = u32;
    async fn handle(&mut self, p: Ping, _: &mut Context<Self>) -> u32 {
        p.0
    }
}

/// An application named `name` with one component, `echo`, exported as "echo".
pub(crate) fn app(name: &'static str) -> App {
    App::new(name).component("echo", |node: &Node| {
        node.export("echo", &tern::spawn(Echo))?.accept::<Ping>();
        Ok(())
    })
}
