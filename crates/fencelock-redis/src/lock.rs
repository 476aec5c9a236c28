//! `RedisLock`: connecting, and the `DistributedLock` implementation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::raw::{Grant, LateGrant, Validity, WaitBound};
#[cfg(doc)]
use fencelock_core::ErrorKind;
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness, Fencing,
    FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use tokio::time::Instant;

use crate::batcher::Batcher;
use crate::config::{RedisLockBuilder, Target, WaitReplicas};
use crate::conn::Conn;
use crate::error::{bounded, map_redis};
use crate::grant::{ttl_ms, RedisGrant};
use crate::keys::KeyNames;
use crate::scripts::{self, ACQUIRE, INSPECT, RAISE, RELEASE};
use crate::sentinel::SentinelConn;
use crate::subscriber::{Interest, Subscriber, SubscriberConfig};
use crate::unreplicated::Unreplicated;

/// A [`DistributedLock`] on Redis (standalone or Cluster).
///
/// One client holds one command connection (reconnecting), one shared
/// pub/sub connection for the wake-ups of every key it waits on (opened on
/// the first wait), and one renewal batcher. Clone it freely: clones share
/// all three.
#[derive(Clone)]
pub struct RedisLock {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) conn: Conn,
    pub(crate) prefix: String,
    pub(crate) response_timeout: Duration,
    max_recheck: Duration,
    /// How long a release keeps the free lock for the waiter it names.
    handoff_window: Duration,
    pub(crate) subscriber: Subscriber,
    pub(crate) batcher: Batcher,
    target: Target,
    wait_replicas: Option<WaitReplicas>,
}

/// What [`RedisLock::inspect`] reads about one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The current holder's owner id, when the lock is held.
    pub holder: Option<OwnerId>,
    /// The current holder's fencing token, when the lock is held.
    pub token: Option<FencingToken>,
    /// How long the current grant has left on the server (`None` when free,
    /// or when the key has no expiry).
    pub remaining: Option<Duration>,
    /// The highest token handed out for this key so far (the fence counter).
    pub last_token: Option<FencingToken>,
    /// How many `acquire` calls, of every client, are in the key's queue of
    /// waiters (entries that have not lapsed). Redlock's waiters do not queue.
    pub queued: usize,
    /// How many `acquire` calls of this client are waiting on the key right
    /// now.
    pub local_waiters: usize,
    /// The lock key's value when a client that is not fencelock holds it
    /// (a value not of the form fencelock writes).
    pub foreign: Option<String>,
}

enum Step {
    Granted {
        token: FencingToken,
        sent_at: Instant,
    },
    Busy {
        pttl: i64,
    },
}

/// What an acquire leaves behind when it is dropped or fails part-way: a
/// grant an attempt on the wire may have taken (`owner` is set around each
/// attempt), and its place in the key's queue of waiters (once `queued`).
/// Dropped with either, it undoes both with one release script call, in the
/// background; a queued waiter that leaves passes a wake-up on.
struct Pending {
    inner: Arc<Inner>,
    names: KeyNames,
    owner: Option<String>,
    /// The waiter id (empty for `try_acquire`, which never queues).
    waiter: String,
    queued: bool,
}

impl Pending {
    fn waiter(&self) -> Waiter<'_> {
        if self.waiter.is_empty() {
            return Waiter::None;
        }
        Waiter::Id {
            id: &self.waiter,
            queued: self.queued,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.owner.is_none() && !self.queued {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(&self.inner);
        let names = self.names.clone();
        let owner = self.owner.take().unwrap_or_default();
        let waiter = if self.queued {
            std::mem::take(&mut self.waiter)
        } else {
            String::new()
        };
        rt.spawn(async move {
            if let Err(e) = inner.release_script(&names, &owner, &waiter).await {
                tracing::debug!(error = %e, "cleanup of an abandoned acquire failed; the TTL frees the lock and the queue entry lapses");
            }
        });
    }
}

impl RedisLock {
    /// Connects to the Redis at `url` with default settings (see
    /// [`RedisLockBuilder`] for the URL forms).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad URL, [`ErrorKind::Connection`]
    /// when Redis cannot be reached within the connect timeout.
    pub async fn connect(url: &str) -> Result<Self> {
        RedisLockBuilder::from_url(url)?.build().await
    }

    /// A builder from a URL; shorthand for [`RedisLockBuilder::from_url`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad URL.
    pub fn builder(url: &str) -> Result<RedisLockBuilder> {
        RedisLockBuilder::from_url(url)
    }

    pub(crate) async fn from_builder(b: RedisLockBuilder) -> Result<Self> {
        let ct = b.connect_timeout;
        let rt = b.response_timeout;
        let tls = b.tls_certs()?;
        let (mut conn, clients) = match &b.target {
            Target::Single(url) => {
                let client = open(url, tls.as_ref())?;
                let manager = manager(&client, ct, rt).await?;
                (Conn::Single(manager), vec![client])
            }
            Target::Sentinel(spec) => {
                let (conn, clients) = SentinelConn::connect(spec, tls, ct, rt).await?;
                (Conn::Sentinel(conn), clients)
            }
            Target::Cluster(nodes) => {
                let clients = nodes
                    .iter()
                    .map(|n| open(n, tls.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
                let mut cluster = ClusterClient::builder(nodes.clone())
                    .connection_timeout(ct)
                    .response_timeout(rt)
                    .retries(3);
                if let Some(certs) = tls {
                    cluster = cluster.certs(certs);
                }
                let cluster = cluster
                    .build()
                    .map_err(|e| map_redis(e, "Redis Cluster configuration"))?;
                let seeds = clients
                    .iter()
                    .map(|c| c.get_connection_info().addr().to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let conn = connect_bounded(ct, &seeds, cluster.get_async_connection()).await?;
                (Conn::Cluster(conn), clients)
            }
        };
        for script in scripts::all() {
            bounded(rt, "SCRIPT LOAD", script.load_async(&mut conn)).await?;
        }
        let subscriber = Subscriber::start(SubscriberConfig {
            clients,
            connect_timeout: ct,
            response_timeout: rt,
        });
        let batcher = Batcher::start(conn.clone(), b.renew_batch_window, b.renew_batch_max, rt);
        Ok(RedisLock {
            inner: Arc::new(Inner {
                conn,
                prefix: b.prefix,
                response_timeout: rt,
                max_recheck: b.max_recheck,
                handoff_window: b.handoff_window,
                subscriber,
                batcher,
                target: b.target,
                wait_replicas: b.wait_replicas,
            }),
        })
    }

    /// Reads the state of the lock on `key`: holder, token, remaining TTL,
    /// the fence counter, the queued waiters of every client and this
    /// client's own waiters. One round trip.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`]; store errors.
    pub async fn inspect(&self, key: &str) -> Result<LockInfo> {
        validate_key(key)?;
        let names = self.names(key);
        let mut conn = self.inner.conn.clone();
        let mut inv = INSPECT.prepare_invoke();
        inv.key(&names.lock).key(&names.fence).key(&names.queue);
        let (value, pttl, fence, queued): (Option<String>, i64, Option<u64>, usize) = bounded(
            self.inner.response_timeout,
            "inspect",
            inv.invoke_async(&mut conn),
        )
        .await
        .map_err(|e| e.with_key(key))?;
        let (holder, token) = match value.as_deref().and_then(|v| v.split_once(':')) {
            Some((owner, token)) => (
                OwnerId::parse(owner),
                token.parse::<u64>().ok().map(FencingToken::new),
            ),
            None => (None, None),
        };
        let foreign = value.filter(|v| holder.is_none() && !v.starts_with("handoff:"));
        Ok(LockInfo {
            holder,
            token,
            remaining: u64::try_from(pttl).ok().map(Duration::from_millis),
            last_token: fence.map(FencingToken::new),
            queued,
            local_waiters: self.inner.subscriber.waiters(&names.channel),
            foreign,
        })
    }

    /// One attempt with a given owner id instead of a fresh one: when the
    /// key is already held by `owner` (an earlier attempt whose reply was
    /// lost), the grant is taken up again with its token and a fresh TTL.
    /// `try_acquire` and `acquire` already retry this way by themselves
    /// once; use this to recover a grant across your own retries. Do not
    /// hold two guards of one grant: dropping either releases it.
    ///
    /// # Errors
    ///
    /// As [`DistributedLock::try_acquire`].
    pub async fn try_acquire_as(
        &self,
        key: &str,
        owner: OwnerId,
        opts: &LockOptions,
    ) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        let names = self.names(key);
        let mut pending = self.pending(&names, false);
        pending.owner = Some(owner.simple());
        let step = self.attempt(key, &names, owner, Waiter::None, opts).await?;
        pending.owner = None;
        match step {
            Step::Granted { token, sent_at } => {
                Ok(Some(self.guard(key, names, owner, token, sent_at, opts)?))
            }
            Step::Busy { .. } => Ok(None),
        }
    }

    /// Every lock key under this client's prefix that starts with `prefix`
    /// and has a Redis key: a fence counter (it was ever granted), a value
    /// (held, by fencelock or another client) or a queue: a `SCAN` of one
    /// server.
    ///
    /// # Errors
    ///
    /// `Unsupported` on Redis Cluster (keys are spread over the shards);
    /// store errors.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        if self.inner.conn.is_cluster() {
            return Err(Error::unsupported(
                "listing locks on Redis Cluster is not implemented (it needs a SCAN of every shard)",
            ));
        }
        let pattern = crate::keys::scan_pattern(&self.inner.prefix);
        let mut conn = self.inner.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, batch): (u64, Vec<String>) = bounded(
                self.inner.response_timeout,
                "scan",
                scan.query_async(&mut conn),
            )
            .await?;
            out.extend(
                batch
                    .iter()
                    .filter_map(|k| crate::keys::key_of_redis(&self.inner.prefix, k))
                    .filter(|k| k.starts_with(prefix)),
            );
            if next == 0 || out.len() > 100_000 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn names(&self, key: &str) -> KeyNames {
        KeyNames::new(&self.inner.prefix, key)
    }

    /// The drop guard of one acquire; `waiting` gives it a waiter id.
    fn pending(&self, names: &KeyNames, waiting: bool) -> Pending {
        Pending {
            inner: Arc::clone(&self.inner),
            names: names.clone(),
            owner: None,
            waiter: if waiting {
                OwnerId::random().simple()
            } else {
                String::new()
            },
            queued: false,
        }
    }

    /// One acquire script call, retried once with the same owner on a
    /// connection error or timeout (the script recognises a grant whose
    /// reply was lost).
    async fn attempt(
        &self,
        key: &str,
        names: &KeyNames,
        owner: OwnerId,
        waiter: Waiter<'_>,
        opts: &LockOptions,
    ) -> Result<Step> {
        let owner = owner.simple();
        let ttl = ttl_ms(opts.ttl());
        let mut retried = false;
        loop {
            let sent_at = Instant::now();
            let reply = self
                .inner
                .run_acquire(names, &owner, ttl, waiter, self.inner.response_timeout)
                .await;
            return match reply {
                Ok((1, token)) => match u64::try_from(token) {
                    Ok(t) if t > 0 => Ok(Step::Granted {
                        token: FencingToken::new(t),
                        sent_at,
                    }),
                    _ => Err(Error::backend(format!(
                        "acquire: the fence counter {:?} holds {token}, not a positive token",
                        names.fence
                    ))
                    .with_key(key)),
                },
                Ok((0, pttl)) => Ok(Step::Busy { pttl }),
                Ok(other) => Err(Error::backend(format!(
                    "acquire: unexpected script reply {other:?}"
                ))
                .with_key(key)),
                Err(e) if e.is_retryable() && !retried && Unreplicated::of(&e).is_none() => {
                    tracing::debug!(key, error = %e, "acquire failed; retrying once with the same owner id");
                    retried = true;
                    continue;
                }
                Err(e) => Err(e.with_key(key)),
            };
        }
    }

    fn guard(
        &self,
        key: &str,
        names: KeyNames,
        owner: OwnerId,
        token: FencingToken,
        sent_at: Instant,
        opts: &LockOptions,
    ) -> Result<LockGuard, LateGrant> {
        let ops = Arc::new(RedisGrant {
            inner: Arc::clone(&self.inner),
            key: key.to_string(),
            names,
            owner: owner.simple(),
        });
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

    /// When a busy waiter re-checks without a wake-up: at the holder's
    /// remaining TTL, capped by the configured maximum.
    fn recheck_after(&self, pttl: i64) -> Duration {
        let cap = self.inner.max_recheck;
        match u64::try_from(pttl) {
            Ok(ms) => (Duration::from_millis(ms) + Duration::from_millis(1)).min(cap),
            // -1: no expiry (not ours to judge); -2: gone since the check.
            Err(_) if pttl == -2 => Duration::from_millis(1),
            Err(_) => cap,
        }
    }
}

impl Inner {
    /// One call of the acquire script (keys: lock, fence, queue; args:
    /// owner, TTL ms, the waiter), bounded by `limit`: `(1, token)` granted,
    /// `(0, pttl)` busy (and the waiter, if any, queued).
    ///
    /// With [`with_wait_replicas`](RedisLockBuilder::with_wait_replicas),
    /// the script and a `WAIT` go out as one pipeline on one connection; a
    /// grant that fewer replicas than asked acknowledged in time is
    /// released again and reported as an error (Redisson's
    /// `checkLockSyncedSlaves`).
    pub(crate) async fn run_acquire(
        &self,
        names: &KeyNames,
        owner: &str,
        ttl_ms: u64,
        waiter: Waiter<'_>,
        limit: Duration,
    ) -> Result<(i64, i64)> {
        let mut conn = self.conn.clone();
        let args = AcquireArgs {
            owner,
            ttl_ms,
            waiter,
            life_ms: crate::grant::ttl_ms(self.queue_entry_life()),
        };
        let Some(wait) = self.wait_replicas else {
            let mut inv = ACQUIRE.prepare_invoke();
            args.apply(names, &mut inv);
            return bounded(limit, "acquire", inv.invoke_async(&mut conn)).await;
        };
        let (reply, acked): ((i64, i64), i64) = bounded(
            limit + wait.timeout,
            "acquire + WAIT",
            acquire_and_wait(&mut conn, names, &args, wait),
        )
        .await?;
        let acked = usize::try_from(acked).unwrap_or(0);
        if reply.0 == 1 && acked < wait.replicas {
            if let Err(e) = self.release(names, owner).await {
                tracing::debug!(error = %e, "release of an unreplicated grant failed; the TTL frees it");
            }
            return Err(Unreplicated {
                acked,
                required: wait.replicas,
            }
            .error(wait.timeout));
        }
        Ok(reply)
    }

    /// Raises the fence counter `fence` to at least `floor` (Redlock: the
    /// nodes of a grant learn its token, so that any later majority, which
    /// shares a node with this one, hands out a higher one).
    pub(crate) async fn raise_fence(
        &self,
        fence: &str,
        floor: u64,
        limit: Duration,
    ) -> Result<u64> {
        let mut conn = self.conn.clone();
        let mut inv = RAISE.prepare_invoke();
        inv.key(fence).arg(floor);
        bounded(limit, "raise fence", inv.invoke_async(&mut conn)).await
    }

    /// Compare-and-delete by owner + PUBLISH of a wake-up.
    pub(crate) async fn release(&self, names: &KeyNames, owner: &str) -> Result<bool> {
        self.release_script(names, owner, "").await
    }

    /// The release script: compare-and-delete by `owner` (unless empty) and
    /// take `waiter` (unless empty) out of the queue; a wake-up goes out when
    /// the lock was deleted, or when a waiter left a free lock (it may have
    /// been the one woken). `true` when `owner`'s grant was deleted.
    pub(crate) async fn release_script(
        &self,
        names: &KeyNames,
        owner: &str,
        waiter: &str,
    ) -> Result<bool> {
        let mut conn = self.conn.clone();
        let mut inv = RELEASE.prepare_invoke();
        inv.key(&names.lock)
            .key(&names.queue)
            .key(&names.order)
            .arg(owner)
            .arg(&names.channel)
            .arg(waiter)
            .arg(u64::try_from(self.handoff_window.as_millis()).unwrap_or(u64::MAX));
        let n: i64 = bounded(
            self.response_timeout,
            "release",
            inv.invoke_async(&mut conn),
        )
        .await?;
        Ok(n == 1)
    }

    /// How long a queue entry lives unless its waiter tries again: a live
    /// waiter re-checks at least every `max_recheck`, plus a second for the
    /// attempt. An entry that lapses early only costs its waiter being
    /// named (it still wakes by `released` or its re-check); one that lasts
    /// long keeps a dead waiter counted and named.
    pub(crate) fn queue_entry_life(&self) -> Duration {
        self.max_recheck + Duration::from_secs(1)
    }
}

/// A reconnecting connection to one server, bounded by the connect timeout.
pub(crate) async fn manager(
    client: &redis::Client,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1));
    connect_bounded(
        connect_timeout,
        &client.get_connection_info().addr().to_string(),
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
}

/// A client for one node. `tls`: the root certificates of a private CA
/// (for a `rediss://` URL), else redis-rs's defaults.
pub(crate) fn open(url: &str, tls: Option<&redis::TlsCertificates>) -> Result<redis::Client> {
    let client = match tls {
        Some(certs) if url.to_ascii_lowercase().starts_with("rediss://") => {
            redis::Client::build_with_tls(url, certs.clone())
        }
        _ => redis::Client::open(url),
    };
    client.map_err(|e| {
        Error::invalid_config(format!(
            "{:?} is not a valid Redis URL",
            fencelock_core::raw::url::redact(url)
        ))
        .with_source(e)
    })
}

/// Connects within `limit`; errors name `endpoint` (`host:port`, or the
/// cluster's seed nodes).
pub(crate) async fn connect_bounded<T>(
    limit: Duration,
    endpoint: &str,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(crate::error::map_connect(e, endpoint)),
        Err(_) => Err(Error::connection(format!(
            "cannot connect to Redis at {endpoint}: no answer within {limit:?}"
        ))),
    }
}

#[async_trait]
impl DistributedLock for RedisLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        self.try_acquire_as(key, OwnerId::random(), opts).await
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let names = self.names(key);
        let bound = WaitBound::start(opts);
        let wait_until = bound.until();
        let mut owner = OwnerId::random();
        // A release wakes one queued waiter by its waiter id.
        let mut pending = self.pending(&names, true);
        let mut interest: Option<Interest> = None;
        let mut unreplicated = Unreplicated::patience(wait_until);
        loop {
            if let Some(i) = interest.as_mut() {
                i.mark_seen();
            }
            pending.owner = Some(owner.simple());
            let step = match self
                .attempt(key, &names, owner, pending.waiter(), opts)
                .await
            {
                Ok(step) => step,
                // Given back for want of replicas (they may be resyncing): ask again.
                Err(e) if Unreplicated::of(&e).is_some() => {
                    unreplicated.pause(e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            pending.owner = None;
            // The script queued us when busy, and took us out when granted.
            pending.queued = matches!(step, Step::Busy { .. });
            let pttl = match step {
                Step::Granted { token, sent_at } => {
                    match self.guard(key, names.clone(), owner, token, sent_at, opts) {
                        Ok(g) => return Ok(g),
                        // The reply came after the grant's deadline; core releases it in
                        // the background. Go on with a fresh owner id, so that release
                        // cannot delete a grant we take next.
                        Err(LateGrant { .. }) => {
                            owner = OwnerId::random();
                            -2
                        }
                    }
                }
                Step::Busy { pttl } => pttl,
            };
            if bound.passed() {
                return Err(bound.busy(key));
            }
            let Some(i) = interest.as_mut() else {
                // First time busy: subscribe to the key's wake-ups, then try again at
                // once (a release between the attempt and the subscription is not
                // missed that way).
                let mut i = self
                    .inner
                    .subscriber
                    .interest(&names.channel, Some(&pending.waiter));
                if !i
                    .wait_subscribed(bound.limit(self.inner.response_timeout))
                    .await
                {
                    tracing::debug!(
                        key,
                        "no pub/sub subscription yet; waiting falls back to timed re-checks"
                    );
                }
                interest = Some(i);
                continue;
            };
            tokio::select! {
                () = i.woken() => {}
                () = bound.sleep_until(Some(Instant::now() + self.recheck_after(pttl))) => {}
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        let sentinel = matches!(self.inner.target, Target::Sentinel(_));
        Capabilities::new(if sentinel { "redis-sentinel" } else { "redis" })
            .with_fencing(Fencing::BestEffort)
            .with_fairness(Fairness::Unfair)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Ttl)
            .with_scope(Scope::Network)
            .with_extend(Extend::PerGrant)
            .with_store_restart("held locks and fence counters survive only what Redis persisted: with appendonly yes and \
                appendfsync always both survive; with appendfsync everysec or RDB snapshots a restart can forget a \
                held lock (a second holder) and roll the counter back (a lower or repeated token)")
            .with_store_failover(if sentinel {
                "Sentinel promotes an asynchronous replica: grants and counter increments it had not received are \
                lost, so a second holder and a lower or repeated token are possible; wait_replicas=K (WAIT) narrows \
                this to the replicas that acknowledged, but renewals are not waited for and Sentinel may promote a \
                replica that did not acknowledge"
            } else {
                "replication is asynchronous: a failover to a replica can lose the newest grants and \
                counter increments, so a second holder and a lower or repeated token are possible"
            })
    }
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("target", &self.inner.target)
            .field("prefix", &self.inner.prefix)
            .field("response_timeout", &self.inner.response_timeout)
            .finish_non_exhaustive()
    }
}

/// Who is asking, for the acquire script's queue of waiters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Waiter<'a> {
    /// Will not wait (`try_acquire`, Redlock): never queued.
    None,
    /// Will wait under this id; `queued` once a busy answer queued it.
    Id { id: &'a str, queued: bool },
}

/// The arguments of one acquire script call.
struct AcquireArgs<'a> {
    owner: &'a str,
    ttl_ms: u64,
    waiter: Waiter<'a>,
    life_ms: u64,
}

impl AcquireArgs<'_> {
    fn apply(&self, names: &KeyNames, inv: &mut redis::ScriptInvocation<'_>) {
        let (id, queued) = match self.waiter {
            Waiter::None => ("", false),
            Waiter::Id { id, queued } => (id, queued),
        };
        inv.key(&names.lock)
            .key(&names.fence)
            .key(&names.queue)
            .key(&names.order)
            .arg(self.owner)
            .arg(self.ttl_ms)
            .arg(id)
            .arg(self.life_ms)
            .arg(if queued { "1" } else { "0" });
    }
}

/// The acquire script and `WAIT` as one pipeline, loading the script once
/// on `NOSCRIPT` (a failed-over or restarted primary).
async fn acquire_and_wait(
    conn: &mut Conn,
    names: &KeyNames,
    args: &AcquireArgs<'_>,
    wait: WaitReplicas,
) -> redis::RedisResult<((i64, i64), i64)> {
    let wait_ms = u64::try_from(wait.timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let pipe = || {
        let mut p = redis::pipe();
        let mut inv = ACQUIRE.prepare_invoke();
        args.apply(names, &mut inv);
        p.invoke_script(&inv);
        p.cmd("WAIT").arg(wait.replicas).arg(wait_ms);
        p
    };
    match pipe().query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            ACQUIRE.load_async(conn).await?;
            pipe().query_async(conn).await
        }
        other => other,
    }
}
