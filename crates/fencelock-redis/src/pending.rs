//! The drop guard of one acquire: what an abandoned or failed acquire
//! leaves on the server is undone in the background (core's
//! [`Cleanup`](fencelock_core::raw::Cleanup)).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use fencelock_core::raw::Cleanup;
use fencelock_core::OwnerId;

use crate::client::{Client, Waiter};
use crate::keys::KeyNames;

/// What an acquire leaves behind when it is dropped or fails part-way: a
/// grant an attempt on the wire may have taken (`owner` is set around each
/// attempt), and its place in the key's queue of waiters (once `queued`).
/// Dropped with either, it undoes both with one release script call, in the
/// background; a queued waiter that leaves passes a wake-up on.
pub(crate) struct Pending(Cleanup<Attempt>);

/// The state [`Pending`] gives back.
pub(crate) struct Attempt {
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
        let attempt = Attempt {
            inner: Arc::clone(inner),
            names: names.clone(),
            owner: None,
            waiter: if waiting {
                OwnerId::random().simple()
            } else {
                String::new()
            },
            queued: false,
        };
        Pending(
            Cleanup::armed(attempt, |a| Box::pin(give_back(a)))
                .unless(|a| a.owner.is_none() && !a.queued),
        )
    }
}

impl Deref for Pending {
    type Target = Attempt;
    fn deref(&self) -> &Attempt {
        self.0.state()
    }
}

impl DerefMut for Pending {
    fn deref_mut(&mut self) -> &mut Attempt {
        self.0.state_mut()
    }
}

impl Attempt {
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

/// Undoes what the attempt left: its grant, its place in the queue.
async fn give_back(a: Attempt) {
    let owner = a.owner.unwrap_or_default();
    let waiter = if a.queued { a.waiter } else { String::new() };
    if let Err(e) = a.inner.release_script(&a.names, &owner, &waiter).await {
        tracing::debug!(error = %e, "cleanup of an abandoned acquire failed; the TTL frees the lock and the queue entry lapses");
    }
}
