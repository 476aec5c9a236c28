//! The store operations on one Redlock grant: renewal and release go to
//! every node at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::grant::GrantOps;
use fencelock_core::{Error, ErrorKind, Result};
use futures_util::future::join_all;

use crate::keys::KeyNames;
use crate::scripts::ttl_ms;

use super::shared::Shared;

/// One Redlock grant.
pub(crate) struct RedlockGrant {
    pub(crate) shared: Arc<Shared>,
    pub(crate) key: String,
    pub(crate) names: KeyNames,
    pub(crate) owner: String,
}

/// How the nodes answered one request.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) yes: usize,
    pub(crate) no: usize,
    pub(crate) errors: Vec<Error>,
}

impl Tally {
    pub(crate) fn of(results: Vec<Result<bool>>) -> Self {
        let mut t = Tally::default();
        for r in results {
            match r {
                Ok(true) => t.yes += 1,
                Ok(false) => t.no += 1,
                Err(e) => t.errors.push(e),
            }
        }
        t
    }

    /// The error for "too few nodes answered": `Timeout` when every
    /// failure was a timeout, `Connection` otherwise.
    pub(crate) fn no_quorum(&self, what: &str, nodes: usize, quorum: usize) -> Error {
        let kind = if !self.errors.is_empty()
            && self.errors.iter().all(|e| e.kind() == ErrorKind::Timeout)
        {
            ErrorKind::Timeout
        } else {
            ErrorKind::Connection
        };
        let first = self
            .errors
            .first()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default();
        Error::new(
            kind,
            format!(
                "{what}: only {} of {nodes} Redlock nodes answered; a majority of {quorum} is needed{first}",
                self.yes + self.no
            ),
        )
    }
}

#[async_trait]
impl GrantOps for RedlockGrant {
    /// Renews on every node; renewed when a majority renewed. `false` once
    /// a majority can no longer be ours (that many nodes said "not yours").
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        let ms = ttl_ms(ttl);
        let results = join_all(self.shared.nodes.iter().map(|node| async move {
            let lock = node.get()?;
            lock.inner
                .batcher
                .renew(&self.names.lock, &self.owner, ms)
                .await
        }))
        .await;
        let t = Tally::of(results);
        let (n, q) = (self.shared.nodes.len(), self.shared.quorum);
        if t.yes >= q {
            Ok(true)
        } else if t.no > n - q {
            Ok(false)
        } else {
            Err(t.no_quorum("renew", n, q).with_key(self.key.clone()))
        }
    }

    /// Compare-and-delete on every node; the nodes that did not answer are
    /// asked twice more (a loaded node can miss one node timeout). `true`
    /// when a majority deleted ours; `false` when a majority cannot have
    /// been ours; an error when too few answered to tell.
    async fn release(&self) -> Result<bool> {
        let mut results = self.shared.release_all(&self.names, &self.owner).await;
        for _ in 0..2 {
            let yes = results.iter().filter(|r| matches!(r, Ok(true))).count();
            let failed: Vec<usize> = (0..results.len())
                .filter(|&i| results[i].is_err())
                .collect();
            if failed.is_empty() || yes >= self.shared.quorum {
                break;
            }
            let again = self
                .shared
                .release_on(&failed, &self.names, &self.owner)
                .await;
            for (i, r) in failed.into_iter().zip(again) {
                results[i] = r;
            }
        }
        let t = Tally::of(results);
        let (n, q) = (self.shared.nodes.len(), self.shared.quorum);
        if t.yes >= q {
            Ok(true)
        } else if t.yes + t.errors.len() < q {
            Ok(false)
        } else {
            Err(t.no_quorum("release", n, q).with_key(self.key.clone()))
        }
    }
}
