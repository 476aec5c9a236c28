#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batcher;
mod client;
mod config;
mod conn;
mod dial;
mod error;
mod grant;
mod inspect;
mod keys;
mod lock;
mod pending;
mod redlock;
mod scripts;
mod sentinel;
mod subscriber;
mod unreplicated;

pub use config::{
    RedisLockBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDOFF_WINDOW, DEFAULT_MAX_RECHECK,
    DEFAULT_RENEW_BATCH_MAX, DEFAULT_RENEW_BATCH_WINDOW, DEFAULT_RESPONSE_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
};
pub use inspect::LockInfo;
pub use keys::DEFAULT_PREFIX;
pub use lock::RedisLock;
pub use redlock::{RedlockLock, RedlockLockBuilder, DEFAULT_NODE_TIMEOUT, DEFAULT_RETRY_JITTER};
pub use unreplicated::{Unreplicated, UNREPLICATED_PATIENCE};

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<RedisLock>();
    is::<RedisLockBuilder>();
    is::<RedlockLock>();
    is::<RedlockLockBuilder>();
}
