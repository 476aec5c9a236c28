#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod capabilities;
mod cleanup;
mod error;
mod ext;
mod fence;
pub mod grant;
mod guard;
mod inspect;
mod key;
mod lease;
mod lock;
mod memory;
pub mod observe;
mod options;
pub mod parse;
pub mod raw;
mod session_clock;
mod token;
mod watchdog;

pub use capabilities::{
    Capabilities, Expiry, Extend, Fairness, Fencing, Primitives, Scope, Support, Wakeup,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use ext::{Attempt, DistributedLockExt};
pub use fence::{FenceGate, StaleToken};
pub use guard::{Lease, LockGuard};
pub use inspect::{ForcedUnlock, Holder, Inspect, LockStatus};
pub use key::{validate_key, MAX_KEY_LEN};
pub use lease::LeaseHandle;
pub use lock::DistributedLock;
pub use memory::{MemoryLock, MemoryStore};
pub use observe::Instrumented;
pub use options::{validate_ttl, LockOptions, DEFAULT_TTL, MAX_TTL, MIN_TTL};
pub use token::{FencingToken, OwnerId};

/// Re-exported so backends and users name the same trait macro version.
pub use async_trait::async_trait;

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Error>();
    is::<LockGuard>();
    is::<LeaseHandle>();
    is::<MemoryLock>();
    is::<FenceGate>();
    is::<std::sync::Arc<dyn DistributedLock>>();
}
