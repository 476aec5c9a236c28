//! The one public error type of fencelock.

use std::fmt;

/// A boxed error from a store client, kept reachable through [`std::error::Error::source`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, fencelock_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form a caller can branch on.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The lock key breaks the key rules (empty, too long, NUL or control characters).
    InvalidKey,
    /// An option, URL or builder setting is out of range or malformed.
    InvalidConfig,
    /// The store did not answer within its response timeout: an outage or a
    /// paused server, not contention. Retryable. (The wait bound running out
    /// while another owner held the lock is [`ErrorKind::Busy`].)
    Timeout,
    /// The wait bound ran out while another owner held the lock (or others
    /// were queued before this caller): contention, not a fault. The
    /// caller's fallback is the right answer; the store answered throughout.
    Busy,
    /// The grant was lost: its validity deadline passed, the session or lease
    /// expired, or another owner holds the key now. A critical section that
    /// was running may have overlapped another holder's.
    Lost,
    /// The operation needs a held lock and there is none.
    NotHeld,
    /// The store could not be reached or the connection broke mid-call.
    Connection,
    /// The store answered with an error.
    Backend,
    /// The backend cannot do this (see its [`Capabilities`](crate::Capabilities)).
    Unsupported,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid key",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::Timeout => "the store did not answer in time",
            ErrorKind::Busy => "still busy",
            ErrorKind::Lost => "lock lost",
            ErrorKind::NotHeld => "lock not held",
            ErrorKind::Connection => "connection failed",
            ErrorKind::Backend => "backend error",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error every fencelock operation returns.
///
/// It carries a [`ErrorKind`], a message, the lock key when one is involved,
/// and the store client's own error as its [`source`](std::error::Error::source).
/// `Display` prints the kind, the key and the message, never the source, so a
/// report that walks the source chain prints each cause once.
pub struct Error {
    kind: ErrorKind,
    message: String,
    key: Option<String>,
    retryable: Option<bool>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            key: None,
            retryable: None,
            source: None,
        }
    }

    /// [`ErrorKind::InvalidKey`] with a reason.
    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidKey, message)
    }

    /// [`ErrorKind::InvalidConfig`] with a reason.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// [`ErrorKind::Timeout`] with a reason: the store did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// [`ErrorKind::Busy`] with a reason: the wait bound ran out under contention.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy, message)
    }

    /// [`ErrorKind::Lost`] with a reason.
    pub fn lost(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Lost, message)
    }

    /// [`ErrorKind::NotHeld`] with a reason.
    pub fn not_held(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotHeld, message)
    }

    /// [`ErrorKind::Connection`] with a reason.
    pub fn connection(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connection, message)
    }

    /// [`ErrorKind::Backend`] with a reason.
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }

    /// [`ErrorKind::Unsupported`] with a reason.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Attaches the lock key the error is about.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Attaches the underlying cause (usually the store client's error).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Overrides whether retrying the same call may succeed.
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without kind, key or source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The lock key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the same call may succeed when tried again because the store
    /// may answer next time: true for [`ErrorKind::Timeout`] and
    /// [`ErrorKind::Connection`] unless a backend said otherwise, false for
    /// the rest. [`ErrorKind::Busy`] is false: the store answered, and
    /// whether to wait longer is the caller's choice, not a fault to retry.
    pub fn is_retryable(&self) -> bool {
        self.retryable.unwrap_or(matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Connection
        ))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(key) = &self.key {
            write!(f, " (key {key:?})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(key) = &self.key {
            d.field("key", key);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_does_not_repeat_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::connection("cannot reach 127.0.0.1:1")
            .with_key("k")
            .with_source(io);
        assert_eq!(
            e.to_string(),
            "connection failed (key \"k\"): cannot reach 127.0.0.1:1"
        );
        assert_eq!(e.source().map(|s| s.to_string()), Some("refused".into()));
        assert!(e.is_retryable());
        assert!(!Error::invalid_key("x").is_retryable());
        assert!(!Error::timeout("x").with_retryable(false).is_retryable());
        assert!(Error::timeout("x").is_retryable());
        assert!(!Error::busy("x").is_retryable());
        assert_ne!(Error::busy("x").kind(), Error::timeout("x").kind());
    }
}
