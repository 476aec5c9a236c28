//! Faults on our own processes only, by PID: restart a fixture's server
//! with the command line it had, find the leader to hit. (Pausing and
//! killing servers is [`ServerProcess`]'s; clients are
//! [`ClientProc`](super::client::ClientProc)'s; network faults are the
//! [proxy](crate::proxy)'s.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fixture::{probe_at, wait_until, Fixture, ServerProcess};

/// Whether server `i` of `f` answers its client port as its kind of server
/// should (Redis `PING`, ZooKeeper `srvr`, etcd `/health`).
pub async fn answers(f: &Fixture, i: usize) -> bool {
    let ep = f.endpoints()[i];
    let backend = f.backend();
    if backend.starts_with("redis") || backend == "redlock" {
        probe_at(ep, b"PING\r\n", "+PONG").await
    } else if backend.starts_with("zookeeper") {
        probe_at(ep, b"srvr", "Mode:").await
    } else if backend.starts_with("etcd") {
        let req = format!("GET /health HTTP/1.1\r\nHost: {ep}\r\nConnection: close\r\n\r\n");
        probe_at(ep, req.as_bytes(), "\"health\":\"true\"").await
    } else {
        false
    }
}

/// SIGKILLs server `i` of `f`, leaves it down for `down_for`, and starts
/// it again with the same command line and working directory (so the same
/// ports and data directory: a restart with whatever the server
/// persisted), logging to `logs`. Waits up to `bound` for it to answer.
/// Returns when it answered (ns), or an error.
///
/// # Errors
///
/// When the command line cannot be read or the server does not come back.
pub async fn restart(
    f: &Fixture,
    i: usize,
    logs: &Path,
    down_for: Duration,
    bound: Duration,
) -> Result<u128, String> {
    let (argv, cwd) = {
        let s = f.server(i);
        let pid = s.pid();
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map_err(|e| e.to_string())?;
        (argv, cwd)
    };
    let (program, args) = argv.split_first().ok_or("empty command line")?;
    f.server(i).kill();
    tokio::time::sleep(down_for).await;
    let give_up = tokio::time::Instant::now() + bound;
    loop {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&cwd);
        let log = logs.join(format!("restart-{i}-{:08x}.log", rand::random::<u32>()));
        let p = ServerProcess::spawn(&format!("{program} (restarted)"), cmd, &log)
            .map_err(|e| e.to_string())?;
        *f.server(i) = p;
        let left = give_up.saturating_duration_since(tokio::time::Instant::now());
        if wait_until(left.min(Duration::from_secs(20)), || answers(f, i)).await {
            return Ok(crate::monotonic_ns());
        }
        {
            let mut s = f.server(i);
            if s.is_running() || tokio::time::Instant::now() >= give_up {
                return Err(format!(
                    "server {i} did not answer after its restart: {}",
                    s.log_tail()
                ));
            }
            // It exited (e.g. its port was not free yet): try again.
            s.kill();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The leader of a ZooKeeper or etcd fixture, waiting up to `bound` for
/// one to be elected.
pub async fn leader(f: &Fixture, bound: Duration) -> Option<usize> {
    let end = tokio::time::Instant::now() + bound;
    loop {
        let l = if f.backend().starts_with("etcd") {
            crate::fixture::etcd_leader(f).await
        } else {
            crate::fixture::zookeeper_leader(f).await
        };
        if l.is_some() || tokio::time::Instant::now() >= end {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
