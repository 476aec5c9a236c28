//! The ZooKeeper URL, read with the one URL grammar of fencelock.

use fencelock_core::raw::url::StoreUrl;
use fencelock_core::{Error, Result};

use crate::address::{normalize_host, normalize_path};
use crate::config::ZkLockBuilder;

impl ZkLockBuilder {
    /// Parses a URL:
    ///
    /// `zk://[user:password@]host[:port][,host[:port]...][/chroot][?options]`
    ///
    /// `zookeeper://` is the same. The chroot is a path prefix for every node
    /// fencelock touches (it is created when missing). Options (durations
    /// are written `500ms`, `3s`, `2m`; a bare number is seconds):
    ///
    /// | option | meaning | default |
    /// |---|---|---|
    /// | `session_timeout` | the main session's timeout asked of the server | `10s` |
    /// | `connect_timeout` | bound on establishing a session | `5s` |
    /// | `timeout` | bound on one call | `5s` |
    /// | `drift` | margin off a session's validity | timeout / 100 + 2 ms |
    /// | `prefix` | the path under the chroot holding the keys | `/fencelock` |
    ///
    /// The old spellings `call_timeout` (for `timeout`) and `root` (for
    /// `prefix`) are still read, with a deprecation warning; giving both
    /// spellings of one option is an error. `user:password` adds `digest`
    /// authentication (percent-encoding allowed).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong; an unknown option is named with the list of
    /// known ones.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = StoreUrl::parse(url, "ZooKeeper", &["zk", "zookeeper"])?;
        let redacted = parsed.redacted().to_string();
        let bad =
            |why: String| Error::invalid_config(format!("bad ZooKeeper URL {redacted:?}: {why}"));
        if parsed.fragment.is_some() {
            return Err(bad("a ZooKeeper URL has no `#fragment`".into()));
        }
        let mut hosts = Vec::with_capacity(parsed.hosts.len());
        for host in &parsed.hosts {
            hosts.push(normalize_host(host).map_err(bad)?);
        }
        let mut b = ZkLockBuilder::new(hosts);
        if let Some(path) = &parsed.path {
            b.chroot = normalize_path(&format!("/{path}"), true)
                .map_err(|why| bad(format!("chroot: {why}")))?;
        }
        if let Some(user) = &parsed.user {
            if user.is_empty() {
                return Err(bad("an empty user name".into()));
            }
            b.digest = Some((user.clone(), parsed.password.clone().unwrap_or_default()));
        }
        let mut options = parsed.options;
        if let Some(d) = options.duration("session_timeout")? {
            b.session_timeout = d;
        }
        if let Some(d) = options.duration("connect_timeout")? {
            b.connect_timeout = d;
        }
        if let Some(d) = options.duration_or("timeout", "call_timeout")? {
            b.timeout = d;
        }
        if let Some(d) = options.duration("drift")? {
            b.drift = Some(d);
        }
        let prefix = match options.deprecated("root", "prefix")? {
            Some(old) => Some(old),
            None => options.string("prefix"),
        };
        if let Some(p) = prefix {
            b.prefix = p;
        }
        options.finish()?;
        b.check().map_err(|e| bad(e.message().to_string()))?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert_eq!(b.timeout, Duration::from_millis(500));
        assert_eq!(b.connect_timeout, Duration::from_secs(2));
        let b = ZkLockBuilder::from_url("ZK://u:p%40ss@h/").unwrap();
        assert_eq!(b.digest, Some(("u".into(), "p@ss".into())));
        assert_eq!(b.base_path(), "/fencelock");
        let b = ZkLockBuilder::from_url("zk://h?root=locks").unwrap();
        assert_eq!(b.base_path(), "/locks");
    }

    #[test]
    fn reads_the_one_vocabulary() {
        let b = ZkLockBuilder::from_url(
            "zk://h/app?prefix=/locks&timeout=1500ms&session_timeout=6s&connect_timeout=2s&drift=20ms",
        )
        .unwrap();
        assert_eq!(b.base_path(), "/app/locks");
        assert_eq!(b.timeout, Duration::from_millis(1500));
        assert_eq!(b.session_timeout, Duration::from_secs(6));
        assert_eq!(b.connect_timeout, Duration::from_secs(2));
        assert_eq!(b.drift, Some(Duration::from_millis(20)));
        let b = ZkLockBuilder::from_url("zk://h?prefix=locks").unwrap();
        assert_eq!(b.base_path(), "/locks");
    }

    #[test]
    fn old_spellings_still_work() {
        let b = ZkLockBuilder::from_url("zk://h?call_timeout=750ms&root=/old").unwrap();
        assert_eq!(b.timeout, Duration::from_millis(750));
        assert_eq!(b.base_path(), "/old");
    }

    #[test]
    fn both_spellings_of_one_option_are_refused() {
        for (url, old, new) in [
            (
                "zk://h?call_timeout=1s&timeout=2s",
                "call_timeout",
                "timeout",
            ),
            ("zk://h?root=/a&prefix=/b", "root", "prefix"),
        ] {
            let e = ZkLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(
                e.message().contains(old) && e.message().contains(new),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn a_typo_is_refused_naming_the_known_options() {
        let e = ZkLockBuilder::from_url("zk://h?prefx=/a").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let m = e.message();
        assert!(m.contains("\"prefx\""), "{m}");
        for known in [
            "connect_timeout",
            "drift",
            "prefix",
            "session_timeout",
            "timeout",
        ] {
            assert!(m.contains(known), "{known} missing from {m}");
        }
        // The old spellings are read but not advertised.
        assert!(!m.contains("root") && !m.contains("call_timeout"), "{m}");
        let e = ZkLockBuilder::from_url("zk://u:hunter2@h?sesion_timeout=3s").unwrap_err();
        assert!(!e.message().contains("hunter2"), "{e}");
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
            "zk://h?prefix=/",
            "zk://h?root=/zookeeper",
            "zk://h?prefix=/zookeeper/x",
            "zk://h?session_timeout=forever",
            "zk://h?session_timeout=0",
            "zk://h?timeout=soon",
            "zk://h?bogus=1",
            "zk://h?drift=6s",
            "zk://h?timeout=1s&timeout=2s",
            "zk://h#frag",
            "zk://@h",
        ] {
            let e = ZkLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
    }
}
