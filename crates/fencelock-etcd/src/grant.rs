//! The store operations on one grant: release (compare-and-delete by owner),
//! renew (refresh the session and check the key), and the `revoked` watch.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchFilterType, WatchOptions};
use fencelock_core::grant::GrantOps;
use fencelock_core::{Error, OwnerId, Result};
use tokio::time::{sleep, timeout};

use crate::endpoints::Endpoints;
use crate::session::Lease;

/// One grant: the contender key `<prefix>/<key>/<lease hex>-<owner>` created at
/// revision `token`, holding the owner id as its value.
pub(crate) struct EtcdGrant {
    pub(crate) endpoints: Arc<Endpoints>,
    pub(crate) etcd_key: String,
    pub(crate) owner: OwnerId,
    pub(crate) revision: i64,
    pub(crate) lease: Arc<Lease>,
}

/// Deletes `etcd_key` only while it still holds `owner` (and, when given, was
/// created at `revision`). `Ok(true)` when it deleted.
pub(crate) async fn delete_if_owner(
    endpoints: &Endpoints,
    etcd_key: &str,
    owner: &str,
    revision: Option<i64>,
) -> Result<bool> {
    let mut when = vec![Compare::value(etcd_key, CompareOp::Equal, owner)];
    if let Some(rev) = revision {
        when.push(Compare::create_revision(etcd_key, CompareOp::Equal, rev));
    }
    let r = endpoints
        .call("delete", |mut c| {
            let txn = Txn::new()
                .when(when.clone())
                .and_then([TxnOp::delete(etcd_key, None)]);
            async move { c.txn(txn).await }
        })
        .await?;
    Ok(r.succeeded())
}

#[async_trait]
impl GrantOps for EtcdGrant {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        if !self.lease.alive() {
            return Ok(false);
        }
        self.lease.nudge();
        let key = self.etcd_key.as_str();
        let r = self
            .endpoints
            .call("get", |mut c| async move { c.get(key, None).await })
            .await?;
        let ours = r.kvs().first().is_some_and(|kv| {
            kv.create_revision() == self.revision
                && kv.lease() == self.lease.id
                && kv.value() == self.owner.simple().as_bytes()
        });
        Ok(ours && self.lease.alive())
    }

    /// Compare-and-delete, retried on transient errors while the lease
    /// lives (every acquisition has its own key, so a key left behind would
    /// keep the lock until the lease ends).
    async fn release(&self) -> Result<bool> {
        let owner = self.owner.simple();
        let mut last: Option<Error> = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                if !self.lease.alive() {
                    break;
                }
                sleep(Duration::from_millis(100) * attempt).await;
            }
            match delete_if_owner(&self.endpoints, &self.etcd_key, &owner, Some(self.revision))
                .await
            {
                Ok(deleted) => return Ok(deleted),
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(false),
        }
    }
}

/// Completes when the contender key created at `revision` is deleted (or
/// found gone). Watches the key; re-checks with a read when the watch breaks.
pub(crate) async fn wait_deleted(
    endpoints: Arc<Endpoints>,
    etcd_key: String,
    revision: i64,
    poll: Duration,
) {
    let mut from = revision;
    loop {
        let idx = endpoints.current();
        let opts = WatchOptions::new()
            .with_start_revision(from)
            .with_filters([WatchFilterType::NoPut]);
        let opened = match endpoints.client(idx).await {
            Ok(mut c) => timeout(
                endpoints.request_timeout,
                c.watch(etcd_key.as_str(), Some(opts)),
            )
            .await
            .ok()
            .and_then(|r| r.ok()),
            Err(_) => None,
        };
        if let Some(mut stream) = opened {
            loop {
                match stream.message().await {
                    Ok(Some(r)) if r.canceled() => {
                        from = from.max(r.compact_revision());
                        break;
                    }
                    Ok(Some(r)) => {
                        if r.events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete)
                        {
                            return;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        endpoints.rotate(idx);
        // The watch broke: look, so a delete in between is not missed.
        let key = etcd_key.as_str();
        match endpoints
            .call("get", |mut c| async move { c.get(key, None).await })
            .await
        {
            Ok(r) => match r.kvs().first() {
                Some(kv) if kv.create_revision() == revision => {
                    if let Some(h) = r.header() {
                        from = from.max(h.revision() + 1);
                    }
                }
                _ => return,
            },
            Err(e) => {
                tracing::debug!(key = %etcd_key, error = %e, "cannot check the key; retrying")
            }
        }
        sleep(poll.min(Duration::from_millis(500))).await;
    }
}
