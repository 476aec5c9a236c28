//! Loss: a holder that lost its grant learns it, and cannot harm the next.

use std::time::Duration;

use fencelock_core::{ErrorKind, Expiry, Lease, LockOptions};
use tokio::time::Instant;

use crate::proxy::{Mode, ProxyGroup};
use crate::target::steady;
use crate::{Leases, Target};

/// Options for a grant that expires by itself soon (per-grant TTL backends).
fn short(ttl_ms: u64) -> LockOptions {
    LockOptions::new()
        .with_ttl(Duration::from_millis(ttl_ms))
        .with_auto_renew(false)
        .with_wait(Duration::from_secs(30))
}

/// Waits for `lost()`, and checks it fired no later than the last deadline
/// the guard showed (plus scheduling slack). Returns when it fired.
async fn lost_by_deadline(g: &Lease, limit: Duration) -> Instant {
    let lost = g.lost();
    tokio::pin!(lost);
    let mut last_deadline = g.deadline().expect("fresh grant has a deadline");
    let give_up = Instant::now() + limit;
    loop {
        tokio::select! {
            () = &mut lost => break,
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                if let Some(d) = g.deadline() { last_deadline = d; }
                assert!(Instant::now() < give_up, "lost() did not fire within {limit:?}");
            }
        }
    }
    let at = Instant::now();
    assert!(
        at <= last_deadline + Duration::from_millis(50),
        "lost() fired {:?} after the deadline",
        at - last_deadline
    );
    assert!(g.is_lost(), "is_lost() agrees with lost()");
    at
}

/// A guard cut off from its store (per-grant TTL or process: renewal off,
/// so it ends at its TTL; session:
/// its connections blackholed) for `key`. Returns the guard, the
/// proxies (to heal afterwards) and the client.
async fn cut_off_holder(
    t: &Target,
    key: &str,
) -> (Lease, Option<ProxyGroup>, std::sync::Arc<dyn Leases>) {
    let caps = t.capabilities().await;
    match caps.expiry {
        Expiry::Session => {
            let proxies = ProxyGroup::start(&t.endpoints()).await.expect("proxies");
            let a = t.leases_at(&t.url_via(&proxies.addrs())).await;
            let g = a.acquire(key, &steady()).await.expect("holder via proxy");
            proxies.set(Mode::Blackhole);
            (g, Some(proxies), a)
        }
        _ => {
            let a = t.leases().await;
            let g = a.acquire(key, &short(800)).await.expect("holder");
            (g, None, a)
        }
    }
}

/// A holder whose grant expired and was re-granted to another cannot
/// release or extend the new holder's lock, and learns `Lost`.
pub async fn no_foreign_release(t: &Target) {
    let caps = t.capabilities().await;
    let key = t.key("foreign");
    let (old, proxies, _a) = cut_off_holder(t, &key).await;
    let bound = caps.abandon_bound(Duration::from_millis(800)) + Duration::from_secs(10);
    lost_by_deadline(&old, bound).await;
    let b = t.leases().await;
    let new = b
        .acquire(&key, &steady().with_wait(bound))
        .await
        .expect("another client gets the expired lock");
    assert!(
        new.token() > old.token(),
        "token {} not above {}",
        new.token(),
        old.token()
    );
    if let Some(p) = &proxies {
        p.set(Mode::Pass);
    }
    let e = old
        .extend(Duration::from_secs(5))
        .await
        .expect_err("extend of a lost grant");
    assert_eq!(e.kind(), ErrorKind::Lost, "{e}");
    let e = old.release().await.expect_err("release of a lost grant");
    assert_eq!(e.kind(), ErrorKind::Lost, "{e}");
    let c = t.leases().await;
    assert!(
        c.try_acquire(&key, &steady()).await.expect("try").is_none(),
        "the old holder's release removed the new holder's lock"
    );
    assert!(!new.is_lost());
    new.release().await.expect("new holder releases");
}

/// The guard's `lost()` fires no later than its validity deadline: with
/// renewal off (per-grant TTL), or with the client cut off (session).
pub async fn lost_signal(t: &Target) {
    let caps = t.capabilities().await;
    let key = t.key("lost");
    let (g, _proxies, _a) = cut_off_holder(t, &key).await;
    let bound = caps.abandon_bound(Duration::from_millis(800)) + Duration::from_secs(10);
    lost_by_deadline(&g, bound).await;
}

/// The guard's `lost()` fires no later than its validity deadline with the
/// store's one server paused by SIGSTOP. Registered where the harness runs
/// exactly one server process.
pub async fn lost_signal_paused(t: &Target) {
    let caps = t.capabilities().await;
    assert_eq!(
        t.servers(),
        1,
        "lost_signal_paused needs one server process"
    );
    {
        let a = t.leases().await;
        let opts = steady().with_ttl(Duration::from_secs(2));
        let g = a
            .acquire(&t.key("lost-paused"), &opts)
            .await
            .expect("holder");
        t.pause(0);
        let limit = caps.abandon_bound(Duration::from_secs(2)) + Duration::from_secs(10);
        let fired = tokio::spawn(async move {
            lost_by_deadline(&g, limit).await;
        })
        .await;
        t.resume(0);
        if let Err(e) = fired {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// With automatic renewal on, a lock stays held for 3× its TTL (or
/// session timeout) and no one else gets it meanwhile.
pub async fn renewal(t: &Target) {
    let caps = t.capabilities().await;
    let ttl = Duration::from_millis(600);
    let hold = 3 * caps.abandon_bound(ttl);
    let (a, b) = (t.leases().await, t.leases().await);
    let key = t.key("renewal");
    let g = a
        .acquire(&key, &steady().with_ttl(ttl))
        .await
        .expect("holder");
    let end = Instant::now() + hold;
    while Instant::now() < end {
        assert!(
            b.try_acquire(&key, &steady()).await.expect("try").is_none(),
            "another client got the lock while it was being renewed"
        );
        assert!(!g.is_lost(), "renewed grant reported lost");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    g.release().await.expect("release after renewals");
}
