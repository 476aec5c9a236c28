//! Observability: `tracing` spans and events on acquire, renew, release and
//! loss, and optional metrics (cargo feature `metrics`).
//!
//! Every guard carries a `fencelock.lease` span (fields `key`, `token`,
//! `owner`, `backend`) from its grant to its end; renewals, renewal
//! failures, the loss and the release are events in it, so a subscriber
//! sees a lease's whole life and where it went wrong. Wrap a backend in
//! [`Instrumented`] (the facade's `connect` does) to get a
//! `fencelock.acquire` span around every acquire too, with the wait it took
//! and how it ended.
//!
//! With the `metrics` feature, these go to the [`metrics`] facade crate
//! (install any recorder, e.g. a Prometheus exporter):
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `fencelock_acquire_seconds` | histogram | `backend`, `op`, `outcome` | time an acquire took, waiting included |
//! | `fencelock_acquire_total` | counter | `backend`, `op`, `outcome` | acquires; `outcome="busy"` counts contention |
//! | `fencelock_hold_seconds` | histogram | `backend`, `end` | how long grants were held |
//! | `fencelock_lost_total` | counter | `backend`, `reason` | grants lost before their release |
//!
//! `op` is `acquire` or `try_acquire`; `outcome` is `granted`, `busy`, or
//! the error kind (`timeout`, `connection`, ...); `end` is `released`,
//! `dropped` or `lost`; `reason` is `revoked` (the store took the key
//! away) or `deadline` (renewals stopped, TTL or hold cap reached, session
//! ended). Without an [`Instrumented`] wrapper `backend` reads `unknown`.
//!
//! [`metrics`]: https://docs.rs/metrics

mod instrumented;
pub(crate) mod record;

pub use instrumented::Instrumented;
