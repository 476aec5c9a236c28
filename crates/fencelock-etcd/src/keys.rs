//! Where a lock lives in etcd: the key layout shared with Go's
//! `concurrency.Mutex` and `etcdctl lock`.

use fencelock_core::{Error, Result};

/// The prefix used when none is given.
pub(crate) const DEFAULT_PREFIX: &str = "fencelock";

/// Escapes a lock key so that it holds no `/`: `%` becomes `%25` and `/`
/// becomes `%2F`. Without this, the contenders of key `a` (under `a/`) would
/// include those of key `a/b` (under `a/b/`).
pub(crate) fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; `None` for text `escape` cannot have produced.
pub(crate) fn unescape(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i..i + 3)?;
        out.push(match code {
            "%25" => '%',
            "%2F" => '/',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The layout: `<prefix>/<escaped key>/<lease id in lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    prefix: String,
}

impl Layout {
    /// A layout under `prefix` (trailing slashes ignored; empty = top level).
    pub(crate) fn new(prefix: &str) -> Result<Self> {
        let prefix = prefix.trim_end_matches('/');
        if let Some(c) = prefix.chars().find(|c| c.is_control()) {
            return Err(Error::invalid_config(format!(
                "the etcd key prefix holds a control character (U+{:04X})",
                u32::from(c)
            )));
        }
        Ok(Layout {
            prefix: prefix.to_string(),
        })
    }

    /// The prefix without a trailing slash.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name Go's `concurrency.NewMutex` and `etcdctl lock` take for `key`.
    pub(crate) fn mutex_name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            escape(key)
        } else {
            format!("{}/{}", self.prefix, escape(key))
        }
    }

    /// The range every lock of this layout lives under (`<prefix>/`, or
    /// empty for the top level).
    pub(crate) fn root(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The lock key an etcd contender key belongs to, if it is one of ours.
    pub(crate) fn key_of(&self, etcd_key: &str) -> Option<String> {
        let rest = etcd_key.strip_prefix(&self.root())?;
        let (escaped, contender) = rest.rsplit_once('/')?;
        if escaped.is_empty() || contender.is_empty() || escaped.contains('/') {
            return None;
        }
        unescape(escaped)
    }

    /// The range every contender's key of `key` lives under (ends in `/`).
    pub(crate) fn contenders(&self, key: &str) -> String {
        format!("{}/", self.mutex_name(key))
    }
}

/// One contender's key: `<contenders><lease id as %x>`, exactly as Go's
/// `concurrency.Mutex` and `etcdctl lock` write theirs. Every acquisition
/// has a lease of its own, so every acquisition is its own key, and one
/// client can queue several acquisitions of one key in true arrival order.
pub(crate) fn contender_key(contenders: &str, lease: i64) -> String {
    format!("{contenders}{lease:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_slashes_do_not_nest() {
        let l = Layout::new("fencelock").unwrap();
        assert_eq!(l.contenders("a"), "fencelock/a/");
        assert_eq!(l.contenders("a/b"), "fencelock/a%2Fb/");
        assert_eq!(l.contenders("100%"), "fencelock/100%25/");
        assert_eq!(l.contenders("%2F"), "fencelock/%252F/");
        assert!(!l.contenders("a/b").starts_with(&l.contenders("a")));
        assert_eq!(contender_key("p/k/", 0x694d_7a1b_2c3d), "p/k/694d7a1b2c3d");
    }

    #[test]
    fn contender_keys_map_back_to_lock_keys() {
        let l = Layout::new("fencelock").unwrap();
        for key in ["a", "a/b", "100%", "%2F", "x:y"] {
            let ck = contender_key(&l.contenders(key), 0x1f);
            assert_eq!(l.key_of(&ck).as_deref(), Some(key));
        }
        assert_eq!(l.key_of("other/a/1f"), None);
        assert_eq!(unescape("%2"), None);
    }

    #[test]
    fn empty_prefix_gives_etcdctl_names() {
        let l = Layout::new("").unwrap();
        assert_eq!(l.mutex_name("orders"), "orders");
        assert_eq!(
            Layout::new("app/locks/").unwrap().mutex_name("x"),
            "app/locks/x"
        );
        assert!(Layout::new("a\nb").is_err());
    }
}
