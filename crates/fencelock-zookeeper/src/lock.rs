//! `ZkLock`: the client, its sessions, and where its nodes live.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::Result;

use crate::config::ZkLockBuilder;
use crate::create::Parents;
use crate::key::escape_key;
use crate::session::Session;
use crate::sessions::Sessions;

/// A ZooKeeper [`DistributedLock`](fencelock_core::DistributedLock):
/// Curator-compatible fair locks on ephemeral sequential nodes, with the
/// node's `czxid` as fencing token.
///
/// A client holds one main ZooKeeper session; a grant whose TTL is shorter
/// than its timeout lives on a shorter session that honours the TTL (see
/// [`session_timeout_for`](ZkLock::session_timeout_for) and the crate docs,
/// "Sessions and loss"). Cheap to clone (clones share the sessions).
#[derive(Clone)]
pub struct ZkLock {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) base: String,
    pub(crate) sessions: Sessions,
    pub(crate) parents: Parents,
}

impl ZkLock {
    /// Connects with a URL (see [`ZkLockBuilder::from_url`]) and the
    /// defaults for everything else.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a bad URL; `Connection` when the hosts refuse or
    /// cannot be reached, `Timeout` when none gives a session in time (the
    /// message names each host and the bound that ran out).
    pub async fn connect(url: &str) -> Result<Self> {
        ZkLockBuilder::from_url(url)?.build().await
    }

    /// A builder for a URL.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a bad URL.
    pub fn builder(url: &str) -> Result<ZkLockBuilder> {
        ZkLockBuilder::from_url(url)
    }

    /// The negotiated timeout of the current (or last) main session.
    pub fn session_timeout(&self) -> Duration {
        self.inner.sessions.main_timeout()
    }

    /// The negotiated timeout of the session a grant with `ttl` lives on
    /// (opening that session if needed): how long the lock outlives a
    /// holder that dies without releasing.
    ///
    /// The main session's timeout when `ttl` is at least that long;
    /// otherwise `ttl` rounded up to whole seconds, or the server's minimum
    /// session timeout (`2 × tickTime` unless configured) when that is
    /// longer. A holder that lives gives its grant back at the TTL whatever
    /// the session (when renewal is off or the hold cap ends it).
    ///
    /// # Errors
    ///
    /// As [`ZkLock::connect`] when a session must be opened; `Unsupported`
    /// when the cap on sessions per client leaves none that honours `ttl`.
    pub async fn session_timeout_for(&self, ttl: Duration) -> Result<Duration> {
        Ok(self.inner.sessions.for_ttl(ttl).await?.timeout)
    }

    /// The id of the current main ZooKeeper session, if one is open.
    pub async fn session_id(&self) -> Option<i64> {
        self.inner.sessions.main_id().await
    }

    /// The ZooKeeper path of the parent node of `key`: `<chroot><prefix>/<escaped key>`.
    /// A Curator `InterProcessMutex` on this path shares the lock.
    pub fn lock_path(&self, key: &str) -> String {
        format!("{}/{}", self.inner.base, escape_key(key))
    }

    /// The main session, or a new one when there is none or it ended.
    pub(crate) async fn session(&self) -> Result<Arc<Session>> {
        self.inner.sessions.main().await
    }
}

impl ZkLockBuilder {
    /// Connects: establishes the main session (so an unreachable ensemble
    /// fails here) and returns the client.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for bad settings; `Connection` or `Timeout` when no
    /// session can be established (see [`ZkLock::connect`]).
    pub async fn build(self) -> Result<ZkLock> {
        self.check()?;
        let lock = ZkLock {
            inner: Arc::new(Inner {
                base: self.base_path(),
                sessions: Sessions::new(self),
                parents: Parents::default(),
            }),
        };
        lock.session().await?;
        Ok(lock)
    }
}

impl fmt::Debug for ZkLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkLock")
            .field("config", self.inner.sessions.config())
            .field("session_timeout", &self.session_timeout())
            .finish_non_exhaustive()
    }
}
