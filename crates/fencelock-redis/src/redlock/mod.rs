//! Redlock: one lock over N independent Redis servers, granted by a
//! majority.
//!
//! Every node runs the same scripts as a single server ([`RedisLock`]'s
//! `acquire.lua`, `renew.lua`, `release.lua`) plus `raise.lua` for the
//! token hand-off; each node is a single-server [`RedisLock`] underneath
//! (connection, pub/sub subscriber, renewal batcher).

mod config;
mod grant;
mod node;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::raw::{Grant, LateGrant, Validity, WaitBound};
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, ErrorKind, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use futures_util::future::{join_all, select_all};
use rand::Rng;
use tokio::time::{sleep, Instant};

pub use config::{RedlockLockBuilder, DEFAULT_NODE_TIMEOUT, DEFAULT_RETRY_JITTER};

use crate::grant::ttl_ms;
use crate::keys::KeyNames;
use crate::lock::Waiter;
use crate::subscriber::Interest;
use grant::{RedlockGrant, Tally};
use node::Node;

#[cfg(doc)]
use crate::RedisLock;

/// A [`DistributedLock`] over N independent Redis servers (the Redlock
/// algorithm): a grant needs the lock key on a majority (N/2+1) of the
/// nodes, taken within the validity window.
///
/// - **Acquire**: the acquire script goes to every node at once, each
///   request bounded by the node timeout (far below the TTL). The grant
///   stands when a majority said yes and time is left:
///   `TTL − elapsed − drift > 0`; the guard's deadline is
///   `sent_at + TTL − drift`, `sent_at` taken before the first request.
///   Otherwise every node is asked to give the key back, including the
///   ones that did not answer.
/// - **Renew** and **release** go to every node; a renewal counts when a
///   majority renewed.
/// - **Tokens**: each node keeps its own `INCR` counter per key. The
///   guard's token is the highest counter among the nodes of the grant,
///   written back to those nodes (`raise.lua`), so that the next majority,
///   which shares a node with this one, goes higher. That makes tokens
///   increase as long as the nodes keep their data; a node restarted
///   empty, or a partial write-back, can break it. Declared
///   [`Fencing::BestEffort`]: an ordering hint, not a strict fence.
/// - **Waiting**: pub/sub on every node (the release publishes on each);
///   after a split vote (nobody got a majority) a contender gives its
///   minority back quietly and retries after a random pause.
///
/// Clone it freely: clones share the node connections.
#[derive(Clone)]
pub struct RedlockLock {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) nodes: Vec<Arc<Node>>,
    pub(crate) quorum: usize,
    prefix: String,
    node_timeout: Duration,
    budget: Duration,
    max_recheck: Duration,
    retry_jitter: Duration,
}

/// When a background give-back asks the nodes (again).
const GIVE_BACK_RETRIES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(500),
    Duration::from_secs(2),
];

enum Step {
    Granted {
        token: FencingToken,
        sent_at: Instant,
    },
    /// No grant. `pttl`: the shortest remaining TTL seen on a busy node;
    /// `partial`: whether this attempt had (and gave back) some nodes.
    Busy {
        pttl: i64,
        partial: bool,
        split: bool,
    },
}

impl Shared {
    /// The bound on one node request for a grant with `ttl`.
    fn limit(&self, ttl: Duration) -> Duration {
        self.node_timeout
            .min(ttl / 10)
            .max(Duration::from_millis(1))
    }

    /// Compare-and-delete (with a wake-up) on every node at once.
    pub(crate) async fn release_all(&self, names: &KeyNames, owner: &str) -> Vec<Result<bool>> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.release_on(&all, names, owner).await
    }

    /// Compare-and-delete on the nodes `which`, in that order.
    pub(crate) async fn release_on(
        &self,
        which: &[usize],
        names: &KeyNames,
        owner: &str,
    ) -> Vec<Result<bool>> {
        join_all(which.iter().map(|&i| async move {
            let lock = self.nodes[i].get()?;
            lock.inner.release(names, owner).await
        }))
        .await
    }

    fn release_in_background(self: &Arc<Self>, names: KeyNames, owner: String, nodes: Vec<usize>) {
        if nodes.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::clone(self);
        rt.spawn(async move {
            // A request that timed out may still run on its node later (it
            // sat in a socket buffer of a stalled server): ask again a little
            // later too. The owner id is this attempt's alone, so a late
            // compare-and-delete never hits a later grant.
            for delay in GIVE_BACK_RETRIES {
                sleep(delay).await;
                join_all(nodes.iter().map(|&i| {
                    let (shared, names, owner) = (&shared, &names, &owner);
                    async move {
                        if let Some(lock) = shared.nodes[i].connected() {
                            if let Err(e) = lock.inner.release(names, owner).await {
                                tracing::debug!(node = i, error = %e, "Redlock give-back failed; the TTL frees it");
                            }
                        }
                    }
                }))
                .await;
            }
        });
    }

    fn recheck_after(&self, pttl: i64) -> Duration {
        let cap = self.max_recheck;
        match u64::try_from(pttl) {
            Ok(ms) => (Duration::from_millis(ms) + Duration::from_millis(1)).min(cap),
            Err(_) if pttl == -2 => Duration::from_millis(1),
            Err(_) => cap,
        }
    }

    fn jitter(&self, from: u32, to: u32) -> Duration {
        let max = u64::try_from(self.retry_jitter.as_micros()).unwrap_or(u64::MAX);
        let mut rng = rand::thread_rng();
        Duration::from_micros(rng.gen_range(max * u64::from(from)..=max * u64::from(to)))
            .max(Duration::from_micros(200))
    }
}

/// Gives back whatever an attempt may have taken when the acquire future
/// is dropped (or fails) before the grant reached a guard.
struct Cleanup {
    shared: Arc<Shared>,
    names: KeyNames,
    owner: String,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let all = (0..self.shared.nodes.len()).collect();
        self.shared
            .release_in_background(self.names.clone(), std::mem::take(&mut self.owner), all);
    }
}

impl RedlockLock {
    /// Connects to the nodes a `redlock://h1:p1,h2:p2,…` URL names, with
    /// default settings (see [`RedlockLockBuilder`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad URL; [`ErrorKind::Connection`]
    /// when fewer than a majority of the nodes can be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        RedlockLockBuilder::from_url(url)?.build().await
    }

    /// A builder from a URL; shorthand for [`RedlockLockBuilder::from_url`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad URL.
    pub fn builder(url: &str) -> Result<RedlockLockBuilder> {
        RedlockLockBuilder::from_url(url)
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.shared.nodes.len()
    }

    /// How many nodes a grant needs: N/2 + 1.
    pub fn quorum(&self) -> usize {
        self.shared.quorum
    }

    pub(crate) async fn from_builder(b: RedlockLockBuilder) -> Result<Self> {
        let n = b.nodes.len();
        let quorum = n / 2 + 1;
        let nodes: Vec<Arc<Node>> = (0..n).map(|i| Node::new(i, b.node(i))).collect();
        let results = join_all(nodes.iter().map(|node| node.connect())).await;
        let up = results.iter().filter(|r| r.is_ok()).count();
        if up < quorum {
            let first = results.into_iter().find_map(std::result::Result::err);
            let mut e = Error::connection(format!(
                "only {up} of {n} Redlock nodes could be reached; a majority of {quorum} is needed"
            ));
            if let Some(first) = first {
                e = e.with_source(first);
            }
            return Err(e);
        }
        Ok(RedlockLock {
            shared: Arc::new(Shared {
                nodes,
                quorum,
                prefix: b.prefix,
                node_timeout: b.node_timeout,
                budget: b.budget,
                max_recheck: b.max_recheck,
                retry_jitter: b.retry_jitter,
            }),
        })
    }

    fn names(&self, key: &str) -> KeyNames {
        KeyNames::new(&self.shared.prefix, key)
    }

    fn cleanup(&self, names: &KeyNames, owner: &str) -> Cleanup {
        Cleanup {
            shared: Arc::clone(&self.shared),
            names: names.clone(),
            owner: owner.to_string(),
            armed: true,
        }
    }

    /// One Redlock round: the acquire script on every node at once.
    async fn attempt(
        &self,
        key: &str,
        names: &KeyNames,
        owner: &str,
        opts: &LockOptions,
    ) -> Result<Step> {
        let shared = &self.shared;
        let ttl = opts.ttl();
        let ms = ttl_ms(ttl);
        let limit = shared.limit(ttl);
        let sent_at = Instant::now();
        let replies = join_all(shared.nodes.iter().map(|node| async move {
            let lock = node.get()?;
            lock.inner
                .run_acquire(names, owner, ms, Waiter::None, limit)
                .await
        }))
        .await;
        let elapsed = sent_at.elapsed();
        let mut granted: Vec<(usize, u64)> = Vec::new();
        let mut unanswered: Vec<usize> = Vec::new();
        let mut busy = Tally::default();
        let mut pttl: Option<i64> = None;
        for (i, reply) in replies.into_iter().enumerate() {
            match reply {
                Ok((1, token)) => match u64::try_from(token) {
                    Ok(t) if t > 0 => granted.push((i, t)),
                    _ => {
                        unanswered.push(i);
                        busy.errors.push(Error::backend(format!(
                            "acquire: node {i}'s fence counter {:?} holds {token}",
                            names.fence
                        )));
                    }
                },
                Ok((0, p)) => {
                    busy.no += 1;
                    pttl = Some(match pttl {
                        Some(q) if q >= 0 && (p < 0 || q < p) => q,
                        _ => p,
                    });
                }
                Ok(other) => {
                    unanswered.push(i);
                    busy.errors.push(Error::backend(format!(
                        "acquire: unexpected script reply {other:?} from node {i}"
                    )));
                }
                Err(e) => {
                    unanswered.push(i);
                    busy.errors.push(e);
                }
            }
        }
        busy.yes = granted.len();
        let valid = ttl > elapsed + opts.drift();
        if granted.len() >= shared.quorum && valid {
            let top = granted.iter().map(|g| g.1).max().unwrap_or(1);
            let behind: Vec<usize> = granted.iter().filter(|g| g.1 < top).map(|g| g.0).collect();
            if !behind.is_empty() {
                let raised = join_all(behind.iter().map(|&i| async move {
                    let lock = shared.nodes[i].get()?;
                    lock.inner.raise_fence(&names.fence, top, limit).await
                }))
                .await;
                for e in raised.into_iter().filter_map(std::result::Result::err) {
                    tracing::debug!(key, error = %e, "Redlock: writing the token back failed; later tokens may not rise above it");
                }
            }
            return Ok(Step::Granted {
                token: FencingToken::new(top),
                sent_at,
            });
        }
        // No grant. Nodes that did not answer may still have taken the key:
        // ask them in the background. The ones that said yes are given
        // back now; quietly (no wake-up) unless this was a real majority
        // that came too late, so that a minority given back does not wake
        // every waiter into another round.
        let quiet = if granted.len() >= shared.quorum {
            names.clone()
        } else {
            KeyNames {
                channel: format!("{}:giveback", names.channel),
                ..names.clone()
            }
        };
        join_all(granted.iter().map(|&(i, _)| {
            let quiet = &quiet;
            async move {
                if let Some(lock) = shared.nodes[i].connected() {
                    if let Err(e) = lock.inner.release(quiet, owner).await {
                        tracing::debug!(node = i, error = %e, "Redlock give-back failed; the TTL frees it");
                    }
                }
            }
        }))
        .await;
        self.shared
            .release_in_background(names.clone(), owner.to_string(), unanswered);
        if granted.len() + busy.no < shared.quorum {
            return Err(busy
                .no_quorum("acquire", shared.nodes.len(), shared.quorum)
                .with_key(key));
        }
        Ok(Step::Busy {
            pttl: if valid { pttl.unwrap_or(-2) } else { -2 },
            partial: !granted.is_empty(),
            split: busy.no < shared.quorum,
        })
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
        let ops = Arc::new(RedlockGrant {
            shared: Arc::clone(&self.shared),
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

    /// Registers a waiter on the key's wake channel on every connected
    /// node and waits (at most `limit`) for the subscriptions.
    async fn interests(&self, names: &KeyNames, limit: Duration) -> Vec<Interest> {
        let mut interests: Vec<Interest> = self
            .shared
            .nodes
            .iter()
            .filter_map(|n| n.connected())
            .map(|lock| lock.inner.subscriber.interest(&names.channel, None))
            .collect();
        join_all(interests.iter_mut().map(|i| i.wait_subscribed(limit))).await;
        interests
    }
}

/// Completes on the next wake-up on any node.
async fn woken_any(interests: &mut [Interest]) {
    if interests.is_empty() {
        return std::future::pending().await;
    }
    select_all(interests.iter_mut().map(|i| Box::pin(i.woken()))).await;
}

#[async_trait]
impl DistributedLock for RedlockLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        let names = self.names(key);
        let owner = OwnerId::random();
        let simple = owner.simple();
        let mut cleanup = self.cleanup(&names, &simple);
        let step = self.attempt(key, &names, &simple, opts).await;
        cleanup.armed = false;
        match step? {
            Step::Granted { token, sent_at } => {
                Ok(Some(self.guard(key, names, owner, token, sent_at, opts)?))
            }
            Step::Busy { .. } => Ok(None),
        }
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let names = self.names(key);
        let bound = WaitBound::start(opts);
        let mut interests: Option<Vec<Interest>> = None;
        let mut failing_since: Option<Instant> = None;
        loop {
            // A fresh owner id per round: a late give-back of an earlier round
            // can then never delete this round's grant.
            let owner = OwnerId::random();
            if let Some(is) = interests.as_mut() {
                is.iter_mut().for_each(Interest::mark_seen);
            }
            let simple = owner.simple();
            let mut cleanup = self.cleanup(&names, &simple);
            let step = self.attempt(key, &names, &simple, opts).await;
            cleanup.armed = false;
            let now = Instant::now();
            let (pttl, pause) = match step {
                Ok(Step::Granted { token, sent_at }) => {
                    match self.guard(key, names.clone(), owner, token, sent_at, opts) {
                        Ok(g) => return Ok(g),
                        // Too late to count; core gives it back. Try again.
                        Err(LateGrant { .. }) => (-2, Some(self.shared.jitter(0, 1))),
                    }
                }
                Ok(Step::Busy {
                    pttl,
                    partial,
                    split,
                }) => {
                    failing_since = None;
                    let pause = match (partial, split) {
                        (false, _) => None,
                        // Nobody may hold a majority: retry soon, at a random time.
                        (true, true) => Some(self.shared.jitter(0, 1)),
                        // Somebody probably holds it: look again a little later.
                        (true, false) => Some(self.shared.jitter(1, 4)),
                    };
                    (pttl, pause)
                }
                Err(e) => {
                    // Too few nodes answered. Try again for a while (a stalled
                    // machine, a node coming back), within the wait bound.
                    let since = *failing_since.get_or_insert(now);
                    let retryable = matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout);
                    if !retryable
                        || now.duration_since(since) >= self.shared.budget
                        || bound.passed()
                    {
                        return Err(e);
                    }
                    sleep(bound.limit(self.shared.jitter(2, 4))).await;
                    continue;
                }
            };
            if bound.passed() {
                return Err(bound.busy(key));
            }
            let Some(is) = interests.as_mut() else {
                // First time busy: subscribe on every node, then try again at
                // once (a release in between is not missed that way).
                let limit = bound.limit(self.shared.node_timeout);
                interests = Some(self.interests(&names, limit).await);
                continue;
            };
            let wake_at = now + pause.unwrap_or_else(|| self.shared.recheck_after(pttl));
            tokio::select! {
                () = woken_any(is) => {}
                () = bound.sleep_until(Some(wake_at)) => {}
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new("redlock")
            .with_fencing(Fencing::BestEffort)
            .with_fairness(Fairness::Unfair)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Ttl)
            .with_scope(Scope::Network)
            .with_extend(Extend::PerGrant)
            .with_store_restart("a node restarted without its data forgets the grants it held: back within the TTL, it \
                can hand a second client a majority (overlapping holders); restart nodes only after the longest \
                TTL has passed, or persist with appendfsync always. Tokens are the highest per-node counter of \
                the grant's majority: they rise while nodes keep their data, an ordering hint rather than a \
                strict fence")
            .with_store_failover("no replication: the nodes are independent. While a majority answers, grants go on; \
                with half or more of the nodes down or paused, acquires fail with Connection or Timeout")
    }
}

impl fmt::Debug for RedlockLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedlockLock")
            .field("nodes", &self.shared.nodes.len())
            .field("quorum", &self.shared.quorum)
            .field("prefix", &self.shared.prefix)
            .field("node_timeout", &self.shared.node_timeout)
            .finish_non_exhaustive()
    }
}
