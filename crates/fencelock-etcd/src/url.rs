//! `etcd://` and `etcds://` URLs, read with the one URL grammar of
//! `fencelock_core::raw::url`.

use std::path::PathBuf;

use etcd_client::TlsOptions;
use fencelock_core::raw::parse::duration;
use fencelock_core::raw::url::StoreUrl;
use fencelock_core::{Error, Result};

use crate::config::{warn_lease_ttl, EtcdLockBuilder};

/// The schemes, and whether each talks TLS.
const SCHEMES: &[(&str, bool)] = &[
    ("etcd", false),
    ("etcd+http", false),
    ("etcds", true),
    ("etcd+https", true),
];

impl EtcdLockBuilder {
    /// Parses a URL:
    ///
    /// `etcd://[user[:password]@]host:port[,host:port...][/prefix][?options]`
    ///
    /// `etcds://` is the same over TLS. Without a path (or `prefix`
    /// option) the prefix is `fencelock`; a lone `/` means the empty
    /// prefix (lock names as `etcdctl lock` takes them). User and password
    /// may be percent-encoded. Options, durations written `500ms`, `3s`,
    /// `2m`:
    ///
    /// | option | meaning | default |
    /// |---|---|---|
    /// | `prefix` | the key prefix (instead of the path; not both) | `fencelock` |
    /// | `connect_timeout` | bound on opening a connection to one endpoint | `2s` |
    /// | `timeout` | bound on one call to one endpoint | `2s` |
    /// | `poll_interval` | safety-net re-check of a waiter | `2s` |
    /// | `drift` | least margin taken off every grant's deadline | the acquire's |
    /// | `ca_file` | PEM file of the CA to trust (`etcds://` only) | system: none |
    /// | `domain` | the server name to verify (`etcds://` only) | the host |
    ///
    /// Old spellings, read for one release with a warning: `request_timeout`
    /// (`timeout`), `poll` (`poll_interval`). `lease_ttl` (or `ttl`) no
    /// longer sets anything: every grant has an etcd lease of its own with
    /// the acquire's TTL; it is accepted with a warning saying so.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// naming what is wrong; an unknown option is named with the known ones.
    pub fn from_url(url: &str) -> Result<Self> {
        let names: Vec<&str> = SCHEMES.iter().map(|(s, _)| *s).collect();
        let u = StoreUrl::parse(url, "etcd", &names)?;
        let bad =
            |why: String| Error::invalid_config(format!("bad etcd URL {:?}: {why}", u.redacted()));
        let tls = SCHEMES.iter().any(|(s, tls)| *tls && *s == u.scheme);
        for host in &u.hosts {
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                return Err(bad(format!("endpoint {host:?} is not host:port")));
            }
        }
        if u.fragment.is_some() {
            return Err(bad("a fragment (#...) means nothing to etcd".into()));
        }
        let mut b = EtcdLockBuilder::new(u.hosts.clone());
        if let Some(user) = &u.user {
            if user.is_empty() {
                return Err(bad("an empty user name".into()));
            }
            b.user = Some((user.clone(), u.password.clone().unwrap_or_default()));
        }
        if tls {
            b.tls = Some(TlsOptions::new());
        }
        let path = u.path.clone();
        let mut o = u.options;
        match (path, o.string("prefix")) {
            (Some(_), Some(_)) => return Err(o.error(
                "prefix",
                "the URL path sets the prefix too (a lone / is the empty prefix); give one of them",
            )),
            (Some(p), None) | (None, Some(p)) => b.prefix = p,
            (None, None) => {}
        }
        if let Some(d) = o.duration("connect_timeout")? {
            b.connect_timeout = d;
        }
        if let Some(d) = o.duration_or("timeout", "request_timeout")? {
            b.request_timeout = d;
        }
        if let Some(d) = o.duration_or("poll_interval", "poll")? {
            b.poll_interval = d;
        }
        b.drift = o.duration("drift")?;
        for old in ["lease_ttl", "ttl"] {
            if let Some(v) = o.deprecated(old, "LockOptions::with_ttl")? {
                let ttl = duration(&v).map_err(|why| o.error(old, why))?;
                warn_lease_ttl(&format!("URL option {old}"), ttl);
            }
        }
        let (ca_file, domain) = (o.string("ca_file"), o.string("domain"));
        for (name, given) in [("ca_file", ca_file.is_some()), ("domain", domain.is_some())] {
            if given && !tls {
                return Err(o.error(name, "needs etcds:// (TLS)"));
            }
        }
        b.ca_file = ca_file.map(PathBuf::from);
        b.domain = domain;
        o.finish()?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fencelock_core::ErrorKind;

    use super::*;

    #[test]
    fn parses_endpoints_prefix_user_and_options() {
        let b = EtcdLockBuilder::from_url(
            "etcd://u%40x:p%3Aw@h1:1,h2:2,h3:3/app/locks?timeout=500ms&connect_timeout=1s&poll_interval=3s&drift=20ms",
        )
        .unwrap();
        assert_eq!(b.endpoints, ["h1:1", "h2:2", "h3:3"]);
        assert_eq!(b.prefix, "app/locks");
        assert_eq!(b.user, Some(("u@x".into(), "p:w".into())));
        assert_eq!(b.request_timeout, Duration::from_millis(500));
        assert_eq!(b.connect_timeout, Duration::from_secs(1));
        assert_eq!(b.poll_interval, Duration::from_secs(3));
        assert_eq!(b.drift, Some(Duration::from_millis(20)));
        assert_eq!(b.urls(), ["http://h1:1", "http://h2:2", "http://h3:3"]);
        let dbg = format!("{b:?}");
        assert!(dbg.contains("u@x") && !dbg.contains("p:w"), "{dbg}");

        let b = EtcdLockBuilder::from_url("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(b.prefix, "fencelock");
        let b = EtcdLockBuilder::from_url("etcd://127.0.0.1:2379/").unwrap();
        assert_eq!(b.prefix, "");
        let b = EtcdLockBuilder::from_url("etcd://127.0.0.1:2379?prefix=app").unwrap();
        assert_eq!(b.prefix, "app");
        let b = EtcdLockBuilder::from_url("etcds://127.0.0.1:2379?domain=etcd").unwrap();
        assert_eq!(b.urls(), ["https://127.0.0.1:2379"]);
        assert_eq!(b.domain.as_deref(), Some("etcd"));
    }

    #[test]
    fn old_spellings_still_read() {
        let b = EtcdLockBuilder::from_url("etcd://h:1?request_timeout=700ms&poll=5s").unwrap();
        assert_eq!(b.request_timeout, Duration::from_millis(700));
        assert_eq!(b.poll_interval, Duration::from_secs(5));
        // Accepted (with a warning), and sets nothing.
        let b = EtcdLockBuilder::from_url("etcd://h:1?lease_ttl=3s").unwrap();
        let plain = EtcdLockBuilder::from_url("etcd://h:1").unwrap();
        assert_eq!(format!("{b:?}"), format!("{plain:?}"));
        EtcdLockBuilder::from_url("etcd://h:1?ttl=3").unwrap();
    }

    #[test]
    fn an_option_and_its_old_spelling_or_path_and_prefix_are_refused_together() {
        for (url, named) in [
            (
                "etcd://h:1?timeout=1s&request_timeout=1s",
                "request_timeout",
            ),
            ("etcd://h:1?poll_interval=1s&poll=1s", "poll"),
            ("etcd://h:1/app?prefix=app", "prefix"),
            ("etcd://h:1/?prefix=app", "prefix"),
        ] {
            let e = EtcdLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(e.message().contains(named), "{url}: {e}");
        }
    }

    #[test]
    fn a_typo_is_refused_naming_the_known_options() {
        let e = EtcdLockBuilder::from_url("etcd://u:secret@h:1?prefx=app").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let m = e.message();
        assert!(m.contains("\"prefx\""), "{m}");
        for known in [
            "prefix",
            "timeout",
            "connect_timeout",
            "poll_interval",
            "drift",
            "ca_file",
            "domain",
        ] {
            assert!(m.contains(known), "{known} missing from: {m}");
        }
        assert!(!m.contains("secret"), "{m}");
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
            "etcd://h1:1?timeout=abc",
            "etcd://h1:1?bogus=1",
            "etcd://h1:1?ca_file=/x",
            "etcd://h1:1?domain=x",
            "etcd://h1:1/%zz",
            "etcd://h1:1#frag",
            "etcd://:pw@h1:1",
        ] {
            let e = EtcdLockBuilder::from_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        }
        assert!(EtcdLockBuilder::new(Vec::<String>::new()).check().is_err());
        assert!(EtcdLockBuilder::new(["h:1"])
            .with_request_timeout(Duration::ZERO)
            .check()
            .is_err());
    }
}
