//! Metrics seen by a real recorder (feature `metrics`).
#![cfg(feature = "metrics")]

use std::time::Duration;

use fencelock_core::{DistributedLock, Instrumented, LockOptions, MemoryLock};

#[test]
fn metrics_count_acquires_holds_and_losses() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let lock = Instrumented::new(MemoryLock::new());
            let g = lock.acquire("k", &LockOptions::new()).await.unwrap();
            assert!(lock
                .try_acquire("k", &LockOptions::new())
                .await
                .unwrap()
                .is_none());
            g.release().await.unwrap();
            let short = LockOptions::new()
                .with_ttl(Duration::from_millis(200))
                .with_auto_renew(false);
            let g = lock.acquire("k", &short).await.unwrap();
            g.lost().await;
            // The watchdog records the loss right after it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(g);
        });
    });
    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let v = match value {
            DebugValue::Counter(n) => n.to_string(),
            DebugValue::Histogram(h) => format!("{} samples", h.len()),
            DebugValue::Gauge(g) => g.to_string(),
        };
        seen.push(format!("{} {} {v}", key.name(), labels.join(",")));
    }
    seen.sort();
    for want in [
        "fencelock_acquire_total backend=memory,op=acquire,outcome=granted 2",
        "fencelock_acquire_total backend=memory,op=try_acquire,outcome=busy 1",
        "fencelock_hold_seconds backend=memory,end=released 1 samples",
        "fencelock_hold_seconds backend=memory,end=lost 1 samples",
        "fencelock_lost_total backend=memory,reason=deadline 1",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want:?} not in {seen:#?}");
    }
}
