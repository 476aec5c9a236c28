//! Breaking a wedged file lock: a live process's `flock` cannot be taken
//! away, so a forced unlock replaces the lock file instead.
//!
//! The new file (written aside, `fsync`ed, renamed over the old one) holds
//! the old file's last token plus one, so the next grant's token is above
//! both. The old holder keeps its `flock` on a file that no longer has a
//! name; its grant notices within [`CHECK_EVERY`] that the path names
//! another file and is lost. An acquire that opened the old file just
//! before the rename sees the same after its `flock` and starts over on the
//! new file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fencelock_core::{FencingToken, Result};

use crate::lock::{io_error, status_of, FileLockStatus};

/// How often a grant checks that its file is still the one at its path.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A grant's `revoked` signal.
type Revoked = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// The device and inode of an open file.
fn identity(file: &File) -> Option<(u64, u64)> {
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `path` still names `file`. Blocking.
pub(crate) fn still_at(file: &File, path: &Path) -> bool {
    match (identity(file), std::fs::metadata(path)) {
        (Some(id), Ok(m)) => id == (m.dev(), m.ino()),
        _ => false,
    }
}

/// Completes when `path` no longer names `file` (replaced by a forced
/// unlock, or deleted).
pub(crate) fn replaced(path: PathBuf, file: &File) -> Option<Revoked> {
    let id = identity(file)?;
    Some(Box::pin(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            // One stat: too quick to be worth a blocking-pool thread.
            match std::fs::metadata(&path) {
                Ok(m) if (m.dev(), m.ino()) == id => {}
                Ok(_) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot check the lock file")
                }
            }
        }
    }))
}

/// Replaces the lock file at `path` by one holding the last token plus
/// one. Returns what the old file said, and the token written. Blocking.
pub(crate) fn replace(path: &Path, key: String) -> Result<(FileLockStatus, FencingToken)> {
    let before = status_of(path, key)?;
    let raised = FencingToken::new(before.token.map_or(1, |t| t.get() + 1));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error("cannot create", parent, e))?;
    }
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".forced-{}", std::process::id()));
    let aside = PathBuf::from(aside);
    (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&aside)?;
        f.write_all(format!("{raised}\n").as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&aside, path)?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })()
    .map_err(|e| {
        let _ = std::fs::remove_file(&aside);
        io_error("cannot replace", path, e)
    })?;
    Ok((before, raised))
}
