//! The one URL grammar every backend reads, and its option vocabulary.
//!
//! ```text
//! scheme://[user[:password]@]host[:port][,host[:port]...][/path][?name=value[&...]][#fragment]
//! ```
//!
//! [`StoreUrl::parse`] splits a URL into those parts (percent-decoding the
//! user, password, path and option values) and hands the options out
//! through [`UrlOptions`], which remembers every name a backend asked for:
//! [`UrlOptions::finish`] rejects any option nobody asked for, naming the
//! known ones, so a typo such as `?prefx=x` is an error instead of a second
//! namespace. Old spellings stay readable through
//! [`UrlOptions::deprecated`], which logs a warning naming the new one.
//!
//! The shared vocabulary (a backend reads the ones that apply to it):
//!
//! | option | meaning |
//! |---|---|
//! | `connect_timeout` | bound on opening a connection or session |
//! | `timeout` | bound on one call to the store |
//! | `prefix` | the namespace every key lives under |
//! | `session_timeout` | how long the store keeps a silent client's grants |
//! | `drift` | margin subtracted from a grant's validity |
//! | `ca_file` | PEM file of the CA to trust (TLS schemes only) |
//!
//! Durations are written `0`, `500ms`, `1.5s`, `3s`, `2m`, `1h` (a bare
//! number is seconds).

mod options;
#[cfg(test)]
mod tests;

use crate::parse::percent_decode;
use crate::{Error, Result};

pub use options::UrlOptions;

/// A store URL split by the shared grammar.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The scheme, lower-cased.
    pub scheme: String,
    /// The user name, decoded (`None` without `user@`).
    pub user: Option<String>,
    /// The password, decoded (`None` without `:password`).
    pub password: Option<String>,
    /// The hosts as written (`host`, `host:port`, `[v6]:port`), trimmed.
    pub hosts: Vec<String>,
    /// Everything after the first `/` of the authority, decoded (`None`
    /// without a `/`; `Some("")` for a lone `/`).
    pub path: Option<String>,
    /// The fragment after `#`, as written.
    pub fragment: Option<String>,
    /// The options of the query.
    pub options: UrlOptions,
    redacted: String,
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreUrl")
            .field("url", &self.redacted)
            .finish_non_exhaustive()
    }
}

impl StoreUrl {
    /// Splits `url`. `store` names the store in errors ("Redis");
    /// `schemes` are the schemes the backend accepts (lower case).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig): no
    /// `://`, a scheme not in `schemes`, an empty host, bad
    /// percent-encoding. The password never appears in a message.
    pub fn parse(url: &str, store: &'static str, schemes: &[&str]) -> Result<StoreUrl> {
        let redacted = redact(url);
        let bad =
            |why: String| Error::invalid_config(format!("bad {store} URL {redacted:?}: {why}"));
        let expected = || {
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(format!("expected {}", expected())));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.contains(&scheme.as_str()) {
            return Err(bad(format!(
                "unknown scheme {scheme:?}; use {}",
                expected()
            )));
        }
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f.to_string())),
            None => (rest, None),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let decode = |what: &str, s: &str| {
            percent_decode(s)
                .ok_or_else(|| bad(format!("the {what} is not valid percent-encoding")))
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let password = p.map(|p| decode("password", p)).transpose()?;
                (Some(decode("user name", u)?), password)
            }
        };
        let hosts: Vec<String> = hosts.split(',').map(|h| h.trim().to_string()).collect();
        if hosts.iter().any(String::is_empty) {
            return Err(bad("an empty host in the host list".into()));
        }
        let path = path.map(|p| decode("path", p)).transpose()?;
        let options = UrlOptions::from_query(store, query, &redacted)?;
        Ok(StoreUrl {
            scheme,
            user,
            password,
            hosts,
            path,
            fragment,
            options,
            redacted,
        })
    }

    /// The URL as written, with the password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// `url` with the password of its user info replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
