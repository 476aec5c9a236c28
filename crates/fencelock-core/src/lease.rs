//! The state every guard shares with its watchdog and its handles: the
//! validity deadline and the lost signal.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::{FencingToken, OwnerId};

#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseState {
    /// Valid until then; `None` once lost or released (sticky).
    pub(crate) deadline: Option<Instant>,
    /// When the request behind `deadline` was sent.
    pub(crate) basis: Instant,
    /// The TTL renewals ask for.
    pub(crate) ttl: Duration,
    /// The hard end (already net of drift): the hold cap, or the TTL of a
    /// grant whose session would outlive it. No renewal goes past it.
    pub(crate) cap: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) key: String,
    pub(crate) token: FencingToken,
    pub(crate) owner: OwnerId,
    state: watch::Sender<LeaseState>,
    /// The `fencelock.lease` span every event of this grant goes to.
    pub(crate) span: tracing::Span,
    /// The backend's name, once an [`Instrumented`](crate::Instrumented)
    /// wrapper said it (metrics label).
    pub(crate) backend: OnceLock<&'static str>,
    /// When the grant was made (for the held-time metric).
    pub(crate) granted: Instant,
}

impl Shared {
    pub(crate) fn new(
        key: String,
        token: FencingToken,
        owner: OwnerId,
        deadline: Instant,
        basis: Instant,
        ttl: Duration,
        cap: Option<Instant>,
    ) -> Self {
        let (state, _) = watch::channel(LeaseState {
            deadline: Some(cap.map_or(deadline, |c| deadline.min(c))),
            basis,
            ttl,
            cap,
        });
        Shared {
            key,
            token,
            owner,
            state,
            span: tracing::Span::none(),
            backend: OnceLock::new(),
            granted: Instant::now(),
        }
    }

    /// Sets the span events of this grant go to.
    pub(crate) fn with_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }

    /// The backend label for metrics (`unknown` unless instrumented).
    pub(crate) fn backend(&self) -> &'static str {
        self.backend.get().copied().unwrap_or("unknown")
    }

    /// Records the end of the grant (`released`, `dropped`, `lost`).
    pub(crate) fn record_end(&self, end: &'static str) {
        crate::observe::record::held(self.backend(), end, self.granted.elapsed());
    }

    pub(crate) fn snapshot(&self) -> LeaseState {
        *self.state.borrow()
    }

    /// The TTL a renewal sent now may ask for: `ttl`, cut so that the store
    /// expires the grant at the hard end; `None` when too little is left
    /// before it to renew at all.
    pub(crate) fn renewal_ttl(&self, ttl: Duration, drift: Duration) -> Option<Duration> {
        let Some(cap) = self.snapshot().cap else {
            return Some(ttl);
        };
        let left = cap.saturating_duration_since(Instant::now());
        (left >= crate::MIN_TTL).then(|| ttl.min(left + drift))
    }

    /// The deadline, or `None` once lost. Time-checked: a deadline in the
    /// past reads as lost even before the watchdog noticed.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.snapshot().deadline.filter(|d| Instant::now() < *d)
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.deadline().is_none()
    }

    pub(crate) fn mark_lost(&self) {
        self.state.send_if_modified(|s| s.deadline.take().is_some());
    }

    /// Applies a successful renewal sent at `sent` for `ttl`. Never revives
    /// a lost grant, and ignores a reply older than the newest applied one.
    /// Returns the deadline in force afterwards.
    pub(crate) fn apply_renewal(
        &self,
        sent: Instant,
        ttl: Duration,
        drift: Duration,
    ) -> Option<Instant> {
        let now = Instant::now();
        self.state.send_if_modified(|s| match s.deadline {
            None => false,
            Some(d) if now >= d => {
                s.deadline = None;
                true
            }
            Some(_) if sent < s.basis => false,
            Some(_) => {
                s.basis = sent;
                s.ttl = ttl;
                let d = sent + ttl.saturating_sub(drift);
                s.deadline = Some(s.cap.map_or(d, |c| d.min(c)));
                true
            }
        });
        self.deadline()
    }

    /// Follows a session deadline published by the backend.
    pub(crate) fn apply_session(&self, next: Option<Instant>) {
        let now = Instant::now();
        self.state.send_if_modified(|s| match s.deadline {
            None => false,
            Some(d) if now >= d => {
                s.deadline = None;
                true
            }
            Some(d) if next.map(|n| s.cap.map_or(n, |c| n.min(c))) == Some(d) => false,
            Some(_) => {
                s.deadline = next.map(|n| s.cap.map_or(n, |c| n.min(c)));
                true
            }
        });
    }

    /// Completes when the grant is lost (or released).
    pub(crate) fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.state.subscribe();
        async move {
            loop {
                let Some(deadline) = rx.borrow_and_update().deadline else {
                    return;
                };
                if Instant::now() >= deadline {
                    return;
                }
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep_until(deadline) => return,
                }
            }
        }
    }
}

/// A cheap, clonable view of one grant: its key, token, deadline and lost
/// signal. Hand it to tasks that must stop when the lock is lost. It cannot
/// release the lock; only the [`LockGuard`](crate::LockGuard) can.
#[derive(Debug, Clone)]
pub struct LeaseHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LeaseHandle {
    /// The lock key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The grant's fencing token.
    pub fn token(&self) -> FencingToken {
        self.shared.token
    }

    /// The grant's owner id.
    pub fn owner(&self) -> OwnerId {
        self.shared.owner
    }

    /// The validity deadline, or `None` once lost or released.
    pub fn deadline(&self) -> Option<Instant> {
        self.shared.deadline()
    }

    /// Time left before the deadline; zero once lost.
    pub fn remaining(&self) -> Duration {
        self.deadline().map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        })
    }

    /// Whether the grant is lost (or released). Checks the clock, so a
    /// holder that was paused past its deadline sees `true` at once.
    pub fn is_lost(&self) -> bool {
        self.shared.is_lost()
    }

    /// A future that completes when the grant is lost or released; use it in
    /// `tokio::select!`. It owns what it needs (`'static`).
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.shared.lost()
    }
}
