//! `fencelock-bench`: measures every backend against the floor (the bare
//! round trips of a lock cycle on each store, through the same client
//! library) and the peers (rslock, etcd's Lock RPC, zookeeper-client's lock
//! recipe), on real servers started through the conformance fixtures.
//!
//! ```text
//! fencelock-bench [--smoke] [--reps N] [--secs S] [--only a,b] [--url name=URL]... [--out DIR] [--no-docs]
//! ```
//!
//! Writes `target/fencelock-bench/{results.json,targets.json,chart.svg,table.md}`
//! (`target/fencelock-bench/smoke/` with `--smoke`), prints a markdown table
//! on stdout and its progress on stderr, and (full runs only) regenerates
//! `docs/performance.md` and `docs/backends.md`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod impls;
mod measure;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fencelock::{Capabilities, LockOptions};
use fencelock_conformance::fixture::Fixture;
use tokio::time::Instant;

use crate::impls::{EtcdFloor, EtcdRpc, Fencelock, Locker, RedisFloor, Rslock, ZkFloor, ZkRecipe};
use crate::measure::{median, Counter, RedisConns, Rep};

/// At most this many client instances per implementation: with more tasks,
/// tasks share clients round-robin (ZooKeeper refuses more than 60
/// connections from one address by default, `maxClientCnxns`).
const MAX_CLIENTS: usize = 32;

/// One implementation measured on a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// fencelock itself.
    Fencelock,
    /// The store's unavoidable round trips.
    Floor,
    /// rslock.
    Rslock,
    /// etcd's Lock/Unlock RPC.
    EtcdRpc,
    /// zookeeper-client's lock recipe.
    ZkRecipe,
}

impl Impl {
    /// The name in results and tables.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Fencelock => "fencelock",
            Impl::Floor => "floor",
            Impl::Rslock => "rslock",
            Impl::EtcdRpc => "etcd-lock-rpc",
            Impl::ZkRecipe => "zookeeper-client-lock",
        }
    }
}

/// A store deployment to measure.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Its name in results (`redis`, `redlock-3`, `etcd-cluster`...).
    pub name: &'static str,
    /// The fixture that starts it.
    pub fixture: &'static str,
    /// The backend family (`redis`, `zookeeper`, `etcd`, `memory`, `file`).
    pub backend: &'static str,
    /// What runs, in words.
    pub shape: &'static str,
    /// The implementations measured on it.
    pub impls: &'static [Impl],
    /// Whether the renewal-cost scenario runs on it.
    pub renewal: bool,
    /// Whether it is one server (for the hand-off target).
    pub single_server: bool,
}

/// Every deployment, in run order.
pub fn deployments() -> Vec<Deployment> {
    use Impl::*;
    vec![
        Deployment {
            name: "memory",
            fixture: "memory",
            backend: "memory",
            shape: "in-process",
            impls: &[Fencelock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "file",
            fixture: "file",
            backend: "file",
            shape: "flock on a local dir",
            impls: &[Fencelock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "redis",
            fixture: "redis",
            backend: "redis",
            shape: "1 Redis server",
            impls: &[Fencelock, Floor, Rslock],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "redlock-3",
            fixture: "redlock",
            backend: "redlock",
            shape: "Redlock over 3 independent Redis servers",
            impls: &[Fencelock, Rslock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "redis-cluster",
            fixture: "redis-cluster",
            backend: "redis",
            shape: "Redis Cluster, 3 primaries",
            impls: &[Fencelock],
            renewal: false,
            single_server: false,
        },
        Deployment {
            name: "zookeeper",
            fixture: "zookeeper",
            backend: "zookeeper",
            shape: "1 ZooKeeper server",
            impls: &[Fencelock, Floor, ZkRecipe],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "zookeeper-ensemble",
            fixture: "zookeeper-ensemble",
            backend: "zookeeper",
            shape: "ZooKeeper ensemble of 3",
            impls: &[Fencelock, Floor, ZkRecipe],
            renewal: false,
            single_server: false,
        },
        Deployment {
            name: "etcd",
            fixture: "etcd",
            backend: "etcd",
            shape: "1 etcd member",
            impls: &[Fencelock, Floor, EtcdRpc],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "etcd-cluster",
            fixture: "etcd-cluster",
            backend: "etcd",
            shape: "etcd cluster of 3",
            impls: &[Fencelock, Floor, EtcdRpc],
            renewal: false,
            single_server: false,
        },
    ]
}

/// One measurement: the median of its repetitions.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Backend family.
    pub backend: String,
    /// Deployment name.
    pub deployment: String,
    /// `cycle`, `spread`, `hot_key` or `renewal`.
    pub scenario: String,
    /// `fencelock`, `floor` or the peer's name.
    pub implementation: String,
    /// Concurrent clients (renewal: 1).
    pub clients: usize,
    /// Operations (cycles, grants) per second; renewal: server requests per second.
    pub ops_per_sec: f64,
    /// Median latency in µs (hot key: hand-off).
    pub p50_us: Option<f64>,
    /// 99th percentile latency in µs.
    pub p99_us: Option<f64>,
    /// Scenario-specific fields.
    pub extras: serde_json::Map<String, serde_json::Value>,
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The smoke mode: tiny counts, target/ only.
    pub smoke: bool,
    /// Repetitions per measurement.
    pub reps: usize,
    /// Seconds per repetition.
    pub secs: f64,
    /// Client counts of the spread scenario.
    pub spread: Vec<usize>,
    /// Client counts of the hot-key scenario.
    pub hot: Vec<usize>,
    /// Held-lock counts of the renewal scenario.
    pub held: Vec<usize>,
    /// Renewal: wait before reading counters.
    pub settle: Duration,
    /// Renewal: the counter window.
    pub window: Duration,
    /// Deployments to run.
    pub only: Option<Vec<String>>,
    /// Output directory.
    pub out: PathBuf,
    /// Whether to regenerate docs/.
    pub docs: bool,
    /// The command line, for the docs.
    pub command: String,
}

fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn usage() -> ! {
    eprintln!(
        "usage: fencelock-bench [--smoke] [--reps N] [--secs S] [--only name,name] [--url name=URL]... [--out DIR] [--no-docs]\n\
         deployments: {}",
        deployments().iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("fencelock-bench");
    let mut cfg = if smoke {
        Config {
            smoke,
            reps: 1,
            secs: 0.1,
            spread: vec![1, 4],
            hot: vec![2],
            held: vec![1, 20],
            settle: Duration::from_millis(100),
            window: Duration::from_millis(300),
            only: Some(
                ["memory", "file", "redis", "zookeeper", "etcd"]
                    .map(String::from)
                    .to_vec(),
            ),
            out: target.join("smoke"),
            docs: false,
            command: String::new(),
        }
    } else {
        Config {
            smoke,
            reps: 3,
            secs: 0.8,
            spread: vec![1, 8, 64],
            hot: vec![2, 8, 32],
            held: vec![1, 100, 10_000],
            settle: Duration::from_millis(1500),
            window: Duration::from_secs(3),
            only: None,
            out: target,
            docs: true,
            command: String::new(),
        }
    };
    cfg.command = std::iter::once("scripts/bench".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--smoke" => {}
            "--reps" => cfg.reps = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => cfg.secs = val().parse().unwrap_or_else(|_| usage()),
            "--only" => cfg.only = Some(val().split(',').map(String::from).collect()),
            "--out" => cfg.out = PathBuf::from(val()),
            "--no-docs" => cfg.docs = false,
            "--url" => {
                let v = val();
                let Some((name, url)) = v.split_once('=') else {
                    usage()
                };
                let Some(d) = deployments().into_iter().find(|d| d.name == name) else {
                    usage()
                };
                // Fixture::start reads FENCELOCK_<FIXTURE>_URL for external servers.
                let var = format!(
                    "FENCELOCK_{}_URL",
                    d.fixture.to_uppercase().replace('-', "_")
                );
                std::env::set_var(var, url);
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if cfg.only.is_some() && !cfg.smoke {
        // A partial run does not regenerate the docs.
        cfg.docs = false;
    }
    cfg
}

/// Progress on stderr.
struct Progress {
    start: Instant,
    done: usize,
    total: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        self.done += 1;
        let secs = self.start.elapsed().as_secs();
        eprintln!(
            "[{:>3}/{} {:>3}m{:02}s] {what}",
            self.done,
            self.total,
            secs / 60,
            secs % 60
        );
    }
    fn note(&self, what: &str) {
        let secs = self.start.elapsed().as_secs();
        eprintln!(
            "[   {:>width$} {:>3}m{:02}s] {what}",
            "",
            secs / 60,
            secs % 60,
            width = self.total.to_string().len() + 1 + 3
        );
    }
}

fn steps_of(d: &Deployment, cfg: &Config) -> usize {
    let per_impl = |i: &Impl| {
        let hot = if matches!(i, Impl::Floor) {
            0
        } else {
            cfg.hot.len()
        };
        1 + cfg.spread.len() + hot
    };
    d.impls.iter().map(per_impl).sum::<usize>() + if d.renewal { cfg.held.len() + 1 } else { 0 }
}

struct Target {
    url: String,
    eps: Vec<String>,
    counter: Counter,
}

fn target_of(d: &Deployment, f: &Fixture) -> Target {
    let all: Vec<String> = f.endpoints().iter().map(ToString::to_string).collect();
    let (url, eps) = if d.name == "redlock-3" && f.endpoints().len() >= 3 {
        (f.url_via(&f.endpoints()[..3]), all[..3].to_vec())
    } else {
        (f.url(), all)
    };
    let counter = match d.backend {
        "redis" | "redlock" => Counter::Redis(eps.clone(), RedisConns::default()),
        "etcd" => Counter::Etcd(eps.clone()),
        "zookeeper" => Counter::Zk(eps.clone()),
        _ => Counter::None,
    };
    Target { url, eps, counter }
}

async fn connect(imp: Impl, t: &Target, run: &str, i: usize) -> Result<Arc<dyn Locker>, String> {
    Ok(match imp {
        Impl::Fencelock => Arc::new(Fencelock::connect(&t.url).await?),
        Impl::Floor => match t.counter {
            Counter::Redis(..) => Arc::new(RedisFloor::connect(&t.eps[0]).await?),
            Counter::Etcd(_) => Arc::new(EtcdFloor::connect(&t.eps).await?),
            Counter::Zk(_) => Arc::new(ZkFloor::connect(&t.eps, run, i).await?),
            Counter::None => return Err("no floor for this store".into()),
        },
        Impl::Rslock => Arc::new(Rslock::connect(&t.eps).await?),
        Impl::EtcdRpc => Arc::new(EtcdRpc::connect(&t.eps).await?),
        Impl::ZkRecipe => Arc::new(ZkRecipe::connect(&t.eps).await?),
    })
}

fn summarize(
    d: &Deployment,
    imp: Impl,
    scenario: &str,
    clients: usize,
    mut reps: Vec<Rep>,
    cfg: &Config,
) -> Measurement {
    let rates: Vec<f64> = reps.iter().map(Rep::rate).collect();
    let p50s: Vec<f64> = reps.iter_mut().filter_map(|r| r.quantile(0.5)).collect();
    let p99s: Vec<f64> = reps.iter_mut().filter_map(|r| r.quantile(0.99)).collect();
    let errors: u64 = reps.iter().map(|r| r.errors).sum();
    let cross50: Vec<f64> = reps
        .iter_mut()
        .filter_map(|r| {
            if r.cross_us.is_empty() {
                return None;
            }
            r.cross_us.sort_unstable();
            Some(r.cross_us[r.cross_us.len() / 2] as f64)
        })
        .collect();
    let shares: Vec<f64> = reps.iter().map(|r| r.max_share).collect();
    let samples: usize = reps.iter().map(|r| r.lat_us.len()).sum();
    let mut extras = serde_json::Map::new();
    extras.insert("repetitions".into(), reps.len().into());
    extras.insert("seconds_per_repetition".into(), cfg.secs.into());
    extras.insert("ops_per_sec_each_repetition".into(), rates.clone().into());
    extras.insert("latency_samples".into(), samples.into());
    extras.insert("errors".into(), errors.into());
    if let Some(e) = reps.iter().find_map(|r| r.first_error.clone()) {
        extras.insert("first_error".into(), e.into());
    }
    if scenario == "spread" {
        extras.insert("client_instances".into(), clients.min(MAX_CLIENTS).into());
    }
    if scenario == "hot_key" {
        extras.insert("cross_client_handoff_p50_us".into(), median(cross50).into());
        extras.insert(
            "max_share_of_grants_by_one_client".into(),
            median(shares).into(),
        );
        extras.insert(
            "latency".into(),
            "hand-off: holder's release start to next holder's grant".into(),
        );
    } else {
        extras.insert("latency".into(), "one acquire + release".into());
    }
    Measurement {
        backend: d.backend.into(),
        deployment: d.name.into(),
        scenario: scenario.into(),
        implementation: imp.name().into(),
        clients,
        ops_per_sec: median(rates).unwrap_or(0.0),
        p50_us: median(p50s),
        p99_us: median(p99s),
        extras,
    }
}

fn brief(m: &Measurement) -> String {
    let lat = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{:.0}µs", v));
    let errs = m
        .extras
        .get("errors")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let per = m
        .extras
        .get("server_requests_per_cycle")
        .and_then(serde_json::Value::as_f64)
        .map_or_else(String::new, |v| format!(", {v:.1} server requests/cycle"));
    format!(
        "{} {} {} C={}: {:.0}/s p50 {} p99 {}{per}{}",
        m.deployment,
        m.implementation,
        m.scenario,
        m.clients,
        m.ops_per_sec,
        lat(m.p50_us),
        lat(m.p99_us),
        if errs > 0 {
            format!(" ({errs} ERRORS)")
        } else {
            String::new()
        }
    )
}

/// Renewal period and options per backend family: Redis renews each grant
/// every TTL/3 (TTL 3 s here); etcd keeps its session lease alive every
/// lease TTL/3 (the fixture's 3 s); ZooKeeper checks its session every
/// timeout/3 (the fixture's 4 s).
fn renewal_setup(backend: &str) -> (LockOptions, Duration) {
    match backend {
        "redis" | "redlock" => (
            LockOptions::new().with_ttl(Duration::from_secs(3)),
            Duration::from_secs(1),
        ),
        "etcd" => (LockOptions::new(), Duration::from_secs(1)),
        "zookeeper" => (LockOptions::new(), Duration::from_millis(4000 / 3)),
        _ => (LockOptions::new(), Duration::from_secs(1)),
    }
}

async fn run_deployment(
    d: &Deployment,
    cfg: &Config,
    p: &mut Progress,
    out: &mut Vec<Measurement>,
    caps: &mut Vec<(String, Capabilities)>,
) -> Result<(), String> {
    p.note(&format!("{}: starting {} ({})", d.name, d.fixture, d.shape));
    let f = Fixture::start(d.fixture)
        .await
        .map_err(|e| format!("{}: fixture did not start: {e}", d.name))?;
    let t = target_of(d, &f);
    let run = format!("b{:08x}", rand_u32());
    let max_c = cfg
        .spread
        .iter()
        .chain(cfg.hot.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .min(MAX_CLIENTS);
    for &imp in d.impls {
        let n = max_c;
        let connect_err = |e: String| format!("{} {}: connect: {e}", d.name, imp.name());
        let mut clients = vec![connect(imp, &t, &run, 0).await.map_err(connect_err)?];
        if imp == Impl::Fencelock {
            let probe = fencelock::connect(&t.url)
                .await
                .map_err(|e| e.to_string())?;
            caps.push((d.name.to_string(), probe.capabilities()));
        }
        let secs = Duration::from_secs_f64(cfg.secs);
        // The cycle runs with this one client connected, so that the
        // servers' counters see its requests alone.
        let mut reps = Vec::new();
        let (mut per_op, mut rt_per_op) = (Vec::new(), Vec::new());
        for r in 0..cfg.reps {
            let before = t.counter.read().await;
            let rep = measure::cycle(
                &clients[0],
                &format!("{run}-{}-cycle-{r}", imp.name()),
                secs,
            )
            .await;
            if let (Ok(a), Ok(b)) = (before, t.counter.read().await) {
                let ops = rep.ops.max(1) as f64;
                per_op.push((b.requests - a.requests - t.counter.own()) / ops);
                rt_per_op.push((b.reads - a.reads - t.counter.own()) / ops);
            }
            reps.push(rep);
        }
        let mut m = summarize(d, imp, "cycle", 1, reps, cfg);
        if !matches!(t.counter, Counter::None) {
            m.extras
                .insert("server_requests_per_cycle".into(), median(per_op).into());
            if matches!(t.counter, Counter::Redis(..)) {
                m.extras
                    .insert("round_trips_per_cycle".into(), median(rt_per_op).into());
            }
        }
        p.step(&brief(&m));
        out.push(m);
        for i in 1..n {
            clients.push(connect(imp, &t, &run, i).await.map_err(connect_err)?);
        }
        for &c in &cfg.spread {
            let mut reps = Vec::new();
            for r in 0..cfg.reps {
                reps.push(
                    measure::spread(
                        &clients[..c.min(clients.len())],
                        c,
                        &format!("{run}-{}-spread{c}-{r}", imp.name()),
                        secs,
                    )
                    .await,
                );
            }
            let m = summarize(d, imp, "spread", c, reps, cfg);
            p.step(&brief(&m));
            out.push(m);
        }
        if clients[0].waits() {
            for &c in &cfg.hot {
                let mut reps = Vec::new();
                for r in 0..cfg.reps {
                    reps.push(
                        measure::hot(
                            &clients[..c],
                            &format!("{run}-{}-hot{c}-{r}", imp.name()),
                            secs,
                        )
                        .await,
                    );
                }
                let m = summarize(d, imp, "hot_key", c, reps, cfg);
                p.step(&brief(&m));
                out.push(m);
            }
        }
    }
    if d.renewal {
        let (opts, period) = renewal_setup(d.backend);
        let lock = fencelock::connect(&t.url)
            .await
            .map_err(|e| e.to_string())?;
        for &h in std::iter::once(&0).chain(cfg.held.iter()) {
            let r = measure::renewal(
                &lock,
                &opts,
                &t.counter,
                &format!("{run}-renew{h}"),
                h,
                cfg.settle,
                cfg.window,
            )
            .await
            .map_err(|e| format!("{} renewal H={h}: {e}", d.name))?;
            let per = period.as_secs_f64();
            let nodes = t.counter.servers();
            let mut extras = serde_json::Map::new();
            extras.insert("held".into(), h.into());
            extras.insert(
                "renewal_period_ms".into(),
                period
                    .as_millis()
                    .to_string()
                    .parse::<u64>()
                    .unwrap_or(0)
                    .into(),
            );
            extras.insert("servers".into(), nodes.into());
            extras.insert(
                "requests_per_period".into(),
                (r.requests_per_sec * per).into(),
            );
            if matches!(t.counter, Counter::Redis(..)) {
                extras.insert(
                    "round_trips_per_period".into(),
                    (r.reads_per_sec * per).into(),
                );
                extras.insert(
                    "round_trips_per_period_per_server".into(),
                    (r.reads_per_sec * per / nodes.max(1) as f64).into(),
                );
            }
            if matches!(t.counter, Counter::Etcd(_)) {
                extras.insert(
                    "keepalives_per_period".into(),
                    (r.keepalives_per_sec * per).into(),
                );
            }
            let mut rss_note = String::new();
            if h > 0 && h == cfg.held.iter().copied().max().unwrap_or(0) {
                // Resident memory in a fresh process: in this one, the heap
                // left by the earlier scenarios hides the growth.
                let (r0, r1, errs) = rss_probe(&t.url, h, &opts)
                    .await
                    .map_err(|e| format!("{} RSS probe H={h}: {e}", d.name))?;
                let delta = r1.saturating_sub(r0) as f64;
                extras.insert("rss_delta_bytes".into(), delta.into());
                extras.insert("rss_per_lock_bytes".into(), (delta / h as f64).into());
                extras.insert(
                    "rss_measured_in".into(),
                    "a fresh child process (fencelock-bench --rss-probe)".into(),
                );
                if errs > 0 {
                    extras.insert("rss_probe_errors".into(), errs.into());
                }
                rss_note = format!(", {:.0} B RSS per lock (fresh process)", delta / h as f64);
            }
            extras.insert("acquire_all_secs".into(), r.acquire_secs.into());
            extras.insert("errors".into(), r.errors.into());
            if let Some(e) = &r.first_error {
                extras.insert("first_error".into(), e.clone().into());
            }
            extras.insert(
                "counter".into(),
                match t.counter {
                    Counter::Redis(..) => "INFO stats: total_commands_processed (requests), total_reads_processed (round trips), own INFO subtracted",
                    Counter::Etcd(_) => "/metrics: sum of grpc_server_msg_received_total (requests), LeaseKeepAlive alone (keepalives)",
                    Counter::Zk(_) => "mntr: zk_packets_received",
                    Counter::None => "no server",
                }
                .into(),
            );
            let m = Measurement {
                backend: d.backend.into(),
                deployment: d.name.into(),
                scenario: "renewal".into(),
                implementation: "fencelock".into(),
                clients: 1,
                ops_per_sec: r.requests_per_sec,
                p50_us: None,
                p99_us: None,
                extras,
            };
            p.step(&format!(
                "{} renewal H={h}: {:.1} requests/period{rss_note}, {} errors",
                d.name,
                r.requests_per_sec * per,
                r.errors
            ));
            out.push(m);
        }
    }
    drop(f);
    Ok(())
}

/// Runs `fencelock-bench --rss-probe URL H TTL_MS` and reads its answer:
/// (RSS before, RSS after taking H locks, errors).
async fn rss_probe(url: &str, h: usize, opts: &LockOptions) -> Result<(u64, u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(exe)
            .arg("--rss-probe")
            .arg(url)
            .arg(h.to_string())
            .arg(opts.ttl().as_millis().to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "the probe did not finish within 180 s".to_string())?
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (out.status.success(), v.as_slice()) {
        (true, [a, b, e]) => Ok((*a, *b, *e)),
        _ => Err(format!(
            "probe failed: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The child side of [`rss_probe`]: connect, warm up, read RSS, take `h`
/// locks on fresh keys (64 at a time), read RSS, print, release.
async fn rss_probe_child(url: &str, h: usize, ttl_ms: u64) -> Result<(), String> {
    use futures_util::stream::{self, StreamExt};
    let lock = fencelock::connect(url).await.map_err(|e| e.to_string())?;
    let opts = LockOptions::new().with_ttl(Duration::from_millis(ttl_ms));
    let prefix = format!("rss{:08x}", rand_u32());
    let warm = lock
        .acquire(&format!("{prefix}-warm"), &opts)
        .await
        .map_err(|e| e.to_string())?;
    warm.release().await.map_err(|e| e.to_string())?;
    let before = measure::rss_bytes().unwrap_or(0);
    let results: Vec<_> = stream::iter(0..h)
        .map(|i| {
            let (lock, opts, key) = (Arc::clone(&lock), opts.clone(), format!("{prefix}-{i}"));
            async move { lock.try_acquire(&key, &opts).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let after = measure::rss_bytes().unwrap_or(0);
    let mut guards = Vec::new();
    let mut errors = 0u64;
    for r in results {
        match r {
            Ok(Some(g)) => guards.push(g),
            _ => errors += 1,
        }
    }
    println!("{before} {after} {errors}");
    stream::iter(guards)
        .map(|g| async move {
            let _ = g.release().await;
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    Ok(())
}

fn rand_u32() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--rss-probe") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (url, h, ttl) = match &args[2..] {
            [u, h, t] => (
                u.clone(),
                h.parse().unwrap_or(0),
                t.parse().unwrap_or(30_000),
            ),
            _ => usage(),
        };
        let code = match rt.block_on(rss_probe_child(&url, h, ttl)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rss probe: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let cfg = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = rt.block_on(run(cfg));
    // Fixtures are dropped (servers stopped) inside run(); leave at once.
    std::process::exit(code);
}

async fn run(cfg: Config) -> i32 {
    let all = deployments();
    let chosen: Vec<Deployment> = match &cfg.only {
        Some(names) => {
            for n in names {
                if !all.iter().any(|d| d.name == n) {
                    eprintln!("fencelock-bench: unknown deployment {n:?}");
                    usage();
                }
            }
            all.into_iter()
                .filter(|d| names.iter().any(|n| n == d.name))
                .collect()
        }
        None => all,
    };
    let total = chosen.iter().map(|d| steps_of(d, &cfg)).sum();
    let mut p = Progress {
        start: Instant::now(),
        done: 0,
        total,
    };
    eprintln!(
        "fencelock-bench: {} deployments, {} measurements, {} repetitions of {:.2} s each{}",
        chosen.len(),
        total,
        cfg.reps,
        cfg.secs,
        if cfg.smoke { " (smoke)" } else { "" }
    );
    let mut results = Vec::new();
    let mut caps = Vec::new();
    let mut failures = Vec::new();
    for d in &chosen {
        if let Err(e) = run_deployment(d, &cfg, &mut p, &mut results, &mut caps).await {
            eprintln!("FAILED: {e}");
            failures.push(e);
        }
    }
    let elapsed = p.start.elapsed();
    let errors: Vec<String> = results
        .iter()
        .filter(|m| {
            m.extras
                .get("errors")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                > 0
        })
        .map(|m| {
            format!(
                "{}: {}",
                brief(m),
                m.extras
                    .get("first_error")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
            )
        })
        .collect();
    failures.extend(errors);
    let report = report::Report::new(&cfg, &chosen, results, caps, elapsed, failures.clone());
    if let Err(e) = report.write_all() {
        eprintln!("fencelock-bench: could not write the outputs: {e}");
        return 1;
    }
    println!("{}", report.terminal());
    eprintln!(
        "fencelock-bench: done in {:.0} s; outputs in {}",
        elapsed.as_secs_f64(),
        cfg.out.display()
    );
    if failures.is_empty() {
        0
    } else {
        eprintln!("fencelock-bench: {} failures:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        1
    }
}
