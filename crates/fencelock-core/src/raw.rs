//! What backends build on, and users of the facade never need: grants and
//! their store operations, validity, the wait bound of an acquire, the
//! late-grant outcome, URL parsing. A backend written outside this
//! repository uses the same pieces.
//!
//! The pieces, in the order an acquire meets them:
//!
//! - [`WaitBound`]: the wait bound of one `acquire`, the
//!   [`ErrorKind::Busy`](crate::ErrorKind::Busy) error when it runs out,
//!   and bounded sleeps for re-checks (no backend writes its own "far
//!   future").
//! - [`Grant`], [`GrantOps`], [`Validity`]: what a backend hands core for a
//!   fresh grant; core runs the watchdog, the validity deadline, the lost
//!   signal and the background release.
//! - [`LateGrant`]: the grant's reply came after its validity deadline. Not
//!   an error kind: the backend tries again (or, for a single attempt,
//!   turns it into [`ErrorKind::Timeout`](crate::ErrorKind::Timeout): the
//!   store did not answer in time).
//! - [`Cleanup`]: what an acquire dropped half-way gives back, spawned
//!   on the runtime (the one drop guard every backend's acquire uses).
//! - [`SessionClock`]: the deadline a session or lease vouches for, moved
//!   forward by each answer, ended for good at once.
//! - [`parse`]: durations and `%XX` decoding for URL grammars.
//! - [`url`]: the one URL grammar and option vocabulary every backend
//!   reads, rejecting unknown options.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::{Error, LockOptions};

pub use crate::cleanup::Cleanup;
pub use crate::grant::{Grant, GrantOps, Validity};
pub use crate::guard::LateGrant;
pub use crate::parse;
pub use crate::session_clock::SessionClock;

#[path = "url/mod.rs"]
pub mod url;

/// The wait bound of one acquire: when it ends, the error when it ran out
/// under contention, and sleeps that never pass it.
///
/// A backend's acquire loop asks the store, and when the key is busy checks
/// [`passed`](WaitBound::passed) (answering [`busy`](WaitBound::busy)), else
/// waits for the store's notification raced against
/// [`sleep_until`](WaitBound::sleep_until) of its re-check time. Because
/// the bound is checked only after a store answer, an outage at the bound
/// surfaces as the store's own error, never as `Busy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBound {
    wait: Option<Duration>,
    until: Option<Instant>,
}

impl WaitBound {
    /// Starts the bound of `opts` now (`None`: wait forever).
    pub fn start(opts: &LockOptions) -> Self {
        Self::of(opts.wait())
    }

    /// A bound of `wait` from now (`None`: forever).
    pub fn of(wait: Option<Duration>) -> Self {
        WaitBound {
            wait,
            until: wait.map(|w| Instant::now() + w),
        }
    }

    /// When the bound ends; `None` waits forever.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// Whether the bound has run out.
    pub fn passed(&self) -> bool {
        self.until.is_some_and(|t| Instant::now() >= t)
    }

    /// Time left; `None` when unbounded.
    pub fn remaining(&self) -> Option<Duration> {
        self.until
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// `limit`, or less when the bound ends sooner.
    pub fn limit(&self, limit: Duration) -> Duration {
        self.remaining().map_or(limit, |r| r.min(limit))
    }

    /// `at`, or the end of the bound when that comes first.
    pub fn cap(&self, at: Instant) -> Instant {
        self.until.map_or(at, |t| t.min(at))
    }

    /// Sleeps until `at` or the end of the bound, whichever comes first;
    /// forever when both are `None`.
    pub fn sleep_until(&self, at: Option<Instant>) -> impl Future<Output = ()> + Send + 'static {
        let end = match (at, self.until) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        };
        async move {
            match end {
                Some(end) => sleep_until(end).await,
                None => std::future::pending().await,
            }
        }
    }

    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy) for `key`: the lock
    /// stayed busy for the whole bound.
    pub fn busy(&self, key: &str) -> Error {
        Error::busy(format!(
            "the lock stayed busy for the whole wait bound of {:?}",
            self.wait.unwrap_or_default()
        ))
        .with_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[tokio::test(start_paused = true)]
    async fn the_bound_caps_sleeps_and_says_busy() {
        let b = WaitBound::of(Some(Duration::from_secs(2)));
        assert!(!b.passed());
        assert_eq!(b.limit(Duration::from_secs(5)), Duration::from_secs(2));
        let t0 = Instant::now();
        b.sleep_until(Some(t0 + Duration::from_secs(10))).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(2));
        assert!(b.passed());
        let e = b.busy("k");
        assert_eq!(e.kind(), ErrorKind::Busy);
        assert_eq!(e.key(), Some("k"));
        let forever = WaitBound::of(None);
        assert!(!forever.passed());
        assert_eq!(
            forever.limit(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }
}
