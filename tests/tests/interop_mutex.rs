//! fencelock's lock beside the stores' own mutex recipes, in both
//! directions: Apache Curator's `InterProcessMutex` on ZooKeeper, and
//! `etcdctl lock` and etcd's Lock service (`v3lock`) on etcd. Each peer
//! runs as a process of its own (`fencelock_testbed::interop`) on a
//! real server from the fixtures. Test names read
//! `interop::<peer>::<case>`; `scripts/test` prints one line per peer.
//!
//! Measured times print as `measured <peer>: ...` (seen with `--nocapture`).

use std::time::Duration;

use fencelock::LockOptions;
use fencelock_testbed::interop::{unix_us, workspace_bin, Event, Mode, Pair, Peer};
use tokio::process::Command;
use tokio::time::{timeout, Instant};

const HELPER: &str = env!("CARGO_BIN_EXE_fencelock-interop-peer");
const CONTENDER: &str = env!("CARGO_BIN_EXE_fencelock-contender");
const RECIPE: &str = "mutex";
/// How soon after a release a waiter must hold the lock: far below either
/// backend's fallback poll (2 s on etcd, 4 s here on ZooKeeper), so only a
/// store notification can have woken it.
const PROMPT: Duration = Duration::from_millis(250);
const LONG: Duration = Duration::from_secs(30);

fn opts() -> LockOptions {
    LockOptions::new().with_ttl(Duration::from_secs(10))
}

async fn pair(peer: Peer) -> Pair {
    Pair::start(peer, HELPER)
        .await
        .unwrap_or_else(|e| panic!("{}: the store did not start: {e}", peer.name()))
}

fn hold(wait: Option<Duration>, hold: Duration) -> Mode {
    Mode::Hold { wait, hold }
}

fn ms(us: u64) -> f64 {
    // Microsecond counts of a test run fit f64 exactly.
    #[allow(clippy::cast_precision_loss)]
    let v = us as f64;
    v / 1000.0
}

fn releasing(events: &[Event]) -> u64 {
    events
        .iter()
        .find_map(|e| match e {
            Event::Releasing(t) => Some(*t),
            _ => None,
        })
        .expect("the peer said when it released")
}

/// The peer holds: fencelock's try_acquire says busy. fencelock holds: the
/// peer's bounded try is not granted.
async fn busy_both_ways(peer: Peer) {
    let p = pair(peer).await;
    let mut held = p
        .spawn(RECIPE, &hold(None, Duration::from_millis(1500)))
        .unwrap();
    held.acquired(LONG).await.unwrap();
    let tried = p.lock.try_acquire(&p.key, &opts()).await.unwrap();
    assert!(
        tried.is_none(),
        "{}: try_acquire got a lock the peer held",
        peer.name()
    );
    held.finish(LONG).await.unwrap();

    let g = p.lock.acquire(&p.key, &opts()).await.unwrap();
    let mut tries = p
        .spawn(RECIPE, &hold(Some(peer.try_wait()), Duration::ZERO))
        .unwrap();
    let said = tries
        .until(LONG, |e| match e {
            Event::Busy(_) => Some(Ok(())),
            Event::Acquired { .. } => Some(Err(())),
            _ => None,
        })
        .await
        .unwrap();
    assert!(
        said.is_ok(),
        "{}: the peer got the lock fencelock held",
        peer.name()
    );
    tries.finish(LONG).await.unwrap();
    g.release().await.unwrap();
}

/// Each side waits while the other holds and is granted promptly after the
/// release (woken by the store, not by a poll).
async fn waiter_woken_promptly_both_ways(peer: Peer) {
    let p = pair(peer).await;
    assert!(PROMPT * 4 < p.fallback_poll());
    // The peer holds; fencelock waits.
    let mut held = p
        .spawn(RECIPE, &hold(None, Duration::from_millis(1200)))
        .unwrap();
    held.acquired(LONG).await.unwrap();
    let g = p
        .lock
        .acquire(&p.key, &opts().with_wait(Duration::from_secs(20)))
        .await
        .unwrap();
    let granted = unix_us();
    let events = held.finish(LONG).await.unwrap();
    let released = releasing(&events);
    assert!(
        granted > released,
        "{}: granted before the peer released",
        peer.name()
    );
    let fencelock_wake = Duration::from_micros(granted - released);
    println!(
        "measured {}: fencelock granted {:.1} ms after the peer's release",
        peer.name(),
        ms(granted - released)
    );
    assert!(
        fencelock_wake < PROMPT,
        "{}: fencelock woke {fencelock_wake:?} after the release",
        peer.name()
    );

    // fencelock holds; the peer waits.
    let mut waiter = p.spawn(RECIPE, &hold(None, Duration::ZERO)).unwrap();
    p.queued(1, LONG).await.unwrap();
    assert!(
        !waiter
            .seen()
            .iter()
            .any(|e| matches!(e, Event::Acquired { .. })),
        "{}: the peer got the lock fencelock held",
        peer.name()
    );
    let released = unix_us();
    g.release().await.unwrap();
    let (at, _) = waiter.acquired(LONG).await.unwrap();
    assert!(
        at > released,
        "{}: the peer was granted before the release",
        peer.name()
    );
    println!(
        "measured {}: the peer granted {:.1} ms after fencelock's release",
        peer.name(),
        ms(at - released)
    );
    assert!(
        Duration::from_micros(at - released) < PROMPT,
        "{}: the peer woke {:.1} ms after the release",
        peer.name(),
        ms(at - released)
    );
    waiter.finish(LONG).await.unwrap();
}

/// Two fencelock processes and two peer processes loop on one key with an
/// `O_EXCL` marker file inside the section: never two inside at once.
async fn mixed_contention_never_overlaps(peer: Peer) {
    let p = pair(peer).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("inside");
    let rounds = 15u32;
    let t0 = Instant::now();
    let peers: Vec<_> = (0..2)
        .map(|_| {
            p.spawn(
                RECIPE,
                &Mode::Loop {
                    rounds,
                    marker: marker.clone(),
                    inside: Duration::from_millis(3),
                },
            )
            .unwrap()
        })
        .collect();
    let contenders: Vec<_> = (0..2)
        .map(|_| {
            Command::new(CONTENDER)
                .args(["contend", &p.url, &p.key, &rounds.to_string(), "10000"])
                .arg(&marker)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        })
        .collect();
    let mut overlaps = 0;
    let mut grants = Vec::new();
    for c in contenders {
        let out = timeout(Duration::from_secs(120), c.wait_with_output())
            .await
            .expect("a fencelock contender ran over 120 s")
            .unwrap();
        assert!(out.status.success(), "contender: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        overlaps += text.lines().filter(|l| l.starts_with("overlap ")).count();
        let tokens: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("enter "))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect();
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "a contender's tokens fell: {tokens:?}"
        );
        grants.push(tokens.len());
    }
    for w in peers {
        let events = w.finish(Duration::from_secs(120)).await.unwrap();
        overlaps += events
            .iter()
            .filter(|e| matches!(e, Event::Overlap(_)))
            .count();
        let tokens: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                Event::Acquired { token, .. } => Some(*token),
                _ => None,
            })
            .collect();
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "a peer's tokens fell: {tokens:?}"
        );
        grants.push(tokens.len());
    }
    println!(
        "measured {}: mixed contention, grants per process {grants:?} in {:?}, {overlaps} overlaps",
        peer.name(),
        t0.elapsed()
    );
    assert_eq!(overlaps, 0, "{}: two inside at once", peer.name());
    assert!(
        grants.iter().all(|g| *g == rounds as usize),
        "grants {grants:?}"
    );
}

/// A holder killed with SIGKILL: the other side gets the lock within the
/// dead holder's session or lease timeout (both directions).
async fn killed_holder_frees_within_session(peer: Peer) {
    let p = pair(peer).await;
    let margin = Duration::from_secs(2);
    // The peer's holder dies; fencelock waits.
    let mut held = p
        .spawn(RECIPE, &hold(None, Duration::from_secs(600)))
        .unwrap();
    held.acquired(LONG).await.unwrap();
    let lock = std::sync::Arc::clone(&p.lock);
    let key = p.key.clone();
    let waiting = tokio::spawn(async move {
        let g = lock
            .acquire(&key, &opts().with_wait(Duration::from_secs(30)))
            .await;
        (Instant::now(), g)
    });
    p.queued(1, LONG).await.unwrap();
    let killed = Instant::now();
    held.kill_holder().unwrap();
    let (at, g) = waiting.await.unwrap();
    let g = g.unwrap();
    let took = at - killed;
    println!(
        "measured {}: fencelock granted {took:?} after the peer's holder was killed (its session {:?})",
        peer.name(),
        fencelock_testbed::interop::PEER_SESSION
    );
    assert!(
        took < fencelock_testbed::interop::PEER_SESSION + margin,
        "{}: {took:?}",
        peer.name()
    );
    g.release().await.unwrap();

    // fencelock's holder (a process of its own) dies; the peer waits. Its
    // grant's TTL is below the session: where a grant's own lease honours
    // its TTL (etcd), the TTL frees the lock; where a session does, the
    // session.
    let holder_ttl = Duration::from_secs(3);
    let mut holder = Command::new(CONTENDER)
        .args(["hold", &p.url, &p.key, &holder_ttl.as_millis().to_string()])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(holder.stdout.take().unwrap()));
    let line = timeout(LONG, lines.next_line()).await.unwrap().unwrap();
    assert!(line.is_some_and(|l| l.starts_with("held ")));
    let mut waiter = p.spawn(RECIPE, &hold(None, Duration::ZERO)).unwrap();
    p.queued(1, LONG).await.unwrap();
    let killed_at = unix_us();
    holder.start_kill().unwrap();
    let (at, _) = waiter.acquired(LONG).await.unwrap();
    let took = Duration::from_micros(at.saturating_sub(killed_at));
    println!(
        "measured {}: the peer granted {took:?} after fencelock's holder was killed (its session {:?}, its TTL {holder_ttl:?})",
        peer.name(),
        p.fencelock_session()
    );
    assert!(
        took < p.fencelock_session() + margin,
        "{}: {took:?}",
        peer.name()
    );
    waiter.finish(LONG).await.unwrap();
    let _ = holder.wait().await;
}

/// Tokens rise across grants alternating between fencelock and the peer
/// (czxid on ZooKeeper, create revision on etcd: one counter for both).
async fn tokens_rise_across_peer_grants(peer: Peer) {
    let p = pair(peer).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let g = p.lock.acquire(&p.key, &opts()).await.unwrap();
        seen.push(("fencelock", g.token().get()));
        g.release().await.unwrap();
        let mut w = p.spawn(RECIPE, &hold(None, Duration::ZERO)).unwrap();
        let (_, token) = w.acquired(LONG).await.unwrap();
        seen.push((peer.name(), token));
        w.finish(LONG).await.unwrap();
    }
    assert!(
        seen.windows(2).all(|w| w[0].1 < w[1].1),
        "tokens did not keep rising: {seen:?}"
    );
}

/// `fencelock status` and `fencelock list` show the peer's holder as held,
/// with the peer's token.
async fn cli_shows_peer_holder(peer: Peer) {
    let p = pair(peer).await;
    let cli = workspace_bin("fencelock", "build it with `cargo build -p fencelock-cli`").unwrap();
    let mut held = p
        .spawn(RECIPE, &hold(None, Duration::from_secs(600)))
        .unwrap();
    let (_, token) = held.acquired(LONG).await.unwrap();
    let run = |args: Vec<String>| {
        let cli = cli.clone();
        let url = p.url.clone();
        async move {
            let out = Command::new(cli)
                .args(["--url", &url, "--json"])
                .args(args)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "fencelock: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        }
    };
    let status = run(vec!["status".into(), p.key.clone()]).await;
    assert_eq!(status["held"], true, "{status}");
    assert_eq!(status["token"], token, "{status}");
    let listed = run(vec!["list".into(), "interop-".into()]).await;
    let ours = listed
        .as_array()
        .and_then(|a| a.iter().find(|s| s["key"] == p.key.as_str()))
        .unwrap_or_else(|| panic!("{} not listed: {listed}", p.key));
    assert_eq!(ours["held"], true, "{ours}");
    assert_eq!(ours["token"], token, "{ours}");
}

macro_rules! interop {
    ($module:ident, $peer:expr) => {
        mod $module {
            use super::super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn busy_both_ways() {
                super::super::busy_both_ways($peer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn waiter_woken_promptly_both_ways() {
                super::super::waiter_woken_promptly_both_ways($peer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mixed_contention_never_overlaps() {
                super::super::mixed_contention_never_overlaps($peer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn killed_holder_frees_within_session() {
                super::super::killed_holder_frees_within_session($peer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tokens_rise_across_peer_grants() {
                super::super::tokens_rise_across_peer_grants($peer).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cli_shows_peer_holder() {
                super::super::cli_shows_peer_holder($peer).await;
            }
        }
    };
}

mod interop {
    interop!(curator, Peer::Curator);
    interop!(etcdctl, Peer::Etcdctl);
    interop!(etcd_lock_service, Peer::EtcdLockService);
}
