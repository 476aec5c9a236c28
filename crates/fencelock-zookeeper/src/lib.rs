#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod acquire;
mod address;
mod config;
mod connect;
mod create;
mod error;
mod grant;
mod inspect;
mod key;
mod lock;
mod pending;
mod session;
mod sessions;
mod url;

pub use address::DEFAULT_PORT;
pub use config::{
    ZkLockBuilder, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_PREFIX, DEFAULT_ROOT,
    DEFAULT_SESSION_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use key::{escape_key, unescape_key, LOCK_NAME, PROTECTED_PREFIX};
pub use lock::ZkLock;
pub use sessions::MAX_TTL_SESSIONS;
