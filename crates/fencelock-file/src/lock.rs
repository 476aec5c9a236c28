//! `FileLock`: the trait on advisory file locks.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fencelock_core::raw::{Grant, GrantOps, SessionClock, WaitBound};
use fencelock_core::{
    validate_key, Capabilities, DistributedLock, Error, Expiry, Extend, Fairness, Fencing,
    FencingToken, LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};
use tokio::time::Instant;

use crate::path::{key_of, lock_path};

/// How often a waiter re-tries at most (it starts at 1 ms and doubles).
const MAX_POLL: Duration = Duration::from_millis(20);

/// A lock service on one host with no server: each key is a file under a
/// directory, held with the operating system's advisory lock (`flock`),
/// released by the kernel the moment the holding process dies. The file
/// keeps the last fencing token, updated (and `fsync`ed) under the lock.
///
/// A grant never expires while its process lives (`Expiry::Process`): the
/// TTL is not enforced by the store, and `extend` has nothing to extend.
/// Waiters poll with backoff (1 ms doubling to 20 ms).
#[derive(Debug, Clone)]
pub struct FileLock {
    dir: Arc<PathBuf>,
}

/// What a lock file says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLockStatus {
    /// The lock key.
    pub key: String,
    /// Whether some process holds it now.
    pub held: bool,
    /// The last token handed out (the holder's, when held).
    pub token: Option<FencingToken>,
    /// The last holder's owner id.
    pub owner: Option<OwnerId>,
    /// The last holder's process id.
    pub pid: Option<u32>,
}

pub(crate) fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::backend(format!("{what} {}", path.display())).with_source(e)
}

impl FileLock {
    /// A lock service in `dir` (created if missing).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fencelock_core::ErrorKind::InvalidConfig)
    /// when the directory cannot be created or is not a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("keys")).map_err(|e| {
            Error::invalid_config(format!("cannot use {} as a lock directory", dir.display()))
                .with_source(e)
        })?;
        Ok(FileLock { dir: Arc::new(dir) })
    }

    /// `file:///absolute/dir`, or `file://` for [`default_dir`](Self::default_dir).
    ///
    /// # Errors
    ///
    /// `InvalidConfig` for another scheme, a relative path, or a directory
    /// that cannot be made.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("file://")
            .ok_or_else(|| Error::invalid_config(format!("{url:?} is not a file:// URL")))?;
        if let Some(i) = rest.find(['?', '#']) {
            return Err(Error::invalid_config(format!(
                "{url:?}: file:// URLs take no options (found {:?}); the lock directory is the whole path",
                &rest[i..]
            )));
        }
        if rest.is_empty() {
            return Self::new(Self::default_dir());
        }
        if !rest.starts_with('/') {
            return Err(Error::invalid_config(format!(
                "{url:?}: the lock directory must be absolute, e.g. file:///var/lock/myapp"
            )));
        }
        Self::new(rest)
    }

    /// `$XDG_RUNTIME_DIR/fencelock`, else `/tmp/fencelock-<user>`.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("fencelock"),
            _ => {
                let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
                std::env::temp_dir().join(format!("fencelock-{user}"))
            }
        }
    }

    /// The directory holding the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn attempt(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        let path = lock_path(&self.dir, key);
        let owner = OwnerId::random();
        let at = path.clone();
        let taken = tokio::task::spawn_blocking(move || take(&at, owner))
            .await
            .map_err(|e| Error::backend("the file-lock task failed").with_source(e))??;
        let Some((file, token)) = taken else {
            return Ok(None);
        };
        // The process is the session: it vouches for its grants as long
        // as it lives.
        let clock = SessionClock::new(Instant::now(), Duration::from_secs(10 * 365 * 86_400));
        let validity = clock.validity();
        let revoked = crate::forced::replaced(path, &file);
        let ops = Arc::new(FileGrant {
            file: Mutex::new(Some(file)),
            _clock: clock,
        });
        Ok(Some(LockGuard::from_grant(
            Grant {
                key: key.to_string(),
                token,
                owner,
                validity,
                ops,
                revoked,
            },
            opts,
        )?))
    }

    /// Whether `key` is held, and its last token, owner and process.
    ///
    /// To learn whether the key is held it tries the lock for an instant, so
    /// a concurrent `try_acquire` may see it busy in that instant.
    ///
    /// # Errors
    ///
    /// `InvalidKey`; `Backend` on I/O errors.
    pub async fn status(&self, key: &str) -> Result<FileLockStatus> {
        validate_key(key)?;
        let path = lock_path(&self.dir, key);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || status_of(&path, key))
            .await
            .map_err(|e| Error::backend("the file-lock task failed").with_source(e))?
    }

    /// Every key that has a lock file, whose name starts with `prefix`.
    ///
    /// # Errors
    ///
    /// `Backend` on I/O errors.
    pub async fn list(&self, prefix: &str) -> Result<Vec<FileLockStatus>> {
        let dir = Arc::clone(&self.dir);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![dir.join("keys")];
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d).map_err(|e| io_error("cannot list", &d, e))?;
                for entry in entries.flatten() {
                    let p = entry.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if let Some(key) = key_of(&dir, &p) {
                        if key.starts_with(&prefix) {
                            out.push(status_of(&p, key)?);
                        }
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| Error::backend("the file-lock task failed").with_source(e))?
    }
}

/// Opens (creating) the lock file, tries the lock, and on success bumps the
/// token in it. Blocking.
fn take(path: &Path, owner: OwnerId) -> Result<Option<(File, FencingToken)>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error("cannot create", parent, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error("cannot open", path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => return Err(io_error("cannot lock", path, e)),
    }
    if !crate::forced::still_at(&file, path) {
        // A forced unlock replaced the file after we opened it: the lock we
        // took is on the old one. Take the new one.
        drop(file);
        return take(path, owner);
    }
    let last = read_record(&mut file).map_err(|e| io_error("cannot read", path, e))?;
    let token = last.token.map_or(1, |t| t.get() + 1);
    let record = format!("{token} {owner} {}\n", std::process::id());
    (|| {
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(record.as_bytes())?;
        file.sync_data()
    })()
    .map_err(|e| io_error("cannot write", path, e))?;
    Ok(Some((file, FencingToken::new(token))))
}

#[derive(Default)]
pub(crate) struct Record {
    pub(crate) token: Option<FencingToken>,
    pub(crate) owner: Option<OwnerId>,
    pub(crate) pid: Option<u32>,
}

pub(crate) fn read_record(file: &mut File) -> std::io::Result<Record> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    let mut parts = text.split_whitespace();
    Ok(Record {
        token: parts
            .next()
            .and_then(|t| t.parse().ok())
            .map(FencingToken::new),
        owner: parts.next().and_then(OwnerId::parse),
        pid: parts.next().and_then(|p| p.parse().ok()),
    })
}

pub(crate) fn status_of(path: &Path, key: String) -> Result<FileLockStatus> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileLockStatus {
                key,
                held: false,
                token: None,
                owner: None,
                pid: None,
            })
        }
        Err(e) => return Err(io_error("cannot open", path, e)),
    };
    let held = match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(e)) => return Err(io_error("cannot lock", path, e)),
    };
    let r = read_record(&mut file).map_err(|e| io_error("cannot read", path, e))?;
    Ok(FileLockStatus {
        key,
        held,
        token: r.token,
        owner: r.owner,
        pid: r.pid,
    })
}

#[async_trait]
impl DistributedLock for FileLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        self.attempt(key, opts).await
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let bound = WaitBound::start(opts);
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(g) = self.attempt(key, opts).await? {
                return Ok(g);
            }
            if bound.passed() {
                return Err(bound.busy(key));
            }
            bound.sleep_until(Some(Instant::now() + pause)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new("file")
            .with_fencing(Fencing::Strict)
            .with_fairness(Fairness::Unfair)
            .with_wakeup(Wakeup::Polling)
            .with_expiry(Expiry::Process)
            .with_scope(Scope::Host)
            .with_extend(Extend::Session)
            .with_store_restart("a host restart frees every lock; tokens survive (the counter is fsynced in the lock file)")
            .with_store_failover("no failover: one host")
    }
}

/// One held lock file. Dropping it closes the descriptor, and the kernel
/// releases the lock.
struct FileGrant {
    file: Mutex<Option<File>>,
    _clock: SessionClock,
}

#[async_trait]
impl GrantOps for FileGrant {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        Ok(self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some())
    }

    async fn release(&self) -> Result<bool> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Ok(match file {
            Some(f) => {
                let _ = f.unlock();
                true
            }
            None => false,
        })
    }
}
