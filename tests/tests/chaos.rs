//! Short versions of the fault-injection scenarios (the full
//! ones run with `scripts/chaos`). Each starts real servers, injects its
//! faults on our own processes by PID, and fails on any overlap, token
//! regression, lost update, crash or leftover where the backend promises
//! safety. Liveness bounds are generous (a shared, noisy 2-core machine).
//! Run with `--nocapture` to see the figures.

use fencelock_testbed::chaos::{self, Bins, Job, Report, Settings};

fn bins() -> Bins {
    Bins {
        client: env!("CARGO_BIN_EXE_fencelock-chaos-client").into(),
        resource: env!("CARGO_BIN_EXE_fencelock-chaos-resource").into(),
        contender: env!("CARGO_BIN_EXE_fencelock-contender").into(),
    }
}

async fn scenario(scenario: &str, backend: &str, fenced: bool) -> Report {
    let job = Job {
        scenario: scenario.into(),
        backend: backend.into(),
        fenced,
    };
    let r = chaos::run(&job, &Settings::short(), &bins()).await;
    println!("{}", r.line());
    for n in &r.notes {
        println!("    {n}");
    }
    assert!(r.errors.is_empty(), "{}: {:?}", r.line(), r.errors);
    assert_eq!(
        r.violations(),
        0,
        "{}: safety violations: {:?}",
        r.line(),
        r.examples
    );
    r
}

/// A workload scenario: also some grants happened, and nothing was lost.
async fn workload(sc: &str, backend: &str) -> Report {
    let r = scenario(sc, backend, true).await;
    assert!(r.acquisitions > 0, "{}: no grant at all", r.line());
    assert_eq!(r.lost_updates, 0, "{}", r.line());
    r
}

macro_rules! workload {
    ($($name:ident: $sc:literal on $backend:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            workload($sc, $backend).await;
        }
    )*};
}

macro_rules! probe {
    ($($name:ident: $sc:literal on $backend:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            scenario($sc, $backend, true).await;
        }
    )*};
}

workload! {
    s0_memory: "S0" on "memory";
    s0_file: "S0" on "file";
    s0_redis: "S0" on "redis";
    s0_zookeeper: "S0" on "zookeeper";
    s0_etcd: "S0" on "etcd";
    s1_file: "S1" on "file";
    s1_redis: "S1" on "redis";
    s1_zookeeper: "S1" on "zookeeper";
    s1_etcd: "S1" on "etcd";
    s2_file: "S2" on "file";
    s2_zookeeper: "S2" on "zookeeper";
    s2_etcd: "S2" on "etcd";
    s10_etcd_cluster: "S10" on "etcd-cluster";
    s11_zookeeper: "S11" on "zookeeper";
    s11_zookeeper_ensemble: "S11" on "zookeeper-ensemble";
}

probe! {
    s3_redis: "S3" on "redis";
    s3_zookeeper: "S3" on "zookeeper";
    s3_etcd: "S3" on "etcd";
    s4_memory: "S4" on "memory";
    s4_file: "S4" on "file";
    s4_redis: "S4" on "redis";
    s4_zookeeper: "S4" on "zookeeper";
    s4_etcd: "S4" on "etcd";
    s15_memory: "S15" on "memory";
    s15_file: "S15" on "file";
    s15_redis: "S15" on "redis";
    s15_zookeeper: "S15" on "zookeeper";
    s15_etcd: "S15" on "etcd";
}

/// Redis with fencing: the paused holder's stale write is rejected, nothing
/// is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_redis_fenced() {
    let r = workload("S2", "redis").await;
    assert!(r.faults > 0, "{}: no pause injected", r.line());
}

/// Redis without fencing: the paused holder's stale write lands and
/// updates are lost. The expected violation must be observed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_redis_unfenced_loses_updates() {
    let r = scenario("S2", "redis", false).await;
    assert!(r.lost_updates_expected);
    assert!(
        r.lost_updates > 0 && r.stale_writes_accepted > 0,
        "{}: the paused holder's stale write should have been accepted and lost an update",
        r.line()
    );
    assert_eq!(r.overlaps, 0, "{}", r.line());
}

/// S12 on Redis: the holder's network namespace is cut from the server by
/// iptables, then healed. Proves the namespace plumbing works here (it
/// needs root, iproute2 and iptables: a machine without them fails this
/// test, it is not skipped). Its guard must say lost by its deadline, it
/// gets no grant while cut off, and the fence rejects its late write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s12_redis_partition() {
    let r = workload("S12", "redis").await;
    assert_eq!(r.faults, 1, "{}: one cut expected", r.line());
    assert_eq!(
        r.loss_signals,
        1,
        "{}: the cut-off holder's guard should have said lost",
        r.line()
    );
}
