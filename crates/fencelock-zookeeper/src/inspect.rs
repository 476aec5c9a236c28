//! Looking at locks without taking them, and breaking a wedged one.

use fencelock_core::{
    async_trait, validate_key, FencingToken, ForcedUnlock, Holder, Inspect, LockStatus, Result,
};
use zookeeper_client as zk;

use crate::error::{retry, Failure};
use crate::key::{contenders, owner_of, unescape_key};
use crate::ZkLock;

/// The holder of one lock directory: its node's path and how it shows.
struct Found {
    path: String,
    holder: Holder,
    waiters: usize,
}

impl ZkLock {
    /// The lowest contender node of `key` that still exists, and how many
    /// contenders queue behind it. A node fencelock did not make (Curator's
    /// unprotected `lock-<seq>`, another client's `…lock-<seq>`) is a
    /// foreign holder: it keeps fencelock clients out all the same.
    async fn holder(&self, key: &str) -> Result<Option<Found>> {
        validate_key(key)?;
        let session = self.session().await?;
        let client = &session.client;
        let parent = self.lock_path(key);
        let children = match retry(session.call_timeout, || client.list_children(&parent)).await {
            Ok(c) => contenders(c),
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f.into_error("listing the lock's contenders").with_key(key)),
        };
        let mut waiters = children.len();
        // The holder may go between the list and the stat: take the next.
        for name in &children {
            waiters = waiters.saturating_sub(1);
            let path = format!("{parent}/{name}");
            match retry(session.call_timeout, || client.check_stat(&path)).await {
                Ok(Some(stat)) => {
                    let holder = match owner_of(name) {
                        Some(o) => Holder::fencelock(o.to_string()),
                        None => Holder::foreign(Some(format!("node {name}"))),
                    };
                    let token = u64::try_from(stat.czxid).ok().map(FencingToken::new);
                    let holder = holder.with_token(token);
                    return Ok(Some(Found {
                        path,
                        holder,
                        waiters,
                    }));
                }
                Ok(None) => {}
                Err(f) => return Err(f.into_error("reading the holder's node").with_key(key)),
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Inspect for ZkLock {
    /// The holder (lowest contender node) of `key`: its owner id (for a
    /// node fencelock did not make, shown foreign, the node name), its
    /// `czxid` as token, and how many contenders queue behind it.
    /// `remaining` is `None`: the holder's session decides.
    async fn status(&self, key: &str) -> Result<LockStatus> {
        Ok(match self.holder(key).await? {
            Some(f) => LockStatus::free(key)
                .with_holder(f.holder)
                .with_waiters(Some(f.waiters)),
            None => LockStatus::free(key).with_waiters(Some(0)),
        })
    }

    /// Every key with a parent node under the prefix node whose name starts with
    /// `prefix` (nodes that are not escaped keys are skipped).
    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let session = self.session().await?;
        let client = &session.client;
        let base = &self.inner.base;
        let names = match retry(session.call_timeout, || client.list_children(base)).await {
            Ok(c) => c,
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f.into_error("listing the prefix node")),
        };
        let mut keys: Vec<String> = names
            .iter()
            .filter_map(|n| unescape_key(n))
            .filter(|k| k.starts_with(prefix) && validate_key(k).is_ok())
            .collect();
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.status(&k).await?);
        }
        Ok(out)
    }

    /// Deletes the holder's node (whoever made it). Tokens are `czxid`s:
    /// every node made later, the next holder's included, has a higher
    /// one, so nothing needs raising. A fencelock holder's watch on its node
    /// fires: it learns that it lost the lock.
    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        let Some(found) = self.holder(key).await? else {
            return Ok(ForcedUnlock::new(key, Vec::new(), None));
        };
        let session = self.session().await?;
        let client = &session.client;
        match retry(session.call_timeout, || client.delete(&found.path, None)).await {
            Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => {}
            Err(f) => return Err(f.into_error("deleting the holder's node").with_key(key)),
        }
        Ok(ForcedUnlock::new(key, vec![found.holder], None))
    }
}
