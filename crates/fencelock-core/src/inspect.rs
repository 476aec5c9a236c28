//! Looking at locks without taking them, and breaking a wedged one: what
//! `fencelock status`, `fencelock list` and `fencelock unlock --force` show.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Error, FencingToken, Result};

/// One holder of a key, as the store shows it. Fields the store cannot
/// know are `None`.
///
/// A lock has at most one holder today; primitives with several holders
/// (readers, permits) list each. A holder that is not a fencelock client
/// (a value or node another program wrote where fencelock looks) is
/// `foreign`: it still keeps fencelock clients out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The fencelock owner id; for a foreign holder, what the store shows
    /// instead (its value, node name or key).
    pub owner: Option<String>,
    /// The holder's fencing token, where the store has one.
    pub token: Option<FencingToken>,
    /// Time left before the store frees it without renewal.
    pub remaining: Option<Duration>,
    /// Not a fencelock client.
    pub foreign: bool,
}

impl Holder {
    /// A fencelock client, by owner id.
    pub fn fencelock(owner: impl Into<String>) -> Self {
        Holder {
            owner: Some(owner.into()),
            ..Holder::default()
        }
    }

    /// Something that is not a fencelock client, described by what the
    /// store shows (`None` when it shows nothing useful).
    pub fn foreign(shown: Option<String>) -> Self {
        Holder {
            owner: shown,
            foreign: true,
            ..Holder::default()
        }
    }

    /// With a fencing token.
    #[must_use]
    pub fn with_token(mut self, token: Option<FencingToken>) -> Self {
        self.token = token;
        self
    }

    /// With the time left.
    #[must_use]
    pub fn with_remaining(mut self, remaining: Option<Duration>) -> Self {
        self.remaining = remaining;
        self
    }

    /// The owner as one label: the owner id, or `"not fencelock"` (with
    /// what the store shows) for a foreign holder.
    pub fn label(&self) -> String {
        match (&self.owner, self.foreign) {
            (Some(o), false) => o.clone(),
            (None, false) => "an unknown owner".to_string(),
            (Some(o), true) => format!("not fencelock ({o})"),
            (None, true) => "not fencelock".to_string(),
        }
    }
}

/// What a backend can tell about one key without taking it. Fields a
/// backend cannot know are `None`.
///
/// `holders` lists every holder; `held`, `owner`, `token` and `remaining`
/// describe the first one (they are kept for code written before
/// `holders`). Build one with [`LockStatus::free`] and the `with_*`
/// methods, which keep the two views in step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStatus {
    /// The lock key.
    pub key: String,
    /// Whether someone holds it now.
    pub held: bool,
    /// The first holder's owner id (or the last holder's, when the store
    /// keeps it); for a foreign holder, [`Holder::label`].
    pub owner: Option<String>,
    /// The first holder's fencing token (or the last one handed out).
    pub token: Option<FencingToken>,
    /// Time left before the store frees the first holder without renewal.
    pub remaining: Option<Duration>,
    /// How many are waiting, as far as the backend can tell.
    pub waiters: Option<usize>,
    /// Every holder.
    pub holders: Vec<Holder>,
}

impl LockStatus {
    /// A key nobody holds (add holders with [`with_holder`](Self::with_holder)).
    pub fn free(key: impl Into<String>) -> Self {
        LockStatus {
            key: key.into(),
            ..LockStatus::default()
        }
    }

    /// With one more holder; the first also fills `held`, `owner`, `token`
    /// and `remaining`.
    #[must_use]
    pub fn with_holder(mut self, holder: Holder) -> Self {
        if self.holders.is_empty() {
            self.held = true;
            self.owner = if holder.foreign {
                Some(holder.label())
            } else {
                holder.owner.clone()
            };
            if holder.token.is_some() {
                self.token = holder.token;
            }
            self.remaining = holder.remaining;
        }
        self.holders.push(holder);
        self
    }

    /// With the last token handed out, shown while nobody holds the key.
    #[must_use]
    pub fn with_last_token(mut self, token: Option<FencingToken>) -> Self {
        if self.token.is_none() {
            self.token = token;
        }
        self
    }

    /// With the last holder's owner id, shown while nobody holds the key.
    #[must_use]
    pub fn with_last_owner(mut self, owner: Option<String>) -> Self {
        if self.owner.is_none() {
            self.owner = owner;
        }
        self
    }

    /// With the number of waiters.
    #[must_use]
    pub fn with_waiters(mut self, waiters: Option<usize>) -> Self {
        self.waiters = waiters;
        self
    }

    /// With the time left (for a store that knows it of the key, not of
    /// each holder).
    #[must_use]
    pub fn with_remaining(mut self, remaining: Option<Duration>) -> Self {
        self.remaining = remaining;
        self
    }

    /// Held or waited for: what [`Inspect::list`] shows.
    pub fn is_active(&self) -> bool {
        self.held || self.waiters.is_some_and(|w| w > 0)
    }
}

/// What [`Inspect::force_unlock`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForcedUnlock {
    /// The lock key.
    pub key: String,
    /// The holders whose grants were deleted (empty when the key was free).
    pub removed: Vec<Holder>,
    /// The fencing token the key was raised to, where the store counts
    /// tokens itself: every later grant gets a higher one. `None` where
    /// tokens come from the store's own order (ZooKeeper, etcd), which
    /// rises past the removed grant by itself.
    pub raised_to: Option<FencingToken>,
}

impl ForcedUnlock {
    /// What was removed from `key`, and the token it was raised to.
    pub fn new(
        key: impl Into<String>,
        removed: Vec<Holder>,
        raised_to: Option<FencingToken>,
    ) -> Self {
        ForcedUnlock {
            key: key.into(),
            removed,
            raised_to,
        }
    }
}

/// Inspection, for backends that can look without taking.
#[async_trait]
pub trait Inspect: Send + Sync {
    /// The status of `key`.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; store errors.
    async fn status(&self, key: &str) -> Result<LockStatus>;

    /// Every key starting with `prefix` that is held or waited for
    /// ([`LockStatus::is_active`]), sorted by key, where the backend can
    /// enumerate; [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// where it cannot.
    ///
    /// # Errors
    ///
    /// `Unsupported`; store errors.
    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let mut all = self.list_all(prefix).await?;
        all.retain(LockStatus::is_active);
        Ok(all)
    }

    /// Every key starting with `prefix` that the store keeps anything for,
    /// also keys with only history (a fence counter, an empty lock
    /// directory or file), sorted by key.
    ///
    /// # Errors
    ///
    /// `Unsupported`; store errors.
    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>>;

    /// Breaks the lock on `key` for an operator: deletes the current
    /// grant whoever holds it, and makes sure every later grant of `key`
    /// gets a fencing token above the deleted one, so the old holder's
    /// late writes are refused by any fenced resource. A fencelock holder
    /// that is still alive learns it lost the lock (its guard's `lost()`
    /// completes). A free key is only raised.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; `Unsupported` (the default) where the backend cannot;
    /// store errors.
    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        let _ = key;
        Err(Error::unsupported(
            "this backend cannot break a lock (force_unlock)",
        ))
    }
}
