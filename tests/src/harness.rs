//! [`FixtureHarness`]: a running fixture as the conformance suite sees it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use fencelock::{DistributedLock, Result};
use fencelock_conformance::Harness;

use crate::fixture::Fixture;

/// A fixture (real servers, or the memory and file stores) with the
/// `fencelock-contender` program, connected through `fencelock::connect`.
#[derive(Debug)]
pub struct FixtureHarness {
    /// The running store.
    pub fixture: Fixture,
    contender: PathBuf,
}

impl FixtureHarness {
    /// `fixture`, with `contender` as the program holders in other
    /// processes run.
    pub fn new(fixture: Fixture, contender: impl Into<PathBuf>) -> Self {
        FixtureHarness {
            fixture,
            contender: contender.into(),
        }
    }
}

#[async_trait]
impl Harness for FixtureHarness {
    fn backend(&self) -> &str {
        self.fixture.backend()
    }

    fn url(&self) -> String {
        self.fixture.url()
    }

    async fn connect(&self, url: &str) -> Result<Arc<dyn DistributedLock>> {
        fencelock::connect(url).await
    }

    fn endpoints(&self) -> Vec<SocketAddr> {
        self.fixture.endpoints().to_vec()
    }

    fn url_via(&self, endpoints: &[SocketAddr]) -> Option<String> {
        (!self.fixture.endpoints().is_empty()).then(|| self.fixture.url_via(endpoints))
    }

    fn servers(&self) -> usize {
        self.fixture.server_count()
    }

    fn pause(&self, i: usize) {
        self.fixture.server(i).pause();
    }

    fn resume(&self, i: usize) {
        self.fixture.server(i).resume();
    }

    fn contender(&self) -> Option<PathBuf> {
        Some(self.contender.clone())
    }
}
