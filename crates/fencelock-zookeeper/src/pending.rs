//! Our contender node while an acquire is under way, and its cleanup when
//! the acquire is cancelled or fails.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::OwnerId;
use tokio::time::{sleep, Instant};

use crate::create::find_own;
use crate::grant::delete_own;
use crate::session::Session;

/// Our contender node while an acquire is under way. Dropped armed (the
/// acquire was cancelled or failed), it deletes the node in the background.
pub(crate) struct Pending {
    pub(crate) session: Arc<Session>,
    parent: String,
    owner: OwnerId,
    pub(crate) path: Option<String>,
    pub(crate) armed: bool,
}

impl Pending {
    pub(crate) fn new(session: Arc<Session>, parent: String, owner: OwnerId) -> Self {
        Pending {
            session,
            parent,
            owner,
            path: None,
            armed: true,
        }
    }

    /// Deletes the node now; leaves the background delete armed on failure.
    /// `true` when this call deleted it.
    pub(crate) async fn remove(&mut self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        match delete_own(&self.session, path).await {
            Ok(deleted) => {
                self.armed = false;
                deleted
            }
            Err(f) => {
                tracing::debug!(path = %path, failure = ?f, "deleting the lock node; retrying in the background");
                false
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed || !self.session.alive() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let session = Arc::clone(&self.session);
        let parent = std::mem::take(&mut self.parent);
        let owner = self.owner;
        let path = self.path.take();
        rt.spawn(async move {
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
        });
    }
}
