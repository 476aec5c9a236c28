//! Inspection: [`EtcdLock::inspect`] (holder, token, lease time left,
//! queue length), and `fencelock_core::Inspect` for etcd: status of one
//! key, a list of the keys under the prefix, and a forced unlock (delete
//! the holder's key).

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp};
use fencelock_core::{
    validate_key, FencingToken, ForcedUnlock, Holder, Inspect, LockStatus, OwnerId, Result,
};

use crate::lock::EtcdLock;

/// What [`EtcdLock::inspect`] reports about one lock key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The lock key.
    pub key: String,
    /// The etcd prefix its contenders live under (`<prefix>/<escaped key>/`).
    pub etcd_prefix: String,
    /// The holder, if any.
    pub holder: Option<HolderInfo>,
    /// How many contenders wait behind the holder.
    pub waiters: usize,
}

/// The holder of a lock, as [`EtcdLock::inspect`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderInfo {
    /// The holder's etcd key.
    pub etcd_key: String,
    /// The holder's owner id, when a fencelock client holds it (Go and
    /// `etcdctl` write an empty value).
    pub owner: Option<OwnerId>,
    /// The fencing token (the key's create revision).
    pub token: FencingToken,
    /// The holder's lease id.
    pub lease: i64,
    /// What is left of the holder's lease, when etcd says.
    pub remaining_ttl: Option<Duration>,
}

impl EtcdLock {
    /// Reads who holds `key` and how many wait, in one range read plus one
    /// lease lookup.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; store errors.
    pub async fn inspect(&self, key: &str) -> Result<LockInfo> {
        validate_key(key)?;
        let prefix = self.inner.layout.contenders(key);
        let p = prefix.as_str();
        let r = self
            .inner
            .endpoints
            .call("get", |mut c| async move {
                c.get(
                    p,
                    Some(
                        GetOptions::new()
                            .with_prefix()
                            .with_sort(SortTarget::Create, SortOrder::Ascend),
                    ),
                )
                .await
            })
            .await
            .map_err(|e| e.with_key(key))?;
        let kvs = r.kvs();
        let holder = match kvs.first() {
            None => None,
            Some(kv) => {
                let lease = kv.lease();
                let ttl = self
                    .inner
                    .endpoints
                    .call("lease ttl", |mut c| async move {
                        c.lease_time_to_live(lease, None).await
                    })
                    .await
                    .ok()
                    .and_then(|t| u64::try_from(t.ttl()).ok())
                    .map(Duration::from_secs);
                Some(HolderInfo {
                    etcd_key: String::from_utf8_lossy(kv.key()).into_owned(),
                    owner: kv.value_str().ok().and_then(OwnerId::parse),
                    token: FencingToken::new(u64::try_from(kv.create_revision()).unwrap_or(0)),
                    lease,
                    remaining_ttl: ttl,
                })
            }
        };
        Ok(LockInfo {
            key: key.to_string(),
            etcd_prefix: prefix.clone(),
            holder,
            waiters: kvs.len().saturating_sub(1),
        })
    }

    /// The lock keys with at least one contender whose key starts with
    /// `prefix` (at most 10,000 contender keys are read).
    pub(crate) async fn lock_keys(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.inner.layout.root();
        let range = root.as_str();
        let r = self
            .inner
            .endpoints
            .call("list", |mut c| async move {
                let opts = GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_limit(10_000);
                let opts = if range.is_empty() {
                    opts.with_all_keys()
                } else {
                    opts
                };
                c.get(range, Some(opts)).await
            })
            .await?;
        let mut keys: Vec<String> = r
            .kvs()
            .iter()
            .filter_map(|kv| kv.key_str().ok())
            .filter_map(|k| self.inner.layout.key_of(k))
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

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
