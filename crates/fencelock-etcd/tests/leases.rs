//! Every grant's lease honours the grant's TTL: a holder whose process is
//! killed frees the lock at its TTL (plus etcd's expiry tick), and no path
//! of an acquire leaves a lease behind. Against a real etcd started here.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::Etcd;
use fencelock_core::{DistributedLock, ErrorKind, LockOptions};
use fencelock_etcd::EtcdLock;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{sleep, timeout, Instant};

const CHILD_URL: &str = "FENCELOCK_ETCD_TEST_HOLD_URL";
const CHILD_KEY: &str = "FENCELOCK_ETCD_TEST_HOLD_KEY";
const CHILD_TTL_MS: &str = "FENCELOCK_ETCD_TEST_HOLD_TTL_MS";

/// The holder process of [`a_killed_holder_is_freed_at_its_ttl`]: this test
/// binary started again with only this test and the variables above. It
/// takes the lock, says `held <token>` and waits to be killed.
#[tokio::test]
#[ignore = "run by a_killed_holder_is_freed_at_its_ttl as its holder process"]
async fn holder_process() {
    let (Ok(url), Ok(key), Ok(ttl)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_KEY),
        std::env::var(CHILD_TTL_MS),
    ) else {
        return;
    };
    let ttl = Duration::from_millis(ttl.parse().expect("ttl in ms"));
    let lock = EtcdLock::connect(&url).await.expect("connect");
    let g = lock
        .acquire(&key, &LockOptions::new().with_ttl(ttl))
        .await
        .expect("acquire");
    let mut out = std::io::stdout();
    writeln!(out, "held {}", g.token()).expect("stdout");
    out.flush().expect("stdout");
    std::future::pending::<()>().await;
}

/// Starts [`holder_process`] holding `key` with `ttl`; returns the child
/// and its token once it holds.
async fn spawn_holder(url: &str, key: &str, ttl: Duration) -> (tokio::process::Child, u64) {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["holder_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_URL, url)
        .env(CHILD_KEY, key)
        .env(CHILD_TTL_MS, ttl.as_millis().to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the holder process");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let token = timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read the holder") {
            if let Some(t) = line.strip_prefix("held ") {
                return t.trim().parse::<u64>().expect("token");
            }
        }
        panic!("the holder process ended before holding");
    })
    .await
    .expect("the holder process never held the lock");
    (child, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_freed_at_its_ttl() {
    let Some(e) = Etcd::start() else { return };
    let url = e.url("");
    let waiter = EtcdLock::connect(&url).await.expect("connect");
    for ttl in [Duration::from_secs(3), Duration::from_secs(1)] {
        let key = format!("killed-{}", ttl.as_millis());
        let (mut child, dead_token) = spawn_holder(&url, &key, ttl).await;
        // Let the holder renew a few times, so the bound below is not just
        // the first grant's.
        sleep(ttl).await;
        child.start_kill().expect("SIGKILL the holder");
        let _ = child.wait().await;
        let killed = Instant::now();
        let g = waiter
            .acquire(&key, &LockOptions::new().with_wait(Duration::from_secs(30)))
            .await
            .expect("the killed holder's lock never freed");
        let took = killed.elapsed();
        println!("measured: a holder with TTL {ttl:?} killed with SIGKILL; the lock was granted again {took:?} later");
        assert!(g.token().get() > dead_token, "tokens rise");
        // The TTL, plus etcd's expiry check (every 500 ms) and scheduling.
        assert!(
            took <= ttl + Duration::from_millis(1500),
            "freed {took:?} after the kill, TTL {ttl:?}"
        );
        g.release().await.expect("release");
    }
}

/// 200 uncontended acquire + release cycles on one client; prints the
/// median and 90th percentile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncontended_cycles() {
    let Some(e) = Etcd::start() else { return };
    let lock = EtcdLock::connect(&e.url("")).await.expect("connect");
    let opts = LockOptions::new().with_ttl(Duration::from_secs(10));
    for _ in 0..20 {
        lock.acquire("warm", &opts)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }
    let mut cycles = Vec::new();
    let mut acquires = Vec::new();
    for i in 0..200 {
        let t0 = Instant::now();
        let g = lock
            .acquire(&format!("cycle:{}", i % 7), &opts)
            .await
            .unwrap();
        acquires.push(t0.elapsed());
        g.release().await.unwrap();
        cycles.push(t0.elapsed());
    }
    cycles.sort();
    acquires.sort();
    println!(
        "measured: 200 uncontended cycles: cycle median {:?}, p90 {:?}; acquire median {:?}, p90 {:?}",
        cycles[100], cycles[180], acquires[100], acquires[180]
    );
}

/// How many leases the member holds (LeaseLeases).
async fn leases(e: &Etcd) -> usize {
    let mut c = etcd_client::Client::connect([e.endpoint()], None)
        .await
        .expect("etcd-client connect");
    c.leases().await.expect("lease list").leases().len()
}

/// Waits (bounded) until the member holds `want` leases.
async fn leases_become(e: &Etcd, want: usize, what: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let n = leases(e).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: {n} leases, want {want}, after 5 s"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lease_is_left_behind() {
    let Some(e) = Etcd::start() else { return };
    let url = e.url("?timeout=500ms&poll_interval=30s");
    let (a, b) = (
        EtcdLock::connect(&url).await.unwrap(),
        EtcdLock::connect(&url).await.unwrap(),
    );
    let opts = LockOptions::new().with_ttl(Duration::from_secs(5));
    let base = leases(&e).await;

    let g = a.acquire("l", &opts).await.unwrap();
    assert_eq!(leases(&e).await, base + 1, "one lease per grant");
    g.release().await.unwrap();
    assert_eq!(leases(&e).await, base, "after a release");

    let held = a.acquire("l", &opts).await.unwrap();
    assert!(b.try_acquire("l", &opts).await.unwrap().is_none());
    assert_eq!(leases(&e).await, base + 1, "after a busy try");
    let busy = b
        .acquire("l", &opts.clone().with_wait(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Busy);
    assert_eq!(leases(&e).await, base + 1, "after a wait bound ran out");
    let waiting = tokio::spawn({
        let (b, opts) = (b.clone(), opts.clone());
        async move { b.acquire("l", &opts).await }
    });
    leases_become(&e, base + 2, "a waiter holds a lease").await;
    waiting.abort();
    leases_become(&e, base + 1, "after a cancelled wait").await;
    drop(held);
    leases_become(&e, base, "after a dropped guard").await;

    let unrenewed = opts
        .clone()
        .with_ttl(Duration::from_secs(1))
        .with_auto_renew(false);
    let g = a.acquire("l", &unrenewed).await.unwrap();
    timeout(Duration::from_secs(3), g.lost())
        .await
        .expect("lost at its TTL");
    leases_become(&e, base, "after a loss").await;
    drop(g);

    // An acquire that fails: the store stops answering mid-way.
    e.signal("-STOP");
    let failed = a.acquire("l", &opts).await.unwrap_err();
    e.signal("-CONT");
    assert!(
        matches!(failed.kind(), ErrorKind::Timeout | ErrorKind::Connection),
        "{failed}"
    );
    leases_become(&e, base, "after a failed acquire").await;
    let g = b.try_acquire("l", &opts).await.unwrap().expect("free");
    g.release().await.unwrap();
    assert_eq!(leases(&e).await, base);
}
