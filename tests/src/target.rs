//! What a case runs against: a fixture, fresh clients, a key prefix.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fencelock::{Capabilities, DistributedLock, LockOptions};

use crate::fixture::Fixture;

/// The backend under test, as every case sees it.
#[derive(Debug)]
pub struct Target {
    /// The running store.
    pub fixture: Fixture,
    /// The `fencelock-contender` binary, for cross-process cases.
    pub contender: PathBuf,
    prefix: String,
}

impl Target {
    /// A target on `fixture` with a random key prefix for this run.
    pub fn new(fixture: Fixture, contender: impl Into<PathBuf>) -> Self {
        Target {
            fixture,
            contender: contender.into(),
            prefix: format!("conf-{:08x}", rand::random::<u32>()),
        }
    }

    /// A new independent client (its own connections and session).
    ///
    /// # Panics
    ///
    /// When the backend cannot connect: a failure, never a skip.
    pub async fn client(&self) -> Arc<dyn DistributedLock> {
        self.client_at(&self.fixture.url()).await
    }

    /// A new client on another URL (e.g. through proxies).
    ///
    /// # Panics
    ///
    /// When the backend cannot connect.
    pub async fn client_at(&self, url: &str) -> Arc<dyn DistributedLock> {
        match tokio::time::timeout(Duration::from_secs(30), fencelock::connect(url)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!(
                "{}: cannot connect to {url}: {e} ({:?})",
                self.fixture.backend(),
                e
            ),
            Err(_) => panic!("{}: connect to {url} hung for 30 s", self.fixture.backend()),
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

/// Prints a line to the test's output: what a case decided not to check
/// and why (from capabilities, never from the backend's name).
pub fn note(backend: &str, case: &str, what: &str) {
    eprintln!("conformance {backend} {case}: {what}");
}
