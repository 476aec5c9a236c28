//! TLS (`etcds://`) with a private CA and etcd auth, against a real
//! single-member etcd that serves clients only over HTTPS. The CA and the
//! server certificate are made by the `openssl` CLI at test time.

#[path = "../../../tests/support/pki.rs"]
mod pki;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fencelock_core::{DistributedLock, Error, ErrorKind, LockOptions};
use fencelock_etcd::{EtcdLock, EtcdLockBuilder};
use pki::{chain, stop, Pki};

/// Whole-call bound for the error cases: the timeouts they use (2 s
/// connect, 2 s per call) plus a generous margin for a noisy machine.
const FAIL_BOUND: Duration = Duration::from_secs(8);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One etcd serving clients only on `https://127.0.0.1:PORT`, with auth
/// enabled (user `root`, password `rootpw`). Killed by PID on drop.
struct TlsEtcd {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl TlsEtcd {
    fn start(pki: &Pki) -> TlsEtcd {
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let (port, peer) = (free_port(), free_port());
        let client_url = format!("https://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
        let child = Command::new("etcd")
            .args(["--name", "s0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .arg("--cert-file")
            .arg(pki.path("server.crt"))
            .arg("--key-file")
            .arg(pki.path("server.key"))
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("s0={peer_url}")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &format!("tls{port}")])
            .args(["--logger", "zap", "--log-level", "warn"])
            .args(["--heartbeat-interval=10", "--election-timeout=100"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("etcd starts (Debian package etcd-server)");
        let etcd = TlsEtcd {
            port,
            child,
            dir,
            ca: pki.ca(),
        };
        let until = Instant::now() + Duration::from_secs(20);
        while !etcd.etcdctl(&["endpoint", "health"]).0 {
            assert!(
                Instant::now() < until,
                "etcd with TLS did not become healthy: {}",
                std::fs::read_to_string(etcd.dir.path().join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        for args in [&["user", "add", "root:rootpw"][..], &["auth", "enable"][..]] {
            let (ok, out) = etcd.etcdctl(args);
            assert!(ok, "etcdctl {args:?}: {out}");
        }
        // Auth is on: anonymous requests are refused, root's are served.
        let (ok, out) = etcd.etcdctl(&["get", "probe"]);
        assert!(!ok, "an anonymous get succeeded with auth enabled: {out}");
        let (ok, out) = etcd.etcdctl(&["--user", "root:rootpw", "get", "probe"]);
        assert!(ok, "root cannot read: {out}");
        etcd
    }

    /// etcdctl over TLS (bounded); success and stdout + stderr.
    fn etcdctl(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("timeout")
            .args(["10", "etcdctl"])
            .arg(format!("--endpoints=https://127.0.0.1:{}", self.port))
            .arg(format!("--cacert={}", self.ca.display()))
            .args(["--dial-timeout=2s", "--command-timeout=3s"])
            .args(args)
            .output()
            .expect("etcdctl runs (Debian package etcd-client)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `etcds://{userinfo}127.0.0.1:PORT{tail}`.
    fn url(&self, userinfo: &str, tail: &str) -> String {
        format!("etcds://{userinfo}127.0.0.1:{}{tail}", self.port)
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn ca_query(ca: &Path) -> String {
    format!("ca_file={}", ca.display())
}

/// Builds with 2 s timeouts and returns the error, checking that it came
/// within [`FAIL_BOUND`].
async fn build_err(b: EtcdLockBuilder) -> Error {
    let b = b
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let result = tokio::time::timeout(FAIL_BOUND * 2, b.build())
        .await
        .expect("build must not hang");
    let err = result.expect_err("build must fail");
    let elapsed = started.elapsed();
    eprintln!("failed after {elapsed:?}: {}", chain(&err));
    assert!(
        elapsed < FAIL_BOUND,
        "the failure took {elapsed:?}: {}",
        chain(&err)
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcds_with_a_private_ca_and_auth() {
    let pki = Pki::new();
    let etcd = TlsEtcd::start(&pki);
    // poll_interval=30s: only the watch (over the TLS connection) can wake the waiter in time.
    let url = etcd.url(
        "root:rootpw@",
        &format!("/tlsapp?{}&poll_interval=30s", ca_query(&pki.ca())),
    );
    let lock = EtcdLock::connect(&url).await.expect("connect over TLS");
    // The setter form, with the PEM bytes.
    let pem = std::fs::read(pki.ca()).unwrap();
    let other = EtcdLockBuilder::from_url(&etcd.url("root:rootpw@", "/tlsapp?poll_interval=30s"))
        .unwrap()
        .with_ca_pem(pem)
        .build()
        .await
        .expect("connect over TLS with_ca_pem");

    let o = LockOptions::new().with_ttl(Duration::from_secs(5));
    let g1 = lock.acquire("tls:k", &o).await.expect("first grant");
    let t1 = g1.token();
    assert!(other.try_acquire("tls:k", &o).await.unwrap().is_none());
    g1.release().await.expect("release");
    let g2 = other.acquire("tls:k", &o).await.expect("second grant");
    assert!(g2.token() > t1, "{} > {t1}", g2.token());
    let t2 = g2.token();

    let waiter = {
        let lock = lock.clone();
        let o = o.clone().with_wait(Duration::from_secs(20));
        tokio::spawn(async move { lock.acquire("tls:k", &o).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while lock.inspect("tls:k").await.unwrap().waiters == 0 {
        assert!(Instant::now() < until, "the waiter never queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let released = Instant::now();
    g2.release().await.expect("release");
    let g3 = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter was not woken within 10 s")
        .unwrap()
        .expect("the waiter's grant");
    let woke = released.elapsed();
    assert!(
        woke < Duration::from_secs(5),
        "woken after {woke:?}: the watch did not fire"
    );
    assert!(g3.token() > t2, "{} > {t2}", g3.token());
    g3.release().await.unwrap();

    // The keys are really there, and only root may read them.
    let (ok, out) = etcd.etcdctl(&[
        "--user",
        "root:rootpw",
        "get",
        "--prefix",
        "--keys-only",
        "tlsapp/",
    ]);
    assert!(ok, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_fail_fast_and_clearly() {
    let pki = Pki::new();
    let etcd = TlsEtcd::start(&pki);
    let q = format!("/tlsapp?{}", ca_query(&pki.ca()));

    let err = build_err(EtcdLockBuilder::from_url(&etcd.url("root:wrong@", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{}", chain(&err));
    assert!(
        chain(&err).contains("authentication failed"),
        "{}",
        chain(&err)
    );
    assert!(!chain(&err).contains("wrong"), "{}", chain(&err));

    let err = build_err(EtcdLockBuilder::from_url(&etcd.url("nobody:rootpw@", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{}", chain(&err));

    // No credentials: etcd 3.4 grants leases without checking auth, so the
    // build succeeds; the first lock call (a transaction) is refused.
    let anonymous = EtcdLockBuilder::from_url(&etcd.url("", &q))
        .unwrap()
        .with_connect_timeout(Duration::from_secs(2))
        .with_request_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("an anonymous lease grant");
    let o = LockOptions::new().with_ttl(Duration::from_secs(5));
    let started = Instant::now();
    let err = tokio::time::timeout(FAIL_BOUND * 2, anonymous.try_acquire("tls:k", &o))
        .await
        .expect("try_acquire must not hang")
        .expect_err("anonymous try_acquire must fail");
    eprintln!("failed after {:?}: {}", started.elapsed(), chain(&err));
    assert!(started.elapsed() < FAIL_BOUND, "{:?}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Backend, "{}", chain(&err));
    assert!(
        chain(&err).contains("user name is empty"),
        "{}",
        chain(&err)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_rejects_the_certificate() {
    let pki = Pki::new();
    let etcd = TlsEtcd::start(&pki);

    // No CA given: the system / webpki roots do not know our CA.
    let err = build_err(EtcdLockBuilder::from_url(&etcd.url("root:rootpw@", "")).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));

    // Another CA than the one that signed the server's certificate.
    let other_ca = pki.make_ca("other");
    let err = build_err(
        EtcdLockBuilder::from_url(&etcd.url("root:rootpw@", &format!("?{}", ca_query(&other_ca))))
            .unwrap(),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));

    // Plain etcd:// to the HTTPS port.
    let url = format!("etcd://root:rootpw@127.0.0.1:{}", etcd.port);
    let err = build_err(EtcdLockBuilder::from_url(&url).unwrap()).await;
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn bad_ca_settings_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = EtcdLockBuilder::from_url(&format!("etcds://127.0.0.1:1?{}", ca_query(&missing)))
        .unwrap()
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
    assert!(chain(&err).contains("missing.pem"), "{}", chain(&err));

    // A file that is not PEM is refused before any connection.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let err = EtcdLockBuilder::from_url(&format!("etcds://127.0.0.1:1?{}", ca_query(&garbage)))
        .unwrap()
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
    assert!(
        chain(&err).contains("holds no PEM certificate"),
        "{}",
        chain(&err)
    );

    let err = EtcdLockBuilder::from_url("etcd://127.0.0.1:1?ca_file=/x.pem").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
}
