#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod acquire;
mod client;
mod config;
mod endpoints;
mod error;
mod grant;
mod inspect;
mod keys;
mod known_issues;
mod lease;
mod lock;
mod queue;
mod url;
mod watch;

#[allow(deprecated)]
pub use config::DEFAULT_LEASE_TTL;
pub use config::{
    EtcdLockBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POLL_INTERVAL, DEFAULT_REQUEST_TIMEOUT,
};
pub use etcd_client::{Certificate, Identity, TlsOptions};
pub use inspect::{HolderInfo, LockInfo};
pub use known_issues::stale_leader_revokes_leases;
pub use lock::EtcdLock;
