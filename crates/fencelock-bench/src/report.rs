//! The outputs: the markdown table, results.json, the targets, the SVG
//! chart, docs/performance.md and docs/backends.md.

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

    fn evaluate(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for d in &self.deployments {
            // 1. cycle time <= 1.25x the floor.
            if let (Some(f), Some(fl)) = (
                self.find(d.name, "fencelock", "cycle", 1),
                self.find(d.name, "floor", "cycle", 1),
            ) {
                if let (Some(a), Some(b)) = (f.p50_us, fl.p50_us) {
                    let ratio = a / b;
                    let mean = fl.ops_per_sec / f.ops_per_sec.max(1e-9);
                    checks.push(Check {
                        target: "cycle ≤ 1.25× floor",
                        what: d.name.into(),
                        met: ratio <= 1.25,
                        detail: format!(
                            "fencelock p50 {} vs floor {}: {ratio:.2}× (mean cycle time {mean:.2}×)",
                            us(Some(a)),
                            us(Some(b))
                        ),
                    });
                }
            }
            // 2. uncontended throughput >= each peer's.
            for &imp in d.impls {
                let peer = imp.name();
                if peer == "fencelock" || peer == "floor" {
                    continue;
                }
                let mut cases = vec![("cycle", 1)];
                cases.extend(self.cfg.spread.iter().map(|&c| ("spread", c)));
                for (scenario, c) in cases {
                    if let (Some(f), Some(p)) = (
                        self.find(d.name, "fencelock", scenario, c),
                        self.find(d.name, peer, scenario, c),
                    ) {
                        checks.push(Check {
                            target: "uncontended throughput ≥ peer",
                            what: format!("{} vs {peer}, {scenario} C={c}", d.name),
                            met: f.ops_per_sec >= p.ops_per_sec,
                            detail: format!(
                                "{} vs {} ops/s ({:.2}×)",
                                rate(f.ops_per_sec),
                                rate(p.ops_per_sec),
                                f.ops_per_sec / p.ops_per_sec.max(1e-9)
                            ),
                        });
                    }
                }
            }
            // 3. hand-off p50 <= 2 ms on single-server backends.
            if d.single_server {
                for &c in &self.cfg.hot {
                    if let Some(f) = self.find(d.name, "fencelock", "hot_key", c) {
                        checks.push(Check {
                            target: "hot-key hand-off p50 ≤ 2 ms",
                            what: format!("{} C={c}", d.name),
                            met: f.p50_us.is_some_and(|v| v <= 2000.0),
                            detail: format!("p50 {} (p99 {})", us(f.p50_us), us(f.p99_us)),
                        });
                    }
                }
            }
            // 4. hot-key grants/s >= 5x rslock's.
            for &c in &self.cfg.hot {
                if let (Some(f), Some(p)) = (
                    self.find(d.name, "fencelock", "hot_key", c),
                    self.find(d.name, "rslock", "hot_key", c),
                ) {
                    let ratio = f.ops_per_sec / p.ops_per_sec.max(1e-9);
                    checks.push(Check {
                        target: "hot-key grants/s ≥ 5× rslock",
                        what: format!("{} C={c}", d.name),
                        met: ratio >= 5.0,
                        detail: format!(
                            "{} vs {} grants/s ({ratio:.1}×)",
                            rate(f.ops_per_sec),
                            rate(p.ops_per_sec)
                        ),
                    });
                }
            }
            // 5. renewal traffic.
            if d.renewal {
                let base = self.renewal(d.name, 0);
                let key = match d.backend {
                    "redis" | "redlock" => "round_trips_per_period_per_server",
                    _ => "requests_per_period",
                };
                let base_v = base.and_then(|m| ex(m, key)).unwrap_or(0.0);
                let one = self.renewal(d.name, 1).and_then(|m| ex(m, key));
                let max_h = self.cfg.held.iter().copied().max().unwrap_or(1);
                match d.backend {
                    "redis" | "redlock" => {
                        for &h in &self.cfg.held {
                            if let Some(v) = self.renewal(d.name, h as u64).and_then(|m| ex(m, key))
                            {
                                let extra = v - base_v;
                                checks.push(Check {
                                    target: "renewal: one round trip per period per connection (Redis)",
                                    what: format!("{} H={h}", d.name),
                                    met: extra <= 1.5,
                                    detail: format!(
                                        "{extra:.1} round trips per period per server above the idle {base_v:.1}"
                                    ),
                                });
                            }
                        }
                    }
                    "etcd" | "zookeeper" => {
                        if let (Some(one), Some(big)) = (
                            one,
                            self.renewal(d.name, max_h as u64).and_then(|m| ex(m, key)),
                        ) {
                            let (one_x, big_x) = (one - base_v, big - base_v);
                            checks.push(Check {
                                target: "renewal: O(1) keep-alive traffic (etcd, ZooKeeper)",
                                what: format!("{} H=1 vs H={max_h}", d.name),
                                met: big_x <= one_x.max(0.0) * 1.5 + 1.0,
                                detail: format!(
                                    "{big_x:.1} vs {one_x:.1} requests per period above the idle {base_v:.1}"
                                ),
                            });
                        }
                    }
                    _ => {}
                }
                if let Some(m) = self.renewal(d.name, max_h as u64) {
                    let per = ex(m, "rss_per_lock_bytes").unwrap_or(0.0);
                    let at_10k = per * 10_000.0;
                    checks.push(Check {
                        target: "10,000 held locks < 50 MiB RSS",
                        what: format!("{} (H={max_h})", d.name),
                        met: at_10k < 50.0 * 1024.0 * 1024.0,
                        detail: format!(
                            "{:.0} B per lock: {:.1} MiB for 10,000{}",
                            per,
                            at_10k / 1024.0 / 1024.0,
                            if max_h == 10_000 {
                                ""
                            } else {
                                " (extrapolated)"
                            }
                        ),
                    });
                }
            }
        }
        checks
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

    fn targets_md(&self) -> String {
        let mut s = String::new();
        let met = self.checks.iter().filter(|c| c.met).count();
        let _ = writeln!(
            s,
            "{met} of {} target checks met, {} missed.\n",
            self.checks.len(),
            self.checks.len() - met
        );
        s.push_str("| result | target | where | numbers |\n|---|---|---|---|\n");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                if c.met { "met" } else { "**MISSED**" },
                c.target,
                c.what,
                c.detail
            );
        }
        s
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

    fn svg(&self) -> String {
        let hot_c = self
            .cfg
            .hot
            .get(self.cfg.hot.len() / 2)
            .copied()
            .unwrap_or(2);
        let panels: Vec<(String, String, Vec<Bar>)> = vec![
            (
                "Lock cycle, one client: acquire + release per second (log scale)".into(),
                "ops/s".into(),
                self.bars(|m| (m.scenario == "cycle").then_some(m.ops_per_sec)),
            ),
            (
                format!("Hot key, {hot_c} clients: grants per second (log scale)"),
                "grants/s".into(),
                self.bars(|m| {
                    (m.scenario == "hot_key" && m.clients == hot_c).then_some(m.ops_per_sec)
                }),
            ),
            (
                format!("Hot key, {hot_c} clients: hand-off latency p50, release → next grant (log scale)"),
                "µs".into(),
                self.bars(|m| (m.scenario == "hot_key" && m.clients == hot_c).then_some(m.p50_us).flatten()),
            ),
        ];
        let (w, label_w, row, gap, top) = (960.0, 300.0, 16.0, 46.0, 40.0);
        let bar_w = w - label_w - 80.0;
        let height: f64 = top
            + panels
                .iter()
                .map(|(_, _, b)| b.len() as f64 * row + gap)
                .sum::<f64>()
            + 20.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            s,
            r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">fencelock-bench{} — {}, {}</text>"#,
            if self.cfg.smoke { " (smoke)" } else { "" },
            esc(&self.date),
            esc(&self.cfg.command)
        );
        let mut y = top;
        for (title, unit, bars) in &panels {
            let _ = writeln!(
                s,
                r#"<text x="10" y="{:.0}" font-size="12" font-weight="bold">{}</text>"#,
                y + 14.0,
                esc(title)
            );
            y += 22.0;
            let vals: Vec<f64> = bars.iter().map(|b| b.2).filter(|v| *v > 0.0).collect();
            let lo = vals
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
                .max(1e-3)
                .log10()
                .floor();
            let hi = vals
                .iter()
                .copied()
                .fold(0.0, f64::max)
                .max(1e-3)
                .log10()
                .ceil()
                .max(lo + 1.0);
            let x_of = |v: f64| label_w + (v.max(1e-3).log10() - lo) / (hi - lo) * bar_w;
            let mut e = lo;
            while e <= hi {
                let x = x_of(10f64.powf(e));
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" fill="#666" text-anchor="middle">{}</text>"##,
                    y + bars.len() as f64 * row,
                    y + bars.len() as f64 * row + 12.0,
                    pow10_label(e)
                );
                e += 1.0;
            }
            for (label, imp, v) in bars {
                let color = match imp.as_str() {
                    "fencelock" => "#2b6cb0",
                    "floor" => "#a0aec0",
                    _ => "#dd6b20",
                };
                let x1 = x_of(*v);
                let _ = writeln!(
                    s,
                    r#"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text><rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}">{} {}</text>"#,
                    label_w - 6.0,
                    y + row * 0.75,
                    esc(label),
                    y + 2.0,
                    (x1 - label_w).max(1.0),
                    row - 4.0,
                    x1 + 4.0,
                    y + row * 0.75,
                    rate(*v),
                    esc(unit)
                );
                y += row;
            }
            y += gap - 22.0;
        }
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.0}" fill="#666">blue: fencelock · grey: floor (bare round trips) · orange: peers (rslock, etcd Lock RPC, zookeeper-client recipe)</text>"##,
            height - 6.0
        );
        s.push_str("</svg>\n");
        s
    }

    fn bars(&self, pick: impl Fn(&Measurement) -> Option<f64>) -> Vec<Bar> {
        self.results
            .iter()
            .filter_map(|m| {
                pick(m).map(|v| {
                    (
                        format!("{} · {}", m.deployment, m.implementation),
                        m.implementation.clone(),
                        v,
                    )
                })
            })
            .collect()
    }

    fn header(&self, title: &str) -> String {
        format!(
            "# {title}\n\n<!-- Generated by `{cmd}` (crates/fencelock-bench); do not edit by hand: run it again. -->\n\n\
             Measured by **`{cmd}`** on {date}, in {secs:.0} s, on this machine: {machine}.\n\
             Every server ran on 127.0.0.1 beside the benchmark, started by the conformance fixtures\n\
             (Redis without persistence; ZooKeeper with `forceSync=no`; etcd with its data dir on tmpfs\n\
             and `--heartbeat-interval=10 --election-timeout=100`). Numbers are medians of {reps}\n\
             repetitions of {rs:.1} s each; on a shared 2-core machine they move by ±20 % or more\n\
             between runs, so read ratios, not digits.\n",
            cmd = self.cfg.command,
            date = self.date,
            secs = self.elapsed.as_secs_f64(),
            machine = self.machine,
            reps = self.cfg.reps,
            rs = self.cfg.secs,
        )
    }

    fn performance_md(&self) -> String {
        let mut s = self.header("Performance");
        s.push_str(METHOD);
        s.push_str("\n## Targets\n\n");
        s.push_str(&self.targets_md());
        s.push_str(WHY);
        s.push_str("\n## Results\n\n");
        s.push_str(&self.table_md());
        s.push_str("\n## Renewal cost (one client holding H locks)\n\n");
        s.push_str(&self.renewal_md());
        s.push_str(RENEWAL_NOTES);
        if !self.failures.is_empty() {
            s.push_str("\n## Failures in this run\n\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s.push_str(
            "\nThe run also writes `target/fencelock-bench/results.json` (one object per measurement),\n\
             `targets.json`, `table.md` and `chart.svg` (cycle throughput, hot-key grants/s and hand-off\n\
             latency per deployment and implementation).\n",
        );
        s
    }

    fn cap(&self, dep: &str) -> Option<&Capabilities> {
        self.caps.iter().find(|(d, _)| d == dep).map(|(_, c)| c)
    }

    fn measured(&self, dep: &str) -> (String, String) {
        let hot_c = self
            .cfg
            .hot
            .get(self.cfg.hot.len() / 2)
            .copied()
            .unwrap_or(2);
        let cycle = self.find(dep, "fencelock", "cycle", 1).map_or_else(
            || "not measured".into(),
            |m| format!("{} ({} /s)", us(m.p50_us), rate(m.ops_per_sec)),
        );
        let hand = self.find(dep, "fencelock", "hot_key", hot_c).map_or_else(
            || "not measured".into(),
            |m| {
                format!(
                    "{}, p99 {} ({} grants/s, {hot_c} clients)",
                    us(m.p50_us),
                    us(m.p99_us),
                    rate(m.ops_per_sec)
                )
            },
        );
        (cycle, hand)
    }

    fn backends_md(&self) -> String {
        let cols = [
            ("memory", "memory", None),
            ("file", "file", None),
            ("Redis (1 server)", "redis", Some("redis-cluster")),
            ("Redlock (3 servers)", "redlock-3", None),
            ("ZooKeeper", "zookeeper", Some("zookeeper-ensemble")),
            ("etcd", "etcd", Some("etcd-cluster")),
        ];
        let mut s = self.header("Choosing a backend");
        s.push_str(
            "\nOne row per question a user asks; capability rows come from each backend's\n\
             `capabilities()` (read during the run) and its crate README, Redis HA from\n\
             [redis-ha.md](redis-ha.md); the measured rows come from the run named above\n\
             (details in [performance.md](performance.md)). Latencies are p50 on loopback.\n\n",
        );
        let _ = write!(s, "| |");
        for (name, _, _) in &cols {
            let _ = write!(s, " {name} |");
        }
        s.push_str("\n|---|");
        for _ in &cols {
            s.push_str("---|");
        }
        s.push('\n');
        let row = |s: &mut String, title: &str, f: &dyn Fn(&str, Option<&str>) -> String| {
            let _ = write!(s, "| **{title}** |");
            for (_, dep, cluster) in &cols {
                let _ = write!(s, " {} |", f(dep, *cluster).replace('|', "\\|"));
            }
            s.push('\n');
        };
        row(&mut s, "consistency model", &|d, _| {
            CONSISTENCY
                .iter()
                .find(|(k, _)| *k == d)
                .map_or("", |(_, v)| v)
                .to_string()
        });
        row(&mut s, "fencing strength", &|d, _| {
            let c = self.cap(d);
            let declared = c.map_or_else(
                || "–".into(),
                |c| match c.fencing {
                    Fencing::Strict => "`Strict`".to_string(),
                    Fencing::BestEffort => "`BestEffort`".to_string(),
                    _ => format!("{:?}", c.fencing),
                },
            );
            format!(
                "{declared}: {}",
                FENCING.iter().find(|(k, _)| *k == d).map_or("", |(_, v)| v)
            )
        });
        row(&mut s, "fairness", &|d, _| {
            self.cap(d).map_or_else(
                || "–".into(),
                |c| match c.fairness {
                    Fairness::Fifo => "`Fifo`: first come, first served".to_string(),
                    Fairness::Unfair => "`Unfair`: any waiter may win".to_string(),
                    _ => format!("{:?}", c.fairness),
                },
            )
        });
        row(&mut s, "how waiters wake", &|d, _| {
            let declared = self.cap(d).map_or_else(
                || "–".into(),
                |c| match c.wakeup {
                    Wakeup::Notification => "`Notification`".to_string(),
                    Wakeup::Polling => "`Polling`".to_string(),
                    _ => format!("{:?}", c.wakeup),
                },
            );
            format!(
                "{declared}: {}",
                WAKE.iter().find(|(k, _)| *k == d).map_or("", |(_, v)| v)
            )
        });
        row(&mut s, "a holder crashes", &|d, _| {
            let c = self.cap(d);
            let bound = c.map_or_else(String::new, |c| match c.expiry {
                Expiry::Ttl => "the grant's TTL runs out (default 30 s; renewed every TTL/3 while the holder lives)".into(),
                Expiry::Session => format!(
                    "its session/lease expires ({}) and the store deletes the grant",
                    c.session_timeout.map_or_else(|| "the configured timeout".into(), |t| format!("{t:?} here"))
                ),
                Expiry::Process => "the kernel drops the `flock` the moment the process dies".into(),
                _ => format!("{:?}", c.expiry),
            });
            format!(
                "{bound}{}",
                CRASH.iter().find(|(k, _)| *k == d).map_or("", |(_, v)| v)
            )
        });
        row(&mut s, "the store fails over", &|d, _| {
            let mut t = self
                .cap(d)
                .map_or_else(String::new, |c| c.store_failover.to_string());
            if d == "redis" {
                t.push_str(". Sentinel (`redis+sentinel://`) follows the new primary; `wait_replicas=K` narrows but does not close the gap (measured in redis-ha.md)");
            }
            t
        });
        row(&mut s, "the store restarts", &|d, _| {
            self.cap(d)
                .map_or_else(String::new, |c| c.store_restart.to_string())
        });
        row(&mut s, "operational cost (what must run)", &|d, _| {
            OPS.iter()
                .find(|(k, _)| *k == d)
                .map_or("", |(_, v)| v)
                .to_string()
        });
        row(
            &mut s,
            "measured: lock cycle (acquire + release), one client",
            &|d, cl| {
                let (c, _) = self.measured(d);
                match cl {
                    Some(cl) => format!("{c}; {}: {}", cl, self.measured(cl).0),
                    None => c,
                }
            },
        );
        row(
            &mut s,
            "measured: hot-key hand-off (release → next grant)",
            &|d, cl| {
                let (_, h) = self.measured(d);
                match cl {
                    Some(cl) => format!("{h}; {}: {}", cl, self.measured(cl).1),
                    None => h,
                }
            },
        );
        s.push_str("\n## The origin notes' claims, checked\n\n");
        s.push_str(&self.claims());
        s.push_str(BACKENDS_TAIL);
        s
    }

    fn claims(&self) -> String {
        let cyc = |d: &str| self.find(d, "fencelock", "cycle", 1).and_then(|m| m.p50_us);
        let hot_c = self
            .cfg
            .hot
            .get(self.cfg.hot.len() / 2)
            .copied()
            .unwrap_or(2);
        let hand = |d: &str| {
            self.find(d, "fencelock", "hot_key", hot_c)
                .and_then(|m| m.p50_us)
        };
        let (r, z, e) = (cyc("redis"), cyc("zookeeper"), cyc("etcd"));
        let (hr, hz, he) = (hand("redis"), hand("zookeeper"), hand("etcd"));
        let (rc, zc, ec) = (
            cyc("redis-cluster"),
            cyc("zookeeper-ensemble"),
            cyc("etcd-cluster"),
        );
        let mut s =
            String::from("| claim | verdict | measured (fencelock, p50) |\n|---|---|---|\n");
        let fastest = match (r, z, e) {
            (Some(r), Some(z), Some(e)) if r <= z && r <= e => "**confirmed** among the networked stores (memory and file, which need no network, are faster still but serve one process or one host)",
            (Some(_), Some(_), Some(_)) => "**corrected**: another store was faster in this run",
            _ => "not measured in this run",
        };
        let _ = writeln!(
            s,
            "| \"Redis is the fastest\" | {fastest} | cycle: Redis {}, ZooKeeper {}, etcd {}; hand-off: Redis {}, ZooKeeper {}, etcd {} |",
            us(r), us(z), us(e), us(hr), us(hz), us(he)
        );
        let slowest = match (r, z, e) {
            (Some(r), Some(z), Some(e)) if e >= r && e >= z => {
                if e > z * 1.2 {
                    "**confirmed** for the lock cycle".to_string()
                } else {
                    "**confirmed, narrowly**: etcd and ZooKeeper are within 20 % of each other".to_string()
                }
            }
            (Some(_), Some(z), Some(e)) => format!(
                "**corrected**: on one node etcd ({}) was faster than ZooKeeper ({}) for the lock cycle; the gap comes from round trips per cycle (see performance.md), not from Raft",
                us(Some(e)),
                us(Some(z))
            ),
            _ => "not measured in this run".into(),
        };
        let _ = writeln!(
            s,
            "| \"etcd is the slowest\" | {slowest} | 3-node: Redis Cluster {}, ZooKeeper ensemble {}, etcd cluster {} |",
            us(rc), us(zc), us(ec)
        );
        let zk_fair = self
            .cap("zookeeper")
            .is_some_and(|c| c.fairness == Fairness::Fifo);
        let zk_strict = self
            .cap("zookeeper")
            .is_some_and(|c| c.fencing == Fencing::Strict);
        let slower = match (r, z) {
            (Some(r), Some(z)) if z > r => {
                format!("slower: **confirmed** ({:.1}× Redis's cycle time)", z / r)
            }
            (Some(r), Some(z)) => {
                format!("slower: **corrected** ({:.1}× Redis's cycle time)", z / r)
            }
            _ => "slower: not measured".into(),
        };
        let _ = writeln!(
            s,
            "| \"ZooKeeper is slower than Redis, ordered and consistent\" | {slower}; ordered: **{}** (fairness `{}`: waiters are served in sequence-node order); consistent: **{}** (fencing `{}`: the token is the node's `czxid`, linearizable writes through the leader) | cycle: ZooKeeper {} vs Redis {} |",
            if zk_fair { "confirmed" } else { "corrected" },
            self.cap("zookeeper").map_or_else(|| "?".into(), |c| format!("{:?}", c.fairness)),
            if zk_strict { "confirmed" } else { "corrected" },
            self.cap("zookeeper").map_or_else(|| "?".into(), |c| format!("{:?}", c.fencing)),
            us(z),
            us(r)
        );
        s
    }
}

fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn pow10_label(e: f64) -> String {
    let v = 10f64.powf(e);
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

const METHOD: &str = "
## What is measured

- **cycle**: one client, `acquire` + `release` on a fresh key each time, one after the other:
  cycles per second, and the p50/p99 of one cycle.
- **spread**: C tasks (1, 8, 64), **each with its own client** (its own connection, session or
  lease, as C separate processes would have), cycling on distinct fresh keys: total cycles per
  second; the latency is one cycle.
- **hot key**: C tasks (2, 8, 32), each with its own client, taking and releasing one key as
  fast as they can: grants per second, and the **hand-off latency**: from the instant a holder
  starts its release to the instant the next holder's `acquire` returns (in-process `Instant`s),
  p50 and p99.
- **renewal cost**: one client holding H fresh locks (0, 1, 100, 10,000) with automatic
  renewal; the servers' own request counters are read over a fixed window (Redis `INFO stats`:
  `total_commands_processed` and `total_reads_processed`, one read event being about one round
  trip; etcd `/metrics`: `grpc_server_msg_received_total`; ZooKeeper `mntr`:
  `zk_packets_received`) and scaled to one renewal period (Redis: TTL 3 s, renewal every 1 s;
  etcd: lease 3 s, keep-alive every 1 s; ZooKeeper: session 4 s, checked every 1.33 s). Resident
  memory is `VmRSS` before and after taking the 10,000 locks, in a fresh child process
  (`fencelock-bench --rss-probe`), since the heap left by earlier scenarios hides the growth.

fencelock runs with its defaults (TTL 30 s, automatic renewal on), through `fencelock::connect`.
Beside it, on the same servers in the same run:

- **floor**: the same client library doing only the round trips a lock cycle cannot avoid —
  Redis: `SET key owner NX PX` + a compare-and-delete script (`EVALSHA`), redis-rs; etcd: one
  put-if-absent transaction + one delete, etcd-client; ZooKeeper: one ephemeral-sequential
  create + one get-children + one delete under a parent made beforehand, zookeeper-client.
  The floor cannot wait, so it has no hot-key numbers.
- **peers**: `rslock` 0.10 (Redlock; on 1 Redis and on the same 3 Redis servers as fencelock's
  `redlock://`; waits by retrying `lock`, 3 tries 0–200 ms apart), etcd's server-side
  Lock/Unlock RPC through etcd-client (`etcd-lock-rpc`, one lease per client), and
  zookeeper-client's own lock recipe (`zookeeper-client-lock`, `Client::lock` with a
  Curator-style prefix; released by deleting its node and waiting for the answer).
";

const WHY: &str = "
Why targets are missed, where they are (the `server requests / cycle` column of the results
counts what the servers saw; file and line references are for the maintainers):

- **Redis cycle vs floor.** Both make 2 round trips per cycle (`round trips / cycle` below);
  fencelock's scripts do more inside Redis (`INCR` of the fence counter, the owner:token value,
  a `PUBLISH` on release: 8 commands against the floor's 4) and the client does more around
  them (a guard and its watchdog task per grant, a bound on every call). The gap is client and
  script work, not round trips.
- **ZooKeeper cycle vs floor and vs zookeeper-client's recipe.** About 8 server requests per
  cycle against the floor's 3 and the recipe's 5: on a fresh key fencelock's create fails with
  `NoNode`, it creates the CONTAINER parent (and tolerates `NodeExists`), creates again, lists
  the children, sets an `exists` watch on its own node (to see revocation), and deletes; several
  of these are writes, which cost most (crates/fencelock-zookeeper/src/lock.rs, the create path
  near line 122 and 156).
- **etcd cycle vs floor and vs the Lock RPC.** 3 requests per cycle against 2 (enqueue
  transaction, a read to confirm the key is still ours, delete), yet more than 1.5× the time:
  the rest is client-side (session lease lookup, endpoint handling).
- **etcd hot key (fencelock and the Lock RPC alike).** Both wait with a watch that starts at
  an old revision (fencelock: the predecessor's create revision,
  crates/fencelock-etcd/src/grant.rs line 109; the Lock RPC: the revision of its read). etcd
  registers such a watcher as *unsynced*, and unsynced watchers are only caught up by a loop
  that runs every 100 ms. A waiter that queued while the holder held (with 2 clients: every
  other grant) hears of the release up to 100 ms late: p99 near 100 ms and only 20–70 grants/s
  with 2–8 clients. The p50 passes because the other hand-offs go to waiters whose watch had
  already caught up. Starting the watch at the read's header revision + 1 makes it a synced
  watcher, notified at once on the delete (a delete that raced the read is still delivered, by
  the same catch-up loop): a cheap fix.
- **Redis renewal at H = 10,000.** Up to H = 100 it is one round trip per period: locks
  taken within one 2 ms window renew in one pipeline. At 10,000 three things add up: a batch
  holds at most 512 renewals (`with_renew_batch_max`, default 512), so 10,000 need at least 20
  pipelines; Redis reads a pipeline 16 KiB at a time, so a big pipeline counts as several read
  events (about 70 for 10,000 `EVALSHA`s even in one pipeline: the counter overstates round
  trips there); and each guard's watchdog renews on its own clock (TTL/3 after its own grant),
  so locks taken over more than 2 ms fall into different windows. A cheap fix for the last:
  round each guard's renewal instant to a per-client grid, e.g. a multiple of the batch window
  or of TTL/6 (crates/fencelock-core/src/watchdog.rs, `renew_loop`, the
  `sleep_until(state.basis + every)`).
- **etcd memory per held lock.** Every etcd grant keeps its own `revoked` watch
  (crates/fencelock-etcd/src/lock.rs line 485, `wait_deleted` in grant.rs), and etcd-client's
  `watch` opens a new gRPC stream per call: tens of KiB of HTTP/2 stream state per lock in the
  client (and a watch stream per lock on the server). A shared watch stream per client
  (etcd-client's `Watcher::watch` adds watches to an open stream), or one prefix watch on the
  client's own contender keys, would make it a few hundred bytes.
- **Hot key vs rslock.** rslock's grants/s are high because it is unfair: the client that just
  released tries again at once and wins, while the others sleep 0–200 ms between retries (see
  the top client's share of grants, and the hand-off to *another* client, which is what
  waiters experience). fencelock's Redis backend is unfair too, but its waiters are woken by
  pub/sub and compete on every release. Grants/s alone rewards monopolising the lock.
";

const RENEWAL_NOTES: &str = "
H = 0 is the idle client (connection, session or lease alone): the traffic to compare against.
Redis and Redlock renew each grant (`renew.lua`, batched per client); etcd and ZooKeeper renew
nothing per lock: one lease keep-alive (etcd) or one session check (ZooKeeper) covers every
lock of the client. memory and file have no server (file locks are held by the kernel and never
renewed).
";

const CONSISTENCY: &[(&str, &str)] = &[
    ("memory", "one process; linearizable (one mutex)"),
    ("file", "one host; the kernel's `flock`"),
    ("redis", "one primary, single-threaded: linearizable while it lives; replication (Sentinel, Cluster) is asynchronous"),
    ("redlock-3", "majority of independent servers, no replication; relies on bounded clock drift and pauses"),
    ("zookeeper", "ZAB consensus: linearizable writes, sequentially consistent reads"),
    ("etcd", "Raft consensus: linearizable reads and writes"),
];

const FENCING: &[(&str, &str)] = &[
    ("memory", "a counter per key in the process"),
    ("file", "a counter fsynced in the lock file; rises across processes and host restarts"),
    ("redis", "`INCR` counter; a restart without `appendfsync always` or a failover to an async replica can repeat or lower it"),
    ("redlock-3", "the highest per-node counter of the majority, written back: an ordering hint; a node restarted empty breaks it"),
    ("zookeeper", "the lock node's `czxid`: rises across the ensemble, restarts and leader changes"),
    ("etcd", "the contender key's create revision: rises across the cluster and restarts"),
];

const WAKE: &[(&str, &str)] = &[
    ("memory", "in-process notification"),
    ("file", "polling, 1 ms doubling to 20 ms"),
    ("redis", "pub/sub message on release, one subscription connection per client; a capped re-check is the safety net"),
    ("redlock-3", "pub/sub on every node; split votes retry after a random pause up to 30 ms"),
    ("zookeeper", "a watch on the predecessor node only (no herd)"),
    ("etcd", "a watch on the predecessor key only"),
];

const CRASH: &[(&str, &str)] = &[
    ("memory", "; a process crash takes the store with it"),
    ("file", ""),
    ("redis", ""),
    ("redlock-3", ""),
    ("zookeeper", "; others wait at most that long"),
    ("etcd", "; others wait at most that long"),
];

const OPS: &[(&str, &str)] = &[
    ("memory", "nothing: tasks of one process only"),
    ("file", "nothing: processes of one host (not over NFS)"),
    ("redis", "one Redis (~12 MB); for HA, Sentinel (3 sentinels + replicas) or a Cluster (≥ 3 primaries), both with the async-replication caveat"),
    ("redlock-3", "3 or 5 independent Redis servers, no replication; restart a node only after the longest TTL or run `appendfsync always`"),
    ("zookeeper", "a JVM per server (~60–70 MB with a small heap); 3 or 5 for HA"),
    ("etcd", "one etcd (~25–50 MB) on a fast disk (fsync per write); 3 or 5 for HA"),
];

const BACKENDS_TAIL: &str = "
## In short

- **One process**: memory. **One host, nothing to run**: file (the kernel frees a dead
  holder's lock at once, and its tokens are strict).
- **Fastest networked lock, and you already run Redis**: Redis, with `BestEffort` tokens:
  a failover or a restart without `appendfsync always` can hand out a second grant.
- **Correctness first (strict fencing, FIFO, failover without a second holder)**: ZooKeeper
  or etcd; both cost a few more round trips per cycle than Redis (see the measured rows) and a
  consensus cluster to run.
- **Redlock** buys tolerance of a minority of Redis servers down, not strict fencing.
";
