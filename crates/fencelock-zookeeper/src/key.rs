//! Node layout: escaping a lock key into one path segment, and the
//! Curator-style names of the contender nodes.

use std::fmt::Write as _;

use fencelock_core::OwnerId;

/// The lock name Curator's `InterProcessMutex` uses for its contender nodes.
pub const LOCK_NAME: &str = "lock-";
/// The prefix of a Curator "protected" node name, followed by a UUID and `-`.
pub const PROTECTED_PREFIX: &str = "_c_";

/// Whether ZooKeeper refuses `c` in a path. Its `PathUtils.validatePath`
/// checks UTF-16 code units: control characters, U+D800..U+F8FF (which
/// takes in the surrogates, so every character above U+FFFF, emoji
/// included) and U+FFF0..U+FFFF.
pub(crate) fn forbidden(c: char) -> bool {
    c.is_control() || ('\u{E000}'..='\u{F8FF}').contains(&c) || c >= '\u{FFF0}'
}

/// Escapes a (validated) lock key into one ZooKeeper path segment.
///
/// Injective, and the identity for keys without `%`, `/` or characters
/// ZooKeeper refuses, other than the whole keys `.` and `..`:
///
/// - `%` and `/` and every character ZooKeeper refuses (controls,
///   U+E000..U+F8FF, U+FFF0 and above: emoji too) become `%XX` per UTF-8
///   byte (upper-case hex);
/// - the whole keys `.` and `..` (invalid path segments) become `%2E` and
///   `%2E%2E`.
///
/// ```
/// use fencelock_zookeeper::escape_key;
///
/// assert_eq!(escape_key("paymentConfirm:PK-123"), "paymentConfirm:PK-123");
/// assert_eq!(escape_key("a/b"), "a%2Fb");
/// assert_eq!(escape_key("100%"), "100%25");
/// assert_eq!(escape_key(".."), "%2E%2E");
/// assert_eq!(escape_key("a.b"), "a.b");
/// assert_eq!(escape_key("é"), "é");
/// assert_eq!(escape_key("🔒"), "%F0%9F%94%92");
/// ```
pub fn escape_key(key: &str) -> String {
    match key {
        "." => return "%2E".to_string(),
        ".." => return "%2E%2E".to_string(),
        _ => {}
    }
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if c == '%' || c == '/' || forbidden(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape_key`]; `None` for a segment no key escapes to.
pub fn unescape_key(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(out).ok()?;
    (escape_key(&key) == segment).then_some(key)
}

/// The create path of a contender node: `<parent>/_c_<owner>-lock-`; the
/// server appends the 10-digit sequence number.
pub(crate) fn node_prefix(parent: &str, owner: OwnerId) -> String {
    format!("{parent}/{}", node_name_prefix(owner))
}

/// `_c_<owner>-lock-`.
pub(crate) fn node_name_prefix(owner: OwnerId) -> String {
    format!("{PROTECTED_PREFIX}{owner}-{LOCK_NAME}")
}

/// The sequence number of a contender node name: the digits after the last
/// `lock-` (Curator's `fixForSorting`). `None` for nodes that are not
/// contenders.
pub(crate) fn sequence(name: &str) -> Option<i64> {
    let at = name.rfind(LOCK_NAME)?;
    let digits = &name[at + LOCK_NAME.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The owner id a protected node name carries, if any.
pub(crate) fn owner_of(name: &str) -> Option<OwnerId> {
    let rest = name.strip_prefix(PROTECTED_PREFIX)?;
    // A hyphenated UUID is 36 characters, followed by `-`.
    let uuid = rest.get(..36)?;
    if rest.get(36..37) != Some("-") {
        return None;
    }
    OwnerId::parse(uuid)
}

/// The contender nodes among `children`, in lock order: by sequence number,
/// then by name.
pub(crate) fn contenders(children: Vec<String>) -> Vec<String> {
    let mut v: Vec<(i64, String)> = children
        .into_iter()
        .filter_map(|c| sequence(&c).map(|s| (s, c)))
        .collect();
    v.sort();
    v.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_injective_and_round_trips() {
        let keys = [
            "a",
            "A",
            "/",
            "//",
            ".",
            "..",
            "...",
            "a/b",
            "a%2Fb",
            "%2E",
            "%",
            "%25",
            "a.b",
            "🔒",
            "x\u{E000}y",
            "x\u{FFF0}",
            "paymentConfirm:PK-123",
            "a b",
        ];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            let e = escape_key(k);
            assert!(!e.contains('/'), "{k:?} -> {e:?}");
            assert!(e != "." && e != ".." && !e.is_empty());
            assert!(!e.chars().any(forbidden), "{k:?} -> {e:?}");
            assert_eq!(unescape_key(&e).as_deref(), Some(k), "{k:?} -> {e:?}");
            assert!(seen.insert(e), "{k:?} collides");
        }
        for plain in ["abc", "A-b_c:9", "paymentConfirm:PK-123"] {
            assert_eq!(escape_key(plain), plain);
        }
        assert_eq!(unescape_key("%2e"), None);
        assert_eq!(unescape_key("%zz"), None);
    }

    #[test]
    fn names_and_sequences() {
        let owner = OwnerId::random();
        let name = format!("{}0000000042", node_name_prefix(owner));
        assert_eq!(sequence(&name), Some(42));
        assert_eq!(owner_of(&name), Some(owner));
        assert_eq!(sequence("lock-0000000007"), Some(7));
        assert_eq!(owner_of("lock-0000000007"), None);
        assert_eq!(sequence("_c_x-lock-"), None);
        assert_eq!(sequence("other"), None);
        let order = contenders(vec![
            format!("{}0000000003", node_name_prefix(OwnerId::random())),
            "lock-0000000001".into(),
            "junk".into(),
            format!("{}0000000002", node_name_prefix(owner)),
        ]);
        assert_eq!(order.len(), 3);
        assert_eq!(order[0], "lock-0000000001");
        assert_eq!(owner_of(&order[1]), Some(owner));
    }
}
