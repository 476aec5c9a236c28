//! Measuring one deployment: connecting each implementation, the scenarios, the summaries.

use crate::impls::{EtcdFloor, EtcdRpc, Fencelock, Locker, RedisFloor, Rslock, ZkFloor, ZkRecipe};
use crate::measure::{median, Counter, RedisConns, Rep};
use crate::*;
use fencelock::{Capabilities, LockOptions};
use fencelock_testbed::fixture::Fixture;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many client instances per implementation: with more tasks,
/// tasks share clients round-robin (ZooKeeper refuses more than 60
/// connections from one address by default, `maxClientCnxns`).
pub(crate) const MAX_CLIENTS: usize = 32;

/// Progress on stderr.
pub(crate) struct Progress {
    pub(crate) start: Instant,
    pub(crate) done: usize,
    pub(crate) total: usize,
}

impl Progress {
    pub(crate) fn step(&mut self, what: &str) {
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

pub(crate) fn steps_of(d: &Deployment, cfg: &Config) -> usize {
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

pub(crate) struct Target {
    url: String,
    eps: Vec<String>,
    counter: Counter,
}

pub(crate) fn target_of(d: &Deployment, f: &Fixture) -> Target {
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

pub(crate) async fn connect(
    imp: Impl,
    t: &Target,
    run: &str,
    i: usize,
) -> Result<Arc<dyn Locker>, String> {
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

pub(crate) fn summarize(
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

pub(crate) fn brief(m: &Measurement) -> String {
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
pub(crate) fn renewal_setup(backend: &str) -> (LockOptions, Duration) {
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

pub(crate) async fn run_deployment(
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
        // An unmeasured warm-up: the first implementation measured after the
        // servers start would otherwise pay for their JIT, caches and the
        // ensemble settling down.
        let _ = measure::cycle(
            &clients[0],
            &format!("{run}-{}-warmup", imp.name()),
            secs.min(Duration::from_millis(300)),
        )
        .await;
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
