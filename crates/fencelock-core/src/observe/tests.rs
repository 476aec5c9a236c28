//! Spans, events and metrics seen by a real subscriber and recorder.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{DistributedLock, Instrumented, LockOptions, MemoryLock};

/// A writer the fmt subscriber writes into, readable afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture")).into_owned()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_lease_life_is_traced_in_its_span() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let lock = Instrumented::new(MemoryLock::new());
    let g = lock.acquire("order:1", &LockOptions::new()).await.unwrap();
    assert!(lock
        .try_acquire("order:1", &LockOptions::new())
        .await
        .unwrap()
        .is_none());
    g.release().await.unwrap();
    let short = LockOptions::new()
        .with_ttl(Duration::from_millis(200))
        .with_auto_renew(false);
    let g = lock.acquire("order:2", &short).await.unwrap();
    g.lost().await;
    // The watchdog reports the loss right after; give it a loaded machine's time.
    for _ in 0..200 {
        if out.text().contains("lease lost") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(g);
    let text = out.text();
    for needle in [
        "fencelock.acquire{backend=\"memory\" key=\"order:1\" op=\"acquire\"",
        "fencelock.lease{key=order:1 token=",
        "backend=\"memory\"",
        "granted",
        "busy",
        "released",
        "fencelock.lease{key=order:2",
        "lease lost",
        "reason=\"deadline\"",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[cfg(feature = "metrics")]
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
