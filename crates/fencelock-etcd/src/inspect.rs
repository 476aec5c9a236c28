//! `fencelock_core::Inspect` for etcd: status of one key (holder, token,
//! lease time left, queue length), and a list of the keys under the prefix.

use async_trait::async_trait;
use fencelock_core::{validate_key, Inspect, LockStatus, Result};

use crate::EtcdLock;

#[async_trait]
impl Inspect for EtcdLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        let info = self.inspect(key).await?;
        let holder = info.holder.as_ref();
        Ok(LockStatus {
            key: key.to_string(),
            held: holder.is_some(),
            owner: holder.map(|h| match h.owner {
                Some(o) => o.to_string(),
                None => format!("{} (not fencelock)", h.etcd_key),
            }),
            token: holder.map(|h| h.token),
            remaining: holder.and_then(|h| h.remaining_ttl),
            waiters: Some(info.waiters),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let mut out = Vec::new();
        for key in self.lock_keys(prefix).await? {
            if validate_key(&key).is_ok() {
                out.push(self.status(&key).await?);
            }
        }
        Ok(out)
    }
}
