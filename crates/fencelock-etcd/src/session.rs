//! The client's session: one etcd lease, kept alive by one background task,
//! shared by every lock the client holds or waits for.

use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::endpoints::Endpoints;
use crate::error::{from_etcd, lease_not_found};

/// One granted lease and its keep-alive task.
pub(crate) struct Lease {
    pub(crate) id: i64,
    /// The deadline the session vouches for; `None` once the lease is gone.
    pub(crate) deadline: watch::Receiver<Option<Instant>>,
    tx: Arc<watch::Sender<Option<Instant>>>,
    nudge: Arc<Notify>,
    task: AbortHandle,
    endpoints: Arc<Endpoints>,
}

impl Lease {
    /// Whether the lease is alive as far as this client can vouch.
    pub(crate) fn alive(&self) -> bool {
        self.deadline.borrow().is_some_and(|d| Instant::now() < d)
    }

    /// Marks the lease gone (etcd said so): every guard on it is lost and
    /// the next acquire grants a new lease.
    pub(crate) fn kill(&self) {
        if self.tx.send_if_modified(|d| d.take().is_some()) {
            tracing::warn!(
                lease = format_args!("{:x}", self.id),
                "etcd session ended: etcd says the lease is gone"
            );
        }
        self.nudge.notify_one();
    }

    /// Asks the keep-alive task to refresh the lease now.
    pub(crate) fn nudge(&self) {
        self.nudge.notify_one();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let endpoints = Arc::clone(&self.endpoints);
            let id = self.id;
            rt.spawn(async move {
                let r = endpoints
                    .call("lease revoke", |mut c| async move { c.lease_revoke(id).await })
                    .await;
                if let Err(e) = r {
                    tracing::debug!(lease = id, error = %e, "lease revoke failed; the lease expires by itself");
                }
            });
        }
    }
}

/// Hands out the current lease, granting a new one when the last one ended.
pub(crate) struct Session {
    endpoints: Arc<Endpoints>,
    ttl_secs: i64,
    drift: Option<Duration>,
    current: tokio::sync::Mutex<Option<Arc<Lease>>>,
    /// The TTL of the most recent grant, for `capabilities()`.
    last_ttl: StdMutex<Duration>,
}

impl Session {
    pub(crate) fn new(endpoints: Arc<Endpoints>, ttl_secs: i64, drift: Option<Duration>) -> Self {
        Session {
            endpoints,
            ttl_secs,
            drift,
            current: tokio::sync::Mutex::new(None),
            last_ttl: StdMutex::new(secs(ttl_secs)),
        }
    }

    /// The lease TTL etcd granted last (or the one asked for before any grant).
    pub(crate) fn ttl(&self) -> Duration {
        *self.last_ttl.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn drift_for(&self, ttl: Duration) -> Duration {
        self.drift
            .unwrap_or_else(|| ttl / 100 + Duration::from_millis(5))
    }

    /// The live lease, granting one if there is none.
    pub(crate) async fn lease(&self) -> Result<Arc<Lease>> {
        let mut current = self.current.lock().await;
        if let Some(lease) = current.as_ref().filter(|l| l.alive()) {
            return Ok(Arc::clone(lease));
        }
        let sent = Instant::now();
        let ttl_secs = self.ttl_secs;
        let granted = self
            .endpoints
            .call("lease grant", |mut c| async move {
                c.lease_grant(ttl_secs, None).await
            })
            .await?;
        if granted.ttl() <= 0 || !granted.error().is_empty() {
            return Err(Error::backend(format!(
                "etcd refused the lease: ttl {} {}",
                granted.ttl(),
                granted.error()
            )));
        }
        let ttl = secs(granted.ttl());
        *self.last_ttl.lock().unwrap_or_else(PoisonError::into_inner) = ttl;
        let drift = self.drift_for(ttl);
        let deadline = sent + ttl.saturating_sub(drift);
        if Instant::now() >= deadline {
            return Err(Error::timeout(
                "the lease grant answered after the lease's TTL",
            ));
        }
        let tx = Arc::new(watch::Sender::new(Some(deadline)));
        let rx = tx.subscribe();
        let nudge = Arc::new(Notify::new());
        let task = tokio::spawn(keep_alive(KeepAlive {
            endpoints: Arc::clone(&self.endpoints),
            id: granted.id(),
            ttl,
            drift,
            last_sent: sent,
            deadline,
            tx: Arc::clone(&tx),
            nudge: Arc::clone(&nudge),
        }))
        .abort_handle();
        tracing::debug!(
            lease = format_args!("{:x}", granted.id()),
            ?ttl,
            "etcd lease granted"
        );
        let lease = Arc::new(Lease {
            id: granted.id(),
            deadline: rx,
            tx,
            nudge,
            task,
            endpoints: Arc::clone(&self.endpoints),
        });
        *current = Some(Arc::clone(&lease));
        Ok(lease)
    }
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

struct KeepAlive {
    endpoints: Arc<Endpoints>,
    id: i64,
    ttl: Duration,
    drift: Duration,
    last_sent: Instant,
    deadline: Instant,
    tx: Arc<watch::Sender<Option<Instant>>>,
    nudge: Arc<Notify>,
}

impl KeepAlive {
    fn renewed(&mut self, sent: Instant, ttl: Duration) {
        if sent < self.last_sent {
            return;
        }
        self.ttl = ttl;
        self.last_sent = sent;
        self.deadline = self.deadline.max(sent + ttl.saturating_sub(self.drift));
        let deadline = self.deadline;
        // Never revives a lease that was declared gone.
        self.tx.send_if_modified(|d| match d {
            Some(old) if *old != deadline => {
                *d = Some(deadline);
                true
            }
            _ => false,
        });
    }

    fn killed(&self) -> bool {
        self.tx.borrow().is_none()
    }

    /// How long one keep-alive (or opening a stream) may go unanswered
    /// before the next endpoint is tried: the request timeout, but at most a
    /// third of the TTL, so that a member that stalls (a paused process keeps
    /// its connections and swallows requests) is left while a retry
    /// elsewhere still fits before the deadline.
    fn answer_bound(&self, sent: Instant) -> Instant {
        let wait = self
            .endpoints
            .request_timeout
            .min(self.ttl / 3)
            .max(Duration::from_millis(50));
        (sent + wait).min(self.deadline)
    }

    /// Sleeps a little after a failure, never past the deadline.
    async fn backoff(&self) {
        let pause = (self.ttl / 20).clamp(Duration::from_millis(20), Duration::from_millis(250));
        sleep_until((Instant::now() + pause).min(self.deadline)).await;
    }
}

/// Keeps the lease alive until it ends; publishes the deadline after every
/// keep-alive answered (sent time + TTL - drift), `None` at the end.
async fn keep_alive(mut ka: KeepAlive) {
    let id = ka.id;
    let why = 'session: loop {
        if ka.killed() {
            break 'session "the lease was declared gone";
        }
        if Instant::now() >= ka.deadline {
            break 'session "no keep-alive was answered before the lease deadline";
        }
        // Open a keep-alive stream on the current endpoint; opening sends one
        // keep-alive and reads its answer.
        let idx = ka.endpoints.current();
        // Connecting has its own bound (connect + call timeout), not the
        // keep-alive's: a TLS handshake may take longer than a third of a
        // short TTL.
        let opened = match timeout_at(ka.deadline, ka.endpoints.client(idx)).await {
            Err(_) => continue,
            Ok(Err(e)) => Ok(Err(Err(e))),
            Ok(Ok(mut client)) => {
                let sent = Instant::now();
                timeout_at(ka.answer_bound(sent), client.lease_keep_alive(id))
                    .await
                    .map(|r| r.map(|pair| (pair, sent)).map_err(Ok))
            }
        };
        let ((mut keeper, mut stream), sent) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(Ok(e))) if lease_not_found(&e) => break 'session "etcd says the lease is gone",
            Ok(Err(Ok(e))) => {
                let e = from_etcd("lease keep-alive", e);
                tracing::debug!(lease = format_args!("{id:x}"), error = %e, "keep-alive stream failed to open");
                ka.endpoints.rotate(idx);
                ka.backoff().await;
                continue;
            }
            Ok(Err(Err(e))) => {
                tracing::debug!(lease = format_args!("{id:x}"), error = %e, "keep-alive: endpoint unusable");
                ka.endpoints.rotate(idx);
                ka.backoff().await;
                continue;
            }
            Err(_) => {
                tracing::debug!(
                    lease = format_args!("{id:x}"),
                    "keep-alive stream did not open in time"
                );
                ka.endpoints.rotate(idx);
                continue;
            }
        };
        let ttl = ka.ttl;
        ka.renewed(sent, ttl);
        loop {
            tokio::select! {
                () = sleep_until(ka.last_sent + ka.ttl / 3) => {}
                () = ka.nudge.notified() => {}
            }
            let sent = Instant::now();
            if ka.killed() {
                break 'session "the lease was declared gone";
            }
            if sent >= ka.deadline {
                break 'session "no keep-alive was answered before the lease deadline";
            }
            if keeper.keep_alive().await.is_err() {
                ka.endpoints.rotate(idx);
                break;
            }
            let bound = ka.answer_bound(sent);
            match timeout_at(bound, stream.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => ka.renewed(sent, secs(r.ttl())),
                Ok(Ok(Some(_))) => break 'session "etcd says the lease expired",
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::debug!(
                        lease = format_args!("{id:x}"),
                        "keep-alive stream broke; reopening elsewhere"
                    );
                    ka.endpoints.rotate(idx);
                    break;
                }
            }
        }
    };
    tracing::warn!(lease = format_args!("{id:x}"), "etcd session ended: {why}");
    ka.tx.send_replace(None);
}
