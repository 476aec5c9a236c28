//! Fault injection: K client processes × M tasks loop acquire →
//! fenced critical section on a shared [resource] process → release, while
//! a nemesis kills, pauses and cuts off our own processes by PID; the
//! [checker] then counts overlaps, token regressions and lost updates, and
//! measures recovery and loss-signal latency. The scenarios are those of
//! S0–S15 of docs/reliability.md; `fencelock-chaos` (and `scripts/chaos`) runs
//! them, `tests/chaos.rs` runs their short versions.
//!
//! Every time is CLOCK_MONOTONIC ([`crate::monotonic_ns`]), comparable
//! across the processes of this host.

pub mod checker;
pub mod client;
pub mod events;
pub mod member_partition;
pub mod nemesis;
pub mod netns;
pub mod partition;
pub mod probes;
pub mod report;
pub mod resource;
pub mod run;
pub mod scenarios;

pub use report::Report;
pub use run::{Bins, Settings};

/// The scenarios this harness runs itself (S5–S8 are the Redis HA proofs
/// of `tests/redis_ha.rs`). S12 (with `S12-member`, which `S12` includes)
/// and S13's packet loss (`S13-loss`, which `S13` includes) need root:
/// they build network namespaces.
pub const SCENARIOS: &[&str] = &[
    "S0", "S1", "S2", "S3", "S4", "S10", "S11", "S12", "S13", "S15",
];

/// The backends each scenario runs on by default.
pub fn backends_for(scenario: &str) -> &'static [&'static str] {
    match scenario {
        "S0" | "S15" | "S4" => &["memory", "file", "redis", "zookeeper", "etcd"],
        "S1" | "S2" => &["file", "redis", "zookeeper", "etcd"],
        "S3" | "S13" => &["redis", "zookeeper", "etcd"],
        "S12" | "S13-LOSS" => &[
            "redis",
            "zookeeper",
            "etcd",
            "zookeeper-ensemble",
            "etcd-cluster",
        ],
        "S12-MEMBER" => &["etcd-cluster", "zookeeper-ensemble"],
        "S10" => &["etcd-cluster"],
        "S11" => &["zookeeper", "zookeeper-ensemble"],
        _ => &[],
    }
}

/// One run to make: scenario, backend, fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `S0`, ...
    pub scenario: String,
    /// The fixture name.
    pub backend: String,
    /// Whether the resource checks tokens.
    pub fenced: bool,
}

/// The runs for `scenarios` (all of [`SCENARIOS`] when empty) on the
/// backends that match `backends` (a backend matches a name it starts
/// with, so `etcd` selects `etcd-cluster` too; all when empty). S2 runs
/// fenced and unfenced on every lease-based backend; `S12` is the clients'
/// cut and `S12-member` (a cluster's leader cut from the other members),
/// `S13` the proxy's delays and `S13-loss` (iptables packet loss); the
/// second halves may be asked alone.
pub fn plan(scenarios: &[String], backends: &[String]) -> Vec<Job> {
    let chosen: Vec<String> = if scenarios.is_empty() {
        SCENARIOS.iter().map(|s| (*s).to_string()).collect()
    } else {
        scenarios.iter().map(|s| s.to_uppercase()).collect()
    };
    let chosen: Vec<String> = chosen
        .into_iter()
        .flat_map(|s| {
            if s == "S13" {
                vec![s, "S13-LOSS".to_string()]
            } else if s == "S12" {
                vec![s, "S12-MEMBER".to_string()]
            } else {
                vec![s]
            }
        })
        .collect();
    let mut jobs = Vec::new();
    for sc in chosen {
        for b in backends_for(&sc) {
            if !backends.is_empty() && !backends.iter().any(|w| b.starts_with(w.as_str())) {
                continue;
            }
            jobs.push(Job {
                scenario: match sc.as_str() {
                    "S13-LOSS" => "S13-loss".to_string(),
                    "S12-MEMBER" => "S12-member".to_string(),
                    _ => sc.clone(),
                },
                backend: (*b).to_string(),
                fenced: true,
            });
            if sc == "S2" && *b != "file" {
                jobs.push(Job {
                    scenario: sc.clone(),
                    backend: (*b).to_string(),
                    fenced: false,
                });
            }
        }
    }
    jobs
}

/// Runs one job.
pub async fn run(job: &Job, s: &Settings, bins: &Bins) -> Report {
    let b = job.backend.as_str();
    match job.scenario.as_str() {
        "S0" => scenarios::s0(b, s, bins).await,
        "S1" => scenarios::s1(b, s, bins).await,
        "S2" => scenarios::s2(b, job.fenced, s, bins).await,
        "S3" => probes::s3(b, s).await,
        "S4" => probes::s4(b, bins).await,
        "S10" => scenarios::s10(b, s, bins).await,
        "S11" => scenarios::s11(b, s, bins).await,
        "S12" => partition::s12(b, s, bins).await,
        "S12-member" | "S12-MEMBER" => member_partition::s12_member(b, s, bins).await,
        "S13" => scenarios::s13(b, s, bins).await,
        "S13-loss" | "S13-LOSS" => partition::s13_loss(b, s, bins).await,
        "S15" => probes::s15(b).await,
        other => {
            let mut r = Report::new(other, b, job.fenced);
            r.errors.push(format!("unknown scenario {other}"));
            r
        }
    }
}
