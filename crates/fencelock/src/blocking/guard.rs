//! The guard of the blocking API.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Error, FencingToken, LeaseHandle, LockGuard, OwnerId, Result};
use tokio::time::Instant;

use super::driver::Driver;

/// A held lock from the blocking API: the [`LockGuard`] API in blocking
/// style. Dropping it releases synchronously.
#[must_use = "dropping the guard releases the lock at once"]
#[derive(Debug)]
pub struct BlockingGuard {
    pub(super) guard: Option<LockGuard>,
    pub(super) driver: Arc<Driver>,
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

    /// The grant's owner id.
    pub fn owner(&self) -> OwnerId {
        self.inner().owner()
    }

    /// The validity deadline, or `None` once lost.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner().deadline()
    }

    /// Time left before the deadline; zero once lost.
    pub fn remaining(&self) -> Duration {
        self.inner().remaining()
    }

    /// Whether the grant is lost.
    pub fn is_lost(&self) -> bool {
        self.inner().is_lost()
    }

    /// A clonable view with the lost signal.
    pub fn handle(&self) -> LeaseHandle {
        self.inner().handle()
    }

    /// Pushes the deadline out; see [`LockGuard::extend`]. Returns the
    /// deadline in force.
    ///
    /// # Errors
    ///
    /// As the async call.
    pub fn extend(&self, ttl: Duration) -> Result<Instant> {
        let handle = self.handle();
        let guard = self.inner();
        // The guard stays here; only its renewal runs on the driver, and
        // this thread waits for it.
        std::thread::scope(|s| {
            s.spawn(|| self.driver.handle().block_on(guard.extend(ttl)))
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::backend("extending the lock panicked").with_key(handle.key()))
                })
        })
    }

    /// Releases now; see [`LockGuard::release`].
    ///
    /// # Errors
    ///
    /// As the async call (`Lost` when the grant was lost before).
    pub fn release(mut self) -> Result<()> {
        let guard = self.guard.take().expect("guard present until consumed");
        self.driver.run(guard.release())?
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
        match self.driver.run(guard.release()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => {
                tracing::debug!(error = %e, "release on drop of a blocking guard failed");
            }
        }
    }
}
