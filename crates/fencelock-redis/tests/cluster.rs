//! The Redis backend against a real 3-master Redis Cluster started by the test.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use fencelock_core::{DistributedLock, LockOptions};
use fencelock_redis::{RedisLock, RedisLockBuilder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_acquire_renew_release_and_wake() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let lock = RedisLock::connect(&url).await.expect("cluster connect");
    let o = LockOptions::new()
        .with_ttl(Duration::from_millis(400))
        .with_renew_interval(Duration::from_millis(100))
        .with_wait(Duration::ZERO);

    // Keys spread over all three masters.
    let mut guards = Vec::new();
    for i in 0..30 {
        let k = format!("cluster:{i}");
        let g = lock.try_acquire(&k, &o).await.unwrap().expect("free");
        assert_eq!(g.token().get(), 1);
        guards.push(g);
    }
    // Renewals keep them past several TTLs.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for g in &guards {
        assert!(!g.is_lost(), "{} lost", g.key());
        assert!(lock.try_acquire(g.key(), &o).await.unwrap().is_none());
    }
    for g in guards {
        g.release().await.unwrap();
    }
    let g = lock.try_acquire("cluster:0", &o).await.unwrap().unwrap();
    assert_eq!(g.token().get(), 2);
    g.release().await.unwrap();

    // Wake-ups: the waiter subscribes on one node, the release publishes on
    // whichever node owns the key; every key must wake its waiter.
    let waiter = RedisLockBuilder::from_url(&url)
        .unwrap()
        .with_max_recheck_interval(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let long = LockOptions::new().with_ttl(Duration::from_secs(20));
    for i in 0..6 {
        let k = format!("wake:{i}");
        let held = lock.acquire(&k, &long).await.unwrap();
        let w = waiter.clone();
        let k2 = k.clone();
        let o2 = long.clone().with_wait(Duration::from_secs(15));
        let task = tokio::spawn(async move {
            let g = w.acquire(&k2, &o2).await;
            (Instant::now(), g)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let released = Instant::now();
        held.release().await.unwrap();
        let (at, g) = task.await.unwrap();
        let g = g.expect("waiter got the lock");
        assert!(
            at - released < Duration::from_millis(1_000),
            "{k}: woken after {:?}",
            at - released
        );
        g.release().await.unwrap();
    }

    let info = lock.inspect("cluster:0").await.unwrap();
    assert_eq!(info.holder, None);
    assert_eq!(info.last_token.map(|t| t.get()), Some(2));
}
