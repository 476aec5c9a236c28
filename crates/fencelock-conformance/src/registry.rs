//! Every case, what it needs, and which apply to a backend.

use fencelock_core::{Capabilities, Scope};
use futures_util::future::LocalBoxFuture;

use crate::{cases, Harness, Target};

/// One case of the suite.
pub struct Case {
    /// Its name (`exclusion`).
    pub name: &'static str,
    /// The primitive it checks (`lock`), or `lease` for a case of lease
    /// behaviour, run for every primitive the backend supports.
    pub primitive: &'static str,
    run: for<'a> fn(&'a Target) -> LocalBoxFuture<'a, ()>,
    /// `Some(reason)` when the case does not apply.
    excluded: fn(&Capabilities, &dyn Harness) -> Option<&'static str>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.primitive, self.name)
    }
}

impl Case {
    /// Runs the case on `t`; panics with a message when the backend breaks
    /// the promise.
    pub async fn run(&self, t: &Target) {
        (self.run)(t).await;
    }

    /// Why the case does not apply to a backend with `caps` behind
    /// `harness`; `None` when it does.
    pub fn excluded(&self, caps: &Capabilities, harness: &dyn Harness) -> Option<&'static str> {
        (self.excluded)(caps, harness)
    }
}

fn always(_: &Capabilities, _: &dyn Harness) -> Option<&'static str> {
    None
}

fn across_processes(caps: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    if caps.scope < Scope::Host {
        Some("the store lives in one process: there are no other processes to exclude")
    } else if h.contender().is_none() {
        Some("the harness names no contender program")
    } else {
        None
    }
}

fn holder_can_die(caps: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    (caps.scope >= Scope::Host && h.contender().is_none())
        .then_some("the harness names no contender program to kill")
}

fn over_network(caps: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    if caps.scope < Scope::Network || h.endpoints().is_empty() {
        Some("no network store to be unreachable")
    } else if h.url_via(&h.endpoints()).is_none() {
        Some("the harness cannot point its URL at other endpoints")
    } else {
        None
    }
}

fn cut_off(caps: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    (caps.expiry == fencelock_core::Expiry::Session && h.url_via(&h.endpoints()).is_none())
        .then_some("a session store's holder is cut off through proxies: the harness cannot point its URL at them")
}

fn pausable(_: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    (h.servers() == 0).then_some("the harness has no server process to pause")
}

fn one_server(_: &Capabilities, h: &dyn Harness) -> Option<&'static str> {
    (h.servers() != 1).then_some("the store does not run exactly one server process to pause")
}

macro_rules! case {
    ($name:ident, $primitive:literal, $excluded:expr) => {
        Case {
            name: stringify!($name),
            primitive: $primitive,
            run: |t| Box::pin(cases::$name(t)),
            excluded: $excluded,
        }
    };
}

/// Every case, in the order of the contract.
pub static ALL: &[Case] = &[
    case!(exclusion, "lock", always),
    case!(cross_process, "lock", across_processes),
    case!(busy, "lock", always),
    case!(no_foreign_release, "lease", cut_off),
    case!(abandonment, "lease", holder_can_die),
    case!(lost_signal, "lease", cut_off),
    case!(lost_signal_paused, "lease", one_server),
    case!(renewal, "lease", always),
    case!(ttl_without_renewal, "lease", always),
    case!(hold_cap, "lease", always),
    case!(drop_frees, "lease", always),
    case!(cancellation, "lease", always),
    case!(wakeup, "lock", always),
    case!(fairness, "lock", always),
    case!(hostile_keys, "lock", always),
    case!(unreachable, "lock", over_network),
    case!(store_paused, "lock", pausable),
];

/// A case registered for a primitive.
pub type Registered = (&'static Case, &'static str);

/// A case left out, with the reason.
pub type LeftOut = (&'static Case, &'static str);

/// The cases that apply to a backend with `caps` behind `harness`, each
/// with the primitive it runs for (a lease case once per primitive the
/// backend supports), and the ones left out with the reason.
pub fn registered(caps: &Capabilities, harness: &dyn Harness) -> (Vec<Registered>, Vec<LeftOut>) {
    let primitives = crate::leases::supported(caps);
    let mut run = Vec::new();
    let mut left_out = Vec::new();
    for case in ALL {
        let applies_to: Vec<&'static str> = if case.primitive == "lease" {
            primitives.clone()
        } else {
            primitives
                .iter()
                .copied()
                .filter(|p| *p == case.primitive)
                .collect()
        };
        match case.excluded(caps, harness) {
            Some(why) => left_out.push((case, why)),
            None if applies_to.is_empty() => {
                left_out.push((case, "the backend does not support the primitive"));
            }
            None => run.extend(applies_to.into_iter().map(|p| (case, p))),
        }
    }
    (run, left_out)
}
