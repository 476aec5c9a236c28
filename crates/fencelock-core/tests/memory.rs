//! The memory backend against the contract (issue: core). Time is Tokio's
//! paused clock where the test is about time, so nothing passes by luck.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{
    Attempt, DistributedLock, DistributedLockExt, ErrorKind, LockOptions, MemoryLock, MemoryStore,
};
use tokio::time::Instant;

fn opts() -> LockOptions {
    LockOptions::new().with_ttl(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_never_overlap_and_tokens_rise() {
    let store = MemoryStore::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let lock = MemoryLock::with_store(Arc::clone(&store));
        let (inside, tokens) = (Arc::clone(&inside), Arc::clone(&tokens));
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let g = lock.acquire("hot", &opts()).await.unwrap();
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "task {i} overlapped"
                );
                tokens.lock().unwrap().push(g.token());
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
                g.release().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 640);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens in grant order rise"
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_honours_its_wait_bound() {
    let lock = MemoryLock::new();
    let _held = lock.acquire("k", &opts()).await.unwrap();
    let started = Instant::now();
    let e = lock
        .acquire("k", &opts().with_wait(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    // Zero wait is one attempt.
    let e = lock
        .acquire("k", &opts().with_wait(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn without_renewal_the_guard_is_lost_at_its_deadline() {
    let lock = MemoryLock::new();
    let o = opts().with_auto_renew(false);
    let g = lock.acquire("k", &o).await.unwrap();
    let deadline = g.deadline().unwrap();
    assert!(deadline <= Instant::now() + o.ttl() - o.drift());
    g.lost().await;
    assert!(
        Instant::now() <= deadline,
        "lost fired at or before the deadline"
    );
    assert!(g.is_lost());
    // Another client gets it with a higher token once the TTL ran out.
    tokio::time::sleep(o.drift()).await;
    let next = lock.try_acquire("k", &o).await.unwrap().unwrap();
    assert!(next.token() > g.token());
    // The old holder cannot release or extend the new grant, and learns Lost.
    assert_eq!(
        g.extend(Duration::from_secs(1)).await.unwrap_err().kind(),
        ErrorKind::Lost
    );
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::Lost);
    assert!(!next.is_lost());
    next.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn renewal_keeps_the_lock_past_many_ttls() {
    let lock = MemoryLock::new();
    let g = lock.acquire("k", &opts()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!g.is_lost());
    assert!(lock.try_acquire("k", &opts()).await.unwrap().is_none());
    let d = g.extend(Duration::from_secs(60)).await.unwrap();
    assert!(d > Instant::now() + Duration::from_secs(50));
    g.release().await.unwrap();
}

#[tokio::test]
async fn a_dropped_guard_frees_the_lock_without_release() {
    let lock = MemoryLock::new();
    let long = LockOptions::new().with_ttl(Duration::from_secs(60));
    let g = lock.acquire("k", &long).await.unwrap();
    drop(g);
    let started = Instant::now();
    let g2 = lock
        .acquire("k", &long.clone().with_wait(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    g2.leak();
    // A leaked guard keeps the lock.
    assert!(lock.try_acquire("k", &long).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_acquire_leaves_nothing_behind() {
    let lock = MemoryLock::new();
    let held = lock.acquire("k", &opts()).await.unwrap();
    for i in 0..50u64 {
        let o = opts();
        let fut = lock.acquire("k", &o);
        let _ = tokio::time::timeout(Duration::from_millis(i % 7), fut).await;
    }
    assert_eq!(lock.store().waiting("k"), 0);
    held.release().await.unwrap();
    let started = Instant::now();
    let g = lock
        .acquire("k", &opts().with_wait(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
    g.release().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let lock = MemoryLock::new();
    let held = lock.acquire("k", &opts()).await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (lock, order) = (lock.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let g = lock.acquire("k", &opts()).await.unwrap();
            order.lock().unwrap().push(i);
            g.release().await.unwrap();
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // No barging while others queue.
    assert!(lock.try_acquire("k", &opts()).await.unwrap().is_none());
    held.release().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn with_lock_releases_on_error_and_on_panic() {
    let lock = MemoryLock::new();
    let out: Result<(), &str> = lock
        .with_lock("k", &opts(), |_| async { Err("payment provider said no") })
        .await
        .unwrap();
    assert!(out.is_err());
    assert!(lock.try_acquire("k", &opts()).await.unwrap().is_some());

    let lock2 = lock.clone();
    let panicked = tokio::spawn(async move {
        lock2
            .with_lock("p", &opts(), |_| async { panic!("boom") })
            .await
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    // Released synchronously before the panic resumed: free at once.
    assert!(lock.try_acquire("p", &opts()).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn with_lock_reports_a_loss_mid_work() {
    let lock = MemoryLock::new();
    let o = opts().with_auto_renew(false);
    let e = lock
        .with_lock("k", &o, |_| tokio::time::sleep(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Lost);
}

#[tokio::test]
async fn try_with_lock_tells_busy_plainly() {
    let lock = MemoryLock::new();
    let o = opts().with_wait(Duration::ZERO);
    let held = lock.acquire("pay", &o).await.unwrap();
    let a = lock
        .try_with_lock("pay", &o, |_| async { 1 })
        .await
        .unwrap();
    assert_eq!(a, Attempt::Busy);
    held.release().await.unwrap();
    let a = lock
        .try_with_lock("pay", &o, |l| async move { l.token() })
        .await
        .unwrap();
    assert!(a.ran().is_some());
}

#[tokio::test]
async fn bad_inputs_are_typed_errors() {
    let lock: Arc<dyn DistributedLock> = Arc::new(MemoryLock::new());
    for key in ["", "a\0b", "tab\there", &"x".repeat(600)] {
        let e = lock.try_acquire(key, &opts()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey, "{key:?}");
        let e = lock.acquire(key, &opts()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey, "{key:?}");
    }
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_secs(1 << 40),
    ] {
        let o = LockOptions::new().with_ttl(ttl);
        let e = lock.acquire("k", &o).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{ttl:?}");
    }
    let g = lock.acquire("k", &opts()).await.unwrap();
    let e = g.extend(Duration::ZERO).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    g.release().await.unwrap();
    // Keys differing only in case are two locks.
    let a = lock.try_acquire("Key", &opts()).await.unwrap().unwrap();
    let b = lock.try_acquire("key", &opts()).await.unwrap().unwrap();
    a.release().await.unwrap();
    b.release().await.unwrap();
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "current_thread")]
async fn a_million_released_keys_leave_nothing_behind_and_tokens_still_rise() {
    let lock = MemoryLock::new();
    let o = opts().with_auto_renew(false);
    let mut last = None;
    let mut rss_at_100k = 0;
    for i in 0..1_000_000u32 {
        let key = format!("payment:{i}");
        let g = lock.try_acquire(&key, &o).await.unwrap().unwrap();
        assert!(last.is_none_or(|t| g.token() > t), "tokens rise");
        last = Some(g.token());
        g.release().await.unwrap();
        // As a service would between requests: lets the runtime reap the
        // aborted watchdog tasks.
        tokio::task::yield_now().await;
        if i == 100_000 {
            rss_at_100k = rss();
        }
    }
    assert_eq!(lock.store().tracked(), 0, "no state for released keys");
    // The same key again still gets a higher token.
    let g = lock.try_acquire("payment:0", &o).await.unwrap().unwrap();
    assert!(Some(g.token()) > last);
    let grown = rss().saturating_sub(rss_at_100k);
    assert!(
        grown < 16 << 20,
        "memory grew {grown} bytes between 100k and 1M keys"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_grants_nobody_released_are_swept() {
    let lock = MemoryLock::new();
    let o = LockOptions::new()
        .with_ttl(Duration::from_millis(100))
        .with_auto_renew(false);
    for i in 0..1000 {
        lock.try_acquire(&format!("leaked:{i}"), &o)
            .await
            .unwrap()
            .unwrap()
            .leak();
    }
    tokio::time::advance(Duration::from_millis(200)).await;
    for i in 0..1000 {
        lock.try_acquire(&format!("fresh:{i}"), &o)
            .await
            .unwrap()
            .unwrap()
            .leak();
    }
    assert!(
        lock.store().tracked() < 1500,
        "expired leaked grants were swept: {} keys tracked",
        lock.store().tracked()
    );
}
