//! The exit codes, one place, documented in `--help` and the README.

use fencelock::{Error, ErrorKind};

/// Bad key, bad URL or option (sysexits EX_USAGE).
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
pub const TABLE: &str =
    "Exit status of `run`: the command's own (128+N when killed by signal N), or
  64   bad key, URL or option
  69   the lock service cannot be reached or did not answer in time
  70   another lock-service error
  75   busy and --wait 0 (change with --conflict-exit-code)
  80   the lock was lost while the command ran; it got SIGTERM, then SIGKILL
  124  still busy when --wait ran out (change with --timeout-exit-code)
  126  the command cannot be executed;  127  the command was not found";

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
