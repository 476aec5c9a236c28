//! A real etcd for the integration tests: one member or a cluster, started
//! here on loopback ports with the fast election timing short lease TTLs
//! need, killed by PID on drop.

#![allow(dead_code)] // each test file uses a part

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Etcd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Option<Etcd> {
        Self::cluster(1).map(|mut v| v.remove(0))
    }

    /// `n` members sharing one cluster; the first holds the temp dir.
    pub fn cluster(n: usize) -> Option<Vec<Etcd>> {
        if Command::new("etcd").arg("--version").output().is_err() {
            panic!("etcd not installed: install the Debian package etcd-server (scripts/test does it); a missing server is a failure, not a skip");
        }
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("s{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, (port, peer)) in ports.iter().copied().enumerate() {
            let dir = tempfile::tempdir_in("/dev/shm")
                .or_else(|_| tempfile::tempdir())
                .ok()?;
            let log = std::fs::File::create(dir.path().join("etcd.log")).ok()?;
            let child = Command::new("etcd")
                .args(["--name", &format!("s{i}"), "--data-dir"])
                .arg(dir.path().join("data"))
                .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{port}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    &format!("t{}", ports[0].0),
                ])
                .args(["--logger", "zap", "--log-level", "warn"])
                .args(["--heartbeat-interval=10", "--election-timeout=100"])
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0)
                .spawn()
                .ok()?;
            members.push(Etcd {
                child,
                port,
                _dir: dir,
            });
        }
        for etcd in &members {
            let t0 = std::time::Instant::now();
            loop {
                let ok = Command::new("etcdctl")
                    .args([
                        &format!("--endpoints={}", etcd.endpoint()),
                        "--dial-timeout=1s",
                        "--command-timeout=1s",
                    ])
                    .args(["endpoint", "health"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "etcd did not become healthy"
                );
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        Some(members)
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, query: &str) -> String {
        format!("etcd://{}{query}", self.endpoint())
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    pub fn etcdctl(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("etcdctl");
        c.arg(format!("--endpoints={}", self.endpoint()));
        c.kill_on_drop(true);
        c
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
