//! The exit codes, one place, documented in `--help` and the README.

use fencelock::{Error, ErrorKind};

/// Bad key, bad URL or option, a store that cannot coordinate processes
/// (sysexits EX_USAGE).
pub const USAGE: u8 = 64;
/// The lock service cannot be reached, or did not answer in time
/// (EX_UNAVAILABLE): an outage, never a busy lock.
pub const UNAVAILABLE: u8 = 69;
/// Any other failure of the lock service (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// Default for `--conflict-exit-code`: the lock is busy and `--wait 0`.
pub const CONFLICT: u8 = 75;
/// The lock was lost while the command ran (the command was stopped).
pub const LOST: u8 = 80;
/// Default for `--timeout-exit-code`: still busy when `--wait` ran out.
pub const TIMEOUT: u8 = 124;
/// The command could not be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// The text `--help` shows.
pub const TABLE: &str = "Exit status:
  0    done (`run`: the command's own status, 128+N when killed by signal N)
  64   bad key, URL or option; memory:// (it cannot coordinate processes);
       `unlock` without --force
  69   the lock service cannot be reached or did not answer in time
  70   another lock-service error (e.g. the backend cannot list or unlock)
  75   `run`: busy and --wait 0 (change with --conflict-exit-code)
  80   `run`: the lock was lost while the command ran; it got SIGTERM, then SIGKILL
  124  `run`: still busy when --wait ran out (change with --timeout-exit-code)
  126  `run`: the command cannot be executed
  127  `run`: the command was not found";

/// The exit code for a lock-service error.
pub fn for_error(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::InvalidKey | ErrorKind::InvalidConfig => USAGE,
        ErrorKind::Connection | ErrorKind::Timeout => UNAVAILABLE,
        ErrorKind::Busy => TIMEOUT,
        ErrorKind::Lost => LOST,
        _ => SOFTWARE,
    }
}
