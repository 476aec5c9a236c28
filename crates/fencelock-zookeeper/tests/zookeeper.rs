//! Backend-specific tests against a real standalone ZooKeeper started here
//! (one per test, on a free port, in a temp dir, killed by PID at the end).
//! A missing ZooKeeper or Java is a failure, not a skip.

mod common;

use std::time::Duration;

use common::{children, eventually, free_port, Zk};
use fencelock_core::{
    DistributedLock, ErrorKind, Expiry, Extend, Fairness, Fencing, Inspect, LockOptions,
};
use fencelock_zookeeper::{ZkLock, ZkLockBuilder};
use tokio::time::{sleep, timeout, Instant};
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_release_tokens_and_curator_naming() {
    let Some(server) = Zk::start() else { return };
    let a = ZkLock::connect(&server.url("")).await.expect("connect a");
    let b = ZkLock::connect(&server.url("")).await.expect("connect b");
    let raw = server.raw().await;
    let caps = a.capabilities();
    assert_eq!(caps.fencing, Fencing::Strict);
    assert_eq!(caps.fairness, Fairness::Fifo);
    assert_eq!(caps.expiry, Expiry::Session);
    assert_eq!(caps.extend, Extend::Session);
    assert_eq!(caps.session_timeout, Some(a.session_timeout()));
    let opts = LockOptions::new().with_wait(Duration::from_secs(5));

    let g = a
        .try_acquire("orders:1", &opts)
        .await
        .unwrap()
        .expect("free lock");
    assert!(b.try_acquire("orders:1", &opts).await.unwrap().is_none());
    assert_eq!(a.lock_path("orders:1"), "/fencelock/orders:1");
    // Curator InterProcessMutex protected naming, czxid as token; the failed
    // try_acquire left nothing behind.
    let kids = children(&raw, "/fencelock/orders:1").await;
    assert_eq!(kids.len(), 1, "{kids:?}");
    let prefix = format!("_c_{}-lock-", g.owner());
    let seq = kids[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{} vs {prefix}", kids[0]));
    assert!(
        seq.len() == 10 && seq.bytes().all(|c| c.is_ascii_digit()),
        "{seq}"
    );
    let (_, stat) = raw
        .get_data(&format!("/fencelock/orders:1/{}", kids[0]))
        .await
        .unwrap();
    assert_eq!(u64::try_from(stat.czxid).unwrap(), g.token().get());
    assert_eq!(stat.ephemeral_owner, a.session_id().await.unwrap());
    let st = a.status("orders:1").await.unwrap();
    assert!(st.held);
    assert_eq!(st.owner, Some(g.owner().to_string()));
    assert_eq!(st.token, Some(g.token()));
    assert!(g.extend(Duration::from_secs(5)).await.is_ok());

    // Tokens rise strictly across grants and clients.
    let mut last = g.token();
    g.release().await.unwrap();
    assert!(children(&raw, "/fencelock/orders:1").await.is_empty());
    for i in 0..6 {
        let c = if i % 2 == 0 { &a } else { &b };
        let g = c.acquire("orders:1", &opts).await.unwrap();
        assert!(g.token() > last, "{} then {}", last, g.token());
        last = g.token();
        g.release().await.unwrap();
    }

    // A deleted node revokes the grant at once; release then says Lost.
    let g = a.acquire("orders:1", &opts).await.unwrap();
    let kids = children(&raw, "/fencelock/orders:1").await;
    raw.delete(&format!("/fencelock/orders:1/{}", kids[0]), None)
        .await
        .unwrap();
    timeout(Duration::from_secs(2), g.lost())
        .await
        .expect("revoked by the watch");
    assert_eq!(
        g.extend(Duration::from_secs(5)).await.unwrap_err().kind(),
        ErrorKind::Lost
    );
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::Lost);

    // The key's parent is a container: the server removes it once empty
    // (check interval shortened to 200 ms for the test server).
    eventually(
        "the empty container parent removed",
        Duration::from_secs(10),
        || async {
            raw.check_stat("/fencelock/orders:1")
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
    assert!(
        raw.check_stat("/fencelock").await.unwrap().is_some(),
        "the root is persistent"
    );
    // And comes back on demand.
    let g = b.acquire("orders:1", &opts).await.unwrap();
    assert!(g.token() > last);
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_wake_quickly_in_fifo_order() {
    let Some(server) = Zk::start() else { return };
    let url = server.url("");
    let holder = ZkLock::connect(&url).await.unwrap();
    let opts = LockOptions::new();
    let g = holder.acquire("fifo", &opts).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for name in ["B", "C", "D", "E"] {
        let lock = ZkLock::connect(&url).await.unwrap();
        let tx = tx.clone();
        let opts = opts.clone();
        let before = holder.status("fifo").await.unwrap().waiters.unwrap_or(0);
        tasks.push(tokio::spawn(async move {
            let g = lock.acquire("fifo", &opts).await.unwrap();
            tx.send((name, Instant::now(), g.token())).unwrap();
            sleep(Duration::from_millis(30)).await;
            g.release().await.unwrap();
        }));
        // Queue strictly one after the other.
        eventually("the waiter queued", Duration::from_secs(5), || async {
            holder.status("fifo").await.unwrap().waiters.unwrap_or(0) > before
        })
        .await;
    }
    let released = Instant::now();
    let first_token = g.token();
    g.release().await.unwrap();
    let mut order = Vec::new();
    let mut last = first_token;
    for _ in 0..4 {
        let (name, at, token) = timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if order.is_empty() {
            let took = at - released;
            assert!(
                took < Duration::from_millis(500),
                "first waiter woke after {took:?}"
            );
        }
        assert!(token > last);
        last = token;
        order.push(name);
    }
    assert_eq!(order, ["B", "C", "D", "E"]);
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_escaped_into_one_segment_each() {
    let Some(server) = Zk::start() else { return };
    let lock = ZkLock::connect(&server.url("")).await.unwrap();
    let raw = server.raw().await;
    let opts = LockOptions::new();
    let keys = [
        "/",
        ".",
        "..",
        "a/b",
        "a%2Fb",
        "A",
        "a",
        "x.y",
        "🔒 lock",
        "paymentConfirm:PK-123",
    ];
    let mut guards = Vec::new();
    for k in keys {
        let g = lock.try_acquire(k, &opts).await.unwrap();
        guards.push(g.unwrap_or_else(|| panic!("{k:?} collided with an earlier key")));
    }
    let got = children(&raw, "/fencelock").await;
    let mut want: Vec<String> = [
        "%2F",
        "%2E",
        "%2E%2E",
        "a%2Fb",
        "a%252Fb",
        "A",
        "a",
        "x.y",
        "%F0%9F%94%92 lock",
        "paymentConfirm:PK-123",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(got, want);
    for k in keys {
        assert_eq!(children(&raw, &lock.lock_path(k)).await.len(), 1, "{k:?}");
    }
    let listed: Vec<String> = lock
        .list("")
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.held)
        .map(|s| s.key)
        .collect();
    let mut sorted_keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    sorted_keys.sort();
    assert_eq!(listed, sorted_keys);
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_cancelled_acquires_leave_no_nodes() {
    let Some(server) = Zk::start() else { return };
    let url = server.url("");
    let a = ZkLock::connect(&url).await.unwrap();
    let b = ZkLock::connect(&url).await.unwrap();
    let raw = server.raw().await;
    let path = a.lock_path("busy");
    let g = a.acquire("busy", &LockOptions::new()).await.unwrap();

    let t0 = Instant::now();
    let e = b
        .acquire(
            "busy",
            &LockOptions::new().with_wait(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(t0.elapsed() >= Duration::from_millis(300) && t0.elapsed() < Duration::from_secs(3));
    assert_eq!(children(&raw, &path).await.len(), 1);

    let e = b
        .acquire("busy", &LockOptions::new().with_wait(Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert_eq!(children(&raw, &path).await.len(), 1);

    // Dropped while waiting (and right after sending the create).
    assert!(timeout(
        Duration::from_millis(200),
        b.acquire("busy", &LockOptions::new())
    )
    .await
    .is_err());
    for _ in 0..5 {
        let _ = timeout(
            Duration::from_micros(300),
            b.acquire("busy", &LockOptions::new()),
        )
        .await;
    }
    eventually(
        "cancelled acquires cleaned up",
        Duration::from_secs(3),
        || async { children(&raw, &path).await.len() == 1 },
    )
    .await;

    g.release().await.unwrap();
    let t0 = Instant::now();
    let g2 = b
        .try_acquire("busy", &LockOptions::new())
        .await
        .unwrap()
        .expect("nothing left queued");
    assert!(t0.elapsed() < Duration::from_secs(1));
    g2.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_locks_with_curator_style_contenders() {
    let Some(server) = Zk::start() else { return };
    let lock = ZkLock::connect(&server.url("/apps")).await.unwrap();
    let raw = server.raw().await;
    let path = lock.lock_path("shared");
    assert_eq!(path, "/apps/fencelock/shared");
    raw.mkdir(
        &path,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    // A Curator client without protection mode holds it.
    let eph = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (_, seq) = raw
        .create(&format!("{path}/lock-"), b"10.0.0.9", &eph)
        .await
        .unwrap();
    let opts = LockOptions::new().with_wait(Duration::from_secs(10));
    assert!(lock.try_acquire("shared", &opts).await.unwrap().is_none());
    let waiter = {
        let lock = lock.clone();
        let opts = opts.clone();
        tokio::spawn(async move { lock.acquire("shared", &opts).await })
    };
    eventually(
        "queued behind the Curator node",
        Duration::from_secs(5),
        || async { children(&raw, &path).await.len() == 2 },
    )
    .await;
    let t0 = Instant::now();
    raw.delete(&format!("{path}/lock-{seq}"), None)
        .await
        .unwrap();
    let g = waiter.await.unwrap().unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "woke after {:?}",
        t0.elapsed()
    );
    g.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_loses_guards_and_a_new_session_follows() {
    let Some(server) = Zk::start() else { return };
    let lock = ZkLockBuilder::from_url(&server.url(""))
        .unwrap()
        .with_session_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    assert_eq!(lock.session_timeout(), Duration::from_secs(2));
    let first_session = lock.session_id().await.unwrap();
    let g = lock.acquire("expiring", &LockOptions::new()).await.unwrap();
    let token = g.token();
    sleep(Duration::from_millis(800)).await;
    assert!(!g.is_lost());
    server.signal("-STOP");
    let stopped = Instant::now();
    let lost = timeout(Duration::from_secs(4), g.lost()).await;
    let took = stopped.elapsed();
    // Resume the server only after the client declared the session expired.
    sleep(Duration::from_secs(3)).await;
    server.signal("-CONT");
    lost.expect("the guard must go lost while the server is paused");
    assert!(took <= Duration::from_secs(2), "lost only after {took:?}");
    assert_eq!(g.release().await.unwrap_err().kind(), ErrorKind::Lost);
    let g2 = timeout(
        Duration::from_secs(10),
        lock.acquire("expiring", &LockOptions::new()),
    )
    .await
    .expect("re-acquire in time")
    .expect("re-acquire on a new session");
    assert!(g2.token() > token);
    assert_ne!(lock.session_id().await, Some(first_session));
    g2.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_connection_error_at_once() {
    let port = free_port();
    let t0 = Instant::now();
    let e = ZkLock::connect(&format!("zk://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let e = ZkLock::connect("zk://127.0.0.1:2181/a/../b")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_is_an_error_within_the_bounds() {
    let Some(server) = Zk::start() else { return };
    let lock = ZkLockBuilder::from_url(&server.url(""))
        .unwrap()
        .with_session_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let g = lock.acquire("dead", &LockOptions::new()).await.unwrap();
    drop(server);
    timeout(Duration::from_secs(3), g.lost())
        .await
        .expect("lost at the session deadline");
    for _ in 0..3 {
        let t0 = Instant::now();
        let e = lock.acquire("dead", &LockOptions::new()).await.unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{e:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
}
