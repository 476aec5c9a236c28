//! Looking at locks without taking them.

use fencelock_core::{async_trait, validate_key, FencingToken, Inspect, LockStatus, Result};
use zookeeper_client as zk;

use crate::error::{retry, Failure};
use crate::key::{contenders, owner_of, unescape_key};
use crate::ZkLock;

#[async_trait]
impl Inspect for ZkLock {
    /// The holder (lowest contender node) of `key`: its owner id (for
    /// Curator's unprotected nodes, the node name), its `czxid` as token,
    /// and how many contenders queue behind it. `remaining` is `None`: the
    /// holder's session decides.
    async fn status(&self, key: &str) -> Result<LockStatus> {
        validate_key(key)?;
        let session = self.session().await?;
        let client = &session.client;
        let parent = self.lock_path(key);
        let children = match retry(session.call_timeout, || client.list_children(&parent)).await {
            Ok(c) => contenders(c),
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f.into_error("listing the lock's contenders").with_key(key)),
        };
        let mut status = LockStatus {
            key: key.to_string(),
            waiters: Some(children.len().saturating_sub(1)),
            ..LockStatus::default()
        };
        // The holder may go between the list and the stat: take the next.
        for name in &children {
            let path = format!("{parent}/{name}");
            match retry(session.call_timeout, || client.check_stat(&path)).await {
                Ok(Some(stat)) => {
                    status.held = true;
                    status.owner =
                        Some(owner_of(name).map_or_else(|| name.clone(), |o| o.to_string()));
                    status.token = u64::try_from(stat.czxid).ok().map(FencingToken::new);
                    break;
                }
                Ok(None) => {
                    status.waiters = status.waiters.map(|w| w.saturating_sub(1));
                }
                Err(f) => return Err(f.into_error("reading the holder's node").with_key(key)),
            }
        }
        Ok(status)
    }

    /// Every key with a parent node under the root whose name starts with
    /// `prefix` (nodes that are not escaped keys are skipped).
    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let session = self.session().await?;
        let client = &session.client;
        let base = &self.inner.base;
        let names = match retry(session.call_timeout, || client.list_children(base)).await {
            Ok(c) => c,
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f.into_error("listing the lock root")),
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
}
