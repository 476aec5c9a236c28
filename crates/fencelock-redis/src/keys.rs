//! The Redis key layout of one lock and the escaping that keeps user keys apart.

use fencelock_core::{Error, Result};

/// The default prefix of every Redis key and channel fencelock uses.
pub const DEFAULT_PREFIX: &str = "fencelock";

/// The Redis names of one lock: `<prefix>:{<escaped key>}:lock`,
/// `<prefix>:{<escaped key>}:fence`, the waiters' queue
/// `<prefix>:{<escaped key>}:queue` (liveness) and `…:order` (arrival), and
/// the channel `<prefix>:{<escaped key>}:wake`.
///
/// All share the hash tag `{<escaped key>}`, so the scripts that touch
/// several of them together are legal on Redis Cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyNames {
    pub(crate) lock: String,
    pub(crate) fence: String,
    pub(crate) queue: String,
    pub(crate) order: String,
    pub(crate) channel: String,
}

impl KeyNames {
    pub(crate) fn new(prefix: &str, key: &str) -> Self {
        let tag = escape(key);
        KeyNames {
            lock: format!("{prefix}:{{{tag}}}:lock"),
            fence: format!("{prefix}:{{{tag}}}:fence"),
            queue: format!("{prefix}:{{{tag}}}:queue"),
            order: format!("{prefix}:{{{tag}}}:order"),
            channel: format!("{prefix}:{{{tag}}}:wake"),
        }
    }
}

/// Percent-escapes `%`, `{` and `}` (and nothing else), so that the escaped
/// key never holds a brace (the hash tag stays exactly the key) and two
/// different keys never escape to the same string. Case is kept.
pub(crate) fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
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
        out.push(match rest.get(i..i + 3)? {
            "%25" => '%',
            "%7B" => '{',
            "%7D" => '}',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The `SCAN MATCH` pattern of every Redis key of every lock under
/// `prefix` (lock, fence counter, queues).
pub(crate) fn scan_pattern(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 12);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push_str(":{*}:*");
    p
}

/// The lock key a Redis key under `prefix` belongs to (its lock key,
/// fence counter or queues; `None` for anything else).
pub(crate) fn key_of_redis(prefix: &str, redis_key: &str) -> Option<String> {
    let rest = redis_key.strip_prefix(prefix)?.strip_prefix(":{")?;
    let tag = ["}:lock", "}:fence", "}:queue", "}:order"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))?;
    unescape(tag)
}

/// Checks a key prefix: non-empty, no braces (they would move the hash tag),
/// no whitespace or control characters.
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(Error::invalid_config("the Redis key prefix is empty"));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, '{' | '}') || c.is_control() || c.is_whitespace())
    {
        return Err(Error::invalid_config(format!(
            "the Redis key prefix {prefix:?} holds {c:?}; braces, whitespace and control characters are not allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_keys_map_back_to_lock_keys() {
        for key in ["a", "a{b}c", "100%", "%7B"] {
            let k = KeyNames::new("p*x", key);
            for redis_key in [&k.fence, &k.lock, &k.queue, &k.order] {
                assert_eq!(key_of_redis("p*x", redis_key).as_deref(), Some(key));
            }
        }
        assert_eq!(scan_pattern("p*x"), "p\\*x:{*}:*");
        assert_eq!(key_of_redis("p", "p:{a}:wake"), None);
        assert_eq!(key_of_redis("p", "q:{a}:lock"), None);
    }

    #[test]
    fn layout_shares_one_hash_tag() {
        let k = KeyNames::new("fencelock", "paymentConfirm:PK-1");
        assert_eq!(k.lock, "fencelock:{paymentConfirm:PK-1}:lock");
        assert_eq!(k.fence, "fencelock:{paymentConfirm:PK-1}:fence");
        assert_eq!(k.queue, "fencelock:{paymentConfirm:PK-1}:queue");
        assert_eq!(k.channel, "fencelock:{paymentConfirm:PK-1}:wake");
    }

    #[test]
    fn escaping_is_injective_on_tricky_keys() {
        let keys = [
            "a{b}c",
            "a%7Bb%7Dc",
            "{}",
            "%7B%7D",
            "%",
            "%25",
            "{",
            "}",
            "a",
            "A",
            "a}b",
            "a:b",
            "a}:lock",
            "🔒",
        ];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            let e = escape(k);
            assert!(!e.contains('{') && !e.contains('}'), "{k:?} -> {e:?}");
            assert!(seen.insert(e.clone()), "{k:?} collides as {e:?}");
        }
        assert_eq!(escape("{}"), "%7B%7D");
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("fencelock").is_ok());
        assert!(validate_prefix("app:locks").is_ok());
        for bad in ["", "a{b", "a}", "a b", "a\nb"] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
