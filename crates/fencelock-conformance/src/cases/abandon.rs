//! Abandoned, dropped and cancelled acquisitions leave nothing behind.

use std::process::Stdio;
use std::time::Duration;

use fencelock_core::{LockOptions, Scope};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::target::steady;
use crate::Target;

/// A holder dies (a child process killed with SIGKILL; in-process backends:
/// a leaked guard); another client gets the lock within the TTL (or session
/// / lease timeout) plus 3 s of slack, with a higher token.
pub async fn abandonment(t: &Target) {
    let caps = t.capabilities().await;
    let key = t.key("abandon");
    let ttl = Duration::from_secs(2);
    let slack = Duration::from_secs(3);
    let b = t.leases().await;
    let (dead_token, died) = if caps.scope >= Scope::Host {
        let mut child = tokio::process::Command::new(t.contender())
            .args(["hold", &t.url(), &key, &ttl.as_millis().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", t.contender().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the child never said it held the lock")
            .expect("read child")
            .expect("child exited before holding");
        let token: u64 = line
            .strip_prefix("held ")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected child output {line:?}"));
        child.start_kill().expect("SIGKILL the holder");
        let _ = child.wait().await;
        (token, Instant::now())
    } else {
        let a = t.leases().await;
        let g = a
            .acquire(&key, &LockOptions::new().with_ttl(ttl))
            .await
            .expect("holder");
        let token = g.token().get();
        g.leak();
        (token, Instant::now())
    };
    let bound = caps.abandon_bound(ttl) + slack;
    let g = b
        .acquire(&key, &steady().with_wait(bound + Duration::from_secs(10)))
        .await
        .expect("the abandoned lock never freed");
    let took = died.elapsed();
    assert!(
        took <= bound,
        "abandoned lock freed after {took:?}, bound {bound:?}"
    );
    assert!(
        g.token().get() > dead_token,
        "token {} not above the dead holder's {dead_token}",
        g.token()
    );
    g.release().await.expect("release");
}

/// A guard dropped without release frees the lock promptly: well before
/// its TTL (and session timeout).
pub async fn drop_frees(t: &Target) {
    let caps = t.capabilities().await;
    let (a, b) = (t.leases().await, t.leases().await);
    let key = t.key("drop");
    let opts = steady().with_ttl(Duration::from_secs(30));
    // Half of what would free it otherwise: the TTL, or the session timeout
    // if shorter (process-bound grants: the TTL).
    let otherwise = match caps.abandon_bound(opts.ttl()) {
        Duration::ZERO => opts.ttl(),
        b => b.min(opts.ttl()),
    };
    let bound = otherwise / 2;
    for _ in 0..3 {
        let g = a.acquire(&key, &opts).await.expect("holder");
        let dropped = Instant::now();
        drop(g);
        let next = b
            .acquire(&key, &opts.clone().with_wait(Duration::from_secs(30)))
            .await
            .expect("after drop");
        let took = dropped.elapsed();
        assert!(
            took <= bound,
            "a dropped guard freed the lock after {took:?}; bound {bound:?}"
        );
        next.release().await.expect("release");
    }
}

/// Acquire futures cancelled at random points (100 rounds, with and
/// without a holder in the way) leave nothing behind: the next acquirer, on
/// another client, is not delayed.
pub async fn cancellation(t: &Target) {
    let (a, b) = (t.leases().await, t.leases().await);
    let key = t.key("cancel");
    let bound = Duration::from_secs(2);
    let mut rng = rand::rngs::StdRng::from_entropy();
    for round in 0..100u32 {
        let holder = if round % 2 == 1 {
            Some(b.acquire(&key, &steady()).await.expect("holder"))
        } else {
            None
        };
        let cut =
            Duration::from_micros(rng.gen_range(0..if holder.is_some() { 20_000 } else { 5_000 }));
        let cancelled = tokio::time::timeout(cut, a.acquire(&key, &steady())).await;
        if let Ok(Ok(g)) = cancelled {
            // Not cancelled after all: it got the lock; give it back.
            g.release().await.expect("release");
        }
        if let Some(h) = holder {
            h.release().await.expect("holder release");
        }
        let started = Instant::now();
        let g = b
            .acquire(&key, &steady().with_wait(Duration::from_secs(20)))
            .await
            .unwrap_or_else(|e| panic!("round {round}: next acquirer: {e}"));
        let took = started.elapsed();
        assert!(
            took <= bound,
            "round {round} (cut at {cut:?}): next acquirer delayed {took:?}"
        );
        g.release().await.expect("release");
    }
}

use rand::SeedableRng as _;
