//! A store, a fencelock client and a peer on one lock key.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fencelock::{DistributedLock, Inspect};

use super::peer::{Mode, Peer};
use super::process::PeerProcess;
use crate::fixture::Fixture;

/// The session or lease timeout the peers get (the fixtures' own clients
/// use 4 s on ZooKeeper and a 3 s lease on etcd).
pub const PEER_SESSION: Duration = Duration::from_secs(4);

/// A fresh store for `peer`, a fencelock client on it, one random key, and
/// the name the peer knows that key's lock by.
pub struct Pair {
    /// The peer.
    pub peer: Peer,
    /// The store (stopped on drop).
    pub fixture: Fixture,
    /// The URL fencelock clients (and the CLI) connect with.
    pub url: String,
    /// A fencelock client.
    pub lock: Arc<dyn DistributedLock>,
    /// The lock key.
    pub key: String,
    /// The peer's name for it: `ZkLock::lock_path` (a Curator lock path)
    /// or `EtcdLock::mutex_name` (an etcd mutex name).
    pub target: String,
    inspect: Arc<dyn Inspect>,
    helper: PathBuf,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("peer", &self.peer)
            .field("url", &self.url)
            .field("key", &self.key)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Pair {
    /// Starts the store and connects; `helper` is the
    /// `fencelock-interop-peer` binary (`env!("CARGO_BIN_EXE_fencelock-interop-peer")`).
    ///
    /// # Errors
    ///
    /// When the store cannot start or fencelock cannot connect: a failure,
    /// never a skip.
    pub async fn start(peer: Peer, helper: &str) -> Result<Pair, String> {
        let fixture = Fixture::start(peer.backend()).await?;
        let url = fixture.url();
        let key = format!("interop-{:08x}", rand::random::<u32>());
        let (lock, target): (Arc<dyn DistributedLock>, String) = match peer.backend() {
            "zookeeper" => {
                let l = fencelock::zookeeper::ZkLock::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                let t = l.lock_path(&key);
                (Arc::new(l), t)
            }
            _ => {
                let l = fencelock::etcd::EtcdLock::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                let t = l.mutex_name(&key);
                (Arc::new(l), t)
            }
        };
        let inspect = fencelock::inspector(&url)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Pair {
            inspect,
            peer,
            fixture,
            url,
            lock,
            key,
            target,
            helper: PathBuf::from(helper),
        })
    }

    /// Starts the peer with `recipe` on this pair's key.
    ///
    /// # Errors
    ///
    /// As [`Peer::spawn`].
    pub fn spawn(&self, recipe: &str, mode: &Mode) -> Result<PeerProcess, String> {
        self.peer.spawn(
            &self.fixture,
            &self.helper,
            recipe,
            &self.target,
            PEER_SESSION,
            mode,
        )
    }

    /// Waits until at least `n` contenders queue behind the holder (as
    /// `fencelock status` counts them), within `within`.
    ///
    /// # Errors
    ///
    /// When they did not, or the store did not answer.
    pub async fn queued(&self, n: usize, within: Duration) -> Result<(), String> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let s = self
                .inspect
                .status(&self.key)
                .await
                .map_err(|e| e.to_string())?;
            if s.waiters.unwrap_or(0) >= n {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(format!("{n} waiters not queued within {within:?}: {s:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// fencelock's own session timeout on this store: its lock survives a
    /// crashed holder at most this long (plus the store's expiry tick).
    pub fn fencelock_session(&self) -> Duration {
        self.lock
            .capabilities()
            .session_timeout
            .unwrap_or(PEER_SESSION)
    }

    /// The fallback poll of fencelock's waiters on this store, found in the
    /// backend code: etcd re-reads every `poll_interval` (2 s by default);
    /// ZooKeeper every `max(session timeout, 1 s)`. A waiter granted much
    /// sooner than this after a release was woken by the store.
    pub fn fallback_poll(&self) -> Duration {
        match self.peer.backend() {
            "zookeeper" => self.fencelock_session().max(Duration::from_secs(1)),
            _ => fencelock::etcd::DEFAULT_POLL_INTERVAL,
        }
    }
}
