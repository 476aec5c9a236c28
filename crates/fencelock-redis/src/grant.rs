//! The store operations on one held grant.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::grant::GrantOps;
use fencelock_core::Result;

use crate::keys::KeyNames;
use crate::lock::Inner;

/// One grant: renewals go through the client's batcher, the release is one
/// script call.
pub(crate) struct RedisGrant {
    pub(crate) inner: Arc<Inner>,
    pub(crate) key: String,
    pub(crate) names: KeyNames,
    pub(crate) owner: String,
}

/// A TTL in whole milliseconds, at least 1.
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl GrantOps for RedisGrant {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        self.inner
            .batcher
            .renew(&self.names.lock, &self.owner, ttl_ms(ttl))
            .await
            .map_err(|e| e.with_key(self.key.clone()))
    }

    async fn release(&self) -> Result<bool> {
        self.inner
            .release(&self.names, &self.owner)
            .await
            .map_err(|e| e.with_key(self.key.clone()))
    }
}
