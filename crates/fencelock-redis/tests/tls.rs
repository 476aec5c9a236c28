//! TLS (`rediss://`) with a private CA and ACL users, against real
//! redis-server processes that speak only TLS. The CA and the server
//! certificate are made by the `openssl` CLI at test time.

mod common;
#[path = "../../../tests/support/pki.rs"]
mod pki;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use fencelock_core::{DistributedLock, Error, ErrorKind, LockOptions};
use fencelock_redis::{RedisLock, RedisLockBuilder, RedlockLock};
use pki::{chain, stop, Pki};

/// Whole-call bound for the error cases: the connect timeout they use (2 s)
/// plus a generous margin for a noisy machine.
const FAIL_BOUND: Duration = Duration::from_secs(6);

/// One redis-server listening only on a TLS port, with the ACL user
/// `alice`/`secret` and the `default` user disabled (so every connection
/// must authenticate). Stopped by PID on drop.
struct TlsServer {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TlsServer {
    fn start(pki: &Pki, extra: &[&str]) -> TlsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(pki.path("server.crt"))
            .arg("--tls-key-file")
            .arg(pki.path("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(pki.ca())
            .args(["--tls-auth-clients", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .args(["--user", "alice", "on", ">secret", "~*", "&*", "+@all"])
            .args(["--user", "default", "off"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("redis-server starts");
        let server = TlsServer { port, child, dir };
        let until = Instant::now() + Duration::from_secs(10);
        while server.cli(pki, &["ping"]).trim() != "PONG" {
            assert!(
                Instant::now() < until,
                "TLS redis-server on port {port} did not start: {}",
                std::fs::read_to_string(server.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// redis-cli over TLS as alice.
    fn cli(&self, pki: &Pki, args: &[&str]) -> String {
        Command::new("timeout")
            .args(["5", "redis-cli", "--tls", "--cacert"])
            .arg(pki.ca())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["--user", "alice", "--pass", "secret", "--no-auth-warning"])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `rediss://{userinfo}127.0.0.1:PORT{tail}`.
    fn url(&self, userinfo: &str, tail: &str) -> String {
        format!("rediss://{userinfo}127.0.0.1:{}{tail}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn ca_query(ca: &Path) -> String {
    format!("?ca_file={}", ca.display())
}

/// Builds with a 2 s connect timeout and returns the error, checking that
/// it came within [`FAIL_BOUND`].
async fn build_err(b: RedisLockBuilder) -> Error {
    let b = b
        .with_connect_timeout(Duration::from_secs(2))
        .with_response_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let result = tokio::time::timeout(FAIL_BOUND * 2, b.build())
        .await
        .expect("build must not hang");
    let elapsed = started.elapsed();
    let err = result.expect_err("build must fail");
    eprintln!("failed after {:?}: {}", started.elapsed(), chain(&err));
    assert!(
        elapsed < FAIL_BOUND,
        "the failure took {elapsed:?}: {}",
        chain(&err)
    );
    err
}

/// Acquire/release with rising tokens, then a waiter woken by pub/sub over TLS.
async fn exercise(lock: &RedisLock, other: &RedisLock) {
    let o = LockOptions::new().with_ttl(Duration::from_secs(30));
    let g1 = lock.acquire("tls:k", &o).await.expect("first grant");
    let t1 = g1.token();
    assert!(other.try_acquire("tls:k", &o).await.unwrap().is_none());
    g1.release().await.expect("release");
    let g2 = other.acquire("tls:k", &o).await.expect("second grant");
    assert!(g2.token() > t1, "{} > {t1}", g2.token());
    let t2 = g2.token();

    // A waiter on the other client: with a 30 s TTL and a 30 s re-check cap
    // only the release's PUBLISH (over the TLS pub/sub connection) wakes it.
    let waiter = {
        let lock = lock.clone();
        let o = o.clone().with_wait(Duration::from_secs(20));
        tokio::spawn(async move { lock.acquire("tls:k", &o).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while lock.inspect("tls:k").await.unwrap().local_waiters == 0 {
        assert!(Instant::now() < until, "the waiter never registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Registered; give the SUBSCRIBE its bound too (the waiter re-tries right after it).
    tokio::time::sleep(Duration::from_millis(200)).await;
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
        "woken after {woke:?}: the pub/sub wake-up did not arrive"
    );
    assert!(g3.token() > t2, "{} > {t2}", g3.token());
    g3.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_and_an_acl_user() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[]);
    let url = server.url("alice:secret@", &ca_query(&pki.ca()));
    let max_recheck = Duration::from_secs(30);
    let lock = RedisLock::builder(&url)
        .unwrap()
        .with_max_recheck_interval(max_recheck)
        .build()
        .await
        .expect("connect over TLS with ca_file");
    // The setter form, with the PEM bytes.
    let pem = std::fs::read(pki.ca()).unwrap();
    let other = RedisLockBuilder::from_url(&server.url("alice:secret@", ""))
        .unwrap()
        .with_tls_ca_pem(pem)
        .with_max_recheck_interval(max_recheck)
        .build()
        .await
        .expect("connect over TLS with_tls_ca_pem");
    exercise(&lock, &other).await;
    // The server saw only authenticated alice connections (default is off).
    let clients = server.cli(&pki, &["client", "list"]);
    assert!(clients.contains("user=alice"), "{clients}");
    assert!(!clients.contains("user=default"), "{clients}");
    // The facade-level constructor takes the same URL.
    let again = RedisLock::connect(&url).await.expect("connect");
    let o = LockOptions::new().with_ttl(Duration::from_secs(5));
    assert!(again.try_acquire("tls:k", &o).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_fail_fast_and_clearly() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[]);
    let q = ca_query(&pki.ca());

    let err = build_err(RedisLock::builder(&server.url("alice:wrong@", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    assert!(!err.is_retryable(), "{}", chain(&err));
    assert!(
        err.message().contains("authentication failed"),
        "{}",
        chain(&err)
    );
    assert!(!chain(&err).contains("wrong"), "{}", chain(&err));

    let err = build_err(RedisLock::builder(&server.url("nobody:secret@", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    assert!(
        err.message().contains("authentication failed"),
        "{}",
        chain(&err)
    );

    // No credentials at all: the default user is disabled, the first command is refused.
    let err = build_err(RedisLock::builder(&server.url("", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Backend, "{}", chain(&err));
    assert!(chain(&err).contains("NOAUTH"), "{}", chain(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_rejects_the_certificate() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[]);

    // No CA given: the webpki roots do not know our CA.
    let err = build_err(RedisLock::builder(&server.url("alice:secret@", "")).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    assert!(
        chain(&err).to_lowercase().contains("certificate"),
        "{}",
        chain(&err)
    );

    // Another CA than the one that signed the server's certificate.
    let other_ca = pki.make_ca("other");
    let err =
        build_err(RedisLock::builder(&server.url("alice:secret@", &ca_query(&other_ca))).unwrap())
            .await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    assert!(
        chain(&err).to_lowercase().contains("certificate"),
        "{}",
        chain(&err)
    );

    // The name in the URL must match the certificate (IP SAN 127.0.0.1, not "localhost").
    let url = format!(
        "rediss://alice:secret@localhost:{}{}",
        server.port,
        ca_query(&pki.ca())
    );
    let err = build_err(RedisLock::builder(&url).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));

    // redis-rs's `#insecure` needs its `tls-rustls-insecure` feature, which is
    // not enabled: it is refused at once as a configuration error.
    let url = server.url("alice:secret@", "/#insecure");
    let err = build_err(RedisLock::builder(&url).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
    assert!(chain(&err).contains("insecure"), "{}", chain(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_redis_to_the_tls_port_fails_within_the_bound() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki, &[]);
    for userinfo in ["alice:secret@", ""] {
        let url = format!("redis://{userinfo}127.0.0.1:{}", server.port);
        let err = build_err(RedisLock::builder(&url).unwrap()).await;
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "{url}: {}",
            chain(&err)
        );
    }
}

#[tokio::test]
async fn bad_ca_settings_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases: Vec<(RedisLockBuilder, &str)> = vec![
        (
            RedisLock::builder(&format!("rediss://127.0.0.1:1{}", ca_query(&missing))).unwrap(),
            "cannot read the TLS CA file",
        ),
        (
            RedisLock::builder(&format!("rediss://127.0.0.1:1{}", ca_query(&garbage))).unwrap(),
            "holds no PEM certificate",
        ),
        (
            RedisLock::builder(&format!("rediss://127.0.0.1:1{}", ca_query(&broken))).unwrap(),
            "not a usable CA certificate",
        ),
        (
            RedisLock::builder("redis://127.0.0.1:1")
                .unwrap()
                .with_tls_ca_file(&garbage),
            "not TLS",
        ),
        (
            RedisLockBuilder::from_cluster_nodes(["rediss://127.0.0.1:1"])
                .unwrap()
                .with_tls_ca_pem(b"nothing".to_vec()),
            "holds no PEM certificate",
        ),
    ];
    for (b, want) in cases {
        let started = Instant::now();
        let err = b.build().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
        assert!(err.message().contains(want), "{want}: {}", chain(&err));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no network call"
        );
    }
    let err = RedisLock::builder("redis://127.0.0.1:1?ca_file=/x.pem").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.message().contains("rediss://"), "{}", err.message());
    let err = RedlockLock::builder(&format!(
        "redlocks://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3{}",
        ca_query(&missing)
    ))
    .unwrap()
    .build()
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{}", chain(&err));
}

/// Three TLS-only cluster nodes (cluster bus over TLS too), joined with
/// `redis-cli --tls --cluster create`.
struct TlsCluster {
    servers: Vec<TlsServer>,
}

impl TlsCluster {
    fn start(pki: &Pki) -> TlsCluster {
        let servers: Vec<TlsServer> = (0..3)
            .map(|_| {
                TlsServer::start(
                    pki,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--tls-cluster",
                        "yes",
                    ],
                )
            })
            .collect();
        let mut cmd = Command::new("timeout");
        cmd.args(["30", "redis-cli", "--tls", "--cacert"])
            .arg(pki.ca())
            .args(["--user", "alice", "--pass", "secret", "--no-auth-warning"])
            .args(["--cluster", "create"]);
        for s in &servers {
            cmd.arg(format!("127.0.0.1:{}", s.port));
        }
        let out = cmd.arg("--cluster-yes").output().expect("cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let until = Instant::now() + Duration::from_secs(20);
        while !servers.iter().all(|s| {
            s.cli(pki, &["cluster", "info"])
                .contains("cluster_state:ok")
        }) {
            assert!(Instant::now() < until, "cluster_state never became ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsCluster { servers }
    }

    fn url(&self, userinfo: &str, tail: &str) -> String {
        let hosts: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("rediss+cluster://{userinfo}{}{tail}", hosts.join(","))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_cluster_with_a_private_ca() {
    let pki = Pki::new();
    let cluster = TlsCluster::start(&pki);
    let q = ca_query(&pki.ca());
    let url = cluster.url("alice:secret@", &q);
    let max_recheck = Duration::from_secs(30);
    let lock = RedisLock::builder(&url)
        .unwrap()
        .with_max_recheck_interval(max_recheck)
        .build()
        .await
        .expect("connect to the TLS cluster");
    let other = RedisLock::builder(&url)
        .unwrap()
        .with_max_recheck_interval(max_recheck)
        .build()
        .await
        .expect("connect to the TLS cluster");
    assert!(lock.inspect("tls:k").await.is_ok());
    exercise(&lock, &other).await;
    // Keys on every shard: the client follows the slot map to TLS nodes it
    // was not given the CA for separately.
    let o = LockOptions::new().with_ttl(Duration::from_secs(5));
    let mut tokens = Vec::new();
    for i in 0..20 {
        let g = lock
            .try_acquire(&format!("spread:{i}"), &o)
            .await
            .unwrap()
            .unwrap();
        tokens.push(g.token());
        g.release().await.unwrap();
    }
    assert_eq!(tokens.len(), 20);

    let err = build_err(RedisLock::builder(&cluster.url("alice:secret@", "")).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    let err = build_err(RedisLock::builder(&cluster.url("alice:wrong@", &q)).unwrap()).await;
    assert_eq!(err.kind(), ErrorKind::Connection, "{}", chain(&err));
    assert!(!err.is_retryable(), "{}", chain(&err));
    assert!(
        err.to_string().contains("authentication failed"),
        "{}",
        chain(&err)
    );
}
