//! A holder that dies without releasing (its process killed with SIGKILL)
//! keeps the lock no longer than its TTL (a grant whose TTL is shorter than
//! the client's session timeout lives on a session of its own that honours
//! it), or than the session timeout when the TTL is longer.
//!
//! The holder is this very test binary, re-run as a child process with
//! `--exact child_holder` and the lock to take in its environment.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{children, Zk};
use fencelock_core::{DistributedLock, LockOptions};
use fencelock_zookeeper::ZkLock;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

const CHILD_URL: &str = "FENCELOCK_ZK_CHILD_URL";
const CHILD_KEY: &str = "FENCELOCK_ZK_CHILD_KEY";
const CHILD_TTL_MS: &str = "FENCELOCK_ZK_CHILD_TTL_MS";

/// Not a test of its own: in a child process (the variables set) it takes
/// the lock, prints `held <token>` and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_holder() {
    let (Ok(url), Ok(key), Ok(ttl)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_KEY),
        std::env::var(CHILD_TTL_MS),
    ) else {
        return;
    };
    let ttl = Duration::from_millis(ttl.parse().expect("TTL in ms"));
    let lock = ZkLock::connect(&url).await.expect("child connect");
    let g = lock
        .acquire(&key, &LockOptions::new().with_ttl(ttl))
        .await
        .expect("child acquire");
    println!("\nheld {}", g.token());
    std::future::pending::<()>().await;
}

/// Runs a child that holds `key` with `ttl`, kills it with SIGKILL once it
/// holds, and returns how long `waiter` then took to get the lock.
async fn killed_holder_frees_after(
    url: &str,
    waiter: &ZkLock,
    key: &str,
    ttl: Duration,
) -> Duration {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_holder",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_URL, url)
        .env(CHILD_KEY, key)
        .env(CHILD_TTL_MS, ttl.as_millis().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the holder");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let token: u64 = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the child never said it held the lock")
            .expect("read child")
            .expect("the child exited before holding");
        // libtest may have written `test child_holder ... ` on the line first.
        if let Some((_, t)) = line.rsplit_once("held ") {
            break t.trim().parse().expect("token");
        }
    };
    child.start_kill().expect("SIGKILL the holder");
    let _ = child.wait().await;
    let died = Instant::now();
    let g = waiter
        .acquire(key, &LockOptions::new().with_wait(Duration::from_secs(30)))
        .await
        .expect("the dead holder's lock never freed");
    let took = died.elapsed();
    assert!(g.token().get() > token, "token did not rise");
    g.release().await.expect("release");
    took
}

/// The server's tick (tickTime of the test server): it expires sessions on
/// tick boundaries.
const TICK: Duration = Duration::from_millis(500);
/// Room for a busy machine.
const SLACK: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_with_a_short_ttl_frees_at_its_ttl() {
    let server = Zk::start().expect("server");
    let url = server.url("");
    let waiter = ZkLock::connect(&url).await.expect("connect");
    assert_eq!(waiter.session_timeout(), Duration::from_secs(10));
    let ttl = Duration::from_secs(3);
    let took = killed_holder_frees_after(&url, &waiter, "dead:short", ttl).await;
    println!(
        "measured: a holder killed with TTL {ttl:?} (session timeout 10s) freed the lock after {took:?}"
    );
    assert!(
        took <= ttl + TICK + SLACK,
        "freed after {took:?}, TTL {ttl:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_with_a_ttl_below_the_server_minimum_frees_at_the_minimum() {
    let server = Zk::start().expect("server");
    let url = server.url("");
    let waiter = ZkLock::connect(&url).await.expect("connect");
    // The test server's tickTime is 500 ms: no session is shorter than 1 s.
    let ttl = Duration::from_millis(300);
    let bound = waiter
        .session_timeout_for(ttl)
        .await
        .expect("the session for the TTL");
    assert_eq!(bound, Duration::from_secs(1));
    let took = killed_holder_frees_after(&url, &waiter, "dead:tiny", ttl).await;
    println!(
        "measured: a holder killed with TTL {ttl:?} (server minimum {bound:?}) freed the lock after {took:?}"
    );
    assert!(
        took <= bound + TICK + SLACK,
        "freed after {took:?}, bound {bound:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_longer_than_the_session_stays_on_the_session() {
    let server = Zk::start().expect("server");
    let url = server.url("?session_timeout=2s");
    let waiter = ZkLock::connect(&url).await.expect("connect");
    let ttl = Duration::from_secs(30);
    assert_eq!(
        waiter.session_timeout_for(ttl).await.unwrap(),
        Duration::from_secs(2)
    );
    // In process: the grant's node belongs to the client's main session.
    let raw = server.raw().await;
    let g = waiter
        .acquire("long", &LockOptions::new().with_ttl(ttl))
        .await
        .unwrap();
    let path = waiter.lock_path("long");
    let node = children(&raw, &path).await.remove(0);
    let (_, stat) = raw.get_data(&format!("{path}/{node}")).await.unwrap();
    assert_eq!(Some(stat.ephemeral_owner), waiter.session_id().await);
    g.release().await.unwrap();
    let took = killed_holder_frees_after(&url, &waiter, "dead:long", ttl).await;
    println!(
        "measured: a holder killed with TTL {ttl:?} (session timeout 2s) freed the lock after {took:?}"
    );
    assert!(
        took <= Duration::from_secs(2) + TICK + SLACK,
        "freed after {took:?}"
    );
}
