//! Calling tokio-based libraries (database drivers, HTTP clients) from a component.
//!
//! A component runs on tern's single-threaded executor, which is not a tokio runtime,
//! so a future that needs tokio's reactor or timers (`tokio::net`, `tokio::time`, most
//! client libraries) cannot run on it directly. [`Tokio`] starts a tokio runtime on
//! one side thread; [`Tokio::run`] sends a future there and gives back a future that
//! a component awaits like any other: the handler waits, the container keeps running
//! other components, and the result (or a typed [`TokioError`]) comes back through
//! tern's cross-thread wake-ups.
//!
//! The side thread is real time and real threads: use it for I/O with the outside
//! world, never under the simulator (nothing on it is deterministic or replayable).
//! Futures sent there must be `Send`. Needs tern's `tokio` feature:
//! `tern = { ..., features = ["tokio"] }`.
//!
//! ```
//! use tern::compat::tokio::Tokio;
//! use tern::prelude::*;
//!
//! struct Fetcher { io: Tokio }
//! impl Actor for Fetcher {}
//!
//! struct Fetch(u64);
//! impl Handler<Fetch> for Fetcher {
//!     type Reply = u64;
//!     async fn handle(&mut self, m: Fetch, _: &mut Context<Self>) -> u64 {
//!         // Stands for a tokio-based client call.
//!         let call = async move {
//!             tokio::time::sleep(std::time::Duration::from_millis(5)).await;
//!             m.0 * 2
//!         };
//!         self.io.run(call).await.unwrap_or(0)
//!     }
//! }
//!
//! Runtime::new().unwrap().block_on(async {
//!     let fetcher = spawn(Fetcher { io: Tokio::start().unwrap() });
//!     assert_eq!(fetcher.ask(Fetch(21)).await, Ok(42));
//! });
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long [`Tokio`]'s drop lets the runtime's tasks finish before it stops anyway.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a future sent to tokio gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokioError {
    /// The runtime or its thread could not be started.
    #[error("could not start the tokio runtime: {0}")]
    Start(String),
    /// The future panicked on the tokio side.
    #[error("the tokio task panicked: {0}")]
    Panicked(String),
    /// The task was cancelled: the runtime shut down before it finished.
    #[error("the tokio task was cancelled (the runtime shut down)")]
    Cancelled,
}

/// A tokio runtime on a side thread, for futures that need tokio; see the
/// [module docs](self). Dropping it shuts the runtime down (tasks still running get
/// [`SHUTDOWN_TIMEOUT`]) and joins the thread.
#[derive(Debug)]
pub struct Tokio {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tokio {
    /// Starts a current-thread tokio runtime, with every driver the build of tokio
    /// has (I/O, time), on a thread of its own named `tern-tokio`.
    ///
    /// # Errors
    ///
    /// [`TokioError::Start`] if the runtime or the thread cannot be created.
    pub fn start() -> Result<Self, TokioError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        // The one thread tern starts outside its executor: tokio's runtime must run
        // somewhere, and never on a container's thread. It only runs tokio futures;
        // results come back to the container through wakers, which tern's executor
        // accepts from any thread.
        #[allow(clippy::disallowed_methods)]
        let thread = std::thread::Builder::new()
            .name("tern-tokio".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(rt.handle().clone()));
                // Runs the tasks sent through the handle until stopped (or until the
                // `Tokio` is gone: the sender dropped).
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
            })
            .map_err(|e| TokioError::Start(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(handle)) => Ok(Self {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(TokioError::Start(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(TokioError::Start("the runtime thread ended".into()))
            }
        }
    }

    /// Runs `future` on the tokio runtime; await the result from a component.
    /// Dropping the returned [`TokioTask`] cancels the tokio task.
    pub fn run<F>(&self, future: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(self.handle.spawn(future))
    }

    /// The runtime's handle, for libraries that take one.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Tokio {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Bounded: the runtime gives its tasks SHUTDOWN_TIMEOUT, then returns.
            let _ = thread.join();
        }
    }
}

/// A future running on [`Tokio`]'s runtime, awaited from tern; cancels it on drop.
#[derive(Debug)]
#[must_use = "the tokio task is cancelled when this is dropped"]
pub struct TokioTask<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioTask<T> {
    type Output = Result<T, TokioError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|e| {
                if e.is_panic() {
                    let p = e.into_panic();
                    TokioError::Panicked(tern_executor::panic_message(&*p))
                } else {
                    TokioError::Cancelled
                }
            })
        })
    }
}

impl<T> Drop for TokioTask<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
