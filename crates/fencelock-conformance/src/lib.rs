//! The fencelock conformance suite: every promise of the
//! [`DistributedLock`](fencelock_core::DistributedLock) contract as a case,
//! for any backend, in this repository or outside it.
//!
//! A backend implements [`Harness`] for its store (how to connect, and
//! optionally its endpoints, server processes and a [`contender`]
//! program) and runs [`runner::main`] from a test binary. Each case is
//! registered by the backend's declared
//! [`Capabilities`](fencelock_core::Capabilities) and what the harness
//! offers ([`registered`]): a case that does not apply is listed as
//! ignored with its reason, never passed silently. Where a backend
//! declares a weaker promise (no FIFO order, polling instead of
//! notification), the case checks that weaker promise.
//!
//! The cases ([`cases`]) are plain `async fn(&Target)`: run one by hand
//! with a [`Target`] where a custom runner suits better.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cases;
pub mod contender;
mod harness;
mod leases;
pub mod marker;
pub mod proxy;
mod registry;
pub mod runner;
mod target;

pub use harness::Harness;
pub use leases::Leases;
pub use registry::{registered, Case, LeftOut, Registered, ALL};
pub use target::{note, steady, Target};

/// Monotonic nanoseconds (CLOCK_MONOTONIC), comparable across processes on
/// one host.
pub fn monotonic_ns() -> u128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u128::from(t.tv_sec().unsigned_abs()) * 1_000_000_000
                + u128::from(t.tv_nsec().unsigned_abs())
        })
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (bound, read, released), never one this
/// process was handed before: the kernel may give a just-released port out
/// again at once, and two servers (or a server and a port a case keeps
/// closed) must not share one.
///
/// # Panics
///
/// When no fresh port can be bound at all.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind 127.0.0.1:0");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no fresh port on 127.0.0.1 after 1000 tries");
}
