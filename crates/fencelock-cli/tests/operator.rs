//! What an operator sees: usage errors, refused stores, connection errors,
//! `list`, a busy lock's holder, and `unlock --force`, on the built binary
//! against the conformance fixtures' real servers (foreign holders:
//! `tests/foreign.rs`).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

mod common;

use common::{fencelock, first_line, fixture, json, output, text, wait_for_line, BACKENDS};

#[tokio::test]
async fn every_usage_error_exits_64_and_help_exits_0() {
    for args in [
        &["run", "--wait", "abc", "k", "--", "true"][..],
        &["run", "--ttl", "2d", "k", "--", "true"],
        &["run", "--ttl", "0", "k", "--", "true"],
        &["run", "--wiat", "0", "k", "--", "true"],
        &["run", "k", "true"],
        &["run", "--", "true"],
        &["run", "k"],
        &["status"],
        &["unlock", "k"],
        &["bogus"],
        &[],
    ] {
        let out = output("file://", args).await;
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    for args in [&["--help"][..], &["run", "--help"], &["--version"]] {
        let out = output("file://", args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    for args in [&["--help"][..], &["run", "--help"], &["unlock", "--help"]] {
        let help = text(&output("file://", args).await.stdout);
        for code in ["0 ", "64", "69", "70", "75", "80", "124", "126", "127"] {
            assert!(
                help.contains(&format!("\n  {code}")),
                "{args:?} lacks {code}: {help}"
            );
        }
    }
}

#[tokio::test]
async fn memory_is_refused_by_every_subcommand() {
    for args in [
        &["run", "--wait", "0", "k", "--", "echo", "SHOULD-NOT-RUN"][..],
        &["status", "k"],
        &["list"],
        &["unlock", "--force", "k"],
    ] {
        let out = output("memory://", args).await;
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.contains("file://") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let out = output("memory://x", &["--json", "status", "k"]).await;
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(json(&out.stdout)["error"]["kind"], "Usage");
}

/// A loopback port that answers HTTP to whatever it is sent.
async fn http_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_errors_name_the_endpoint_on_one_line() {
    let closed = fencelock_testbed::fixture::free_port();
    let http = http_port().await;
    for (url, endpoint, says) in [
        (
            format!("redis://127.0.0.1:{closed}"),
            closed,
            "cannot connect",
        ),
        (
            format!("redis://127.0.0.1:{http}"),
            http,
            "did not answer like a Redis server",
        ),
        (format!("etcd://127.0.0.1:{closed}"), closed, "127.0.0.1"),
        (format!("etcd://127.0.0.1:{http}"), http, "127.0.0.1"),
        (
            format!("zk://127.0.0.1:{closed}?session_timeout=2s"),
            closed,
            "ZooKeeper",
        ),
    ] {
        for args in [&["run", "k", "--", "true"][..], &["status", "k"]] {
            let out = output(&url, args).await;
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(69), "{url} {args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{url}: {err}");
            assert!(
                err.contains(&format!("127.0.0.1:{endpoint}")),
                "{url}: {err}"
            );
            assert!(err.contains(says), "{url}: {err}");
            assert!(
                !err.contains("MetadataMap") && !err.contains("Error {"),
                "{url}: {err}"
            );
        }
        let out = output(&url, &["--json", "status", "k"]).await;
        let v = json(&out.stdout);
        assert_eq!(v["error"]["kind"], "Connection", "{url}: {v}");
        assert!(
            !v["error"]["causes"].as_array().unwrap().is_empty(),
            "{url}: {v}"
        );
        // The library's own error names the endpoint, with the store's error as source.
        if url.starts_with("redis") {
            let e = fencelock::connect(&url).await.err().unwrap();
            assert!(
                e.to_string().contains(&format!("127.0.0.1:{endpoint}")),
                "{e}"
            );
            assert!(std::error::Error::source(&e).is_some(), "{url}: no source");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_shows_what_is_held_the_same_on_every_store() {
    for backend in BACKENDS {
        let f = fixture(backend).await;
        let url = f.url();
        for key in ["hist:gone-1", "hist:gone-2"] {
            let out = output(&url, &["run", key, "--", "true"]).await;
            assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        }
        let out = output(&url, &["list", "hist:"]).await;
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout).trim(),
            "no locks held or waited for under \"hist:\"",
            "{backend}"
        );
        let mut holder = fencelock(&url)
            .args(["run", "hist:held", "--", "sh", "-c", "echo held; sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut holder, "held").await;
        let v = json(&output(&url, &["--json", "list", "hist:"]).await.stdout);
        let keys: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["key"].as_str())
            .collect();
        assert_eq!(keys, ["hist:held"], "{backend}: {v}");
        let v = json(
            &output(&url, &["--json", "list", "--all", "hist:"])
                .await
                .stdout,
        );
        let all: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["key"].as_str())
            .collect();
        assert!(all.contains(&"hist:held"), "{backend}: {v}");
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(all, sorted, "{backend}: not sorted");
        holder.start_kill().unwrap();
        let _ = holder.wait().await;
    }
}

/// `run` under a lock that prints `held <token>` and sleeps; its token.
async fn holder(url: &str, key: &str) -> (tokio::process::Child, u64) {
    let mut child = fencelock(url)
        .args([
            "run",
            "--ttl",
            "3s",
            "--grace",
            "1s",
            key,
            "--",
            "sh",
            "-c",
            "echo held $FENCELOCK_TOKEN; exec sleep 60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut child).await;
    let token = line
        .strip_prefix("held ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{url}: {line:?}"));
    (child, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn unlock_force_breaks_a_wedged_lock_and_raises_its_token() {
    // Redis Cluster and Sentinel run the same script as one Redis server.
    for backend in BACKENDS.iter().chain(&["redis-cluster", "redis-sentinel"]) {
        let f = fixture(backend).await;
        let url = f.url();
        let (mut old, token) = holder(&url, "wedged").await;
        // Busy names the holder, its token and its time left.
        let out = output(&url, &["run", "--wait", "0", "wedged", "--", "true"]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{backend}: {err}");
        assert!(
            err.contains(&format!(", token {token}")),
            "{backend}: {err}"
        );
        assert!(
            err.contains("held by ") && !err.contains("not fencelock"),
            "{backend}: {err}"
        );
        // Refused without --force, and nothing changes.
        let out = output(&url, &["unlock", "wedged"]).await;
        assert_eq!(out.status.code(), Some(64), "{backend}");
        assert!(text(&out.stderr).contains("--force"), "{backend}");
        let out = output(&url, &["--json", "unlock", "--force", "wedged"]).await;
        assert!(out.status.success(), "{backend}: {}", text(&out.stderr));
        let broken = Instant::now();
        let v = json(&out.stdout);
        assert_eq!(v["removed"][0]["token"], token, "{backend}: {v}");
        assert_eq!(v["removed"][0]["foreign"], false, "{backend}: {v}");
        // The old holder learns it lost the lock.
        let status = tokio::time::timeout(Duration::from_secs(20), old.wait())
            .await
            .unwrap_or_else(|_| panic!("{backend}: the old holder never learned"))
            .unwrap();
        assert_eq!(status.code(), Some(80), "{backend}");
        let learned = broken.elapsed();
        // The next grant's token is above the forced one.
        let out = output(
            &url,
            &[
                "run",
                "--wait",
                "10s",
                "wedged",
                "--",
                "sh",
                "-c",
                "echo $FENCELOCK_TOKEN",
            ],
        )
        .await;
        let next: u64 = text(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{backend}: {out:?}"));
        let floor = v["raised_to"].as_u64().unwrap_or(token);
        assert!(
            next > floor && floor >= token,
            "{backend}: {token} -> {floor} -> {next}"
        );
        // A second forced unlock finds nothing held.
        let out = output(&url, &["unlock", "--force", "wedged"]).await;
        assert!(
            text(&out.stdout).contains("nothing held"),
            "{backend}: {}",
            text(&out.stdout)
        );
        eprintln!("{backend}: the old holder exited 80 {learned:?} after the forced unlock; tokens {token} -> {next}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redlock_says_it_cannot_unlock() {
    let f = fixture("redlock").await;
    let out = output(&f.url(), &["unlock", "--force", "k"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(err.contains("redlock") && err.lines().count() == 1, "{err}");
}
