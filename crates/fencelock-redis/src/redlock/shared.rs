//! What every handle of one Redlock client shares: the nodes, the quorum
//! and the settings; giving an attempt back on the nodes, now or in the
//! background, and the pauses between rounds.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{raw, Result};
use futures_util::future::join_all;
use rand::Rng;
use tokio::time::sleep;

use crate::keys::KeyNames;

use super::node::Node;

/// The nodes and settings of one Redlock client.
pub(crate) struct Shared {
    pub(crate) nodes: Vec<Arc<Node>>,
    pub(crate) quorum: usize,
    pub(crate) prefix: String,
    pub(crate) node_timeout: Duration,
    pub(crate) budget: Duration,
    pub(crate) max_recheck: Duration,
    pub(crate) retry_jitter: Duration,
}

/// When a background give-back asks the nodes (again).
const GIVE_BACK_RETRIES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(500),
    Duration::from_secs(2),
];

impl Shared {
    /// The bound on one node request for a grant with `ttl`.
    pub(crate) fn limit(&self, ttl: Duration) -> Duration {
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

    pub(crate) fn release_in_background(
        self: &Arc<Self>,
        names: KeyNames,
        owner: String,
        nodes: Vec<usize>,
    ) {
        if nodes.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(give_back(Arc::clone(self), names, owner, nodes));
        }
    }

    pub(crate) fn recheck_after(&self, pttl: i64) -> Duration {
        let cap = self.max_recheck;
        match u64::try_from(pttl) {
            Ok(ms) => (Duration::from_millis(ms) + Duration::from_millis(1)).min(cap),
            Err(_) if pttl == -2 => Duration::from_millis(1),
            Err(_) => cap,
        }
    }

    pub(crate) fn jitter(&self, from: u32, to: u32) -> Duration {
        let max = u64::try_from(self.retry_jitter.as_micros()).unwrap_or(u64::MAX);
        let mut rng = rand::thread_rng();
        Duration::from_micros(rng.gen_range(max * u64::from(from)..=max * u64::from(to)))
            .max(Duration::from_micros(200))
    }
}

/// Gives back `owner`'s attempt on `nodes`. A request that timed out may
/// still run on its node later (it sat in a socket buffer of a stalled
/// server): it asks again a little later too. The owner id is this
/// attempt's alone, so a late compare-and-delete never hits a later grant.
async fn give_back(shared: Arc<Shared>, names: KeyNames, owner: String, nodes: Vec<usize>) {
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
}

/// What an attempt may have taken on every node, given back when the
/// acquire future is dropped (or fails) before the grant reached a guard
/// (core's [`raw::Cleanup`]).
pub(crate) type Cleanup = raw::Cleanup<Attempt>;

/// One attempt's owner id on one key.
pub(crate) struct Attempt {
    shared: Arc<Shared>,
    names: KeyNames,
    owner: String,
}

/// Armed: dropping it gives back `owner`'s attempt on every node.
pub(crate) fn cleanup(shared: &Arc<Shared>, names: &KeyNames, owner: &str) -> Cleanup {
    raw::Cleanup::armed(
        Attempt {
            shared: Arc::clone(shared),
            names: names.clone(),
            owner: owner.to_string(),
        },
        |a| {
            let all = (0..a.shared.nodes.len()).collect();
            Box::pin(give_back(a.shared, a.names, a.owner, all))
        },
    )
}
