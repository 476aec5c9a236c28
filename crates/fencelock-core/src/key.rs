//! Lock key rules, checked before any network call.

use crate::error::{Error, Result};

/// The longest key, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 512;

/// Checks a lock key against the rules every backend shares: non-empty, at
/// most [`MAX_KEY_LEN`] bytes, no NUL and no control characters. Keys are
/// case-sensitive; backends escape whatever their store cannot hold.
///
/// # Errors
///
/// [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey) naming the rule broken.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_key("the key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid_key(format!(
            "the key is {} bytes long; the limit is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if let Some((at, c)) = key.char_indices().find(|(_, c)| c.is_control()) {
        let what = if c == '\0' {
            "a NUL byte".to_string()
        } else {
            format!("a control character (U+{:04X})", u32::from(c))
        };
        return Err(Error::invalid_key(format!(
            "the key holds {what} at byte {at}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn accepts_ordinary_and_odd_but_printable_keys() {
        for key in [
            "paymentConfirm:PK-123",
            "/",
            ".",
            "..",
            "a/b",
            "{}",
            "🔒",
            &"a".repeat(512),
        ] {
            validate_key(key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_keys_with_a_reason() {
        for (key, reason) in [
            ("", "empty"),
            ("a\0b", "NUL"),
            ("a\nb", "U+000A"),
            ("\u{7f}", "U+007F"),
            ("\u{85}", "U+0085"),
        ] {
            let e = validate_key(key).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidKey);
            assert!(e.to_string().contains(reason), "{e}");
        }
        let long = "a".repeat(513);
        assert!(validate_key(&long)
            .unwrap_err()
            .to_string()
            .contains("513 bytes"));
        // 128 four-byte characters = 512 bytes: fine; one more is too long.
        assert!(validate_key(&"🔒".repeat(128)).is_ok());
        assert!(validate_key(&"🔒".repeat(129)).is_err());
    }
}
