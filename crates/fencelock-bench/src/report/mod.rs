//! The outputs: the markdown table, results.json, the targets, the SVG
//! chart, docs/performance.md and docs/backends.md.

mod chart;
mod docs;
mod prose;
mod targets;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use fencelock::{Capabilities, Expiry, Fairness, Fencing, Wakeup};
use serde_json::{json, Value};

use crate::{workspace_root, Config, Deployment, Measurement};

/// One bar of the chart: label, implementation, value.
type Bar = (String, String, f64);

/// One target, met or missed.
#[derive(Debug, Clone)]
pub struct Check {
    /// Which target.
    pub target: &'static str,
    /// Where.
    pub what: String,
    /// Whether it was met.
    pub met: bool,
    /// The numbers behind it.
    pub detail: String,
}

/// Everything one run produced.
pub struct Report {
    cfg: Config,
    deployments: Vec<Deployment>,
    results: Vec<Measurement>,
    caps: Vec<(String, Capabilities)>,
    elapsed: Duration,
    failures: Vec<String>,
    checks: Vec<Check>,
    date: String,
    machine: String,
}

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| {
            format!(", {} GiB RAM", (kb + (1 << 19)) >> 20)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!(", Linux {}", s.trim()))
        .unwrap_or_default();
    let versions: Vec<String> = [
        ("redis-server", "Redis"),
        ("zookeeper", "ZooKeeper"),
        ("etcd-server", "etcd"),
    ]
    .iter()
    .filter_map(|(pkg, name)| {
        sh("dpkg-query", &["-W", "-f=${Version}", pkg]).map(|v| format!("{name} {v}"))
    })
    .collect();
    format!(
        "{cores} cores ({cpu}){mem}{kernel}; shared with other builds and noisy; servers: {}",
        if versions.is_empty() {
            "versions unknown".to_string()
        } else {
            format!("{} (Debian packages)", versions.join(", "))
        }
    )
}

fn us(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v >= 10_000.0 => format!("{:.0} ms", v / 1000.0),
        Some(v) if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
        Some(v) => format!("{v:.0} µs"),
    }
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn ex(m: &Measurement, k: &str) -> Option<f64> {
    m.extras.get(k).and_then(Value::as_f64)
}

impl Report {
    /// Builds the report and evaluates the targets.
    pub fn new(
        cfg: &Config,
        deployments: &[Deployment],
        results: Vec<Measurement>,
        caps: Vec<(String, Capabilities)>,
        elapsed: Duration,
        failures: Vec<String>,
    ) -> Self {
        let mut r = Report {
            cfg: cfg.clone(),
            deployments: deployments.to_vec(),
            results,
            caps,
            elapsed,
            failures,
            checks: Vec::new(),
            date: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            machine: machine(),
        };
        r.checks = r.evaluate();
        r
    }

    fn find(&self, dep: &str, imp: &str, scenario: &str, clients: usize) -> Option<&Measurement> {
        self.results.iter().find(|m| {
            m.deployment == dep
                && m.implementation == imp
                && m.scenario == scenario
                && m.clients == clients
        })
    }

    fn renewal(&self, dep: &str, held: u64) -> Option<&Measurement> {
        self.results.iter().find(|m| {
            m.deployment == dep
                && m.scenario == "renewal"
                && m.extras.get("held").and_then(Value::as_u64) == Some(held)
        })
    }

    fn results_json(&self) -> Value {
        Value::Array(
            self.results
                .iter()
                .map(|m| {
                    json!({
                        "backend": m.backend,
                        "deployment": m.deployment,
                        "scenario": m.scenario,
                        "implementation": m.implementation,
                        "clients": m.clients,
                        "ops_per_sec": m.ops_per_sec,
                        "p50_us": m.p50_us,
                        "p99_us": m.p99_us,
                        "extras": m.extras,
                    })
                })
                .collect(),
        )
    }

    fn table_md(&self) -> String {
        let mut s = String::from(
            "| deployment | scenario | clients | implementation | ops/s | p50 | p99 | server requests / cycle | round trips / cycle | hot key: hand-off to another client, p50 · top client's share of grants |\n|---|---|---:|---|---:|---:|---:|---:|---:|---|\n",
        );
        for m in self.results.iter().filter(|m| m.scenario != "renewal") {
            let errs = m.extras.get("errors").and_then(Value::as_u64).unwrap_or(0);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} |",
                m.deployment,
                m.scenario.replace('_', " "),
                m.clients,
                m.implementation,
                rate(m.ops_per_sec),
                if errs > 0 {
                    format!(" ({errs} errors)")
                } else {
                    String::new()
                },
                us(m.p50_us),
                us(m.p99_us),
                ex(m, "server_requests_per_cycle").map_or_else(String::new, |v| format!("{v:.1}")),
                ex(m, "round_trips_per_cycle").map_or_else(String::new, |v| format!("{v:.1}")),
                if m.scenario == "hot_key" {
                    format!(
                        "{} · {:.0} %",
                        us(ex(m, "cross_client_handoff_p50_us")),
                        ex(m, "max_share_of_grants_by_one_client").unwrap_or(0.0) * 100.0
                    )
                } else {
                    String::new()
                },
            );
        }
        s
    }

    fn renewal_md(&self) -> String {
        let mut s = String::from(
            "| deployment | held locks | server requests / period | round trips / period / server | etcd keep-alives / period | RSS growth | RSS per lock | time to take them |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for m in self.results.iter().filter(|m| m.scenario == "renewal") {
            let f = |k: &str, d: usize| {
                ex(m, k).map_or_else(|| "–".into(), |v| format!("{v:.prec$}", prec = d))
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} s |",
                m.deployment,
                m.extras.get("held").and_then(Value::as_u64).unwrap_or(0),
                f("requests_per_period", 1),
                f("round_trips_per_period_per_server", 1),
                f("keepalives_per_period", 1),
                ex(m, "rss_delta_bytes")
                    .map_or_else(|| "–".into(), |v| format!("{:.1} MiB", v / 1024.0 / 1024.0)),
                ex(m, "rss_per_lock_bytes").map_or_else(|| "–".into(), |v| format!("{v:.0} B")),
                f("acquire_all_secs", 2),
            );
        }
        s
    }

    /// The text printed on stdout at the end.
    pub fn terminal(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# fencelock-bench results{}\n",
            if self.cfg.smoke { " (smoke run)" } else { "" }
        );
        s.push_str(&self.table_md());
        s.push_str("\n## Renewal cost\n\n");
        s.push_str(&self.renewal_md());
        s.push_str("\n## Targets\n\n");
        s.push_str(&self.targets_md());
        if !self.failures.is_empty() {
            s.push_str("\n## Failures\n\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }

    /// Writes results.json, targets.json, table.md, chart.svg and, on full
    /// runs, docs/performance.md and docs/backends.md.
    pub fn write_all(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.cfg.out)?;
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        std::fs::write(
            self.cfg.out.join("results.json"),
            pretty(&self.results_json()),
        )?;
        let targets: Vec<Value> = self
            .checks
            .iter()
            .map(|c| json!({"target": c.target, "where": c.what, "met": c.met, "detail": c.detail}))
            .collect();
        std::fs::write(
            self.cfg.out.join("targets.json"),
            pretty(&Value::Array(targets)),
        )?;
        std::fs::write(self.cfg.out.join("table.md"), self.terminal())?;
        std::fs::write(self.cfg.out.join("chart.svg"), self.svg())?;
        if self.cfg.docs && !self.cfg.smoke {
            let docs = workspace_root().join("docs");
            std::fs::create_dir_all(&docs)?;
            write_if_changed(&docs.join("performance.md"), &self.performance_md())?;
            write_if_changed(&docs.join("backends.md"), &self.backends_md())?;
        }
        Ok(())
    }
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text)
}
