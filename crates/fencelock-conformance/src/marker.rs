//! The in-section marker of the mixed-contention cases: a file created
//! with `O_EXCL` on entering the critical section and deleted on leaving,
//! so a second process inside at the same time finds it there.

use std::io::ErrorKind;
use std::path::Path;

/// Enters the section: creates `marker`. `Ok(false)` when it exists
/// already: someone else is inside (an overlap).
///
/// # Errors
///
/// When the file can neither be created nor found.
pub fn enter(marker: &Path) -> std::io::Result<bool> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Leaves the section entered with `enter` (which returned `true`).
///
/// # Errors
///
/// When the marker cannot be deleted (gone already: someone else removed it).
pub fn leave(marker: &Path) -> std::io::Result<()> {
    std::fs::remove_file(marker)
}
