//! The resource side of fencing: admit a token only if it is not lower than
//! the highest one seen.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::FencingToken;

/// A token was lower than one the resource had already seen: its holder's
/// lease must have expired, and its write must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stale fencing token {presented}: the resource has seen {highest}")]
pub struct StaleToken {
    /// The token that was refused.
    pub presented: FencingToken,
    /// The highest token the resource had seen.
    pub highest: FencingToken,
}

/// Remembers the highest fencing token seen per resource and admits or
/// rejects writes by it. This is what makes a lock safe when a lease expires
/// under a paused holder (Kleppmann, "How to do distributed locking", 2016).
///
/// The same token may write many times (one holder, several writes); a lower
/// token is refused. Keep the check and the write atomic in your store; the
/// same rule in other places:
///
/// SQL (the row carries the last token):
///
/// ```sql
/// UPDATE accounts SET balance = $1, fence = $2
///  WHERE id = $3 AND fence <= $2;   -- 0 rows updated: stale token, refuse
/// ```
///
/// A Redis script (`KEYS[1]` the data, `KEYS[2]` its fence):
///
/// ```lua
/// local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
/// if tonumber(ARGV[2]) < seen then return 0 end
/// redis.call('SET', KEYS[2], ARGV[2])
/// redis.call('SET', KEYS[1], ARGV[1])
/// return 1
/// ```
///
/// An etcd transaction: compare the fence key's value, then write both:
///
/// ```text
/// Txn(If(Value("data/fence") <= token_padded),
///     Then(Put("data/fence", token_padded), Put("data", value)))
/// ```
/// (zero-pad the token, e.g. `format!("{:020}", token)`, so the byte-wise
/// comparison etcd does is numeric.)
///
/// ```
/// use fencelock_core::{FenceGate, FencingToken};
///
/// let gate = FenceGate::new();
/// gate.admit("account-7", FencingToken::new(34)).unwrap();
/// gate.admit("account-7", FencingToken::new(34)).unwrap(); // same holder again
/// let stale = gate.admit("account-7", FencingToken::new(33)).unwrap_err();
/// assert_eq!(stale.highest, FencingToken::new(34));
/// ```
#[derive(Debug, Default)]
pub struct FenceGate {
    highest: Mutex<HashMap<String, FencingToken>>,
}

impl FenceGate {
    /// An empty gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Admits `token` for `resource` when it is at least the highest token
    /// seen there, and records it.
    ///
    /// # Errors
    ///
    /// [`StaleToken`] when a higher token was seen.
    pub fn admit(&self, resource: &str, token: FencingToken) -> Result<(), StaleToken> {
        let mut map = self
            .highest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get_mut(resource) {
            Some(highest) if token < *highest => Err(StaleToken {
                presented: token,
                highest: *highest,
            }),
            Some(highest) => {
                *highest = token;
                Ok(())
            }
            None => {
                map.insert(resource.to_string(), token);
                Ok(())
            }
        }
    }

    /// The highest token admitted for `resource`.
    pub fn highest(&self, resource: &str) -> Option<FencingToken> {
        self.highest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(resource)
            .copied()
    }
}
