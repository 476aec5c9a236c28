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

/// Whether a backend offers one primitive, and how fairly.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Offered, with waiters served in this order.
    Yes(Fairness),
    /// Not offered; the reason, as the `Unsupported` error says it.
    No(&'static str),
}

impl Support {
    /// Whether the primitive is offered.
    pub fn is_supported(&self) -> bool {
        matches!(self, Support::Yes(_))
    }
}

/// What a backend offers per primitive. The conformance suite registers a
/// primitive's cases only where it is offered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Primitives {
    /// The mutex ([`DistributedLock`](crate::DistributedLock)).
    pub lock: Support,
    /// Leader election.
    pub election: Support,
    /// Counting semaphores.
    pub semaphore: Support,
    /// Read-write locks.
    pub rwlock: Support,
}

/// Why a primitive a backend does not offer yet is missing.
const NOT_YET: &str = "this backend does not offer it yet";

impl Primitives {
    /// The mutex with `fairness`; nothing else yet.
    pub fn lock_only(fairness: Fairness) -> Self {
        Primitives {
            lock: Support::Yes(fairness),
            election: Support::No(NOT_YET),
            semaphore: Support::No(NOT_YET),
            rwlock: Support::No(NOT_YET),
        }
    }

    /// With election support set.
    #[must_use]
    pub fn with_election(mut self, s: Support) -> Self {
        self.election = s;
        self
    }

    /// With semaphore support set.
    #[must_use]
    pub fn with_semaphore(mut self, s: Support) -> Self {
        self.semaphore = s;
        self
    }

    /// With read-write lock support set.
    #[must_use]
    pub fn with_rwlock(mut self, s: Support) -> Self {
        self.rwlock = s;
        self
    }
}

/// A backend's declared behaviour. The conformance suite chooses its checks
/// from these fields, and docs/ tabulates them.
///
/// Built with [`Capabilities::new`] and the `with_*` setters, so that a
/// field added later does not break a backend written elsewhere.
///
/// ```
/// use fencelock_core::{Capabilities, Expiry, Fairness, Fencing, Scope, Wakeup};
///
/// let caps = Capabilities::new("my-store")
///     .with_fencing(Fencing::Strict)
///     .with_fairness(Fairness::Fifo)
///     .with_wakeup(Wakeup::Notification)
///     .with_expiry(Expiry::Ttl)
///     .with_scope(Scope::Network);
/// assert!(caps.primitives.lock.is_supported());
/// assert!(!caps.primitives.election.is_supported());
/// ```
#[non_exhaustive]
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
    /// What the backend offers per primitive.
    pub primitives: Primitives,
}

impl Capabilities {
    /// The most cautious declaration for `backend`, to refine with the
    /// setters: best-effort fencing, unfair, polling, per-grant TTL, network
    /// scope, per-grant extend, the mutex only.
    pub fn new(backend: &'static str) -> Self {
        Capabilities {
            backend,
            fencing: Fencing::BestEffort,
            fairness: Fairness::Unfair,
            wakeup: Wakeup::Polling,
            expiry: Expiry::Ttl,
            session_timeout: None,
            scope: Scope::Network,
            extend: Extend::PerGrant,
            store_restart: "",
            store_failover: "",
            primitives: Primitives::lock_only(Fairness::Unfair),
        }
    }

    /// Sets the fencing strength.
    #[must_use]
    pub fn with_fencing(mut self, fencing: Fencing) -> Self {
        self.fencing = fencing;
        self
    }

    /// Sets the lock's waiter order (and the mutex's entry in
    /// [`primitives`](Self::primitives)).
    #[must_use]
    pub fn with_fairness(mut self, fairness: Fairness) -> Self {
        self.fairness = fairness;
        self.primitives.lock = Support::Yes(fairness);
        self
    }

    /// Sets how waiters wake.
    #[must_use]
    pub fn with_wakeup(mut self, wakeup: Wakeup) -> Self {
        self.wakeup = wakeup;
        self
    }

    /// Sets what frees an abandoned lock.
    #[must_use]
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Sets the session or lease timeout (with [`Expiry::Session`]).
    #[must_use]
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = Some(timeout);
        self
    }

    /// Sets who can share a lock.
    #[must_use]
    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Sets what `extend` does.
    #[must_use]
    pub fn with_extend(mut self, extend: Extend) -> Self {
        self.extend = extend;
        self
    }

    /// Sets what a store restart does to held locks and tokens.
    #[must_use]
    pub fn with_store_restart(mut self, text: &'static str) -> Self {
        self.store_restart = text;
        self
    }

    /// Sets what a store failover does to held locks.
    #[must_use]
    pub fn with_store_failover(mut self, text: &'static str) -> Self {
        self.store_failover = text;
        self
    }

    /// Sets the per-primitive support (the mutex's entry follows
    /// [`with_fairness`](Self::with_fairness)).
    #[must_use]
    pub fn with_primitives(mut self, primitives: Primitives) -> Self {
        self.primitives = Primitives {
            lock: Support::Yes(self.fairness),
            ..primitives
        };
        self
    }

    /// How long an abandoned grant taken with `ttl` can keep others out.
    pub fn abandon_bound(&self, ttl: Duration) -> Duration {
        match self.expiry {
            Expiry::Ttl => ttl,
            Expiry::Session => self.session_timeout.unwrap_or(ttl),
            Expiry::Process => Duration::ZERO,
        }
    }
}
