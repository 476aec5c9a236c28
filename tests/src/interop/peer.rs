//! The peers and how each is started.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::process::PeerProcess;
use crate::fixture::Fixture;

/// A recipe client of the store's own, run as a process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Apache Curator's recipes (Java; the Debian packages' jars), on
    /// ZooKeeper.
    Curator,
    /// `etcdctl lock` (Debian's etcd-client), on etcd.
    Etcdctl,
    /// etcd's own Lock service (`v3lock` gRPC, through the etcd-client
    /// crate's lock client), on etcd.
    EtcdLockService,
}

/// What a peer does with its recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One acquire bounded by `wait` (`None`: as long as it takes), then
    /// hold for `hold` and release; `busy` when it was not granted.
    Hold {
        /// The wait bound.
        wait: Option<Duration>,
        /// How long to hold.
        hold: Duration,
    },
    /// `rounds` grants, each entering the in-section `marker` for `inside`.
    Loop {
        /// How many grants.
        rounds: u32,
        /// The shared marker file.
        marker: PathBuf,
        /// How long to stay inside.
        inside: Duration,
    },
}

impl Mode {
    fn args(&self) -> Vec<String> {
        match self {
            Mode::Hold { wait, hold } => vec![
                "hold".into(),
                wait.map_or(-1, |w| i64::try_from(w.as_millis()).unwrap_or(i64::MAX))
                    .to_string(),
                hold.as_millis().to_string(),
            ],
            Mode::Loop {
                rounds,
                marker,
                inside,
            } => vec![
                "loop".into(),
                rounds.to_string(),
                marker.display().to_string(),
                inside.as_millis().to_string(),
            ],
        }
    }
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 3] = [Peer::Curator, Peer::Etcdctl, Peer::EtcdLockService];

    /// The name in test names and in the summary (`curator`, `etcdctl`,
    /// `etcd-lock-service`).
    pub fn name(self) -> &'static str {
        match self {
            Peer::Curator => "curator",
            Peer::Etcdctl => "etcdctl",
            Peer::EtcdLockService => "etcd-lock-service",
        }
    }

    /// The fixture (backend) it runs against.
    pub fn backend(self) -> &'static str {
        match self {
            Peer::Curator => "zookeeper",
            Peer::Etcdctl | Peer::EtcdLockService => "etcd",
        }
    }

    /// How long a "try" of the peer waits: the etcd peers have no
    /// non-blocking acquire, so a try is a short bounded wait.
    pub fn try_wait(self) -> Duration {
        Duration::from_millis(500)
    }

    /// Starts the peer on `target` (a ZooKeeper lock path for Curator, an
    /// etcd mutex name for the etcd peers) with `recipe` (`mutex`), its
    /// session or lease timeout `session`, and `mode`. `helper` is the
    /// `fencelock-interop-peer` binary (the etcd peers).
    ///
    /// # Errors
    ///
    /// When the program is missing (a failure, never a skip) or does not start.
    pub fn spawn(
        self,
        fixture: &Fixture,
        helper: &std::path::Path,
        recipe: &str,
        target: &str,
        session: Duration,
        mode: &Mode,
    ) -> Result<PeerProcess, String> {
        let hosts = fixture
            .endpoints()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = match self {
            Peer::Curator => super::java::command()?,
            Peer::Etcdctl | Peer::EtcdLockService => {
                if self == Peer::Etcdctl {
                    crate::fixture::which("etcdctl", "etcd-client")?;
                }
                let mut c = tokio::process::Command::new(helper);
                c.arg(self.name());
                c
            }
        };
        cmd.args([recipe, &hosts, target, &session.as_millis().to_string()])
            .args(mode.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: cannot start: {e}", self.name()))?;
        PeerProcess::new(format!("{} ({target})", self.name()), child)
    }
}
