//! The TTL and the hold cap mean the same on every backend: a grant that is
//! not renewed ends at its TTL, a renewed one at its hold cap, and the lock
//! is free for the next caller then, while the first holder still lives.

use std::time::Duration;

use fencelock_core::LockOptions;
use tokio::time::{timeout, Instant};

use crate::Target;

/// How late a loss or a hand-over may come on a loaded machine.
const SLACK: Duration = Duration::from_millis(1500);

/// Holds `key` with `opts` on one client (kept alive: never released or
/// dropped) while another waits; returns when the holder was lost and when
/// the waiter was granted, both from the first grant.
async fn hand_over(t: &Target, key: &str, opts: &LockOptions) -> (Duration, Duration) {
    let (a, b) = (t.leases().await, t.leases().await);
    let held = a.acquire(key, opts).await.expect("first acquire");
    let granted_at = Instant::now();
    let waiter = tokio::spawn({
        let (b, key) = (b.clone(), key.to_string());
        let wait = LockOptions::new().with_wait(Duration::from_secs(60));
        async move {
            let g = b.acquire(&key, &wait).await;
            (Instant::now(), g)
        }
    });
    timeout(Duration::from_secs(60), held.lost())
        .await
        .expect("the holder was never told it lost the grant");
    let lost = granted_at.elapsed();
    let (next_at, next) = waiter.await.expect("waiter task");
    let next = next.expect("the waiter got the lock after the holder's grant ended");
    assert!(next.token() > held.token(), "tokens rise");
    assert!(held.is_lost());
    // The holder lives on: its guard is still here, unreleased.
    drop(next);
    drop(held);
    (lost, next_at.duration_since(granted_at))
}

/// `with_auto_renew(false)`: the holder, alive, is lost at its TTL and the
/// lock goes to the next waiter then, not when a session or lease ends.
pub async fn ttl_without_renewal(t: &Target) {
    let ttl = Duration::from_millis(1500);
    let opts = LockOptions::new().with_ttl(ttl).with_auto_renew(false);
    let (lost, next) = hand_over(t, &t.key("unrenewed"), &opts).await;
    assert!(lost <= ttl, "lost {lost:?} after the grant, TTL {ttl:?}");
    assert!(lost >= ttl / 2, "lost after only {lost:?}, TTL {ttl:?}");
    assert!(
        next <= ttl + SLACK,
        "the next waiter got the lock {next:?} after the grant, TTL {ttl:?}"
    );
    eprintln!(
        "conformance {} ttl_without_renewal: lost at {lost:?}, next grant at {next:?} (TTL {ttl:?})",
        t.backend()
    );
}

/// `with_hold_cap`: a renewed grant (TTL 1 s, renewed every 1/3 s) ends at
/// the cap, whatever the renewal, and the next waiter gets the lock then.
pub async fn hold_cap(t: &Target) {
    let cap = Duration::from_millis(2500);
    let opts = LockOptions::new()
        .with_ttl(Duration::from_secs(1))
        .with_hold_cap(cap);
    let (lost, next) = hand_over(t, &t.key("capped"), &opts).await;
    assert!(lost <= cap, "lost {lost:?} after the grant, cap {cap:?}");
    // Renewed past its 1 s TTL (a session store's own deadline may end it
    // a little before the cap on a loaded machine).
    assert!(
        lost >= Duration::from_millis(1500),
        "lost after only {lost:?}: the renewals should have kept it towards the cap {cap:?}"
    );
    assert!(
        next <= cap + SLACK,
        "the next waiter got the lock {next:?} after the grant, cap {cap:?}"
    );
    eprintln!(
        "conformance {} hold_cap: lost at {lost:?}, next grant at {next:?} (cap {cap:?})",
        t.backend()
    );
}
