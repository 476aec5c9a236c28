//! The store operations on one held grant, and the one way this crate
//! turns a fresh TTL grant into a guard.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::grant::GrantOps;
use fencelock_core::raw::{Grant, LateGrant, Validity};
use fencelock_core::{FencingToken, LockGuard, LockOptions, OwnerId, Result};
use tokio::time::Instant;

use crate::client::Client;
use crate::keys::KeyNames;
use crate::scripts::ttl_ms;

/// One grant: renewals go through the client's batcher, the release is one
/// script call.
pub(crate) struct RedisGrant {
    pub(crate) inner: Arc<Client>,
    pub(crate) key: String,
    pub(crate) names: KeyNames,
    pub(crate) owner: String,
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

/// The guard of a fresh grant whose validity is its own TTL, counted from
/// `sent_at` (when the acquire request went out); `LateGrant` when the
/// reply came after that deadline (core then releases it).
pub(crate) fn ttl_guard(
    key: &str,
    owner: OwnerId,
    token: FencingToken,
    sent_at: Instant,
    ops: Arc<dyn GrantOps>,
    opts: &LockOptions,
) -> std::result::Result<LockGuard, LateGrant> {
    LockGuard::from_grant(
        Grant {
            key: key.to_string(),
            token,
            owner,
            validity: Validity::Ttl { sent_at },
            ops,
            revoked: None,
        },
        opts,
    )
}
