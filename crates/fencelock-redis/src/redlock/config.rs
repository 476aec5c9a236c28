//! The Redlock builder: `redlock://h1:p1,h2:p2,…` URLs and settings.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use fencelock_core::{Error, Result};

use fencelock_core::raw::url::{redact, StoreUrl};

use crate::config::{
    check_node_url, duration_or_millis, CaSource, Common, NodeParts, RedisLockBuilder, Target,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RECHECK, DEFAULT_RESPONSE_TIMEOUT,
};
use crate::keys::{validate_prefix, DEFAULT_PREFIX};

#[cfg(doc)]
use super::RedlockLock;

/// Default bound on one request to one node (the acquire script, a
/// renewal, a release). Redlock wants it far below the TTL; it is further
/// capped at a tenth of each acquire's TTL.
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_millis(200);
/// Default upper bound of the random pause after a split vote (no majority
/// for anyone) before trying again.
pub const DEFAULT_RETRY_JITTER: Duration = Duration::from_millis(30);

/// Builds a [`RedlockLock`]: start from [`RedlockLockBuilder::from_url`] or
/// [`RedlockLockBuilder::from_nodes`], adjust with the `with_*` setters,
/// finish with [`build`](RedlockLockBuilder::build).
///
/// URL: `redlock://[user[:password]@]host:port,host:port,…[/db]` (or
/// `redlocks://…` for TLS): N independent Redis servers (not replicas of
/// each other, not a Cluster), sharing one user name and password.
/// Options: `prefix`, `node_timeout` (default `200ms`), `connect_timeout`
/// (default `3s`), `timeout` (how long an acquire keeps asking while too
/// few nodes answer, default `3s`), `max_recheck` (default `2s`), and for
/// `redlocks://` `ca_file` (as [`RedisLockBuilder::with_tls_ca_file`]);
/// `protocol` and a `#fragment` go to redis-rs for every node. Any other
/// option is `InvalidConfig`; the old spellings `node_timeout_ms`,
/// `connect_timeout_ms`, `response_timeout_ms` and `max_recheck_ms` (plain
/// milliseconds) are still read, with a deprecation warning.
///
/// `Debug` never prints a password.
#[derive(Clone)]
pub struct RedlockLockBuilder {
    pub(crate) nodes: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) node_timeout: Duration,
    pub(crate) budget: Duration,
    pub(crate) max_recheck: Duration,
    pub(crate) retry_jitter: Duration,
    pub(crate) tls_ca: Option<CaSource>,
}

impl RedlockLockBuilder {
    fn with_nodes(nodes: Vec<String>) -> Self {
        RedlockLockBuilder {
            nodes,
            prefix: DEFAULT_PREFIX.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            node_timeout: DEFAULT_NODE_TIMEOUT,
            budget: DEFAULT_RESPONSE_TIMEOUT,
            max_recheck: DEFAULT_MAX_RECHECK,
            retry_jitter: DEFAULT_RETRY_JITTER,
            tls_ca: None,
        }
    }

    /// A builder from a `redlock://` URL (see the type's docs).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong. No network call is made.
    pub fn from_url(url: &str) -> Result<Self> {
        let mut u = StoreUrl::parse(url, "Redlock", &["redlock", "redlocks"])?;
        let node_scheme = if u.scheme == "redlocks" {
            "rediss"
        } else {
            "redis"
        };
        let common = Common::read(&mut u.options, &u.scheme)?;
        let o = &mut u.options;
        let node_timeout = duration_or_millis(o, "node_timeout", "node_timeout_ms")?;
        let max_recheck = duration_or_millis(o, "max_recheck", "max_recheck_ms")?;
        for (name, why) in [
            (
                "wait_replicas",
                "its nodes are independent servers, not replicas",
            ),
            (
                "wait_timeout",
                "its nodes are independent servers, not replicas",
            ),
            (
                "wait_timeout_ms",
                "its nodes are independent servers, not replicas",
            ),
            ("handoff_window", "its waiters do not queue"),
            ("handoff_window_ms", "its waiters do not queue"),
        ] {
            if o.has(name) {
                return Err(o.error(name, format!("does not apply to Redlock: {why}")));
            }
        }
        let parts = NodeParts::take(&mut u, node_scheme);
        let StoreUrl {
            hosts,
            path,
            options,
            ..
        } = u;
        options.finish()?;
        let nodes: Vec<String> = hosts
            .iter()
            .map(|h| parts.url(h, path.as_deref()))
            .collect();
        for node in &nodes {
            check_node_url(node)?;
        }
        let mut b = Self::with_nodes(nodes);
        if let Some(p) = common.prefix {
            b.prefix = p;
        }
        if let Some(t) = common.connect_timeout {
            b.connect_timeout = t;
        }
        if let Some(t) = common.timeout {
            b.budget = t;
        }
        b.tls_ca = common.ca_file.map(CaSource::File);
        if let Some(t) = node_timeout {
            b = b.with_node_timeout(t);
        }
        if let Some(t) = max_recheck {
            b = b.with_max_recheck_interval(t);
        }
        Ok(b)
    }

    /// A builder from node URLs (`redis://host:port` or `rediss://…` each).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// when the list is empty or a URL is malformed.
    pub fn from_nodes<I, S>(nodes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        if nodes.is_empty() {
            return Err(Error::invalid_config("Redlock needs at least one node"));
        }
        let checked = RedisLockBuilder::from_cluster_nodes(nodes.clone())?;
        drop(checked);
        Ok(Self::with_nodes(nodes))
    }

    /// The prefix of every Redis key and channel (default `fencelock`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on connecting to each node (default 3 s). Nodes are
    /// connected concurrently; [`build`](Self::build) needs a majority.
    /// Nodes that could not be reached are retried in the background.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on one request to one node (default 200 ms; each acquire
    /// further caps it at a tenth of its TTL). A node that does not answer
    /// in time counts as not granting.
    #[must_use]
    pub fn with_node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// The longest a waiter sleeps between two attempts without a wake-up
    /// message (default 2 s).
    #[must_use]
    pub fn with_max_recheck_interval(mut self, every: Duration) -> Self {
        self.max_recheck = every;
        self
    }

    /// The upper bound of the random pause after a split vote (default
    /// 30 ms): contenders that each got a minority give back and retry at
    /// different times, so that one of them wins.
    #[must_use]
    pub fn with_retry_jitter(mut self, jitter: Duration) -> Self {
        self.retry_jitter = jitter;
        self
    }

    /// Verifies every node's TLS certificate against the CA certificate(s)
    /// in this PEM file (needs `rediss://` nodes); as
    /// [`RedisLockBuilder::with_tls_ca_file`].
    #[must_use]
    pub fn with_tls_ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.tls_ca = Some(CaSource::File(path.as_ref().to_path_buf()));
        self
    }

    /// As [`with_tls_ca_file`](Self::with_tls_ca_file), with the PEM bytes
    /// given directly.
    #[must_use]
    pub fn with_tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_prefix(&self.prefix)?;
        if self.tls_ca.is_some() {
            // Checked here, so that a bad CA is a config error and not "no majority reachable".
            for i in 0..self.nodes.len() {
                self.node(i).validate()?;
            }
            if let Some(ca) = &self.tls_ca {
                ca.load()?;
            }
        }
        for (name, d) in [
            ("connect timeout", self.connect_timeout),
            ("node timeout", self.node_timeout),
            ("max re-check interval", self.max_recheck),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_config(format!(
                    "the {name} must be above zero"
                )));
            }
        }
        Ok(())
    }

    /// The single-server builder of node `i`.
    pub(crate) fn node(&self, i: usize) -> RedisLockBuilder {
        let mut b = RedisLockBuilder::with_target(Target::Single(self.nodes[i].clone()))
            .with_prefix(self.prefix.clone())
            .with_connect_timeout(self.connect_timeout)
            .with_response_timeout(self.node_timeout)
            .with_max_recheck_interval(self.max_recheck);
        b.tls_ca = self.tls_ca.clone();
        b
    }
}

impl fmt::Debug for RedlockLockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedlockLockBuilder")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| redact(n)).collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("node_timeout", &self.node_timeout)
            .field("max_recheck", &self.max_recheck)
            .field("retry_jitter", &self.retry_jitter)
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn urls_parse_into_nodes() {
        let b = RedlockLockBuilder::from_url(
            "redlock://u:pw@127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002/2?prefix=app&node_timeout=50ms",
        )
        .unwrap();
        assert_eq!(
            b.nodes,
            vec![
                "redis://u:pw@127.0.0.1:7000/2",
                "redis://u:pw@127.0.0.1:7001/2",
                "redis://u:pw@127.0.0.1:7002/2"
            ]
        );
        assert_eq!(b.prefix, "app");
        assert_eq!(b.node_timeout, Duration::from_millis(50));
        assert!(!format!("{b:?}").contains("pw@"));
        let b = RedlockLockBuilder::from_url("redlocks://h:1").unwrap();
        assert_eq!(b.nodes, vec!["rediss://h:1"]);
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in [
            "redis://h:1",
            "redlock://",
            "redlock://a:1,,b:2",
            "redlock://a:1?node_timeout_ms=x",
            "redlock://a:1?node_timeout=x",
            "redlock://a:1?wait_replicas=1",
            "redlock://a:1?handoff_window=0",
            "redlock://a:1?ca_file=/ca.pem",
            "redlock://a:x",
        ] {
            let e = RedlockLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
        assert!(RedlockLockBuilder::from_nodes(Vec::<String>::new()).is_err());
        assert!(RedlockLockBuilder::from_url("redlock://h:1?prefix=a{b")
            .unwrap()
            .validate()
            .is_err());
    }

    #[test]
    fn the_vocabulary_and_its_old_spellings() {
        let b = RedlockLockBuilder::from_url(
            "redlocks://h:1,h:2,h:3?prefix=p&connect_timeout=1s&timeout=2s&node_timeout=30ms\
             &max_recheck=500ms&ca_file=/ca.pem&protocol=resp3",
        )
        .unwrap();
        assert_eq!(b.nodes[0], "rediss://h:1?protocol=resp3");
        assert_eq!(b.prefix, "p");
        assert_eq!(b.connect_timeout, Duration::from_secs(1));
        assert_eq!(b.budget, Duration::from_secs(2));
        assert_eq!(b.node_timeout, Duration::from_millis(30));
        assert_eq!(b.max_recheck, Duration::from_millis(500));
        assert!(b.tls_ca.is_some());
        let old = RedlockLockBuilder::from_url(
            "redlock://h:1?connect_timeout_ms=1000&response_timeout_ms=2000&node_timeout_ms=30\
             &max_recheck_ms=500",
        )
        .unwrap();
        assert_eq!(
            (
                old.connect_timeout,
                old.budget,
                old.node_timeout,
                old.max_recheck
            ),
            (b.connect_timeout, b.budget, b.node_timeout, b.max_recheck)
        );
        for url in [
            "redlock://h:1?node_timeout=1s&node_timeout_ms=1000",
            "redlock://h:1?max_recheck=1s&max_recheck_ms=1000",
        ] {
            let e = RedlockLockBuilder::from_url(url).unwrap_err();
            assert!(e.to_string().contains("old spelling"), "{e}");
        }
        let e = RedlockLockBuilder::from_url("redlock://u:secret@h:1?node_timout=1s").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown option \"node_timout\""), "{msg}");
        assert!(
            msg.contains(
                "known options: ca_file, connect_timeout, max_recheck, node_timeout, prefix, \
                 protocol, timeout"
            ),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
    }
}
