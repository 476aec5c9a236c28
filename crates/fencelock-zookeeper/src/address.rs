//! Hosts and paths as ZooKeeper takes them.

/// The default ZooKeeper port.
pub const DEFAULT_PORT: u16 = 2181;

/// `host` or `host:port` (IPv6 in brackets) to `host:port`.
pub(crate) fn normalize_host(host: &str) -> std::result::Result<String, String> {
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
pub(crate) fn normalize_path(path: &str, allow_empty: bool) -> std::result::Result<String, String> {
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
