//! One Redlock round: the acquire script on every node at once, the vote
//! counted, the token handed back to the nodes behind, and what a round
//! without a grant gives back; and waiting for a wake-up on any node.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Error, FencingToken, LockOptions, Result};
use futures_util::future::{join_all, select_all};
use tokio::time::Instant;

use crate::client::Waiter;
use crate::keys::KeyNames;
use crate::scripts::ttl_ms;
use crate::subscriber::Interest;

use super::grant::Tally;
use super::shared::Shared;

/// What one round gave.
pub(crate) enum Step {
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
    /// One Redlock round: the acquire script on every node at once.
    pub(crate) async fn attempt(
        self: &Arc<Self>,
        key: &str,
        names: &KeyNames,
        owner: &str,
        opts: &LockOptions,
    ) -> Result<Step> {
        let shared = self;
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
        self.release_in_background(names.clone(), owner.to_string(), unanswered);
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

    /// Registers a waiter on the key's wake channel on every connected
    /// node and waits (at most `limit`) for the subscriptions.
    pub(crate) async fn interests(&self, names: &KeyNames, limit: Duration) -> Vec<Interest> {
        let mut interests: Vec<Interest> = self
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
pub(crate) async fn woken_any(interests: &mut [Interest]) {
    if interests.is_empty() {
        return std::future::pending().await;
    }
    select_all(interests.iter_mut().map(|i| Box::pin(i.woken()))).await;
}
