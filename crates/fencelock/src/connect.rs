//! `connect(url)`: pick a backend at run time.

use std::sync::Arc;

use fencelock_core::{DistributedLock, Error, Inspect, MemoryLock, Result};

use crate::Store;

/// Every URL scheme fencelock understands, with the cargo feature of this
/// crate each needs (a build without the feature names it when asked).
pub const SCHEMES: &[(&str, &str)] = &[
    ("memory", "(always on)"),
    ("file", "(always on)"),
    ("redis", "redis"),
    ("rediss", "redis"),
    ("redis+cluster", "redis"),
    ("rediss+cluster", "redis"),
    ("redis+sentinel", "redis"),
    ("rediss+sentinel", "redis"),
    ("redlock", "redis"),
    ("redlocks", "redis"),
    ("etcd", "etcd"),
    ("etcds", "etcd"),
    ("zk", "zookeeper"),
    ("zookeeper", "zookeeper"),
];

/// Whether this build has `feature` (the names in [`SCHEMES`]).
fn built(feature: &str) -> bool {
    let optional = [
        ("redis", cfg!(feature = "redis")),
        ("etcd", cfg!(feature = "etcd")),
        ("zookeeper", cfg!(feature = "zookeeper")),
    ];
    optional
        .iter()
        .find(|(name, _)| *name == feature)
        .is_none_or(|(_, on)| *on)
}

/// Connects to the lock service a URL names and returns it as a trait object.
///
/// | URL | backend | feature |
/// |---|---|---|
/// | `memory://` or `memory://name` | in-process store (one per name) | always on |
/// | `file:///dir`, or `file://` for a per-user default dir | advisory file locks on this host | always on |
/// | `redis://[user[:pw]@]host[:port][/db]`, `rediss://…` | Redis | `redis` |
/// | `redis+cluster://h:p,h:p,…`, `rediss+cluster://…` | Redis Cluster | `redis` |
/// | `etcd://[user[:pw]@]h:p[,h:p…][/prefix][?timeout=2s]`, `etcds://…` | etcd | `etcd` |
/// | `zk://[user:pw@]h:p[,h:p…][/chroot][?session_timeout=10s]`, `zookeeper://…` | ZooKeeper | `zookeeper` |
/// | `redis+sentinel://h:p,h:p,…/<master-name>[?wait_replicas=K]`, `rediss+sentinel://…` | Redis primary found and followed through Sentinel | `redis` |
/// | `redlock://h:p,h:p,h:p,…`, `redlocks://…` | Redlock over independent Redis servers | `redis` |
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig) for
/// a malformed URL or an unknown scheme, or a scheme whose cargo feature is
/// off (the message names the feature); connection errors from the backend.
pub async fn connect(url: &str) -> Result<Arc<dyn DistributedLock>> {
    open(url).await.map(|s| s.lock())
}

/// Connects to the lock service a URL names for inspection: the status of
/// a key, and listing where the backend can enumerate.
///
/// # Errors
///
/// As [`connect`];
/// [`ErrorKind::Unsupported`](fencelock_core::ErrorKind::Unsupported) for a
/// backend that cannot inspect.
pub async fn inspector(url: &str) -> Result<Arc<dyn Inspect>> {
    open(url).await?.inspector()
}

/// Opens the store a URL names (the forms of [`connect`]) once: one
/// connection, from which each primitive is taken.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fencelock::Result<()> {
/// let store = fencelock::open("memory://docs").await?;
/// let lock = store.lock();
/// let guard = lock.acquire("payment:42", &fencelock::LockOptions::new()).await?;
/// println!("{} holds it", store.capabilities().backend);
/// guard.release().await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As [`connect`].
pub async fn open(url: &str) -> Result<Store> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::invalid_config(format!(
            "{url:?} is not a lock URL: expected scheme://..., e.g. memory:// or redis://127.0.0.1:6379"
        )));
    };
    match scheme {
        "memory" if rest.contains(['?', '#']) => Err(Error::invalid_config(format!(
            "{url:?}: memory:// URLs take no options; the store's name is memory://<name>"
        ))),
        "memory" => Ok(Store::both(MemoryLock::named(rest.trim_end_matches('/')))),
        "file" => Ok(Store::both(fencelock_file::FileLock::from_url(url)?)),
        #[cfg(feature = "redis")]
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "redis+sentinel"
        | "rediss+sentinel" => Ok(Store::both(fencelock_redis::RedisLock::connect(url).await?)),
        #[cfg(feature = "redis")]
        "redlock" | "redlocks" => Ok(Store::lock_only(
            fencelock_redis::RedlockLock::connect(url).await?,
        )),
        #[cfg(feature = "etcd")]
        "etcd" | "etcds" => Ok(Store::both(fencelock_etcd::EtcdLock::connect(url).await?)),
        #[cfg(feature = "zookeeper")]
        "zk" | "zookeeper" => Ok(Store::both(
            fencelock_zookeeper::ZkLock::connect(url).await?,
        )),
        other => Err(unknown_scheme(other, built)),
    }
}

/// The error for a scheme this build cannot open; `built` says which
/// features the build has.
fn unknown_scheme(scheme: &str, built: fn(&str) -> bool) -> Error {
    if let Some((_, feature)) = SCHEMES.iter().find(|(s, f)| *s == scheme && !built(f)) {
        return Error::invalid_config(format!(
            "URL scheme {scheme:?} needs the cargo feature {feature:?} of the fencelock crate, which this build was made without (`full` has every backend)"
        ));
    }
    let known: Vec<&str> = SCHEMES
        .iter()
        .filter(|(_, f)| built(f))
        .map(|(s, _)| *s)
        .collect();
    Error::invalid_config(format!(
        "unknown URL scheme {scheme:?}; this build knows: {}",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[tokio::test]
    async fn one_store_hands_out_its_lock_and_inspector() {
        let store = open("memory://one-store").await.unwrap();
        let opts = fencelock_core::LockOptions::new();
        let g = store.lock().acquire("k", &opts).await.unwrap();
        let status = store.inspector().unwrap().status("k").await.unwrap();
        assert_eq!(status.holders.len(), 1, "{status:?}");
        assert!(store
            .clone()
            .lock()
            .try_acquire("k", &opts)
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.capabilities().backend, "memory");
        g.release().await.unwrap();
    }

    #[tokio::test]
    async fn memory_urls_share_a_store_by_name() {
        let a = connect("memory://shared").await.unwrap();
        let b = connect("memory://shared").await.unwrap();
        let c = connect("memory://other").await.unwrap();
        let opts = fencelock_core::LockOptions::new();
        let g = a.try_acquire("k", &opts).await.unwrap().unwrap();
        assert!(b.try_acquire("k", &opts).await.unwrap().is_none());
        let h = c.try_acquire("k", &opts).await.unwrap().unwrap();
        g.release().await.unwrap();
        h.release().await.unwrap();
    }

    /// Runs in a build without the `etcd` and `zookeeper` features (this
    /// crate's default, as `cargo test -p fencelock` builds it).
    #[cfg(not(any(feature = "etcd", feature = "zookeeper")))]
    #[tokio::test]
    async fn a_scheme_without_its_feature_names_the_feature() {
        for (url, feature) in [
            ("etcd://127.0.0.1:2379", "etcd"),
            ("etcds://127.0.0.1:2379", "etcd"),
            ("zk://127.0.0.1:2181", "zookeeper"),
            ("zookeeper://127.0.0.1:2181", "zookeeper"),
        ] {
            let e = connect(url).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(
                e.message().contains(&format!("cargo feature {feature:?}")),
                "{url}: {e}"
            );
        }
        let e = connect("nope://x").await.unwrap_err();
        assert!(!e.message().contains("etcd"), "{e}");
        assert!(!e.message().contains("zk"), "{e}");
    }

    #[test]
    fn missing_features_are_named_and_never_offered() {
        let only_redis = |f: &str| f != "etcd" && f != "zookeeper";
        let e = unknown_scheme("etcd", only_redis);
        assert!(e.message().contains("cargo feature \"etcd\""), "{e}");
        let e = unknown_scheme("zk", only_redis);
        assert!(e.message().contains("cargo feature \"zookeeper\""), "{e}");
        let e = unknown_scheme("nope", only_redis);
        assert!(e.message().contains("redis+cluster"), "{e}");
        assert!(
            !e.message().contains("etcd") && !e.message().contains("zk"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn bad_urls_are_config_errors() {
        for url in [
            "",
            "memory",
            "nope://x",
            "127.0.0.1:6379",
            "memory://a?prefx=1",
            "file:///tmp/x?prefx=1",
            "file:///tmp/x#y",
        ] {
            let e = connect(url).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
    }
}
