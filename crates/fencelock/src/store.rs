//! [`Store`]: one opened store, from which each primitive is taken.

use std::sync::Arc;

use fencelock_core::{Capabilities, DistributedLock, Error, Inspect, Instrumented, Result};

/// A store opened once by [`open`](crate::open): hand out its primitives from here.
/// Cheap to clone; every clone shares the connection.
///
/// Every primitive it hands out is [`Instrumented`]: acquires run in a
/// `fencelock.acquire` span and feed the metrics of
/// [`observe`](fencelock_core::observe).
#[derive(Clone)]
pub struct Store {
    lock: Arc<dyn DistributedLock>,
    inspect: Option<Arc<dyn Inspect>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("lock", &self.lock)
            .field("inspect", &self.inspect.is_some())
            .finish()
    }
}

impl Store {
    pub(crate) fn both<L: DistributedLock + Inspect>(lock: L) -> Self {
        let lock = Arc::new(Instrumented::new(lock));
        Store {
            lock: lock.clone(),
            inspect: Some(lock),
        }
    }

    // Only Redlock, behind the `redis` feature, has no inspector.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn lock_only<L: DistributedLock>(lock: L) -> Self {
        Store {
            lock: Arc::new(Instrumented::new(lock)),
            inspect: None,
        }
    }

    /// The store's mutex.
    pub fn lock(&self) -> Arc<dyn DistributedLock> {
        Arc::clone(&self.lock)
    }

    /// Inspection (status, list, forced unlock) of the store's locks.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](fencelock_core::ErrorKind::Unsupported)
    /// for a backend that cannot inspect.
    pub fn inspector(&self) -> Result<Arc<dyn Inspect>> {
        self.inspect.clone().ok_or_else(|| {
            Error::unsupported(format!(
                "the {} backend cannot inspect locks",
                self.capabilities().backend
            ))
        })
    }

    /// What the store's backend promises, per primitive.
    pub fn capabilities(&self) -> Capabilities {
        self.lock.capabilities()
    }
}
