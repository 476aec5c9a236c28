//! Where the client connects: one server, a Cluster's seed nodes, or the
//! Sentinels that name a primary; each as the node URLs redis-rs reads.

use std::fmt;
use std::time::Duration;

use fencelock_core::raw::url::redact;

/// How the client reaches Redis.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server (`redis://` or `rediss://`).
    Single(String),
    /// A Redis Cluster, through these seed nodes (each a `redis://` or `rediss://` URL).
    Cluster(Vec<String>),
    /// A primary found (and followed) through Redis Sentinel.
    Sentinel(SentinelSpec),
}

impl Target {
    /// Whether every node URL is `rediss://`.
    pub(crate) fn uses_tls(&self) -> bool {
        let tls = |u: &str| u.to_ascii_lowercase().starts_with("rediss://");
        match self {
            Target::Single(url) => tls(url),
            Target::Cluster(nodes) => nodes.iter().all(|n| tls(n)),
            Target::Sentinel(spec) => spec.scheme == "rediss",
        }
    }
}

/// Where the Sentinels are and how to reach the primary they name.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelSpec {
    /// The Sentinels, each a `redis://host:port` (or `rediss://`) URL.
    pub(crate) sentinels: Vec<String>,
    /// The master name the Sentinels monitor.
    pub(crate) master: String,
    /// `redis` or `rediss`, for the data nodes.
    pub(crate) scheme: String,
    /// `user:password@` (or empty), percent-encoded, for the data nodes.
    pub(crate) userinfo: String,
    /// `/db`, `?options` and `#fragment` for the data nodes (may be empty).
    pub(crate) tail: String,
}

impl SentinelSpec {
    /// The URL of the data node at `host:port`.
    pub(crate) fn node_url(&self, host: &str, port: u16) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme,
            self.userinfo,
            host_port(host, port),
            self.tail
        )
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `WAIT K timeout` after every grant: the grant counts only once `K`
/// replicas acknowledged the lock write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitReplicas {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Single(url) => write!(f, "Single({:?})", redact(url)),
            Target::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redact(n)).collect::<Vec<_>>())
                .finish(),
            Target::Sentinel(spec) => f.debug_tuple("Sentinel").field(spec).finish(),
        }
    }
}

impl fmt::Debug for SentinelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelSpec")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("node", &redact(&self.node_url("<primary>", 0)))
            .finish()
    }
}
