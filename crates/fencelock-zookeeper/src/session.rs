//! One ZooKeeper session, and the deadline it can vouch for.
//!
//! A background task follows the session: while connected it makes a cheap
//! call (`exists /`) every third of the session timeout and, when it
//! answers, moves the session's clock (core's `SessionClock`) to `time it
//! was sent + session timeout - drift`. The
//! server heard from the session no earlier than that send, so it cannot
//! expire the session (and delete its lock nodes) before the deadline.
//! While disconnected the last deadline stands (grants go lost at it unless
//! the session comes back, like Curator's SUSPENDED then LOST). When the
//! session expires or closes, the task publishes `None`: every grant of the
//! session is lost, and the next acquire opens a new session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::raw::{SessionClock, Validity};
use fencelock_core::{Error, Result};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::config::ZkLockBuilder;
use crate::connect::connect_error;
use crate::error::once;

/// One live (or once-live) ZooKeeper session.
pub(crate) struct Session {
    pub(crate) client: zk::Client,
    clock: SessionClock,
    /// The negotiated session timeout.
    pub(crate) timeout: Duration,
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
        let clock = SessionClock::new(started, timeout - drift);
        let monitor = tokio::spawn(monitor(client.clone(), clock.clone(), timeout, cfg.timeout))
            .abort_handle();
        tracing::debug!(session = %client.session_id(), ?timeout, "ZooKeeper session established");
        Ok(Arc::new(Session {
            client,
            clock,
            timeout,
            call_timeout: cfg.timeout,
            monitor: Some(monitor),
        }))
    }

    /// The validity of a grant on this session.
    pub(crate) fn validity(&self) -> Validity {
        self.clock.validity()
    }

    /// Whether the session can still be used (not expired, closed or
    /// refused).
    pub(crate) fn alive(&self) -> bool {
        !self.clock.is_ended() && !self.client.state().is_terminated()
    }

    /// A call sent at `sent` was answered: the server heard from the
    /// session no earlier than `sent`.
    pub(crate) fn heard(&self, sent: Instant) {
        self.clock.heard(sent);
    }

    /// Marks the session gone (it expired under us).
    pub(crate) fn gone(&self) {
        self.clock.end();
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

async fn monitor(
    client: zk::Client,
    clock: SessionClock,
    timeout: Duration,
    call_timeout: Duration,
) {
    let mut states = client.state_watcher();
    let every = (timeout / 3).max(Duration::from_millis(10));
    loop {
        let state = states.peek_state();
        if state.is_terminated() {
            tracing::debug!(session = %client.session_id(), %state, "ZooKeeper session ended");
            clock.end();
            return;
        }
        if state == zk::SessionState::SyncConnected {
            let sent = Instant::now();
            match once(call_timeout.min(every), client.check_stat("/")).await {
                Ok(_) => clock.heard(sent),
                Err(f) if f.session_gone() => {
                    tracing::debug!(session = %client.session_id(), "ZooKeeper session gone");
                    clock.end();
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
