//! [`Leases`]: how a lease case takes grants of the primitive under test.

use std::sync::Arc;

use async_trait::async_trait;
use fencelock_core::{Capabilities, DistributedLock, Lease, LockOptions, Result};

/// Grants of one primitive on one client, as the lease cases take them.
/// Every primitive hands its grants out as a [`Lease`], so the cases of
/// lease behaviour (renewal, TTL without renewal, hold cap, loss signalled
/// in time, no foreign release, drop, cancellation, abandonment) are
/// written once, against this trait, and run for each primitive a backend
/// supports.
#[async_trait]
pub trait Leases: Send + Sync {
    /// The primitive (`lock`).
    fn primitive(&self) -> &'static str;

    /// One attempt on `key`: `Ok(None)` when another holder has it.
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<Lease>>;

    /// Waits for `key` up to the wait bound of `opts`.
    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<Lease>;

    /// What the backend promises.
    fn capabilities(&self) -> Capabilities;
}

/// The lock's grants.
pub(crate) struct Locks(pub(crate) Arc<dyn DistributedLock>);

#[async_trait]
impl Leases for Locks {
    fn primitive(&self) -> &'static str {
        "lock"
    }

    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<Lease>> {
        self.0.try_acquire(key, opts).await
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<Lease> {
        self.0.acquire(key, opts).await
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}

/// The primitives a lease case runs for, by name, and whether a backend
/// with `caps` supports each.
pub(crate) fn supported(caps: &Capabilities) -> Vec<&'static str> {
    let all = [
        ("lock", caps.primitives.lock),
        ("election", caps.primitives.election),
        ("semaphore", caps.primitives.semaphore),
        ("rwlock", caps.primitives.rwlock),
    ];
    all.iter()
        .filter(|(_, s)| s.is_supported())
        .map(|(p, _)| *p)
        // The lease cases know how to take grants of these so far.
        .filter(|p| *p == "lock")
        .collect()
}
