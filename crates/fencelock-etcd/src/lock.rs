//! `EtcdLock`: the `DistributedLock` trait on etcd, with the recipe of Go's
//! `concurrency.Mutex`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use fencelock_core::raw::{Grant, LateGrant, Validity, WaitBound};
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness, Fencing,
    FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use futures_util::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use crate::config::EtcdLockBuilder;
use crate::endpoints::Endpoints;
use crate::grant::{delete_if_owner, revoked, EtcdGrant};
use crate::keys::{contender_key, Layout};
use crate::session::{Lease, Session};
use crate::watch::{Seen, Watches};

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoints: Arc<Endpoints>,
    /// The one watch stream every waiter and held grant shares.
    watches: Arc<Watches>,
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
    /// The grant arrived too late: try again.
    Late(LateGrant),
    /// The session's lease turned out to be gone: try again on a new one.
    Retry(Error),
}

/// Cleans up a contender key when an acquire is dropped or gives up before a
/// grant: deletes the key (by owner) in the background.
///
/// The enqueue transaction runs in a task of its own (`inflight`), so an
/// acquire dropped while it is on the wire does not race it: the cleanup
/// waits for its answer and deletes after. Without that, the delete could
/// reach etcd first (another HTTP/2 stream, or another endpoint) and the put
/// landing after it would leave a key nobody holds on a lease that is kept
/// alive: the lock blocked until the client goes away.
struct Pending {
    endpoints: Arc<Endpoints>,
    etcd_key: String,
    owner: OwnerId,
    inflight: Option<JoinHandle<Result<Queued>>>,
    armed: bool,
}

impl Pending {
    /// Waits for the enqueue transaction's answer.
    async fn queued(&mut self) -> Result<Queued> {
        let Some(task) = self.inflight.as_mut() else {
            return Err(Error::backend("etcd enqueue awaited twice"));
        };
        let answer = task.await;
        self.inflight = None;
        answer.unwrap_or_else(|e| Err(Error::backend(format!("etcd enqueue task failed: {e}"))))
    }

    /// Deletes the key now (used on the ordinary give-up paths). Stays armed
    /// until etcd answered, so an acquire dropped meanwhile still cleans up.
    async fn cancel(mut self) -> Result<()> {
        let done = delete_if_owner(&self.endpoints, &self.etcd_key, &self.owner.simple(), None)
            .await
            .map(|_| ());
        self.armed = done.is_err();
        done
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
        let inflight = self.inflight.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Some(task) = inflight {
                    let _ = task.await;
                }
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
        let probe = Arc::clone(&endpoints);
        tokio::spawn(async move { crate::known_issues::warn_if_affected(&probe).await });
        Ok(EtcdLock {
            inner: Arc::new(Inner {
                watches: Arc::new(Watches::new(Arc::clone(&endpoints))),
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

    /// The version of the etcd member that answers (its Status reply), e.g.
    /// `3.4.23`; see [`stale_leader_revokes_leases`](crate::stale_leader_revokes_leases).
    ///
    /// # Errors
    ///
    /// Store errors (`Connection`, `Timeout`, `Backend`).
    pub async fn server_version(&self) -> Result<String> {
        self.inner.endpoints.server_version().await
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

    /// Puts our contender key if absent (else reads it), and reads our place
    /// in the queue, in one transaction (Go's `concurrency.Mutex` does the
    /// same put-if-absent and holder read in one txn). A leftover key of ours
    /// from an earlier grant of this client (a failed release or cleanup) is
    /// deleted first: reusing it would reuse its fencing token.
    ///
    /// After a successful put our key is the newest contender, so the two
    /// newest contenders (sorted by create revision, descending) are ours and
    /// our predecessor: no predecessor means we hold the lock, and a waiter
    /// knows whom to watch without another read.
    async fn enqueue(
        &self,
        contenders: &str,
        etcd_key: &str,
        owner: &str,
        lease: i64,
    ) -> Result<Queued> {
        for _ in 0..3 {
            let r = self
                .inner
                .endpoints
                .call("txn", |mut c| {
                    let newest = GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Create, SortOrder::Descend)
                        .with_limit(2)
                        .with_keys_only();
                    let first = GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Create, SortOrder::Ascend)
                        .with_limit(1)
                        .with_keys_only();
                    let txn = Txn::new()
                        .when([Compare::create_revision(etcd_key, CompareOp::Equal, 0)])
                        .and_then([
                            TxnOp::put(etcd_key, owner, Some(PutOptions::new().with_lease(lease))),
                            TxnOp::get(contenders, Some(newest)),
                        ])
                        .or_else([
                            TxnOp::get(etcd_key, None),
                            TxnOp::get(contenders, Some(first)),
                        ]);
                    async move { c.txn(txn).await }
                })
                .await?;
            let rev = r
                .header()
                .map(|h| h.revision())
                .ok_or_else(|| Error::backend("etcd txn answered without a header"))?;
            let ops = r.op_responses();
            let Some(TxnOpResponse::Get(queue)) = ops.get(1) else {
                return Err(Error::backend("etcd txn answered without the queue read"));
            };
            if r.succeeded() {
                // The put created our key at `rev`, the txn's revision.
                let mine = rev;
                let ours_first = queue.kvs().first().is_some_and(|kv| {
                    kv.key() == etcd_key.as_bytes() && kv.create_revision() == mine
                });
                let place = if ours_first {
                    match queue.kvs().get(1) {
                        None => Place::Holder,
                        Some(kv) => Place::Behind(Some((
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            kv.create_revision(),
                        ))),
                    }
                } else {
                    Place::Behind(None) // not expected; the waiter reads
                };
                return Ok(Queued { mine, rev, place });
            }
            let kv = match ops.first() {
                Some(TxnOpResponse::Get(g)) => g.kvs().first().cloned(),
                _ => None,
            };
            let Some(kv) = kv else {
                continue; // deleted in between: put again
            };
            if kv.value() != owner.as_bytes() || kv.lease() != lease {
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
            // Our own put, answered before (a retried txn): the key exists,
            // so our lease did at `rev`.
            let mine = kv.create_revision();
            let holder = queue.kvs().first().map(|h| h.create_revision());
            let place = if holder.is_none_or(|h| h == mine) {
                Place::Holder
            } else {
                Place::Behind(None)
            };
            return Ok(Queued { mine, rev, place });
        }
        Err(Error::backend(
            "the contender key kept changing under this client",
        ))
    }

    /// After a wake-up, in one read-only transaction: the contender created
    /// just before ours (Go's `waitDeletes` read), and our own key (the
    /// etcd#11456 check: a waiter whose key or lease is gone must not be
    /// granted). `None` when our key is not ours any more.
    async fn recheck(
        &self,
        contenders: &str,
        etcd_key: &str,
        mine: i64,
        lease: &Lease,
    ) -> Result<Option<(Option<(String, i64)>, i64)>> {
        let r = self
            .inner
            .endpoints
            .call("txn", |mut c| {
                let pred = GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Descend)
                    .with_max_create_revision(mine - 1)
                    .with_limit(1)
                    .with_keys_only();
                let txn = Txn::new().and_then([
                    TxnOp::get(contenders, Some(pred)),
                    TxnOp::get(etcd_key, None),
                ]);
                async move { c.txn(txn).await }
            })
            .await?;
        let rev = r
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::backend("etcd txn answered without a header"))?;
        let reads = r.op_responses();
        let (Some(TxnOpResponse::Get(pred)), Some(TxnOpResponse::Get(own))) =
            (reads.first(), reads.get(1))
        else {
            return Err(Error::backend("etcd txn answered without its reads"));
        };
        let ours = own
            .kvs()
            .first()
            .is_some_and(|kv| kv.create_revision() == mine && kv.lease() == lease.id);
        if !ours {
            return Ok(None);
        }
        let pred = pred.kvs().first().map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.create_revision(),
            )
        });
        Ok(Some((pred, rev)))
    }

    /// One acquisition: queue, wait for the predecessors (unless `wait_until`
    /// is `None` meaning "do not wait"), grant.
    ///
    /// Round trips: an uncontended grant is the one enqueue transaction. A
    /// waiter adds one read-only transaction per wake-up (predecessor and
    /// own key together); its watches ride the client's shared watch stream.
    async fn attempt(
        &self,
        key: &str,
        opts: &LockOptions,
        wait: Option<WaitBound>,
    ) -> Result<Outcome> {
        let contenders = self.inner.layout.contenders(key);
        let lease = self.inner.session.lease().await?;
        let owner = OwnerId::random();
        let owner_s = owner.simple();
        let etcd_key = contender_key(&contenders, lease.id, &owner_s);
        let inflight = tokio::spawn({
            let me = self.clone();
            let (contenders, etcd_key, owner_s, lease_id) = (
                contenders.clone(),
                etcd_key.clone(),
                owner_s.clone(),
                lease.id,
            );
            async move { me.enqueue(&contenders, &etcd_key, &owner_s, lease_id).await }
        });
        let mut pending = Pending {
            endpoints: Arc::clone(&self.inner.endpoints),
            etcd_key: etcd_key.clone(),
            owner,
            inflight: Some(inflight),
            armed: true,
        };
        let Queued {
            mine,
            mut rev,
            place,
        } = match pending.queued().await {
            Ok(r) => r,
            Err(e) if e.message().contains("lease not found") => {
                // Revoked or expired before the keep-alive task noticed.
                pending.armed = false;
                lease.kill();
                return Ok(Outcome::Retry(e));
            }
            Err(e) => return Err(e),
        };
        // An immediate grant needs no further check: the put (or, on a
        // retried txn, the read of our key) in that very transaction proves
        // our lease was alive at `rev`, when we were first in line, and the
        // lease cannot end before the session deadline `from_grant` checks.
        // The etcd#11456 check is for waiters (`recheck`).
        if let Place::Behind(known) = place {
            let Some(bound) = wait else {
                pending.cancel().await?;
                return Ok(Outcome::Busy);
            };
            let mut lease_rx = lease.deadline.clone();
            let lost = || {
                Error::lost(
                    "the client's etcd lease expired while waiting for the lock; nothing was granted",
                )
                .with_key(key)
                .with_retryable(true)
            };
            // `pred` was seen present at revision `rev`.
            let mut pred = known;
            if pred.is_none() {
                match self.recheck(&contenders, &etcd_key, mine, &lease).await? {
                    Some((p, r)) => (pred, rev) = (p, r),
                    None => {
                        let _ = pending.cancel().await;
                        return Err(lost());
                    }
                }
            }
            while let Some((pred_key, pred_created)) = pred.take() {
                if bound.passed() {
                    pending.cancel().await?;
                    return Err(bound.busy(key));
                }
                // A live watch: etcd delivers it at once, where a watch from
                // an older revision waits for its 100 ms catch-up; a delete
                // between our read and the watch's start is read over.
                let mut gone = self
                    .inner
                    .watches
                    .subscribe_live(&pred_key, rev, pred_created);
                tokio::select! {
                    seen = gone.wait() => if seen == Seen::Unsure {
                        // etcd dropped the watch: read (below), but never
                        // in a tight loop.
                        sleep(Duration::from_millis(50).min(self.inner.poll)).await;
                    },
                    () = sleep(self.inner.poll) => {}
                    () = bound.sleep_until(None) => {
                        pending.cancel().await?;
                        return Err(bound.busy(key));
                    }
                    () = async { let _ = lease_rx.wait_for(|d| d.is_none()).await.is_err(); } => {}
                }
                drop(gone);
                if !lease.alive() {
                    let _ = pending.cancel().await;
                    return Err(lost());
                }
                match self.recheck(&contenders, &etcd_key, mine, &lease).await? {
                    Some((p, r)) => (pred, rev) = (p, r),
                    None => {
                        let _ = pending.cancel().await;
                        return Err(lost());
                    }
                }
            }
            if !lease.alive() {
                let _ = pending.cancel().await;
                return Err(lost());
            }
        }
        pending.armed = false;
        let ops = Arc::new(EtcdGrant {
            endpoints: Arc::clone(&self.inner.endpoints),
            etcd_key: etcd_key.clone(),
            owner,
            revision: mine,
            lease: Arc::clone(&lease),
        });
        // Our key existed at `rev`: watch its delete from the next revision.
        let revoked = revoked(
            Arc::clone(&self.inner.endpoints),
            Arc::clone(&self.inner.watches),
            etcd_key,
            mine,
            rev + 1,
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
            Err(late) => Ok(Outcome::Late(late)),
        }
    }
}

/// Where the enqueue transaction put us.
enum Place {
    /// First in line: granted.
    Holder,
    /// Behind someone: the predecessor, when the transaction could tell.
    Behind(Option<(String, i64)>),
}

/// What the enqueue transaction found.
struct Queued {
    /// Our key's create revision (the fencing token).
    mine: i64,
    /// The transaction's revision (what it read is as of then).
    rev: i64,
    place: Place,
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
                Outcome::Late(late) => return Err(late.into()),
                Outcome::Retry(_) => {}
            }
        }
        Err(Error::connection("the etcd session lease kept disappearing").with_key(key))
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let bound = WaitBound::start(opts);
        let mut retries = 0;
        loop {
            match self
                .attempt(key, opts, Some(bound))
                .await
                .map_err(|e| keyed(e, key))?
            {
                Outcome::Granted(g) => return Ok(g),
                Outcome::Busy => return Err(bound.busy(key)),
                Outcome::Late(late) => {
                    if bound.passed() {
                        return Err(late.into());
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
        Capabilities::new("etcd")
            .with_fencing(Fencing::Strict)
            .with_fairness(Fairness::Fifo)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Session)
            .with_scope(Scope::Network)
            .with_extend(Extend::Session)
            .with_store_restart("tokens are create revisions, persisted through Raft: they keep rising across restarts; \
                            leases survive a restart with their TTL renewed, so held locks stay held")
            .with_store_failover("a new leader keeps every key and revision (Raft) and extends leases; \
                             held locks stay held if the client's keep-alives reach the new leader in time. \
                             etcd before 3.4.31 / 3.5.13 (etcd#15247): a leader stalled past the lease TTL may \
                             revoke live leases when it resumes, and a second holder can be granted a few ms \
                             before the first learns (seen once here: 6.2 ms; tokens still order them)")
            .with_session_timeout(self.inner.session.ttl())
    }
}

fn keyed(e: Error, key: &str) -> Error {
    if e.key().is_some() {
        e
    } else {
        e.with_key(key)
    }
}
