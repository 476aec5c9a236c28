//! Our contender node while an acquire is under way, and its cleanup when
//! the acquire is cancelled or fails.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::raw::Cleanup;
use fencelock_core::OwnerId;
use tokio::time::{sleep, Instant};

use crate::create::find_own;
use crate::grant::delete_own;
use crate::session::Session;

/// Our contender node while an acquire is under way. Dropped armed (the
/// acquire was cancelled or failed), it deletes the node in the background
/// (core's [`Cleanup`]).
pub(crate) type Pending = Cleanup<Node>;

/// What the background delete needs.
pub(crate) struct Node {
    pub(crate) session: Arc<Session>,
    parent: String,
    owner: OwnerId,
    /// The node's path once the create answered; `None`: found by owner.
    pub(crate) path: Option<String>,
    /// Whether a node of ours may be there to delete.
    pub(crate) armed: bool,
}

/// A pending node for `owner` under `parent` on `session`.
pub(crate) fn pending(session: Arc<Session>, parent: String, owner: OwnerId) -> Pending {
    Cleanup::armed(
        Node {
            session,
            parent,
            owner,
            path: None,
            armed: true,
        },
        |node| Box::pin(give_back(node)),
    )
    .unless(|node| !node.armed || !node.session.alive())
}

/// Deletes the node now; leaves the background delete armed on failure.
/// `true` when this call deleted it.
pub(crate) async fn remove(pending: &mut Pending) -> bool {
    let node = pending.state_mut();
    let Some(path) = &node.path else {
        return false;
    };
    match delete_own(&node.session, path).await {
        Ok(deleted) => {
            node.armed = false;
            deleted
        }
        Err(f) => {
            tracing::debug!(path = %path, failure = ?f, "deleting the lock node; retrying in the background");
            false
        }
    }
}

/// The background delete of a node an abandoned acquire left.
async fn give_back(node: Node) {
    let Node {
        session,
        parent,
        owner,
        path,
        armed,
    } = node;
    if !armed {
        return;
    }
    // Give up when the session ends: its ephemeral nodes go with it.
    let until = Instant::now() + session.timeout * 2;
    while session.alive() && Instant::now() < until {
        let path = match &path {
            Some(p) => Some(p.clone()),
            None => match find_own(&session, &parent, owner).await {
                Ok(found) => found.map(|n| format!("{parent}/{n}")),
                Err(_) => {
                    sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(path) = path else { return };
        match delete_own(&session, &path).await {
            Ok(_) => return,
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    }
}
