//! The renewal loop, written once for every backend.

use std::sync::{Arc, OnceLock};
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
    let revoked = tokio::select! {
        () = revoked => true,
        () = follow => false,
    };
    let reason = if revoked { "revoked" } else { "deadline" };
    shared.record_end("lost");
    tracing::warn!(reason, "lease lost: the holder must stop working under it");
    crate::observe::record::lost(shared.backend(), reason);
    shared.mark_lost();
    if !revoked {
        // Lost at its deadline (TTL without renewal, hold cap, renewals
        // that failed, session ended): give the grant back, so that a
        // session store frees the lock now rather than when the session
        // ends. Compare-and-delete by owner: never another holder's grant.
        match ops.release().await {
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(key = %shared.key, error = %e, "giving back a lost grant failed; the store frees it")
            }
        }
    }
}

async fn renew_loop(shared: &Shared, ops: &dyn GrantOps, every: Duration, drift: Duration) {
    let backoff = (every / 4).clamp(Duration::from_millis(5), Duration::from_millis(500));
    loop {
        let state = shared.snapshot();
        let Some(deadline) = state.deadline else {
            return;
        };
        // Sleep until the next renewal is due (or the deadline, whichever is first).
        sleep_until(next_tick(state.basis, every).min(deadline)).await;
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
            // Never past the hold cap: at the end, wait out the deadline.
            let Some(ttl) = shared.renewal_ttl(state.ttl, drift) else {
                shared.lost().await;
                return;
            };
            match timeout_at(deadline, ops.renew(ttl)).await {
                Ok(Ok(true)) => {
                    let Some(deadline) = shared.apply_renewal(sent, ttl, drift) else {
                        return;
                    };
                    tracing::trace!(valid_for = ?deadline.saturating_duration_since(Instant::now()), "renewed");
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

/// The first tick after `after` on a process-wide grid of period `every`:
/// somewhere in `(after, after + every]`, so a renewal is never later than
/// the configured interval. Every guard with the same interval renews at the
/// same instants, which lets a backend batch the renewals of all the locks a
/// client holds into one request per tick, however spread out their
/// acquisitions were. The cost: a lock's first renewal comes early, by up to
/// one interval.
fn next_tick(after: Instant, every: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let period = every.as_nanos();
    if period == 0 {
        return after + every;
    }
    let whole = |n: u128| u64::try_from(n).ok().map(Duration::from_nanos);
    let tick = if after >= epoch {
        whole(((after - epoch).as_nanos() / period + 1) * period).map(|d| epoch + d)
    } else {
        // Guards granted before the grid's epoch was fixed: count back.
        whole(((epoch - after).as_nanos() - 1) / period * period).map(|d| epoch - d)
    };
    tick.unwrap_or(after + every)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_fall_within_one_interval_and_line_up() {
        let every = Duration::from_millis(30);
        let start = Instant::now();
        let mut ticks = Vec::new();
        for offset_ms in [0, 1, 7, 29, 30, 31, 95] {
            let after = start + Duration::from_millis(offset_ms);
            let tick = next_tick(after, every);
            assert!(tick > after && tick <= after + every, "{offset_ms} ms");
            ticks.push(tick);
        }
        // Ticks are whole periods apart: guards acquired at different times share them.
        for pair in ticks.windows(2) {
            let gap = pair[1] - pair[0];
            assert_eq!(gap.as_nanos() % every.as_nanos(), 0, "{gap:?}");
        }
    }
}
