//! The renewal loop, written once for every backend.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::grant::GrantOps;
use crate::lease::Shared;

/// What the watchdog follows.
pub(crate) enum Watch {
    /// Renew the grant's own TTL every `every`.
    Renew { every: Duration, drift: Duration },
    /// Nothing to renew: the deadline stands unless revoked.
    Deadline,
    /// Follow the backend's session deadline.
    Session(watch::Receiver<Option<Instant>>),
}

/// Runs until the grant is lost; the guard aborts it on release, drop or leak.
pub(crate) async fn run(
    shared: Arc<Shared>,
    ops: Arc<dyn GrantOps>,
    watch: Watch,
    revoked: Option<BoxFuture<'static, ()>>,
) {
    let revoked = async move {
        match revoked {
            Some(f) => f.await,
            None => std::future::pending().await,
        }
    };
    let follow = async {
        match watch {
            Watch::Renew { every, drift } => renew_loop(&shared, &*ops, every, drift).await,
            Watch::Deadline => shared.lost().await,
            Watch::Session(rx) => session_loop(&shared, rx).await,
        }
    };
    tokio::select! {
        () = revoked => tracing::debug!(key = %shared.key, token = %shared.token, "grant revoked by the store"),
        () = follow => {}
    }
    shared.mark_lost();
}

async fn renew_loop(shared: &Shared, ops: &dyn GrantOps, every: Duration, drift: Duration) {
    let backoff = (every / 4).clamp(Duration::from_millis(5), Duration::from_millis(500));
    loop {
        let state = shared.snapshot();
        let Some(deadline) = state.deadline else {
            return;
        };
        // Sleep until the next renewal is due (or the deadline, whichever is first).
        sleep_until((state.basis + every).min(deadline)).await;
        // Try until renewed, refused, or the deadline passes.
        loop {
            let state = shared.snapshot();
            let Some(deadline) = state.deadline else {
                return;
            };
            let sent = Instant::now();
            if sent >= deadline {
                return;
            }
            match timeout_at(deadline, ops.renew(state.ttl)).await {
                Ok(Ok(true)) => {
                    if shared.apply_renewal(sent, state.ttl, drift).is_none() {
                        return;
                    }
                    break;
                }
                Ok(Ok(false)) => {
                    tracing::warn!(key = %shared.key, token = %shared.token, "renewal refused: another owner holds the key");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(key = %shared.key, error = %e, "renewal failed; retrying until the deadline");
                    sleep_until((Instant::now() + backoff).min(deadline)).await;
                }
                Err(_) => {
                    tracing::warn!(key = %shared.key, "renewal did not answer before the deadline");
                    return;
                }
            }
        }
    }
}

async fn session_loop(shared: &Shared, mut rx: watch::Receiver<Option<Instant>>) {
    loop {
        let next = *rx.borrow_and_update();
        shared.apply_session(next);
        let Some(deadline) = shared.deadline() else {
            return;
        };
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = sleep_until(deadline) => return,
        }
    }
}
