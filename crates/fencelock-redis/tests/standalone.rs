//! The Redis backend against a real redis-server started by the test.

mod common;

use std::time::{Duration, Instant};

use common::{cli, free_port, Server};
use fencelock_core::{DistributedLock, ErrorKind, LockOptions, OwnerId};
use fencelock_redis::{RedisLock, RedisLockBuilder};

fn opts(ttl_ms: u64) -> LockOptions {
    LockOptions::new().with_ttl(Duration::from_millis(ttl_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_release_extend_and_tokens() {
    let server = Server::start();
    let lock = RedisLock::connect(&server.url()).await.expect("connect");
    let o = opts(5_000).with_wait(Duration::ZERO);

    let g1 = lock.acquire("orders:1", &o).await.expect("first grant");
    assert!(lock.try_acquire("orders:1", &o).await.unwrap().is_none());
    let err = lock.acquire("orders:1", &o).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);

    let info = lock.inspect("orders:1").await.unwrap();
    assert_eq!(info.holder, Some(g1.owner()));
    assert_eq!(info.token, Some(g1.token()));
    assert_eq!(info.last_token, Some(g1.token()));
    assert!(info.remaining.is_some_and(|r| r <= Duration::from_secs(5)));

    let before = g1.deadline().unwrap();
    let after = g1.extend(Duration::from_secs(20)).await.expect("extend");
    assert!(after > before);
    let remaining = lock.inspect("orders:1").await.unwrap().remaining.unwrap();
    assert!(remaining > Duration::from_secs(10), "{remaining:?}");

    let t1 = g1.token();
    g1.release().await.expect("release");
    assert_eq!(lock.inspect("orders:1").await.unwrap().holder, None);

    let g2 = lock
        .try_acquire("orders:1", &o)
        .await
        .unwrap()
        .expect("free again");
    assert!(g2.token() > t1, "{} > {}", g2.token(), t1);
    // Another client sees the same counter.
    let other = RedisLock::connect(&server.url()).await.unwrap();
    g2.release().await.unwrap();
    let g3 = other.try_acquire("orders:1", &o).await.unwrap().unwrap();
    assert_eq!(g3.token().get(), t1.get() + 2);

    // Releasing a lost grant reports Lost and leaves the new holder alone.
    let short = opts(100).with_auto_renew(false);
    g3.release().await.unwrap();
    let lost = lock.try_acquire("orders:1", &short).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let winner = other.try_acquire("orders:1", &o).await.unwrap().unwrap();
    assert_eq!(lost.release().await.unwrap_err().kind(), ErrorKind::Lost);
    assert_eq!(
        lock.inspect("orders:1").await.unwrap().holder,
        Some(winner.owner())
    );
    winner.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_owner_gets_the_same_grant() {
    let server = Server::start();
    let lock = RedisLock::connect(&server.url()).await.unwrap();
    let o = opts(2_000);
    let owner = OwnerId::random();
    let first = lock.try_acquire_as("k", owner, &o).await.unwrap().unwrap();
    // The "lost reply" case: the same owner tries again and gets its own grant back.
    let again = lock.try_acquire_as("k", owner, &o).await.unwrap().unwrap();
    assert_eq!(first.token(), again.token());
    assert_eq!(again.owner(), owner);
    // Someone else still cannot take it.
    assert!(lock.try_acquire("k", &o).await.unwrap().is_none());
    assert_eq!(
        lock.inspect("k").await.unwrap().last_token,
        Some(first.token()),
        "the retry did not bump the counter"
    );
    first.leak();
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_pubsub_not_by_its_recheck() {
    let server = Server::start();
    let url = server.url();
    let holder = RedisLock::connect(&url).await.unwrap();
    let waiter = RedisLockBuilder::from_url(&url)
        .unwrap()
        .with_max_recheck_interval(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let o = opts(20_000);
    let g = holder.acquire("wake", &o).await.unwrap();

    let w = waiter.clone();
    let o2 = o.clone().with_wait(Duration::from_secs(15));
    let task = tokio::spawn(async move {
        let g = w.acquire("wake", &o2).await;
        (Instant::now(), g)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(waiter.inspect("wake").await.unwrap().local_waiters, 1);
    assert!(cli(server.port, &["pubsub", "numsub", "fencelock:{wake}:wake"]).contains('1'));

    let released = Instant::now();
    g.release().await.unwrap();
    let (got_at, g2) = task.await.unwrap();
    let g2 = g2.expect("the waiter got the lock");
    let latency = got_at - released;
    assert!(
        latency < Duration::from_millis(500),
        "woken after {latency:?}; the re-check would take 10 s"
    );
    // The last waiter left: the channel is unsubscribed.
    assert_eq!(waiter.inspect("wake").await.unwrap().local_waiters, 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(cli(server.port, &["pubsub", "numsub", "fencelock:{wake}:wake"]).contains('0'));
    g2.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricky_keys_never_collide() {
    let server = Server::start();
    let lock = RedisLock::connect(&server.url()).await.unwrap();
    let o = opts(5_000);
    let keys = [
        "a{b}c",
        "a%7Bb%7Dc",
        "{}",
        "%7B%7D",
        "{",
        "}",
        "%",
        "Key",
        "key",
        "KEY",
        "a:b",
        "🔒",
        "a}:lock",
    ];
    let mut guards = Vec::new();
    for k in keys {
        let g = lock
            .try_acquire(k, &o)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{k:?} collided with an earlier key"));
        assert_eq!(g.token().get(), 1, "{k:?} shares a counter");
        guards.push(g);
    }
    let stored = cli(server.port, &["--scan", "--pattern", "fencelock:*:lock"]);
    assert_eq!(stored.lines().count(), keys.len(), "{stored}");
    assert!(stored.contains("fencelock:{a%7Bb%7Dc}:lock"), "{stored}");
    assert!(
        stored.contains("fencelock:{a%257Bb%257Dc}:lock"),
        "{stored}"
    );
    assert!(stored.contains("fencelock:{%7B%7D}:lock"), "{stored}");
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_fail_fast_with_connection() {
    let port = free_port();
    let start = Instant::now();
    let err = RedisLock::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    let err = RedisLock::connect("http://127.0.0.1:1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);

    // A server that goes away under a client: calls fail within the bound.
    let mut server = Server::start();
    let lock = RedisLockBuilder::from_url(&server.url())
        .unwrap()
        .with_response_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    server.stop();
    let start = Instant::now();
    let err = lock.try_acquire("k", &opts(1_000)).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_locks_renew_in_batches_and_survive_script_flush() {
    let server = Server::start();
    let lock = RedisLock::connect(&server.url()).await.unwrap();
    let o = opts(300).with_renew_interval(Duration::from_millis(100));
    let keys: Vec<String> = (0..200).map(|i| format!("batch:{i}")).collect();
    // Taken concurrently, their renewals fall due together and go out in few pipelines.
    let guards: Vec<_> =
        futures_util::future::join_all(keys.iter().map(|k| lock.try_acquire(k, &o)))
            .await
            .into_iter()
            .map(|g| g.unwrap().unwrap())
            .collect();
    cli(server.port, &["config", "resetstat"]);
    // A restarted server forgets the scripts: NOSCRIPT must reload them.
    assert_eq!(cli(server.port, &["script", "flush"]).trim(), "OK");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    for g in &guards {
        assert!(!g.is_lost(), "{} lost", g.key());
    }
    let stats = cli(server.port, &["info", "commandstats"]);
    let evalsha = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .unwrap_or_default()
        .to_string();
    assert!(!evalsha.is_empty(), "{stats}");
    // About 10 ticks x 200 locks of renewals went through.
    for g in guards {
        g.release().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_restored() {
    let server = Server::start();
    let url = server.url();
    let holder = RedisLock::connect(&url).await.unwrap();
    let waiter = RedisLockBuilder::from_url(&url)
        .unwrap()
        .with_max_recheck_interval(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let o = opts(20_000);
    let g = holder.acquire("resub", &o).await.unwrap();
    let w = waiter.clone();
    let o2 = o.clone().with_wait(Duration::from_secs(15));
    let task = tokio::spawn(async move {
        let g = w.acquire("resub", &o2).await;
        (Instant::now(), g)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = cli(server.port, &["client", "kill", "type", "pubsub"]);
    assert_eq!(killed.trim(), "1", "one pub/sub connection per client");
    // The subscriber reconnects and re-subscribes on its own.
    let until = Instant::now() + Duration::from_secs(3);
    while !cli(server.port, &["pubsub", "numsub", "fencelock:{resub}:wake"]).contains("\n1") {
        assert!(Instant::now() < until, "never re-subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let released = Instant::now();
    g.release().await.unwrap();
    let (at, g2) = task.await.unwrap();
    assert!(
        at - released < Duration::from_millis(500),
        "{:?}",
        at - released
    );
    g2.unwrap().release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_acquire_leaves_nothing_behind() {
    let server = Server::start();
    let lock = RedisLock::connect(&server.url()).await.unwrap();
    let o = opts(30_000);
    for micros in (0..3_000).step_by(150) {
        // Completed in time: the guard is dropped (background release). Not in time:
        // the acquire future is dropped somewhere in its script call.
        drop(tokio::time::timeout(Duration::from_micros(micros), lock.acquire("cancel", &o)).await);
        // Whatever happened, the key is free again shortly (no 30 s TTL to wait out).
        let next = lock
            .acquire("cancel", &o.clone().with_wait(Duration::from_secs(1)))
            .await
            .unwrap_or_else(|e| panic!("blocked after a drop at {micros} µs: {e}"));
        next.release().await.unwrap();
    }
}
