//! fencelock's test bed: real servers for every backend, and what runs on
//! them.
//!
//! [`fixture`] starts real servers (loopback, ports chosen at run time,
//! temp dirs, stopped by PID); [`FixtureHarness`] hands a fixture to the
//! conformance suite of the `fencelock-conformance` crate
//! (`tests/suite.rs` runs it on every backend); [`proxy`] cuts clients off
//! from servers; [`interop`] runs the stores' own recipe clients beside
//! fencelock; [`chaos`] is the fault-injection harness.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod chaos;
pub mod fixture;
mod harness;
pub mod interop;

pub use fencelock_conformance::{monotonic_ns, proxy};
pub use harness::FixtureHarness;
