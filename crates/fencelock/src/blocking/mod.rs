//! A blocking API for code without an async runtime: the origin notes'
//! blocking `RedissonClient` beside the reactive one. It is the async API
//! in another style: the same calls, the same helpers (`with_lock`, the
//! `try_with_lock` fallback), the same handle given to the work.
//!
//! ```
//! use std::time::Duration;
//! use fencelock::blocking::BlockingLock;
//! use fencelock::{Attempt, LockOptions};
//!
//! let lock = BlockingLock::connect("memory://blocking-doc")?;
//! let opts = LockOptions::new().with_ttl(Duration::from_secs(5));
//! {
//!     let guard = lock.acquire("report:2026-11", &opts)?;
//!     println!("token {}", guard.token());
//! } // released here, synchronously
//! let opts = opts.with_wait(Duration::ZERO);
//! match lock.try_with_lock("report:2026-11", &opts, |lease| lease.token())? {
//!     Attempt::Ran(token) => println!("ran under token {token}"),
//!     Attempt::Busy => println!("busy: fallback"),
//! }
//! # Ok::<(), fencelock::Error>(())
//! ```
//!
//! # Where it may be called
//!
//! From any thread that may block: plain threads, and
//! `tokio::task::spawn_blocking` inside an async service (the usual way to
//! call synchronous code there). Every store call runs on the blocking
//! API's own small runtime, and the calling thread waits for its answer, so
//! it never needs the caller's runtime and cannot deadlock it. Do not call
//! it from async code itself: it would block that worker thread for as long
//! as the call waits (use the async API there).

mod driver;
mod guard;

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{
    Attempt, DistributedLock, ErrorKind, LeaseHandle, LockGuard, LockOptions, Result,
};
use tokio::runtime::Runtime;

use driver::Driver;
pub use guard::BlockingGuard;

/// A [`DistributedLock`] driven from threads that may block. It owns a
/// small Tokio runtime whose worker runs the store calls and the watchdogs.
#[derive(Debug, Clone)]
pub struct BlockingLock {
    inner: Arc<dyn DistributedLock>,
    driver: Arc<Driver>,
}

impl BlockingLock {
    /// Connects to `url` (see [`connect`](crate::connect)).
    ///
    /// # Errors
    ///
    /// As [`connect`](crate::connect).
    pub fn connect(url: &str) -> Result<Self> {
        let driver = Driver::start()?;
        let url = url.to_string();
        let inner = driver.run(async move { crate::connect(&url).await })??;
        Ok(BlockingLock {
            inner,
            driver: Arc::new(driver),
        })
    }

    /// Wraps a lock that was built on the runtime `runtime`, which then runs
    /// its store calls. The caller keeps `runtime` alive and must not call
    /// the blocking API from that runtime's own worker threads.
    pub fn from_parts(inner: Arc<dyn DistributedLock>, runtime: Arc<Runtime>) -> Self {
        BlockingLock {
            inner,
            driver: Arc::new(Driver {
                runtime: None,
                shared: Some(runtime),
            }),
        }
    }

    /// Wraps an async lock; its store calls and watchdogs run on a runtime
    /// of the blocking API's own.
    ///
    /// # Errors
    ///
    /// When that runtime cannot start.
    pub fn new(inner: Arc<dyn DistributedLock>) -> Result<Self> {
        Ok(BlockingLock {
            inner,
            driver: Arc::new(Driver::start()?),
        })
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
        let (lock, key, opts) = (Arc::clone(&self.inner), key.to_string(), opts.clone());
        let guard = self
            .driver
            .run(async move { lock.try_acquire(&key, &opts).await })??;
        Ok(guard.map(|g| self.wrap(g)))
    }

    /// Blocks the thread until granted or the wait bound passes. See
    /// [`DistributedLock::acquire`].
    ///
    /// # Errors
    ///
    /// As the async call: [`ErrorKind::Busy`] when the wait bound passed
    /// under contention, `Timeout` or `Connection` when the store did not
    /// answer.
    pub fn acquire(&self, key: &str, opts: &LockOptions) -> Result<BlockingGuard> {
        let (lock, key, opts) = (Arc::clone(&self.inner), key.to_string(), opts.clone());
        let guard = self
            .driver
            .run(async move { lock.acquire(&key, &opts).await })??;
        Ok(self.wrap(guard))
    }

    /// Runs `work` on this thread under the lock and releases afterwards, on
    /// every path (a panic resumes after the release). `work` gets the
    /// grant's [`LeaseHandle`], as in the async
    /// [`with_lock`](crate::DistributedLockExt::with_lock). A thread cannot
    /// be interrupted when the lock is lost: check
    /// [`LeaseHandle::is_lost`] between steps; the call returns
    /// [`ErrorKind::Lost`] when the grant was lost before the release.
    ///
    /// # Errors
    ///
    /// Acquire errors, or `Lost`.
    pub fn with_lock<T>(
        &self,
        key: &str,
        opts: &LockOptions,
        work: impl FnOnce(LeaseHandle) -> T,
    ) -> Result<T> {
        let guard = self.acquire(key, opts)?;
        run_guarded(guard, work)
    }

    /// The origin notes' `tryLock(wait, lease)` with a fallback, as the async
    /// [`try_with_lock`](crate::DistributedLockExt::try_with_lock): takes the
    /// lock within `opts.wait` (one attempt when zero or unset), runs `work`
    /// as [`with_lock`](Self::with_lock) does and returns [`Attempt::Ran`];
    /// [`Attempt::Busy`] when the lock stayed busy. A store that does not
    /// answer is an error, never `Busy`.
    ///
    /// # Errors
    ///
    /// As [`with_lock`](Self::with_lock), except that contention is `Busy`.
    pub fn try_with_lock<T>(
        &self,
        key: &str,
        opts: &LockOptions,
        work: impl FnOnce(LeaseHandle) -> T,
    ) -> Result<Attempt<T>> {
        let guard = match opts.wait() {
            None | Some(Duration::ZERO) => self.try_acquire(key, opts)?,
            Some(_) => match self.acquire(key, opts) {
                Ok(g) => Some(g),
                Err(e) if e.kind() == ErrorKind::Busy => None,
                Err(e) => return Err(e),
            },
        };
        match guard {
            Some(guard) => run_guarded(guard, work).map(Attempt::Ran),
            None => Ok(Attempt::Busy),
        }
    }

    fn wrap(&self, guard: LockGuard) -> BlockingGuard {
        BlockingGuard {
            guard: Some(guard),
            driver: Arc::clone(&self.driver),
        }
    }
}

fn run_guarded<T>(guard: BlockingGuard, work: impl FnOnce(LeaseHandle) -> T) -> Result<T> {
    let handle = guard.handle();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(handle)));
    let released = guard.release();
    match out {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(v) => released.map(|()| v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::Error;
    use tokio::time::Instant;

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
        let deadline = g.extend(Duration::from_secs(10)).unwrap();
        assert!(deadline > Instant::now() + Duration::from_secs(9));
        g.release().unwrap();
    }

    #[test]
    fn try_with_lock_falls_back_when_busy() {
        let lock = BlockingLock::connect("memory://blocking-fallback").unwrap();
        let opts = LockOptions::new().with_wait(Duration::from_millis(50));
        let held = lock.acquire("k", &opts).unwrap();
        assert_eq!(
            lock.try_with_lock("k", &opts, |_| 1).unwrap(),
            Attempt::Busy
        );
        let token = held.token();
        drop(held);
        match lock.try_with_lock("k", &opts, |l| l.token()).unwrap() {
            Attempt::Ran(t) => assert!(t > token),
            Attempt::Busy => panic!("busy after the release"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_inside_spawn_blocking() {
        let out = tokio::task::spawn_blocking(|| {
            let lock = BlockingLock::connect("memory://blocking-in-spawn-blocking")?;
            let opts = LockOptions::new().with_wait(Duration::ZERO);
            let g = lock.acquire("k", &opts)?;
            let busy = lock.try_with_lock("k", &opts, |_| ())?;
            g.extend(Duration::from_secs(5))?;
            g.release()?;
            let ran = lock.try_with_lock("k", &opts, |lease| lease.token())?;
            Ok::<_, Error>((busy, ran.ran().is_some()))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(out, (Attempt::Busy, true));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn works_inside_spawn_blocking_of_a_current_thread_runtime() {
        let ok = tokio::task::spawn_blocking(|| {
            let lock = BlockingLock::connect("memory://blocking-current-thread")?;
            lock.with_lock("k", &LockOptions::new(), |lease| lease.token())
        })
        .await
        .unwrap();
        assert!(ok.is_ok(), "{ok:?}");
    }
}
