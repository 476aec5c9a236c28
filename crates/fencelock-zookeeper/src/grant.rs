//! The store side of one grant: our contender node.

use std::sync::Arc;
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
pub(crate) fn revoked(
    client: zk::Client,
    path: String,
    first: zk::OneshotWatcher,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut watcher = first;
        loop {
            let ev = watcher.changed().await;
            match ev.event_type {
                zk::EventType::NodeDataChanged
                | zk::EventType::NodeChildrenChanged
                | zk::EventType::NodeCreated => {
                    watcher = loop {
                        match client.check_and_watch_stat(&path).await {
                            Ok((Some(_), w)) => break w,
                            Ok((None, _)) => return,
                            Err(e) if Failure::Zk(e.clone()).session_gone() => return,
                            Err(e) => {
                                tracing::debug!(path = %path, error = %e, "re-arming the lock node watch");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    };
                }
                _ => return,
            }
        }
    })
}
