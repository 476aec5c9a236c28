//! The builder: settings, their checks, and a `Debug` that hides the password.

use std::fmt;
use std::time::Duration;

use fencelock_core::{Error, Result};

use crate::address::{normalize_host, normalize_path};

/// The default ZooKeeper session timeout asked for (the server may clamp it
/// to its `minSessionTimeout`/`maxSessionTimeout`).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The default bound on establishing a session.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on one ZooKeeper call (retries after a connection loss included).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default prefix: the node under which each key gets its parent node.
pub const DEFAULT_PREFIX: &str = "/fencelock";
/// The old name of [`DEFAULT_TIMEOUT`].
pub const DEFAULT_CALL_TIMEOUT: Duration = DEFAULT_TIMEOUT;
/// The old name of [`DEFAULT_PREFIX`].
pub const DEFAULT_ROOT: &str = DEFAULT_PREFIX;

/// Builds a [`ZkLock`](crate::ZkLock): hosts, chroot, prefix, session
/// timeout, timeouts, credentials.
///
/// ```
/// use std::time::Duration;
/// use fencelock_zookeeper::ZkLockBuilder;
///
/// let b = ZkLockBuilder::from_url("zk://app:secret@10.0.0.1:2181,10.0.0.2/apps/billing?session_timeout=6s")?
///     .with_timeout(Duration::from_secs(2));
/// assert_eq!(b.hosts(), "10.0.0.1:2181,10.0.0.2:2181");
/// assert_eq!(b.base_path(), "/apps/billing/fencelock");
/// assert_eq!(b.session_timeout(), Duration::from_secs(6));
/// assert!(!format!("{b:?}").contains("secret"));
/// # Ok::<(), fencelock_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ZkLockBuilder {
    pub(crate) hosts: Vec<String>,
    pub(crate) chroot: String,
    pub(crate) prefix: String,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) drift: Option<Duration>,
    pub(crate) digest: Option<(String, String)>,
}

impl ZkLockBuilder {
    /// A builder for the given hosts (`host` or `host:port`; the port
    /// defaults to 2181), no chroot and the prefix `/fencelock`.
    pub fn new<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ZkLockBuilder {
            hosts: hosts.into_iter().map(Into::into).collect(),
            chroot: String::new(),
            prefix: DEFAULT_PREFIX.to_string(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            drift: None,
            digest: None,
        }
    }

    /// The session timeout to ask the server for (default 10 s). The server
    /// clamps it to its own bounds; [`ZkLock::session_timeout`](crate::ZkLock::session_timeout)
    /// tells the negotiated one. Grants whose TTL is at least this long
    /// live on this session; shorter ones on a session that honours their
    /// TTL (see the crate docs, "Sessions and loss").
    #[must_use]
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// The bound on establishing a session (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The bound on one ZooKeeper call, retries after a connection loss
    /// included (default 5 s). URL option `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The old name of [`with_timeout`](Self::with_timeout).
    #[deprecated(note = "use with_timeout")]
    #[must_use]
    pub fn with_call_timeout(self, timeout: Duration) -> Self {
        self.with_timeout(timeout)
    }

    /// The path (under the chroot) whose children are the per-key parent
    /// nodes (default `/fencelock`). URL option `prefix`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The old name of [`with_prefix`](Self::with_prefix).
    #[deprecated(note = "use with_prefix")]
    #[must_use]
    pub fn with_root(self, root: impl Into<String>) -> Self {
        self.with_prefix(root)
    }

    /// A chroot: a path prefix in front of the prefix (default none).
    #[must_use]
    pub fn with_chroot(mut self, chroot: impl Into<String>) -> Self {
        self.chroot = chroot.into();
        self
    }

    /// The margin subtracted from a session's timeout when computing a
    /// grant's validity deadline (default: negotiated timeout / 100 + 2 ms;
    /// never more than half the session's timeout). URL option `drift`.
    #[must_use]
    pub fn with_drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
    }

    /// The old name of [`with_drift`](Self::with_drift).
    #[deprecated(note = "use with_drift")]
    #[must_use]
    pub fn with_session_drift(self, drift: Duration) -> Self {
        self.with_drift(drift)
    }

    /// `digest` authentication as `user:password`.
    #[must_use]
    pub fn with_digest_auth(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.digest = Some((user.into(), password.into()));
        self
    }

    /// The hosts as a ZooKeeper connect string (`h1:p1,h2:p2`).
    pub fn hosts(&self) -> String {
        self.hosts.join(",")
    }

    /// The session timeout asked for.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The absolute path (chroot + prefix) under which each key's parent node lives.
    pub fn base_path(&self) -> String {
        let chroot = self.chroot.trim_end_matches('/');
        let prefix = self.prefix.trim_end_matches('/');
        let prefix = if prefix.starts_with('/') || prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("/{prefix}")
        };
        format!("{chroot}{prefix}")
    }

    /// Checks every setting.
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |why: String| Error::invalid_config(why);
        if self.hosts.is_empty() {
            return Err(bad("no ZooKeeper host given".into()));
        }
        for h in &self.hosts {
            normalize_host(h).map_err(|why| bad(format!("ZooKeeper host: {why}")))?;
        }
        normalize_path(&self.chroot, true).map_err(|why| bad(format!("chroot: {why}")))?;
        let base = self.base_path();
        normalize_path(&base, true).map_err(|why| bad(format!("prefix: {why}")))?;
        if base.is_empty() || base == "/" {
            return Err(bad(
                "the prefix (under the chroot) must not be `/`: give it a node of its own, e.g. /fencelock".into(),
            ));
        }
        if base == "/zookeeper" || base.starts_with("/zookeeper/") {
            return Err(bad(format!(
                "the prefix {base} lies in ZooKeeper's reserved /zookeeper tree"
            )));
        }
        let ms = Duration::from_millis(1);
        for (name, d) in [
            ("session timeout", self.session_timeout),
            ("connect timeout", self.connect_timeout),
            ("timeout", self.timeout),
        ] {
            if d < ms {
                return Err(bad(format!("the {name} {d:?} must be at least 1 ms")));
            }
            if d > Duration::from_secs(24 * 3600) {
                return Err(bad(format!("the {name} {d:?} is above one day")));
            }
        }
        if self.session_timeout > Duration::from_millis(i32::MAX as u64) {
            return Err(bad(
                "the session timeout does not fit ZooKeeper's i32 milliseconds".into(),
            ));
        }
        if let Some(d) = self.drift {
            if d >= self.session_timeout / 2 {
                return Err(bad(format!(
                    "the drift {d:?} must be less than half the session timeout {:?}",
                    self.session_timeout
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ZkLockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkLockBuilder")
            .field("hosts", &self.hosts)
            .field("base_path", &self.base_path())
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("drift", &self.drift)
            .field("user", &self.digest.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn the_old_setter_names_still_work() {
        let b = ZkLockBuilder::new(["h"])
            .with_call_timeout(Duration::from_millis(700))
            .with_root("/old")
            .with_session_drift(Duration::from_millis(30));
        assert_eq!(b.timeout, Duration::from_millis(700));
        assert_eq!(b.base_path(), "/old");
        assert_eq!(b.drift, Some(Duration::from_millis(30)));
        assert_eq!(DEFAULT_CALL_TIMEOUT, DEFAULT_TIMEOUT);
        assert_eq!(DEFAULT_ROOT, DEFAULT_PREFIX);
    }
}
