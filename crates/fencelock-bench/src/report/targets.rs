//! The targets of the benchmark issue, checked against one run.

use super::*;

impl Report {
    pub(super) fn evaluate(&self) -> Vec<Check> {
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

    pub(super) fn targets_md(&self) -> String {
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
}
