//! The store operations on one grant: renew (one LeaseKeepAlive of the
//! grant's own lease), release (LeaseRevoke, which deletes the key), and
//! the `revoked` future.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::raw::GrantOps;
use fencelock_core::{Error, Result};
use tokio::time::{sleep, Instant};

use crate::endpoints::Endpoints;
use crate::lease::Lease;
use crate::watch::{Seen, Watches};

/// One grant: its contender key `<prefix>/<key>/<lease hex>`, attached to
/// the grant's own lease.
pub(crate) struct EtcdGrant {
    pub(crate) lease: Lease,
}

#[async_trait]
impl GrantOps for EtcdGrant {
    /// The key lives as long as its lease: renewing the lease renews the
    /// grant. A key deleted under a live lease (`force_unlock`) is seen by
    /// the `revoked` watch.
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        self.lease.renew(ttl).await
    }

    /// Revokes the lease (deleting the key), retried on transient errors
    /// while the lease may live. `Ok(false)`: the lease was gone already
    /// (expired or revoked: the grant had ended).
    async fn release(&self) -> Result<bool> {
        let mut last: Option<Error> = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                if Instant::now() >= self.lease.lives_until() {
                    break;
                }
                sleep(Duration::from_millis(100) * attempt).await;
            }
            match self.lease.revoke().await {
                Ok(revoked) => return Ok(revoked),
                Err(e) if e.is_retryable() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(false),
        }
    }
}

/// The `revoked` future of a grant: completes when the contender key created
/// at `revision` is deleted (or found gone). Watches the key's delete from
/// revision `from` on the client's shared watch stream; when etcd cannot
/// keep the watch, reads the key and watches again from after that read.
pub(crate) async fn revoked(
    endpoints: Arc<Endpoints>,
    watches: Arc<Watches>,
    etcd_key: String,
    revision: i64,
    from: i64,
    poll: Duration,
) {
    let pause = poll.min(Duration::from_millis(500));
    let mut from = from;
    loop {
        let seen = watches.subscribe(&etcd_key, from).wait().await;
        if seen == Seen::Deleted {
            return;
        }
        // The watch was dropped: look, so a delete in between is not missed.
        // (Boxed: the read's future is large and this one lives as long as
        // the grant.)
        loop {
            match Box::pin(read_key(&endpoints, &etcd_key)).await {
                Ok(Some((create_revision, rev))) if create_revision == revision => {
                    from = from.max(rev + 1);
                    break;
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!(key = %etcd_key, error = %e, "cannot check the key; retrying")
                }
            }
            sleep(pause).await;
        }
        // Never a tight loop if watches keep failing. (The read above saw
        // the key at `from - 1`; the next watch starts there, so nothing
        // is missed meanwhile, only noticed later.)
        sleep(pause).await;
    }
}

/// The key's create revision (`None` when absent) and the read's revision.
async fn read_key(endpoints: &Endpoints, etcd_key: &str) -> Result<Option<(i64, i64)>> {
    let r = endpoints
        .call("get", |mut c| async move { c.get(etcd_key, None).await })
        .await?;
    let rev = r
        .header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::backend("etcd get answered without a header"))?;
    Ok(r.kvs().first().map(|kv| (kv.create_revision(), rev)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    /// The `revoked` future lives as long as its grant: 10,000 held locks
    /// hold 10,000 of them, so it must stay small (the store read it may
    /// do is boxed; unboxed it made the future about 10 KiB).
    #[test]
    fn the_revoked_future_is_small() {
        let e = Arc::new(crate::endpoints::Endpoints::new(
            vec!["http://127.0.0.1:1".into()],
            etcd_client::ConnectOptions::new(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ));
        let w = Arc::new(crate::watch::Watches::new(Arc::clone(&e)));
        let f = super::revoked(e, w, String::new(), 1, 2, Duration::from_secs(1));
        let size = std::mem::size_of_val(&f);
        assert!(size <= 1024, "the revoked future takes {size} bytes");
    }
}
