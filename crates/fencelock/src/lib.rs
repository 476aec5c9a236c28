#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod blocking;
mod connect;
mod store;

pub use connect::{connect, inspector, open, SCHEMES};
pub use fencelock_core::*;
pub use store::Store;

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
