//! Spans and events seen by a real subscriber. A
//! test binary of its own: the subscriber is the process's global one, so
//! no test elsewhere can race it for the callsites' interest.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fencelock_core::{DistributedLock, Instrumented, LockOptions, MemoryLock};

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
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
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
