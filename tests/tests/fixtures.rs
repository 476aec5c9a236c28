//! Each fixture starts its real servers, they answer, and they are gone
//! after drop. A fixture that cannot start fails here, never skips.

use std::time::Duration;

use fencelock_testbed::fixture::{probe, wait_until, Fixture};
use fencelock_testbed::proxy::{Mode, Proxy};

async fn starts_and_stops(backend: &str, ask: &[u8], expect: &str) {
    let f = Fixture::start(backend)
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let ports: Vec<u16> = f.endpoints().iter().map(|e| e.port()).collect();
    assert!(!ports.is_empty());
    for &p in &ports {
        assert!(
            probe(p, ask, expect).await,
            "{backend} on {p} does not answer"
        );
    }
    assert!(f.server_count() >= 1);
    drop(f);
    for p in ports {
        assert!(
            wait_until(Duration::from_secs(5), || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", p))
                    .await
                    .is_err()
            })
            .await,
            "{backend}: port {p} still open after drop"
        );
    }
}

#[tokio::test]
async fn redis_single() {
    starts_and_stops("redis", b"PING\r\n", "+PONG").await;
}

#[tokio::test]
async fn redis_independent_five() {
    starts_and_stops("redlock", b"PING\r\n", "+PONG").await;
}

#[tokio::test]
async fn redis_cluster_of_three() {
    starts_and_stops("redis-cluster", b"CLUSTER INFO\r\n", "cluster_state:ok").await;
}

#[tokio::test]
async fn zookeeper_standalone() {
    starts_and_stops("zookeeper", b"srvr", "Mode: standalone").await;
}

#[tokio::test]
async fn zookeeper_ensemble_of_three() {
    let f = Fixture::start("zookeeper-ensemble")
        .await
        .expect("ensemble");
    assert!(fencelock_testbed::fixture::zookeeper_leader(&f)
        .await
        .is_some());
    drop(f);
    starts_and_stops("zookeeper-ensemble", b"srvr", "Mode:").await;
}

#[tokio::test]
async fn etcd_single() {
    starts_and_stops(
        "etcd",
        b"GET /health HTTP/1.0\r\n\r\n",
        "\"health\":\"true\"",
    )
    .await;
}

#[tokio::test]
async fn etcd_cluster_of_three() {
    starts_and_stops(
        "etcd-cluster",
        b"GET /health HTTP/1.0\r\n\r\n",
        "\"health\":\"true\"",
    )
    .await;
}

#[tokio::test]
async fn paused_server_stops_answering_and_resumes() {
    let f = Fixture::start("redis").await.expect("redis");
    let port = f.endpoints()[0].port();
    f.server(0).pause();
    assert!(!probe(port, b"PING\r\n", "+PONG").await);
    f.server(0).resume();
    assert!(probe(port, b"PING\r\n", "+PONG").await);
}

#[tokio::test]
async fn proxy_passes_blackholes_and_resets() {
    let f = Fixture::start("redis").await.expect("redis");
    let proxy = Proxy::start(f.endpoints()[0]).await.expect("proxy");
    let port = proxy.addr().port();
    assert!(probe(port, b"PING\r\n", "+PONG").await);
    proxy.set(Mode::Blackhole);
    assert!(!probe(port, b"PING\r\n", "+PONG").await);
    proxy.set(Mode::Pass);
    assert!(probe(port, b"PING\r\n", "+PONG").await);
    proxy.set(Mode::Reset);
    assert!(!probe(port, b"PING\r\n", "+PONG").await);
}

#[tokio::test]
async fn docker_detection_answers_without_a_daemon() {
    // On machines without Docker this must say `false` quickly, not hang.
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        fencelock_testbed::fixture::docker_available(),
    )
    .await;
    assert!(answered.is_ok());
}
