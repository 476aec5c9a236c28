//! `RedisLock`: the `DistributedLock` on one server, a Cluster or a
//! Sentinel-followed primary: one attempt, and the acquire loop that waits
//! for pub/sub wake-ups.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use fencelock_core::raw::{LateGrant, WaitBound};
#[cfg(doc)]
use fencelock_core::ErrorKind;
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness, Fencing,
    FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use tokio::time::Instant;

use crate::client::{Client, Waiter};
use crate::config::{RedisLockBuilder, Target};
use crate::grant::{ttl_guard, RedisGrant};
use crate::keys::KeyNames;
use crate::pending::Pending;
use crate::scripts::ttl_ms;
use crate::subscriber::Interest;
use crate::unreplicated::Unreplicated;

/// A [`DistributedLock`] on Redis (standalone or Cluster).
///
/// One client holds one command connection (reconnecting), one shared
/// pub/sub connection for the wake-ups of every key it waits on (opened on
/// the first wait), and one renewal batcher. Clone it freely: clones share
/// all three.
#[derive(Clone)]
pub struct RedisLock {
    pub(crate) inner: Arc<Client>,
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
        Ok(RedisLock {
            inner: Arc::new(Client::connect(b).await?),
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
        let mut pending = Pending::new(&self.inner, &names, false);
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

    fn names(&self, key: &str) -> KeyNames {
        KeyNames::new(&self.inner.prefix, key)
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
        ttl_guard(key, owner, token, sent_at, ops, opts)
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
        let mut pending = Pending::new(&self.inner, &names, true);
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
                    .interest(&names.channel, Some(pending.waiter_id()));
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
                () = bound.sleep_until(Some(Instant::now() + self.inner.recheck_after(pttl))) => {}
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

impl RedisLockBuilder {
    /// Connects, loads the scripts, and starts the background tasks (the
    /// shared pub/sub subscriber connects lazily, on the first waiter).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad setting;
    /// [`ErrorKind::Connection`] (or `Timeout`) when Redis cannot be
    /// reached within the connect timeout.
    pub async fn build(self) -> Result<RedisLock> {
        self.validate()?;
        // Boxed: callers' futures stay small and shallow (connecting nests
        // several layers; a deep future type can overflow rustc's layout
        // query depth in a large async main).
        Box::pin(RedisLock::from_builder(self)).await
    }
}
