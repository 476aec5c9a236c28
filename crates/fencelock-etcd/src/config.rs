//! The builder, the connect, and a `Debug` that hides the password.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use fencelock_core::{Error, Result};

use crate::client::Client;
use crate::endpoints::Endpoints;
use crate::keys::{Layout, DEFAULT_PREFIX};
use crate::known_issues::warn_if_affected;
use crate::lock::EtcdLock;
use crate::watch::Watches;

/// The lease TTL of a client before every grant had a lease of its own.
#[deprecated(
    note = "every grant has an etcd lease of its own with the acquire's TTL (LockOptions::with_ttl)"
)]
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The default bound on one etcd call (per attempt, per endpoint).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on opening a TCP (and TLS) connection to one endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default safety-net poll of a waiter whose watch may have missed an event.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Builds an [`EtcdLock`]: endpoints, key prefix, timeouts, credentials
/// and TLS.
///
/// ```
/// use std::time::Duration;
/// use fencelock_etcd::EtcdLockBuilder;
///
/// let b = EtcdLockBuilder::from_url("etcd://root:secret@10.0.0.1:2379,10.0.0.2:2379/app?timeout=3s")?
///     .with_request_timeout(Duration::from_secs(1));
/// assert_eq!(b.endpoints().len(), 2);
/// assert_eq!(b.prefix(), "app");
/// assert!(!format!("{b:?}").contains("secret"));
/// # Ok::<(), fencelock_core::Error>(())
/// ```
#[derive(Clone)]
pub struct EtcdLockBuilder {
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) drift: Option<Duration>,
    pub(crate) user: Option<(String, String)>,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) domain: Option<String>,
}

impl EtcdLockBuilder {
    /// A builder for the given endpoints (`host:port`, or `http://host:port`
    /// / `https://host:port`), with the default prefix `fencelock`.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdLockBuilder {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: DEFAULT_PREFIX.to_string(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            drift: None,
            user: None,
            tls: None,
            ca_file: None,
            domain: None,
        }
    }

    /// Replaces the endpoints.
    #[must_use]
    pub fn with_endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The etcd key prefix (default `fencelock`). Lock key `K` lives under
    /// `<prefix>/<escaped K>/`; the empty prefix puts it under `<escaped K>/`,
    /// where `etcdctl lock <K>` puts its own.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets nothing any more, and logs a warning saying so: every grant has
    /// an etcd lease of its own, with the acquire's TTL
    /// ([`LockOptions::with_ttl`](fencelock_core::LockOptions::with_ttl)),
    /// so a holder that dies frees the lock at that TTL.
    #[deprecated(
        note = "every grant has an etcd lease of its own with the acquire's TTL (LockOptions::with_ttl)"
    )]
    #[must_use]
    pub fn with_lease_ttl(self, ttl: Duration) -> Self {
        warn_lease_ttl("with_lease_ttl", ttl);
        self
    }

    /// The bound on one call to one endpoint (default 2 s). A call that
    /// fails or times out moves to the next endpoint.
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The bound on opening a connection to one endpoint (default 2 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often a waiter re-checks the queue in case its watch missed the
    /// predecessor's delete (default 2 s). Only a safety net.
    #[must_use]
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// The least margin taken off every grant's validity deadline: a grant
    /// whose own drift ([`LockOptions::with_drift`](fencelock_core::LockOptions::with_drift),
    /// default TTL/100 + 2 ms) is smaller uses this one.
    #[must_use]
    pub fn with_drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
    }

    /// Authenticates as `user` (etcd auth must be enabled on the server).
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Talks TLS with these options (CA, client identity, domain name).
    #[must_use]
    pub fn with_tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Talks TLS, trusting the CA certificate(s) in `pem`.
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let tls = self.tls.take().unwrap_or_default();
        self.tls = Some(tls.ca_certificate(Certificate::from_pem(pem)));
        self
    }

    /// Talks TLS and presents this client certificate and key (PEM).
    #[must_use]
    pub fn with_client_identity(
        mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        let tls = self.tls.take().unwrap_or_default();
        self.tls = Some(tls.identity(Identity::from_pem(cert_pem, key_pem)));
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Connects: checks the settings, then asks the cluster its version
    /// (which proves it answers, and that the credentials work).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// for bad settings; [`ErrorKind::Connection`](fencelock_core::ErrorKind::Connection)
    /// or [`ErrorKind::Timeout`](fencelock_core::ErrorKind::Timeout) when no
    /// endpoint answers within the timeouts; `Backend` for refused credentials.
    pub async fn build(self) -> Result<EtcdLock> {
        self.check()?;
        let layout = Layout::new(&self.prefix)?;
        let endpoints = Arc::new(Endpoints::new(
            self.urls(),
            self.connect_options()?,
            self.request_timeout,
            self.connect_timeout,
        ));
        let version = endpoints.server_version().await?;
        warn_if_affected(&version);
        Ok(EtcdLock {
            inner: Arc::new(Client {
                watches: Arc::new(Watches::new(Arc::clone(&endpoints))),
                endpoints,
                layout,
                poll: self.poll_interval,
                drift: self.drift,
            }),
        })
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid_config("no etcd endpoints given"));
        }
        for (name, d) in [
            ("request timeout", self.request_timeout),
            ("connect timeout", self.connect_timeout),
            ("poll interval", self.poll_interval),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_config(format!(
                    "the {name} must be above zero"
                )));
            }
        }
        Layout::new(&self.prefix)?;
        Ok(())
    }

    /// The endpoint URLs with a scheme.
    pub(crate) fn urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| {
                if e.contains("://") {
                    e.clone()
                } else {
                    format!("{scheme}://{e}")
                }
            })
            .collect()
    }

    /// The etcd-client options for one endpoint.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions> {
        let mut o = ConnectOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
            // etcd refuses pings more often than every 5 s (GOAWAY too_many_pings).
            .with_keep_alive(
                Duration::from_secs(10),
                self.request_timeout.max(Duration::from_secs(1)),
            )
            .with_keep_alive_while_idle(false)
            .with_require_leader(true);
        if let Some((user, password)) = &self.user {
            o = o
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &self.tls {
            let mut tls = tls.clone();
            if let Some(path) = &self.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::invalid_config(format!("cannot read the CA file {}", path.display()))
                        .with_source(e)
                })?;
                // etcd-client parses it only when connecting, where a bad file would look
                // like an unreachable endpoint.
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(Error::invalid_config(format!(
                        "the CA file {} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)",
                        path.display()
                    )));
                }
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let Some(domain) = &self.domain {
                tls = tls.domain_name(domain.clone());
            }
            o = o.with_tls(tls);
        }
        Ok(o)
    }
}

impl fmt::Debug for EtcdLockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLockBuilder")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("drift", &self.drift)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("password", &self.user.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The warning for the old client-wide lease TTL, set through `what`.
pub(crate) fn warn_lease_ttl(what: &str, ttl: Duration) {
    tracing::warn!(
        target: "fencelock",
        store = "etcd",
        "etcd: {what} ({ttl:?}) no longer sets anything and will be removed: every grant now has \
         an etcd lease of its own with the acquire's TTL (LockOptions::with_ttl, `fencelock run --ttl`), \
         so a holder that dies frees the lock at that TTL"
    );
}

impl EtcdLock {
    /// Connects with a URL (see [`EtcdLockBuilder::from_url`]).
    ///
    /// # Errors
    ///
    /// As [`EtcdLockBuilder::from_url`] and [`EtcdLockBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self> {
        EtcdLockBuilder::from_url(url)?.build().await
    }

    /// A builder for these endpoints.
    pub fn builder<I, S>(endpoints: I) -> EtcdLockBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdLockBuilder::new(endpoints)
    }
}
