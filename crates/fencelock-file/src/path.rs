//! Lock key → lock file path: injective, safe on any POSIX file system.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The longest file-name segment written (file systems allow 255 bytes).
const SEGMENT: usize = 200;

/// Escapes `key` byte by byte: ASCII letters, digits, `-` and `_` stand for
/// themselves, every other byte is `%XX` (so `.`, `..` and `/` can never
/// mean anything to the file system), then splits the result into
/// directories of at most 200 bytes; the last segment gets `.lock`. Two
/// different keys never map to one path.
pub(crate) fn lock_path(dir: &Path, key: &str) -> PathBuf {
    let mut escaped = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            escaped.push(char::from(b));
        } else {
            let _ = write!(escaped, "%{b:02X}");
        }
    }
    let mut path = dir.join("keys");
    let bytes = escaped.as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(SEGMENT).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let seg = String::from_utf8_lossy(chunk);
        if i + 1 == chunks.len() {
            path.push(format!("{seg}.lock"));
        } else {
            path.push(format!("{seg}.d"));
        }
    }
    path
}

/// The key a lock file path stands for (inverse of [`lock_path`]).
pub(crate) fn key_of(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir.join("keys")).ok()?;
    let mut escaped = String::new();
    let parts: Vec<_> = rel.iter().collect();
    for (i, part) in parts.iter().enumerate() {
        let part = part.to_str()?;
        let seg = if i + 1 == parts.len() {
            part.strip_suffix(".lock")?
        } else {
            part.strip_suffix(".d")?
        };
        escaped.push_str(seg);
    }
    let mut out = Vec::new();
    let b = escaped.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_injective_and_reversible() {
        let dir = Path::new("/locks");
        let keys = [
            "a", "A", ".", "..", "/", "a/b", "a%2Fb", "{}", "🔒", "a.lock", "a.d",
        ];
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            let p = lock_path(dir, k);
            assert!(seen.insert(p.clone()), "{k:?} collides");
            assert_eq!(key_of(dir, &p).as_deref(), Some(k));
            for c in p.strip_prefix("/locks/keys").unwrap().iter() {
                assert!(c != "." && c != "..");
            }
        }
        let long = "é".repeat(256);
        let p = lock_path(dir, &long);
        assert!(p.iter().all(|c| c.len() <= 255));
        assert_eq!(key_of(dir, &p), Some(long));
    }
}
