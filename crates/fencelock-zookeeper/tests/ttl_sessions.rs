//! Grants whose TTL is shorter than the client's session timeout live on
//! sessions that honour the TTL: shared per timeout, bounded in number.

mod common;

use std::time::Duration;

use common::{children, Zk};
use fencelock_core::{DistributedLock, ErrorKind, LockGuard, LockOptions};
use fencelock_zookeeper::{ZkLock, MAX_TTL_SESSIONS};
use zookeeper_client as zk;

/// The session that owns `g`'s node.
async fn owner_session(raw: &zk::Client, lock: &ZkLock, g: &LockGuard) -> i64 {
    let path = lock.lock_path(g.key());
    let node = children(raw, &path).await.remove(0);
    raw.get_data(&format!("{path}/{node}"))
        .await
        .unwrap()
        .1
        .ephemeral_owner
}

fn ttl(ms: u64) -> LockOptions {
    LockOptions::new().with_ttl(Duration::from_millis(ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_ttls_share_a_session_of_their_own() {
    let server = Zk::start().expect("server");
    let lock = ZkLock::connect(&server.url("")).await.unwrap();
    let raw = server.raw().await;
    let main = lock.session_id().await.unwrap();
    // Rounded up to whole seconds: 2.2 s and 3 s share the 3 s session.
    assert_eq!(
        lock.session_timeout_for(Duration::from_millis(2200))
            .await
            .unwrap(),
        Duration::from_secs(3)
    );
    let a = lock.acquire("ttl:a", &ttl(2200)).await.unwrap();
    let b = lock.acquire("ttl:b", &ttl(3000)).await.unwrap();
    let c = lock.acquire("ttl:c", &ttl(30_000)).await.unwrap();
    let (sa, sb, sc) = (
        owner_session(&raw, &lock, &a).await,
        owner_session(&raw, &lock, &b).await,
        owner_session(&raw, &lock, &c).await,
    );
    assert_ne!(sa, main, "a short TTL lives on a session of its own");
    assert_eq!(sa, sb, "one session per timeout");
    assert_eq!(
        sc, main,
        "a TTL above the session timeout stays on the main session"
    );
    // The grant's validity follows its own session: about 3 s ahead, not 10.
    assert!(
        a.remaining() <= Duration::from_secs(3),
        "{:?}",
        a.remaining()
    );
    assert!(
        c.remaining() > Duration::from_secs(5),
        "{:?}",
        c.remaining()
    );
    // Renewal (the session) keeps the short grant past its TTL while we live.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!a.is_lost() && !b.is_lost());
    for g in [a, b, c] {
        g.release().await.unwrap();
    }
    assert!(children(&raw, &lock.lock_path("ttl:a")).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_number_of_ttl_sessions_is_capped() {
    let server = Zk::start().expect("server");
    let lock = ZkLock::connect(&server.url("?session_timeout=20s"))
        .await
        .unwrap();
    let s = Duration::from_secs;
    // TTLs of 2..=9 s, each holding a grant, fill the cap.
    let mut guards = Vec::new();
    for secs in 2..2 + MAX_TTL_SESSIONS as u64 {
        guards.push(
            lock.acquire(&format!("cap:{secs}"), &ttl(secs * 1000))
                .await
                .unwrap(),
        );
        assert_eq!(lock.session_timeout_for(s(secs)).await.unwrap(), s(secs));
    }
    // Beyond the cap, the nearest shorter session serves (a dead holder
    // is freed sooner, never later).
    assert_eq!(lock.session_timeout_for(s(15)).await.unwrap(), s(9));
    let g = lock.acquire("cap:15", &ttl(15_000)).await.unwrap();
    g.release().await.unwrap();
    // Shorter than every session, all in use: refused, saying why.
    let e = lock.acquire("cap:1", &ttl(1000)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e:?}");
    assert!(e.message().contains("sessions"), "{e}");
    // One of them idle (its grant released): closed to make room.
    guards.pop().unwrap().release().await.unwrap();
    assert_eq!(lock.session_timeout_for(s(1)).await.unwrap(), s(1));
    let g = lock.acquire("cap:1", &ttl(1000)).await.unwrap();
    g.release().await.unwrap();
    for g in guards {
        g.release().await.unwrap();
    }
}
