//! The built `fencelock` binary against `file://` and every server backend
//! that has landed, each started by the conformance fixtures.

use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

mod common;

use common::{expiry, fencelock, fixture, wait_for_line, BACKENDS};

#[tokio::test(flavor = "multi_thread")]
async fn runs_never_overlap() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let script = format!(
            "echo start $(date +%s%N) $FENCELOCK_TOKEN >> {0}; sleep 0.1; echo end $(date +%s%N) >> {0}",
            log.display()
        );
        let mut runs = Vec::new();
        for _ in 0..4 {
            runs.push(
                fencelock(&f.url())
                    .args(["run", "--wait", "30s", "overlap", "--", "sh", "-c", &script])
                    .spawn()
                    .unwrap(),
            );
        }
        for mut r in runs {
            assert!(r.wait().await.unwrap().success(), "{backend}: a run failed");
        }
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines.len(), 8, "{backend}: {text}");
        let mut last_token = 0u64;
        for pair in lines.chunks(2) {
            assert_eq!(
                pair[0][0], "start",
                "{backend}: sections interleave: {text}"
            );
            assert_eq!(pair[1][0], "end", "{backend}: sections interleave: {text}");
            let token: u64 = pair[0][2].parse().unwrap();
            assert!(token > last_token, "{backend}: tokens do not rise: {text}");
            last_token = token;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_zero_on_a_held_key_exits_with_the_conflict_code_at_once() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let mut holder = fencelock(&f.url())
            .args(["run", "busy", "--", "sh", "-c", "echo held; sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut holder, "held").await;
        let started = Instant::now();
        let out = fencelock(&f.url())
            .args(["run", "--wait", "0", "busy", "--", "true"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(75), "{backend}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{backend}: took {:?}",
            started.elapsed()
        );
        let out = fencelock(&f.url())
            .args([
                "run",
                "--wait",
                "0",
                "--conflict-exit-code",
                "9",
                "busy",
                "--",
                "true",
            ])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(9), "{backend}");
        let out = fencelock(&f.url())
            .args(["run", "--wait", "300ms", "busy", "--", "true"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(124), "{backend}");
        let status = fencelock(&f.url())
            .args(["--json", "status", "busy"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.contains("\"held\":true"), "{backend}: {text}");
        holder.start_kill().unwrap();
        let _ = holder.wait().await;
    }
}

/// A store paused (SIGSTOP) while `run --wait` waits on a held lock is an
/// outage: exit 69 (unavailable), never 124 (still busy).
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_store_exits_unavailable_not_busy() {
    for backend in ["redis", "zookeeper", "etcd"] {
        let f = fixture(backend).await;
        let mut holder = fencelock(&f.url())
            .args(["run", "paused", "--", "sh", "-c", "echo held; sleep 60"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut holder, "held").await;
        let waiter = fencelock(&f.url())
            .args(["run", "--wait", "2s", "paused", "--", "true"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        for i in 0..f.server_count() {
            f.server(i).pause();
        }
        let out = tokio::time::timeout(Duration::from_secs(60), waiter.wait_with_output()).await;
        for i in 0..f.server_count() {
            f.server(i).resume();
        }
        let out = out
            .unwrap_or_else(|_| panic!("{backend}: run hung on a paused store"))
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(69), "{backend}: {err}");
        holder.start_kill().unwrap();
        let _ = holder.wait().await;
    }
}

/// `run --ttl 3s` with the holder killed (SIGKILL to fencelock itself, no
/// release): the next `run` gets the lock within the TTL plus the store's
/// tick on every store (its own connect included), and at once on the file
/// store, where the kernel frees the lock with the process.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holder_frees_the_lock() {
    let ttl = Duration::from_secs(3);
    let tick = Duration::from_secs(2);
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let mut holder = fencelock(&f.url())
            .args([
                "run",
                "--ttl",
                "3s",
                "abandon",
                "--",
                "sh",
                "-c",
                "echo held; sleep 30",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut holder, "held").await;
        holder.start_kill().unwrap(); // SIGKILL to fencelock itself
        let _ = holder.wait().await;
        let killed = Instant::now();
        let out = fencelock(&f.url())
            .args(["run", "--wait", "20s", "abandon", "--", "true"])
            .output()
            .await
            .unwrap();
        let took = killed.elapsed();
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bound = if *backend == "file" {
            Duration::from_secs(1)
        } else {
            ttl + tick
        };
        println!("{backend}: a holder killed under --ttl 3s freed the lock after {took:?}");
        assert!(
            took <= bound,
            "{backend}: freed after {took:?}, bound {bound:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_lost_mid_command_stops_it_with_the_lost_code() {
    // Needs a store that can be paused past the TTL: the server backends.
    for backend in BACKENDS.iter().filter(|b| **b != "file") {
        let f = fixture(backend).await;
        let mut run = fencelock(&f.url())
            .args([
                "run",
                "--ttl",
                "1s",
                "--grace",
                "1s",
                "lost",
                "--",
                "sh",
                "-c",
                "echo held; exec sleep 60",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut run, "held").await;
        f.server(0).pause();
        let started = Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(20), run.wait())
            .await
            .expect("the command was not stopped")
            .unwrap();
        f.server(0).resume();
        assert_eq!(status.code(), Some(80), "{backend}");
        // Lost at the validity deadline (the TTL, or the session's timeout
        // from its last answered heartbeat), then SIGTERM and a bounded
        // best-effort release.
        assert!(
            started.elapsed() < expiry(&f, Duration::from_secs(1)).await + Duration::from_secs(2),
            "{backend}: stopped after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn bad_urls_and_keys_give_one_line_errors() {
    for (url, key, code) in [
        ("bogus://x", "k", 64),
        ("not a url", "k", 64),
        ("file://relative/dir", "k", 64),
        ("file://", "", 64),
        ("file://", "a\u{1}b", 64),
        ("redis://127.0.0.1:1", "k", 69),
    ] {
        let out = fencelock(url)
            .args(["run", key, "--", "true"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{url} {key:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{url}: {err}");
        assert!(err.starts_with("fencelock: "), "{url}: {err}");
    }
    let out = fencelock("file://")
        .args(["run", "k", "--", "/nonexistent/cmd"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_list_show_held_locks() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let mut holders = Vec::new();
        for key in ["jobs:a", "jobs:b/c"] {
            let mut h = fencelock(&f.url())
                .args(["run", key, "--", "sh", "-c", "echo held; sleep 30"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            wait_for_line(&mut h, "held").await;
            holders.push(h);
        }
        let out = fencelock(&f.url())
            .args(["--json", "list", "jobs:"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for key in ["jobs:a", "jobs:b/c"] {
            assert!(
                text.contains(&format!("\"key\":\"{key}\"")),
                "{backend}: {text}"
            );
        }
        assert_eq!(
            text.matches("\"held\":true").count(),
            2,
            "{backend}: {text}"
        );
        let out = fencelock(&f.url())
            .args(["status", "jobs:b/c"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("jobs:b/c: held"), "{backend}: {text}");
        for mut h in holders {
            h.start_kill().unwrap();
            let _ = h.wait().await;
        }
    }
}
