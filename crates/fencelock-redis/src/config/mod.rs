//! The builder of a Redis client: where it connects (`target`), from a URL
//! (`url`), with what TLS roots (`tls`), and its settings.

mod target;
#[cfg(test)]
mod tests;
mod tls;
mod url;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use fencelock_core::raw::url::redact;
use fencelock_core::{Error, Result};

use crate::keys::{validate_prefix, DEFAULT_PREFIX};

pub(crate) use target::{host_port, SentinelSpec, Target, WaitReplicas};
pub(crate) use tls::CaSource;
pub(crate) use url::{check_node_url, duration_or_millis, Common, NodeParts};

/// Default bound on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default bound on every store call.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default cap on a waiter's safety-net re-check.
pub const DEFAULT_MAX_RECHECK: Duration = Duration::from_secs(2);
/// Default window in which renewals are gathered into one pipeline.
pub const DEFAULT_RENEW_BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Default most renewals in one pipeline.
pub const DEFAULT_RENEW_BATCH_MAX: usize = 512;

/// Default hand-off window: how long a release keeps the free lock for the
/// waiter it hands over to ([`RedisLockBuilder::with_handoff_window`]).
pub const DEFAULT_HANDOFF_WINDOW: Duration = Duration::from_millis(200);

/// Default bound on `WAIT` for [`RedisLockBuilder::with_wait_replicas`].
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(500);

/// Builds a [`RedisLock`](crate::RedisLock). Start from [`RedisLockBuilder::from_url`] (or
/// [`RedisLockBuilder::from_cluster_nodes`]), adjust with the `with_*`
/// setters, finish with [`build`](RedisLockBuilder::build).
///
/// URL forms (the crate's README has the full table):
///
/// - `redis://[user[:password]@]host[:port][/db]`: one server, plain TCP;
/// - `rediss://...`: the same over TLS;
/// - `redis+cluster://[user[:password]@]host:port,host:port,...`: a Redis
///   Cluster, given by seed nodes (`rediss+cluster://` for TLS);
/// - `redis+sentinel://host:port,.../<master-name>[/db]`: the primary the
///   Sentinels name (`rediss+sentinel://` for TLS).
///
/// Options: `prefix`, `connect_timeout`, `timeout` (one store call),
/// `wait_replicas`, `wait_timeout`, `handoff_window`, `ca_file` (TLS
/// only); durations are written `500ms`, `3s`. `protocol` and a
/// `#fragment` are handed on to redis-rs. Any other option is
/// `InvalidConfig` naming it and the known ones. The old spellings
/// `connect_timeout_ms`, `response_timeout_ms`, `wait_timeout_ms` and
/// `handoff_window_ms` (plain milliseconds) are still read, with a
/// deprecation warning.
///
/// `Debug` never prints a password.
#[derive(Clone)]
pub struct RedisLockBuilder {
    pub(crate) target: Target,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_recheck: Duration,
    pub(crate) handoff_window: Duration,
    pub(crate) renew_batch_window: Duration,
    pub(crate) renew_batch_max: usize,
    pub(crate) wait_replicas: Option<WaitReplicas>,
    pub(crate) tls_ca: Option<CaSource>,
}

impl RedisLockBuilder {
    pub(crate) fn with_target(target: Target) -> Self {
        RedisLockBuilder {
            target,
            prefix: DEFAULT_PREFIX.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_recheck: DEFAULT_MAX_RECHECK,
            handoff_window: DEFAULT_HANDOFF_WINDOW,
            renew_batch_window: DEFAULT_RENEW_BATCH_WINDOW,
            renew_batch_max: DEFAULT_RENEW_BATCH_MAX,
            wait_replicas: None,
            tls_ca: None,
        }
    }

    /// A builder from a URL (see the type's docs for the forms).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong with the URL. No network call is made.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = url::parse(url)?;
        let mut b = Self::with_target(parsed.target).with_common(parsed.common);
        if let Some(k) = parsed.wait_replicas {
            b = b.with_wait_replicas(k, parsed.wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT));
        }
        if let Some(w) = parsed.handoff_window {
            b.handoff_window = w;
        }
        Ok(b)
    }

    /// Applies the options every URL form shares.
    pub(crate) fn with_common(mut self, c: Common) -> Self {
        if let Some(p) = c.prefix {
            self.prefix = p;
        }
        if let Some(t) = c.connect_timeout {
            self.connect_timeout = t;
        }
        if let Some(t) = c.timeout {
            self.response_timeout = t;
        }
        if let Some(path) = c.ca_file {
            self.tls_ca = Some(CaSource::File(path));
        }
        self
    }

    /// A builder for a primary found through Redis Sentinel: `sentinels`
    /// are `host:port` addresses of Sentinels monitoring `master`. The
    /// primary is reached as `redis://host:port` without a password; use
    /// [`from_url`](Self::from_url) with `redis+sentinel://user:pw@…` for one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// when the list or the name is empty or an address is malformed.
    pub fn from_sentinels<I, S>(sentinels: I, master: &str) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hosts: Vec<String> = sentinels
            .into_iter()
            .map(|s| s.as_ref().trim().to_string())
            .collect();
        if hosts.is_empty() || hosts.iter().any(String::is_empty) {
            return Err(Error::invalid_config(format!(
                "Sentinels {hosts:?}: Sentinel needs at least one host:port"
            )));
        }
        let url = format!(
            "redis+sentinel://{}/{}",
            hosts.join(","),
            url::encode(master)
        );
        let b = Self::from_url(&url)?;
        if !b.is_sentinel() {
            return Err(Error::invalid_config(format!("{url:?} names no Sentinel")));
        }
        Ok(b)
    }

    /// Counts a grant only once `replicas` replicas acknowledged the lock
    /// write (`WAIT replicas timeout` right after the acquire script, on the
    /// same connection, as Redisson's `checkLockSyncedSlaves`). A grant
    /// fewer replicas acknowledged within `timeout` is given back and the
    /// attempt fails with `ErrorKind::Backend` whose source is an
    /// [`Unreplicated`](crate::Unreplicated); `acquire` asks again within its
    /// wait bound before it returns that error. URL: `wait_replicas=K`,
    /// `wait_timeout=T` (default `500ms`). `0` turns it off.
    ///
    /// It narrows, not closes, the failover window: see the crate docs
    /// ("Sentinel").
    #[must_use]
    pub fn with_wait_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait_replicas = (replicas > 0).then_some(WaitReplicas { replicas, timeout });
        self
    }

    /// A builder for a Redis Cluster given by seed node URLs
    /// (`redis://host:port` or `rediss://host:port` each, sharing one user
    /// name and password).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// when the list is empty or a URL is malformed.
    pub fn from_cluster_nodes<I, S>(nodes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        if nodes.is_empty() {
            return Err(Error::invalid_config(
                "a Redis Cluster needs at least one seed node",
            ));
        }
        for node in &nodes {
            check_node_url(node)?;
        }
        Ok(Self::with_target(Target::Cluster(nodes)))
    }

    /// Treats the URL(s) given so far as seeds of a Redis Cluster (`true`) or
    /// as one standalone server (`false`; only possible with a single URL).
    #[must_use]
    pub fn with_cluster(mut self, cluster: bool) -> Self {
        self.target = match (self.target, cluster) {
            (Target::Single(url), true) => Target::Cluster(vec![url]),
            (Target::Cluster(mut nodes), false) if nodes.len() == 1 => {
                Target::Single(nodes.remove(0))
            }
            (t, _) => t,
        };
        self
    }

    /// The prefix of every Redis key and channel (default `fencelock`). It
    /// must not be empty or hold braces, whitespace or control characters;
    /// [`build`](Self::build) checks.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on establishing a connection (default 3 s). URL:
    /// `connect_timeout=3s`.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on every store call (default 3 s). URL: `timeout=3s`.
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The longest a waiter sleeps between two attempts when no wake-up
    /// message arrives (default 2 s). Waiters are woken by pub/sub; this is
    /// the safety net against a lost message. A waiter re-checks at the
    /// holder's remaining TTL or after this interval, whichever is first.
    #[must_use]
    pub fn with_max_recheck_interval(mut self, every: Duration) -> Self {
        self.max_recheck = every;
        self
    }

    /// How long a release keeps the free lock for the waiter it hands over
    /// to (default 200 ms). A release names the waiter that queued first
    /// among the live ones; for this window only that waiter may take the
    /// lock, so that a client that releases and asks again at once does not
    /// take it back from waiters queued before it (no starvation). When the
    /// named waiter is gone or slow, the window lapses and anyone may take
    /// the lock. Zero names the waiter but reserves nothing (the lock is then
    /// unfair: a releasing client that asks again at once mostly wins). At
    /// most 1 minute. URL: `handoff_window=T`.
    #[must_use]
    pub fn with_handoff_window(mut self, window: Duration) -> Self {
        self.handoff_window = window;
        self
    }

    /// How long the renewal batcher gathers renewals before sending them as
    /// one pipeline (default 2 ms). Zero sends whatever is queued at once.
    #[must_use]
    pub fn with_renew_batch_window(mut self, window: Duration) -> Self {
        self.renew_batch_window = window;
        self
    }

    /// The most renewals in one pipeline (default 512).
    #[must_use]
    pub fn with_renew_batch_max(mut self, max: usize) -> Self {
        self.renew_batch_max = max;
        self
    }

    /// Verifies the server's TLS certificate against the CA certificate(s)
    /// in this PEM file instead of the public webpki roots (a private CA).
    /// It applies to every connection the client makes: the command
    /// connection, the pub/sub subscriber, every Cluster node, the
    /// Sentinels and the primary they name. Needs a `rediss` URL. The file
    /// is read by [`build`](Self::build). URL: `?ca_file=/path/ca.pem`
    /// (percent-encode special characters).
    ///
    /// The host name in the URL must still match the certificate (an IP
    /// address needs an IP subject alternative name).
    #[must_use]
    pub fn with_tls_ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.tls_ca = Some(CaSource::File(path.as_ref().to_path_buf()));
        self
    }

    /// As [`with_tls_ca_file`](Self::with_tls_ca_file), with the PEM
    /// bytes of the CA certificate(s) given directly.
    #[must_use]
    pub fn with_tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// Whether this builder targets a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Whether this builder finds its primary through Redis Sentinel.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel(_))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_prefix(&self.prefix)?;
        if self.tls_ca.is_some() && !self.uses_tls() {
            return Err(Error::invalid_config(
                "a TLS CA certificate was given but the URL is not TLS: use rediss://, rediss+cluster:// or \
                 rediss+sentinel://",
            ));
        }
        if let Some(w) = self.wait_replicas {
            if self.is_cluster() {
                return Err(Error::invalid_config(
                    "wait_replicas is not supported on a Redis Cluster",
                ));
            }
            if w.timeout.is_zero() {
                return Err(Error::invalid_config(
                    "the WAIT timeout must be above zero (WAIT with 0 blocks forever)",
                ));
            }
        }
        if self.handoff_window > Duration::from_secs(60) {
            return Err(Error::invalid_config(format!(
                "the hand-off window {:?} is above 1 minute: a dead waiter would keep the lock that long",
                self.handoff_window
            )));
        }
        for (name, d) in [
            ("connect timeout", self.connect_timeout),
            ("response timeout", self.response_timeout),
            ("max re-check interval", self.max_recheck),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_config(format!(
                    "the {name} must be above zero"
                )));
            }
        }
        if self.renew_batch_max == 0 {
            return Err(Error::invalid_config(
                "the renew batch size must be at least 1",
            ));
        }
        Ok(())
    }

    /// Whether the target's URLs are `rediss://`.
    fn uses_tls(&self) -> bool {
        self.target.uses_tls()
    }

    /// The TLS certificates every client of this builder is made with, or
    /// `None` for redis-rs's defaults (webpki roots).
    pub(crate) fn tls_certs(&self) -> Result<Option<redis::TlsCertificates>> {
        self.tls_ca.as_ref().map(CaSource::load).transpose()
    }
}

impl fmt::Debug for RedisLockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RedisLockBuilder");
        match &self.target {
            Target::Single(url) => d.field("url", &redact(url)),
            Target::Cluster(nodes) => d.field(
                "cluster_nodes",
                &nodes.iter().map(|n| redact(n)).collect::<Vec<_>>(),
            ),
            Target::Sentinel(spec) => d.field("sentinel", spec),
        };
        d.field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_recheck", &self.max_recheck)
            .field("handoff_window", &self.handoff_window)
            .field("renew_batch_window", &self.renew_batch_window)
            .field("renew_batch_max", &self.renew_batch_max)
            .field("wait_replicas", &self.wait_replicas)
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}
