//! `fencelock_core::Inspect` for Redis: status through the read-only
//! inspect script, and a list by `SCAN` of the fence counters.

use async_trait::async_trait;
use fencelock_core::{validate_key, Inspect, LockStatus, Result};

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
            waiters: Some(info.queued),
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let mut out = Vec::new();
        for key in self.keys(prefix).await? {
            if validate_key(&key).is_ok() {
                out.push(self.status(&key).await?);
            }
        }
        Ok(out)
    }
}
