//! Looking at locks without taking them: [`RedisLock::inspect`] through
//! the read-only inspect script, [`RedisLock::keys`] by `SCAN`, and
//! `fencelock_core::Inspect` on top (status, list, and a forced unlock by
//! the force script: delete the grant and burn a token, at once).

use std::time::Duration;

use async_trait::async_trait;
#[cfg(doc)]
use fencelock_core::ErrorKind;
use fencelock_core::{
    validate_key, Error, FencingToken, ForcedUnlock, Holder, Inspect, LockStatus, OwnerId, Result,
};

use crate::error::bounded;
use crate::keys::{key_of_redis, scan_pattern, KeyNames};
use crate::lock::RedisLock;
use crate::scripts::{FORCE, INSPECT};

/// What [`RedisLock::inspect`] reads about one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The current holder's owner id, when the lock is held.
    pub holder: Option<OwnerId>,
    /// The current holder's fencing token, when the lock is held.
    pub token: Option<FencingToken>,
    /// How long the current grant has left on the server (`None` when free,
    /// or when the key has no expiry).
    pub remaining: Option<Duration>,
    /// The highest token handed out for this key so far (the fence counter).
    pub last_token: Option<FencingToken>,
    /// How many `acquire` calls, of every client, are in the key's queue of
    /// waiters (entries that have not lapsed). Redlock's waiters do not queue.
    pub queued: usize,
    /// How many `acquire` calls of this client are waiting on the key right
    /// now.
    pub local_waiters: usize,
    /// The lock key's value when a client that is not fencelock holds it
    /// (a value not of the form fencelock writes).
    pub foreign: Option<String>,
}

impl RedisLock {
    /// Reads the state of the lock on `key`: holder, token, remaining TTL,
    /// the fence counter, the queued waiters of every client and this
    /// client's own waiters. One round trip.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`]; store errors.
    pub async fn inspect(&self, key: &str) -> Result<LockInfo> {
        validate_key(key)?;
        let names = KeyNames::new(&self.inner.prefix, key);
        let mut conn = self.inner.conn.clone();
        let mut inv = INSPECT.prepare_invoke();
        inv.key(&names.lock).key(&names.fence).key(&names.queue);
        let (value, pttl, fence, queued): (Option<String>, i64, Option<u64>, usize) = bounded(
            &self.inner.endpoint(),
            self.inner.response_timeout,
            "inspect",
            inv.invoke_async(&mut conn),
        )
        .await
        .map_err(|e| e.with_key(key))?;
        let (holder, token) = match value.as_deref().and_then(|v| v.split_once(':')) {
            Some((owner, token)) => (
                OwnerId::parse(owner),
                token.parse::<u64>().ok().map(FencingToken::new),
            ),
            None => (None, None),
        };
        let foreign = value.filter(|v| holder.is_none() && !v.starts_with("handoff:"));
        Ok(LockInfo {
            holder,
            token,
            remaining: u64::try_from(pttl).ok().map(Duration::from_millis),
            last_token: fence.map(FencingToken::new),
            queued,
            local_waiters: self.inner.subscriber.waiters(&names.channel),
            foreign,
        })
    }

    /// Every lock key under this client's prefix that starts with `prefix`
    /// and has a Redis key: a fence counter (it was ever granted), a value
    /// (held, by fencelock or another client) or a queue: a `SCAN` of one
    /// server.
    ///
    /// # Errors
    ///
    /// `Unsupported` on Redis Cluster (keys are spread over the shards);
    /// store errors.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        if self.inner.conn.is_cluster() {
            return Err(Error::unsupported(
                "listing locks on Redis Cluster is not implemented (it needs a SCAN of every shard)",
            ));
        }
        let pattern = scan_pattern(&self.inner.prefix);
        let mut conn = self.inner.conn.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, batch): (u64, Vec<String>) = bounded(
                &self.inner.endpoint(),
                self.inner.response_timeout,
                "scan",
                scan.query_async(&mut conn),
            )
            .await?;
            out.extend(
                batch
                    .iter()
                    .filter_map(|k| key_of_redis(&self.inner.prefix, k))
                    .filter(|k| k.starts_with(prefix)),
            );
            if next == 0 || out.len() > 100_000 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

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
            &self.inner.endpoint(),
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
