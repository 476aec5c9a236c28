//! The network scenarios that need namespaces ([`netns`](super::netns)):
//! S12 (the holder's namespace cut from the servers by iptables, then
//! healed; S12-member is in [`member_partition`](super::member_partition))
//! and the packet-loss half of S13 (iptables drops a random share of every
//! client's packets to and from the servers).

use std::time::Duration;

use super::checker::intervals;
use super::events::{Event, Fault, Kind};
use super::netns::{Net, Rule};
use super::report::Report;
use super::run::{expected_bound, Bins, Run, Settings};
use super::scenarios::{finalize, EPSILON};
use crate::monotonic_ns;

/// How late after its validity deadline a guard's `lost` may be logged
/// and still count as "no later than the deadline": the guard fires at
/// the deadline; the client's loss watcher (which logs it) and the 5 ms
/// deadline poll add scheduling delay on a loaded machine.
pub const LOST_SLACK: Duration = Duration::from_millis(100);

/// Grants to a cut-off client logged this soon after the cut's rules were
/// in place can be replies that reached its socket just before (its
/// acquire had not returned yet); later ones would be grants across the
/// partition.
pub const IN_FLIGHT: Duration = Duration::from_millis(200);

/// How long one `acquire` waits in these scenarios (ms).
pub const WAIT_MS: u64 = 6000;

/// How long one `acquire` waits in S12-member (ms): four clients take
/// turns holding, one of them for up to 8.3 s (ZooKeeper).
pub const MEMBER_WAIT_MS: u64 = 15_000;

/// The share of packets S13's loss drops, each direction.
pub const LOSS: f64 = 0.1;

pub(super) fn left(run: &Run) -> Duration {
    Duration::from_nanos(
        u64::try_from(run.until_ns().saturating_sub(monotonic_ns())).unwrap_or(u64::MAX),
    )
}

#[allow(clippy::cast_precision_loss)]
pub(super) fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

/// Namespaces, the store, the resource and `s.clients` clients, one per
/// namespace; `None` (with the error in `r`) when any of it fails.
pub(super) async fn start(
    r: &mut Report,
    backend: &str,
    run_for: Duration,
    work: (u64, u64),
    s: &Settings,
    bins: &Bins,
) -> Option<Run> {
    let net = match Net::create(s.clients) {
        Ok(n) => n,
        Err(e) => {
            r.errors
                .push(format!("cannot build the network namespaces: {e}"));
            return None;
        }
    };
    let mut run = match Run::start_with(backend, true, run_for, work, bins, Some(net)).await {
        Ok(run) => run,
        Err(e) => {
            r.errors.push(e);
            return None;
        }
    };
    // Shorter waits than the other scenarios' 20 s: the run ends sooner
    // after the last attempt starts.
    run.cfg.wait_ms = WAIT_MS;
    for _ in 0..s.clients {
        if let Err(e) = run.add_client(s.tasks, false).await {
            r.errors.push(e);
            return None;
        }
    }
    r.clients = format!("{}x{}", s.clients, s.tasks);
    Some(run)
}

/// One cut of S12.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    client: usize,
    grant: (usize, usize, u64),
    start: u128,
    effective: u128,
    heal: u128,
}

/// A report note listing the iptables rules (`-A` lines of `iptables -S`)
/// in force in namespace `ns`.
pub(super) fn rules_note(ns: &str, rules: &str) -> String {
    let added: Vec<&str> = rules.lines().filter(|l| l.starts_with("-A")).collect();
    format!("cut rules in {ns}: {}", added.join("; "))
}

/// The latest deadline grant `g` knew before `before` (ns).
pub(super) fn deadline_before(
    events: &[Event],
    g: (usize, usize, u64),
    before: u128,
) -> Option<u128> {
    events
        .iter()
        .filter(|e| e.grant_id() == g && e.ns <= before)
        .filter_map(|e| match e.kind {
            Kind::Grant { deadline_ns, .. } | Kind::Deadline { deadline_ns } => Some(deadline_ns),
            _ => None,
        })
        .max()
}

/// S12: while a holder is inside its critical section (which lasts longer
/// than its TTL or session, so the cut lands before it leaves), iptables
/// rules in its namespace drop every packet between it and the servers for
/// 2 × the TTL (session) + 0.5 s; then the rules go. Its guard must say
/// lost no later than its validity deadline (the detection time is the
/// figure), no client in a cut namespace may be granted during the cut,
/// another client must get the lock, and the resource's fence must
/// reject the cut holder's late write: 0 overlaps, 0 lost updates.
pub async fn s12(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S12", backend, true);
    let bound = expected_bound(backend);
    let b_ms = u64::try_from(bound.as_millis()).unwrap_or(1000);
    let cut_for = bound * 2 + Duration::from_millis(500);
    let one = cut_for + bound + Duration::from_secs(4);
    let run_for = if s.short {
        one + Duration::from_secs(2)
    } else {
        s.duration.max(one * 2)
    };
    let Some(run) = start(&mut r, backend, run_for, (b_ms + 300, b_ms + 800), s, bins).await else {
        return r;
    };
    let rb = run.bound() + EPSILON;
    r.recovery_bound_ms = Some(rb.as_secs_f64() * 1000.0);
    let (mut cuts, mut dropped) = (Vec::new(), Vec::new());
    while left(&run) > cut_for + Duration::from_secs(1) {
        let Some(ev) = run.next_read(&run.live(), left(&run)).await else {
            break;
        };
        let c = ev.client;
        let Some(net) = run.net.as_ref() else {
            break;
        };
        let mut fault = Fault::now(format!(
            "iptables DROP between client {c}'s namespace (holder) and the servers for {cut_for:?}"
        ));
        if let Err(e) = net.apply(c, Rule::Cut) {
            r.errors.push(e);
            break;
        }
        let effective = monotonic_ns();
        if cuts.is_empty() {
            if let Ok(rules) = net.rules(c) {
                r.notes.push(rules_note(&net.ns(c), &rules));
            }
        }
        tokio::time::sleep(cut_for).await;
        match net.dropped(c) {
            Ok(n) => dropped.push(n),
            Err(e) => r.errors.push(e),
        }
        if let Err(e) = net.heal(c) {
            r.errors.push(e);
        }
        let heal = monotonic_ns();
        fault.heal_ns = Some(heal);
        fault.client = Some(c);
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(rb.as_nanos());
        fault.loss_from = Some(fault.start_ns);
        cuts.push(Cut {
            client: c,
            grant: ev.grant_id(),
            start: fault.start_ns,
            effective,
            heal,
        });
        run.fault(fault);
        run.grant_after(heal, None, rb + Duration::from_secs(5))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if s.short {
            break;
        }
    }
    let out = run.finish().await;
    let iv = intervals(&out.events);
    let (mut detections, mut margins) = (Vec::new(), Vec::new());
    let mut across = 0usize;
    let mut cut_errors = std::collections::BTreeMap::<String, usize>::new();
    for cut in &cuts {
        let holder = iv.iter().find(|i| i.id == cut.grant);
        let lost = holder.and_then(|h| h.lost);
        // The deadline the guard had when it said lost (a renewal or ping
        // reply in flight as the rules went in may have moved it).
        let deadline = deadline_before(&out.events, cut.grant, lost.unwrap_or(cut.start));
        match (lost, deadline) {
            (Some(lost), Some(d)) => {
                detections.push(ms(i128::try_from(lost - cut.start).unwrap_or(0)));
                let late = i128::try_from(lost).unwrap_or(0) - i128::try_from(d).unwrap_or(0);
                margins.push(ms(late));
                if late > i128::try_from(LOST_SLACK.as_nanos()).unwrap_or(0) {
                    r.errors.push(format!(
                        "cut-off holder {:?} said lost {:.0} ms after its validity deadline",
                        cut.grant,
                        ms(late)
                    ));
                }
            }
            (None, _) => {
                let released = out.events.iter().find_map(|e| match &e.kind {
                    Kind::Release { outcome } if e.grant_id() == cut.grant => {
                        Some((e.ns, outcome.clone()))
                    }
                    _ => None,
                });
                match released {
                    Some((at, outcome)) if deadline.is_some_and(|d| at < d) => r.notes.push(format!(
                        "cut-off holder {:?} left its critical section before its deadline (release: {outcome})",
                        cut.grant
                    )),
                    _ => r.errors.push(format!(
                        "cut-off holder {:?} never said lost",
                        cut.grant
                    )),
                }
            }
            (Some(_), None) => r
                .errors
                .push(format!("no deadline logged for grant {:?}", cut.grant)),
        }
        let from = cut.effective + IN_FLIGHT.as_nanos();
        for e in &out.events {
            if e.client != cut.client || e.ns <= from || e.ns >= cut.heal {
                continue;
            }
            match &e.kind {
                Kind::Grant { .. } => {
                    across += 1;
                    r.errors.push(format!(
                        "client {} was granted {:?} while cut off from the servers",
                        cut.client,
                        e.grant_id()
                    ));
                }
                Kind::AcquireError { kind } => *cut_errors.entry(kind.clone()).or_default() += 1,
                _ => {}
            }
        }
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    r.notes.push(format!(
        "cuts: {}; cut-off holders that said lost: {} of {}; detection (cut → guard lost), ms: [{}]; \
         guard lost − its validity deadline as logged, ms: [{}] (TTL/session {} ms; the logged \
         deadline is read up to 5 ms early, the lost signal logged a few ms late)",
        cuts.len(),
        detections.len(),
        cuts.len(),
        fmt(&detections),
        fmt(&margins),
        b_ms
    ));
    r.notes.push(format!(
        "grants to a cut-off client during its cut: {across}; its acquire errors meanwhile: {cut_errors:?}; \
         packets dropped per cut: {dropped:?}"
    ));
    finalize(&mut r, out);
    r
}

/// S13 (packet loss): every client in its own namespace, where iptables
/// drops a random [`LOSS`] of its packets to and from the servers for the
/// whole run (`-m statistic --mode random`). Renewals and replies come
/// late or time out; 0 overlaps and 0 lost updates with the fence.
pub async fn s13_loss(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S13-loss", backend, true);
    let run_for = s.duration.max(Duration::from_secs(6));
    let Some(run) = start(&mut r, backend, run_for, (1, 5), s, bins).await else {
        return r;
    };
    if let Some(net) = run.net.as_ref() {
        for c in run.live() {
            let mut fault = Fault::now(format!(
                "iptables drops {:.0}% of client {c}'s packets to and from the servers, whole run",
                LOSS * 100.0
            ));
            if let Err(e) = net.apply(c, Rule::Loss(LOSS)) {
                r.errors.push(e);
            }
            fault.client = Some(c);
            run.fault(fault);
        }
        if let Ok(rules) = net.rules(0) {
            r.notes.push(format!(
                "loss rules in {}: {}",
                net.ns(0),
                rules
                    .lines()
                    .filter(|l| l.starts_with("-A"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    run.wait_end().await;
    if let Some(net) = run.net.as_ref() {
        let dropped: Result<Vec<u64>, String> =
            run.live().iter().map(|c| net.dropped(*c)).collect();
        match dropped {
            Ok(d) => r.notes.push(format!(
                "packets dropped by the loss rules, per client: {d:?} (until the clients' last attempt began)"
            )),
            Err(e) => r.errors.push(e),
        }
    }
    let out = run.finish().await;
    let said_lost = intervals(&out.events)
        .iter()
        .filter(|i| i.lost.is_some())
        .count();
    r.notes.push(format!(
        "grants whose guard said lost (renewals that did not get through in time): {said_lost}"
    ));
    finalize(&mut r, out);
    r
}
