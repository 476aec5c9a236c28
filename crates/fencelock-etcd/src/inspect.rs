//! `fencelock_core::Inspect` for etcd: status of one key (holder, token,
//! lease time left, queue length), a list of the keys under the prefix, and
//! a forced unlock (delete the holder's key).

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use fencelock_core::{validate_key, ForcedUnlock, Holder, Inspect, LockStatus, Result};

use crate::lock::HolderInfo;
use crate::EtcdLock;

/// How a holder shows: a fencelock owner, or (an empty or other value, as
/// Go's `concurrency.Mutex` and `etcdctl lock` write) a foreign key.
fn holder_of(h: &HolderInfo) -> Holder {
    match h.owner {
        Some(o) => Holder::fencelock(o.to_string()),
        None => Holder::foreign(Some(format!("key {}", h.etcd_key))),
    }
    .with_token(Some(h.token))
    .with_remaining(h.remaining_ttl)
}

#[async_trait]
impl Inspect for EtcdLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        let info = self.inspect(key).await?;
        let status = LockStatus::free(key).with_waiters(Some(info.waiters));
        Ok(match &info.holder {
            Some(h) => status.with_holder(holder_of(h)),
            None => status,
        })
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let mut out = Vec::new();
        for key in self.lock_keys(prefix).await? {
            if validate_key(&key).is_ok() {
                out.push(self.status(&key).await?);
            }
        }
        Ok(out)
    }

    /// Deletes the holder's key, if it is still the one read (same create
    /// revision). Tokens are create revisions: every key made later, the
    /// next holder's included, has a higher one. A fencelock holder's watch
    /// on its key fires: it learns that it lost the lock.
    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        let info = self.inspect(key).await?;
        let Some(h) = info.holder else {
            return Ok(ForcedUnlock::new(key, Vec::new(), None));
        };
        let etcd_key = h.etcd_key.as_str();
        let revision = i64::try_from(h.token.get()).unwrap_or(i64::MAX);
        let r = self
            .inner
            .endpoints
            .call("delete", |mut c| {
                let txn = Txn::new()
                    .when([Compare::create_revision(
                        etcd_key,
                        CompareOp::Equal,
                        revision,
                    )])
                    .and_then([TxnOp::delete(etcd_key, None)]);
                async move { c.txn(txn).await }
            })
            .await
            .map_err(|e| e.with_key(key))?;
        // Not deleted: the holder went (and maybe another came) meanwhile.
        let removed = if r.succeeded() {
            vec![holder_of(&h)]
        } else {
            Vec::new()
        };
        Ok(ForcedUnlock::new(key, removed, None))
    }
}
