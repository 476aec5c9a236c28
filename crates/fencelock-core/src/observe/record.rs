//! Where metrics are recorded; each function is a no-op without the
//! `metrics` feature.

use std::time::Duration;

use crate::ErrorKind;

/// The `outcome` label of an error.
pub(crate) fn outcome(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Busy => "busy",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Connection => "connection",
        ErrorKind::Lost => "lost",
        ErrorKind::InvalidKey => "invalid_key",
        ErrorKind::InvalidConfig => "invalid_config",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::NotHeld => "not_held",
        ErrorKind::Backend => "backend",
    }
}

/// One acquire ended with `outcome` after `took`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn acquire(
    backend: &'static str,
    op: &'static str,
    outcome: &'static str,
    took: Duration,
) {
    #[cfg(feature = "metrics")]
    {
        let labels = [("backend", backend), ("op", op), ("outcome", outcome)];
        metrics::histogram!("fencelock_acquire_seconds", &labels).record(took.as_secs_f64());
        metrics::counter!("fencelock_acquire_total", &labels).increment(1);
    }
}

/// A grant ended (`released`, `dropped`, `lost`) after being held `held`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn held(backend: &'static str, end: &'static str, held: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("fencelock_hold_seconds", "backend" => backend, "end" => end)
        .record(held.as_secs_f64());
}

/// A grant was lost before its release.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn lost(backend: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("fencelock_lost_total", "backend" => backend, "reason" => reason)
        .increment(1);
}
