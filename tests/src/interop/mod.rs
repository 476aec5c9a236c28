//! Interoperability with the stores' own recipe clients: a [`Peer`]
//! (Apache Curator, `etcdctl lock`, etcd's Lock service) runs as a process
//! of its own on the lock fencelock uses, and prints what it got
//! ([`Event`]s), so a test can see when the peer held the lock, with which
//! token, and whether it ever found someone else inside.
//!
//! A peer takes a recipe name (`mutex` today) and a [`Mode`]: `hold` (one
//! acquire with a bound, hold, release) or `loop` (rounds with the
//! in-section [`marker`]). A new primitive adds its recipe to the peer
//! programs (`tests/interop/java/Peer.java`, `src/bin/interop_peer.rs`)
//! and its cases to a `tests/interop_<primitive>.rs`; the harness stays.

mod java;
pub use fencelock_conformance::marker;
mod pair;
mod peer;
mod process;

use std::path::PathBuf;

pub use pair::{Pair, PEER_SESSION};
pub use peer::{Mode, Peer};
pub use process::{Event, PeerProcess};

/// Microseconds since the Unix epoch: the time base of the peers' lines.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A binary of this workspace next to the running test's own executable
/// (`target/<profile>/<name>`; tests run from `target/<profile>/deps`).
///
/// # Errors
///
/// When it is not built (`hint` says how to build it).
pub fn workspace_bin(name: &str, hint: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n != "deps") {
            break;
        }
        dir = d.parent();
    }
    Err(format!(
        "the {name} binary is not built next to {}: {hint}",
        exe.display()
    ))
}
