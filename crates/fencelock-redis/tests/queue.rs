//! The queue of waiters: a release wakes one waiter, not every waiter of
//! every client, and a waiter that gives up leaves the queue.

mod common;

use std::time::{Duration, Instant};

use common::{cli, Server};
use fencelock_core::{DistributedLock, LockGuard, LockOptions};
use fencelock_redis::{RedisLock, RedisLockBuilder};
use tokio::sync::mpsc;

/// A client whose waiters re-check only every 10 s: anything faster is a
/// wake-up.
async fn slow_rechecking(url: &str) -> RedisLock {
    RedisLockBuilder::from_url(url)
        .unwrap()
        .with_max_recheck_interval(Duration::from_secs(10))
        .build()
        .await
        .unwrap()
}

/// How many scripts (`EVALSHA`) the server has run.
fn scripts_run(port: u16) -> u64 {
    let stats = cli(port, &["info", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn opts() -> LockOptions {
    LockOptions::new()
        .with_ttl(Duration::from_secs(20))
        .with_wait(Duration::from_secs(30))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_one_waiter_of_all_clients() {
    const WAITERS: usize = 4;
    let server = Server::start();
    let url = server.url();
    let holder = RedisLock::connect(&url).await.unwrap();
    let first = holder.acquire("herd", &opts()).await.unwrap();

    let (tx, mut granted) = mpsc::unbounded_channel::<LockGuard>();
    let mut tasks = Vec::new();
    for _ in 0..WAITERS {
        let client = slow_rechecking(&url).await;
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let g = client.acquire("herd", &opts()).await.expect("a grant");
            let _ = tx.send(g);
            client // kept alive until the test ends
        }));
    }
    let started = Instant::now();
    while holder.inspect("herd").await.unwrap().queued < WAITERS {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the waiters did not queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Each release hands over to exactly one waiter, which is woken (its
    // own re-check is 10 s away) and runs one script; the others sleep.
    let mut current = first;
    for left in (0..WAITERS).rev() {
        let before = scripts_run(server.port);
        let released = Instant::now();
        current.release().await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(3), granted.recv())
            .await
            .expect("a waiter is woken within 3 s, not at its 10 s re-check")
            .unwrap();
        let took = released.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The release script and one acquire script.
        let tried = scripts_run(server.port) - before - 1;
        assert_eq!(
            tried, 1,
            "one release, {tried} acquire scripts (hand-off took {took:?})"
        );
        assert_eq!(holder.inspect("herd").await.unwrap().queued, left);
        current = next;
    }
    current.release().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_gives_up_leaves_the_queue() {
    let server = Server::start();
    let url = server.url();
    let holder = RedisLock::connect(&url).await.unwrap();
    let g = holder.acquire("leave", &opts()).await.unwrap();

    let patient = slow_rechecking(&url).await;
    let waiting = tokio::spawn(async move {
        let g = patient.acquire("leave", &opts()).await.expect("a grant");
        (Instant::now(), g, patient)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second waiter queues after it (so a release would name it), then
    // is dropped mid-wait, and one more gives up at its wait bound.
    let quitter = slow_rechecking(&url).await;
    let dropped = tokio::spawn({
        let q = quitter.clone();
        async move { q.acquire("leave", &opts()).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holder.inspect("leave").await.unwrap().queued, 2);
    dropped.abort();
    let bounded = opts().with_wait(Duration::from_millis(300));
    assert!(quitter.acquire("leave", &bounded).await.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        holder.inspect("leave").await.unwrap().queued,
        1,
        "the dropped and the timed-out waiter left the queue"
    );

    let released = Instant::now();
    g.release().await.unwrap();
    let (got_at, g2, _patient) = waiting.await.unwrap();
    let took = got_at - released;
    assert!(
        took < Duration::from_secs(2),
        "the remaining waiter was woken after {took:?}; its re-check is 10 s"
    );
    g2.release().await.unwrap();
}

/// No waiter starves while others loop: tasks on two clients loop
/// acquire / 2 ms inside / release on one key. A releasing task that asks
/// again at once must not keep the lock from the waiters queued before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_holders_do_not_starve_waiters() {
    const CLIENTS: usize = 2;
    const TASKS: usize = 6;
    let server = Server::start();
    let url = server.url();
    let run_for = Duration::from_secs(4);
    let until = Instant::now() + run_for;
    let mut handles = Vec::new();
    for _ in 0..CLIENTS {
        let client = RedisLock::connect(&url).await.unwrap();
        for _ in 0..TASKS {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                let (mut grants, mut longest) = (0usize, Duration::ZERO);
                while Instant::now() < until {
                    let asked = Instant::now();
                    let g = client.acquire("fair", &opts()).await.expect("a grant");
                    longest = longest.max(asked.elapsed());
                    grants += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    g.release().await.unwrap();
                }
                (grants, longest)
            }));
        }
    }
    let mut per_task = Vec::new();
    for h in handles {
        per_task.push(h.await.unwrap());
    }
    let total: usize = per_task.iter().map(|t| t.0).sum();
    let longest = per_task.iter().map(|t| t.1).max().unwrap_or_default();
    let fewest = per_task.iter().map(|t| t.0).min().unwrap_or_default();
    let most = per_task.iter().map(|t| t.0).max().unwrap_or_default();
    println!(
        "{} tasks on {CLIENTS} clients, {run_for:?}: {total} grants, per task {fewest}..{most}, longest wait {longest:?}",
        CLIENTS * TASKS
    );
    assert!(
        longest < Duration::from_secs(1),
        "a waiter waited {longest:?} (grants per task {per_task:?})"
    );
}

/// A waiter that died after it queued is first in line: the release hands
/// it the lock for the hand-off window, which it never uses; then the next
/// waiter gets the lock at its safety-net re-check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_waiter_costs_the_handoff_window() {
    let server = Server::start();
    let url = server.url();
    let holder = RedisLock::connect(&url).await.unwrap();
    let g = holder.acquire("dead", &opts()).await.unwrap();
    // A waiter that queued and died: an entry that stays live for 10 s.
    let dead = "0123456789abcdef0123456789abcdef";
    let lapses = format!("{}", u64::MAX / 2);
    cli(
        server.port,
        &["ZADD", "fencelock:{dead}:queue", &lapses, dead],
    );
    cli(server.port, &["ZADD", "fencelock:{dead}:order", "0", dead]);
    let patient = RedisLockBuilder::from_url(&url)
        .unwrap()
        .with_max_recheck_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        let g = patient.acquire("dead", &opts()).await.expect("a grant");
        (Instant::now(), g, patient)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holder.inspect("dead").await.unwrap().queued, 2);

    let released = Instant::now();
    g.release().await.unwrap();
    // Inside the window the lock is kept for the dead waiter.
    let other = RedisLock::connect(&url).await.unwrap();
    assert!(other.try_acquire("dead", &opts()).await.unwrap().is_none());
    let (got_at, g2, _patient) = waiting.await.unwrap();
    let took = got_at - released;
    println!(
        "the live waiter got the lock {took:?} after the release (window 200 ms, re-check 500 ms)"
    );
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(1500),
        "the live waiter got the lock {took:?} after the release"
    );
    g2.release().await.unwrap();
}
