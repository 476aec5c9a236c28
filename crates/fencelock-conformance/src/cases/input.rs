//! Hostile keys and unreachable stores.

use std::time::Duration;

use fencelock_core::ErrorKind;
use tokio::time::Instant;

use crate::free_port;
use crate::target::steady;
use crate::Target;

/// The names .NET's DistributedLock suite throws at every backend, and more.
fn hostile(t: &Target) -> Vec<String> {
    let raw = [
        String::new(),
        "a".repeat(1000),
        "b".repeat(512),
        "/".into(),
        ".".into(),
        "..".into(),
        "a/b".into(),
        "a%2Fb".into(),
        "a_b".into(),
        "\0".into(),
        "\u{1}ctl".into(),
        "line\nbreak".into(),
        "{}".into(),
        "{a}".into(),
        "a{b}c".into(),
        "🔒锁".into(),
        " ".into(),
        "_c_x-lock-".into(),
        "Key".into(),
        "key".into(),
        "KEY".into(),
        "zookeeper".into(),
    ];
    // Prefix only the valid-looking ones, so invalid ones stay invalid.
    raw.into_iter()
        .map(|k| {
            if k.is_empty() || k.contains(['\0', '\u{1}', '\n']) || k.len() > 400 {
                k
            } else {
                t.key(&k)
            }
        })
        .collect()
}

/// Each hostile key either works as its own lock or is `InvalidKey`; never
/// a panic, never two keys mapped onto one lock.
pub async fn hostile_keys(t: &Target) {
    let (a, b) = (t.client().await, t.client().await);
    let mut held = Vec::new();
    let mut invalid = Vec::new();
    for key in hostile(t) {
        match a.try_acquire(&key, &steady()).await {
            Ok(Some(g)) => held.push(g),
            Ok(None) => panic!(
                "{key:?} is busy: it shares a lock with another key ({} held)",
                held.len()
            ),
            Err(e) if e.kind() == ErrorKind::InvalidKey => invalid.push(key),
            Err(e) => panic!("{key:?}: unexpected error {e}"),
        }
    }
    for must in ["", "\0", "\u{1}ctl", "line\nbreak"] {
        assert!(invalid.iter().any(|k| k == must), "{must:?} was accepted");
    }
    assert!(
        invalid.iter().any(|k| k.len() == 1000),
        "a 1000-byte key was accepted"
    );
    // Each held key is really locked, against another client too.
    for g in &held {
        assert!(
            b.try_acquire(g.key(), &steady())
                .await
                .expect("try")
                .is_none(),
            "{:?} is not locked for another client",
            g.key()
        );
    }
    for g in held {
        g.release().await.expect("release");
    }
}

/// Connecting to a closed port fails with `Connection` (or `Timeout`)
/// within 15 s, never hangs.
pub async fn unreachable(t: &Target) {
    let closed: Vec<_> = t
        .endpoints()
        .iter()
        .map(|_| std::net::SocketAddr::from(([127, 0, 0, 1], free_port())))
        .collect();
    let url = t.url_via(&closed);
    let bound = Duration::from_secs(15);
    let started = Instant::now();
    let outcome = tokio::time::timeout(bound + Duration::from_secs(5), async {
        let lock = t.harness().connect(&url).await?;
        lock.try_acquire(&t.key("unreachable"), &steady())
            .await
            .map(|_| ())
    })
    .await
    .unwrap_or_else(|_| panic!("{url}: hung past {bound:?}"));
    let took = started.elapsed();
    let e = outcome.expect_err("a closed port must be an error");
    assert!(
        matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{url}: expected Connection or Timeout, got {e}"
    );
    assert!(took <= bound, "{url}: failing took {took:?}");
}
