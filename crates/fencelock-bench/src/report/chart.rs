//! The SVG chart of hand-off latency and throughput.

use super::*;

impl Report {
    pub(super) fn svg(&self) -> String {
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

    pub(super) fn bars(&self, pick: impl Fn(&Measurement) -> Option<f64>) -> Vec<Bar> {
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
