//! The fencelock conformance suite.
//!
//! One `pub async fn` per behaviour in [`cases`], each taking a [`Target`]
//! (a backend's fixture and fresh clients). Which checks apply is read from
//! the backend's declared [`Capabilities`](fencelock::Capabilities). A new
//! backend gets the whole suite by adding one line to `tests/suite.rs`.
//!
//! [`fixture`] starts real servers; [`proxy`] cuts clients off from them;
//! [`interop`] runs the stores' own recipe clients beside fencelock.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cases;
pub mod chaos;
pub mod fixture;
pub mod interop;
pub mod proxy;
pub mod target;

pub use target::Target;

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
