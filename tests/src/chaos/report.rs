//! One scenario on one backend: the figures, as a line and as JSON.

use serde::Serialize;

use super::checker::Findings;
use super::resource::Stats;

/// The figures of one scenario on one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// `S0`, `S1`, ...
    pub scenario: String,
    /// The backend (fixture name).
    pub backend: String,
    /// `fenced` (the resource rejects stale tokens) or `unfenced`.
    pub mode: String,
    /// Grants.
    pub acquisitions: usize,
    /// Client processes × tasks, as `KxM`.
    pub clients: String,
    /// Seconds the scenario ran.
    pub duration_s: f64,
    /// Faults injected.
    pub faults: usize,
    /// Grants whose validity interval intersected another's.
    pub overlaps: usize,
    /// Grants with a token not above that of a grant that ended before.
    pub token_regressions: usize,
    /// Stale reads and writes the resource rejected.
    pub stale_writes_rejected: u64,
    /// Stale writes the resource accepted (unfenced mode only).
    pub stale_writes_accepted: u64,
    /// Acknowledged writes missing from the final value.
    pub lost_updates: u64,
    /// The longest recovery after a fault (ms): the next grant to another client.
    pub max_recovery_ms: Option<f64>,
    /// The bound recovery should meet (abandon bound + ε), in ms.
    pub recovery_bound_ms: Option<f64>,
    /// Faults with no recovery before the run ended.
    pub unrecovered: usize,
    /// The longest loss-signal latency (ms).
    pub max_loss_signal_ms: Option<f64>,
    /// How many loss signals were measured.
    pub loss_signals: usize,
    /// Acquire time, median (ms).
    pub acquire_p50_ms: Option<f64>,
    /// Acquire time, 99th percentile (ms).
    pub acquire_p99_ms: Option<f64>,
    /// Whether lost updates are the expected outcome (unfenced under pauses).
    pub lost_updates_expected: bool,
    /// Panics or hangs (S15).
    pub crashes: usize,
    /// Keys or queue nodes left behind (S4).
    pub orphans: usize,
    /// Scenario-specific facts.
    pub notes: Vec<String>,
    /// Harness problems (a store that would not start, a step that failed).
    pub errors: Vec<String>,
    /// The first few safety violations, described.
    pub examples: Vec<String>,
    /// The faults, described.
    pub fault_list: Vec<String>,
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

impl Report {
    /// A report for `scenario` on `backend`.
    pub fn new(scenario: &str, backend: &str, fenced: bool) -> Report {
        Report {
            scenario: scenario.into(),
            backend: backend.into(),
            mode: if fenced { "fenced" } else { "unfenced" }.into(),
            ..Report::default()
        }
    }

    /// Fills the figures from the checkers and the resource.
    pub fn absorb(&mut self, f: &Findings, stats: Option<&Stats>) {
        self.acquisitions = f.acquisitions;
        self.overlaps = f.overlaps;
        self.token_regressions = f.token_regressions;
        self.max_recovery_ms = max(&f.recoveries_ms);
        self.unrecovered = f.unrecovered;
        self.max_loss_signal_ms = max(&f.loss_latencies_ms);
        self.loss_signals = f.loss_latencies_ms.len();
        self.acquire_p50_ms = f.acquire_p50_ms;
        self.acquire_p99_ms = f.acquire_p99_ms;
        self.examples.clone_from(&f.examples);
        if !f.acquire_errors.is_empty() {
            self.notes
                .push(format!("acquire errors: {:?}", f.acquire_errors));
        }
        if f.over_bound > 0 {
            self.notes
                .push(format!("{} recoveries over their bound", f.over_bound));
        }
        if let Some(s) = stats {
            self.stale_writes_rejected = s.rejected_reads + s.rejected_writes;
            self.stale_writes_accepted = s.stale_accepted;
            self.lost_updates = s.lost_updates();
            self.notes.push(format!(
                "resource: value {}, {} writes acknowledged, {} stale reads + {} stale writes rejected",
                s.value, s.writes, s.rejected_reads, s.rejected_writes
            ));
        }
    }

    /// Safety violations where safety is promised: overlaps, token
    /// regressions, lost updates (unless expected), crashes, leftovers.
    pub fn violations(&self) -> u64 {
        let lost = if self.lost_updates_expected {
            0
        } else {
            self.lost_updates
        };
        u64::try_from(self.overlaps + self.token_regressions + self.crashes + self.orphans)
            .unwrap_or(u64::MAX)
            + lost
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.0}ms", v));
        let mut s = format!(
            "{} {} {}: {} acquisitions, {} clients, {:.1}s, {} faults, {} overlaps, {} token regressions, {} stale writes rejected, {} lost updates, max recovery {}{}, max loss-signal latency {}",
            self.scenario,
            self.backend,
            self.mode,
            self.acquisitions,
            self.clients,
            self.duration_s,
            self.faults,
            self.overlaps,
            self.token_regressions,
            self.stale_writes_rejected,
            self.lost_updates,
            ms(self.max_recovery_ms),
            self.recovery_bound_ms
                .map_or(String::new(), |b| format!(" (bound {b:.0}ms)")),
            ms(self.max_loss_signal_ms),
        );
        if self.crashes > 0 {
            s.push_str(&format!(", {} crashes", self.crashes));
        }
        if self.orphans > 0 {
            s.push_str(&format!(", {} leftover keys/nodes", self.orphans));
        }
        if self.unrecovered > 0 {
            s.push_str(&format!(", {} unrecovered", self.unrecovered));
        }
        if !self.errors.is_empty() {
            s.push_str(&format!(", ERRORS: {}", self.errors.join("; ")));
        }
        s
    }
}
