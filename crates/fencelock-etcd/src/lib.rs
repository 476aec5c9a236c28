#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod endpoints;
mod error;
mod grant;
mod inspect;
mod keys;
mod known_issues;
mod lock;
mod session;
mod watch;

pub use config::{
    EtcdLockBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LEASE_TTL, DEFAULT_POLL_INTERVAL,
    DEFAULT_REQUEST_TIMEOUT,
};
pub use etcd_client::{Certificate, Identity, TlsOptions};
pub use known_issues::stale_leader_revokes_leases;
pub use lock::{EtcdLock, HolderInfo, LockInfo};
