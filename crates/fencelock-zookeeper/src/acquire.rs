//! The recipe: one attempt (create, list, wait on the predecessor), the
//! grant, and the `DistributedLock` implementation around them.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::raw::{Grant, LateGrant, WaitBound};
use fencelock_core::{
    async_trait, validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::create::create_node;
use crate::error::{retry, Failure};
use crate::grant::{revoked, settle, ZkGrant};
use crate::key::contenders;
use crate::pending::{self, Pending};
use crate::session::Session;
use crate::ZkLock;

impl ZkLock {
    /// The sorted contenders of `parent`.
    async fn contenders(&self, session: &Session, parent: &str) -> Result<Vec<String>, Failure> {
        let client = &session.client;
        retry(session.call_timeout, || client.list_children(parent))
            .await
            .map(contenders)
    }

    /// One attempt, or a wait up to `wait_until` (`None` = forever; `Some(now)` = one attempt).
    ///
    /// Calls on an uncontended key: the create (see [`create_node`]),
    /// then the `exists` that sets the watch on our own node together with
    /// the list of contenders (both sent at once, one round trip), or the
    /// `exists` alone when the create made the parent too. A waiter sets
    /// its own watch at the start, so when its predecessor goes the grant
    /// costs one list.
    async fn attempt(&self, key: &str, opts: &LockOptions, bound: WaitBound) -> Result<Outcome> {
        let session = self
            .inner
            .sessions
            .for_ttl(opts.ttl())
            .await
            .map_err(|e| e.with_key(key))?;
        let parent = self.lock_path(key);
        let owner = OwnerId::random();
        let mut pending = pending::pending(Arc::clone(&session), parent.clone(), owner);
        let created = create_node(
            &session,
            &self.inner.parents,
            &self.inner.base,
            &parent,
            owner,
        )
        .await
        .map_err(|e| e.with_key(key))?;
        let path = created.path;
        pending.state_mut().path = Some(path.clone());
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
                let node = pending.state_mut();
                node.path = None;
                node.armed = session.alive();
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
                let node = pending.state_mut();
                node.path = None;
                node.armed = session.alive();
                return Ok(Outcome::SessionLost);
            };
            if pos == 0 {
                return self.grant(key, opts, session, path, stat, owner, own, pending);
            }
            if bound.passed() {
                if pending::remove(&mut pending).await {
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
        pending: Pending,
    ) -> Result<Outcome> {
        let token = u64::try_from(stat.czxid).map_err(|_| {
            Error::backend(format!("the lock node has a negative czxid {}", stat.czxid))
                .with_key(key)
        })?;
        pending.disarm();
        let grant = Grant {
            key: key.to_string(),
            token: FencingToken::new(token),
            owner,
            validity: session.validity(),
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
