//! `ZkLock` and its `DistributedLock` implementation: the recipe.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::raw::{Grant, LateGrant, Validity, WaitBound};
use fencelock_core::{
    async_trait, validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use tokio::sync::Mutex;
use tokio::time::{sleep, Instant};
use zookeeper_client as zk;

use crate::config::ZkLockBuilder;
use crate::error::{once, retry, Failure};
use crate::grant::{delete_own, revoked, settle, ZkGrant};
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
    /// Parent nodes this client saw exist lately: a hint that picks the
    /// cheapest first create (see [`ZkLock::create_node`]), never relied on
    /// for safety.
    known: std::sync::Mutex<HashSet<String>>,
}

/// How many parent paths [`Inner::known`] remembers before it starts over.
const KNOWN_PARENTS: usize = 4096;

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
                known: std::sync::Mutex::new(HashSet::new()),
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

    /// Whether `parent` was seen to exist lately (a hint).
    fn knows(&self, parent: &str) -> bool {
        self.inner
            .known
            .lock()
            .is_ok_and(|known| known.contains(parent))
    }

    /// Remembers (or forgets) that `parent` exists.
    fn learn(&self, parent: &str, exists: bool) {
        if let Ok(mut known) = self.inner.known.lock() {
            if !exists {
                known.remove(parent);
            } else if !known.contains(parent) {
                if known.len() >= KNOWN_PARENTS {
                    known.clear();
                }
                known.insert(parent.to_string());
            }
        }
    }

    /// Creates our contender node; finds it again when the reply was lost.
    ///
    /// One write in the common cases. For a parent this client saw lately,
    /// a plain create of the child. Otherwise (a fresh key) one transaction
    /// creates the parent (a container) and the child together; when the
    /// parent turns out to exist (`NodeExists` on its create, so nothing
    /// was written) the plain create follows, and when the plain create
    /// finds no parent (`NoNode`: the server reaped the empty container)
    /// the transaction follows. A missing root is made on `NoNode` from the
    /// transaction, as Curator's `creatingParentContainersIfNeeded` does.
    async fn create_node(
        &self,
        session: &Session,
        parent: &str,
        owner: OwnerId,
    ) -> Result<Created> {
        let client = &session.client;
        let prefix = node_prefix(parent, owner);
        let data = owner.to_string();
        let mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let mut with_parent = !self.knows(parent);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = Instant::now();
            let outcome = if with_parent {
                let mut txn = client.new_multi_writer();
                txn.add_create(parent, &[], &container)
                    .and_then(|()| txn.add_create(&prefix, data.as_bytes(), &mode))
                    .map_err(|e| Failure::Zk(e).into_error("creating the lock node"))?;
                let commit = txn.commit();
                let done = once(session.call_timeout, async move {
                    match commit.await {
                        Ok(results) => Ok(Ok(results)),
                        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                            Ok(Err((index, source)))
                        }
                        Err(zk::MultiWriteError::RequestFailed { source }) => Err(source),
                    }
                })
                .await;
                match done {
                    Ok(Ok(results)) => {
                        session.heard(sent);
                        self.learn(parent, true);
                        // Created with its parent in one transaction, the
                        // child is the parent's first child: it sorts first
                        // (sequence 0) for as long as it exists.
                        let path = results
                            .into_iter()
                            .nth(1)
                            .and_then(|r| match r {
                                zk::MultiWriteResult::Create { path, stat } => Some((path, stat)),
                                _ => None,
                            })
                            .ok_or_else(|| {
                                Error::backend(
                                    "the create transaction answered without the lock node",
                                )
                            })?;
                        return Ok(Created {
                            // ZooKeeper before 3.7.2/3.8.2 leaves the stat out
                            // (ZOOKEEPER-4026): the czxid then comes from the
                            // exists that sets our watch.
                            czxid: Some(path.1.czxid).filter(|z| *z > 0),
                            path: path.0,
                            alone: true,
                        });
                    }
                    Ok(Err((0, zk::Error::NodeExists))) => {
                        self.learn(parent, true);
                        with_parent = false;
                        continue;
                    }
                    Ok(Err((0, zk::Error::NoNode))) if attempts <= 4 => {
                        retry(session.call_timeout, || {
                            client.mkdir(&self.inner.base, &persistent)
                        })
                        .await
                        .map_err(|f| f.into_error("creating the lock's root node"))?;
                        continue;
                    }
                    Ok(Err((_, e))) => Err(Failure::Zk(e)),
                    Err(f) => Err(f),
                }
            } else {
                match once(
                    session.call_timeout,
                    client.create(&prefix, data.as_bytes(), &mode),
                )
                .await
                {
                    Ok((stat, seq)) => {
                        session.heard(sent);
                        return Ok(Created {
                            path: format!("{prefix}{seq}"),
                            czxid: Some(stat.czxid).filter(|z| *z > 0),
                            alone: false,
                        });
                    }
                    Err(Failure::Zk(zk::Error::NoNode)) if attempts <= 4 => {
                        self.learn(parent, false);
                        with_parent = true;
                        continue;
                    }
                    Err(f) => Err(f),
                }
            };
            match outcome {
                Err(f @ (Failure::Zk(zk::Error::ConnectionLoss) | Failure::Timeout(_))) => {
                    // The create may have happened: look for our owner id.
                    if let Some(found) = find_own(session, parent, owner)
                        .await
                        .map_err(|f| f.into_error("looking for the lock node after a lost reply"))?
                    {
                        return Ok(Created {
                            path: format!("{parent}/{found}"),
                            czxid: None,
                            alone: false,
                        });
                    }
                    if attempts > 4 {
                        return Err(f.into_error("creating the lock node"));
                    }
                }
                Err(f) => return Err(f.into_error("creating the lock node")),
                Ok(()) => {}
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
    ///
    /// Calls on an uncontended key: the create (see [`Self::create_node`]),
    /// then the `exists` that sets the watch on our own node together with
    /// the list of contenders (both sent at once, one round trip), or the
    /// `exists` alone when the create made the parent too. A waiter sets
    /// its own watch at the start, so when its predecessor goes the grant
    /// costs one list.
    async fn attempt(&self, key: &str, opts: &LockOptions, bound: WaitBound) -> Result<Outcome> {
        let session = self.session().await.map_err(|e| e.with_key(key))?;
        let parent = self.parent(key);
        let owner = OwnerId::random();
        let mut pending = Pending::new(Arc::clone(&session), parent.clone(), owner);
        let created = self
            .create_node(&session, &parent, owner)
            .await
            .map_err(|e| e.with_key(key))?;
        let path = created.path;
        pending.path = Some(path.clone());
        let me = path.rsplit('/').next().unwrap_or_default().to_string();
        let client = &session.client;
        // Our own node's watch (its deletion revokes the grant) and its czxid.
        let own = retry(session.call_timeout, || client.check_and_watch_stat(&path));
        let (own, mut listed) = if created.alone {
            (own.await, None)
        } else {
            let (own, listed) = tokio::join!(own, self.contenders(&session, &parent));
            (own, Some(listed))
        };
        let (stat, own) = match own {
            Ok((Some(stat), w)) => (stat, w),
            Ok((None, _)) => {
                // Our node is gone already: the session expired or someone deleted it.
                pending.path = None;
                pending.armed = session.alive();
                return Ok(Outcome::SessionLost);
            }
            Err(f) if f.session_gone() => {
                session.gone();
                return Ok(Outcome::SessionLost);
            }
            Err(f) => return Err(f.into_error("watching the lock node").with_key(key)),
        };
        if created.czxid.is_some_and(|z| z != stat.czxid) {
            return Err(Error::backend(format!(
                "the lock node {path} changed its czxid from {:?} to {}",
                created.czxid, stat.czxid
            ))
            .with_key(key));
        }
        if created.alone {
            return self.grant(key, opts, session, path, stat, owner, own, pending);
        }
        let poll = session.timeout.max(Duration::from_secs(1));
        loop {
            let listed = match listed.take() {
                Some(l) => l,
                None => self.contenders(&session, &parent).await,
            };
            let children = match listed {
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
                return self.grant(key, opts, session, path, stat, owner, own, pending);
            }
            if bound.passed() {
                if pending.remove().await {
                    // Let our delete fire the watch rather than removing it
                    // with one more request.
                    settle(own);
                }
                return Ok(Outcome::Busy);
            }
            let pred = format!("{parent}/{}", children[pos - 1]);
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
            tokio::select! {
                _ = watcher.changed() => {}
                () = bound.sleep_until(Some(Instant::now() + poll)) => {}
            }
        }
    }

    /// Turns our node into a guard: token = its `czxid`; `own` (the watch on
    /// our node) revokes the grant when the node goes.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &self,
        key: &str,
        opts: &LockOptions,
        session: Arc<Session>,
        path: String,
        stat: zk::Stat,
        owner: OwnerId,
        own: zk::OneshotWatcher,
        mut pending: Pending,
    ) -> Result<Outcome> {
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
            revoked: Some(revoked(&session, path, own)),
        };
        match LockGuard::from_grant(grant, opts) {
            Ok(g) => Ok(Outcome::Granted(g)),
            Err(late) => Ok(Outcome::TooLate(late)),
        }
    }
}

/// Our contender node, as created.
struct Created {
    path: String,
    /// Its `czxid` when the create's reply carried it.
    czxid: Option<i64>,
    /// Created in one transaction with its parent: the parent's first
    /// child, so the lowest contender for as long as it exists.
    alone: bool,
}

/// What one attempt came to.
enum Outcome {
    Granted(LockGuard),
    /// Others hold or queue before us (our node is removed).
    Busy,
    /// The grant's deadline had passed by the time it was ours.
    TooLate(LateGrant),
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
    /// `true` when this call deleted it.
    async fn remove(&mut self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match delete_own(&self.session, path).await {
            Ok(deleted) => {
                self.armed = false;
                deleted
            }
            Err(f) => {
                tracing::debug!(path = %path, failure = ?f, "deleting the lock node; retrying in the background");
                false
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
        match self
            .attempt(key, opts, WaitBound::of(Some(Duration::ZERO)))
            .await?
        {
            Outcome::Granted(g) => Ok(Some(g)),
            Outcome::Busy => Ok(None),
            Outcome::TooLate(late) => Err(late.into()),
            Outcome::SessionLost => Err(Error::connection(
                "the ZooKeeper session ended while taking the lock",
            )
            .with_key(key)),
        }
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let bound = WaitBound::start(opts);
        let mut session_losses = 0u32;
        loop {
            match self.attempt(key, opts, bound).await? {
                Outcome::Granted(g) => return Ok(g),
                Outcome::Busy => return Err(bound.busy(key)),
                Outcome::TooLate(late) => {
                    if bound.passed() {
                        return Err(late.into());
                    }
                }
                Outcome::SessionLost => {
                    session_losses += 1;
                    if bound.passed() || session_losses > 3 {
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
        Capabilities::new("zookeeper")
            .with_fencing(Fencing::Strict)
            .with_fairness(Fairness::Fifo)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Session)
            .with_scope(Scope::Network)
            .with_extend(Extend::Session)
            .with_store_restart("ZooKeeper logs every write: a restart shorter than the session timeout keeps \
                            sessions and lock nodes; tokens (czxid) keep rising, zxids never go back")
            .with_store_failover("a quorum ensemble keeps every committed lock node across a leader change; \
                             the session moves to another server within the session timeout, and the \
                             new leader's epoch makes later czxids larger")
            .with_session_timeout(self.session_timeout())
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
