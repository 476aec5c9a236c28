//! Redis Sentinel: find the primary by asking the Sentinels
//! (`SENTINEL get-master-addr-by-name`), and follow it across failovers.
//!
//! [`SentinelConn`] is a [`ConnectionLike`] over a reconnecting connection
//! to the current primary, so every other part of the client (the scripts,
//! the renewal batcher, `WAIT`) runs on it unchanged. The primary is looked
//! up again
//!
//! - when a command fails in a way that says "not the primary any more"
//!   (connection refused or dropped, timeout, `READONLY`, `MASTERDOWN`,
//!   `LOADING`), at most every [`MIN_REFRESH`];
//! - when a Sentinel announces `+switch-master` for our master name (a
//!   background task stays subscribed on one Sentinel at a time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use fencelock_core::Result;
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use tokio::time::{timeout, Instant};

mod ask;

use crate::config::{host_port, SentinelSpec};
use crate::dial::{manager, open};
use ask::{ask_primary, ask_replicas};

/// The least time between two look-ups triggered by errors.
const MIN_REFRESH: Duration = Duration::from_millis(100);
/// Backoff of the `+switch-master` watcher between Sentinels.
const WATCH_BACKOFF: Duration = Duration::from_millis(500);

/// A connection to whatever node the Sentinels name as primary.
#[derive(Clone)]
pub(crate) struct SentinelConn {
    shared: Arc<Shared>,
}

struct Shared {
    spec: SentinelSpec,
    /// The root certificates of a private CA, for every client made later.
    tls: Option<redis::TlsCertificates>,
    sentinels: Vec<redis::Client>,
    connect_timeout: Duration,
    response_timeout: Duration,
    primary: RwLock<Primary>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    next_sentinel: AtomicUsize,
}

#[derive(Clone)]
struct Primary {
    addr: (String, u16),
    conn: ConnectionManager,
}

impl SentinelConn {
    /// Asks the Sentinels for the primary, connects to it, and starts the
    /// `+switch-master` watcher. Also returns clients for the primary and
    /// the replicas the Sentinels know (any of them will do for pub/sub:
    /// a `PUBLISH` on the primary reaches its replicas).
    pub(crate) async fn connect(
        spec: &SentinelSpec,
        tls: Option<redis::TlsCertificates>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<(Self, Vec<redis::Client>)> {
        let sentinels = spec
            .sentinels
            .iter()
            .map(|u| open(u, tls.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let (addr, _) = ask_primary(
            &sentinels,
            &spec.master,
            0,
            connect_timeout,
            response_timeout,
        )
        .await?;
        let client = open(&spec.node_url(&addr.0, addr.1), tls.as_ref())?;
        let conn = manager(&client, connect_timeout, response_timeout).await?;
        let mut clients = vec![client];
        for (host, port) in
            ask_replicas(&sentinels, &spec.master, connect_timeout, response_timeout).await
        {
            if let Ok(c) = open(&spec.node_url(&host, port), tls.as_ref()) {
                clients.push(c);
            }
        }
        tracing::debug!(master = %spec.master, primary = ?addr, "fencelock-redis: primary found through Sentinel");
        let shared = Arc::new(Shared {
            spec: spec.clone(),
            tls,
            sentinels,
            connect_timeout,
            response_timeout,
            primary: RwLock::new(Primary { addr, conn }),
            refresh: tokio::sync::Mutex::new(None),
            next_sentinel: AtomicUsize::new(0),
        });
        tokio::spawn(watch_switches(Arc::downgrade(&shared)));
        Ok((SentinelConn { shared }, clients))
    }

    fn primary(&self) -> ConnectionManager {
        self.shared
            .primary
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .conn
            .clone()
    }

    /// The primary calls go to now, for error messages: `Redis at
    /// host:port (the primary of "name")`.
    pub(crate) fn endpoint(&self) -> String {
        let addr = self
            .shared
            .primary
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .addr
            .clone();
        format!(
            "Redis at {} (the primary of {:?})",
            host_port(&addr.0, addr.1),
            self.shared.spec.master
        )
    }

    /// Looks the primary up again in a task of its own, so that a caller's
    /// timeout cannot cut the switch in half, and waits for it.
    async fn refresh_after_error(&self) {
        let shared = Arc::clone(&self.shared);
        let _ = tokio::spawn(async move { shared.refresh(false).await }).await;
    }
}

impl Shared {
    /// Asks the Sentinels for the primary and switches to it when it moved.
    /// `force`: also within [`MIN_REFRESH`] of the last look-up.
    async fn refresh(&self, force: bool) {
        let mut last = self.refresh.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        let start = self.next_sentinel.load(Ordering::Relaxed);
        let found = ask_primary(
            &self.sentinels,
            &self.spec.master,
            start,
            self.connect_timeout,
            self.response_timeout,
        )
        .await;
        let (addr, answered) = match found {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "fencelock-redis: no Sentinel named a primary");
                return;
            }
        };
        self.next_sentinel.store(answered, Ordering::Relaxed);
        let same = self
            .primary
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .addr
            == addr;
        if same {
            return;
        }
        let url = self.spec.node_url(&addr.0, addr.1);
        let conn = match open(&url, self.tls.as_ref()) {
            Ok(client) => manager(&client, self.connect_timeout, self.response_timeout).await,
            Err(e) => Err(e),
        };
        match conn {
            Ok(conn) => {
                tracing::info!(master = %self.spec.master, primary = ?addr, "fencelock-redis: following a failover");
                *self.primary.write().unwrap_or_else(PoisonError::into_inner) =
                    Primary { addr, conn };
            }
            Err(e) => {
                tracing::debug!(error = %e, "fencelock-redis: the new primary is not reachable yet");
            }
        }
    }
}

/// Whether an error says the node may not be the primary any more.
fn stale_error(e: &RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_io_error()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

fn stale_value(v: &Value) -> bool {
    match v {
        Value::ServerError(e) => matches!(e.code(), "READONLY" | "MASTERDOWN" | "LOADING"),
        Value::Array(items) => items.iter().any(stale_value),
        _ => false,
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.primary();
            let result = conn.req_packed_command(cmd).await;
            let stale = match &result {
                Ok(v) => stale_value(v),
                Err(e) => stale_error(e),
            };
            if stale {
                self.refresh_after_error().await;
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.primary();
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            let stale = match &result {
                Ok(values) => values.iter().any(stale_value),
                Err(e) => stale_error(e),
            };
            if stale {
                self.refresh_after_error().await;
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.primary().get_db()
    }
}

/// Stays subscribed to `+switch-master` on one Sentinel at a time and
/// looks the primary up again when one names our master. Ends when the
/// client is gone.
async fn watch_switches(shared: Weak<Shared>) {
    let mut next = 0usize;
    loop {
        let (client, master, ct) = {
            let Some(s) = shared.upgrade() else { return };
            let client = s.sentinels[next % s.sentinels.len()].clone();
            (client, s.spec.master.clone(), s.connect_timeout)
        };
        next = next.wrapping_add(1);
        if let Ok(Ok(mut pubsub)) = timeout(ct, client.get_async_pubsub()).await {
            if matches!(
                timeout(ct, pubsub.subscribe("+switch-master")).await,
                Ok(Ok(()))
            ) {
                let mut stream = pubsub.on_message();
                loop {
                    let msg = tokio::select! {
                        m = stream.next() => m,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            if shared.strong_count() == 0 { return; }
                            continue;
                        }
                    };
                    let Some(msg) = msg else { break };
                    let payload: String = msg.get_payload().unwrap_or_default();
                    if payload.split_whitespace().next() == Some(master.as_str()) {
                        let Some(s) = shared.upgrade() else { return };
                        s.refresh(true).await;
                    }
                }
            }
        }
        if shared.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(WATCH_BACKOFF).await;
    }
}
