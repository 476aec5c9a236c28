//! `fencelock_core::Inspect` for Redis: status through the read-only
//! inspect script; no enumeration yet.

use async_trait::async_trait;
use fencelock_core::{Error, Inspect, LockStatus, Result};

use crate::RedisLock;

#[async_trait]
impl Inspect for RedisLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        let info = self.inspect(key).await?;
        Ok(LockStatus {
            key: key.to_string(),
            held: info.holder.is_some(),
            owner: info.holder.map(|o| o.to_string()),
            token: info.token.or(info.last_token),
            remaining: info.remaining,
            waiters: None,
        })
    }

    async fn list(&self, _prefix: &str) -> Result<Vec<LockStatus>> {
        Err(Error::unsupported(
            "listing Redis locks is not implemented yet (it needs a SCAN over the key prefix)",
        ))
    }
}
