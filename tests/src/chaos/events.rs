//! The event log: every client action with its CLOCK_MONOTONIC time, as one
//! text line per event (client processes print them on stdout), and the
//! faults the nemesis injected.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `acquire` returned a guard: its token and its validity deadline.
    Grant {
        /// The fencing token.
        token: u64,
        /// The guard's deadline, in monotonic ns.
        deadline_ns: u128,
        /// How long `acquire` took, in ns.
        waited_ns: u128,
    },
    /// The guard's deadline moved (renewal, session keep-alive).
    Deadline {
        /// The new deadline, in monotonic ns.
        deadline_ns: u128,
    },
    /// The resource accepted a read and returned `value`.
    Read {
        /// The value read.
        value: u64,
    },
    /// The resource rejected a read: a higher token had been seen.
    ReadRejected,
    /// The resource acknowledged a write of `value`.
    Write {
        /// The value written.
        value: u64,
    },
    /// The resource rejected a write: a higher token had been seen.
    WriteRejected,
    /// The client left its critical section and called `release` (the
    /// event's time is the call's start); `ok`, `lost` or `error`.
    Release {
        /// How `release` ended.
        outcome: String,
    },
    /// The guard said it was lost (its `lost()` future completed).
    Lost,
    /// `acquire` failed with an error of this kind.
    AcquireError {
        /// The error kind, as `Debug` prints it.
        kind: String,
    },
    /// The client process died (added by the driver, which killed it).
    Died,
}

/// One event of one grant attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The client process (or in-process client) number.
    pub client: usize,
    /// The task within the client.
    pub task: usize,
    /// The attempt number within the task.
    pub seq: u64,
    /// When, in monotonic ns ([`crate::monotonic_ns`]).
    pub ns: u128,
    /// What.
    pub kind: Kind,
}

impl Event {
    /// The grant this event belongs to.
    pub fn grant_id(&self) -> (usize, usize, u64) {
        (self.client, self.task, self.seq)
    }

    /// Parses a line printed by a client (`<task> <seq> <ns> <kind> [args]`),
    /// attributing it to `client`.
    pub fn parse(client: usize, line: &str) -> Option<Event> {
        let mut w = line.split_whitespace();
        let task = w.next()?.parse().ok()?;
        let seq = w.next()?.parse().ok()?;
        let ns = w.next()?.parse().ok()?;
        let kind = match w.next()? {
            "grant" => Kind::Grant {
                token: w.next()?.parse().ok()?,
                deadline_ns: w.next()?.parse().ok()?,
                waited_ns: w.next()?.parse().ok()?,
            },
            "deadline" => Kind::Deadline {
                deadline_ns: w.next()?.parse().ok()?,
            },
            "read" => Kind::Read {
                value: w.next()?.parse().ok()?,
            },
            "read_rejected" => Kind::ReadRejected,
            "write" => Kind::Write {
                value: w.next()?.parse().ok()?,
            },
            "write_rejected" => Kind::WriteRejected,
            "release" => Kind::Release {
                outcome: w.next()?.to_string(),
            },
            "lost" => Kind::Lost,
            "acquire_error" => Kind::AcquireError {
                kind: w.next()?.to_string(),
            },
            "died" => Kind::Died,
            _ => return None,
        };
        Some(Event {
            client,
            task,
            seq,
            ns,
            kind,
        })
    }
}

impl fmt::Display for Event {
    /// The line format [`Event::parse`] reads (without the client number).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.task, self.seq, self.ns)?;
        match &self.kind {
            Kind::Grant {
                token,
                deadline_ns,
                waited_ns,
            } => write!(f, "grant {token} {deadline_ns} {waited_ns}"),
            Kind::Deadline { deadline_ns } => write!(f, "deadline {deadline_ns}"),
            Kind::Read { value } => write!(f, "read {value}"),
            Kind::ReadRejected => write!(f, "read_rejected"),
            Kind::Write { value } => write!(f, "write {value}"),
            Kind::WriteRejected => write!(f, "write_rejected"),
            Kind::Release { outcome } => write!(f, "release {outcome}"),
            Kind::Lost => write!(f, "lost"),
            Kind::AcquireError { kind } => write!(f, "acquire_error {kind}"),
            Kind::Died => write!(f, "died"),
        }
    }
}

/// A fault the nemesis injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// What, for reports (`SIGSTOP client 2 (holder) 3.0s`).
    pub what: String,
    /// When it began, in monotonic ns.
    pub start_ns: u128,
    /// When it was healed (SIGCONT, proxy back to pass, server restarted).
    pub heal_ns: Option<u128>,
    /// The client it hit, if it hit a client.
    pub client: Option<usize>,
    /// From when recovery (the next grant to another client) is measured;
    /// `None` when this fault's recovery is not a figure.
    pub recovery_from: Option<u128>,
    /// The bound that recovery should meet (liveness, reported, not a
    /// safety check), in ns.
    pub recovery_bound_ns: Option<u128>,
    /// From when the loss signal of the grants it hit is measured (the
    /// fault itself, or the resume of a paused client, which could not
    /// run before).
    pub loss_from: Option<u128>,
}

impl Fault {
    /// A fault starting now.
    pub fn now(what: impl Into<String>) -> Fault {
        Fault {
            what: what.into(),
            start_ns: crate::monotonic_ns(),
            heal_ns: None,
            client: None,
            recovery_from: None,
            recovery_bound_ns: None,
            loss_from: None,
        }
    }
}

/// Every event of a run, shared by the readers of the client processes and
/// the nemesis (which can subscribe to react to events as they come).
#[derive(Debug, Clone)]
pub struct Log {
    events: Arc<Mutex<Vec<Event>>>,
    faults: Arc<Mutex<Vec<Fault>>>,
    tx: broadcast::Sender<Event>,
}

impl Default for Log {
    fn default() -> Self {
        Log::new()
    }
}

impl Log {
    /// An empty log.
    pub fn new() -> Log {
        let (tx, _) = broadcast::channel(4096);
        Log {
            events: Arc::default(),
            faults: Arc::default(),
            tx,
        }
    }

    /// Records an event and tells the subscribers.
    pub fn push(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e.clone());
        let _ = self.tx.send(e);
    }

    /// Records a fault.
    pub fn fault(&self, f: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(f);
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of every fault so far.
    pub fn faults(&self) -> Vec<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for kind in [
            Kind::Grant {
                token: 7,
                deadline_ns: 123,
                waited_ns: 5,
            },
            Kind::Deadline { deadline_ns: 9 },
            Kind::Read { value: 3 },
            Kind::ReadRejected,
            Kind::Write { value: 4 },
            Kind::WriteRejected,
            Kind::Release {
                outcome: "ok".into(),
            },
            Kind::Lost,
            Kind::AcquireError {
                kind: "Timeout".into(),
            },
            Kind::Died,
        ] {
            let e = Event {
                client: 2,
                task: 1,
                seq: 5,
                ns: 42,
                kind,
            };
            assert_eq!(Event::parse(2, &e.to_string()), Some(e));
        }
        assert_eq!(Event::parse(0, "garbage"), None);
    }
}
