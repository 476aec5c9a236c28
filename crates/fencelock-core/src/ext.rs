//! Conveniences over any [`DistributedLock`]: scoped locking and the
//! "fallback when busy" shape.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;

use crate::{DistributedLock, Error, ErrorKind, LeaseHandle, LockGuard, LockOptions, Result};

/// What [`DistributedLockExt::try_with_lock`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Attempt<T> {
    /// The lock was taken and the work ran to completion under it.
    Ran(T),
    /// The lock was busy for the whole wait bound; the work did not run.
    /// Answer with your fallback.
    Busy,
}

impl<T> Attempt<T> {
    /// The work's output, or `None` when busy.
    pub fn ran(self) -> Option<T> {
        match self {
            Attempt::Ran(v) => Some(v),
            Attempt::Busy => None,
        }
    }
}

/// Scoped helpers for every [`DistributedLock`], `dyn` included.
pub trait DistributedLockExt: DistributedLock {
    /// Acquires `key` (waiting per `opts`), runs `work` racing it against the
    /// grant's [`lost`](LockGuard::lost) signal, and releases on every path:
    /// success, error, panic (the release runs, then the panic resumes) and
    /// cancellation (the guard's drop releases in the background).
    ///
    /// `work` gets a [`LeaseHandle`] with the key and fencing token.
    ///
    /// # Errors
    ///
    /// Acquire errors; [`ErrorKind::Lost`] when the grant was lost while the
    /// work ran (the work's future is then dropped, and its effects may have
    /// overlapped another holder's).
    fn with_lock<F, Fut, T>(
        &self,
        key: &str,
        opts: &LockOptions,
        work: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        F: FnOnce(LeaseHandle) -> Fut + Send,
        Fut: Future<Output = T> + Send,
        T: Send,
    {
        async move {
            let guard = self.acquire(key, opts).await?;
            run_guarded(guard, work).await
        }
    }

    /// The origin notes' `tryLock(wait, lease)` with a fallback: takes the
    /// lock if it can within `opts.wait` (one attempt when the wait is zero
    /// or unset), runs `work` as [`with_lock`](Self::with_lock) does and
    /// returns [`Attempt::Ran`]; returns [`Attempt::Busy`] when the lock stayed
    /// busy, so the caller can answer with its fallback.
    ///
    /// Only contention is `Busy` ([`ErrorKind::Busy`] from the acquire): a
    /// store that does not answer ([`ErrorKind::Timeout`],
    /// [`ErrorKind::Connection`]) is an error, never a busy lock.
    ///
    /// # Errors
    ///
    /// As [`with_lock`](Self::with_lock), except that contention is `Busy`.
    fn try_with_lock<F, Fut, T>(
        &self,
        key: &str,
        opts: &LockOptions,
        work: F,
    ) -> impl Future<Output = Result<Attempt<T>>> + Send
    where
        F: FnOnce(LeaseHandle) -> Fut + Send,
        Fut: Future<Output = T> + Send,
        T: Send,
    {
        async move {
            let guard = match opts.wait() {
                None | Some(Duration::ZERO) => self.try_acquire(key, opts).await?,
                Some(_) => match self.acquire(key, opts).await {
                    Ok(g) => Some(g),
                    Err(e) if e.kind() == ErrorKind::Busy => None,
                    Err(e) => return Err(e),
                },
            };
            match guard {
                Some(guard) => run_guarded(guard, work).await.map(Attempt::Ran),
                None => Ok(Attempt::Busy),
            }
        }
    }
}

impl<L: DistributedLock + ?Sized> DistributedLockExt for L {}

async fn run_guarded<F, Fut, T>(guard: LockGuard, work: F) -> Result<T>
where
    F: FnOnce(LeaseHandle) -> Fut,
    Fut: Future<Output = T>,
{
    let key = guard.key().to_string();
    let lost = guard.lost();
    let work = AssertUnwindSafe(work(guard.handle())).catch_unwind();
    let outcome = tokio::select! {
        biased;
        out = work => Some(out),
        () = lost => None,
    };
    let lost_error = || Error::lost("the lock was lost while the work ran").with_key(key.clone());
    match outcome {
        None => {
            let _ = guard.release().await;
            Err(lost_error())
        }
        Some(Err(panic)) => {
            if let Err(e) = guard.release().await {
                tracing::warn!(key = %key, error = %e, "release after a panic failed");
            }
            std::panic::resume_unwind(panic)
        }
        Some(Ok(value)) => match guard.release().await {
            Ok(()) => Ok(value),
            Err(e) if e.kind() == ErrorKind::Lost => Err(lost_error()),
            Err(e) => {
                // The work finished while the grant was valid; only the
                // release failed, and the TTL or session frees the lock.
                tracing::warn!(key = %key, error = %e, "release failed after the work completed");
                Ok(value)
            }
        },
    }
}
