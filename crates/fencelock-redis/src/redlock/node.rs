//! One Redlock node: a single-server [`RedisLock`] (its connection, pub/sub
//! subscriber and renewal batcher), connected in the background when it
//! was down.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::time::Instant;

use fencelock_core::raw::url::redact;

use crate::config::{RedisLockBuilder, Target};
use crate::dial::{endpoint, open};
use crate::lock::RedisLock;

/// How long after a failed connect a node is tried again.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

pub(crate) struct Node {
    pub(crate) index: usize,
    /// `host:port`, for error messages.
    endpoint: String,
    builder: RedisLockBuilder,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lock: Option<RedisLock>,
    connecting: bool,
    next_try: Option<Instant>,
}

impl Node {
    pub(crate) fn new(index: usize, builder: RedisLockBuilder) -> Arc<Self> {
        let endpoint = match &builder.target {
            Target::Single(url) => open(url, None).map_or_else(|_| redact(url), |c| endpoint(&c)),
            other => format!("{other:?}"),
        };
        Arc::new(Node {
            index,
            endpoint,
            builder,
            state: Mutex::new(State::default()),
        })
    }

    /// The node's `host:port`.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's client if connected. Otherwise starts a background
    /// connect (unless one runs or failed just now) and fails at once: an
    /// acquire never waits for a node to connect.
    pub(crate) fn get(self: &Arc<Self>) -> Result<RedisLock> {
        let mut st = self.state();
        if let Some(lock) = &st.lock {
            return Ok(lock.clone());
        }
        let due = st.next_try.is_none_or(|t| Instant::now() >= t);
        if !st.connecting && due {
            st.connecting = true;
            let node = Arc::clone(self);
            tokio::spawn(async move {
                let _ = node.connect().await;
            });
        }
        Err(Error::connection(format!(
            "Redlock node {} (Redis at {}) is not connected",
            self.index, self.endpoint
        )))
    }

    /// The node's client if connected, without side effects.
    pub(crate) fn connected(&self) -> Option<RedisLock> {
        self.state().lock.clone()
    }

    /// Connects (bounded by the connect timeout) and records the outcome.
    pub(crate) async fn connect(&self) -> Result<()> {
        let result = self.builder.clone().build().await;
        let mut st = self.state();
        st.connecting = false;
        match result {
            Ok(lock) => {
                st.lock = Some(lock);
                st.next_try = None;
                Ok(())
            }
            Err(e) => {
                st.next_try = Some(Instant::now() + RECONNECT_AFTER);
                Err(e)
            }
        }
    }
}
