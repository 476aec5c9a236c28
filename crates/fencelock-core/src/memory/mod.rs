//! The in-process backend: the full contract inside one process. The
//! embedded default, and what to use in your own unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

mod inspect;

use crate::raw::{Grant, GrantOps, LateGrant, Validity, WaitBound};
use crate::{
    validate_key, Capabilities, DistributedLock, Expiry, Extend, Fairness, Fencing, FencingToken,
    LockGuard, LockOptions, OwnerId, Result, Scope, Wakeup,
};

/// The shared state behind one or more [`MemoryLock`] clients: every client
/// made from the same store excludes the others.
///
/// Memory is bounded by what is held and waited for: a key that is released
/// with nobody queued leaves no state behind, and grants that expired
/// without a release are swept as the map grows. Tokens come from one
/// counter for the whole store, so they still rise per key after a key's
/// state is gone.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    next_waiter: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, KeyState>,
    /// The last token handed out, for every key of the store.
    last_token: u64,
    /// The number of keys after the last sweep of expired ones.
    swept_at: usize,
}

impl State {
    fn entry(&mut self, key: &str) -> &mut KeyState {
        if !self.keys.contains_key(key) {
            self.sweep_if_grown();
            self.keys.insert(key.to_string(), KeyState::new());
        }
        self.keys.get_mut(key).expect("inserted above")
    }

    fn grant(&mut self, key: &str, owner: OwnerId, now: Instant, ttl: Duration) -> FencingToken {
        self.last_token += 1;
        let token = self.last_token;
        self.entry(key).holder = Some(Holder {
            owner,
            token,
            expires: now + ttl,
        });
        FencingToken::new(token)
    }

    /// Drops `key`'s state when nothing is held or queued there.
    fn forget_if_idle(&mut self, key: &str, now: Instant) {
        if self.keys.get_mut(key).is_some_and(|st| st.idle(now)) {
            self.keys.remove(key);
        }
    }

    /// Drops idle keys (expired grants nobody released) once the map has
    /// doubled since the last sweep: amortised O(1) per new key.
    fn sweep_if_grown(&mut self) {
        if self.keys.len() < 2 * self.swept_at + 64 {
            return;
        }
        let now = Instant::now();
        self.keys.retain(|_, st| !st.idle(now));
        self.keys.shrink_to(2 * self.keys.len() + 64);
        self.swept_at = self.keys.len();
    }
}

#[derive(Debug)]
struct KeyState {
    holder: Option<Holder>,
    queue: VecDeque<u64>,
    changes: watch::Sender<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Holder {
    owner: OwnerId,
    token: u64,
    expires: Instant,
}

impl KeyState {
    fn new() -> Self {
        KeyState {
            holder: None,
            queue: VecDeque::new(),
            changes: watch::channel(0).0,
        }
    }

    /// The holder, if its TTL has not run out (clears an expired one).
    fn holder(&mut self, now: Instant) -> Option<Holder> {
        if self.holder.is_some_and(|h| now >= h.expires) {
            self.holder = None;
        }
        self.holder
    }

    /// Nothing held, nobody queued: the state can go.
    fn idle(&mut self, now: Instant) -> bool {
        self.holder(now).is_none() && self.queue.is_empty()
    }

    fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
}

impl MemoryStore {
    /// A new, empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many keys are held right now (expired grants do not count).
    pub fn held(&self) -> usize {
        let now = Instant::now();
        self.state()
            .keys
            .values_mut()
            .filter_map(|s| s.holder(now))
            .count()
    }

    /// How many acquirers are queued on `key`.
    pub fn waiting(&self, key: &str) -> usize {
        self.state().keys.get(key).map_or(0, |s| s.queue.len())
    }

    /// How many keys the store keeps state for: those held or waited for,
    /// plus expired grants not yet swept. Released keys are not counted.
    pub fn tracked(&self) -> usize {
        self.state().keys.len()
    }
}

/// An in-process [`DistributedLock`]: FIFO-fair, waiters woken by
/// notification (no polling), TTL expiry on Tokio time, strictly increasing
/// tokens per key, cancel-safe acquire.
///
/// Clients made with [`MemoryLock::with_store`] on one store exclude each
/// other; [`MemoryLock::named`] gives every caller of one name the same
/// store (that is what `memory://name` connects to).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> fencelock_core::Result<()> {
/// use fencelock_core::{DistributedLock, LockOptions, MemoryLock};
///
/// let lock = MemoryLock::new();
/// let opts = LockOptions::new();
/// let guard = lock.acquire("paymentConfirm:PK-1", &opts).await?;
/// assert!(lock.try_acquire("paymentConfirm:PK-1", &opts).await?.is_none());
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryLock {
    store: Arc<MemoryStore>,
}

impl Default for MemoryLock {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLock {
    /// A client on a store of its own.
    pub fn new() -> Self {
        Self::with_store(MemoryStore::new())
    }

    /// A client on a given store.
    pub fn with_store(store: Arc<MemoryStore>) -> Self {
        MemoryLock { store }
    }

    /// A client on the process-wide store called `name` (created on first use).
    pub fn named(name: &str) -> Self {
        static NAMED: OnceLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = OnceLock::new();
        let mut named = NAMED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Self::with_store(Arc::clone(named.entry(name.to_string()).or_default()))
    }

    /// The store this client uses.
    pub fn store(&self) -> &Arc<MemoryStore> {
        &self.store
    }

    fn guard(
        &self,
        key: &str,
        owner: OwnerId,
        token: FencingToken,
        sent_at: Instant,
        opts: &LockOptions,
    ) -> Result<LockGuard, LateGrant> {
        let ops = Arc::new(MemoryGrant {
            store: Arc::clone(&self.store),
            key: key.to_string(),
            owner,
        });
        LockGuard::from_grant(
            Grant {
                key: key.to_string(),
                token,
                owner,
                validity: Validity::Ttl { sent_at },
                ops,
                revoked: None,
            },
            opts,
        )
    }
}

/// Removes a queued waiter when its acquire is dropped, and wakes the next.
struct QueueTicket<'a> {
    store: &'a MemoryStore,
    key: &'a str,
    id: u64,
    armed: bool,
}

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.store.state();
        if let Some(st) = state.keys.get_mut(self.key) {
            let was_front = st.queue.front() == Some(&self.id);
            st.queue.retain(|w| *w != self.id);
            if was_front {
                st.changed();
            }
        }
        state.forget_if_idle(self.key, Instant::now());
    }
}

#[async_trait]
impl DistributedLock for MemoryLock {
    async fn try_acquire(&self, key: &str, opts: &LockOptions) -> Result<Option<LockGuard>> {
        validate_key(key)?;
        opts.validate()?;
        let owner = OwnerId::random();
        let now = Instant::now();
        let token = {
            let mut state = self.store.state();
            if let Some(st) = state.keys.get_mut(key) {
                if st.holder(now).is_some() || !st.queue.is_empty() {
                    return Ok(None);
                }
            }
            state.grant(key, owner, now, opts.ttl())
        };
        Ok(Some(self.guard(key, owner, token, now, opts)?))
    }

    async fn acquire(&self, key: &str, opts: &LockOptions) -> Result<LockGuard> {
        validate_key(key)?;
        opts.validate()?;
        let owner = OwnerId::random();
        let bound = WaitBound::start(opts);
        let id = self.store.next_waiter.fetch_add(1, Ordering::Relaxed);
        let mut ticket = QueueTicket {
            store: &self.store,
            key,
            id,
            armed: true,
        };
        self.store.state().entry(key).queue.push_back(id);
        loop {
            let now = Instant::now();
            let (mut changes, holder_expires) = {
                let mut state = self.store.state();
                let st = state.entry(key);
                let holder = st.holder(now);
                if holder.is_none() && st.queue.front() == Some(&id) {
                    st.queue.pop_front();
                    ticket.armed = false;
                    let token = state.grant(key, owner, now, opts.ttl());
                    drop(state);
                    return Ok(self.guard(key, owner, token, now, opts)?);
                }
                (st.changes.subscribe(), holder.map(|h| h.expires))
            };
            if bound.passed() {
                return Err(bound.busy(key));
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = bound.sleep_until(holder_expires) => {}
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new("memory")
            .with_fencing(Fencing::Strict)
            .with_fairness(Fairness::Fifo)
            .with_wakeup(Wakeup::Notification)
            .with_expiry(Expiry::Ttl)
            .with_scope(Scope::Process)
            .with_extend(Extend::PerGrant)
            .with_store_restart(
                "the store lives in the process: a restart forgets every lock and token",
            )
            .with_store_failover("no failover: one process")
    }
}

struct MemoryGrant {
    store: Arc<MemoryStore>,
    key: String,
    owner: OwnerId,
}

#[async_trait]
impl GrantOps for MemoryGrant {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut state = self.store.state();
        let Some(st) = state.keys.get_mut(&self.key) else {
            return Ok(false);
        };
        match &mut st.holder {
            Some(h) if h.owner == self.owner && now < h.expires => {
                h.expires = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self) -> Result<bool> {
        let now = Instant::now();
        let mut state = self.store.state();
        let Some(st) = state.keys.get_mut(&self.key) else {
            return Ok(false);
        };
        let released = match st.holder {
            Some(h) if h.owner == self.owner => {
                st.holder = None;
                st.changed();
                now < h.expires
            }
            _ => false,
        };
        state.forget_if_idle(&self.key, now);
        Ok(released)
    }
}
