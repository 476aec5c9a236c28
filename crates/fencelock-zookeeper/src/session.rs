//! One ZooKeeper session, and the deadline it can vouch for.
//!
//! A background task follows the session: while connected it makes a cheap
//! call (`exists /`) every third of the session timeout and, when it
//! answers, publishes `time it was sent + session timeout - drift`. The
//! server heard from the session no earlier than that send, so it cannot
//! expire the session (and delete its lock nodes) before the deadline.
//! While disconnected the last deadline stands (grants go lost at it unless
//! the session comes back, like Curator's SUSPENDED then LOST). When the
//! session expires or closes, the task publishes `None`: every grant of the
//! session is lost, and the next acquire opens a new session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::config::ZkLockBuilder;
use crate::connect::connect_error;
use crate::error::once;

/// One live (or once-live) ZooKeeper session.
pub(crate) struct Session {
    pub(crate) client: zk::Client,
    deadline: Arc<watch::Sender<Option<Instant>>>,
    /// The negotiated session timeout.
    pub(crate) timeout: Duration,
    drift: Duration,
    pub(crate) call_timeout: Duration,
    monitor: Option<AbortHandle>,
}

impl Session {
    /// Establishes a session asking for `timeout`, within the connect
    /// timeout.
    pub(crate) async fn connect(cfg: &ZkLockBuilder, timeout: Duration) -> Result<Arc<Session>> {
        let hosts = cfg.hosts();
        // zookeeper-client's own default, set here so that errors can name it.
        let per_host = timeout * 2 / 5;
        let mut connector = zk::Client::connector()
            .with_session_timeout(timeout)
            .with_connection_timeout(per_host)
            .with_fail_eagerly();
        if let Some((user, password)) = &cfg.digest {
            connector = connector.with_auth("digest", format!("{user}:{password}").as_bytes());
        }
        let started = Instant::now();
        let client =
            match tokio::time::timeout(cfg.connect_timeout, connector.connect(&hosts)).await {
                Err(_) => {
                    return Err(Error::timeout(format!(
                        "cannot connect to ZooKeeper at {hosts}: no session within the connect timeout of {:?}",
                        cfg.connect_timeout
                    )))
                }
                Ok(Err(e)) => return Err(connect_error(&cfg.hosts, per_host, e).await),
                Ok(Ok(c)) => c,
            };
        let timeout = client.session_timeout();
        let drift = cfg
            .drift
            .unwrap_or_else(|| timeout / 100 + Duration::from_millis(2))
            .min(timeout / 2);
        let (tx, _) = watch::channel(Some(started + timeout - drift));
        let tx = Arc::new(tx);
        let monitor = tokio::spawn(monitor(
            client.clone(),
            Arc::clone(&tx),
            timeout,
            drift,
            cfg.timeout,
        ))
        .abort_handle();
        tracing::debug!(session = %client.session_id(), ?timeout, "ZooKeeper session established");
        Ok(Arc::new(Session {
            client,
            deadline: tx,
            timeout,
            drift,
            call_timeout: cfg.timeout,
            monitor: Some(monitor),
        }))
    }

    /// The deadline this session vouches for, `None` once it is gone.
    pub(crate) fn deadline_rx(&self) -> watch::Receiver<Option<Instant>> {
        self.deadline.subscribe()
    }

    /// Whether the session can still be used (not expired, closed or
    /// refused).
    pub(crate) fn alive(&self) -> bool {
        self.deadline.borrow().is_some() && !self.client.state().is_terminated()
    }

    /// A call sent at `sent` was answered: the server heard from the
    /// session no earlier than `sent`.
    pub(crate) fn heard(&self, sent: Instant) {
        publish(&self.deadline, sent + self.timeout - self.drift);
    }

    /// Marks the session gone (it expired under us).
    pub(crate) fn gone(&self) {
        self.deadline.send_replace(None);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(m) = self.monitor.take() {
            m.abort();
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.client.session_id())
            .field("timeout", &self.timeout)
            .field("state", &self.client.state())
            .finish()
    }
}

/// Moves the deadline forward (never back, never revives a gone session).
fn publish(tx: &watch::Sender<Option<Instant>>, next: Instant) {
    tx.send_if_modified(|d| match d {
        Some(cur) if next > *cur => {
            *cur = next;
            true
        }
        _ => false,
    });
}

async fn monitor(
    client: zk::Client,
    tx: Arc<watch::Sender<Option<Instant>>>,
    timeout: Duration,
    drift: Duration,
    call_timeout: Duration,
) {
    let mut states = client.state_watcher();
    let every = (timeout / 3).max(Duration::from_millis(10));
    loop {
        let state = states.peek_state();
        if state.is_terminated() {
            tracing::debug!(session = %client.session_id(), %state, "ZooKeeper session ended");
            tx.send_replace(None);
            return;
        }
        if state == zk::SessionState::SyncConnected {
            let sent = Instant::now();
            match once(call_timeout.min(every), client.check_stat("/")).await {
                Ok(_) => publish(&tx, sent + timeout - drift),
                Err(f) if f.session_gone() => {
                    tracing::debug!(session = %client.session_id(), "ZooKeeper session gone");
                    tx.send_replace(None);
                    return;
                }
                Err(f) => tracing::debug!(failure = ?f, "session heartbeat failed"),
            }
        }
        tokio::select! {
            _ = states.changed() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
