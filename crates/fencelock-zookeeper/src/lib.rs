#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod grant;
mod inspect;
mod key;
mod lock;
mod session;

pub use config::{
    ZkLockBuilder, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, DEFAULT_ROOT,
    DEFAULT_SESSION_TIMEOUT,
};
pub use key::{escape_key, unescape_key, LOCK_NAME, PROTECTED_PREFIX};
pub use lock::ZkLock;
