//! The backend side of a grant: what a backend hands core so that core can
//! run the watchdog, the validity deadline, the lost signal and the
//! background release for every backend alike.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{FencingToken, OwnerId, Result};

/// The store operations on one grant. Implemented by each backend; called by
/// the guard and its watchdog.
#[async_trait]
pub trait GrantOps: Send + Sync + 'static {
    /// Pushes the grant's expiry to `ttl` from now, only if this grant still
    /// owns the key. `Ok(true)`: renewed. `Ok(false)`: someone else owns it
    /// or it is gone. `Err`: the store could not be asked (the watchdog
    /// retries until the deadline).
    ///
    /// Session-based backends refresh their session (or do nothing) and
    /// return whether the grant still stands.
    async fn renew(&self, ttl: Duration) -> Result<bool>;

    /// Compare-and-delete by owner id. `Ok(true)`: this grant was deleted.
    /// `Ok(false)`: the key was not this grant's any more. Must be safe to
    /// call twice.
    async fn release(&self) -> Result<bool>;
}

/// Where a grant's validity deadline comes from.
pub enum Validity {
    /// Each grant has its own TTL; core renews it through
    /// [`GrantOps::renew`] and computes the deadline as `sent_at + ttl - drift`.
    Ttl {
        /// When the acquire request that produced the grant was sent.
        sent_at: Instant,
    },
    /// The client's session (ZooKeeper) or lease (etcd) keeps every grant
    /// alive. The backend publishes the deadline it can vouch for (already
    /// net of drift), or `None` once the session is gone for good.
    Session(watch::Receiver<Option<Instant>>),
}

impl fmt::Debug for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validity::Ttl { sent_at } => f.debug_struct("Ttl").field("sent_at", sent_at).finish(),
            Validity::Session(rx) => f.debug_tuple("Session").field(&*rx.borrow()).finish(),
        }
    }
}

/// Everything a backend knows about a fresh grant. Turn it into a guard with
/// [`LockGuard::from_grant`](crate::LockGuard::from_grant).
pub struct Grant {
    /// The lock key as the caller gave it.
    pub key: String,
    /// The grant's fencing token.
    pub token: FencingToken,
    /// The grant's owner id, as stored with the lock.
    pub owner: OwnerId,
    /// Where the validity deadline comes from.
    pub validity: Validity,
    /// The store operations on this grant.
    pub ops: std::sync::Arc<dyn GrantOps>,
    /// Completes when the store says the grant is gone (key deleted or taken
    /// by someone else). Optional: renewals find out too.
    pub revoked: Option<BoxFuture<'static, ()>>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("key", &self.key)
            .field("token", &self.token)
            .field("owner", &self.owner)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}
