//! Redis URLs, read through the one grammar of `fencelock_core::raw::url`:
//! the options fencelock reads, the ones handed on to redis-rs, and the
//! node URLs redis-rs connects to.

use std::path::PathBuf;
use std::time::Duration;

use fencelock_core::raw::url::{StoreUrl, UrlOptions};
use fencelock_core::{Error, Result};

use super::target::{SentinelSpec, Target};

/// The schemes of a Redis URL (Redlock's are its own).
pub(crate) const SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
];

/// The options redis-rs itself reads from a TCP node URL; handed on to it
/// unchanged. (The `#insecure` fragment is handed on too.)
const REDIS_RS_OPTIONS: &[&str] = &["protocol"];

/// A Redis URL, read.
pub(crate) struct UrlConfig {
    pub(crate) target: Target,
    pub(crate) common: Common,
    pub(crate) wait_replicas: Option<usize>,
    pub(crate) wait_timeout: Option<Duration>,
    pub(crate) handoff_window: Option<Duration>,
}

/// The options every Redis URL form reads (Redlock's too).
pub(crate) struct Common {
    pub(crate) prefix: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) ca_file: Option<PathBuf>,
}

impl Common {
    /// Reads `prefix`, `connect_timeout`, `timeout` and `ca_file` (the
    /// last one only on a TLS `scheme`).
    pub(crate) fn read(o: &mut UrlOptions, scheme: &str) -> Result<Common> {
        let prefix = o.string("prefix");
        let connect_timeout = duration_or_millis(o, "connect_timeout", "connect_timeout_ms")?;
        let timeout = duration_or_millis(o, "timeout", "response_timeout_ms")?;
        let ca_file = match o.string("ca_file") {
            None => None,
            Some(_) if !is_tls(scheme) => {
                return Err(o.error(
                    "ca_file",
                    format!(
                        "needs TLS: use {}:// instead of {scheme}://",
                        tls_twin(scheme)
                    ),
                ))
            }
            Some(path) if path.is_empty() => {
                return Err(o.error("ca_file", "is empty: give the path of a PEM file"))
            }
            Some(path) => Some(PathBuf::from(path)),
        };
        Ok(Common {
            prefix,
            connect_timeout,
            timeout,
            ca_file,
        })
    }
}

/// A duration option `new` (`500ms`, `3s`), or its old spelling `old` in
/// plain milliseconds (read with a deprecation warning; both is an error).
pub(crate) fn duration_or_millis(
    o: &mut UrlOptions,
    new: &'static str,
    old: &'static str,
) -> Result<Option<Duration>> {
    let older = o.deprecated_millis(old, new)?;
    let newer = o.duration(new)?;
    Ok(older.or(newer))
}

fn is_tls(scheme: &str) -> bool {
    scheme.starts_with("rediss") || scheme == "redlocks"
}

/// The TLS scheme of the same form (`rediss+cluster` for `redis+cluster`).
fn tls_twin(scheme: &str) -> String {
    match scheme {
        "redlock" => "redlocks".to_string(),
        s => s.replacen("redis", "rediss", 1),
    }
}

/// What every node URL made from one URL shares: scheme, user info, and
/// the options and fragment redis-rs reads.
pub(crate) struct NodeParts {
    scheme: &'static str,
    userinfo: String,
    suffix: String,
}

impl NodeParts {
    /// Takes the user info, the redis-rs options and the fragment of `u`;
    /// `scheme` is the nodes' (`redis` or `rediss`).
    pub(crate) fn take(u: &mut StoreUrl, scheme: &'static str) -> NodeParts {
        let userinfo = match (&u.user, &u.password) {
            (None, _) => String::new(),
            (Some(user), None) => format!("{}@", encode(user)),
            (Some(user), Some(pw)) => format!("{}:{}@", encode(user), encode(pw)),
        };
        let passed: Vec<String> = u
            .options
            .take_named(REDIS_RS_OPTIONS)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode(&v)))
            .collect();
        let mut suffix = String::new();
        if !passed.is_empty() {
            suffix = format!("?{}", passed.join("&"));
        }
        if let Some(f) = &u.fragment {
            suffix.push('#');
            suffix.push_str(f);
        }
        NodeParts {
            scheme,
            userinfo,
            suffix,
        }
    }

    /// The URL of the node `host` (`host:port` as written) with the
    /// database `db` (`None`: no path).
    pub(crate) fn url(&self, host: &str, db: Option<&str>) -> String {
        format!("{}://{}{host}{}", self.scheme, self.userinfo, self.tail(db))
    }

    /// What follows the host in a node URL: `/db`, options, fragment.
    fn tail(&self, db: Option<&str>) -> String {
        let path = db.map(|d| format!("/{}", encode(d))).unwrap_or_default();
        format!("{path}{}", self.suffix)
    }
}

/// Reads a Redis URL (`redis://`, `rediss://`, `+cluster`, `+sentinel`).
pub(crate) fn parse(url: &str) -> Result<UrlConfig> {
    let mut u = StoreUrl::parse(url, "Redis", SCHEMES)?;
    let shown = u.redacted().to_string();
    let bad = |why: String| Error::invalid_config(format!("bad Redis URL {shown:?}: {why}"));
    let scheme = u.scheme.clone();
    let node_scheme = if is_tls(&scheme) { "rediss" } else { "redis" };
    let common = Common::read(&mut u.options, &scheme)?;
    let o = &mut u.options;
    let wait_replicas = o.parse::<usize>("wait_replicas", "a whole number of replicas")?;
    let wait_timeout = duration_or_millis(o, "wait_timeout", "wait_timeout_ms")?;
    if wait_timeout.is_some() && wait_replicas.is_none() {
        return Err(o.error(
            "wait_timeout",
            "bounds WAIT, which only wait_replicas=K turns on",
        ));
    }
    let handoff_window = duration_or_millis(o, "handoff_window", "handoff_window_ms")?;
    let parts = NodeParts::take(&mut u, node_scheme);
    let StoreUrl {
        hosts,
        path,
        options,
        ..
    } = u;
    options.finish()?;
    let target = if scheme.ends_with("+sentinel") {
        let spec = sentinel(&scheme, &hosts, path.as_deref(), &parts, node_scheme);
        Target::Sentinel(spec.map_err(bad)?)
    } else {
        let nodes: Vec<String> = hosts
            .iter()
            .map(|h| parts.url(h, path.as_deref()))
            .collect();
        for node in &nodes {
            check_node_url(node)?;
        }
        if scheme.ends_with("+cluster") {
            Target::Cluster(nodes)
        } else if nodes.len() == 1 {
            Target::Single(nodes.into_iter().next().unwrap_or_default())
        } else {
            return Err(bad(format!(
                "{scheme}:// takes one host; use {scheme}+cluster:// for a Redis Cluster, \
                 {scheme}+sentinel:// for Sentinels or redlock:// for Redlock"
            )));
        }
    };
    Ok(UrlConfig {
        target,
        common,
        wait_replicas,
        wait_timeout,
        handoff_window,
    })
}

/// The Sentinel part of a `redis+sentinel://` URL: the hosts are Sentinels,
/// the path is `<master-name>[/<db>]`.
fn sentinel(
    url_scheme: &str,
    hosts: &[String],
    path: Option<&str>,
    parts: &NodeParts,
    scheme: &'static str,
) -> std::result::Result<SentinelSpec, String> {
    let path = path.unwrap_or_default();
    let (master, db) = match path.split_once('/') {
        Some((m, d)) => (m, Some(d).filter(|d| !d.is_empty())),
        None => (path, None),
    };
    if master.is_empty() || master.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "no master name: expected {url_scheme}://host:port,host:port/<master-name>"
        ));
    }
    if let Some(d) = db {
        d.parse::<u32>()
            .map_err(|_| format!("database {d:?} is not a number"))?;
    }
    let sentinels: Vec<String> = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
    for s in &sentinels {
        check_node_url(s).map_err(|e| e.message().to_string())?;
    }
    let spec = SentinelSpec {
        sentinels,
        master: master.to_string(),
        scheme: scheme.to_string(),
        userinfo: parts.userinfo.clone(),
        tail: parts.tail(db),
    };
    check_node_url(&spec.node_url("127.0.0.1", 6379)).map_err(|e| e.message().to_string())?;
    Ok(spec)
}

/// Checks that redis-rs accepts `url` as a `redis://` or `rediss://` node.
pub(crate) fn check_node_url(url: &str) -> Result<()> {
    let shown = fencelock_core::raw::url::redact(url);
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(Error::invalid_config(format!(
            "{shown:?} is not a redis:// or rediss:// URL"
        )));
    }
    redis::Client::open(url).map(drop).map_err(|e| {
        Error::invalid_config(format!("{shown:?} is not a valid Redis URL: {e}")).with_source(e)
    })
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
