//! The error of a grant that too few replicas acknowledged (`wait_replicas`).

use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::time::{sleep_until, Instant};

/// How long `acquire` without a wait bound goes on asking while every grant
/// is given back for want of replicas: longer, and a replica that never
/// catches up (or a `wait_replicas` above the replicas there are) would hang
/// the call.
pub const UNREPLICATED_PATIENCE: Duration = Duration::from_secs(30);

/// The source of the error an attempt returns when
/// [`with_wait_replicas`](crate::RedisLockBuilder::with_wait_replicas) is set
/// and fewer replicas than required acknowledged the lock write in time. The
/// grant was given back: nobody holds the lock on its account. Reach it with
/// `error.source()` and `downcast_ref::<Unreplicated>()`.
///
/// `try_acquire` returns it at once. `acquire` asks again (backing off from
/// 50 ms to 1 s) until its wait bound, or [`UNREPLICATED_PATIENCE`] without
/// one, and then returns it: replicas that resync after a failover make
/// every grant fail this way for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the lock write reached {acked} of the {required} replicas required")]
pub struct Unreplicated {
    /// Replicas that acknowledged the write within the `WAIT` timeout.
    pub acked: usize,
    /// Replicas required.
    pub required: usize,
}

impl Unreplicated {
    /// The `Backend` error (retryable) carrying it.
    pub(crate) fn error(self, within: Duration) -> Error {
        Error::backend(format!(
            "acquire: the lock write reached {} of the {} replicas required within {within:?}; \
             the grant was given back",
            self.acked, self.required
        ))
        .with_source(self)
        .with_retryable(true)
    }

    /// The `Unreplicated` behind `e`, if that is what it is.
    pub(crate) fn of(e: &Error) -> Option<&Unreplicated> {
        std::error::Error::source(e)?.downcast_ref::<Unreplicated>()
    }
}

/// An `acquire`'s patience with grants given back for want of replicas.
pub(crate) struct Patience {
    started: Instant,
    until: Instant,
    asked: u32,
    backoff: Duration,
}

impl Unreplicated {
    /// Patience until `wait_until`, or [`UNREPLICATED_PATIENCE`] without one.
    pub(crate) fn patience(wait_until: Option<Instant>) -> Patience {
        let started = Instant::now();
        Patience {
            started,
            until: wait_until.unwrap_or(started + UNREPLICATED_PATIENCE),
            asked: 0,
            backoff: Duration::from_millis(50),
        }
    }
}

impl Patience {
    /// After an attempt failed with `e` (an [`Unreplicated`] error): sleeps
    /// before the next one, or returns `e`, saying how often it was asked,
    /// once the patience is spent.
    pub(crate) async fn pause(&mut self, e: Error) -> Result<()> {
        self.asked += 1;
        let now = Instant::now();
        if now >= self.until {
            let Some(&u) = Unreplicated::of(&e) else {
                return Err(e);
            };
            let mut out = Error::backend(format!(
                "{}; asked {} times over {:?}",
                e.message(),
                self.asked,
                now - self.started
            ))
            .with_source(u)
            .with_retryable(true);
            if let Some(key) = e.key() {
                out = out.with_key(key);
            }
            return Err(out);
        }
        tracing::debug!(error = %e, asked = self.asked, "grant given back unreplicated; asking again");
        sleep_until((now + self.backoff).min(self.until)).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
        Ok(())
    }
}
