//! [`Harness`]: what the suite needs from the backend under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use fencelock_core::{DistributedLock, Result};

/// The backend under test and its running store, as the cases see them.
///
/// A backend implements it once (for its own store fixture) and runs every
/// case that applies to it ([`crate::registered`]). Only
/// [`backend`](Harness::backend), [`url`](Harness::url) and
/// [`connect`](Harness::connect) are required; the rest enable the cases
/// that need them (a case whose needs are not met is not registered, never
/// passed silently).
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The backend's name in test names and summaries (`redis`, `my-store`).
    fn backend(&self) -> &str;

    /// The store's address in the form [`connect`](Harness::connect) and the
    /// contender binary take (usually the backend's URL).
    fn url(&self) -> String;

    /// A new independent client of the store at `url` (its own
    /// connections and session).
    ///
    /// # Errors
    ///
    /// The backend's connect errors (the case then fails).
    async fn connect(&self, url: &str) -> Result<Arc<dyn DistributedLock>>;

    /// The store's network endpoints (empty: none, e.g. an in-process or
    /// file store). Cases that put a proxy in between or need a closed
    /// port use them.
    fn endpoints(&self) -> Vec<SocketAddr> {
        Vec::new()
    }

    /// [`url`](Harness::url) with the endpoints replaced by `endpoints`
    /// (same count and order); `None` when the backend cannot.
    fn url_via(&self, endpoints: &[SocketAddr]) -> Option<String> {
        let _ = endpoints;
        None
    }

    /// How many server processes of the store can be paused with
    /// [`pause`](Harness::pause) (0: none).
    fn servers(&self) -> usize {
        0
    }

    /// Stops server `i` (SIGSTOP): it keeps its sockets but answers nothing.
    fn pause(&self, i: usize) {
        let _ = i;
    }

    /// Resumes server `i` after [`pause`](Harness::pause).
    fn resume(&self, i: usize) {
        let _ = i;
    }

    /// A program built on [`crate::contender::main`] for this backend, for
    /// the cases that run holders in other processes; `None`: those cases
    /// are not registered for a store shared across processes.
    fn contender(&self) -> Option<PathBuf> {
        None
    }
}
