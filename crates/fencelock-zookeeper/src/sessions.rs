//! The sessions of one client: its main session, and the shorter sessions
//! that grants whose TTL is below the main session's timeout live on, so
//! that a holder that dies frees the lock at its TTL rather than when the
//! main session expires.
//!
//! A TTL session is asked for the TTL rounded up to whole seconds (so that
//! grants with nearby TTLs share one), or for the server's minimum once
//! the server has shown it (it raises a shorter request to `2 × tickTime`
//! by default). The negotiated timeout is what bounds a dead holder. TTL
//! sessions are opened on first use, shared by every grant with that
//! timeout, kept open while the client lives (reused by the next grant), and
//! at most [`MAX_TTL_SESSIONS`] per client: beyond that a grant takes the
//! nearest shorter session (a dead holder is then freed sooner, never
//! later), else an idle longer one is closed to make room, else the acquire
//! is refused with `Unsupported`, naming the reason.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::sync::Mutex;

use crate::config::ZkLockBuilder;
use crate::session::Session;

/// The most sessions a client keeps beside its main one for short TTLs.
pub const MAX_TTL_SESSIONS: usize = 8;

/// The sessions of one client.
pub(crate) struct Sessions {
    cfg: ZkLockBuilder,
    main: Mutex<Option<Arc<Session>>>,
    /// TTL sessions by the timeout they stand for, in ms (never below their
    /// negotiated timeout).
    short: Mutex<BTreeMap<u64, Arc<Session>>>,
    /// The negotiated timeout of the current (or last) main session.
    main_ms: AtomicU64,
    /// The server's minimum session timeout, once seen (0 before).
    floor_ms: AtomicU64,
}

impl Sessions {
    pub(crate) fn new(cfg: ZkLockBuilder) -> Self {
        Sessions {
            main_ms: AtomicU64::new(millis(cfg.session_timeout)),
            cfg,
            main: Mutex::new(None),
            short: Mutex::new(BTreeMap::new()),
            floor_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> &ZkLockBuilder {
        &self.cfg
    }

    /// The negotiated timeout of the current (or last) main session.
    pub(crate) fn main_timeout(&self) -> Duration {
        Duration::from_millis(self.main_ms.load(Ordering::Relaxed))
    }

    /// The id of the main session, if one is open.
    pub(crate) async fn main_id(&self) -> Option<i64> {
        let cur = self.main.lock().await;
        cur.as_ref()
            .filter(|s| s.alive())
            .map(|s| s.client.session_id().0)
    }

    /// The main session, or a new one when there is none or it ended.
    pub(crate) async fn main(&self) -> Result<Arc<Session>> {
        let mut cur = self.main.lock().await;
        if let Some(s) = cur.as_ref().filter(|s| s.alive()) {
            return Ok(Arc::clone(s));
        }
        let s = Session::connect(&self.cfg, self.cfg.session_timeout).await?;
        self.main_ms.store(millis(s.timeout), Ordering::Relaxed);
        *cur = Some(Arc::clone(&s));
        Ok(s)
    }

    /// The timeout a TTL session for `ttl` asks for.
    fn wanted(&self, ttl: Duration) -> u64 {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        (secs.max(1) * 1000).max(self.floor_ms.load(Ordering::Relaxed))
    }

    /// The session a grant with `ttl` lives on: the main one when its
    /// timeout is no longer than the TTL, else a TTL session.
    ///
    /// # Errors
    ///
    /// As [`Session::connect`]; `Unsupported` when the cap on TTL sessions
    /// leaves no session that honours `ttl`.
    pub(crate) async fn for_ttl(&self, ttl: Duration) -> Result<Arc<Session>> {
        let main = self.main().await?;
        let want = self.wanted(ttl);
        if want >= millis(main.timeout) {
            return Ok(main);
        }
        let mut short = self.short.lock().await;
        short.retain(|_, s| s.alive());
        if let Some(s) = short.get(&want) {
            return Ok(Arc::clone(s));
        }
        if short.len() >= MAX_TTL_SESSIONS {
            if let Some((_, s)) = short.range(..want).next_back() {
                return Ok(Arc::clone(s));
            }
            // Only the map holds an idle session (grants and acquires hold
            // theirs, and take them under this lock).
            let idle = short
                .iter()
                .rev()
                .find(|(_, s)| Arc::strong_count(s) == 1)
                .map(|(k, _)| *k);
            let Some(idle) = idle else {
                return Err(Error::unsupported(format!(
                    "a TTL of {ttl:?} needs a ZooKeeper session of at most {:?} to bound a holder that \
                     dies, and this client already keeps {MAX_TTL_SESSIONS} sessions for shorter TTLs than \
                     its session timeout, all longer than that and all in use; release some grants, use \
                     fewer distinct TTLs, or a TTL of at least {:?}",
                    Duration::from_millis(want),
                    short.keys().next().map(|k| Duration::from_millis(*k)).unwrap_or_default()
                ))
                .with_retryable(true));
            };
            short.remove(&idle);
        }
        let asked = Duration::from_millis(want);
        let s = Session::connect(&self.cfg, asked).await?;
        if s.timeout > asked {
            self.floor_ms
                .fetch_max(millis(s.timeout), Ordering::Relaxed);
            tracing::info!(
                ?ttl,
                negotiated = ?s.timeout,
                "ZooKeeper raised the session for this TTL to its minimum: a holder that dies keeps the lock that long"
            );
        } else {
            tracing::debug!(?ttl, negotiated = ?s.timeout, "ZooKeeper session for a TTL established");
        }
        if s.timeout >= main.timeout {
            return Ok(main);
        }
        let key = want.max(millis(s.timeout));
        if let Some(existing) = short.get(&key).filter(|e| e.alive()) {
            return Ok(Arc::clone(existing));
        }
        short.insert(key, Arc::clone(&s));
        Ok(s)
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
