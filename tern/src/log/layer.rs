//! The `tracing` layer that writes tern's log lines: text or JSON, stamped with the
//! (virtual) time and the node, through flood control.

use std::io::Write;
use std::sync::Mutex;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Context, Layer};

use super::fields::{Fields, Value};
use super::flood::{Flood, FloodConfig, Suppressed};
use super::{LogFormat, VirtualTime};

/// The name of the line reporting lines dropped by flood control.
pub(super) const SUPPRESSED: &str = "tern.log.suppressed";

/// Writes each event as one line; see the [`crate::log`] docs.
pub(super) struct LineLayer<W> {
    format: LogFormat,
    writer: W,
    flood: Mutex<Flood>,
}

impl<W> std::fmt::Debug for LineLayer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineLayer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl<W> LineLayer<W> {
    pub(super) const fn new(format: LogFormat, flood: FloodConfig, writer: W) -> Self {
        Self {
            format,
            writer,
            flood: Mutex::new(Flood::new(flood)),
        }
    }
}

/// What a line says, whatever the format.
struct Line<'a> {
    time: String,
    level: Level,
    /// The event's stable name, when it was given one.
    name: Option<&'a str>,
    target: &'a str,
    node: Option<String>,
    fields: &'a Fields,
}

/// Events without `name:` get `event file:line` from `tracing`; that is no name.
fn stable_name(name: &str) -> Option<&str> {
    (!name.starts_with("event ")).then_some(name)
}

fn now_text() -> String {
    let mut time = String::new();
    let _ = VirtualTime.format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut time));
    time
}

/// The node logging. Under a virtual clock (the simulator: many nodes on one thread)
/// the name given to [`super::set_node`] on this runtime, else that of the
/// `remote::Node` running on it; in a real process the container's name
/// ([`super::set_process_node`]).
fn current_node() -> Option<String> {
    if !tern_executor::time::is_virtual()? {
        return super::process_node();
    }
    let named = tern_executor::extension(super::NodeName::default);
    let named = named.0.borrow().clone();
    named.or_else(|| crate::remote::Node::current().map(|n| n.name().to_owned()))
}

impl Line<'_> {
    fn text(&self) -> String {
        let mut out = format!("{} {:>5}", self.time, self.level);
        if let Some(node) = &self.node {
            out.push_str(&format!(" node={node}"));
        }
        out.push(' ');
        out.push_str(self.name.unwrap_or(self.target));
        out.push(':');
        if let Some(m) = &self.fields.message {
            out.push(' ');
            out.push_str(m);
        }
        for (k, v) in &self.fields.list {
            if *k != "node" || self.node.is_none() {
                out.push_str(&format!(" {k}={v}"));
            }
        }
        out
    }

    fn json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("t".into(), self.time.clone().into());
        map.insert("level".into(), self.level.as_str().into());
        if let Some(name) = self.name {
            map.insert("name".into(), name.into());
        }
        map.insert("target".into(), self.target.into());
        if let Some(node) = &self.node {
            map.insert("node".into(), node.clone().into());
        }
        if let Some(m) = &self.fields.message {
            map.insert("message".into(), m.clone().into());
        }
        for (k, v) in &self.fields.list {
            if *k == "node" && self.node.is_some() {
                continue;
            }
            // A field may not overwrite the line's own keys.
            let key = if map.contains_key(*k) {
                format!("field.{k}")
            } else {
                (*k).to_owned()
            };
            map.insert(key, v.to_json());
        }
        serde_json::Value::Object(map).to_string()
    }

    fn render(&self, format: LogFormat) -> String {
        match format {
            LogFormat::Text => self.text(),
            LogFormat::Json => self.json(),
        }
    }
}

impl<S, W> Layer<S> for LineLayer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut due = Vec::new();
        let admitted = match tern_executor::time::try_now() {
            Some(now) => {
                let mut flood = self
                    .flood
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                flood.admit(meta.name(), meta.target(), fields.remote(), now, &mut due)
            }
            // Outside a runtime there is no clock to count a window by.
            None => true,
        };
        if due.is_empty() && !admitted {
            return;
        }
        let time = now_text();
        let node = fields
            .get("node")
            .map(ToString::to_string)
            .or_else(current_node);
        let mut out = String::new();
        for s in due {
            let Suppressed {
                event,
                remote,
                count,
            } = s;
            let mut list = vec![
                ("event", Value::Str(event.to_owned())),
                ("suppressed", Value::U64(count)),
            ];
            if let Some(r) = remote {
                list.push(("remote", Value::Str(r)));
            }
            let report = Fields {
                message: Some(format!("suppressed {count} lines")),
                list,
            };
            let line = Line {
                time: time.clone(),
                level: Level::WARN,
                name: Some(SUPPRESSED),
                target: "tern::log",
                node: node.clone(),
                fields: &report,
            };
            out.push_str(&line.render(self.format));
            out.push('\n');
        }
        if admitted {
            let line = Line {
                time,
                level: *meta.level(),
                name: stable_name(meta.name()),
                target: meta.target(),
                node,
                fields: &fields,
            };
            out.push_str(&line.render(self.format));
            out.push('\n');
        }
        let _ = self.writer.make_writer().write_all(out.as_bytes());
    }
}
