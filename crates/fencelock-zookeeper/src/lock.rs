//! `ZkLock` and its `DistributedLock` implementation: the recipe.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::grant::{Grant, Validity};
use fencelock_core::{
    async_trait, validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use tokio::sync::Mutex;
use tokio::time::{sleep, sleep_until, Instant};
use zookeeper_client as zk;

use crate::config::ZkLockBuilder;
use crate::error::{once, retry, Failure};
use crate::grant::{delete_own, revoked, ZkGrant};
use crate::key::{contenders, escape_key, node_name_prefix, node_prefix};
use crate::session::Session;

/// A ZooKeeper [`DistributedLock`]: Curator-compatible fair locks on
/// ephemeral sequential nodes, with the node's `czxid` as fencing token.
///
/// One client holds one ZooKeeper session at a time; all its grants live on
/// it. Cheap to clone (clones share the session). See the crate docs for
/// the recipe and the node layout.
#[derive(Clone)]
pub struct ZkLock {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: ZkLockBuilder,
    pub(crate) base: String,
    current: Mutex<Option<Arc<Session>>>,
    negotiated_ms: AtomicU64,
}

impl ZkLock {
    /// Connects with a URL (see [`ZkLockBuilder::from_url`]) and the
    /// defaults for everything else.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for a bad URL; `Connection` when no session can be
    /// established within the connect timeout.
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

    pub(crate) async fn from_builder(cfg: ZkLockBuilder) -> Result<Self> {
        let base = cfg.base_path();
        let lock = ZkLock {
            inner: Arc::new(Inner {
                negotiated_ms: AtomicU64::new(millis(cfg.session_timeout)),
                cfg,
                base,
                current: Mutex::new(None),
            }),
        };
        lock.session().await?;
        Ok(lock)
    }

    /// The negotiated session timeout of the current (or last) session.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.negotiated_ms.load(Ordering::Relaxed))
    }

    /// The id of the current ZooKeeper session, if one is open.
    pub async fn session_id(&self) -> Option<i64> {
        let cur = self.inner.current.lock().await;
        cur.as_ref()
            .filter(|s| s.alive())
            .map(|s| s.client.session_id().0)
    }

    /// The ZooKeeper path of the parent node of `key`: `<chroot><root>/<escaped key>`.
    /// A Curator `InterProcessMutex` on this path shares the lock.
    pub fn lock_path(&self, key: &str) -> String {
        format!("{}/{}", self.inner.base, escape_key(key))
    }

    /// The current session, or a new one when there is none or it ended.
    pub(crate) async fn session(&self) -> Result<Arc<Session>> {
        let mut cur = self.inner.current.lock().await;
        if let Some(s) = cur.as_ref() {
            if s.alive() {
                return Ok(Arc::clone(s));
            }
        }
        let s = Session::connect(&self.inner.cfg).await?;
        self.inner
            .negotiated_ms
            .store(millis(s.timeout), Ordering::Relaxed);
        *cur = Some(Arc::clone(&s));
        Ok(s)
    }

    fn parent(&self, key: &str) -> String {
        self.lock_path(key)
    }

    /// Creates the key's parent (a container) and the root (persistent) as needed.
    async fn ensure_parent(&self, session: &Session, parent: &str) -> Result<(), Failure> {
        let client = &session.client;
        let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        for _ in 0..3 {
            match retry(session.call_timeout, || {
                client.create(parent, &[], &container)
            })
            .await
            {
                Ok(_) | Err(Failure::Zk(zk::Error::NodeExists)) => return Ok(()),
                Err(Failure::Zk(zk::Error::NoNode)) => {
                    retry(session.call_timeout, || {
                        client.mkdir(&self.inner.base, &persistent)
                    })
                    .await?;
                }
                Err(f) => return Err(f),
            }
        }
        Ok(())
    }

    /// Creates our contender node; finds it again when the reply was lost.
    async fn create_node(
        &self,
        session: &Session,
        parent: &str,
        owner: OwnerId,
    ) -> Result<(String, zk::Stat)> {
        let client = &session.client;
        let prefix = node_prefix(parent, owner);
        let data = owner.to_string();
        let mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = Instant::now();
            let outcome = once(
                session.call_timeout,
                client.create(&prefix, data.as_bytes(), &mode),
            )
            .await;
            match outcome {
                Ok((stat, seq)) => {
                    session.heard(sent);
                    return Ok((format!("{prefix}{seq}"), stat));
                }
                Err(Failure::Zk(zk::Error::NoNode)) if attempts <= 4 => {
                    self.ensure_parent(session, parent)
                        .await
                        .map_err(|f| f.into_error("creating the lock's parent node"))?;
                }
                Err(f @ (Failure::Zk(zk::Error::ConnectionLoss) | Failure::Timeout(_))) => {
                    // The create may have happened: look for our owner id.
                    if let Some(found) = find_own(session, parent, owner)
                        .await
                        .map_err(|f| f.into_error("looking for the lock node after a lost reply"))?
                    {
                        let path = format!("{parent}/{found}");
                        let stat = retry(session.call_timeout, || client.check_stat(&path))
                            .await
                            .map_err(|f| f.into_error("reading the lock node"))?;
                        if let Some(stat) = stat {
                            return Ok((path, stat));
                        }
                    }
                    if attempts > 4 {
                        return Err(f.into_error("creating the lock node"));
                    }
                }
                Err(f) => return Err(f.into_error("creating the lock node")),
            }
        }
    }

    /// The sorted contenders of `parent`.
    async fn contenders(&self, session: &Session, parent: &str) -> Result<Vec<String>, Failure> {
        let client = &session.client;
        retry(session.call_timeout, || client.list_children(parent))
            .await
            .map(contenders)
    }

    /// One attempt, or a wait up to `wait_until` (`None` = forever; `Some(now)` = one attempt).
    async fn attempt(
        &self,
        key: &str,
        opts: &LockOptions,
        wait_until: Option<Instant>,
    ) -> Result<Outcome> {
        let session = self.session().await.map_err(|e| e.with_key(key))?;
        let parent = self.parent(key);
        let owner = OwnerId::random();
        let mut pending = Pending::new(Arc::clone(&session), parent.clone(), owner);
        let (path, stat) = self
            .create_node(&session, &parent, owner)
            .await
            .map_err(|e| e.with_key(key))?;
        pending.path = Some(path.clone());
        let me = path.rsplit('/').next().unwrap_or_default().to_string();
        let poll = session.timeout.max(Duration::from_secs(1));
        loop {
            let children = match self.contenders(&session, &parent).await {
                Ok(c) => c,
                Err(f) if f.session_gone() => {
                    session.gone();
                    return Ok(Outcome::SessionLost);
                }
                Err(f) => return Err(f.into_error("listing the lock's contenders").with_key(key)),
            };
            let Some(pos) = children.iter().position(|c| *c == me) else {
                // Our node is gone: the session expired or someone deleted it.
                pending.path = None;
                pending.armed = session.alive();
                return Ok(Outcome::SessionLost);
            };
            if pos == 0 {
                return self
                    .grant(key, opts, session, path, stat, owner, pending)
                    .await;
            }
            if wait_until.is_some_and(|t| Instant::now() >= t) {
                pending.remove().await;
                return Ok(Outcome::Busy);
            }
            let pred = format!("{parent}/{}", children[pos - 1]);
            let client = &session.client;
            let watched = retry(session.call_timeout, || client.check_and_watch_stat(&pred)).await;
            let watcher = match watched {
                Ok((None, _)) => continue,
                Ok((Some(_), w)) => w,
                Err(f) if f.session_gone() => {
                    session.gone();
                    return Ok(Outcome::SessionLost);
                }
                Err(f) => return Err(f.into_error("watching the predecessor node").with_key(key)),
            };
            let far = Instant::now() + Duration::from_secs(86_400 * 365);
            tokio::select! {
                _ = watcher.changed() => {}
                () = sleep_until(wait_until.unwrap_or(far)) => {}
                () = sleep(poll) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn grant(
        &self,
        key: &str,
        opts: &LockOptions,
        session: Arc<Session>,
        path: String,
        stat: zk::Stat,
        owner: OwnerId,
        mut pending: Pending,
    ) -> Result<Outcome> {
        let client = session.client.clone();
        let watched = retry(session.call_timeout, || client.check_and_watch_stat(&path)).await;
        let watcher = match watched {
            Ok((Some(_), w)) => w,
            Ok((None, _)) => {
                pending.armed = false;
                return Ok(Outcome::SessionLost);
            }
            Err(f) if f.session_gone() => {
                session.gone();
                return Ok(Outcome::SessionLost);
            }
            Err(f) => return Err(f.into_error("watching the lock node").with_key(key)),
        };
        let token = u64::try_from(stat.czxid).map_err(|_| {
            Error::backend(format!("the lock node has a negative czxid {}", stat.czxid))
                .with_key(key)
        })?;
        pending.armed = false;
        let grant = Grant {
            key: key.to_string(),
            token: FencingToken::new(token),
            owner,
            validity: Validity::Session(session.deadline_rx()),
            ops: Arc::new(ZkGrant {
                session: Arc::clone(&session),
                path: path.clone(),
            }),
            revoked: Some(revoked(client, path, watcher)),
        };
        match LockGuard::from_grant(grant, opts) {
            Ok(g) => Ok(Outcome::Granted(g)),
            Err(e) if e.kind() == fencelock_core::ErrorKind::Timeout => Ok(Outcome::TooLate(e)),
            Err(e) => Err(e),
        }
    }
}

/// What one attempt came to.
enum Outcome {
    Granted(LockGuard),
    /// Others hold or queue before us (our node is removed).
    Busy,
    /// The grant's deadline had passed by the time it was ours.
    TooLate(Error),
    /// The session ended (or our node vanished) mid-way.
    SessionLost,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Finds our node among `parent`'s children by the owner id in its name.
pub(crate) async fn find_own(
    session: &Session,
    parent: &str,
    owner: OwnerId,
) -> Result<Option<String>, Failure> {
    let client = &session.client;
    let name = node_name_prefix(owner);
    match retry(session.call_timeout, || client.list_children(parent)).await {
        Ok(children) => Ok(children.into_iter().find(|c| c.starts_with(&name))),
        Err(Failure::Zk(zk::Error::NoNode)) => Ok(None),
        Err(f) => Err(f),
    }
}

/// Our contender node while an acquire is under way. Dropped armed (the
/// acquire was cancelled or failed), it deletes the node in the background.
struct Pending {
    session: Arc<Session>,
    parent: String,
    owner: OwnerId,
    path: Option<String>,
    armed: bool,
}

impl Pending {
    fn new(session: Arc<Session>, parent: String, owner: OwnerId) -> Self {
        Pending {
            session,
            parent,
            owner,
            path: None,
            armed: true,
        }
    }

    /// Deletes the node now; leaves the background delete armed on failure.
    async fn remove(&mut self) {
        if let Some(path) = &self.path {
            match delete_own(&self.session, path).await {
                Ok(_) => self.armed = false,
                Err(f) => {
                    tracing::debug!(path = %path, failure = ?f, "deleting the lock node; retrying in the background")
                }
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed || !self.session.alive() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let session = Arc::clone(&self.session);
        let parent = std::mem::take(&mut self.parent);
        let owner = self.owner;
        let path = self.path.take();
        rt.spawn(async move {
            // Give up when the session ends: its ephemeral nodes go with it.
            let until = Instant::now() + session.timeout * 2;
            while session.alive() && Instant::now() < until {
                let path = match &path {
                    Some(p) => Some(p.clone()),
                    None => match find_own(&session, &parent, owner).await {
                        Ok(found) => found.map(|n| format!("{parent}/{n}")),
                        Err(_) => {
                            sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Some(path) = path else { return };
                match delete_own(&session, &path).await {
                    Ok(_) => return,
                    Err(_) => sleep(Duration::from_millis(100)).await,
                }
            }
        });
    }
}

#[async_trait]
impl DistributedLock for ZkLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        match self.attempt(key, opts, Some(Instant::now())).await? {
            Outcome::Granted(g) => Ok(Some(g)),
            Outcome::Busy => Ok(None),
            Outcome::TooLate(e) => Err(e),
            Outcome::SessionLost => Err(Error::connection(
                "the ZooKeeper session ended while taking the lock",
            )
            .with_key(key)),
        }
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let wait_until = opts.wait().map(|w| Instant::now() + w);
        let timed_out = || {
            Error::timeout(format!(
                "the lock stayed busy for the whole wait bound of {:?}",
                opts.wait().unwrap_or_default()
            ))
            .with_key(key)
        };
        let mut session_losses = 0u32;
        loop {
            match self.attempt(key, opts, wait_until).await? {
                Outcome::Granted(g) => return Ok(g),
                Outcome::Busy => return Err(timed_out()),
                Outcome::TooLate(e) => {
                    if wait_until.is_some_and(|t| Instant::now() >= t) {
                        return Err(e);
                    }
                }
                Outcome::SessionLost => {
                    session_losses += 1;
                    if wait_until.is_some_and(|t| Instant::now() >= t) || session_losses > 3 {
                        return Err(Error::connection(
                            "the ZooKeeper session ended while waiting for the lock",
                        )
                        .with_key(key));
                    }
                }
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: "zookeeper",
            fencing: Fencing::Strict,
            fairness: Fairness::Fifo,
            wakeup: Wakeup::Notification,
            expiry: Expiry::Session,
            session_timeout: Some(self.session_timeout()),
            scope: Scope::Network,
            extend: Extend::Session,
            store_restart: "ZooKeeper logs every write: a restart shorter than the session timeout keeps \
                            sessions and lock nodes; tokens (czxid) keep rising, zxids never go back",
            store_failover: "a quorum ensemble keeps every committed lock node across a leader change; \
                             the session moves to another server within the session timeout, and the \
                             new leader's epoch makes later czxids larger",
        }
    }
}

impl fmt::Debug for ZkLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkLock")
            .field("config", &self.inner.cfg)
            .field("session_timeout", &self.session_timeout())
            .finish_non_exhaustive()
    }
}
