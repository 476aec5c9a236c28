//! The conformance suite on every backend's real store:
//! `conformance::<backend>::<case>`. Each case starts its own store, so
//! cases never disturb each other; a case that does not apply to a backend
//! is listed as ignored with its reason. Adding a backend is one line.

use fencelock_conformance::runner::{self, Backend};
use fencelock_conformance::Harness;
use fencelock_testbed::fixture::Fixture;
use fencelock_testbed::FixtureHarness;

fn on(module: &'static str, backend: &'static str) -> Backend {
    Backend::new(module, move || async move {
        let fixture = Fixture::start(backend).await?;
        Ok(Box::new(FixtureHarness::new(
            fixture,
            env!("CARGO_BIN_EXE_fencelock-contender"),
        )) as Box<dyn Harness>)
    })
}

fn main() {
    runner::main(vec![
        on("memory", "memory"),
        on("file", "file"),
        on("redis", "redis"),
        on("redis_cluster", "redis-cluster"),
        on("etcd", "etcd"),
        on("etcd_cluster", "etcd-cluster"),
        on("zookeeper", "zookeeper"),
        on("zookeeper_ensemble", "zookeeper-ensemble"),
        on("redlock", "redlock"),
        on("redis_sentinel", "redis-sentinel"),
        // Single servers in Docker containers (tests/README.md: "Docker").
        on("testcontainers_redis", "testcontainers-redis"),
        on("testcontainers_zookeeper", "testcontainers-zookeeper"),
        on("testcontainers_etcd", "testcontainers-etcd"),
    ]);
}
