//! Fencing tokens and owner ids.

use std::fmt;

use uuid::Uuid;

/// A fencing token: strictly greater than the token of every earlier grant
/// of the same key (within the limits the backend's
/// [`Capabilities::fencing`](crate::Capabilities::fencing) states).
///
/// Hand it to the resource you protect with every write; a resource that
/// remembers the highest token it has seen and rejects lower ones stays safe
/// even when a paused holder wakes up after its lease expired. See
/// [`FenceGate`](crate::FenceGate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// Wraps a raw token value.
    pub const fn new(value: u64) -> Self {
        FencingToken(value)
    }

    /// The raw value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<FencingToken> for u64 {
    fn from(t: FencingToken) -> u64 {
        t.0
    }
}

/// The random 128-bit id of one grant. A backend stores it with the lock so
/// that release and renewal are compare-and-act by owner, and so a retried
/// acquire can recognise its own grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerId(Uuid);

impl OwnerId {
    /// A fresh random id.
    pub fn random() -> Self {
        OwnerId(Uuid::new_v4())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id as 32 lowercase hex digits.
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }

    /// Parses the hyphenated or simple form.
    pub fn parse(s: &str) -> Option<Self> {
        Uuid::parse_str(s).ok().map(OwnerId)
    }
}

impl fmt::Display for OwnerId {
    /// The hyphenated UUID form, as Curator's node names carry it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_order_and_owner_ids_round_trip() {
        assert!(FencingToken::new(2) > FencingToken::new(1));
        let id = OwnerId::random();
        assert_eq!(OwnerId::parse(&id.to_string()), Some(id));
        assert_eq!(OwnerId::parse(&id.simple()), Some(id));
        assert_ne!(OwnerId::random(), id);
    }
}
