//! S12-member: the leader of a 3-member etcd cluster or ZooKeeper ensemble
//! cut from the other members (iptables in its network namespace) while its
//! clients still reach it.

use super::checker::intervals;
use super::events::{Event, Fault, Kind};
use super::nemesis;
use super::netns::Members;
use super::partition::*;
use super::report::Report;
use super::run::{expected_bound, Bins, Run, Settings};
use super::scenarios::{finalize, EPSILON};
use crate::fixture::wait_until;
use crate::monotonic_ns;
use std::time::Duration;

/// How long after a cut the members take to give up on their leader and
/// elect another: etcd's election timeout is 100 ms in the fixture (with
/// CheckQuorum the cut leader steps down then too); ZooKeeper's followers
/// and leader wait syncLimit × tickTime (10 × 500 ms) and then elect.
fn notice(backend: &str) -> Duration {
    if backend.starts_with("zookeeper") {
        Duration::from_millis(5500)
    } else {
        Duration::from_millis(500)
    }
}

/// One cut of S12-member.
#[derive(Debug, Clone)]
struct MemberCut {
    member: usize,
    holder: usize,
    grant: (usize, usize, u64),
    start: u128,
    effective: u128,
    heal: u128,
    stepped_down_ms: Option<f64>,
    elected: Option<(usize, f64)>,
    rejoined_ms: Option<f64>,
    dropped: Option<u64>,
}

fn since_ms(from: u128) -> f64 {
    ms(i128::try_from(monotonic_ns().saturating_sub(from)).unwrap_or(0))
}

/// Watches the members until `end` (ns): when `cut` stops saying it leads
/// and when another member says it does (ms after `start`).
async fn watch_election(
    run: &Run,
    cut: usize,
    start: u128,
    end: u128,
) -> (Option<f64>, Option<(usize, f64)>) {
    let (mut stepped, mut elected) = (None, None);
    let n = run.fixture.endpoints().len();
    loop {
        let now = monotonic_ns();
        if now >= end {
            break;
        }
        let remaining = Duration::from_nanos(u64::try_from(end - now).unwrap_or(u64::MAX));
        let step = async {
            if stepped.is_none() && !run.fixture.leads(cut).await {
                stepped = Some(since_ms(start));
            }
            if elected.is_none() {
                for j in (0..n).filter(|j| *j != cut) {
                    if run.fixture.leads(j).await {
                        elected = Some((j, since_ms(start)));
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(remaining, step).await;
        let now = monotonic_ns();
        let remaining = Duration::from_nanos(u64::try_from(end.saturating_sub(now)).unwrap_or(0));
        tokio::time::sleep(remaining.min(Duration::from_millis(50))).await;
    }
    (stepped, elected)
}

/// S12-member (etcd-cluster, zookeeper-ensemble): each of the 3 members
/// runs in a network namespace of its own ([`Members`]); client `i` talks
/// to member `i` only and one more client to every member (the first
/// leader first), one task each. The first leader's own client holds for
/// the time the members need to notice a lost leader (0.5 s on etcd, 5.5 s
/// on ZooKeeper) + the lease (session) + 0.3–0.8 s, the others briefly.
/// When a client of the leader is inside its critical section, iptables in
/// the leader's namespace drops every packet between it and the other
/// members (its client port stays open) for that notice time + 2 × the
/// lease (session) + 0.5 s; then the rules go. The cut-off leader, a minority of one, must never
/// grant (no client of it is granted during the cut); the majority must
/// elect a new leader and go on; the holder must lose its lock no later
/// than its validity deadline, or keep it legitimately by moving; 0
/// overlaps, 0 token regressions, 0 lost updates.
pub async fn s12_member(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S12-member", backend, true);
    if backend != "etcd-cluster" && backend != "zookeeper-ensemble" {
        r.errors.push(format!(
            "S12-member runs on etcd-cluster and zookeeper-ensemble, not {backend}"
        ));
        return r;
    }
    let bound = expected_bound(backend);
    let b_ms = u64::try_from(bound.as_millis()).unwrap_or(1000);
    let notice = notice(backend);
    let cut_for = notice + bound * 2 + Duration::from_millis(500);
    // One task per client (a client's turn comes within about one long and
    // three short critical sections, below).
    let one = cut_for + bound + Duration::from_secs(14);
    let run_for = if s.short {
        one
    } else {
        s.duration.max(one * 2)
    };
    let members = match Members::create(3) {
        Ok(m) => m,
        Err(e) => {
            r.errors
                .push(format!("cannot build the members' network namespaces: {e}"));
            return r;
        }
    };
    let mut run = match Run::start_members(
        backend,
        true,
        run_for,
        (b_ms + 300, b_ms + 800),
        bins,
        members,
    )
    .await
    {
        Ok(run) => run,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    run.cfg.wait_ms = MEMBER_WAIT_MS;
    let rb = bound + notice + EPSILON;
    r.recovery_bound_ms = Some(rb.as_secs_f64() * 1000.0);
    let Some(first) = nemesis::leader(&run.fixture, Duration::from_secs(20)).await else {
        r.errors.push("no leader elected".into());
        finalize(&mut r, run.finish().await);
        return r;
    };
    let eps = run.fixture.endpoints().to_vec();
    let tasks = 1;
    // The first leader's own client holds past the time the members take
    // to notice + the lease (session), so the cut lands while it holds and
    // its guard has to say lost; the other clients hold briefly.
    let long = u64::try_from((notice + bound).as_millis()).unwrap_or(8000);
    for (i, ep) in eps.iter().enumerate() {
        (run.cfg.work_min_ms, run.cfg.work_max_ms) = if i == first {
            (long + 300, long + 800)
        } else {
            (b_ms / 4, b_ms / 2)
        };
        if let Err(e) = run.add_client_via(tasks, &[*ep]) {
            r.errors.push(e);
            return r;
        }
    }
    (run.cfg.work_min_ms, run.cfg.work_max_ms) = (b_ms + 300, b_ms + 800);
    let every: Vec<_> = (0..eps.len())
        .map(|k| eps[(first + k) % eps.len()])
        .collect();
    let roamer = match run.add_client_via(tasks, &every) {
        Ok(id) => id,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    r.clients = format!("{}x{tasks}", eps.len() + 1);
    r.notes.push(format!(
        "members at {}; clients 0..{} talk to member 0..{} only, client {roamer} to every member \
         ({}); first leader: member {first}",
        eps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        eps.len() - 1,
        eps.len() - 1,
        if backend.starts_with("etcd") {
            "in that order, the first leader first"
        } else {
            "the ZooKeeper client picks one at random"
        }
    ));
    let mut cuts: Vec<MemberCut> = Vec::new();
    while left(&run) > cut_for + Duration::from_secs(1) {
        let Some(l) = nemesis::leader(&run.fixture, Duration::from_secs(10)).await else {
            r.errors.push("no leader before a cut".into());
            break;
        };
        // The leader's clients: the one that talks to it only, and (etcd,
        // first cut) the one whose current endpoint it is.
        let mut on_leader = vec![l];
        if cuts.is_empty() && l == first && backend.starts_with("etcd") {
            on_leader.push(roamer);
        }
        let Some(ev) = run.next_read(&on_leader, left(&run)).await else {
            break;
        };
        if left(&run) < cut_for {
            break;
        }
        if !run.fixture.leads(l).await {
            r.notes.push(format!(
                "member {l} no longer led when its client held; no cut"
            ));
            continue;
        }
        let Some(m) = run.members.as_ref() else {
            break;
        };
        let mut fault = Fault::now(format!(
            "iptables DROP between member {l} (leader) and the other members for {cut_for:?}, \
             its client port open; holder: client {}",
            ev.client
        ));
        if let Err(e) = m.isolate(l, false) {
            r.errors.push(e);
            break;
        }
        let effective = monotonic_ns();
        if cuts.is_empty() {
            if let Ok(rules) = m.rules(l) {
                r.notes.push(rules_note(&m.ns(l), &rules));
            }
        }
        let (stepped, elected) =
            watch_election(&run, l, fault.start_ns, effective + cut_for.as_nanos()).await;
        let dropped = match m.dropped(l) {
            Ok(n) => Some(n),
            Err(e) => {
                r.errors.push(e);
                None
            }
        };
        if let Err(e) = m.heal(l) {
            r.errors.push(e);
        }
        let heal = monotonic_ns();
        fault.heal_ns = Some(heal);
        fault.client = Some(ev.client);
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(rb.as_nanos());
        fault.loss_from = Some(fault.start_ns);
        let start = fault.start_ns;
        run.fault(fault);
        let fixture = &run.fixture;
        let rejoined = wait_until(Duration::from_secs(30), || nemesis::answers(fixture, l))
            .await
            .then(|| since_ms(heal));
        if rejoined.is_none() {
            r.errors.push(format!(
                "member {l} did not serve again within 30 s of the heal"
            ));
        }
        cuts.push(MemberCut {
            member: l,
            holder: ev.client,
            grant: ev.grant_id(),
            start,
            effective,
            heal,
            stepped_down_ms: stepped,
            elected,
            rejoined_ms: rejoined,
            dropped,
        });
        run.grant_after(heal, None, rb + Duration::from_secs(5))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if s.short {
            break;
        }
    }
    let out = run.finish().await;
    member_findings(&mut r, &out.events, &cuts, b_ms);
    finalize(&mut r, out);
    r
}

/// S12-member's checks of each cut (see [`s12_member`]).
fn member_findings(r: &mut Report, events: &[Event], cuts: &[MemberCut], b_ms: u64) {
    let iv = intervals(events);
    let (mut minority_grants, mut said_lost) = (0usize, 0usize);
    for cut in cuts {
        let from = cut.effective + IN_FLIGHT.as_nanos();
        let during = |e: &&Event| e.ns > from && e.ns < cut.heal;
        // Grants through the cut-off member: its own client.
        let mut errs = std::collections::BTreeMap::<String, usize>::new();
        let mut minority = 0usize;
        for e in events
            .iter()
            .filter(during)
            .filter(|e| e.client == cut.member)
        {
            match &e.kind {
                Kind::Grant { .. } => {
                    minority += 1;
                    r.errors.push(format!(
                        "client {} (talks to the cut-off member {} only) was granted {:?} during the cut",
                        cut.member,
                        cut.member,
                        e.grant_id()
                    ));
                }
                Kind::AcquireError { kind } => *errs.entry(kind.clone()).or_default() += 1,
                _ => {}
            }
        }
        minority_grants += minority;
        let majority: Vec<&Event> = events
            .iter()
            .filter(during)
            .filter(|e| e.client != cut.member && matches!(e.kind, Kind::Grant { .. }))
            .collect();
        let first_elsewhere = events
            .iter()
            .filter(|e| e.ns > cut.start && e.client != cut.holder)
            .find(|e| matches!(e.kind, Kind::Grant { .. }))
            .map(|e| ms(i128::try_from(e.ns - cut.start).unwrap_or(0)));
        // The holder: lost by its deadline, left in time, or kept its lock
        // through the majority.
        let lost = iv.iter().find(|i| i.id == cut.grant).and_then(|h| h.lost);
        let deadline = deadline_before(events, cut.grant, lost.unwrap_or(cut.start));
        let renewed = events
            .iter()
            .filter(|e| e.grant_id() == cut.grant && e.ns > from)
            .filter(|e| matches!(e.kind, Kind::Deadline { .. }))
            .count();
        let release = events.iter().find_map(|e| match &e.kind {
            Kind::Release { outcome } if e.grant_id() == cut.grant => Some((e.ns, outcome.clone())),
            _ => None,
        });
        let holder = match (lost, deadline) {
            (Some(lost), Some(d)) => {
                said_lost += 1;
                let late = i128::try_from(lost).unwrap_or(0) - i128::try_from(d).unwrap_or(0);
                if late > i128::try_from(LOST_SLACK.as_nanos()).unwrap_or(0) {
                    r.errors.push(format!(
                        "holder {:?} said lost {:.0} ms after its validity deadline",
                        cut.grant,
                        ms(late)
                    ));
                }
                format!(
                    "said lost {:.0} ms after the cut ({:+.0} ms from its deadline; {renewed} renewals after the cut)",
                    ms(i128::try_from(lost.saturating_sub(cut.start)).unwrap_or(0)),
                    ms(late)
                )
            }
            (None, _) => match release {
                Some((at, outcome))
                    if deadline_before(events, cut.grant, at).is_some_and(|d| at < d) =>
                {
                    format!(
                    "released {:.0} ms after the cut ({outcome}), before its deadline; {renewed} renewals after the cut",
                        ms(i128::try_from(at.saturating_sub(cut.start)).unwrap_or(0))
                    )
                }
                _ => {
                    r.errors
                        .push(format!("holder {:?} never said lost", cut.grant));
                    "never said lost".into()
                }
            },
            (Some(_), None) => {
                r.errors
                    .push(format!("no deadline logged for grant {:?}", cut.grant));
                "no deadline".into()
            }
        };
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        r.notes.push(format!(
            "cut of member {} (leader): it stopped leading after {}; new leader {}; \
             first grant to another client after {}; grants during the cut: {} through the cut-off member, \
             {} through the majority; acquire errors of its client meanwhile: {errs:?}; \
             holder client {} token grant {:?}: {holder}; rejoined {} after the heal; {} packets dropped \
             (lease/session {b_ms} ms)",
            cut.member,
            opt(cut.stepped_down_ms),
            cut.elected
                .map_or("none seen".into(), |(j, t)| format!("member {j} after {t:.0} ms")),
            opt(first_elsewhere),
            minority,
            majority.len(),
            cut.holder,
            cut.grant,
            opt(cut.rejoined_ms),
            cut.dropped.map_or("?".into(), |d| d.to_string()),
        ));
    }
    r.notes.push(format!(
        "cuts: {}; grants through a cut-off leader during its cut: {minority_grants}; cut holders that said lost: {said_lost} of {}",
        cuts.len(),
        cuts.len()
    ));
}
