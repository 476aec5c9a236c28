//! `EtcdLock`: the `DistributedLock` trait on etcd, with the recipe of Go's
//! `concurrency.Mutex`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use fencelock_core::grant::{Grant, Validity};
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, ErrorKind, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use futures_util::FutureExt;
use tokio::time::{sleep, Instant};

use crate::config::EtcdLockBuilder;
use crate::endpoints::Endpoints;
use crate::grant::{delete_if_owner, wait_deleted, EtcdGrant};
use crate::keys::{contender_key, Layout};
use crate::session::{Lease, Session};

/// A distributed lock client on etcd.
///
/// One client holds one etcd lease (its session), kept alive by one
/// background task and shared by every lock it holds; a lock is a key under
/// `<prefix>/<escaped key>/` attached to that lease, exactly as etcd's Go
/// `concurrency.Mutex` and `etcdctl lock` lay it out, so they exclude each
/// other. The fencing token is the key's `create_revision`. See the crate
/// docs for the layout and the capability checklist.
///
/// Cheap to clone; clones share the session. The lease is revoked when the
/// last clone and the last guard are gone.
#[derive(Clone)]
pub struct EtcdLock {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Arc<Endpoints>,
    session: Session,
    layout: Layout,
    poll: Duration,
}

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

impl fmt::Debug for EtcdLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLock")
            .field("prefix", &self.inner.layout.prefix())
            .field("endpoints", &self.inner.endpoints.len())
            .field("lease_ttl", &self.inner.session.ttl())
            .finish_non_exhaustive()
    }
}

/// How an attempt ended when it did not produce a guard.
enum Outcome {
    Granted(LockGuard),
    Busy,
    /// The grant arrived too late (`from_grant` said Timeout): try again.
    Late(Error),
    /// The session's lease turned out to be gone: try again on a new one.
    Retry(Error),
}

/// Cleans up a contender key when an acquire is dropped or gives up before a
/// grant: deletes the key (by owner) in the background.
struct Pending {
    endpoints: Arc<Endpoints>,
    etcd_key: String,
    owner: OwnerId,
    armed: bool,
}

impl Pending {
    /// Deletes the key now (used on the ordinary give-up paths).
    async fn cancel(mut self) -> Result<()> {
        self.armed = false;
        delete_if_owner(&self.endpoints, &self.etcd_key, &self.owner.simple(), None)
            .await
            .map(|_| ())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let endpoints = Arc::clone(&self.endpoints);
        let key = std::mem::take(&mut self.etcd_key);
        let owner = self.owner.simple();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = delete_if_owner(&endpoints, &key, &owner, None).await {
                    tracing::debug!(key = %key, error = %e, "cleanup of a cancelled acquire failed; the lease frees it");
                }
            });
        }
    }
}

impl EtcdLock {
    /// Connects with a URL (see [`EtcdLockBuilder::from_url`]).
    ///
    /// # Errors
    ///
    /// As [`EtcdLockBuilder::from_url`] and [`EtcdLockBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self> {
        EtcdLockBuilder::from_url(url)?.build().await
    }

    /// A builder for these endpoints.
    pub fn builder<I, S>(endpoints: I) -> EtcdLockBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdLockBuilder::new(endpoints)
    }

    pub(crate) async fn from_builder(b: EtcdLockBuilder) -> Result<Self> {
        let layout = Layout::new(&b.prefix)?;
        let options = b.connect_options()?;
        let endpoints = Arc::new(Endpoints::new(
            b.urls(),
            options,
            b.request_timeout,
            b.connect_timeout,
        ));
        let session = Session::new(Arc::clone(&endpoints), b.ttl_secs(), b.drift);
        // Granting the lease proves the cluster answers (and the credentials work).
        session.lease().await?;
        Ok(EtcdLock {
            inner: Arc::new(Inner {
                endpoints,
                session,
                layout,
                poll: b.poll_interval,
            }),
        })
    }

    /// The etcd mutex name of a lock key: what `etcdctl lock <name>` and Go's
    /// `concurrency.NewMutex(session, name)` must be given to contend for the
    /// same lock (`<prefix>/<escaped key>`, or `<escaped key>` with the
    /// empty prefix; `%` and `/` in the key are escaped as `%25` and `%2F`).
    pub fn mutex_name(&self, key: &str) -> String {
        self.inner.layout.mutex_name(key)
    }

    /// The lease TTL etcd granted this client's session.
    pub fn lease_ttl(&self) -> Duration {
        self.inner.session.ttl()
    }

    /// The current session lease id, granting a lease if there is none.
    ///
    /// # Errors
    ///
    /// Store errors when a new lease cannot be granted.
    pub async fn lease_id(&self) -> Result<i64> {
        Ok(self.inner.session.lease().await?.id)
    }

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

    /// Puts our contender key if absent (else reads it), and reads the
    /// holder, in one transaction. Returns our key's create revision and
    /// whether we hold the lock. A leftover key of ours from an earlier
    /// grant of this client (a failed release or cleanup) is deleted first:
    /// reusing it would reuse its fencing token.
    async fn enqueue(
        &self,
        contenders: &str,
        etcd_key: &str,
        owner: &str,
        lease: i64,
    ) -> Result<(i64, bool)> {
        for _ in 0..3 {
            let r = self
                .inner
                .endpoints
                .call("txn", |mut c| {
                    let first = GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Create, SortOrder::Ascend)
                        .with_limit(1)
                        .with_keys_only();
                    let txn = Txn::new()
                        .when([Compare::create_revision(etcd_key, CompareOp::Equal, 0)])
                        .and_then([
                            TxnOp::put(etcd_key, owner, Some(PutOptions::new().with_lease(lease))),
                            TxnOp::get(contenders, Some(first.clone())),
                        ])
                        .or_else([
                            TxnOp::get(etcd_key, None),
                            TxnOp::get(contenders, Some(first)),
                        ]);
                    async move { c.txn(txn).await }
                })
                .await?;
            let ops = r.op_responses();
            let holder_rev = match ops.get(1) {
                Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|kv| kv.create_revision()),
                _ => return Err(Error::backend("etcd txn answered without the holder read")),
            };
            let mine = if r.succeeded() {
                r.header()
                    .map(|h| h.revision())
                    .ok_or_else(|| Error::backend("etcd txn answered without a header"))?
            } else {
                let kv = match ops.first() {
                    Some(TxnOpResponse::Get(g)) => g.kvs().first().cloned(),
                    _ => None,
                };
                let Some(kv) = kv else {
                    continue; // deleted in between: put again
                };
                if kv.value() != owner.as_bytes() {
                    let stale = String::from_utf8_lossy(kv.value()).into_owned();
                    tracing::debug!(key = %etcd_key, "deleting a leftover contender key of this client");
                    delete_if_owner(
                        &self.inner.endpoints,
                        etcd_key,
                        &stale,
                        Some(kv.create_revision()),
                    )
                    .await?;
                    continue;
                }
                kv.create_revision()
            };
            return Ok((mine, holder_rev.is_none_or(|h| h == mine)));
        }
        Err(Error::backend(
            "the contender key kept changing under this client",
        ))
    }

    /// The contender created just before ours, if any (Go's `waitDeletes`).
    async fn predecessor(&self, contenders: &str, mine: i64) -> Result<Option<(String, i64)>> {
        let r = self
            .inner
            .endpoints
            .call("get", |mut c| {
                let opts = GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Descend)
                    .with_max_create_revision(mine - 1)
                    .with_limit(1)
                    .with_keys_only();
                async move { c.get(contenders, Some(opts)).await }
            })
            .await?;
        Ok(r.kvs().first().map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.create_revision(),
            )
        }))
    }

    /// Whether our key still exists, with our lease, at our revision (the
    /// etcd#11456 check: a waiter whose lease ran out must not be granted).
    async fn still_ours(&self, etcd_key: &str, mine: i64, lease: &Lease) -> Result<bool> {
        let r = self
            .inner
            .endpoints
            .call("get", |mut c| async move { c.get(etcd_key, None).await })
            .await?;
        let ok = r
            .kvs()
            .first()
            .is_some_and(|kv| kv.create_revision() == mine && kv.lease() == lease.id);
        Ok(ok && lease.alive())
    }

    /// One acquisition: queue, wait for the predecessors (unless `wait_until`
    /// is `None` meaning "do not wait"), grant.
    async fn attempt(
        &self,
        key: &str,
        opts: &LockOptions,
        wait: Option<Option<Instant>>,
    ) -> Result<Outcome> {
        let contenders = self.inner.layout.contenders(key);
        let lease = self.inner.session.lease().await?;
        let owner = OwnerId::random();
        let owner_s = owner.simple();
        let etcd_key = contender_key(&contenders, lease.id, &owner_s);
        let mut pending = Pending {
            endpoints: Arc::clone(&self.inner.endpoints),
            etcd_key: etcd_key.clone(),
            owner,
            armed: true,
        };
        let (mine, mut held) = match self
            .enqueue(&contenders, &etcd_key, &owner_s, lease.id)
            .await
        {
            Ok(r) => r,
            Err(e) if e.message().contains("lease not found") => {
                // Revoked or expired before the keep-alive task noticed.
                pending.armed = false;
                lease.kill();
                return Ok(Outcome::Retry(e));
            }
            Err(e) => return Err(e),
        };
        if !held {
            let Some(wait_until) = wait else {
                pending.cancel().await?;
                return Ok(Outcome::Busy);
            };
            let mut lease_rx = lease.deadline.clone();
            let far = Instant::now() + Duration::from_secs(86_400 * 365);
            loop {
                let Some((pred, pred_rev)) = self.predecessor(&contenders, mine).await? else {
                    break;
                };
                if wait_until.is_some_and(|t| Instant::now() >= t) {
                    pending.cancel().await?;
                    return Err(wait_timeout(key, opts));
                }
                let gone = wait_deleted(
                    Arc::clone(&self.inner.endpoints),
                    pred,
                    pred_rev,
                    self.inner.poll,
                );
                tokio::select! {
                    () = gone => {}
                    () = sleep(self.inner.poll) => {}
                    () = tokio::time::sleep_until(wait_until.unwrap_or(far)) => {
                        pending.cancel().await?;
                        return Err(wait_timeout(key, opts));
                    }
                    () = async { let _ = lease_rx.wait_for(|d| d.is_none()).await.is_err(); } => {}
                }
                if !lease.alive() {
                    break;
                }
            }
            held = true;
        }
        debug_assert!(held);
        if !self.still_ours(&etcd_key, mine, &lease).await? {
            let _ = pending.cancel().await;
            return Err(Error::lost(
                "the client's etcd lease expired while waiting for the lock; nothing was granted",
            )
            .with_key(key)
            .with_retryable(true));
        }
        pending.armed = false;
        let ops = Arc::new(EtcdGrant {
            endpoints: Arc::clone(&self.inner.endpoints),
            etcd_key: etcd_key.clone(),
            owner,
            revision: mine,
            lease: Arc::clone(&lease),
        });
        let revoked = wait_deleted(
            Arc::clone(&self.inner.endpoints),
            etcd_key,
            mine,
            self.inner.poll,
        )
        .boxed();
        let grant = Grant {
            key: key.to_string(),
            token: FencingToken::new(u64::try_from(mine).unwrap_or(0)),
            owner,
            validity: Validity::Session(lease.deadline.clone()),
            ops,
            revoked: Some(revoked),
        };
        match LockGuard::from_grant(grant, opts) {
            Ok(g) => Ok(Outcome::Granted(g)),
            Err(e) if e.kind() == ErrorKind::Timeout => Ok(Outcome::Late(e)),
            Err(e) => Err(e),
        }
    }
}

fn wait_timeout(key: &str, opts: &LockOptions) -> Error {
    Error::timeout(format!(
        "the lock stayed busy for the whole wait bound of {:?}",
        opts.wait().unwrap_or_default()
    ))
    .with_key(key)
}

#[async_trait]
impl DistributedLock for EtcdLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        // One more attempt when the lease turns out to be gone.
        for _ in 0..2 {
            match self
                .attempt(key, opts, None)
                .await
                .map_err(|e| keyed(e, key))?
            {
                Outcome::Granted(g) => return Ok(Some(g)),
                Outcome::Busy => return Ok(None),
                Outcome::Late(e) => return Err(e),
                Outcome::Retry(_) => {}
            }
        }
        Err(Error::connection("the etcd session lease kept disappearing").with_key(key))
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let wait_until = opts.wait().map(|w| Instant::now() + w);
        let mut retries = 0;
        loop {
            match self
                .attempt(key, opts, Some(wait_until))
                .await
                .map_err(|e| keyed(e, key))?
            {
                Outcome::Granted(g) => return Ok(g),
                Outcome::Busy => return Err(wait_timeout(key, opts)),
                Outcome::Late(e) => {
                    if wait_until.is_some_and(|t| Instant::now() >= t) {
                        return Err(e);
                    }
                    tracing::debug!(key, "the grant arrived too late; trying again");
                }
                Outcome::Retry(e) => {
                    retries += 1;
                    if retries > 2 {
                        return Err(keyed(e, key));
                    }
                }
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: "etcd",
            fencing: Fencing::Strict,
            fairness: Fairness::Fifo,
            wakeup: Wakeup::Notification,
            expiry: Expiry::Session,
            session_timeout: Some(self.inner.session.ttl()),
            scope: Scope::Network,
            extend: Extend::Session,
            store_restart: "tokens are create revisions, persisted through Raft: they keep rising across restarts; \
                            leases survive a restart with their TTL renewed, so held locks stay held",
            store_failover: "a new leader keeps every key and revision (Raft) and extends leases; \
                             held locks stay held if the client's keep-alives reach the new leader in time",
        }
    }
}

fn keyed(e: Error, key: &str) -> Error {
    if e.key().is_some() {
        e
    } else {
        e.with_key(key)
    }
}
