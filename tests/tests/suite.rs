//! The conformance suite, once per backend: `conformance::<backend>::<case>`.
//! Each test starts its own store (real servers), so cases never disturb
//! each other. Adding a backend is one `suite!` line.

use fencelock_conformance::fixture::Fixture;
use fencelock_conformance::Target;

async fn target(backend: &str) -> Target {
    let fixture = Fixture::start(backend)
        .await
        .unwrap_or_else(|e| panic!("conformance {backend}: the store could not start: {e}"));
    Target::new(fixture, env!("CARGO_BIN_EXE_fencelock-contender"))
}

macro_rules! suite {
    ($module:ident, $backend:literal) => {
        mod $module {
            suite!(@cases $backend; exclusion, cross_process, busy, no_foreign_release,
                abandonment, lost_signal, renewal, drop_frees, cancellation, wakeup,
                fairness, hostile_keys, unreachable);
        }
    };
    (@cases $backend:literal; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let t = super::super::target($backend).await;
                fencelock_conformance::cases::$case(&t).await;
            }
        )*
    };
}

mod conformance {
    suite!(memory, "memory");
    suite!(file, "file");
    suite!(redis, "redis");
    suite!(redis_cluster, "redis-cluster");
    suite!(etcd, "etcd");
    suite!(etcd_cluster, "etcd-cluster");
    suite!(zookeeper, "zookeeper");
    suite!(zookeeper_ensemble, "zookeeper-ensemble");
    suite!(redlock, "redlock");
    suite!(redis_sentinel, "redis-sentinel");
    // Single servers in Docker containers (tests/README.md: "Docker").
    suite!(testcontainers_redis, "testcontainers-redis");
    suite!(testcontainers_zookeeper, "testcontainers-zookeeper");
    suite!(testcontainers_etcd, "testcontainers-etcd");
}
