//! Busy locks: try-acquire, wait bounds, wake-ups, fairness.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fencelock_core::{ErrorKind, Fairness, Wakeup};
use tokio::time::Instant;

use crate::target::{note, steady};
use crate::Target;

/// `try_acquire` on a held key returns `None` at once; `acquire` returns
/// `Busy` (never `Timeout`: the store answered) within its wait bound plus
/// a small slack.
pub async fn busy(t: &Target) {
    let (a, b) = (t.client().await, t.client().await);
    let key = t.key("busy");
    let held = a.acquire(&key, &steady()).await.expect("first acquire");
    let started = Instant::now();
    assert!(
        b.try_acquire(&key, &steady())
            .await
            .expect("try_acquire")
            .is_none(),
        "try_acquire on a held key must be None"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "try_acquire took {:?}",
        started.elapsed()
    );
    for wait in [Duration::ZERO, Duration::from_millis(500)] {
        let started = Instant::now();
        let e = b
            .acquire(&key, &steady().with_wait(wait))
            .await
            .expect_err("acquire on a held key must time out");
        let took = started.elapsed();
        assert_eq!(e.kind(), ErrorKind::Busy, "{e}");
        assert!(
            took >= wait,
            "gave up after {took:?}, before the wait bound {wait:?}"
        );
        assert!(
            took <= wait + Duration::from_millis(1500),
            "timed out after {took:?}, bound {wait:?}"
        );
    }
    held.release().await.expect("release");
    let g = b
        .acquire(&key, &steady().with_wait(Duration::from_secs(5)))
        .await
        .expect("free after release");
    g.release().await.expect("release");
}

/// After a release, a waiter holds the lock within 50 ms (median of five)
/// where the backend declares store notifications.
pub async fn wakeup(t: &Target) {
    let caps = t.capabilities().await;
    let bound = match caps.wakeup {
        Wakeup::Notification => Duration::from_millis(50),
        _ => {
            note(
                t.backend(),
                "wakeup",
                "declares polling: bound 1 s instead of 50 ms",
            );
            Duration::from_secs(1)
        }
    };
    let (a, b) = (t.client().await, t.client().await);
    let key = t.key("wakeup");
    let mut handoffs = Vec::new();
    for _ in 0..5 {
        let held = a.acquire(&key, &steady()).await.expect("holder");
        let b2 = Arc::clone(&b);
        let k = key.clone();
        let waiter = tokio::spawn(async move {
            let g = b2.acquire(&k, &steady()).await.expect("waiter");
            let at = Instant::now();
            g.release().await.expect("waiter release");
            at
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let released = Instant::now();
        held.release().await.expect("release");
        let granted = waiter.await.expect("waiter task");
        handoffs.push(granted.saturating_duration_since(released));
    }
    handoffs.sort();
    let median = handoffs[handoffs.len() / 2];
    assert!(
        median <= bound,
        "hand-off median {median:?} above {bound:?}: {handoffs:?}"
    );
}

/// Where declared FIFO, waiters are granted in arrival order; elsewhere
/// (the weaker promise) every waiter is served.
pub async fn fairness(t: &Target) {
    let caps = t.capabilities().await;
    if caps.fairness != Fairness::Fifo {
        note(
            t.backend(),
            "fairness",
            "declares no FIFO order: checking that every waiter is served",
        );
    }
    let clients = [t.client().await, t.client().await];
    let key = t.key("fairness");
    let held = clients[0].acquire(&key, &steady()).await.expect("holder");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..5usize {
        let lock = Arc::clone(&clients[i % 2]);
        let (k, order) = (key.clone(), Arc::clone(&order));
        waiters.push(tokio::spawn(async move {
            let g = lock.acquire(&k, &steady()).await.expect("waiter");
            order
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(i);
            g.release().await.expect("waiter release");
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    held.release().await.expect("release");
    for w in waiters {
        if let Err(e) = w.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let order = order
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    assert_eq!(order.len(), 5, "every waiter served");
    if caps.fairness == Fairness::Fifo {
        assert_eq!(
            order,
            vec![0, 1, 2, 3, 4],
            "waiters served out of arrival order"
        );
    }
}
