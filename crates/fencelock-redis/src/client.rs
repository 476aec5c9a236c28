//! The client layer under both lock types: one command connection, its
//! pub/sub subscriber and renewal batcher, and the script calls on them
//! (acquire, release, the fence hand-off). [`RedisLock`](crate::RedisLock)
//! runs one; Redlock runs one per node.

use std::time::Duration;

use fencelock_core::Result;

use crate::batcher::Batcher;
use crate::config::{RedisLockBuilder, Target, WaitReplicas};
use crate::conn::Conn;
use crate::error::bounded;
use crate::keys::KeyNames;
use crate::scripts::{self, ACQUIRE, RAISE, RELEASE};
use crate::subscriber::{Subscriber, SubscriberConfig};
use crate::unreplicated::Unreplicated;

/// One connected client.
pub(crate) struct Client {
    pub(crate) conn: Conn,
    pub(crate) prefix: String,
    pub(crate) response_timeout: Duration,
    max_recheck: Duration,
    /// How long a release keeps the free lock for the waiter it names.
    handoff_window: Duration,
    pub(crate) subscriber: Subscriber,
    pub(crate) batcher: Batcher,
    pub(crate) target: Target,
    wait_replicas: Option<WaitReplicas>,
}

impl Client {
    /// Connects to the builder's target, loads the scripts, and starts the
    /// renewal batcher and the (lazily connecting) pub/sub subscriber.
    pub(crate) async fn connect(b: RedisLockBuilder) -> Result<Client> {
        let ct = b.connect_timeout;
        let rt = b.response_timeout;
        let (mut conn, clients) = Conn::open(&b.target, b.tls_certs()?, ct, rt).await?;
        let at = conn.endpoint();
        for script in scripts::all() {
            bounded(&at, rt, "SCRIPT LOAD", script.load_async(&mut conn)).await?;
        }
        let subscriber = Subscriber::start(SubscriberConfig {
            clients,
            connect_timeout: ct,
            response_timeout: rt,
        });
        let batcher = Batcher::start(conn.clone(), b.renew_batch_window, b.renew_batch_max, rt);
        Ok(Client {
            conn,
            prefix: b.prefix,
            response_timeout: rt,
            max_recheck: b.max_recheck,
            handoff_window: b.handoff_window,
            subscriber,
            batcher,
            target: b.target,
            wait_replicas: b.wait_replicas,
        })
    }

    /// Who answers this client's calls, for error messages.
    pub(crate) fn endpoint(&self) -> String {
        self.conn.endpoint()
    }

    /// When a busy waiter re-checks without a wake-up: at the holder's
    /// remaining TTL, capped by the configured maximum.
    pub(crate) fn recheck_after(&self, pttl: i64) -> Duration {
        let cap = self.max_recheck;
        match u64::try_from(pttl) {
            Ok(ms) => (Duration::from_millis(ms) + Duration::from_millis(1)).min(cap),
            // -1: no expiry (not ours to judge); -2: gone since the check.
            Err(_) if pttl == -2 => Duration::from_millis(1),
            Err(_) => cap,
        }
    }

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
            life_ms: scripts::ttl_ms(self.queue_entry_life()),
        };
        let at = self.endpoint();
        let Some(wait) = self.wait_replicas else {
            let mut inv = ACQUIRE.prepare_invoke();
            args.apply(names, &mut inv);
            return bounded(&at, limit, "acquire", inv.invoke_async(&mut conn)).await;
        };
        let (reply, acked): ((i64, i64), i64) = bounded(
            &at,
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
        bounded(
            &self.endpoint(),
            limit,
            "raise fence",
            inv.invoke_async(&mut conn),
        )
        .await
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
            &self.endpoint(),
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
