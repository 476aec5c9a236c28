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
    // A store in this process or on this host: every lock case.
    ($module:ident, $backend:literal) => {
        mod $module {
            suite!(@lock $backend);
        }
    };
    // A store of server processes: the lock cases and the outage cases.
    ($module:ident, $backend:literal, servers) => {
        mod $module {
            suite!(@lock $backend);
            suite!(@cases $backend; store_paused);
        }
    };
    (@lock $backend:literal) => {
        suite!(@cases $backend; exclusion, cross_process, busy, no_foreign_release,
            abandonment, lost_signal, renewal, ttl_without_renewal, hold_cap, drop_frees, cancellation, wakeup,
            fairness, hostile_keys, unreachable);
    };
    (@cases $backend:literal; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let t = crate::target($backend).await;
                fencelock_conformance::cases::$case(&t).await;
            }
        )*
    };
}

mod conformance {
    suite!(memory, "memory");
    suite!(file, "file");
    suite!(redis, "redis", servers);
    suite!(redis_cluster, "redis-cluster", servers);
    suite!(etcd, "etcd", servers);
    suite!(etcd_cluster, "etcd-cluster", servers);
    suite!(zookeeper, "zookeeper", servers);
    suite!(zookeeper_ensemble, "zookeeper-ensemble", servers);
    suite!(redlock, "redlock", servers);
    suite!(redis_sentinel, "redis-sentinel", servers);
    // Single servers in Docker containers (tests/README.md: "Docker").
    suite!(testcontainers_redis, "testcontainers-redis");
    suite!(testcontainers_zookeeper, "testcontainers-zookeeper");
    suite!(testcontainers_etcd, "testcontainers-etcd");
}
