//! One acquisition: a lease of the grant's own TTL, a place in the queue,
//! the wait for the predecessors (keeping the lease alive meanwhile), the
//! grant.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::raw::{Grant, LateGrant, Validity, WaitBound};
use fencelock_core::{Error, FencingToken, LockGuard, LockOptions, OwnerId, Result};
use futures_util::FutureExt;
use tokio::time::{sleep, sleep_until, Instant};

use crate::client::Client;
use crate::grant::{revoked, EtcdGrant};
use crate::keys::contender_key;
use crate::lease::{new_id, Lease, Pending};
use crate::queue::{enqueue, recheck, Contender, Place, Queued};
use crate::watch::Seen;

/// How an attempt ended.
pub(crate) enum Outcome {
    Granted(LockGuard),
    Busy,
    /// The grant arrived too late: try again.
    Late(LateGrant),
    /// The fresh lease turned out to be gone: try again on a new one.
    Retry(Error),
}

/// Why a wait ended without our turn.
enum Stop {
    /// The wait bound ran out.
    Busy,
    /// Our lease or key is gone.
    Lost,
    Store(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Store(e)
    }
}

/// Grants a lease of `ttl` under a fresh id, armed for revocation.
async fn grant_lease(c: &Client, ttl: Duration) -> Result<(Lease, Pending)> {
    for _ in 0..3 {
        let id = new_id();
        // Armed before the grant is sent: a cancelled or failed grant is
        // revoked by id.
        let mut pending = Pending::new(&c.endpoints, id, ttl);
        match Lease::grant(&c.endpoints, id, ttl).await? {
            Some(lease) => {
                pending.answered();
                return Ok((lease, pending));
            }
            None => pending.disarm(), // someone else's lease
        }
    }
    Err(Error::backend(
        "etcd reported three random lease ids as taken",
    ))
}

/// One acquisition: lease, queue, wait for the predecessors (unless
/// `wait` is `None`, meaning "do not wait"), grant.
///
/// Round trips: an uncontended grant is the lease grant and the enqueue
/// transaction. A waiter adds one read-only transaction per wake-up and a
/// keep-alive per third of the TTL; its watches ride the client's shared
/// watch stream.
pub(crate) async fn attempt(
    c: &Arc<Client>,
    key: &str,
    opts: &LockOptions,
    wait: Option<WaitBound>,
) -> Result<Outcome> {
    let contenders = c.layout.contenders(key);
    let (lease, mut pending) = grant_lease(c, opts.ttl()).await?;
    let owner = OwnerId::random();
    let etcd_key = contender_key(&contenders, lease.id);
    // On an error the pending lease is revoked in the background (dropped).
    let queued = enqueue(
        &c.endpoints,
        &contenders,
        &etcd_key,
        &owner.simple(),
        lease.id,
    )
    .await;
    let Queued {
        mine,
        mut rev,
        place,
    } = match queued {
        Ok(q) => q,
        Err(e) if e.message().contains("lease not found") => {
            // Gone already (a stalled store let it expire): nothing to revoke.
            pending.disarm();
            return Ok(Outcome::Retry(e));
        }
        Err(e) => return Err(e),
    };
    // An immediate grant needs no further check: the put (or, on a retried
    // txn, the read of our key) in that very transaction proves our lease
    // was alive at `rev`, when we were first in line, and the lease lives
    // past the deadline core computes from its grant. The etcd#11456 check
    // is for waiters (`recheck`).
    if let Place::Behind(known) = place {
        let Some(bound) = wait else {
            pending.cancel().await?;
            return Ok(Outcome::Busy);
        };
        let waiting = Waiting {
            c,
            contenders: &contenders,
            etcd_key: &etcd_key,
            mine,
            lease: &lease,
        };
        match waiting.turn(known, rev, bound).await {
            Ok(r) => rev = r,
            Err(Stop::Busy) => {
                pending.cancel().await?;
                return Err(bound.busy(key));
            }
            Err(Stop::Lost) => {
                let _ = pending.cancel().await;
                return Err(Error::lost(
                    "the acquisition's etcd lease expired while waiting for the lock; nothing was granted",
                )
                .with_key(key)
                .with_retryable(true));
            }
            Err(Stop::Store(e)) => return Err(e),
        }
    }
    pending.disarm();
    let sent_at = lease.renewed_at();
    // Our key existed at `rev`: watch its delete from the next revision.
    let revoked = revoked(
        Arc::clone(&c.endpoints),
        Arc::clone(&c.watches),
        etcd_key,
        mine,
        rev + 1,
        c.poll,
    )
    .boxed();
    let grant = Grant {
        key: key.to_string(),
        token: FencingToken::new(u64::try_from(mine).unwrap_or(0)),
        owner,
        validity: Validity::Ttl { sent_at },
        ops: Arc::new(EtcdGrant { lease }),
        revoked: Some(revoked),
    };
    match LockGuard::from_grant(grant, opts) {
        Ok(g) => Ok(Outcome::Granted(g)),
        Err(late) => Ok(Outcome::Late(late)),
    }
}

/// A contender waiting for its turn.
struct Waiting<'a> {
    c: &'a Client,
    contenders: &'a str,
    etcd_key: &'a str,
    mine: i64,
    lease: &'a Lease,
}

impl Waiting<'_> {
    /// Waits like Go's `waitDeletes` until no contender is older than
    /// ours: watches the predecessor `known` (seen at revision `rev`),
    /// re-reads when it goes, and keeps our lease alive meanwhile. Returns
    /// the revision of the read that showed our turn.
    async fn turn(
        &self,
        known: Option<Contender>,
        mut rev: i64,
        bound: WaitBound,
    ) -> std::result::Result<i64, Stop> {
        let mut pred = known;
        if pred.is_none() {
            (pred, rev) = self.reread().await?;
        }
        let mut keep_alive_at = self.lease.renewed_at() + self.lease.ttl / 3;
        while let Some((pred_key, pred_created)) = pred.take() {
            if bound.passed() {
                return Err(Stop::Busy);
            }
            // A live watch: etcd delivers it at once, where a watch from an
            // older revision waits for its 100 ms catch-up; a delete
            // between our read and the watch's start is read over.
            let mut gone = self.c.watches.subscribe_live(&pred_key, rev, pred_created);
            let poll_at = Instant::now() + self.c.poll;
            loop {
                tokio::select! {
                    seen = gone.wait() => {
                        if seen == Seen::Unsure {
                            // etcd dropped the watch: read (below), but
                            // never in a tight loop.
                            sleep(Duration::from_millis(50).min(self.c.poll)).await;
                        }
                        break;
                    }
                    () = sleep_until(poll_at) => break,
                    () = bound.sleep_until(None) => return Err(Stop::Busy),
                    () = sleep_until(keep_alive_at) => {
                        keep_alive_at = self.keep_alive().await?;
                    }
                }
            }
            drop(gone);
            (pred, rev) = self.reread().await?;
        }
        if Instant::now() >= self.lease.lives_until() {
            return Err(Stop::Lost);
        }
        Ok(rev)
    }

    /// Reads the predecessor and checks our own key (`Lost` when gone).
    async fn reread(&self) -> std::result::Result<(Option<Contender>, i64), Stop> {
        recheck(
            &self.c.endpoints,
            self.contenders,
            self.etcd_key,
            self.mine,
            self.lease.id,
        )
        .await?
        .ok_or(Stop::Lost)
    }

    /// One keep-alive of the waiter's lease; when the next is due. A
    /// failed one is retried shortly, until the lease may have expired.
    async fn keep_alive(&self) -> std::result::Result<Instant, Stop> {
        match self.lease.keep_alive().await {
            Ok(true) => Ok(self.lease.renewed_at() + self.lease.ttl / 3),
            Ok(false) => Err(Stop::Lost),
            Err(e) => {
                let now = Instant::now();
                if now >= self.lease.lives_until() {
                    return Err(Stop::Lost);
                }
                tracing::debug!(error = %e, "a waiter's keep-alive failed; retrying");
                let pause = (self.lease.ttl / 20)
                    .clamp(Duration::from_millis(20), Duration::from_millis(250));
                Ok((now + pause).min(self.lease.lives_until()))
            }
        }
    }
}
