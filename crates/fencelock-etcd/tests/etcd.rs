//! Backend-specific tests against a real single-member etcd started here.
//! Skipped (with a note) when the `etcd` binary is missing.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{free_port, Etcd};

use fencelock_core::{DistributedLock, ErrorKind, LockOptions};
use fencelock_etcd::{EtcdLock, EtcdLockBuilder};
use tokio::time::{sleep, timeout, Instant};

fn opts() -> LockOptions {
    LockOptions::new().with_ttl(Duration::from_secs(3))
}

async fn client(e: &Etcd) -> EtcdLock {
    // A long poll, so a fast wake-up proves the watch did it.
    EtcdLock::connect(&e.url("?poll_interval=30s"))
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_release_tokens_rise_and_same_client_is_not_reentrant() {
    let Some(e) = Etcd::start() else { return };
    let a = client(&e).await;
    let b = client(&e).await;
    let g1 = a.acquire("orders:1", &opts()).await.unwrap();
    assert!(
        a.try_acquire("orders:1", &opts()).await.unwrap().is_none(),
        "same client re-entered"
    );
    assert!(b.try_acquire("orders:1", &opts()).await.unwrap().is_none());
    let info = a.inspect("orders:1").await.unwrap();
    assert_eq!(info.holder.as_ref().map(|h| h.token), Some(g1.token()));
    assert_eq!(info.holder.as_ref().and_then(|h| h.owner), Some(g1.owner()));
    assert_eq!(info.waiters, 0);
    // Another key with a slash is another lock.
    let other = b
        .try_acquire("orders:1/x", &opts())
        .await
        .unwrap()
        .expect("distinct key");
    let t1 = g1.token();
    g1.release().await.unwrap();
    let g2 = b
        .try_acquire("orders:1", &opts())
        .await
        .unwrap()
        .expect("free after release");
    assert!(g2.token() > t1);
    g2.release().await.unwrap();
    let g3 = a.acquire("orders:1", &opts()).await.unwrap();
    assert!(g3.token() > t1);
    g3.release().await.unwrap();
    other.release().await.unwrap();
    assert_eq!(
        a.try_acquire("", &opts()).await.unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_woken_by_the_watch_in_fifo_order() {
    let Some(e) = Etcd::start() else { return };
    let holder = client(&e).await;
    let g = holder.acquire("fifo", &opts()).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let c = client(&e).await;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let g = c.acquire("fifo", &opts()).await.unwrap();
            tx.send((i, Instant::now(), g.token())).unwrap();
            sleep(Duration::from_millis(50)).await;
            g.release().await.unwrap();
        }));
        // Let each waiter enqueue before the next one.
        let want = i + 1;
        let t0 = Instant::now();
        while holder.inspect("fifo").await.unwrap().waiters < want {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "waiter {i} never queued"
            );
            sleep(Duration::from_millis(10)).await;
        }
    }
    let released = Instant::now();
    let t0 = g.token();
    g.release().await.unwrap();
    let mut last = t0;
    for want in 0..4 {
        let (i, at, token) = timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(i, want, "FIFO order");
        assert!(token > last);
        last = token;
        if want == 0 {
            let lag = at - released;
            assert!(
                lag < Duration::from_millis(1000),
                "first waiter woke after {lag:?}"
            );
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_lease_and_paused_server_make_the_guard_lost() {
    let Some(e) = Etcd::start() else { return };
    let lock = client(&e).await;
    // Revoked behind our back: lost at once (watch on the key's delete).
    let g = lock.acquire("revoke-me", &opts()).await.unwrap();
    let lease = lock
        .inspect("revoke-me")
        .await
        .unwrap()
        .holder
        .expect("held")
        .lease;
    let st = e
        .etcdctl()
        .args(["lease", "revoke", &format!("{lease:x}")])
        .status()
        .await
        .unwrap();
    assert!(st.success());
    timeout(Duration::from_secs(2), g.lost())
        .await
        .expect("lost after revoke");
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::Lost);
    // Every grant has a lease of its own.
    let g = lock.acquire("paused", &opts()).await.unwrap();
    let other = lock.inspect("paused").await.unwrap().holder.expect("held");
    assert_ne!(other.lease, lease);

    // The server stops answering: lost no later than the grant's deadline.
    let ttl = opts().ttl();
    let deadline = g.deadline().unwrap();
    assert!(deadline <= Instant::now() + ttl);
    e.signal("-STOP");
    let t0 = Instant::now();
    timeout(ttl + Duration::from_millis(200), g.lost())
        .await
        .expect("lost by the deadline");
    assert!(Instant::now() <= deadline + Duration::from_millis(50));
    assert!(t0.elapsed() <= ttl + Duration::from_millis(100));
    e.signal("-CONT");
    drop(g);
    // Back to normal once the server answers again.
    let g = timeout(Duration::from_secs(15), lock.acquire("paused", &opts()))
        .await
        .unwrap()
        .unwrap();
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiter_leaves_no_key_and_wait_bounds_hold() {
    let Some(e) = Etcd::start() else { return };
    let a = client(&e).await;
    let b = client(&e).await;
    let g = a.acquire("cancel", &opts()).await.unwrap();
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.acquire("cancel", &opts()).await }
    });
    let t0 = Instant::now();
    while a.inspect("cancel").await.unwrap().waiters == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        sleep(Duration::from_millis(10)).await;
    }
    waiting.abort();
    let t0 = Instant::now();
    while a.inspect("cancel").await.unwrap().waiters != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "cancelled waiter's key stayed"
        );
        sleep(Duration::from_millis(10)).await;
    }
    // A bounded wait times out and cleans up too.
    let err = b
        .acquire("cancel", &opts().with_wait(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    let err = b
        .acquire("cancel", &opts().with_wait(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    assert_eq!(a.inspect("cancel").await.unwrap().waiters, 0);
    g.release().await.unwrap();
    // The key is free again at once: the waiters left nothing behind.
    let g = b
        .try_acquire("cancel", &opts())
        .await
        .unwrap()
        .expect("free");
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_a_quick_connection_error() {
    let port = free_port();
    let t0 = Instant::now();
    let err = EtcdLock::connect(&format!("etcd://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let err = EtcdLockBuilder::from_url("etcd://nohostport").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_member_does_not_stall_the_client() {
    let Some(members) = Etcd::cluster(3) else {
        return;
    };
    let hosts = members
        .iter()
        .map(Etcd::endpoint)
        .collect::<Vec<_>>()
        .join(",");
    let url = format!("etcd://{hosts}?timeout=500ms&poll_interval=1s");
    let a = EtcdLock::connect(&url).await.unwrap();
    let b = EtcdLock::connect(&url).await.unwrap();
    let held = a.acquire("p", &opts()).await.unwrap();
    // Both clients talk to the first endpoint now; it stops answering.
    members[0].signal("-STOP");
    let t0 = Instant::now();
    assert!(b.try_acquire("p", &opts()).await.unwrap().is_none());
    let g = b
        .try_acquire("q", &opts())
        .await
        .unwrap()
        .expect("q is free");
    let took = t0.elapsed();
    eprintln!("two calls with the first member paused took {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "calls took {took:?} with a paused member"
    );
    // The holder's session moves on too: its guard survives two lease TTLs.
    sleep(Duration::from_secs(6)).await;
    assert!(!held.is_lost(), "the session did not fail over");
    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            b.acquire("p", &opts().with_wait(Duration::from_secs(10)))
                .await
        }
    });
    sleep(Duration::from_millis(300)).await;
    held.release().await.unwrap();
    let got = timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    got.release().await.unwrap();
    g.release().await.unwrap();
    members[0].signal("-CONT");
}

/// One gauge from the member's `/metrics` page.
async fn metric(e: &Etcd, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(e.endpoint()).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: etcd\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Waits (bounded) until `f` holds.
async fn eventually<F, Fut>(what: &str, bound: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + bound;
    while !f().await {
        assert!(Instant::now() < end, "not within {bound:?}: {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_share_one_stream_and_a_deleted_key_is_lost_at_once() {
    const STREAMS: &str = "etcd_debugging_mvcc_watch_stream_total";
    const WATCHERS: &str = "etcd_debugging_mvcc_watcher_total";
    let Some(e) = Etcd::start() else { return };
    let (a, b) = (client(&e).await, client(&e).await);
    let mut held = Vec::new();
    for i in 0..50 {
        held.push(a.acquire(&format!("many:{i}"), &opts()).await.unwrap());
    }
    let waiter = tokio::spawn(async move {
        let g = b
            .acquire("many:0", &opts().with_wait(Duration::from_secs(20)))
            .await;
        (g, Instant::now(), b)
    });
    eventually("b queued behind a", Duration::from_secs(5), || async {
        a.inspect("many:0").await.unwrap().waiters == 1
    })
    .await;
    // 50 held locks and one waiter: 51 watches on one stream per client.
    eventually("51 watchers", Duration::from_secs(5), || async {
        metric(&e, WATCHERS).await >= 51.0
    })
    .await;
    let streams = metric(&e, STREAMS).await;
    assert!(streams <= 2.0, "{streams} watch streams for two clients");

    // A held key deleted behind the holder's back: that guard, and only
    // it, is lost at once.
    let victim = a.inspect("many:1").await.unwrap().holder.unwrap().etcd_key;
    let st = e
        .etcdctl()
        .args(["del", &victim])
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(st.success());
    timeout(Duration::from_secs(2), held[1].lost())
        .await
        .expect("lost after its key was deleted");
    assert!(held.iter().enumerate().all(|(i, g)| i == 1 || !g.is_lost()));

    // The waiter's predecessor deleted the same way: woken by its watch
    // (the poll is 30 s), granted behind nobody.
    let first = a.inspect("many:0").await.unwrap().holder.unwrap().etcd_key;
    let deleted = Instant::now();
    let st = e
        .etcdctl()
        .args(["del", &first])
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(st.success());
    let (g, granted, b) = timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter woken")
        .unwrap();
    let g = g.unwrap();
    assert!(granted.duration_since(deleted) < Duration::from_secs(2));
    timeout(Duration::from_secs(2), held[0].lost())
        .await
        .expect("lost after its key was deleted");

    let mut released = 0;
    for g in held {
        if g.release().await.is_ok() {
            released += 1;
        }
    }
    assert_eq!(released, 48);
    // Released grants cancel their watches: only b's guard still watches.
    eventually("watches cancelled", Duration::from_secs(5), || async {
        metric(&e, WATCHERS).await <= 1.0
    })
    .await;
    g.release().await.unwrap();
    drop(b);
}
