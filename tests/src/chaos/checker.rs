//! The checkers: read a run's events, faults and resource counters, and
//! count what went wrong.
//!
//! A grant's validity interval runs from the moment `acquire` returned to
//! the earliest of: the start of its `release`, its `lost` signal, its
//! latest known deadline, and the death of its process. Two intervals that
//! intersect are an **overlap** (two holders at once). A grant whose
//! interval starts after another's ended must carry a higher token, or it
//! is a **token regression**.

use std::collections::BTreeMap;

use super::events::{Event, Fault, Kind};
use super::resource::Stats;

/// One grant's validity interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// `(client, task, seq)`.
    pub id: (usize, usize, u64),
    /// The fencing token.
    pub token: u64,
    /// When `acquire` returned (ns).
    pub start: u128,
    /// When the holder stopped believing it held the lock (ns).
    pub end: u128,
    /// How `acquire` took (ns).
    pub waited: u128,
    /// When its guard said lost, if it did.
    pub lost: Option<u128>,
}

/// What the checkers found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Grants.
    pub acquisitions: usize,
    /// Grants whose interval intersects an earlier one's.
    pub overlaps: usize,
    /// Grants whose token is not above that of a grant that ended before.
    pub token_regressions: usize,
    /// The first few violations, described.
    pub examples: Vec<String>,
    /// Acquire time, median (ms).
    pub acquire_p50_ms: Option<f64>,
    /// Acquire time, 99th percentile (ms).
    pub acquire_p99_ms: Option<f64>,
    /// Acquire errors, by kind.
    pub acquire_errors: BTreeMap<String, usize>,
    /// Recovery times of the faults that measure one (ms).
    pub recoveries_ms: Vec<f64>,
    /// Faults after which no other client got the lock before the end.
    pub unrecovered: usize,
    /// Recoveries over their fault's bound.
    pub over_bound: usize,
    /// Loss-signal latencies (ms): fault (or resume) to the guard's `lost`.
    pub loss_latencies_ms: Vec<f64>,
}

fn ms(ns: u128) -> f64 {
    // Exact for any span below 2^53 ns (104 days).
    #[allow(clippy::cast_precision_loss)]
    let f = ns as f64;
    f / 1e6
}

/// Builds every grant's validity interval from the events.
pub fn intervals(events: &[Event]) -> Vec<Interval> {
    let mut died: BTreeMap<usize, u128> = BTreeMap::new();
    let mut by_grant: BTreeMap<(usize, usize, u64), Vec<&Event>> = BTreeMap::new();
    for e in events {
        if e.kind == Kind::Died {
            died.insert(e.client, e.ns);
        } else {
            by_grant.entry(e.grant_id()).or_default().push(e);
        }
    }
    let mut out = Vec::new();
    for (id, evs) in by_grant {
        let Some((start, token, mut deadline, waited)) = evs.iter().find_map(|e| match e.kind {
            Kind::Grant {
                token,
                deadline_ns,
                waited_ns,
            } => Some((e.ns, token, deadline_ns, waited_ns)),
            _ => None,
        }) else {
            continue;
        };
        let mut end = u128::MAX;
        let mut lost = None;
        for e in &evs {
            match e.kind {
                Kind::Deadline { deadline_ns } => deadline = deadline.max(deadline_ns),
                Kind::Release { .. } => end = end.min(e.ns),
                Kind::Lost => {
                    end = end.min(e.ns);
                    lost = Some(e.ns);
                }
                _ => {}
            }
        }
        end = end.min(deadline);
        if let Some(d) = died.get(&id.0) {
            if *d >= start {
                end = end.min(*d);
            }
        }
        out.push(Interval {
            id,
            token,
            start,
            end: end.max(start),
            waited,
            lost,
        });
    }
    out.sort_by_key(|i| (i.start, i.id));
    out
}

/// Runs every checker.
pub fn check(events: &[Event], faults: &[Fault]) -> Findings {
    let iv = intervals(events);
    let mut f = Findings {
        acquisitions: iv.len(),
        ..Findings::default()
    };
    // Overlaps: sweep by start, keeping the latest end so far.
    let mut latest: Option<&Interval> = None;
    for i in &iv {
        if let Some(l) = latest {
            if i.start < l.end {
                f.overlaps += 1;
                if f.examples.len() < 5 {
                    f.examples.push(format!(
                        "overlap: grant {:?} token {} [{}..{}] and grant {:?} token {} [{}..{}] (ns)",
                        l.id, l.token, l.start, l.end, i.id, i.token, i.start, i.end
                    ));
                }
            }
        }
        if latest.is_none_or(|l| i.end > l.end) {
            latest = Some(i);
        }
    }
    // Token order: every grant above every grant that ended before it began.
    let mut by_end: Vec<&Interval> = iv.iter().collect();
    by_end.sort_by_key(|i| i.end);
    let (mut k, mut max_ended): (usize, Option<&Interval>) = (0, None);
    for i in &iv {
        while k < by_end.len() && by_end[k].end <= i.start {
            if max_ended.is_none_or(|m| by_end[k].token > m.token) {
                max_ended = Some(by_end[k]);
            }
            k += 1;
        }
        if let Some(m) = max_ended {
            if i.token <= m.token && m.id != i.id {
                f.token_regressions += 1;
                if f.examples.len() < 5 {
                    f.examples.push(format!(
                        "token regression: grant {:?} token {} began after grant {:?} token {} ended",
                        i.id, i.token, m.id, m.token
                    ));
                }
            }
        }
    }
    // Acquire times.
    let mut waits: Vec<u128> = iv.iter().map(|i| i.waited).collect();
    waits.sort_unstable();
    let pct = |p: usize| waits.get((waits.len() * p / 100).min(waits.len().saturating_sub(1)));
    f.acquire_p50_ms = pct(50).map(|w| ms(*w));
    f.acquire_p99_ms = pct(99).map(|w| ms(*w));
    for e in events {
        if let Kind::AcquireError { kind } = &e.kind {
            *f.acquire_errors.entry(kind.clone()).or_default() += 1;
        }
    }
    // Recovery and loss-signal latency, per fault.
    for fault in faults {
        if let Some(from) = fault.recovery_from {
            let next = iv
                .iter()
                .filter(|i| i.start > from && Some(i.id.0) != fault.client)
                .map(|i| i.start)
                .min();
            match next {
                Some(n) => {
                    f.recoveries_ms.push(ms(n - from));
                    if fault.recovery_bound_ns.is_some_and(|b| n - from > b) {
                        f.over_bound += 1;
                    }
                }
                None => f.unrecovered += 1,
            }
        }
        if let Some(from) = fault.loss_from {
            for i in &iv {
                let hit = fault.client.is_none_or(|c| c == i.id.0);
                if hit && i.start < fault.start_ns {
                    if let Some(l) = i.lost {
                        if l >= fault.start_ns {
                            f.loss_latencies_ms.push(ms(l.saturating_sub(from)));
                        }
                    }
                }
            }
        }
    }
    f
}

/// Lost updates at the resource (acknowledged writes missing from the value).
pub fn lost_updates(stats: &Stats) -> u64 {
    stats.lost_updates()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(client: usize, seq: u64, ns: u128, kind: Kind) -> Event {
        Event {
            client,
            task: 0,
            seq,
            ns,
            kind,
        }
    }

    fn grant(token: u64, deadline_ns: u128) -> Kind {
        Kind::Grant {
            token,
            deadline_ns,
            waited_ns: 0,
        }
    }

    fn release() -> Kind {
        Kind::Release {
            outcome: "ok".into(),
        }
    }

    #[test]
    fn disjoint_rising_grants_are_clean() {
        let e = vec![
            ev(0, 1, 10, grant(1, 100)),
            ev(0, 1, 20, release()),
            ev(1, 1, 25, grant(2, 100)),
            ev(1, 1, 30, release()),
        ];
        let f = check(&e, &[]);
        assert_eq!((f.acquisitions, f.overlaps, f.token_regressions), (2, 0, 0));
    }

    #[test]
    fn overlaps_regressions_deadlines_and_deaths_are_seen() {
        // Overlap: second grant before the first released.
        let e = vec![
            ev(0, 1, 10, grant(1, 100)),
            ev(1, 1, 15, grant(2, 100)),
            ev(0, 1, 20, release()),
            ev(1, 1, 30, release()),
        ];
        assert_eq!(check(&e, &[]).overlaps, 1);
        // The deadline ends the first grant: no overlap; lower token after: regression.
        let e = vec![
            ev(0, 1, 10, grant(5, 14)),
            ev(1, 1, 15, grant(3, 100)),
            ev(1, 1, 30, release()),
        ];
        let f = check(&e, &[]);
        assert_eq!((f.overlaps, f.token_regressions), (0, 1));
        // A renewal moves the deadline: overlap.
        let e = vec![
            ev(0, 1, 10, grant(5, 14)),
            ev(0, 1, 12, Kind::Deadline { deadline_ns: 40 }),
            ev(1, 1, 15, grant(6, 100)),
        ];
        assert_eq!(check(&e, &[]).overlaps, 1);
        // Death ends the grant.
        let e = vec![
            ev(0, 1, 10, grant(5, 1000)),
            ev(0, 0, 12, Kind::Died),
            ev(1, 1, 15, grant(6, 100)),
        ];
        assert_eq!(check(&e, &[]).overlaps, 0);
    }
}
