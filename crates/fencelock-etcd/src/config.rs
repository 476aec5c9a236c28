//! The builder, URL parsing, and a `Debug` that hides the password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use fencelock_core::parse::percent_decode;
use fencelock_core::{Error, Result};

use crate::keys::{Layout, DEFAULT_PREFIX};
use crate::EtcdLock;

/// The default lease TTL.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The default bound on one etcd call (per attempt, per endpoint).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on opening a TCP (and TLS) connection to one endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default safety-net poll of a waiter whose watch may have missed an event.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Builds an [`EtcdLock`]: endpoints, key prefix, lease TTL, timeouts,
/// credentials and TLS.
///
/// ```
/// use std::time::Duration;
/// use fencelock_etcd::EtcdLockBuilder;
///
/// let b = EtcdLockBuilder::from_url("etcd://root:secret@10.0.0.1:2379,10.0.0.2:2379/app?lease_ttl=5s")?
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
    pub(crate) lease_ttl: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) drift: Option<Duration>,
    pub(crate) user: Option<(String, String)>,
    pub(crate) tls: Option<TlsOptions>,
    ca_file: Option<PathBuf>,
    domain: Option<String>,
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
            lease_ttl: DEFAULT_LEASE_TTL,
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

    /// Parses a URL:
    ///
    /// `etcd://[user[:password]@]host:port[,host:port...][/prefix][?options]`
    ///
    /// `etcds://` is the same over TLS. Without a path the prefix is
    /// `fencelock`; a lone `/` means the empty prefix (lock names as
    /// `etcdctl lock` takes them). Options: `lease_ttl`, `timeout` (per call),
    /// `connect_timeout`, `poll` (durations such as `3s`, `500ms`, or plain
    /// seconds), `drift`, and for TLS `ca_file` (PEM) and `domain`. User and
    /// password may be percent-encoded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid_config(format!("bad etcd URL: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected etcd://host:port[,host:port...][/prefix]"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "etcd" | "etcd+http" => false,
            "etcds" | "etcd+https" => true,
            other => {
                return Err(bad(&format!(
                    "unknown scheme {other:?}; use etcd:// or etcds://"
                )))
            }
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let host = host.trim();
            if host.is_empty() {
                return Err(bad("an empty host in the endpoint list"));
            }
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                return Err(bad(&format!("endpoint {host:?} is not host:port")));
            }
            endpoints.push(host.to_string());
        }
        let mut b = EtcdLockBuilder::new(endpoints);
        if let Some(path) = path {
            b.prefix = percent_decode(path)
                .ok_or_else(|| bad("the prefix is not valid percent-encoding"))?;
        }
        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, p),
                None => (userinfo, ""),
            };
            let user = percent_decode(user)
                .ok_or_else(|| bad("the user name is not valid percent-encoding"))?;
            let password = percent_decode(password)
                .ok_or_else(|| bad("the password is not valid percent-encoding"))?;
            if user.is_empty() {
                return Err(bad("an empty user name"));
            }
            b.user = Some((user, password));
        }
        if tls {
            b.tls = Some(TlsOptions::new());
        }
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)
                .ok_or_else(|| bad(&format!("option {k} is not valid percent-encoding")))?;
            let dur = || {
                parse_duration(&v)
                    .ok_or_else(|| bad(&format!("option {k}={v:?} is not a duration")))
            };
            match k {
                "lease_ttl" | "ttl" => b.lease_ttl = dur()?,
                "timeout" | "request_timeout" => b.request_timeout = dur()?,
                "connect_timeout" => b.connect_timeout = dur()?,
                "poll" | "poll_interval" => b.poll_interval = dur()?,
                "drift" => b.drift = Some(dur()?),
                "ca_file" if tls => b.ca_file = Some(PathBuf::from(v)),
                "domain" if tls => b.domain = Some(v),
                "ca_file" | "domain" => return Err(bad(&format!("option {k} needs etcds://"))),
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        Ok(b)
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

    /// The lease TTL asked for (default 10 s; whole seconds, rounded up; etcd
    /// may grant more, and the granted TTL is what counts).
    #[must_use]
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
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

    /// The margin taken off the lease deadline (default TTL/100 + 5 ms).
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

    /// The lease TTL asked for.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// Connects: checks the settings, then grants the client's lease (which
    /// proves the cluster answers).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// for bad settings; [`ErrorKind::Connection`](fencelock_core::ErrorKind::Connection)
    /// or [`ErrorKind::Timeout`](fencelock_core::ErrorKind::Timeout) when no
    /// endpoint answers within the timeouts; `Backend` for refused credentials.
    pub async fn build(self) -> Result<EtcdLock> {
        self.check()?;
        EtcdLock::from_builder(self).await
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid_config("no etcd endpoints given"));
        }
        if self.lease_ttl.is_zero() {
            return Err(Error::invalid_config("the lease TTL must be above zero"));
        }
        if self.lease_ttl > fencelock_core::MAX_TTL {
            return Err(Error::invalid_config(format!(
                "the lease TTL {:?} is above the maximum {:?}",
                self.lease_ttl,
                fencelock_core::MAX_TTL
            )));
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

    /// The lease TTL in whole seconds, as etcd takes it.
    pub(crate) fn ttl_secs(&self) -> i64 {
        let ms = self.lease_ttl.as_millis();
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX).max(1)
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
            .field("lease_ttl", &self.lease_ttl)
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

/// `3s`, `500ms`, `2m`, `1.5s`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    fencelock_core::parse::duration(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn parses_endpoints_prefix_user_and_options() {
        let b = EtcdLockBuilder::from_url(
            "etcd://u%40x:p%3Aw@h1:1,h2:2,h3:3/app/locks?lease_ttl=3s&timeout=500ms",
        )
        .unwrap();
        assert_eq!(b.endpoints, ["h1:1", "h2:2", "h3:3"]);
        assert_eq!(b.prefix, "app/locks");
        assert_eq!(b.user, Some(("u@x".into(), "p:w".into())));
        assert_eq!(b.lease_ttl, Duration::from_secs(3));
        assert_eq!(b.request_timeout, Duration::from_millis(500));
        assert_eq!(b.urls(), ["http://h1:1", "http://h2:2", "http://h3:3"]);
        let dbg = format!("{b:?}");
        assert!(dbg.contains("u@x") && !dbg.contains("p:w"), "{dbg}");

        let b = EtcdLockBuilder::from_url("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(b.prefix, "fencelock");
        let b = EtcdLockBuilder::from_url("etcd://127.0.0.1:2379/").unwrap();
        assert_eq!(b.prefix, "");
        let b = EtcdLockBuilder::from_url("etcds://127.0.0.1:2379?domain=etcd").unwrap();
        assert_eq!(b.urls(), ["https://127.0.0.1:2379"]);
        assert_eq!(
            EtcdLockBuilder::new(["h:1"])
                .with_lease_ttl(Duration::from_millis(1500))
                .ttl_secs(),
            2
        );
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in [
            "redis://h:1",
            "h:1",
            "etcd://",
            "etcd://h1:1,,h2:2",
            "etcd://h1",
            "etcd://h1:99999",
            "etcd://h1:1?lease_ttl=abc",
            "etcd://h1:1?bogus=1",
            "etcd://h1:1?ca_file=/x",
            "etcd://h1:1/%zz",
        ] {
            let e = EtcdLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
        assert!(EtcdLockBuilder::new(Vec::<String>::new()).check().is_err());
        assert!(EtcdLockBuilder::new(["h:1"])
            .with_lease_ttl(Duration::ZERO)
            .check()
            .is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
