//! `fencelock_core::Inspect` for Redis: status through the read-only
//! inspect script, a list by `SCAN` of the fence counters, and a forced
//! unlock by the force script (delete the grant and burn a token, at once).

use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::{
    validate_key, FencingToken, ForcedUnlock, Holder, Inspect, LockStatus, OwnerId, Result,
};

use crate::error::bounded;
use crate::keys::KeyNames;
use crate::scripts::FORCE;
use crate::RedisLock;

/// How much of a foreign value a status shows.
const SHOWN: usize = 64;

/// The holder a lock key's value names: fencelock's `<owner>:<token>`, or
/// a foreign value. `None` for no value and for the hand-off window.
fn holder_of(value: &str, remaining: Option<Duration>) -> Option<Holder> {
    if value.starts_with("handoff:") {
        return None;
    }
    let ours = value
        .split_once(':')
        .and_then(|(owner, token)| Some((OwnerId::parse(owner)?, token.parse::<u64>().ok()?)));
    let holder = match ours {
        Some((owner, token)) => {
            Holder::fencelock(owner.to_string()).with_token(Some(FencingToken::new(token)))
        }
        None => {
            let mut shown: String = value.chars().take(SHOWN).collect();
            if shown.len() < value.len() {
                shown.push('…');
            }
            Holder::foreign(Some(format!("value {shown:?}")))
        }
    };
    Some(holder.with_remaining(remaining))
}

#[async_trait]
impl Inspect for RedisLock {
    async fn status(&self, key: &str) -> Result<LockStatus> {
        let info = self.inspect(key).await?;
        let status = LockStatus::free(key).with_waiters(Some(info.queued));
        let holder = match (info.holder, info.token, &info.foreign) {
            (Some(owner), token, _) => Some(
                Holder::fencelock(owner.to_string())
                    .with_token(token)
                    .with_remaining(info.remaining),
            ),
            (None, _, Some(value)) => holder_of(value, info.remaining),
            (None, _, None) => None,
        };
        Ok(match holder {
            Some(h) => status.with_holder(h),
            // The hand-off window: no holder, the window's time left.
            None => status.with_remaining(info.remaining),
        }
        .with_last_token(info.last_token))
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<LockStatus>> {
        let mut out = Vec::new();
        for key in self.keys(prefix).await? {
            if validate_key(&key).is_ok() {
                out.push(self.status(&key).await?);
            }
        }
        Ok(out)
    }

    async fn force_unlock(&self, key: &str) -> Result<ForcedUnlock> {
        validate_key(key)?;
        let names = KeyNames::new(&self.inner.prefix, key);
        let mut conn = self.inner.conn.clone();
        let mut inv = FORCE.prepare_invoke();
        inv.key(&names.lock).key(&names.fence).arg(&names.channel);
        let (value, pttl, fence): (Option<String>, i64, u64) = bounded(
            self.inner.response_timeout,
            "force unlock",
            inv.invoke_async(&mut conn),
        )
        .await
        .map_err(|e| e.with_key(key))?;
        let remaining = u64::try_from(pttl).ok().map(Duration::from_millis);
        let removed = value
            .as_deref()
            .and_then(|v| holder_of(v, remaining))
            .into_iter()
            .collect();
        Ok(ForcedUnlock::new(
            key,
            removed,
            Some(FencingToken::new(fence)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_name_their_holder() {
        let owner = OwnerId::random();
        let ours = holder_of(&format!("{}:7", owner.simple()), None).unwrap();
        assert!(!ours.foreign);
        assert_eq!(ours.token, Some(FencingToken::new(7)));
        assert!(holder_of("handoff:abc", None).is_none());
        let theirs = holder_of("someone-else", None).unwrap();
        assert!(theirs.foreign);
        assert_eq!(theirs.owner.as_deref(), Some("value \"someone-else\""));
    }
}
