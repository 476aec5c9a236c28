//! `EtcdLock`: the `DistributedLock` trait on etcd, with the recipe of Go's
//! `concurrency.Mutex`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use fencelock_core::raw::WaitBound;
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness, Fencing,
    LockGuard, LockOptions, Result, Scope, Wakeup,
};

use crate::acquire::{attempt, Outcome};
use crate::client::Client;

/// A distributed lock client on etcd.
///
/// Every grant has an etcd lease of its own, with the grant's TTL: a lock
/// is a key `<prefix>/<escaped key>/<lease id in hex>` attached to that
/// lease, exactly as etcd's Go `concurrency.Mutex` and `etcdctl lock` lay
/// it out, so they exclude each other. Core's watchdog renews the lease
/// (one LeaseKeepAlive per renewal); a release revokes it, which deletes
/// the key; a holder that dies frees the lock when the lease expires, at
/// the grant's TTL. The fencing token is the key's `create_revision`. See
/// the crate docs for the layout and the capability checklist.
///
/// Cheap to clone; clones share the connections and the watch stream.
#[derive(Clone)]
pub struct EtcdLock {
    pub(crate) inner: Arc<Client>,
}

impl fmt::Debug for EtcdLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLock")
            .field("prefix", &self.inner.layout.prefix())
            .field("endpoints", &self.inner.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl EtcdLock {
    /// The etcd mutex name of a lock key: what `etcdctl lock <name>` and Go's
    /// `concurrency.NewMutex(session, name)` must be given to contend for the
    /// same lock (`<prefix>/<escaped key>`, or `<escaped key>` with the
    /// empty prefix; `%` and `/` in the key are escaped as `%25` and `%2F`).
    pub fn mutex_name(&self, key: &str) -> String {
        self.inner.layout.mutex_name(key)
    }

    /// The version of the etcd member that answers (its Status reply), e.g.
    /// `3.4.23`; see [`stale_leader_revokes_leases`](crate::stale_leader_revokes_leases).
    ///
    /// # Errors
    ///
    /// Store errors (`Connection`, `Timeout`, `Backend`).
    pub async fn server_version(&self) -> Result<String> {
        self.inner.endpoints.server_version().await
    }
}

#[async_trait]
impl DistributedLock for EtcdLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        let opts = self.inner.options(opts)?;
        opts.validate()?;
        // One more attempt when the fresh lease turns out to be gone.
        for _ in 0..2 {
            match attempt(&self.inner, key, &opts, None)
                .await
                .map_err(|e| keyed(e, key))?
            {
                Outcome::Granted(g) => return Ok(Some(g)),
                Outcome::Busy => return Ok(None),
                Outcome::Late(late) => return Err(late.into()),
                Outcome::Retry(_) => {}
            }
        }
        Err(Error::connection("etcd kept expiring fresh leases").with_key(key))
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        let opts = self.inner.options(opts)?;
        opts.validate()?;
        let bound = WaitBound::start(&opts);
        let mut retries = 0;
        loop {
            match attempt(&self.inner, key, &opts, Some(bound))
                .await
                .map_err(|e| keyed(e, key))?
            {
                Outcome::Granted(g) => return Ok(g),
                Outcome::Busy => return Err(bound.busy(key)),
                Outcome::Late(late) => {
                    if bound.passed() {
                        return Err(late.into());
                    }
                    tracing::debug!(key, "the grant arrived too late; trying again");
                }
                Outcome::Retry(e) => {
                    retries += 1;
                    if retries > 2 {
                        return Err(keyed(e, key));
                    }
                }
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new("etcd")
            .with_fencing(Fencing::Strict)
            .with_fairness(Fairness::Fifo)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Ttl)
            .with_scope(Scope::Network)
            .with_extend(Extend::PerGrant)
            .with_store_restart("tokens are create revisions, persisted through Raft: they keep rising across restarts; \
                            leases survive a restart with their TTL renewed, so held locks stay held")
            .with_store_failover("a new leader keeps every key and revision (Raft) and extends leases; \
                             held locks stay held if the holders' keep-alives reach the new leader in time. \
                             etcd before 3.4.31 / 3.5.13 (etcd#15247): a leader stalled past the lease TTL may \
                             revoke live leases when it resumes, and a second holder can be granted a few ms \
                             before the first learns (seen once here: 6.2 ms; tokens still order them)")
    }
}

fn keyed(e: Error, key: &str) -> Error {
    if e.key().is_some() {
        e
    } else {
        e.with_key(key)
    }
}
