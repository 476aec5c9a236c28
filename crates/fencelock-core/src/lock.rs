//! The `DistributedLock` trait.

use std::fmt;

use async_trait::async_trait;

use crate::{Capabilities, LockGuard, LockOptions, Result};

/// A distributed lock service: hands out grants on named keys, each with a
/// [`FencingToken`](crate::FencingToken).
///
/// Object-safe: pick a backend at run time and hold it as
/// `Arc<dyn DistributedLock>`. Conveniences such as
/// [`with_lock`](crate::DistributedLockExt::with_lock) live in
/// [`DistributedLockExt`](crate::DistributedLockExt).
///
/// # Contract
///
/// Every backend keeps these promises, and the conformance suite checks them
/// (where a backend cannot keep one, its [`Capabilities`] say so and the suite
/// checks the weaker promise):
///
/// - **Keys** are validated before any network call
///   ([`validate_key`](crate::validate_key)); every valid key works, keys are
///   case-sensitive, and two different keys are never one lock.
/// - **Mutual exclusion**: at most one grant of a key is valid at any
///   instant, as judged by each grant's validity deadline.
/// - **Fencing**: every grant's token is greater than the token of every
///   earlier grant of the same key, across clients and client restarts (and
///   store restarts where [`Fencing::Strict`](crate::Fencing::Strict)).
/// - **Validity deadline**: computed from the instant the acquire or renew
///   request was *sent*, plus the TTL, minus the drift margin; never later
///   than the moment the store could give the lock to someone else. A grant
///   whose reply arrives after that deadline is not a grant.
/// - **Loss is signalled**: the guard reports itself lost at its deadline at
///   the latest, even when the network is silent.
/// - **Release** is compare-and-delete by owner id: it never removes someone
///   else's grant, and releasing a lost grant returns
///   [`ErrorKind::Lost`](crate::ErrorKind::Lost).
/// - **Abandoned locks free themselves** within the TTL, session or lease
///   timeout ([`Capabilities::abandon_bound`]).
/// - **Contention is not an error**: `try_acquire` returns `Ok(None)`.
/// - **Not re-entrant**: a grant belongs to its guard, not to a thread,
///   task or client. A second `acquire` of a key this client already holds
///   waits like any other caller (and, with no wait bound, waits until the
///   first guard is released or lost); `try_acquire` says busy. Pass the
///   guard (or its [`LeaseHandle`](crate::LeaseHandle)) to the code that
///   needs it instead of locking again.
/// - **Bounded**: an unreachable store is
///   [`ErrorKind::Connection`](crate::ErrorKind::Connection) or
///   [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) within the configured
///   bounds, never a hang.
/// - **Busy is not an outage**: a wait bound that runs out while another
///   owner holds the key is [`ErrorKind::Busy`](crate::ErrorKind::Busy),
///   and only then; a store that stops answering is `Timeout` or
///   `Connection` (retryable), even when the wait bound passes meanwhile.
#[async_trait]
pub trait DistributedLock: Send + Sync + fmt::Debug + 'static {
    /// One attempt: `Ok(Some(guard))` when granted, `Ok(None)` when another
    /// owner holds the key (or, on a fair backend, when others are queued).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves nothing that outlives a background cleanup:
    /// a grant that was taken but not yet returned is released.
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>>;

    /// Waits for the lock up to [`LockOptions::wait`] (forever when `None`),
    /// woken by the store where [`Capabilities::wakeup`] says so.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Busy`](crate::ErrorKind::Busy) when the wait bound
    /// passes with the key held by another owner;
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the store does
    /// not answer in time; the key and option errors of [`validate_key`](crate::validate_key)
    /// and [`LockOptions::validate`]; store errors.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any await point leaves no key, queue node or
    /// lease that keeps others out for longer than a background task takes to
    /// delete it.
    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard>;

    /// What this backend promises.
    fn capabilities(&self) -> Capabilities;
}
