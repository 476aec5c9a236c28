//! A blocking API for code without an async runtime: the origin notes'
//! blocking `RedissonClient` beside the reactive one.
//!
//! ```
//! use std::time::Duration;
//! use fencelock::blocking::BlockingLock;
//! use fencelock::LockOptions;
//!
//! let lock = BlockingLock::connect("memory://blocking-doc")?;
//! let opts = LockOptions::new().with_ttl(Duration::from_secs(5));
//! {
//!     let guard = lock.acquire("report:2026-11", &opts)?;
//!     println!("token {}", guard.token());
//! } // released here, synchronously
//! assert!(lock.try_acquire("report:2026-11", &opts)?.is_some());
//! # Ok::<(), fencelock::Error>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{
    DistributedLock, Error, FencingToken, LeaseHandle, LockGuard, LockOptions, Result,
};
use tokio::runtime::{Handle, Runtime};

/// A [`DistributedLock`] driven from plain threads. It owns a small Tokio
/// runtime whose worker runs the watchdogs in the background.
#[derive(Debug, Clone)]
pub struct BlockingLock {
    inner: Arc<dyn DistributedLock>,
    runtime: Arc<Runtime>,
}

fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fencelock-blocking")
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the blocking API's runtime").with_source(e))
}

fn outside_runtime() -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::unsupported(
            "the blocking API was called from inside an async runtime; use the async API there",
        ));
    }
    Ok(())
}

impl BlockingLock {
    /// Connects to `url` (see [`connect`](crate::connect)).
    ///
    /// # Errors
    ///
    /// As [`connect`](crate::connect); [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// when called from inside an async runtime.
    pub fn connect(url: &str) -> Result<Self> {
        outside_runtime()?;
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::connect(url))?;
        Ok(BlockingLock {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// Wraps a lock that was built on the runtime `runtime`.
    pub fn from_parts(inner: Arc<dyn DistributedLock>, runtime: Arc<Runtime>) -> Self {
        BlockingLock { inner, runtime }
    }

    /// The async lock underneath.
    pub fn as_async(&self) -> &Arc<dyn DistributedLock> {
        &self.inner
    }

    /// One attempt; `Ok(None)` when busy. See [`DistributedLock::try_acquire`].
    ///
    /// # Errors
    ///
    /// As the async call.
    pub fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<BlockingGuard>> {
        outside_runtime()?;
        let guard = self.runtime.block_on(self.inner.try_acquire(key, opts))?;
        Ok(guard.map(|g| self.wrap(g)))
    }

    /// Blocks the thread until granted or the wait bound passes. See
    /// [`DistributedLock::acquire`].
    ///
    /// # Errors
    ///
    /// As the async call.
    pub fn acquire(&self, key: &str, opts: &LockOptions) -> Result<BlockingGuard> {
        outside_runtime()?;
        let guard = self.runtime.block_on(self.inner.acquire(key, opts))?;
        Ok(self.wrap(guard))
    }

    /// Runs `work` on this thread under the lock and releases afterwards, on
    /// every path (a panic resumes after the release). The work cannot be
    /// interrupted when the lock is lost; it can watch
    /// [`LeaseHandle::is_lost`], and the call returns
    /// [`ErrorKind::Lost`](crate::ErrorKind::Lost) when the grant was lost
    /// before the release.
    ///
    /// # Errors
    ///
    /// Acquire errors, or `Lost`.
    pub fn with_lock<T>(
        &self,
        key: &str,
        opts: &LockOptions,
        work: impl FnOnce(&LeaseHandle) -> T,
    ) -> Result<T> {
        let guard = self.acquire(key, opts)?;
        let handle = guard.handle();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&handle)));
        let released = guard.release();
        match out {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(v) => released.map(|()| v),
        }
    }

    fn wrap(&self, guard: LockGuard) -> BlockingGuard {
        BlockingGuard {
            guard: Some(guard),
            runtime: Arc::clone(&self.runtime),
        }
    }
}

/// A held lock from the blocking API. Dropping it releases synchronously.
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct BlockingGuard {
    guard: Option<LockGuard>,
    runtime: Arc<Runtime>,
}

impl BlockingGuard {
    fn inner(&self) -> &LockGuard {
        self.guard.as_ref().expect("guard present until consumed")
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        self.inner().key()
    }

    /// The fencing token.
    pub fn token(&self) -> FencingToken {
        self.inner().token()
    }

    /// Whether the grant is lost.
    pub fn is_lost(&self) -> bool {
        self.inner().is_lost()
    }

    /// A clonable view with the lost signal.
    pub fn handle(&self) -> LeaseHandle {
        self.inner().handle()
    }

    /// Pushes the deadline out; see [`LockGuard::extend`].
    ///
    /// # Errors
    ///
    /// As the async call.
    pub fn extend(&self, ttl: Duration) -> Result<()> {
        outside_runtime()?;
        self.runtime.block_on(self.inner().extend(ttl)).map(|_| ())
    }

    /// Releases now; see [`LockGuard::release`].
    ///
    /// # Errors
    ///
    /// As the async call (`Lost` when the grant was lost before).
    pub fn release(mut self) -> Result<()> {
        let guard = self.guard.take().expect("guard present until consumed");
        if Handle::try_current().is_ok() {
            drop(guard);
            return Err(Error::unsupported(
                "the blocking API was called from inside an async runtime; the release went to the background",
            ));
        }
        self.runtime.block_on(guard.release())
    }

    /// Keeps the lock held until its TTL ends; see [`LockGuard::leak`].
    pub fn leak(mut self) {
        if let Some(g) = self.guard.take() {
            g.leak();
        }
    }
}

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        if Handle::try_current().is_ok() {
            // Inside a runtime: blocking here could deadlock; the guard's own
            // drop releases in the background.
            drop(guard);
            return;
        }
        if let Err(e) = self.runtime.block_on(guard.release()) {
            tracing::debug!(error = %e, "release on drop of a blocking guard failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn guards_release_on_drop_and_with_lock_runs() {
        let lock = BlockingLock::connect("memory://blocking-test").unwrap();
        let opts = LockOptions::new().with_ttl(Duration::from_secs(5));
        let g = lock.acquire("k", &opts).unwrap();
        assert!(lock.try_acquire("k", &opts).unwrap().is_none());
        let t1 = g.token();
        drop(g);
        let out = lock.with_lock("k", &opts, |lease| lease.token()).unwrap();
        assert!(out > t1);
        let g = lock.try_acquire("k", &opts).unwrap().unwrap();
        g.extend(Duration::from_secs(10)).unwrap();
        g.release().unwrap();
    }

    #[tokio::test]
    async fn refuses_to_block_inside_a_runtime() {
        let e = BlockingLock::connect("memory://x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}
