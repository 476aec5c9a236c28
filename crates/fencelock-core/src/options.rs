//! Per-acquire options: TTL, wait bound, renewal and drift.

use std::time::Duration;

use crate::error::{Error, Result};

/// The shortest TTL any backend accepts.
pub const MIN_TTL: Duration = Duration::from_millis(10);
/// The longest TTL any backend accepts (one day). Hold a lock longer with
/// automatic renewal, not with a huge TTL.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The default TTL: 30 s, as Redisson's watchdog.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How one acquisition behaves. Build with [`LockOptions::new`] and the
/// `with_*` setters.
///
/// ```
/// use std::time::Duration;
/// use fencelock_core::LockOptions;
///
/// let opts = LockOptions::new()
///     .with_ttl(Duration::from_secs(5))
///     .with_wait(Duration::ZERO); // the origin notes' tryLock(0, 5, SECONDS)
/// assert_eq!(opts.renew_interval(), Duration::from_secs(5) / 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    ttl: Duration,
    wait: Option<Duration>,
    auto_renew: bool,
    renew_interval: Option<Duration>,
    drift: Option<Duration>,
    hold_cap: Option<Duration>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: DEFAULT_TTL,
            wait: None,
            auto_renew: true,
            renew_interval: None,
            drift: None,
            hold_cap: None,
        }
    }
}

impl LockOptions {
    /// The defaults: TTL 30 s, wait forever, automatic renewal every TTL/3,
    /// drift margin TTL/100 + 2 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a grant stays valid without renewal, on every backend: with
    /// renewal off ([`with_auto_renew(false)`](Self::with_auto_renew)) the
    /// guard is lost at its TTL and the grant is given back then (a holder
    /// that lives frees the lock at its TTL; the store's own TTL, session or
    /// lease frees it when the holder dies; see
    /// [`Capabilities::abandon_bound`](crate::Capabilities::abandon_bound)).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`acquire`](crate::DistributedLock::acquire) waits for a busy
    /// lock before [`ErrorKind::Busy`](crate::ErrorKind::Busy).
    /// `Duration::ZERO` makes one attempt.
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Wait without a bound (the default).
    #[must_use]
    pub fn with_wait_forever(mut self) -> Self {
        self.wait = None;
        self
    }

    /// Turns automatic renewal (the watchdog) on or off.
    #[must_use]
    pub fn with_auto_renew(mut self, on: bool) -> Self {
        self.auto_renew = on;
        self
    }

    /// How often the watchdog renews (default: TTL/3).
    #[must_use]
    pub fn with_renew_interval(mut self, every: Duration) -> Self {
        self.renew_interval = Some(every);
        self
    }

    /// The margin subtracted from the TTL for clock drift between client and
    /// store (default: TTL/100 + 2 ms). Every backend takes it off every
    /// validity deadline it computes, session deadlines included.
    #[must_use]
    pub fn with_drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
    }

    /// The **hold cap**: the grant ends this long after the acquire was
    /// sent, whatever the renewal (Redisson's `leaseTime`). The watchdog
    /// renews no further than the cap, the guard is lost at it and the grant
    /// is given back then; the TTL asked of the store is never longer than
    /// the cap, so a holder that dies frees the lock by then too. A hung
    /// handler cannot hold the lock for good.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fencelock_core::LockOptions;
    ///
    /// // The origin notes' tryLock(0, 5, SECONDS): no waiting, held 5 s at most.
    /// let opts = LockOptions::new()
    ///     .with_wait(Duration::ZERO)
    ///     .with_hold_cap(Duration::from_secs(5));
    /// assert_eq!(opts.ttl(), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn with_hold_cap(mut self, cap: Duration) -> Self {
        self.hold_cap = Some(cap);
        self
    }

    /// The hold cap, when one is set.
    pub fn hold_cap(&self) -> Option<Duration> {
        self.hold_cap
    }

    /// The TTL each grant and renewal asks for: the configured TTL, never
    /// more than the hold cap.
    pub fn ttl(&self) -> Duration {
        self.hold_cap.map_or(self.ttl, |cap| self.ttl.min(cap))
    }

    /// The wait bound; `None` waits forever.
    pub fn wait(&self) -> Option<Duration> {
        self.wait
    }

    /// Whether the watchdog renews the grant.
    pub fn auto_renew(&self) -> bool {
        self.auto_renew
    }

    /// The renewal interval in effect.
    pub fn renew_interval(&self) -> Duration {
        self.renew_interval.unwrap_or(self.ttl() / 3)
    }

    /// The drift margin in effect for `ttl`.
    pub fn drift_for(&self, ttl: Duration) -> Duration {
        self.drift
            .unwrap_or_else(|| ttl / 100 + Duration::from_millis(2))
    }

    /// The drift margin in effect for this TTL.
    pub fn drift(&self) -> Duration {
        self.drift_for(self.ttl())
    }

    /// Checks every setting; backends call it before any network call.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) naming the setting.
    pub fn validate(&self) -> Result<()> {
        validate_ttl(self.ttl)?;
        if let Some(cap) = self.hold_cap {
            validate_ttl(cap)
                .map_err(|e| Error::invalid_config(format!("hold cap: {}", e.message())))?;
        }
        let ttl = self.ttl();
        let drift = self.drift();
        if drift >= ttl / 2 {
            return Err(Error::invalid_config(format!(
                "drift margin {drift:?} must be less than half the TTL {ttl:?}"
            )));
        }
        let every = self.renew_interval();
        if every.is_zero() || every >= ttl - drift {
            return Err(Error::invalid_config(format!(
                "renew interval {every:?} must be above zero and below the TTL minus drift ({:?})",
                ttl - drift
            )));
        }
        Ok(())
    }
}

/// Checks a TTL against [`MIN_TTL`] and [`MAX_TTL`].
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when out of range.
pub fn validate_ttl(ttl: Duration) -> Result<()> {
    if ttl < MIN_TTL {
        return Err(Error::invalid_config(format!(
            "TTL {ttl:?} is below the minimum {MIN_TTL:?}"
        )));
    }
    if ttl > MAX_TTL {
        return Err(Error::invalid_config(format!(
            "TTL {ttl:?} is above the maximum {MAX_TTL:?}; hold long locks with automatic renewal"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_are_valid() {
        LockOptions::new().validate().unwrap();
        let o = LockOptions::new().with_ttl(MIN_TTL);
        o.validate().unwrap();
    }

    #[test]
    fn bad_ttls_and_intervals_are_config_errors() {
        for o in [
            LockOptions::new().with_ttl(Duration::ZERO),
            LockOptions::new().with_ttl(Duration::from_millis(1)),
            LockOptions::new().with_ttl(Duration::from_secs(u64::MAX)),
            LockOptions::new().with_ttl(MAX_TTL + Duration::from_millis(1)),
            LockOptions::new().with_renew_interval(Duration::ZERO),
            LockOptions::new().with_renew_interval(Duration::from_secs(30)),
            LockOptions::new().with_drift(Duration::from_secs(15)),
            LockOptions::new().with_hold_cap(Duration::ZERO),
            LockOptions::new().with_hold_cap(MAX_TTL * 2),
        ] {
            let e = o.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{o:?}");
        }
    }
}
