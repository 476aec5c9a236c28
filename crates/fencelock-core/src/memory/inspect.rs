//! What `status` and `list` see of the in-process store.

use async_trait::async_trait;
use tokio::time::Instant;

use super::{KeyState, MemoryLock};
use crate::{validate_key, FencingToken, Inspect, LockStatus, Result};

#[async_trait]
impl Inspect for MemoryLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        validate_key(key)?;
        let now = Instant::now();
        let mut state = self.store.state();
        Ok(state
            .keys
            .get_mut(key)
            .map_or_else(|| status(key, None, now), |st| status(key, Some(st), now)))
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let now = Instant::now();
        let mut state = self.store.state();
        let mut out: Vec<LockStatus> = state
            .keys
            .iter_mut()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, st)| status(k, Some(st), now))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

fn status(key: &str, st: Option<&mut KeyState>, now: Instant) -> LockStatus {
    let Some(st) = st else {
        return LockStatus::free(key);
    };
    let status = LockStatus::free(key).with_waiters(Some(st.queue.len()));
    match st.holder(now) {
        Some(h) => status.with_holder(
            crate::Holder::fencelock(h.owner.to_string())
                .with_token(Some(FencingToken::new(h.token)))
                .with_remaining(Some(h.expires.saturating_duration_since(now))),
        ),
        None => status,
    }
}
