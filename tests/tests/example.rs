//! The README's first command, `cargo run --example payment_confirm`, on
//! the embedded default and with `--url` on every server backend.

use fencelock_testbed::fixture::Fixture;

async fn payment_example(backend: &str) {
    let fixture = Fixture::start(backend)
        .await
        .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let mut cmd = tokio::process::Command::new(env!("CARGO"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "run",
            "-q",
            "--example",
            "payment_confirm",
            "--features",
            "fencelock/full",
        ]);
    if backend != "memory" {
        cmd.args(["--", "--url", &fixture.url()]);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(600), cmd.output())
        .await
        .expect("the example ran for 10 minutes")
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{backend}: example failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 confirmation, 4 fallbacks"),
        "{backend}: {stdout}"
    );
    assert!(
        stdout.contains("under fencing token"),
        "{backend}: {stdout}"
    );
}

#[tokio::test]
async fn payment_confirm_on_memory() {
    payment_example("memory").await;
}

#[tokio::test]
async fn payment_confirm_on_redis() {
    payment_example("redis").await;
}

#[tokio::test]
async fn payment_confirm_on_zookeeper() {
    payment_example("zookeeper").await;
}

#[tokio::test]
async fn payment_confirm_on_etcd() {
    payment_example("etcd").await;
}
