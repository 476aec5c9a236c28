//! What a backend promises, declared so that docs and tests read it.

use std::time::Duration;

/// How strong the fencing tokens are.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// Strictly increasing per key across clients and client restarts, and
    /// across store restarts where the store is durable.
    Strict,
    /// Increasing while the store keeps its state; a store restart without
    /// durable writes, or a failover to an asynchronous replica, can hand out
    /// a lower or repeated token.
    BestEffort,
}

/// In which order waiters get the lock.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fairness {
    /// First come, first served.
    Fifo,
    /// Any waiter may win.
    Unfair,
}

/// How a waiter learns the lock is free.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// The store notifies it (pub/sub, watch); a bounded poll is only a safety net.
    Notification,
    /// It polls.
    Polling,
}

/// What frees an abandoned lock.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Each grant's own TTL ([`LockOptions::with_ttl`](crate::LockOptions::with_ttl)).
    Ttl,
    /// The client's session or lease, shared by all its grants; it expires
    /// after [`Capabilities::session_timeout`] without the client.
    Session,
    /// The operating system, the moment the holding process dies.
    Process,
}

/// Who can share a lock.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Tasks of one process.
    Process,
    /// Processes of one host.
    Host,
    /// Processes anywhere that reach the store.
    Network,
}

/// What [`LockGuard::extend`](crate::LockGuard::extend) does.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// Sets the grant's own expiry to the given TTL from now.
    PerGrant,
    /// Refreshes the shared session or lease; the TTL argument is checked but
    /// the session timeout decides the deadline.
    Session,
}

/// A backend's declared behaviour. The conformance suite chooses its checks
/// from these fields, and docs/ tabulates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// A short backend name for reports (`memory`, `redis`, `zookeeper`, ...).
    pub backend: &'static str,
    /// Fencing token strength.
    pub fencing: Fencing,
    /// Waiter order.
    pub fairness: Fairness,
    /// How waiters wake.
    pub wakeup: Wakeup,
    /// What frees an abandoned lock.
    pub expiry: Expiry,
    /// The session or lease timeout when [`Expiry::Session`].
    pub session_timeout: Option<Duration>,
    /// Who can share a lock.
    pub scope: Scope,
    /// What `extend` does.
    pub extend: Extend,
    /// What a restart of the store does to held locks and tokens.
    pub store_restart: &'static str,
    /// What a failover of the store does to held locks.
    pub store_failover: &'static str,
}

impl Capabilities {
    /// How long an abandoned grant taken with `ttl` can keep others out.
    pub fn abandon_bound(&self, ttl: Duration) -> Duration {
        match self.expiry {
            Expiry::Ttl => ttl,
            Expiry::Session => self.session_timeout.unwrap_or(ttl),
            Expiry::Process => Duration::ZERO,
        }
    }
}
