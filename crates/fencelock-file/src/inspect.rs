//! `fencelock_core::Inspect` for lock files: status and list from the
//! files' records, and a forced unlock that replaces the file.

use async_trait::async_trait;
use fencelock_core::{validate_key, Error, ForcedUnlock, Holder, Inspect, LockStatus, Result};

use crate::path::lock_path;
use crate::{FileLock, FileLockStatus};

/// The holder a held file shows: the owner and pid fencelock wrote, or,
/// for a file locked without fencelock's record (another program's
/// `flock(1)` on it), a foreign holder.
fn holder_of(s: &FileLockStatus) -> Option<Holder> {
    if !s.held {
        return None;
    }
    Some(
        match (s.owner, s.pid) {
            (Some(o), Some(pid)) => Holder::fencelock(format!("{o} (pid {pid})")),
            (Some(o), None) => Holder::fencelock(o.to_string()),
            (None, _) => Holder::foreign(None),
        }
        .with_token(s.token),
    )
}

impl From<FileLockStatus> for LockStatus {
    fn from(s: FileLockStatus) -> Self {
        let status = LockStatus::free(s.key.clone());
        match holder_of(&s) {
            Some(h) => status.with_holder(h),
            None => status
                .with_last_owner(s.owner.map(|o| o.to_string()))
                .with_last_token(s.token),
        }
    }
}

#[async_trait]
impl Inspect for FileLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        FileLock::status(self, key).await.map(LockStatus::from)
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        Ok(FileLock::list(self, prefix)
            .await?
            .into_iter()
            .map(LockStatus::from)
            .collect())
    }

    /// Replaces the key's lock file by one holding the last token plus one
    /// (see the crate's README): the holder, if any, keeps a lock on a file
    /// nobody can reach any more, and its grant is lost within a quarter of
    /// a second. A free key is raised the same way.
    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        validate_key(key)?;
        let path = lock_path(self.dir(), key);
        let k = key.to_string();
        let (before, raised) =
            tokio::task::spawn_blocking(move || crate::forced::replace(&path, k))
                .await
                .map_err(|e| Error::backend("the file-lock task failed").with_source(e))??;
        Ok(ForcedUnlock::new(
            key,
            holder_of(&before).into_iter().collect(),
            Some(raised),
        ))
    }
}
