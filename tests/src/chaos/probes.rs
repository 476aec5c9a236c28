//! The probe scenarios, run in this process against a real store: S3
//! (grant replies held past the TTL), S4 (cancelled, dropped and killed
//! waiters), S15 (hostile inputs).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fencelock::{DistributedLock, LockOptions, MAX_TTL};
use tokio::sync::Notify;

use super::client::{hold_once, log_sink};
use super::events::{Fault, Log};
use super::report::Report;
use super::run::{expected_bound, tuned, Bins, Settings, TTL_MS};
use super::scenarios::EPSILON;
use crate::fixture::{wait_until, Fixture};
use crate::monotonic_ns;
use crate::proxy::{Mode, ProxyGroup};

fn opts(wait: Duration) -> LockOptions {
    LockOptions::new()
        .with_ttl(Duration::from_millis(TTL_MS))
        .with_wait(wait)
}

async fn connect(url: &str) -> Result<Arc<dyn DistributedLock>, String> {
    super::run::connect_retry(url, Duration::from_secs(30)).await
}

async fn bounded<T>(d: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(d, f).await.ok()
}

/// S3: client X talks through a proxy that lets its requests through and
/// holds every reply for 1.5 × the TTL (session); client D, direct, waits
/// for the lock meanwhile. A grant whose reply arrives after its deadline
/// is not a grant: X must never hold the lock while D does.
pub async fn s3(backend: &str, s: &Settings) -> Report {
    let mut r = Report::new("S3", backend, true);
    r.clients = "2x1 (in-process)".into();
    let f = match Fixture::start(backend).await {
        Ok(f) => f,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let proxies = match ProxyGroup::start(f.endpoints()).await {
        Ok(p) => p,
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    let (x, d) = match (
        connect(&tuned(backend, &f.url_via(&proxies.addrs()))).await,
        connect(&tuned(backend, &f.url())).await,
    ) {
        (Ok(x), Ok(d)) => (x, d),
        (Err(e), _) | (_, Err(e)) => {
            r.errors.push(e);
            return r;
        }
    };
    let bound = x
        .capabilities()
        .abandon_bound(Duration::from_millis(TTL_MS));
    let log = Log::new();
    let key = format!("chaos-s3-{:08x}", rand::random::<u32>());
    let started = monotonic_ns();
    let rounds = if s.short { 1 } else { 4 };
    let (mut x_granted, mut x_refused) = (0usize, Vec::new());
    for round in 0..rounds {
        proxies.set(Mode::HoldReplies);
        let mut fault = Fault::now(format!(
            "proxy holds client X's replies for {:?}",
            bound * 3 / 2
        ));
        let (xl, sx, k) = (Arc::clone(&x), log_sink(&log, 0), key.clone());
        let xt = tokio::spawn(async move {
            hold_once(
                &*xl,
                &k,
                &opts(bound * 2 + Duration::from_secs(5)),
                &sx,
                (0, round),
                tokio::time::sleep(Duration::from_millis(50)),
            )
            .await
        });
        // The request reaches the store; then D asks, directly.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let go = Arc::new(Notify::new());
        let (dl, sd, k, g) = (
            Arc::clone(&d),
            log_sink(&log, 1),
            key.clone(),
            Arc::clone(&go),
        );
        let dt = tokio::spawn(async move {
            hold_once(
                &*dl,
                &k,
                &opts(bound * 3 + Duration::from_secs(10)),
                &sd,
                (0, round),
                async move {
                    let _ = tokio::time::timeout(bound * 4 + Duration::from_secs(10), g.notified())
                        .await;
                },
            )
            .await
        });
        let at = tokio::time::Instant::now() + bound * 3 / 2 - Duration::from_millis(200);
        tokio::time::sleep_until(at).await;
        proxies.set(Mode::Pass);
        fault.heal_ns = Some(monotonic_ns());
        log.fault(fault);
        let mut xt = xt;
        let early = bounded(Duration::from_secs(2), &mut xt).await;
        go.notify_one();
        let xr = match early {
            Some(x) => Some(x),
            None => bounded(bound * 3 + Duration::from_secs(10), &mut xt).await,
        };
        match xr {
            Some(Ok(Ok(_))) => x_granted += 1,
            Some(Ok(Err(e))) => x_refused.push(format!("{:?}", e.kind())),
            Some(Err(e)) => r.errors.push(format!("client X's task: {e}")),
            None => r.errors.push("client X's acquire never ended".into()),
        }
        go.notify_one();
        if bounded(bound * 5 + Duration::from_secs(15), dt)
            .await
            .is_none()
        {
            r.errors.push("client D never finished".into());
        }
    }
    let d_waits: Vec<String> = log
        .events()
        .iter()
        .filter_map(|e| match e.kind {
            super::events::Kind::Grant { waited_ns, .. } if e.client == 1 => {
                Some(format!("{:.0}ms", waited_ns as f64 / 1e6))
            }
            _ => None,
        })
        .collect();
    r.notes.push(format!(
        "client D (direct) waited {} for its grant(s): about the TTL (session) when the store had granted X's held request",
        d_waits.join(", ")
    ));
    let findings = super::checker::check(&log.events(), &log.faults());
    r.absorb(&findings, None);
    r.faults = log.faults().len();
    r.fault_list = log.faults().iter().map(|f| f.what.clone()).collect();
    #[allow(clippy::cast_precision_loss)]
    let secs = (monotonic_ns() - started) as f64 / 1e9;
    r.duration_s = secs;
    r.notes.push(format!(
        "client X (replies held): {x_granted} grant(s) that did not overlap D, {} refused ({})",
        x_refused.len(),
        x_refused.join(", ")
    ));
    r
}

/// S4: a waiter cancelled, a guard dropped unreleased, the waiter ahead in
/// line killed (-9): the next acquire is not delayed (beyond the killed
/// waiter's session or lease on a FIFO store), and no key or queue node is
/// left behind.
pub async fn s4(backend: &str, bins: &Bins) -> Report {
    let mut r = Report::new("S4", backend, true);
    r.clients = "3x1 (in-process) + 1 process".into();
    let started = monotonic_ns();
    let f = match Fixture::start(backend).await {
        Ok(f) => f,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let url = tuned(backend, &f.url());
    let (a, b, c) = match (
        connect(&url).await,
        connect(&url).await,
        connect(&url).await,
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            r.errors.push(e);
            return r;
        }
    };
    let inspect = fencelock::inspector(&url).await.ok();
    let bound = a
        .capabilities()
        .abandon_bound(Duration::from_millis(TTL_MS));
    let key = format!("chaos-s4-{:08x}", rand::random::<u32>());
    let long = opts(Duration::from_secs(30) + bound);
    let mut lat = Vec::new();
    let step = async {
        // (1) a waiter cancelled.
        let ga = a.acquire(&key, &long).await.map_err(|e| e.to_string())?;
        let cancelled =
            tokio::time::timeout(Duration::from_millis(300), b.acquire(&key, &long)).await;
        if cancelled.is_ok() {
            return Err("the waiter got a held lock".to_string());
        }
        ga.release().await.map_err(|e| e.to_string())?;
        let t = tokio::time::Instant::now();
        let gc = c.acquire(&key, &long).await.map_err(|e| e.to_string())?;
        lat.push(("cancelled waiter", t.elapsed(), Duration::from_secs(5)));
        gc.release().await.map_err(|e| e.to_string())?;
        // (2) a guard dropped unreleased.
        let ga = a.acquire(&key, &long).await.map_err(|e| e.to_string())?;
        drop(ga);
        let t = tokio::time::Instant::now();
        let gc = c.acquire(&key, &long).await.map_err(|e| e.to_string())?;
        lat.push(("dropped guard", t.elapsed(), Duration::from_secs(5)));
        gc.release().await.map_err(|e| e.to_string())?;
        // (3) the waiter ahead in line killed (processes cannot share the
        // memory store).
        if backend != "memory" {
            let ga = a.acquire(&key, &long).await.map_err(|e| e.to_string())?;
            let mut w = tokio::process::Command::new(&bins.contender)
                .args(["hold", &url, &key, &TTL_MS.to_string()])
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| e.to_string())?;
            let queued = match &inspect {
                Some(i) => {
                    wait_until(Duration::from_secs(5), || async {
                        i.status(&key)
                            .await
                            .is_ok_and(|s| s.waiters.is_some_and(|n| n >= 1))
                    })
                    .await
                }
                None => false,
            };
            if !queued {
                // The backend cannot count waiters: give the process time
                // to connect and ask.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let _ = w.start_kill();
            let _ = w.wait().await;
            ga.release().await.map_err(|e| e.to_string())?;
            let t = tokio::time::Instant::now();
            let gc = c.acquire(&key, &long).await.map_err(|e| e.to_string())?;
            lat.push((
                "killed waiter ahead",
                t.elapsed(),
                bound + EPSILON + Duration::from_secs(4),
            ));
            gc.release().await.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    };
    if let Err(e) = step.await {
        r.errors.push(e);
    }
    // Leftovers: nothing held, nobody queued.
    let clean = match &inspect {
        Some(i) => {
            wait_until(bound + Duration::from_secs(5), || async {
                i.status(&key)
                    .await
                    .is_ok_and(|s| !s.held && s.waiters.unwrap_or(0) == 0)
            })
            .await
        }
        None => c.try_acquire(&key, &long).await.ok().flatten().is_some(),
    };
    r.orphans = usize::from(!clean);
    for (what, took, limit) in &lat {
        r.notes.push(format!(
            "{what}: next acquire after {:.0}ms (bound {:.0}ms)",
            took.as_secs_f64() * 1000.0,
            limit.as_secs_f64() * 1000.0
        ));
        if took > limit {
            r.errors
                .push(format!("{what}: next acquire delayed {took:?} > {limit:?}"));
        }
    }
    r.faults = lat.len();
    r.acquisitions = lat.len() * 2 + 1;
    r.max_recovery_ms = lat
        .iter()
        .map(|(_, t, _)| t.as_secs_f64() * 1000.0)
        .reduce(f64::max);
    r.recovery_bound_ms = lat
        .iter()
        .map(|(_, _, l)| l.as_secs_f64() * 1000.0)
        .reduce(f64::max);
    r.notes
        .push(format!("leftover keys or queue nodes: {}", r.orphans));
    #[allow(clippy::cast_precision_loss)]
    let secs = (monotonic_ns() - started) as f64 / 1e9;
    r.duration_s = secs;
    r
}

/// The hostile lock names of S15.
pub fn hostile_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "/",
        ".",
        "..",
        "\0",
        "a\0b",
        "\n",
        "\t\r",
        "\u{7f}",
        "\u{1b}[2J",
        "ключ",
        "🔒",
        "a/b/c",
        "../../etc/passwd",
        "*",
        "?",
        "%",
        "%00",
        "{a}",
        " ",
        "  lead",
        "trail  ",
        "\\",
        "redis:{tag}",
        "$",
        "&q=1",
        "'; DROP",
        "\"",
        "A",
        "a",
        "\u{feff}",
        "\u{202e}rtl",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    v.push("a".repeat(1000));
    v.push("a".repeat(100_000));
    v.push("é".repeat(600));
    v
}

/// Bad URLs of S15 for `backend`.
pub fn bad_urls(backend: &str) -> Vec<String> {
    let long = "a".repeat(5000);
    let v: Vec<String> = match backend {
        "memory" => vec![
            String::new(),
            "nope".into(),
            "://".into(),
            "nope://x".into(),
            "\0".into(),
            "http://127.0.0.1:1".into(),
            "memory://".into(),
            "memory://a/b?c=d".into(),
            format!("memory://{long}"),
        ],
        "file" => vec![
            "file://".into(),
            "file:///proc/nonexistent/dir".into(),
            "file:///dev/null".into(),
            "file://relative/path".into(),
            "file:///tmp?x=1".into(),
            format!("file:///tmp/{long}"),
        ],
        b if b.starts_with("redis") => vec![
            "redis://".into(),
            "redis://127.0.0.1:1?connect_timeout_ms=500".into(),
            "redis://127.0.0.1:notaport".into(),
            "redis://[::1".into(),
            "redis://127.0.0.1:6379?response_timeout_ms=banana".into(),
            "redis://127.0.0.1:6379?unknown=1".into(),
            "redis+sentinel://127.0.0.1:1/".into(),
            "redlock://".into(),
            format!("redis://{long}"),
        ],
        b if b.starts_with("zookeeper") => vec![
            "zk://".into(),
            "zk://127.0.0.1:1?connect_timeout=1s".into(),
            "zk://127.0.0.1:notaport".into(),
            "zk://127.0.0.1:2181?session_timeout=0s".into(),
            "zk://127.0.0.1:2181?session_timeout=banana".into(),
            "zk://127.0.0.1:2181?prefix=relative".into(),
            format!("zk://{long}"),
        ],
        b if b.starts_with("etcd") => vec![
            "etcd://".into(),
            "etcd://127.0.0.1:1?connect_timeout=1s".into(),
            "etcd://127.0.0.1:notaport".into(),
            "etcd://127.0.0.1:2379?timeout=0s".into(),
            "etcd://127.0.0.1:2379?timeout=banana".into(),
            "etcd://127.0.0.1:2379?prefx=typo".into(),
            "etcds://127.0.0.1:1?ca_file=/nonexistent".into(),
            format!("etcd://{long}"),
        ],
        _ => Vec::new(),
    };
    v
}

/// What one hostile input did.
enum Outcome {
    Fine(String),
    Crash(String),
}

async fn attempt<F>(what: String, limit: Duration, f: F) -> Outcome
where
    F: Future<Output = String> + Send + 'static,
{
    match tokio::time::timeout(limit, tokio::spawn(f)).await {
        Ok(Ok(kind)) => Outcome::Fine(kind),
        Ok(Err(e)) => Outcome::Crash(format!("{what}: panicked: {e}")),
        Err(_) => Outcome::Crash(format!("{what}: no answer within {limit:?}")),
    }
}

fn kind_of<T>(r: &fencelock::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) if e.to_string().trim().is_empty() => format!("{:?} (empty message!)", e.kind()),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// S15: hostile names, TTLs and URLs. Every input ends with a result or a
/// clear error within a bound; a panic or a hang is a crash.
pub async fn s15(backend: &str) -> Report {
    let mut r = Report::new("S15", backend, true);
    r.clients = "1x1 (in-process)".into();
    let started = monotonic_ns();
    let f = match Fixture::start(backend).await {
        Ok(f) => f,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let url = tuned(backend, &f.url());
    let lock = match connect(&url).await {
        Ok(l) => l,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let limit = Duration::from_secs(20) + expected_bound(backend);
    let mut tries: Vec<std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>> = Vec::new();
    let prefix = format!("chaos-s15-{:08x}-", rand::random::<u32>());
    for name in hostile_names() {
        for with_prefix in [false, true] {
            let key = if with_prefix {
                format!("{prefix}{name}")
            } else {
                name.clone()
            };
            let l = Arc::clone(&lock);
            let what = format!("name {:?}", key.chars().take(40).collect::<String>());
            tries.push(Box::pin(attempt(what, limit, async move {
                let o = opts(Duration::ZERO).with_ttl(Duration::from_secs(5));
                let res = l.try_acquire(&key, &o).await;
                let k = kind_of(&res);
                if let Ok(Some(g)) = res {
                    let _ = g.release().await;
                }
                format!("name:{k}")
            })));
        }
    }
    let ttls = [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_millis(9),
        Duration::from_millis(10),
        MAX_TTL,
        MAX_TTL + Duration::from_millis(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ];
    for ttl in ttls {
        let l = Arc::clone(&lock);
        let key = format!("{prefix}ttl");
        tries.push(Box::pin(attempt(
            format!("TTL {ttl:?}"),
            limit,
            async move {
                let o = LockOptions::new()
                    .with_ttl(ttl)
                    .with_wait(Duration::from_millis(200));
                let res = l.acquire(&key, &o).await;
                let k = kind_of(&res);
                if let Ok(g) = res {
                    let _ = g.release().await;
                }
                let valid = ttl >= fencelock::MIN_TTL && ttl <= MAX_TTL;
                let clear = valid || k == "InvalidConfig";
                format!("ttl:{k}{}", if clear { "" } else { " (unclear!)" })
            },
        )));
    }
    for u in bad_urls(backend) {
        let what = format!("URL {:?}", u.chars().take(50).collect::<String>());
        tries.push(Box::pin(attempt(
            what,
            Duration::from_secs(30),
            async move {
                match fencelock::connect(&u).await {
                    Err(e) => format!("url:{}", kind_of::<()>(&Err(e))),
                    Ok(l) => {
                        // Connected (lazily, or a valid URL): the first
                        // request must end within bounds too.
                        let o = opts(Duration::ZERO);
                        let res = l.try_acquire("chaos-s15-url", &o).await;
                        let k = kind_of(&res);
                        if let Ok(Some(g)) = res {
                            let _ = g.release().await;
                        }
                        format!("url-connected:{k}")
                    }
                }
            },
        )));
    }
    let n = tries.len();
    let outcomes = futures_util::future::join_all(tries).await;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for o in outcomes {
        match o {
            Outcome::Fine(k) => {
                if k.contains('!') {
                    r.errors.push(k.clone());
                }
                *kinds.entry(k).or_default() += 1;
            }
            Outcome::Crash(c) => {
                r.crashes += 1;
                r.examples.push(c);
            }
        }
    }
    r.acquisitions = kinds
        .iter()
        .filter(|(k, _)| k.ends_with(":ok"))
        .map(|(_, n)| n)
        .sum();
    r.notes
        .push(format!("{n} hostile inputs tried; outcomes: {kinds:?}"));
    #[allow(clippy::cast_precision_loss)]
    let secs = (monotonic_ns() - started) as f64 / 1e9;
    r.duration_s = secs;
    r
}
