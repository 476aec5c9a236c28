//! The blocking API's own runtime, and how a thread waits on it.

use std::future::Future;
use std::sync::mpsc;
use std::sync::Arc;

use fencelock_core::{Error, Result};
use tokio::runtime::{Handle, Runtime};

/// The blocking API's own runtime: runs the store calls and the watchdogs.
#[derive(Debug)]
pub(super) struct Driver {
    pub(super) runtime: Option<Runtime>,
    /// A runtime the caller gave ([`BlockingLock::from_parts`]).
    pub(super) shared: Option<Arc<Runtime>>,
}

impl Driver {
    pub(super) fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fencelock-blocking")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::backend("cannot start the blocking API's runtime").with_source(e)
            })?;
        Ok(Driver {
            runtime: Some(runtime),
            shared: None,
        })
    }

    pub(super) fn handle(&self) -> &Handle {
        match (&self.runtime, &self.shared) {
            (Some(rt), _) => rt.handle(),
            (None, Some(rt)) => rt.handle(),
            (None, None) => unreachable!("a driver has a runtime until drop"),
        }
    }

    /// Runs `fut` on this runtime and blocks the calling thread for its
    /// output. Works on any thread that may block, `spawn_blocking`
    /// included, since it never enters the caller's runtime.
    pub(super) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| Error::backend("the blocking API's runtime stopped before answering"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // A runtime may not be dropped where blocking is forbidden (async
            // code); shutting it down in the background is always allowed.
            rt.shutdown_background();
        }
    }
}
