//! [`SessionClock`]: the deadline a store session vouches for.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::grant::Validity;

/// The deadline a session (ZooKeeper) or lease (etcd) can vouch for, shared
/// by every grant that lives on it.
///
/// The store cannot end the session before `sent + lifetime` when it
/// answered a call sent at `sent` (lifetime: the session timeout or lease
/// TTL, minus the drift margin), so each answer moves the deadline forward
/// with [`heard`](SessionClock::heard), never back. When the session ends
/// for good, [`end`](SessionClock::end) makes every grant on it lost at
/// once; a clock never comes back to life. Hand grants
/// [`validity`](SessionClock::validity).
#[derive(Debug, Clone)]
pub struct SessionClock {
    tx: Arc<watch::Sender<Option<Instant>>>,
    lifetime: Duration,
}

impl SessionClock {
    /// A clock for a session opened by a request sent at `sent`.
    pub fn new(sent: Instant, lifetime: Duration) -> Self {
        let (tx, _) = watch::channel(Some(sent + lifetime));
        SessionClock {
            tx: Arc::new(tx),
            lifetime,
        }
    }

    /// The store answered a call sent at `sent`: the session lives at
    /// least until `sent + lifetime`.
    pub fn heard(&self, sent: Instant) {
        let next = sent + self.lifetime;
        self.tx.send_if_modified(|d| match d {
            Some(cur) if next > *cur => {
                *cur = next;
                true
            }
            _ => false,
        });
    }

    /// The session is gone for good: every grant on it is lost.
    pub fn end(&self) {
        self.tx.send_if_modified(|d| d.take().is_some());
    }

    /// The deadline in force; `None` once ended. Time-checked: a deadline
    /// in the past reads `None`.
    pub fn deadline(&self) -> Option<Instant> {
        (*self.tx.borrow()).filter(|d| Instant::now() < *d)
    }

    /// Whether the session can still vouch for its grants.
    pub fn is_alive(&self) -> bool {
        self.deadline().is_some()
    }

    /// Whether [`end`](SessionClock::end) was called. Unlike
    /// [`is_alive`](SessionClock::is_alive), a deadline that merely passed
    /// (the store silent for a while) is not an end: the session may still
    /// come back, though the grants it held are lost.
    pub fn is_ended(&self) -> bool {
        self.tx.borrow().is_none()
    }

    /// What lasts this long after a call's send (timeout or TTL, minus
    /// drift).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The validity of a grant on this session.
    pub fn validity(&self) -> Validity {
        Validity::Session(self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn moves_forward_only_and_ends_for_good() {
        let t0 = Instant::now();
        let clock = SessionClock::new(t0, Duration::from_secs(10));
        assert_eq!(clock.deadline(), Some(t0 + Duration::from_secs(10)));
        let Validity::Session(mut rx) = clock.validity() else {
            panic!("a session validity");
        };
        clock.heard(t0 + Duration::from_secs(3));
        assert_eq!(*rx.borrow_and_update(), Some(t0 + Duration::from_secs(13)));
        clock.heard(t0 + Duration::from_secs(1)); // an older answer: ignored
        assert!(!rx.has_changed().unwrap());
        assert!(!clock.is_ended());
        clock.end();
        assert!(clock.is_ended());
        assert_eq!(*rx.borrow_and_update(), None);
        clock.heard(t0 + Duration::from_secs(5));
        assert!(!clock.is_alive());
        tokio::time::advance(Duration::from_secs(1)).await;
        let late = SessionClock::new(Instant::now(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(late.deadline(), None);
        assert!(!late.is_ended(), "a passed deadline is not an end");
    }
}
