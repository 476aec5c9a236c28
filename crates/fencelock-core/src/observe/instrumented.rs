//! [`Instrumented`]: any lock, with a span and metrics around each acquire.

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::Instrument;

use super::record;
use crate::{
    Capabilities, DistributedLock, ForcedUnlock, Inspect, LockGuard, LockOptions, LockStatus,
    Result,
};

/// A [`DistributedLock`] whose every acquire runs in a `fencelock.acquire`
/// span (fields `backend`, `key`, `op`) and ends with an event saying how it
/// ended and what it waited; its guards' lease spans and metrics carry the
/// backend's name. [`Inspect`] passes through unchanged.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fencelock_core::Result<()> {
/// use fencelock_core::{DistributedLock, Instrumented, LockOptions, MemoryLock};
///
/// let lock = Instrumented::new(MemoryLock::new());
/// let guard = lock.acquire("invoice:7", &LockOptions::new()).await?;
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Instrumented<L> {
    inner: L,
}

impl<L: DistributedLock> Instrumented<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> Self {
        Instrumented { inner }
    }

    /// The wrapped lock.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> L {
        self.inner
    }

    async fn observed<T>(
        &self,
        op: &'static str,
        key: &str,
        opts: &LockOptions,
        call: impl std::future::Future<Output = Result<T>>,
        guard_of: for<'a> fn(&'a T) -> Option<&'a LockGuard>,
    ) -> Result<T> {
        let backend = self.inner.capabilities().backend;
        let span = tracing::info_span!(
            "fencelock.acquire",
            backend,
            key,
            op,
            wait = ?opts.wait(),
            ttl = ?opts.ttl(),
        );
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let took = started.elapsed();
        let outcome = match &result {
            Ok(v) => match guard_of(v) {
                Some(g) => {
                    g.observed_as(backend);
                    tracing::debug!(parent: &span, token = %g.token(), waited = ?took, "granted");
                    "granted"
                }
                None => {
                    tracing::debug!(parent: &span, waited = ?took, "busy");
                    "busy"
                }
            },
            Err(e) => {
                let outcome = record::outcome(e.kind());
                if outcome == "busy" {
                    tracing::debug!(parent: &span, waited = ?took, "still busy at the wait bound");
                } else {
                    tracing::warn!(parent: &span, waited = ?took, error = %e, "acquire failed");
                }
                outcome
            }
        };
        record::acquire(backend, op, outcome, took);
        result
    }
}

#[async_trait]
impl<L: DistributedLock> DistributedLock for Instrumented<L> {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        let call = self.inner.try_acquire(key, opts);
        self.observed("try_acquire", key, opts, call, Option::as_ref)
            .await
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        let call = self.inner.acquire(key, opts);
        self.observed("acquire", key, opts, call, |g| Some(g)).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

#[async_trait]
impl<L: DistributedLock + Inspect> Inspect for Instrumented<L> {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        self.inner.status(key).await
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        self.inner.list_all(prefix).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        self.inner.list(prefix).await
    }

    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        self.inner.force_unlock(key).await
    }
}
