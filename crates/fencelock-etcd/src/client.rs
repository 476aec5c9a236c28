//! What one client and its clones share.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Error, LockOptions, Result};

use crate::endpoints::Endpoints;
use crate::keys::Layout;
use crate::watch::Watches;

/// The shared state of an [`EtcdLock`](crate::EtcdLock) and its clones.
pub(crate) struct Client {
    pub(crate) endpoints: Arc<Endpoints>,
    /// The one watch stream every waiter and held grant shares.
    pub(crate) watches: Arc<Watches>,
    pub(crate) layout: Layout,
    /// The safety-net re-check of a waiter.
    pub(crate) poll: Duration,
    /// The least drift margin of every grant (the builder's `drift`).
    pub(crate) drift: Option<Duration>,
}

impl Client {
    /// `opts` with the client's drift margin where it is the larger one.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when that margin leaves less than half the TTL.
    pub(crate) fn options(&self, opts: &LockOptions) -> Result<LockOptions> {
        let Some(drift) = self.drift.filter(|d| *d > opts.drift()) else {
            return Ok(opts.clone());
        };
        let ttl = opts.ttl();
        if drift >= ttl / 2 {
            return Err(Error::invalid_config(format!(
                "the client's drift margin {drift:?} (option drift) must be less than half the TTL {ttl:?}"
            )));
        }
        Ok(opts.clone().with_drift(drift))
    }
}
