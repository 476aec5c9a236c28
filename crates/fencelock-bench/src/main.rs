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

mod config;
mod deployments;
mod impls;
mod measure;
mod report;
mod rss;
mod run;

use tokio::time::Instant;

pub(crate) use crate::config::*;
pub(crate) use crate::deployments::*;
pub(crate) use crate::rss::*;
pub(crate) use crate::run::*;

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
