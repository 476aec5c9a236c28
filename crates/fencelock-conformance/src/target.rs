//! What a case runs against: the harness, fresh clients, a key prefix.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Capabilities, DistributedLock, LockOptions};

use crate::leases::{Leases, Locks};
use crate::Harness;

/// The backend under test, as every case sees it.
pub struct Target {
    harness: Box<dyn Harness>,
    prefix: String,
    primitive: &'static str,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("backend", &self.backend())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target on `harness` with a random key prefix for this run.
    pub fn new(harness: Box<dyn Harness>) -> Self {
        Target {
            harness,
            prefix: format!("conf-{:08x}", rand::random::<u32>()),
            primitive: "lock",
        }
    }

    /// The same target for the lease cases of `primitive` (default `lock`).
    #[must_use]
    pub fn for_primitive(mut self, primitive: &'static str) -> Self {
        self.primitive = primitive;
        self
    }

    /// The primitive the lease cases take grants of.
    pub fn primitive(&self) -> &'static str {
        self.primitive
    }

    /// Grants of the primitive under test, on a new independent client.
    ///
    /// # Panics
    ///
    /// When the backend cannot connect, or for a primitive the cases cannot
    /// take grants of yet.
    pub async fn leases(&self) -> Arc<dyn Leases> {
        self.leases_at(&self.url()).await
    }

    /// [`leases`](Target::leases) on another URL (e.g. through proxies).
    ///
    /// # Panics
    ///
    /// As [`leases`](Target::leases).
    pub async fn leases_at(&self, url: &str) -> Arc<dyn Leases> {
        let client = self.client_at(url).await;
        match self.primitive {
            "lock" => Arc::new(Locks(client)),
            other => panic!("the lease cases cannot take {other} grants yet"),
        }
    }

    /// The harness.
    pub fn harness(&self) -> &dyn Harness {
        &*self.harness
    }

    /// The backend's name.
    pub fn backend(&self) -> &str {
        self.harness.backend()
    }

    /// The store's URL.
    pub fn url(&self) -> String {
        self.harness.url()
    }

    /// The store's endpoints (empty for a store without any).
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.harness.endpoints()
    }

    /// The URL through other endpoints.
    ///
    /// # Panics
    ///
    /// When the harness cannot (a case registered only where it can).
    pub fn url_via(&self, endpoints: &[SocketAddr]) -> String {
        self.harness.url_via(endpoints).unwrap_or_else(|| {
            panic!(
                "{}: the harness cannot point its URL at other endpoints",
                self.backend()
            )
        })
    }

    /// How many server processes can be paused.
    pub fn servers(&self) -> usize {
        self.harness.servers()
    }

    /// Pauses server `i`.
    pub fn pause(&self, i: usize) {
        self.harness.pause(i);
    }

    /// Resumes server `i`.
    pub fn resume(&self, i: usize) {
        self.harness.resume(i);
    }

    /// The contender program.
    ///
    /// # Panics
    ///
    /// When the harness has none (cases that need it are registered only
    /// where it has one).
    pub fn contender(&self) -> PathBuf {
        self.harness
            .contender()
            .unwrap_or_else(|| panic!("{}: the harness has no contender program", self.backend()))
    }

    /// A new independent client (its own connections and session).
    ///
    /// # Panics
    ///
    /// When the backend cannot connect: a failure, never a skip.
    pub async fn client(&self) -> Arc<dyn DistributedLock> {
        self.client_at(&self.url()).await
    }

    /// A new client on another URL (e.g. through proxies).
    ///
    /// # Panics
    ///
    /// When the backend cannot connect.
    pub async fn client_at(&self, url: &str) -> Arc<dyn DistributedLock> {
        match tokio::time::timeout(Duration::from_secs(30), self.harness.connect(url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!("{}: cannot connect to {url}: {e} ({e:?})", self.backend()),
            Err(_) => panic!("{}: connect to {url} hung for 30 s", self.backend()),
        }
    }

    /// A key unique to this run and case.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// The backend's declared capabilities (from a fresh client).
    pub async fn capabilities(&self) -> Capabilities {
        self.client().await.capabilities()
    }
}

/// Options most cases use: a TTL long enough that nothing expires by
/// accident on a loaded machine, and a wait bound so nothing hangs.
pub fn steady() -> LockOptions {
    LockOptions::new()
        .with_ttl(Duration::from_secs(10))
        .with_wait(Duration::from_secs(60))
}

/// Prints a line to the test's output: what a case measured or decided.
pub fn note(backend: &str, case: &str, what: &str) {
    eprintln!("conformance {backend} {case}: {what}");
}
