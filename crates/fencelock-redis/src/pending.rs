//! The drop guard of one acquire: what an abandoned or failed acquire
//! leaves on the server is undone in the background.

use std::sync::Arc;

use fencelock_core::OwnerId;

use crate::client::{Client, Waiter};
use crate::keys::KeyNames;

/// What an acquire leaves behind when it is dropped or fails part-way: a
/// grant an attempt on the wire may have taken (`owner` is set around each
/// attempt), and its place in the key's queue of waiters (once `queued`).
/// Dropped with either, it undoes both with one release script call, in the
/// background; a queued waiter that leaves passes a wake-up on.
pub(crate) struct Pending {
    inner: Arc<Client>,
    names: KeyNames,
    pub(crate) owner: Option<String>,
    /// The waiter id (empty for `try_acquire`, which never queues).
    waiter: String,
    pub(crate) queued: bool,
}

impl Pending {
    /// The drop guard of one acquire on `names`; `waiting` gives it a
    /// waiter id (an `acquire`, which may queue).
    pub(crate) fn new(inner: &Arc<Client>, names: &KeyNames, waiting: bool) -> Pending {
        Pending {
            inner: Arc::clone(inner),
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

    /// The waiter id the acquire script queues, if any.
    pub(crate) fn waiter_id(&self) -> &str {
        &self.waiter
    }

    /// Who is asking, for the acquire script.
    pub(crate) fn waiter(&self) -> Waiter<'_> {
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
