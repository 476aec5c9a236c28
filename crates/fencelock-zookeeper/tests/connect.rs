//! The error when no session can be established names each endpoint and
//! the bound that ran out. No server is needed: a closed port refuses, and
//! a socket that listens but never speaks stays silent.

use std::net::TcpListener;
use std::time::Duration;

use fencelock_core::ErrorKind;
use fencelock_zookeeper::{ZkLock, ZkLockBuilder};
use tokio::time::Instant;

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A socket that accepts TCP connections (the kernel's backlog) and never
/// answers.
fn silent() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[tokio::test]
async fn a_refused_endpoint_is_named_as_refused() {
    let port = closed_port();
    let t0 = Instant::now();
    let e = ZkLock::connect(&format!("zk://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
    assert_eq!(
        e.message(),
        format!("cannot connect to ZooKeeper at 127.0.0.1:{port}: connection refused")
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn a_silent_endpoint_names_the_connection_timeout() {
    let (_listener, port) = silent();
    let t0 = Instant::now();
    let e = ZkLock::connect(&format!("zk://127.0.0.1:{port}?session_timeout=2s"))
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "cannot connect to ZooKeeper at 127.0.0.1:{port}: no session within the connection \
             timeout of 800ms, 2/5 of the session timeout"
        )
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn several_endpoints_are_each_named() {
    let (_listener, silent_port) = silent();
    let refused = closed_port();
    let e = ZkLock::connect(&format!(
        "zk://127.0.0.1:{refused},127.0.0.1:{silent_port}?session_timeout=2s"
    ))
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    let m = e.message();
    assert!(
        m.starts_with("cannot connect to ZooKeeper at any of ")
            && m.contains(&format!("127.0.0.1:{refused} (connection refused)"))
            && m.contains(&format!("127.0.0.1:{silent_port} (no session within")),
        "{m}"
    );
}

#[tokio::test]
async fn the_connect_timeout_is_named_when_it_runs_out_first() {
    let (_listener, port) = silent();
    let t0 = Instant::now();
    let e = ZkLockBuilder::from_url(&format!("zk://127.0.0.1:{port}?session_timeout=20s"))
        .unwrap()
        .with_connect_timeout(Duration::from_millis(700))
        .build()
        .await
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "cannot connect to ZooKeeper at 127.0.0.1:{port}: no session within the connect timeout of 700ms"
        )
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}
