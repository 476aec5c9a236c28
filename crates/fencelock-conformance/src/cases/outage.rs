//! A store that stops answering is an outage, never a busy lock.

use std::time::Duration;

use fencelock_core::{Attempt, DistributedLockExt, ErrorKind};
use tokio::time::{sleep, timeout, Instant};

use crate::target::steady;
use crate::Target;

/// Every server of the store paused (SIGSTOP) while `acquire` and
/// `try_with_lock` wait on a held lock: both end with the store's error
/// kind (`Timeout` or `Connection`, retryable), never `Busy` and never
/// [`Attempt::Busy`], within the wait bound plus the client's timeouts.
///
/// Registered for stores whose harness can pause server processes (the
/// in-process and file stores cannot be paused apart from the caller).
pub async fn store_paused(t: &Target) {
    let servers = t.servers();
    assert!(
        servers > 0,
        "store_paused needs a harness with server processes"
    );
    let (a, b) = (t.client().await, t.client().await);
    let key = t.key("paused");
    let held = a.acquire(&key, &steady()).await.expect("first acquire");
    let opts = steady().with_wait(Duration::from_secs(2));
    let waiter = tokio::spawn({
        let (b, key, opts) = (b.clone(), key.clone(), opts.clone());
        async move { b.acquire(&key, &opts).await.map(drop) }
    });
    let fallback = tokio::spawn({
        let (b, key, opts) = (b.clone(), key.clone(), opts.clone());
        async move { b.try_with_lock(&key, &opts, |_| async {}).await }
    });
    // Both are queued or subscribed on the held lock by now.
    sleep(Duration::from_millis(500)).await;
    let paused_at = Instant::now();
    for i in 0..servers {
        t.pause(i);
    }
    let bound = Duration::from_secs(60);
    let waited = timeout(bound, waiter).await;
    let fell_back = timeout(bound, fallback).await;
    let took = paused_at.elapsed();
    for i in 0..servers {
        t.resume(i);
    }
    let waited = waited
        .unwrap_or_else(|_| panic!("acquire hung for {bound:?} on a paused store"))
        .expect("waiter task");
    let fell_back = fell_back
        .unwrap_or_else(|_| panic!("try_with_lock hung for {bound:?} on a paused store"))
        .expect("fallback task");
    let outage =
        |e: &fencelock_core::Error| matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection);
    match waited {
        Ok(()) => panic!("acquire was granted while the store was paused"),
        Err(e) => assert!(
            outage(&e) && e.is_retryable(),
            "a paused store must be Timeout or Connection (retryable), not {:?}: {e}",
            e.kind()
        ),
    }
    match fell_back {
        Ok(Attempt::Busy) => panic!("try_with_lock answered Busy while the store was paused"),
        Ok(Attempt::Ran(())) => panic!("try_with_lock ran the work while the store was paused"),
        Err(e) => assert!(
            outage(&e),
            "try_with_lock on a paused store must fail with Timeout or Connection, not {:?}: {e}",
            e.kind()
        ),
    }
    eprintln!(
        "conformance {} store_paused: both gave the store's error {took:?} after the pause (wait bound 2 s)",
        t.backend()
    );
    drop(held);
}
