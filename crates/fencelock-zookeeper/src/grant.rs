//! The store side of one grant: our contender node.

use std::sync::{Arc, Weak};
use std::time::Duration;

use fencelock_core::async_trait;
use fencelock_core::grant::GrantOps;
use fencelock_core::Result;
use futures_util::future::BoxFuture;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::error::{retry, Failure};
use crate::session::Session;

/// One grant: the path of our ephemeral sequential node, on its session.
pub(crate) struct ZkGrant {
    pub(crate) session: Arc<Session>,
    pub(crate) path: String,
}

#[async_trait]
impl GrantOps for ZkGrant {
    /// The session keeps the grant alive; this only checks that our node
    /// still exists on our session (`false` when it is gone).
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        let client = &self.session.client;
        let sent = Instant::now();
        match retry(self.session.call_timeout, || client.check_stat(&self.path)).await {
            Ok(Some(stat)) if stat.ephemeral_owner == client.session_id().0 => {
                self.session.heard(sent);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(f) if f.session_gone() => Ok(false),
            Err(f) => Err(f.into_error("checking the lock node")),
        }
    }

    /// Deletes our node. The path carries our owner id, so it is never
    /// someone else's. `false` when it was already gone. When the store
    /// cannot be asked, the delete goes on in the background for as long as
    /// the session lives: a node left behind would hold the lock until the
    /// session ends, which may be never.
    async fn release(&self) -> Result<bool> {
        match delete_own(&self.session, &self.path).await {
            Ok(deleted) => Ok(deleted),
            Err(f) => {
                let (session, path) = (Arc::clone(&self.session), self.path.clone());
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(100);
                    while session.alive() {
                        tokio::time::sleep(pause).await;
                        match delete_own(&session, &path).await {
                            Ok(_) => return,
                            Err(e) => {
                                tracing::debug!(path = %path, error = ?e, "retrying the delete of a lock node")
                            }
                        }
                        pause = (pause * 2).min(Duration::from_secs(2));
                    }
                });
                Err(f.into_error("deleting the lock node"))
            }
        }
    }
}

/// Deletes one of our nodes: `Ok(true)` deleted, `Ok(false)` already gone
/// (or gone with its session).
///
/// A node that is gone after a try whose reply was lost, on a session that
/// is still alive, was deleted by that try (its path carries our owner id,
/// so nobody else made or deleted it): that is `Ok(true)`, not a loss.
pub(crate) async fn delete_own(session: &Session, path: &str) -> Result<bool, Failure> {
    let client = &session.client;
    let mut tries = 0u32;
    match retry(session.call_timeout, || {
        tries += 1;
        client.delete(path, None)
    })
    .await
    {
        Ok(()) => Ok(true),
        Err(Failure::Zk(zk::Error::NoNode)) => Ok(tries > 1 && session.alive()),
        Err(f) if f.session_gone() => Ok(false),
        Err(f) => Err(f),
    }
}

/// Completes when our node is deleted, or its session ends. Re-arms after a
/// data change (nobody should set data on it, but a watch is one-shot).
///
/// The watch is followed by a task of its own, not by the returned future:
/// the guard drops that future (with the watchdog) just before its release
/// deletes the node, and dropping an untriggered watch costs a request to
/// the server (`removeWatches`). The task ends with the watch: when the
/// node goes (our release fires it) or the session ends. It holds the
/// session weakly, so a leaked guard does not keep the session open.
pub(crate) fn revoked(
    session: &Arc<Session>,
    path: String,
    first: zk::OneshotWatcher,
) -> BoxFuture<'static, ()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let session = Arc::downgrade(session);
    tokio::spawn(async move {
        follow(session, path, first).await;
        let _ = tx.send(());
    });
    Box::pin(async move {
        // A dropped sender (the task is gone) means the same: stop trusting the grant.
        let _ = rx.await;
    })
}

async fn follow(session: Weak<Session>, path: String, first: zk::OneshotWatcher) {
    let mut watcher = first;
    loop {
        let ev = watcher.changed().await;
        match ev.event_type {
            zk::EventType::NodeDataChanged
            | zk::EventType::NodeChildrenChanged
            | zk::EventType::NodeCreated => {
                watcher = loop {
                    let Some(session) = session.upgrade().filter(|s| s.alive()) else {
                        return;
                    };
                    let client = &session.client;
                    match retry(session.call_timeout, || client.check_and_watch_stat(&path)).await {
                        Ok((Some(_), w)) => break w,
                        Ok((None, _)) => return,
                        Err(f) if f.session_gone() => return,
                        Err(f) => {
                            tracing::debug!(path = %path, failure = ?f, "re-arming the lock node watch");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
            }
            _ => return,
        }
    }
}

/// Waits out the watch on a node we just deleted, in the background, so
/// that its delete event retires it instead of a `removeWatches` request.
pub(crate) fn settle(watcher: zk::OneshotWatcher) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = watcher.changed().await;
        });
    }
}
