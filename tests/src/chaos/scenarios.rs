//! The workload scenarios: S0 (no fault), S1 (kill -9 the holder), S2
//! (SIGSTOP the holder past its TTL), S10 (etcd cluster faults), S11
//! (ZooKeeper faults), S13 (proxy delay with jitter).

use std::time::Duration;

use super::checker::check;
use super::events::Fault;
use super::nemesis;
use super::report::Report;
use super::run::{Bins, Outcome, Run, Settings};
use crate::monotonic_ns;
use crate::proxy::Mode;

/// ε added to the abandon bound for recovery (reported, not asserted).
pub const EPSILON: Duration = Duration::from_secs(1);

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

/// Fills `r` from a finished run.
pub fn finalize(r: &mut Report, out: Outcome) {
    let f = check(&out.events, &out.faults);
    r.absorb(&f, out.stats.as_ref());
    r.duration_s = out.secs;
    r.faults = out.faults.len();
    r.fault_list = out.faults.iter().map(|f| f.what.clone()).collect();
    r.errors.extend(out.problems);
}

#[allow(clippy::too_many_arguments)]
async fn start(
    r: &mut Report,
    backend: &str,
    fenced: bool,
    run_for: Duration,
    work: (u64, u64),
    s: &Settings,
    bins: &Bins,
    proxied: bool,
) -> Option<Run> {
    let mut run = match Run::start(backend, fenced, run_for, work, bins).await {
        Ok(run) => run,
        Err(e) => {
            r.errors.push(e);
            return None;
        }
    };
    for _ in 0..s.clients {
        if let Err(e) = run.add_client(s.tasks, proxied).await {
            r.errors.push(e);
            return None;
        }
    }
    r.clients = format!("{}x{}", s.clients, s.tasks);
    Some(run)
}

fn left(run: &Run) -> Duration {
    Duration::from_nanos(
        u64::try_from(run.until_ns().saturating_sub(monotonic_ns())).unwrap_or(u64::MAX),
    )
}

/// S0: no fault.
pub async fn s0(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S0", backend, true);
    let Some(run) = start(&mut r, backend, true, s.duration, (1, 5), s, bins, false).await else {
        return r;
    };
    finalize(&mut r, run.finish().await);
    r
}

/// S1: `kill -9` the holder's process (and start a replacement client);
/// the lock must be free again within the abandon bound + ε.
pub async fn s1(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S1", backend, true);
    let run_for = s.duration.max(Duration::from_secs(4));
    let Some(mut run) = start(&mut r, backend, true, run_for, (20, 80), s, bins, false).await
    else {
        return r;
    };
    let bound = run.bound() + EPSILON;
    r.recovery_bound_ms = Some(bound.as_secs_f64() * 1000.0);
    while left(&run) > bound + Duration::from_millis(500) {
        let Some(ev) = run.next_read(&run.live(), left(&run)).await else {
            break;
        };
        let id = ev.client;
        let mut fault = Fault::now(format!(
            "SIGKILL client {id} (holder, token grant {:?})",
            ev.grant_id()
        ));
        if let Some(Some(p)) = run.procs.get_mut(id) {
            p.kill().await;
        }
        fault.client = Some(id);
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(ns(bound));
        let start_ns = fault.start_ns;
        run.fault(fault);
        if let Err(e) = run.add_client(s.tasks, false).await {
            r.errors.push(e);
            break;
        }
        run.grant_after(start_ns, Some(id), bound + Duration::from_secs(10))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finalize(&mut r, run.finish().await);
    r
}

/// Pauses the holder (the client of the next `read` among `clients`) for
/// `pause`, then resumes it. Returns the fault and the paused grant.
async fn pause_holder(
    run: &Run,
    pause: Duration,
    bound: Duration,
) -> Option<(usize, (usize, usize, u64))> {
    let ev = run.next_read(&run.live(), left(run)).await?;
    let id = ev.client;
    let p = run.procs.get(id)?.as_ref()?;
    p.pause();
    let mut fault = Fault::now(format!("SIGSTOP client {id} (holder) for {pause:?}"));
    tokio::time::sleep(pause).await;
    p.resume();
    let heal = monotonic_ns();
    fault.heal_ns = Some(heal);
    fault.client = Some(id);
    if !run.process_bound() {
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(ns(bound));
    }
    fault.loss_from = Some(heal);
    run.fault(fault);
    Some((id, ev.grant_id()))
}

/// How the release of grant `g` ended (`lost`, `ok`, an error kind), or
/// `said lost` when its guard signalled the loss before any release.
fn release_outcome(out: &Outcome, g: (usize, usize, u64)) -> String {
    let iv = super::checker::intervals(&out.events);
    if iv.iter().any(|i| i.id == g && i.lost.is_some()) {
        return "said lost".into();
    }
    out.events
        .iter()
        .find_map(|e| match &e.kind {
            super::events::Kind::Release { outcome } if e.grant_id() == g => Some(outcome.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "no release".into())
}

/// Of the `paused` grants, how many said lost.
fn said_lost(out: &Outcome, paused: &[(usize, usize, u64)]) -> usize {
    let iv = super::checker::intervals(&out.events);
    paused
        .iter()
        .filter(|g| iv.iter().any(|i| i.id == **g && i.lost.is_some()))
        .count()
}

/// S2: SIGSTOP the holder for 1.5 × its TTL (session), then SIGCONT. In
/// fenced mode its stale writes must be rejected and nothing lost; in
/// unfenced mode the lost updates are the expected outcome.
pub async fn s2(backend: &str, fenced: bool, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S2", backend, fenced);
    let bound = super::run::expected_bound(backend);
    let pause = (bound.max(Duration::from_millis(super::run::TTL_MS)) * 3) / 2;
    let one = pause + bound + Duration::from_secs(3);
    let run_for = if s.short {
        one
    } else {
        s.duration.max(one * 2)
    };
    let Some(run) = start(&mut r, backend, fenced, run_for, (100, 200), s, bins, false).await
    else {
        return r;
    };
    r.lost_updates_expected = !fenced && !run.process_bound();
    let rb = run.bound() + EPSILON;
    if !run.process_bound() {
        r.recovery_bound_ms = Some(rb.as_secs_f64() * 1000.0);
    }
    let mut paused = Vec::new();
    while left(&run) > pause + Duration::from_secs(1) {
        let Some((_, grant)) = pause_holder(&run, pause, rb).await else {
            break;
        };
        paused.push(grant);
        run.grant_after(monotonic_ns(), None, rb + Duration::from_secs(5))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let process_bound = run.process_bound();
    let out = run.finish().await;
    let lost = said_lost(&out, &paused);
    r.notes.push(format!(
        "paused holders whose guard said lost: {lost} of {}{}",
        paused.len(),
        if process_bound {
            " (grants end only with their process: a paused holder keeps the lock, nobody else gets it)"
        } else {
            ""
        }
    ));
    if !process_bound && lost < paused.len() {
        r.errors.push(format!(
            "{} paused holder(s) never said lost",
            paused.len() - lost
        ));
    }
    finalize(&mut r, out);
    r
}

/// S10: etcd 3-node cluster: pause the leader, kill (and restart) a
/// follower, pause a quorum, kill (and restart) the leader.
///
/// The leader pause (800 ms, eight election timeouts) stays under two thirds
/// of the 2 s lease TTL, so no lease expires on the paused leader's own
/// clock: longer, it meets etcd-io/etcd#15247 on etcd before 3.4.31 / 3.5.13
/// (the resumed stale leader revokes leases the new leader kept alive), a
/// store fault that tests/tests/etcd_stale_leader.rs measures on its own.
/// The quorum pause (2 s) leaves no leader to keep leases alive, so every
/// lease it ends has already passed its client-side deadline.
pub async fn s10(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S10", backend, true);
    let hold = Duration::from_secs(2);
    let run_for = s
        .duration
        .max(Duration::from_secs(if s.short { 18 } else { 30 }));
    let Some(run) = start(&mut r, backend, true, run_for, (20, 80), s, bins, false).await else {
        return r;
    };
    if run.fixture.server_count() < 3 {
        r.errors
            .push("S10 needs a 3-member cluster (etcd-cluster)".into());
        finalize(&mut r, run.finish().await);
        return r;
    }
    r.recovery_bound_ms =
        Some((run.bound() + EPSILON + Duration::from_secs(2)).as_secs_f64() * 1000.0);
    cluster_faults(&mut r, &run, hold, s.short).await;
    finalize(&mut r, run.finish().await);
    r
}

/// The server faults of S10 on a 3-member fixture, once (short) or while
/// time remains.
async fn cluster_faults(r: &mut Report, run: &Run, hold: Duration, once: bool) {
    let leader_hold = Duration::from_millis(800);
    let f = &run.fixture;
    let settle = Duration::from_secs(15);
    let rb = run.bound() + EPSILON + Duration::from_secs(2);
    loop {
        // The leader paused.
        if left(run) < leader_hold + Duration::from_secs(3) {
            return;
        }
        let Some(l) = nemesis::leader(f, Duration::from_secs(10)).await else {
            r.errors.push("no leader found".into());
            return;
        };
        let mut fault = Fault::now(format!("SIGSTOP leader (server {l}) for {leader_hold:?}"));
        f.server(l).pause();
        tokio::time::sleep(leader_hold).await;
        f.server(l).resume();
        fault.heal_ns = Some(monotonic_ns());
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(ns(rb));
        fault.loss_from = Some(fault.start_ns);
        let heal = fault.heal_ns.unwrap_or(0);
        run.fault(fault);
        run.grant_after(heal, None, settle).await;
        // A follower killed, restarted after 1 s.
        if left(run) < Duration::from_secs(4) {
            return;
        }
        let l = nemesis::leader(f, Duration::from_secs(10))
            .await
            .unwrap_or(0);
        let follower = (l + 1) % 3;
        let mut fault = Fault::now(format!(
            "SIGKILL follower (server {follower}), restart after 1s"
        ));
        match nemesis::restart(
            f,
            follower,
            run.scratch.path(),
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .await
        {
            Ok(at) => fault.heal_ns = Some(at),
            Err(e) => r.errors.push(e),
        }
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(ns(rb));
        let heal = fault.heal_ns.unwrap_or(0);
        run.fault(fault);
        run.grant_after(heal, None, settle).await;
        // A quorum paused.
        {
            if left(run) < hold + Duration::from_secs(3) {
                return;
            }
            let l = nemesis::leader(f, Duration::from_secs(10))
                .await
                .unwrap_or(0);
            let other = (l + 2) % 3;
            let mut fault = Fault::now(format!(
                "SIGSTOP a quorum (servers {l}, {other}) for {hold:?}"
            ));
            f.server(l).pause();
            f.server(other).pause();
            tokio::time::sleep(hold).await;
            f.server(l).resume();
            f.server(other).resume();
            let heal = monotonic_ns();
            fault.heal_ns = Some(heal);
            fault.recovery_from = Some(heal);
            fault.recovery_bound_ns = Some(ns(rb));
            fault.loss_from = Some(fault.start_ns);
            run.fault(fault);
            run.grant_after(heal, None, settle).await;
        }
        // The leader killed, restarted after 1 s.
        if left(run) < Duration::from_secs(4) {
            return;
        }
        let Some(l) = nemesis::leader(f, Duration::from_secs(10)).await else {
            r.errors.push("no leader found".into());
            return;
        };
        let mut fault = Fault::now(format!("SIGKILL leader (server {l}), restart after 1s"));
        match nemesis::restart(
            f,
            l,
            run.scratch.path(),
            Duration::from_secs(1),
            Duration::from_secs(40),
        )
        .await
        {
            Ok(at) => fault.heal_ns = Some(at),
            Err(e) => r.errors.push(e),
        }
        fault.recovery_from = Some(fault.start_ns);
        fault.recovery_bound_ns = Some(ns(rb));
        fault.loss_from = Some(fault.start_ns);
        let heal = fault.heal_ns.unwrap_or(0);
        run.fault(fault);
        run.grant_after(heal, None, settle).await;
        if once || r.errors.len() > 3 {
            return;
        }
    }
}

/// S11: ZooKeeper: the holder paused past its session timeout; a short
/// disconnect through its proxy; a long one (session expiry); on the
/// ensemble, the leader killed and restarted.
pub async fn s11(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S11", backend, true);
    let ensemble = backend.ends_with("ensemble");
    let est = if ensemble { 22 } else { 16 };
    let run_for = s.duration.max(Duration::from_secs(est));
    let Some(run) = start(&mut r, backend, true, run_for, (100, 200), s, bins, true).await else {
        return r;
    };
    let bound = run.bound();
    let rb = bound + EPSILON;
    r.recovery_bound_ms = Some(rb.as_secs_f64() * 1000.0);
    let pause = bound * 3 / 2;
    let mut paused = Vec::new();
    let (mut short_cuts, mut short_lost) = (0usize, Vec::new());
    let mut long_cut = Vec::new();
    loop {
        // (a) the holder paused past its session timeout.
        if left(&run) < pause + Duration::from_secs(2) {
            break;
        }
        if let Some((_, g)) = pause_holder(&run, pause, rb).await {
            paused.push(g);
        }
        run.grant_after(monotonic_ns(), None, rb + Duration::from_secs(5))
            .await;
        // (b) a short disconnect (well within the session timeout).
        if left(&run) < Duration::from_secs(2) {
            break;
        }
        let cut = bound * 3 / 10;
        if let Some(ev) = run.next_read(&run.live(), left(&run)).await {
            let mut fault = Fault::now(format!(
                "proxy blackholes client {} (holder) for {cut:?}",
                ev.client
            ));
            run.set_proxies(ev.client, Mode::Blackhole);
            tokio::time::sleep(cut).await;
            run.set_proxies(ev.client, Mode::Pass);
            fault.heal_ns = Some(monotonic_ns());
            fault.client = Some(ev.client);
            fault.loss_from = Some(fault.start_ns);
            run.fault(fault);
            short_cuts += 1;
            short_lost.push(ev.grant_id());
        }
        // (c) a long disconnect: the session expires.
        if left(&run) < pause + Duration::from_secs(2) {
            break;
        }
        if let Some(ev) = run.next_read(&run.live(), left(&run)).await {
            let mut fault = Fault::now(format!(
                "proxy blackholes client {} (holder) for {pause:?}: session expiry",
                ev.client
            ));
            run.set_proxies(ev.client, Mode::Blackhole);
            tokio::time::sleep(pause).await;
            run.set_proxies(ev.client, Mode::Pass);
            fault.heal_ns = Some(monotonic_ns());
            fault.client = Some(ev.client);
            fault.recovery_from = Some(fault.start_ns);
            fault.recovery_bound_ns = Some(ns(rb));
            fault.loss_from = Some(fault.start_ns);
            run.fault(fault);
            long_cut.push(ev.grant_id());
        }
        run.grant_after(monotonic_ns(), None, rb + Duration::from_secs(5))
            .await;
        // (d) the ensemble's leader killed and restarted.
        if ensemble {
            if left(&run) < Duration::from_secs(5) {
                break;
            }
            let Some(l) = nemesis::leader(&run.fixture, Duration::from_secs(10)).await else {
                r.errors.push("no ZooKeeper leader found".into());
                break;
            };
            let mut fault = Fault::now(format!(
                "SIGKILL ZooKeeper leader (server {l}), restart after 1s"
            ));
            match nemesis::restart(
                &run.fixture,
                l,
                run.scratch.path(),
                Duration::from_secs(1),
                Duration::from_secs(40),
            )
            .await
            {
                Ok(at) => fault.heal_ns = Some(at),
                Err(e) => r.errors.push(e),
            }
            fault.recovery_from = Some(fault.start_ns);
            fault.recovery_bound_ns = Some(ns(rb + Duration::from_secs(5)));
            fault.loss_from = Some(fault.start_ns);
            let heal = fault.heal_ns.unwrap_or(0);
            run.fault(fault);
            run.grant_after(heal, None, Duration::from_secs(15)).await;
        }
        if s.short {
            break;
        }
    }
    let out = run.finish().await;
    let lost = said_lost(&out, &paused);
    let short = said_lost(&out, &short_lost);
    let long_outcomes: Vec<String> = long_cut.iter().map(|g| release_outcome(&out, *g)).collect();
    r.notes.push(format!(
        "holders cut off past the session timeout (they left their critical section during the cut; release outcome): {long_outcomes:?}"
    ));
    r.notes.push(format!(
        "holders paused past the session timeout whose guard said lost: {lost} of {}; holders cut off briefly ({short_cuts}) whose guard said lost: {short}",
        paused.len()
    ));
    if lost < paused.len() {
        r.errors.push(format!(
            "{} holder(s) past the session timeout never said lost",
            paused.len() - lost
        ));
    }
    finalize(&mut r, out);
    r
}

/// S13: every client behind a proxy that delays each chunk 1–31 ms; now
/// and then one client's proxy spikes to ½–1½ × the TTL for 1.5 × TTL, so
/// renewals and releases arrive after the grant expired and was given to
/// another. A late release must never delete the next holder's lock.
pub async fn s13(backend: &str, s: &Settings, bins: &Bins) -> Report {
    let mut r = Report::new("S13", backend, true);
    let Some(run) = start(
        &mut r,
        backend,
        true,
        s.duration.max(Duration::from_secs(4)),
        (1, 5),
        s,
        bins,
        true,
    )
    .await
    else {
        return r;
    };
    let normal = Mode::Delay {
        base_ms: 1,
        jitter_ms: 30,
    };
    for id in run.live() {
        run.set_proxies(id, normal);
    }
    let bound = run.bound();
    let b_ms = u64::try_from(bound.as_millis()).unwrap_or(1000);
    let spike = Mode::Delay {
        base_ms: b_ms / 2,
        jitter_ms: b_ms,
    };
    while left(&run) > bound * 2 {
        let live = run.live();
        let Some(ev) = run.next_read(&live, left(&run)).await else {
            break;
        };
        let mut fault = Fault::now(format!(
            "proxy of client {} (holder) delays {}..{} ms per chunk for {:?}",
            ev.client,
            b_ms / 2,
            b_ms / 2 + b_ms,
            bound * 3 / 2
        ));
        run.set_proxies(ev.client, spike);
        tokio::time::sleep(bound * 3 / 2).await;
        run.set_proxies(ev.client, normal);
        fault.heal_ns = Some(monotonic_ns());
        fault.client = Some(ev.client);
        fault.loss_from = Some(fault.start_ns);
        run.fault(fault);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    finalize(&mut r, run.finish().await);
    r.notes
        .push("packet loss is S13-loss (iptables in the clients' network namespaces)".into());
    r
}
