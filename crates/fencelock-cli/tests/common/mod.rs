//! What the CLI tests share: the built binary, the fixtures, reading a
//! holder's first line.
#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

use fencelock_testbed::fixture::Fixture;
use serde_json::Value;
use tokio::process::Command;

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_fencelock");
/// Every store the CLI coordinates processes with.
pub const BACKENDS: &[&str] = &["file", "redis", "zookeeper", "etcd"];

/// The binary with `--url URL`, killed when dropped.
pub fn fencelock(url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--url", url]).kill_on_drop(true);
    c
}

/// A fixture of `backend`; a store that cannot start fails the test.
pub async fn fixture(backend: &str) -> Fixture {
    Fixture::start(backend)
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"))
}

/// How long a grant outlives its holder on this store: the TTL, or the
/// session (lease) timeout where the store expires sessions instead.
pub async fn expiry(f: &Fixture, ttl: Duration) -> Duration {
    let lock = fencelock::connect(&f.url())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", f.url()));
    lock.capabilities().abandon_bound(ttl)
}

/// Waits for the child's first line of output, asserts it is `want`, and
/// keeps draining the rest.
pub async fn wait_for_line(child: &mut tokio::process::Child, want: &str) {
    let line = first_line(child).await;
    assert_eq!(line, want);
}

/// The child's first line of output; the rest is drained.
pub async fn first_line(child: &mut tokio::process::Child) -> String {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let out = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("no output in 30 s")
        .unwrap();
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    line.unwrap_or_default()
}

/// Runs the binary with `--url URL ARGS` to the end.
pub async fn output(url: &str, args: &[&str]) -> Output {
    fencelock(url).args(args).output().await.unwrap()
}

/// Bytes of output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Output as one JSON document.
pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {}", text(bytes)))
}
