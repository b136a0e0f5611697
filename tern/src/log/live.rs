//! What the log filter lets through, changed while the container runs: the
//! `RUST_LOG`-style filter itself (`app logs --level`), and every event of a handler
//! in a debug flow ([`tern_actors::trace::debug`]).

use std::sync::{Mutex, PoisonError};

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::reload;

use super::LogError;
use tern_actors::trace::debug;

/// The module whose events say what the debug switches do.
const DEBUG_TARGET: &str = "tern_actors::trace::debug";

/// Lets every event through while the handler being polled is in a debug flow. With
/// no debug switch on in the process, it tells `tracing` that no callsite is
/// interested (and its level hint is `OFF`), so a `debug!` the main filter turned off
/// costs what it cost before; switching on or off rebuilds the callsites' interest.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlowFilter;

impl<S: Subscriber> Filter<S> for FlowFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        // The switches' own events (`tern.debug.message`, on, off) pass at any level.
        debug::in_flow() || meta.target() == DEBUG_TARGET
    }

    fn callsite_enabled(&self, _meta: &'static Metadata<'static>) -> Interest {
        if debug::any_on() {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if debug::any_on() {
            LevelFilter::TRACE
        } else {
            LevelFilter::OFF
        })
    }
}

/// Changes the filter of the installed subscriber.
type Handle = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send>;

/// The filter handle of the subscriber [`super::init_with`] installed.
static LIVE: Mutex<Option<Handle>> = Mutex::new(None);

/// Keeps `handle` as the one [`set_filter`] changes.
pub(crate) fn keep<S: Subscriber>(handle: reload::Handle<EnvFilter, S>) {
    let change: Handle = Box::new(move |f| handle.reload(f).map_err(|e| e.to_string()));
    *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(change);
}

/// Replaces the log filter of this process (installed by [`super::init_with`] or
/// [`super::init`]) with `filter`, a `RUST_LOG`-style directive list, at once.
///
/// # Errors
///
/// [`LogError::Filter`] if it does not parse or no tern subscriber is installed.
pub fn set_filter(filter: &str) -> Result<(), LogError> {
    let bad = |why: String| LogError::Filter {
        filter: filter.to_owned(),
        why,
    };
    let parsed = EnvFilter::builder()
        .parse(filter)
        .map_err(|e| bad(e.to_string()))?;
    let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(change) = live.as_ref() else {
        return Err(bad(
            "no tern log subscriber is installed in this process".into()
        ));
    };
    change(parsed).map_err(bad)?;
    tracing::info!(name: "tern.log.filter_changed", filter, "log filter changed");
    Ok(())
}
