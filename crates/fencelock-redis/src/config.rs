//! The builder: URLs, timeouts, key prefix, and the Debug that hides passwords.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fencelock_core::{Error, Result};

use crate::keys::{validate_prefix, DEFAULT_PREFIX};
use crate::RedisLock;

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

/// Where the Sentinels are and how to reach the primary they name.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelSpec {
    /// The Sentinels, each a `redis://host:port` (or `rediss://`) URL.
    pub(crate) sentinels: Vec<String>,
    /// The master name the Sentinels monitor.
    pub(crate) master: String,
    /// `redis` or `rediss`, for the data nodes.
    pub(crate) scheme: String,
    /// `user:password@` (or empty) for the data nodes.
    pub(crate) userinfo: String,
    /// `/db` and `?query` for the data nodes (may be empty).
    pub(crate) tail: String,
}

impl SentinelSpec {
    /// The URL of the data node at `host:port`.
    pub(crate) fn node_url(&self, host: &str, port: u16) -> String {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        format!(
            "{}://{}{host}:{port}{}",
            self.scheme, self.userinfo, self.tail
        )
    }
}

/// Where the CA certificate(s) that verify the server come from.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CaSource {
    /// A PEM file, read at [`RedisLockBuilder::build`].
    File(PathBuf),
    /// PEM bytes given directly.
    Pem(Vec<u8>),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::File(p) => f.debug_tuple("File").field(p).finish(),
            CaSource::Pem(b) => write!(f, "Pem(<{} bytes>)", b.len()),
        }
    }
}

impl CaSource {
    /// The root certificates for redis-rs, checked: the PEM must hold at
    /// least one certificate that rustls accepts as a trust anchor.
    pub(crate) fn load(&self) -> Result<redis::TlsCertificates> {
        let (what, pem) = match self {
            CaSource::File(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::invalid_config(format!(
                        "cannot read the TLS CA file {}: {e}",
                        path.display()
                    ))
                })?;
                (format!("the TLS CA file {}", path.display()), pem)
            }
            CaSource::Pem(pem) => ("the TLS CA PEM".to_string(), pem.clone()),
        };
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::invalid_config(format!(
                "{what} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)"
            )));
        }
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        // redis-rs parses the PEM into a root store here; a malformed one fails now, not at connect.
        redis::Client::build_with_tls("rediss://127.0.0.1:6379", certs.clone()).map_err(|e| {
            Error::invalid_config(format!("{what} is not a usable CA certificate: {e}"))
                .with_source(e)
        })?;
        Ok(certs)
    }
}

/// `WAIT K timeout` after every grant: the grant counts only once `K`
/// replicas acknowledged the lock write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitReplicas {
    pub(crate) replicas: usize,
    pub(crate) timeout: Duration,
}

/// Default hand-off window: how long a release keeps the free lock for the
/// waiter it hands over to ([`RedisLockBuilder::with_handoff_window`]).
pub const DEFAULT_HANDOFF_WINDOW: Duration = Duration::from_millis(200);

/// Default bound on `WAIT` for [`RedisLockBuilder::with_wait_replicas`].
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_millis(500);

/// Builds a [`RedisLock`]. Start from [`RedisLockBuilder::from_url`] (or
/// [`RedisLockBuilder::from_cluster_nodes`]), adjust with the `with_*`
/// setters, finish with [`build`](RedisLockBuilder::build).
///
/// URL forms:
///
/// - `redis://[user[:password]@]host[:port][/db]`: one server, plain TCP;
/// - `rediss://...`: the same over TLS;
/// - `redis+cluster://[user[:password]@]host:port,host:port,...`: a Redis
///   Cluster, given by seed nodes (`rediss+cluster://` for TLS).
///
/// Query parameters read by fencelock (and removed before the URL reaches
/// redis-rs): `prefix` (the key prefix, default `fencelock`),
/// `connect_timeout_ms`, `response_timeout_ms`, `handoff_window_ms` (see
/// [`with_handoff_window`](Self::with_handoff_window)), and for TLS `ca_file` (a
/// PEM file of the CA certificate(s) that verify the server instead of the
/// public webpki roots; see [`with_tls_ca_file`](Self::with_tls_ca_file)).
/// Others (e.g. `protocol=resp3`) pass through to redis-rs, and so does a
/// `#fragment`.
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
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::invalid_config(format!(
                "{:?} is not a Redis URL: expected redis://host:port, rediss://host:port or redis+cluster://host:port,host:port",
                redact(url)
            ))
        })?;
        let (node_scheme, cluster, sentinel) = match scheme.to_ascii_lowercase().as_str() {
            "redis" => ("redis", false, false),
            "rediss" => ("rediss", false, false),
            "redis+cluster" => ("redis", true, false),
            "rediss+cluster" => ("rediss", true, false),
            "redis+sentinel" => ("redis", false, true),
            "rediss+sentinel" => ("rediss", false, true),
            other => {
                return Err(Error::invalid_config(format!(
                    "unsupported scheme {other:?} in {:?}: expected redis, rediss, redis+cluster, rediss+cluster, \
                     redis+sentinel or rediss+sentinel",
                    redact(url)
                )))
            }
        };
        // Split off a fragment (redis-rs reads `#insecure`) and put it back on each node URL.
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, format!("#{f}")),
            None => (rest, String::new()),
        };
        // Split off the query and read our own parameters from it.
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut passthrough = Vec::new();
        let mut prefix = None;
        let mut connect_timeout = None;
        let mut response_timeout = None;
        let mut wait_replicas = None;
        let mut wait_timeout = None;
        let mut handoff_window = None;
        let mut ca_file = None;
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "prefix" => prefix = Some(value.to_string()),
                "connect_timeout_ms" => connect_timeout = Some(parse_ms(name, value)?),
                "response_timeout_ms" => response_timeout = Some(parse_ms(name, value)?),
                "wait_replicas" => {
                    wait_replicas = Some(value.parse::<usize>().map_err(|_| {
                        Error::invalid_config(format!(
                            "URL parameter wait_replicas={value:?} is not a whole number of replicas"
                        ))
                    })?);
                }
                "wait_timeout_ms" => wait_timeout = Some(parse_ms(name, value)?),
                "handoff_window_ms" => handoff_window = Some(parse_ms(name, value)?),
                "ca_file" if node_scheme == "rediss" => {
                    let path = percent_decode(value).filter(|p| !p.is_empty()).ok_or_else(|| {
                        Error::invalid_config(format!(
                            "URL parameter ca_file={value:?} is not a path (empty or bad percent-encoding)"
                        ))
                    })?;
                    ca_file = Some(PathBuf::from(path));
                }
                "ca_file" => {
                    return Err(Error::invalid_config(format!(
                        "URL parameter ca_file needs TLS: use rediss://, rediss+cluster:// or rediss+sentinel:// \
                         instead of {scheme}://"
                    )))
                }
                _ => passthrough.push(pair),
            }
        }
        let query = if passthrough.is_empty() {
            String::new()
        } else {
            format!("?{}", passthrough.join("&"))
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (&authority[..=i], &authority[i + 1..]),
            None => ("", authority),
        };
        let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(Error::invalid_config(format!(
                "{:?} names an empty host",
                redact(url)
            )));
        }
        if !cluster && !sentinel && hosts.len() > 1 {
            return Err(Error::invalid_config(format!(
                "{:?} lists several hosts; use redis+cluster:// for a Redis Cluster, redis+sentinel:// for Sentinels \
                 or redlock:// for Redlock",
                redact(url)
            )));
        }
        if sentinel {
            let tail = format!("{query}{fragment}");
            let spec = sentinel_spec(url, node_scheme, userinfo, &hosts, path, &tail)?;
            let mut builder = Self::with_target(Target::Sentinel(spec));
            builder.apply_url_settings(prefix, connect_timeout, response_timeout);
            builder.tls_ca = ca_file.map(CaSource::File);
            if let Some(k) = wait_replicas {
                builder =
                    builder.with_wait_replicas(k, wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT));
            }
            if let Some(w) = handoff_window {
                builder.handoff_window = w;
            }
            return Ok(builder);
        }
        let nodes: Vec<String> = hosts
            .iter()
            .map(|h| format!("{node_scheme}://{userinfo}{h}{path}{query}{fragment}"))
            .collect();
        for node in &nodes {
            check_node_url(node)?;
        }
        let mut builder = if cluster {
            Self::with_target(Target::Cluster(nodes))
        } else {
            Self::with_target(Target::Single(nodes.into_iter().next().unwrap_or_default()))
        };
        builder.apply_url_settings(prefix, connect_timeout, response_timeout);
        builder.tls_ca = ca_file.map(CaSource::File);
        if let Some(k) = wait_replicas {
            builder = builder.with_wait_replicas(k, wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT));
        }
        if let Some(w) = handoff_window {
            builder.handoff_window = w;
        }
        Ok(builder)
    }

    fn apply_url_settings(
        &mut self,
        prefix: Option<String>,
        connect_timeout: Option<Duration>,
        response_timeout: Option<Duration>,
    ) {
        if let Some(p) = prefix {
            self.prefix = p;
        }
        if let Some(t) = connect_timeout {
            self.connect_timeout = t;
        }
        if let Some(t) = response_timeout {
            self.response_timeout = t;
        }
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
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let url = format!("redis+sentinel://{}/{master}", hosts.join(","));
        if hosts.is_empty() || hosts.iter().any(|h| h.is_empty()) {
            return Err(Error::invalid_config(format!(
                "{url:?}: Sentinel needs at least one host:port"
            )));
        }
        let spec = sentinel_spec(&url, "redis", "", &hosts, &format!("/{master}"), "")?;
        Ok(Self::with_target(Target::Sentinel(spec)))
    }

    /// Counts a grant only once `replicas` replicas acknowledged the lock
    /// write (`WAIT replicas timeout` right after the acquire script, on the
    /// same connection, as Redisson's `checkLockSyncedSlaves`). A grant
    /// fewer replicas acknowledged within `timeout` is given back and the
    /// attempt fails with `ErrorKind::Backend` whose source is an
    /// [`Unreplicated`](crate::Unreplicated); `acquire` asks again within its
    /// wait bound before it returns that error. URL: `wait_replicas=K`,
    /// `wait_timeout_ms=T` (default 500 ms). `0` turns it off.
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

    /// The bound on establishing a connection (default 3 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on every store call (default 3 s).
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
    /// most 1 minute. URL: `handoff_window_ms=T`.
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
        let tls = |u: &str| u.to_ascii_lowercase().starts_with("rediss://");
        match &self.target {
            Target::Single(url) => tls(url),
            Target::Cluster(nodes) => nodes.iter().all(|n| tls(n)),
            Target::Sentinel(spec) => spec.scheme == "rediss",
        }
    }

    /// The TLS certificates every client of this builder is made with, or
    /// `None` for redis-rs's defaults (webpki roots).
    pub(crate) fn tls_certs(&self) -> Result<Option<redis::TlsCertificates>> {
        self.tls_ca.as_ref().map(CaSource::load).transpose()
    }

    /// Connects, loads the scripts, and starts the background tasks (the
    /// shared pub/sub subscriber connects lazily, on the first waiter).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// for a bad setting; [`ErrorKind::Connection`](fencelock_core::ErrorKind::Connection)
    /// (or `Timeout`) when Redis cannot be reached within the connect timeout.
    pub async fn build(self) -> Result<RedisLock> {
        self.validate()?;
        RedisLock::from_builder(self).await
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

/// Parses the Sentinel part of a `redis+sentinel://` URL: the hosts are
/// Sentinels, the path is `/<master-name>[/<db>]`.
fn sentinel_spec(
    url: &str,
    scheme: &str,
    userinfo: &str,
    hosts: &[&str],
    path: &str,
    query: &str,
) -> Result<SentinelSpec> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let master = parts.next().unwrap_or_default().to_string();
    if master.is_empty() || master.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_config(format!(
            "{:?} names no master: expected redis+sentinel://host:port,host:port/<master-name>",
            redact(url)
        )));
    }
    let db = match parts.next().filter(|d| !d.is_empty()) {
        Some(d) => {
            d.parse::<u32>().map_err(|_| {
                Error::invalid_config(format!("{:?}: database {d:?} is not a number", redact(url)))
            })?;
            format!("/{d}")
        }
        None => String::new(),
    };
    let sentinels: Vec<String> = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
    for s in &sentinels {
        check_node_url(s)?;
    }
    let spec = SentinelSpec {
        sentinels,
        master,
        scheme: scheme.to_string(),
        userinfo: userinfo.to_string(),
        tail: format!("{db}{query}"),
    };
    check_node_url(&spec.node_url("127.0.0.1", 6379))?;
    Ok(spec)
}

fn parse_ms(name: &str, value: &str) -> Result<Duration> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            Error::invalid_config(format!(
                "URL parameter {name}={value:?} is not a whole number of milliseconds"
            ))
        })
}

pub(crate) use fencelock_core::parse::percent_decode;

fn check_node_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(Error::invalid_config(format!(
            "{:?} is not a redis:// or rediss:// URL",
            redact(url)
        )));
    }
    redis::Client::open(url).map(drop).map_err(|e| {
        Error::invalid_config(format!("{:?} is not a valid Redis URL: {}", redact(url), e))
    })
}

/// The URL with its password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!("{scheme}://{user}@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn urls_parse_into_targets() {
        let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379/0").unwrap();
        assert_eq!(b.target, Target::Single("redis://127.0.0.1:6379/0".into()));
        let b = RedisLockBuilder::from_url(
            "redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001?prefix=app&response_timeout_ms=250",
        )
        .unwrap();
        assert_eq!(
            b.target,
            Target::Cluster(vec![
                "redis://u:p@127.0.0.1:7000".into(),
                "redis://u:p@127.0.0.1:7001".into()
            ])
        );
        assert_eq!(b.prefix, "app");
        assert_eq!(b.response_timeout, Duration::from_millis(250));
        let b = RedisLockBuilder::from_url("rediss://h:1")
            .unwrap()
            .with_cluster(true);
        assert!(b.is_cluster());
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in [
            "127.0.0.1:6379",
            "http://127.0.0.1",
            "redis://a:1,b:2",
            "redis+cluster://a:1,,b:2",
            "redis://h:1?connect_timeout_ms=soon",
            "redis://h:notaport",
        ] {
            let e = RedisLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
        assert!(RedisLockBuilder::from_cluster_nodes(Vec::<String>::new()).is_err());
        assert!(RedisLockBuilder::from_url("redis://h:1?prefix=a{b")
            .unwrap()
            .validate()
            .is_err());
    }

    #[test]
    fn sentinel_urls_parse() {
        let b = RedisLockBuilder::from_url(
            "redis+sentinel://u:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2?wait_replicas=1&wait_timeout_ms=250",
        )
        .unwrap();
        let Target::Sentinel(spec) = &b.target else {
            panic!("not a sentinel target: {b:?}");
        };
        assert_eq!(
            spec.sentinels,
            vec!["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]
        );
        assert_eq!(spec.master, "mymaster");
        assert_eq!(
            spec.node_url("10.0.0.9", 6380),
            "redis://u:pw@10.0.0.9:6380/2"
        );
        assert_eq!(
            b.wait_replicas,
            Some(WaitReplicas {
                replicas: 1,
                timeout: Duration::from_millis(250)
            })
        );
        assert!(!format!("{b:?}").contains("pw@"));
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:1/m/x",
            "redis+sentinel://h:1/m?wait_replicas=x",
        ] {
            let e = RedisLockBuilder::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
        }
        let b = RedisLockBuilder::from_sentinels(["h:1", "h:2"], "m").unwrap();
        assert!(b.is_sentinel());
        assert!(
            RedisLockBuilder::from_url("redis+cluster://h:1?wait_replicas=1")
                .unwrap()
                .validate()
                .is_err()
        );
    }

    #[test]
    fn tls_ca_and_fragment_parse() {
        let b = RedisLockBuilder::from_url(
            "rediss://u:p@127.0.0.1:6380/2?ca_file=/etc/my%20ca.pem&prefix=app&protocol=resp3#insecure",
        )
        .unwrap();
        assert_eq!(
            b.target,
            Target::Single("rediss://u:p@127.0.0.1:6380/2?protocol=resp3#insecure".into())
        );
        assert_eq!(
            b.tls_ca,
            Some(CaSource::File(PathBuf::from("/etc/my ca.pem")))
        );
        assert_eq!(b.prefix, "app");
        let b = RedisLockBuilder::from_url("rediss+cluster://h:1,h:2?ca_file=/ca.pem").unwrap();
        assert_eq!(b.tls_ca, Some(CaSource::File(PathBuf::from("/ca.pem"))));
        assert!(b.uses_tls());
        let b = RedisLockBuilder::from_url("rediss+sentinel://h:1/m?ca_file=/ca.pem").unwrap();
        assert!(b.tls_ca.is_some() && b.uses_tls());
        for bad in [
            "redis://h:1?ca_file=/ca.pem",
            "redis+cluster://h:1?ca_file=/ca.pem",
            "rediss://h:1?ca_file=",
            "rediss://h:1?ca_file=%zz",
        ] {
            let e = RedisLockBuilder::from_url(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
        }
        let b = RedisLockBuilder::from_url("redis://h:1")
            .unwrap()
            .with_tls_ca_pem(b"x".to_vec());
        assert_eq!(b.validate().unwrap_err().kind(), ErrorKind::InvalidConfig);
        assert!(format!("{b:?}").contains("Pem(<1 bytes>)"));
    }

    #[test]
    fn handoff_window_parses_and_is_bounded() {
        let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379?handoff_window_ms=0").unwrap();
        assert_eq!(b.handoff_window, Duration::ZERO);
        assert!(b.validate().is_ok());
        let b =
            RedisLockBuilder::from_url("redis+sentinel://127.0.0.1:26379/m?handoff_window_ms=50")
                .unwrap();
        assert_eq!(b.handoff_window, Duration::from_millis(50));
        let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379").unwrap();
        assert_eq!(b.handoff_window, DEFAULT_HANDOFF_WINDOW);
        let e = b
            .with_handoff_window(Duration::from_secs(61))
            .validate()
            .unwrap_err();
        assert_eq!(e.kind(), fencelock_core::ErrorKind::InvalidConfig);
        let e = RedisLockBuilder::from_url("redis://127.0.0.1:6379?handoff_window_ms=soon")
            .unwrap_err();
        assert_eq!(e.kind(), fencelock_core::ErrorKind::InvalidConfig);
    }

    #[test]
    fn debug_hides_passwords() {
        let b = RedisLockBuilder::from_url("redis://user:s3cret@h:1/0").unwrap();
        let s = format!("{b:?}");
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("user:***@h:1/0"), "{s}");
        let b = RedisLockBuilder::from_url("redis+cluster://:s3cret@h:1,h:2").unwrap();
        assert!(!format!("{b:?}").contains("s3cret"));
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
