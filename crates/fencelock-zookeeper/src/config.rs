//! The builder, URL parsing, and a `Debug` that hides the password.

use std::fmt;
use std::time::Duration;

use fencelock_core::parse::percent_decode;
use fencelock_core::{Error, Result};

use crate::ZkLock;

/// The default ZooKeeper session timeout asked for (the server may clamp it
/// to its `minSessionTimeout`/`maxSessionTimeout`).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The default bound on establishing a session.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on one ZooKeeper call (retries after a connection loss included).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The default root node under which each key gets its parent node.
pub const DEFAULT_ROOT: &str = "/fencelock";
/// The default ZooKeeper port.
pub const DEFAULT_PORT: u16 = 2181;

/// Builds a [`ZkLock`]: hosts, chroot, root path, session timeout, timeouts,
/// credentials.
///
/// ```
/// use std::time::Duration;
/// use fencelock_zookeeper::ZkLockBuilder;
///
/// let b = ZkLockBuilder::from_url("zk://app:secret@10.0.0.1:2181,10.0.0.2/apps/billing?session_timeout=6s")?
///     .with_call_timeout(Duration::from_secs(2));
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
    pub(crate) root: String,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) call_timeout: Duration,
    pub(crate) drift: Option<Duration>,
    pub(crate) digest: Option<(String, String)>,
}

impl ZkLockBuilder {
    /// A builder for the given hosts (`host` or `host:port`; the port
    /// defaults to 2181), no chroot and the root `/fencelock`.
    pub fn new<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ZkLockBuilder {
            hosts: hosts.into_iter().map(Into::into).collect(),
            chroot: String::new(),
            root: DEFAULT_ROOT.to_string(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            drift: None,
            digest: None,
        }
    }

    /// Parses a URL:
    ///
    /// `zk://[user:password@]host[:port][,host[:port]...][/chroot][?options]`
    ///
    /// `zookeeper://` is the same. The chroot is a path prefix for every node
    /// fencelock touches (it is created when missing). Options:
    /// `session_timeout`, `connect_timeout`, `timeout` (per call), `drift`
    /// (durations such as `3s`, `500ms`, or plain seconds) and `root` (the
    /// root path under the chroot, default `/fencelock`). `user:password`
    /// adds `digest` authentication (percent-encoding allowed).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid_config(format!("bad ZooKeeper URL: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected zk://host:port[,host:port...][/chroot]"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "zk" | "zookeeper" => {}
            other => {
                return Err(bad(&format!(
                    "unknown scheme {other:?}; use zk:// or zookeeper://"
                )))
            }
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let mut list = Vec::new();
        for host in hosts.split(',') {
            list.push(normalize_host(host.trim()).map_err(|why| bad(&why))?);
        }
        let mut b = ZkLockBuilder::new(list);
        let chroot =
            percent_decode(path).ok_or_else(|| bad("the chroot is not valid percent-encoding"))?;
        b.chroot = normalize_path(&chroot, true).map_err(|why| bad(&format!("chroot: {why}")))?;
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let user = percent_decode(user)
                .ok_or_else(|| bad("the user name is not valid percent-encoding"))?;
            let password = percent_decode(password)
                .ok_or_else(|| bad("the password is not valid percent-encoding"))?;
            if user.is_empty() {
                return Err(bad("an empty user name"));
            }
            b.digest = Some((user, password));
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
                "session_timeout" => b.session_timeout = dur()?,
                "connect_timeout" => b.connect_timeout = dur()?,
                "timeout" | "call_timeout" => b.call_timeout = dur()?,
                "drift" => b.drift = Some(dur()?),
                "root" => b.root = v.clone(),
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        b.check()?;
        Ok(b)
    }

    /// The session timeout to ask the server for (default 10 s). The server
    /// clamps it to its own bounds; [`ZkLock::session_timeout`] tells the
    /// negotiated one. Every grant of a client lives on its session.
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
    /// included (default 5 s).
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The root path (under the chroot) whose children are the per-key
    /// parent nodes (default `/fencelock`).
    #[must_use]
    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
    }

    /// A chroot: a path prefix in front of the root (default none).
    #[must_use]
    pub fn with_chroot(mut self, chroot: impl Into<String>) -> Self {
        self.chroot = chroot.into();
        self
    }

    /// The margin subtracted from the session timeout when computing a
    /// grant's validity deadline (default: negotiated timeout / 100 + 2 ms).
    #[must_use]
    pub fn with_session_drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
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

    /// The absolute path (chroot + root) under which each key's parent node lives.
    pub fn base_path(&self) -> String {
        let chroot = self.chroot.trim_end_matches('/');
        let root = self.root.trim_end_matches('/');
        let root = if root.starts_with('/') || root.is_empty() {
            root.to_string()
        } else {
            format!("/{root}")
        };
        format!("{chroot}{root}")
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
        normalize_path(&self.base_path(), true).map_err(|why| bad(format!("root path: {why}")))?;
        let base = self.base_path();
        if base.is_empty() || base == "/" {
            return Err(bad(
                "the root path (under the chroot) must not be `/`: give it a node of its own, e.g. /fencelock".into(),
            ));
        }
        if base == "/zookeeper" || base.starts_with("/zookeeper/") {
            return Err(bad(format!(
                "the root path {base} lies in ZooKeeper's reserved /zookeeper tree"
            )));
        }
        let ms = Duration::from_millis(1);
        for (name, d) in [
            ("session timeout", self.session_timeout),
            ("connect timeout", self.connect_timeout),
            ("call timeout", self.call_timeout),
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
                    "the session drift {d:?} must be less than half the session timeout {:?}",
                    self.session_timeout
                )));
            }
        }
        Ok(())
    }

    /// Connects: establishes the first session (so an unreachable ensemble
    /// fails here) and returns the client.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for bad settings; `Connection` when no session can
    /// be established within the connect timeout.
    pub async fn build(self) -> Result<ZkLock> {
        self.check()?;
        ZkLock::from_builder(self).await
    }
}

impl fmt::Debug for ZkLockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkLockBuilder")
            .field("hosts", &self.hosts)
            .field("base_path", &self.base_path())
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("drift", &self.drift)
            .field("user", &self.digest.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

/// `host` or `host:port` (IPv6 in brackets) to `host:port`.
fn normalize_host(host: &str) -> std::result::Result<String, String> {
    if host.is_empty() {
        return Err("an empty host in the host list".into());
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("host {host:?}: unclosed `[`"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("host {host:?}: expected `:port` after `]`"))?,
            ),
        };
        (format!("[{name}]"), port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n.to_string(), Some(p)),
            None => (host.to_string(), None),
        }
    };
    if name.is_empty() || name == "[]" || name.contains(['/', '@', ' ', '?']) {
        return Err(format!("host {host:?} has no valid host name"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("host {host:?}: port {p:?} is not 1-65535"))?,
    };
    Ok(format!("{name}:{port}"))
}

/// Validates an absolute ZooKeeper path (or empty when `allow_empty`);
/// returns it without a trailing `/`.
fn normalize_path(path: &str, allow_empty: bool) -> std::result::Result<String, String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if allow_empty || path == "/" {
            Ok(String::new())
        } else {
            Err("empty path".into())
        };
    }
    let body = trimmed
        .strip_prefix('/')
        .ok_or_else(|| format!("{path:?} must start with `/`"))?;
    for seg in body.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!("{path:?} has an empty, `.` or `..` segment"));
        }
        if seg.chars().any(crate::key::forbidden) {
            return Err(format!("{path:?} holds a character ZooKeeper rejects"));
        }
    }
    Ok(trimmed.to_string())
}

fn parse_duration(s: &str) -> Option<Duration> {
    fencelock_core::parse::duration(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn parses_urls() {
        let b = ZkLockBuilder::from_url("zk://127.0.0.1:2181").unwrap();
        assert_eq!(b.hosts(), "127.0.0.1:2181");
        assert_eq!(b.base_path(), "/fencelock");
        let b = ZkLockBuilder::from_url(
            "zookeeper://h1,h2:2182,[::1]:2183/app/?root=/locks&timeout=500ms&connect_timeout=2",
        )
        .unwrap();
        assert_eq!(b.hosts(), "h1:2181,h2:2182,[::1]:2183");
        assert_eq!(b.base_path(), "/app/locks");
        assert_eq!(b.call_timeout, Duration::from_millis(500));
        assert_eq!(b.connect_timeout, Duration::from_secs(2));
        let b = ZkLockBuilder::from_url("ZK://u:p%40ss@h/").unwrap();
        assert_eq!(b.digest, Some(("u".into(), "p@ss".into())));
        assert_eq!(b.base_path(), "/fencelock");
        let b = ZkLockBuilder::from_url("zk://h?root=locks").unwrap();
        assert_eq!(b.base_path(), "/locks");
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "redis://h",
            "h:2181",
            "zk://",
            "zk://h:0",
            "zk://h:99999",
            "zk://h,,g",
            "zk://h/a//b",
            "zk://h/a/../b",
            "zk://h?root=/",
            "zk://h?root=/zookeeper",
            "zk://h?session_timeout=forever",
            "zk://h?session_timeout=0",
            "zk://h?bogus=1",
            "zk://h?drift=6s",
        ] {
            let e = ZkLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
    }
}
