//! # fencelock
//!
//! Distributed locks with fencing tokens behind one trait,
//! [`DistributedLock`], on several stores. Pick a backend by cargo feature,
//! or at run time by URL with [`connect`].
//!
//! | feature | backend | URL schemes |
//! |---|---|---|
//! | (always) | in-process memory store | `memory://[name]` |
//! | (always) | advisory file locks on one host ([`mod@file`] module) | `file:///dir` |
//! | `redis` | Redis, Redis Cluster ([`redis`] module) | `redis://`, `rediss://`, `redis+cluster://` |
//! | `etcd` | etcd ([`etcd`] module) | `etcd://`, `etcds://` |
//! | `zookeeper` | ZooKeeper ([`zookeeper`] module) | `zk://`, `zookeeper://` |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> fencelock::Result<()> {
//! use std::time::Duration;
//! use fencelock::{DistributedLockExt, LockOptions};
//!
//! let lock = fencelock::connect("memory://").await?;
//! let opts = LockOptions::new().with_ttl(Duration::from_secs(5));
//! let token = lock.with_lock("paymentConfirm:PK-1", &opts, |lease| async move {
//!     lease.token() // pass it to the resource you write to
//! }).await?;
//! println!("confirmed under token {token}");
//! # Ok(()) }
//! ```
//!
//! The blocking API is in [`blocking`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod blocking;
mod connect;

pub use connect::{connect, inspector, SCHEMES};
pub use fencelock_core::*;

/// The no-server backend on advisory file locks.
pub use fencelock_file as file;

/// The Redis backend (feature `redis`).
#[cfg(feature = "redis")]
pub use fencelock_redis as redis;

/// The etcd backend (feature `etcd`).
#[cfg(feature = "etcd")]
pub use fencelock_etcd as etcd;

/// The ZooKeeper backend (feature `zookeeper`).
#[cfg(feature = "zookeeper")]
pub use fencelock_zookeeper as zookeeper;
