//! Looking at locks without taking them: what `fencelock status` and
//! `fencelock list` show.

use std::time::Duration;

use async_trait::async_trait;

use crate::{FencingToken, Result};

/// What a backend can tell about one key without taking it. Fields a
/// backend cannot know are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// The lock key.
    pub key: String,
    /// Whether someone holds it now.
    pub held: bool,
    /// The holder's owner id (or the last holder's, when the store keeps it).
    pub owner: Option<String>,
    /// The holder's fencing token (or the last one handed out).
    pub token: Option<FencingToken>,
    /// Time left before the store frees it without renewal.
    pub remaining: Option<Duration>,
    /// How many are waiting, as far as the backend can tell.
    pub waiters: Option<usize>,
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

    /// Every known key starting with `prefix`, where the backend can
    /// enumerate; [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// where it cannot.
    ///
    /// # Errors
    ///
    /// `Unsupported`; store errors.
    async fn list(&self, prefix: &str) -> Result<Vec<LockStatus>>;
}
