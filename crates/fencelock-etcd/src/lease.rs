//! One etcd lease per grant.
//!
//! Each acquisition grants a lease of its own, with the acquire's TTL
//! rounded up to whole seconds (etcd raises a TTL below its minimum, about
//! 1.5 × the election timeout; the TTL in the LeaseGrant reply is what
//! counts). The grant's contender key is attached to it, so a holder that
//! dies frees the lock when that lease expires: at the grant's own TTL. A
//! renewal is one LeaseKeepAlive; a release is one LeaseRevoke, which
//! deletes the key with the lease.
//!
//! The lease id is chosen here, before the grant is sent, so that an
//! acquire dropped or failing while the grant is on the wire can still
//! revoke it ([`Pending`]): a put attached to a revoked lease fails, so no
//! key can outlive that revoke.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use etcd_client::LeaseGrantOptions;
use fencelock_core::raw::Cleanup;
use fencelock_core::{Error, OwnerId, Result};
use tokio::time::{sleep, Instant};

use crate::endpoints::Endpoints;
use crate::error::{lease_exists, lease_not_found};

/// `ttl` in whole seconds, rounded up, as etcd takes it (at least 1).
pub(crate) fn ttl_secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis().div_ceil(1000))
        .unwrap_or(i64::MAX)
        .max(1)
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// A fresh random lease id: 63 random bits, never 0 (0 asks etcd to choose).
pub(crate) fn new_id() -> i64 {
    let hex = OwnerId::random().simple();
    let bits = u64::from_str_radix(hex.get(..16).unwrap_or("1"), 16).unwrap_or(1);
    i64::try_from(bits >> 1).unwrap_or(1).max(1)
}

/// A granted lease.
pub(crate) struct Lease {
    endpoints: Arc<Endpoints>,
    /// The lease id.
    pub(crate) id: i64,
    /// The TTL etcd granted.
    pub(crate) ttl: Duration,
    /// When the last grant or keep-alive etcd answered was sent: etcd keeps
    /// the lease at least `ttl` past it.
    renewed: StdMutex<Instant>,
}

impl Lease {
    /// Grants lease `id` with `ttl`. `Ok(None)`: another lease has that id
    /// (choose another; the caller must not revoke it).
    ///
    /// # Errors
    ///
    /// Store errors; `Backend` when etcd grants less than asked.
    pub(crate) async fn grant(
        endpoints: &Arc<Endpoints>,
        id: i64,
        ttl: Duration,
    ) -> Result<Option<Lease>> {
        let asked = ttl_secs(ttl);
        let sent = Instant::now();
        let attempts = AtomicU32::new(0);
        let granted = endpoints
            .call("lease grant", |mut c| {
                let retried = attempts.fetch_add(1, Ordering::Relaxed) > 0;
                async move {
                    match c
                        .lease_grant(asked, Some(LeaseGrantOptions::new().with_id(id)))
                        .await
                    {
                        Ok(r) => Ok(Some(r.ttl())),
                        // Our own earlier attempt got through.
                        Err(e) if retried && lease_exists(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
        let granted = match granted {
            Ok(Some(t)) => t,
            Ok(None) => {
                let r = endpoints
                    .call("lease ttl", |mut c| async move {
                        c.lease_time_to_live(id, None).await
                    })
                    .await?;
                r.granted_ttl()
            }
            Err(e) if e.message().contains("lease already exists") => return Ok(None),
            Err(e) => return Err(e),
        };
        if granted < asked {
            return Err(Error::backend(format!(
                "etcd granted a lease of {granted} s where {asked} s were asked"
            )));
        }
        tracing::debug!(
            lease = format_args!("{id:x}"),
            ttl = granted,
            "etcd lease granted"
        );
        Ok(Some(Lease {
            endpoints: Arc::clone(endpoints),
            id,
            ttl: secs(granted),
            renewed: StdMutex::new(sent),
        }))
    }

    /// When the last answered grant or keep-alive was sent.
    pub(crate) fn renewed_at(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The earliest moment etcd may expire the lease, as far as this
    /// client knows.
    pub(crate) fn lives_until(&self) -> Instant {
        self.renewed_at() + self.ttl
    }

    /// One LeaseKeepAlive. `Ok(true)`: renewed; `Ok(false)`: etcd says
    /// the lease is gone. A member that does not answer within a third of
    /// the TTL (or the call timeout, if shorter) is left for the next.
    pub(crate) async fn keep_alive(&self) -> Result<bool> {
        let id = self.id;
        let bound = self
            .endpoints
            .request_timeout
            .min(self.ttl / 3)
            .max(Duration::from_millis(50));
        let sent = Instant::now();
        let alive = self
            .endpoints
            .call_within("lease keep-alive", bound, |mut c| async move {
                match c.lease_keep_alive(id).await {
                    Ok(_) => Ok(true),
                    Err(e) if lease_not_found(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if alive {
            let mut renewed = self.renewed.lock().unwrap_or_else(PoisonError::into_inner);
            *renewed = (*renewed).max(sent);
        }
        Ok(alive)
    }

    /// Makes the lease live at least `ttl` from now: nothing to do while
    /// the last keep-alive still covers it, else one keep-alive.
    ///
    /// # Errors
    ///
    /// `Unsupported` when `ttl` is longer than the lease's TTL (etcd cannot
    /// lengthen a lease); store errors.
    pub(crate) async fn renew(&self, ttl: Duration) -> Result<bool> {
        if ttl > self.ttl {
            return Err(Error::unsupported(format!(
                "etcd cannot lengthen a lease: this grant's lease has a TTL of {:?}, so it \
                 extends up to that; acquire with a longer TTL to extend further",
                self.ttl
            )));
        }
        if self.lives_until() >= Instant::now() + ttl {
            return Ok(true);
        }
        self.keep_alive().await
    }

    /// Revokes the lease, deleting the key attached to it. `Ok(false)`: it
    /// was gone already.
    pub(crate) async fn revoke(&self) -> Result<bool> {
        revoke(&self.endpoints, self.id).await
    }
}

/// Revokes lease `id`. `Ok(false)`: no such lease.
async fn revoke(endpoints: &Endpoints, id: i64) -> Result<bool> {
    endpoints
        .call("lease revoke", |mut c| async move {
            match c.lease_revoke(id).await {
                Ok(_) => Ok(true),
                Err(e) if lease_not_found(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
}

/// The lease of an acquire in progress: revoked on every path that does
/// not end in a grant. Dropped while armed (an acquire cancelled, or a
/// revoke that failed), it revokes in a background task.
pub(crate) struct Pending(Cleanup<LeaseAttempt>);

/// The lease a [`Pending`] revokes.
pub(crate) struct LeaseAttempt {
    endpoints: Arc<Endpoints>,
    id: i64,
    ttl: Duration,
    /// Whether etcd answered the grant (else it may still land after a
    /// first revoke found nothing).
    answered: bool,
    armed: bool,
}

impl Pending {
    /// Armed for lease `id`, before its grant is sent.
    pub(crate) fn new(endpoints: &Arc<Endpoints>, id: i64, ttl: Duration) -> Self {
        let lease = LeaseAttempt {
            endpoints: Arc::clone(endpoints),
            id,
            ttl,
            answered: false,
            armed: true,
        };
        Pending(Cleanup::armed(lease, |l| Box::pin(revoke_later(l))).unless(|l| !l.armed))
    }

    /// etcd answered the grant.
    pub(crate) fn answered(&mut self) {
        self.0.state_mut().answered = true;
    }

    /// The lease is a grant's now, or not ours to revoke.
    pub(crate) fn disarm(&mut self) {
        self.0.state_mut().armed = false;
    }

    /// Revokes the lease now (an acquire that gives up). Stays armed until
    /// etcd answered, so a failure is retried in the background.
    pub(crate) async fn cancel(mut self) -> Result<()> {
        let lease = self.0.state_mut();
        let done = revoke(&lease.endpoints, lease.id).await;
        lease.armed = match done {
            Ok(true) => false,
            Ok(false) => !lease.answered,
            Err(_) => true,
        };
        done.map(|_| ())
    }
}

/// The background revoke of a lease an acquire left.
async fn revoke_later(lease: LeaseAttempt) {
    let LeaseAttempt {
        endpoints,
        id,
        ttl,
        answered,
        ..
    } = lease;
    let give_up = Instant::now() + ttl + Duration::from_secs(1);
    // A grant whose answer was never seen may reach etcd after a revoke
    // that found nothing: look a few more times.
    let mut unseen = if answered { 0 } else { 3 };
    let mut pause = Duration::from_millis(100);
    loop {
        match revoke(&endpoints, id).await {
            Ok(true) => return,
            Ok(false) if unseen == 0 => return,
            Ok(false) => unseen -= 1,
            Err(e) => {
                tracing::debug!(lease = format_args!("{id:x}"), error = %e, "lease revoke failed; retrying")
            }
        }
        if Instant::now() + pause >= give_up {
            return; // the lease has expired by itself by then
        }
        sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
