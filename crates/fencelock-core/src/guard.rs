//! The lease: one grant held by this client, of any primitive.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::grant::{Grant, GrantOps, Validity};
use crate::lease::{LeaseHandle, Shared};
use crate::watchdog::{self, Watch};
use crate::{options::validate_ttl, Error, FencingToken, LockOptions, OwnerId, Result};

/// The mutex's name for a [`Lease`]: what [`DistributedLock::acquire`](crate::DistributedLock::acquire)
/// returns. The same type under the name code written for the lock knows.
pub type LockGuard = Lease;

/// One grant held by this client: a lease on a key, with its owner id,
/// fencing token, validity deadline and loss signal. Every primitive hands
/// its grants out as leases (a lock's grant is its [`LockGuard`]), so the
/// watchdog, the loss signal, `extend` and `release` are the same for all.
///
/// Give it back with [`release`](Lease::release). Dropping it without a
/// release hands the release to a background task on the Tokio runtime the
/// guard was made on: best-effort and not immediate, but it never blocks.
/// Without a runtime the TTL (or session) frees the lock. [`leak`](Lease::leak)
/// keeps the lock held until it expires.
///
/// While held, a watchdog renews the grant (unless renewal is off) and the
/// guard reports itself lost, through [`is_lost`](Lease::is_lost) and the
/// [`lost`](Lease::lost) future, no later than its validity deadline.
#[must_use = "dropping the guard releases the lock in the background at once"]
pub struct Lease {
    shared: Arc<Shared>,
    ops: Arc<dyn GrantOps>,
    session: bool,
    opts: LockOptions,
    watchdog: Option<AbortHandle>,
    runtime: Option<Handle>,
    finished: bool,
}

impl Lease {
    /// Turns a backend's [`Grant`] into a guard and starts its watchdog.
    /// Called by backends, not by users.
    ///
    /// # Errors
    ///
    /// [`LateGrant`] when the grant's deadline has already passed (a reply
    /// that arrived too late is not a grant); the grant is then released in
    /// the background. An acquire tries again; a single attempt turns it
    /// into [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) with `?`.
    pub fn from_grant(grant: Grant, opts: &LockOptions) -> Result<Lease, LateGrant> {
        let Grant {
            key,
            token,
            owner,
            validity,
            ops,
            revoked,
        } = grant;
        let ttl = opts.ttl();
        let drift = opts.drift();
        let now = Instant::now();
        // The hold cap counts from the request (Ttl) or, where the backend
        // does not say when that was sent (Session), from now: the store
        // keeps a session grant until it is deleted, so counting later
        // never lets another holder in early.
        let cap_from = |basis: Instant| opts.hold_cap().map(|c| basis + c.saturating_sub(drift));
        let (deadline, basis, cap, watch) = match validity {
            Validity::Ttl { sent_at } => {
                let watch = if opts.auto_renew() {
                    Watch::Renew {
                        every: opts.renew_interval(),
                        drift,
                    }
                } else {
                    Watch::Deadline
                };
                let deadline = Some(sent_at + ttl.saturating_sub(drift));
                (deadline, sent_at, cap_from(sent_at), watch)
            }
            Validity::Session(rx) => {
                let deadline = *rx.borrow();
                // Without renewal the grant ends at its TTL, however long
                // the session lives; the watchdog then gives it back.
                let unrenewed = (!opts.auto_renew()).then(|| now + ttl.saturating_sub(drift));
                let cap = match (cap_from(now), unrenewed) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (deadline, now, cap, Watch::Session(rx))
            }
        };
        let deadline = deadline.map(|d| cap.map_or(d, |c| d.min(c)));
        let runtime = Handle::try_current().ok();
        let Some(deadline) = deadline.filter(|d| now < *d) else {
            if let Some(rt) = &runtime {
                let ops = Arc::clone(&ops);
                rt.spawn(async move { ops.release().await });
            }
            return Err(LateGrant { key });
        };
        let session = matches!(watch, Watch::Session(_));
        // Its own root: the lease outlives the acquire (and any request)
        // that made it; it follows from the span current at the grant.
        let span = tracing::info_span!(
            parent: None,
            "fencelock.lease",
            key = %key,
            token = %token,
            owner = %owner,
            backend = tracing::field::Empty,
        );
        span.follows_from(tracing::Span::current());
        tracing::debug!(parent: &span, valid_for = ?deadline.saturating_duration_since(now), "granted");
        let shared = Arc::new(
            Shared::new(key, token, owner, deadline, basis, ttl, cap).with_span(span.clone()),
        );
        let watchdog = runtime.as_ref().map(|rt| {
            rt.spawn(
                watchdog::run(Arc::clone(&shared), Arc::clone(&ops), watch, revoked)
                    .instrument(span),
            )
            .abort_handle()
        });
        Ok(Lease {
            shared,
            ops,
            session,
            opts: opts.clone(),
            watchdog,
            runtime,
            finished: false,
        })
    }

    /// The lock key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The grant's fencing token: pass it to the resource you protect.
    pub fn token(&self) -> FencingToken {
        self.shared.token
    }

    /// The grant's owner id, as stored with the lock.
    pub fn owner(&self) -> OwnerId {
        self.shared.owner
    }

    /// The validity deadline, or `None` once lost.
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.deadline()
    }

    /// Time left before the deadline; zero once lost.
    pub fn remaining(&self) -> Duration {
        self.handle().remaining()
    }

    /// Whether the grant is lost. Checks the clock too, so a holder that was
    /// paused past its deadline sees `true` before doing anything else.
    pub fn is_lost(&self) -> bool {
        self.shared.is_lost()
    }

    /// Completes when the grant is lost: deadline passed without renewal,
    /// session expired, lease revoked, key taken. `'static`, for `select!`.
    ///
    /// # A safe work loop
    ///
    /// Race every step against the loss with `biased;` and the loss
    /// *first*: without `biased;`, `select!` picks a ready branch at
    /// random, so a step can start after the loss was already signalled.
    /// Check the loss again right before each effect that must not happen
    /// outside the lock, and pass the token to the resource so that it
    /// refuses writes from a holder that lost the lock in between
    /// ([`FenceGate`](crate::FenceGate)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> fencelock_core::Result<()> {
    /// use fencelock_core::{DistributedLock, LockOptions, MemoryLock};
    ///
    /// let lock = MemoryLock::new();
    /// let guard = lock.acquire("batch:42", &LockOptions::new()).await?;
    /// let lost = guard.lost();
    /// tokio::pin!(lost);
    /// for step in 0..3 {
    ///     tokio::select! {
    ///         biased;
    ///         () = &mut lost => {
    ///             // Stop at once: another holder may be running by now.
    ///             return Err(fencelock_core::Error::lost("lost mid-batch"));
    ///         }
    ///         () = tokio::task::yield_now() => {
    ///             // one unit of work, written with guard.token()
    ///             let _ = (step, guard.token());
    ///         }
    ///     }
    /// }
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`with_lock`](crate::DistributedLockExt::with_lock) does this for
    /// you: it drops the work's future as soon as the grant is lost.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shared.lost()
    }

    /// A clonable read-only view (key, token, deadline, lost signal) to hand
    /// to other tasks.
    pub fn handle(&self) -> LeaseHandle {
        LeaseHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Pushes the deadline out to `ttl` from now, only if this grant still
    /// owns the key; later automatic renewals use the new TTL. On
    /// session-based backends the session decides the deadline (see
    /// [`Extend`](crate::Extend)). Returns the deadline in force.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Lost`](crate::ErrorKind::Lost) when the grant is gone;
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for a bad
    /// TTL; store errors (the grant may still stand; see
    /// [`is_lost`](Lease::is_lost)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the old deadline in force.
    pub async fn extend(&self, ttl: Duration) -> Result<Instant> {
        validate_ttl(ttl)?;
        let drift = self.opts.drift_for(ttl);
        if drift >= ttl / 2 {
            return Err(Error::invalid_config(format!(
                "TTL {ttl:?} is too short for the drift margin {drift:?}"
            )));
        }
        if self.is_lost() {
            return Err(self.lost_error());
        }
        // Never past the hold cap.
        let Some(ttl) = self.shared.renewal_ttl(ttl, drift) else {
            return self.deadline().ok_or_else(|| self.lost_error());
        };
        let sent = Instant::now();
        match self.ops.renew(ttl).await? {
            true => {
                let deadline = if self.session {
                    self.deadline()
                } else {
                    self.shared.apply_renewal(sent, ttl, drift)
                };
                deadline.ok_or_else(|| self.lost_error())
            }
            false => {
                self.shared.mark_lost();
                Err(self.lost_error())
            }
        }
    }

    /// Gives the lock back: compare-and-delete by owner id, so it never
    /// removes another owner's grant.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Lost`](crate::ErrorKind::Lost) when the grant was lost
    /// before the release: the critical section may have overlapped another
    /// holder's. Store errors when the store could not be asked (the TTL or
    /// session then frees the lock).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future hands the release to a background task, as a drop
    /// of the guard does.
    pub async fn release(mut self) -> Result<()> {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        let was_lost = self.is_lost();
        let result = self.ops.release().await;
        self.finished = true;
        if !was_lost {
            self.shared.record_end("released");
        }
        self.shared.mark_lost();
        match &result {
            Ok(true) if !was_lost => tracing::debug!(parent: &self.shared.span, "released"),
            Ok(_) => {
                tracing::debug!(parent: &self.shared.span, "released after the grant was lost")
            }
            Err(e) => {
                tracing::warn!(parent: &self.shared.span, error = %e, "release failed; the TTL or session frees the lock")
            }
        }
        match (was_lost, result) {
            (true, _) | (false, Ok(false)) => Err(self.lost_error()),
            (false, Ok(true)) => Ok(()),
            (false, Err(e)) => Err(e),
        }
    }

    /// Stops renewing and forgets the guard without releasing: the lock stays
    /// held until its TTL (or session) ends.
    pub fn leak(mut self) {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        self.finished = true;
    }

    /// Labels the grant with its backend (span field and metrics), once.
    pub(crate) fn observed_as(&self, backend: &'static str) {
        if self.shared.backend.set(backend).is_ok() {
            self.shared.span.record("backend", backend);
        }
    }

    fn lost_error(&self) -> Error {
        Error::lost(
            "the grant was lost: its deadline passed, its session ended, or another owner took the key",
        )
        .with_key(self.shared.key.clone())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        if !self.shared.is_lost() {
            self.shared.record_end("dropped");
        }
        self.shared.mark_lost();
        tracing::debug!(parent: &self.shared.span, "guard dropped without release; releasing in the background");
        if let Some(rt) = &self.runtime {
            let ops = Arc::clone(&self.ops);
            let key = self.shared.key.clone();
            rt.spawn(async move {
                if let Err(e) = ops.release().await {
                    tracing::debug!(key = %key, error = %e, "background release failed; the TTL frees the lock");
                }
            });
        }
    }
}

/// A grant whose reply arrived after its validity deadline: not a grant
/// (core released it in the background). An internal outcome of a backend's
/// acquire, which asks again with a fresh owner id; converted into an
/// [`Error`] (of kind [`ErrorKind::Timeout`](crate::ErrorKind::Timeout):
/// the store did not answer in time) where no retry follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateGrant {
    key: String,
}

impl LateGrant {
    /// The lock key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl From<LateGrant> for Error {
    fn from(late: LateGrant) -> Error {
        Error::timeout(
            "the store's grant arrived after its validity deadline (it was released); the store did not answer in time",
        )
        .with_key(late.key)
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.shared.key)
            .field("token", &self.shared.token)
            .field("owner", &self.shared.owner)
            .field("deadline", &self.deadline())
            .finish()
    }
}
