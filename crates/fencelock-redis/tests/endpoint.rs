//! Errors after the connection was made name the endpoint that failed
//! (host:port), never the password: a paused server, then a killed one.

mod common;

use std::time::Duration;

use common::Server;
use fencelock_core::{DistributedLock, Error, ErrorKind, LockOptions};
use fencelock_redis::{RedisLock, RedlockLock};

const PASSWORD: &str = "s3cret-pw";

fn opts() -> LockOptions {
    LockOptions::new()
        .with_ttl(Duration::from_secs(10))
        .with_wait(Duration::ZERO)
}

/// The error is an outage naming `127.0.0.1:port`, without the password.
fn names_endpoint(what: &str, e: &Error, port: u16, kinds: &[ErrorKind]) {
    let text = e.to_string();
    eprintln!("{what}: {text}");
    assert!(kinds.contains(&e.kind()), "{what}: {:?}: {text}", e.kind());
    assert!(
        text.contains(&format!("127.0.0.1:{port}")),
        "{what}: the error does not name the endpoint: {text}"
    );
    assert!(!text.contains(PASSWORD), "{what}: {text}");
    assert!(!format!("{e:?}").contains(PASSWORD), "{what}: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_then_killed_server_is_named() {
    let mut server = Server::start_with(&["--requirepass", PASSWORD]);
    let port = server.port;
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{port}?timeout=300ms&connect_timeout=500ms");
    let lock = RedisLock::connect(&url).await.expect("connect");
    let held = lock
        .acquire("held", &opts().with_auto_renew(false))
        .await
        .expect("a grant");

    server.pause();
    let outage = [ErrorKind::Timeout, ErrorKind::Connection];
    let e = lock.try_acquire("k", &opts()).await.unwrap_err();
    names_endpoint("try_acquire (paused)", &e, port, &[ErrorKind::Timeout]);
    let e = lock.acquire("held", &opts()).await.unwrap_err();
    names_endpoint("acquire (paused)", &e, port, &[ErrorKind::Timeout]);
    let e = held.extend(Duration::from_secs(10)).await.unwrap_err();
    names_endpoint("extend (paused)", &e, port, &outage);
    let e = lock.inspect("held").await.unwrap_err();
    names_endpoint("inspect (paused)", &e, port, &outage);

    server.resume();
    server.stop();
    let e = lock.try_acquire("k", &opts()).await.unwrap_err();
    names_endpoint("try_acquire (killed)", &e, port, &outage);
    let e = held.extend(Duration::from_secs(10)).await.unwrap_err();
    names_endpoint("extend (killed)", &e, port, &outage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redlock_node_is_named() {
    let server = Server::start_with(&["--requirepass", PASSWORD]);
    let port = server.port;
    let url = format!("redlock://:{PASSWORD}@127.0.0.1:{port}?node_timeout=200ms&timeout=300ms");
    let lock = RedlockLock::connect(&url).await.expect("connect");
    let guard = lock.try_acquire("k", &opts()).await.expect("a grant");
    assert!(guard.is_some());
    server.pause();
    let e = lock.try_acquire("k2", &opts()).await.unwrap_err();
    names_endpoint(
        "Redlock try_acquire (paused)",
        &e,
        port,
        &[ErrorKind::Timeout],
    );
    server.resume();
}
