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
mod round;
mod shared;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use fencelock_core::raw::{LateGrant, WaitBound};
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, ErrorKind, Expiry, Extend, Fairness,
    Fencing, FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use futures_util::future::join_all;
use tokio::time::{sleep, Instant};

pub use config::{RedlockLockBuilder, DEFAULT_NODE_TIMEOUT, DEFAULT_RETRY_JITTER};

use crate::grant::ttl_guard;
use crate::keys::KeyNames;
use crate::subscriber::Interest;
use grant::RedlockGrant;
use node::Node;
use round::{woken_any, Step};
use shared::{Cleanup, Shared};

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
            let down: Vec<&str> = nodes
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_err())
                .map(|(node, _)| node.endpoint())
                .collect();
            let first = results.into_iter().find_map(std::result::Result::err);
            let mut e = Error::connection(format!(
                "only {up} of {n} Redlock nodes could be reached (not {}); a majority of {quorum} \
                 is needed",
                down.join(", ")
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
        shared::cleanup(&self.shared, names, owner)
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
        ttl_guard(key, owner, token, sent_at, ops, opts)
    }
}

#[async_trait]
impl DistributedLock for RedlockLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        let names = self.names(key);
        let owner = OwnerId::random();
        let simple = owner.simple();
        let cleanup = self.cleanup(&names, &simple);
        let step = self.shared.attempt(key, &names, &simple, opts).await;
        cleanup.disarm();
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
            let cleanup = self.cleanup(&names, &simple);
            let step = self.shared.attempt(key, &names, &simple, opts).await;
            cleanup.disarm();
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
                interests = Some(self.shared.interests(&names, limit).await);
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

impl RedlockLockBuilder {
    /// Connects to every node concurrently (a majority must answer within
    /// the connect timeout) and loads the scripts on each.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad setting;
    /// [`ErrorKind::Connection`] when fewer than a majority of the nodes
    /// can be reached.
    pub async fn build(self) -> Result<RedlockLock> {
        self.validate()?;
        // Boxed, as `RedisLockBuilder::build`.
        Box::pin(RedlockLock::from_builder(self)).await
    }
}
