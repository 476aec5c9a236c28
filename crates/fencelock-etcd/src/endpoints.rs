//! One etcd-client per endpoint, and calls that move to the next endpoint
//! when one fails or stalls.
//!
//! etcd-client balances requests over its endpoints at random and never
//! retries; an endpoint whose process is paused (SIGSTOP) keeps its TCP
//! connection and swallows requests until a timeout. So each endpoint gets a
//! client of its own, calls go to the "current" one with a per-call timeout,
//! and a call that times out or finds the endpoint unavailable moves the
//! current endpoint on and tries again, at most once per endpoint (plus one).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use fencelock_core::{Error, Result};
use tokio::sync::OnceCell;
use tokio::time::timeout;

use crate::error::{from_etcd, try_elsewhere};

struct Slot {
    url: String,
    client: OnceCell<Client>,
}

pub(crate) struct Endpoints {
    slots: Vec<Slot>,
    options: ConnectOptions,
    current: AtomicUsize,
    pub(crate) request_timeout: Duration,
    connect_timeout: Duration,
}

impl Endpoints {
    pub(crate) fn new(
        urls: Vec<String>,
        options: ConnectOptions,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Endpoints {
            slots: urls
                .into_iter()
                .map(|url| Slot {
                    url,
                    client: OnceCell::new(),
                })
                .collect(),
            options,
            current: AtomicUsize::new(0),
            request_timeout,
            connect_timeout,
        }
    }

    /// How many endpoints there are.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The endpoint calls go to now.
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.slots.len().max(1)
    }

    /// Moves off endpoint `from` (unless someone already did).
    pub(crate) fn rotate(&self, from: usize) {
        let next = (from + 1) % self.slots.len().max(1);
        if next != from {
            let _ = self
                .current
                .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed);
            tracing::debug!(from = %self.slots[from].url, to = %self.slots[next].url, "etcd: moving to the next endpoint");
        }
    }

    /// The client of endpoint `idx`, connecting it on first use. Without
    /// credentials connecting does no I/O; with them it authenticates, bounded
    /// by the timeouts.
    pub(crate) async fn client(&self, idx: usize) -> Result<Client> {
        let slot = &self.slots[idx];
        let bound = self.connect_timeout + self.request_timeout;
        slot.client
            .get_or_try_init(|| async {
                match timeout(
                    bound,
                    Client::connect([slot.url.as_str()], Some(self.options.clone())),
                )
                .await
                {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(from_etcd(&format!("connect to {}", shown(&slot.url)), e)),
                    Err(_) => Err(Error::timeout(format!(
                        "etcd connect to {} did not finish within {bound:?}",
                        slot.url
                    ))),
                }
            })
            .await
            .cloned()
    }

    /// Runs `f` against the current endpoint with the per-call timeout; on a
    /// connection error or timeout moves to the next endpoint and tries again.
    /// `f` must be safe to repeat.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.call_within(what, self.request_timeout, f).await
    }

    /// [`call`](Self::call) with `bound` per endpoint instead of the
    /// request timeout (a keep-alive must move on sooner than that when the
    /// lease is short).
    pub(crate) async fn call_within<T, F, Fut>(
        &self,
        what: &str,
        bound: Duration,
        mut f: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let attempts = self.slots.len() + 1;
        let mut last = None;
        for _ in 0..attempts {
            let idx = self.current();
            let outcome = match self.client(idx).await {
                Ok(client) => match timeout(bound, f(client)).await {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) => {
                        from_etcd(&format!("{what} at {}", shown(&self.slots[idx].url)), e)
                    }
                    Err(_) => Error::timeout(format!(
                        "etcd {what} got no answer from {} within {bound:?}",
                        self.slots[idx].url
                    )),
                },
                Err(e) => e,
            };
            if !try_elsewhere(&outcome) {
                return Err(outcome);
            }
            tracing::debug!(endpoint = %self.slots[idx].url, error = %outcome, "etcd {what} failed here");
            self.rotate(idx);
            last = Some(outcome);
        }
        Err(last.unwrap_or_else(|| Error::connection(format!("etcd {what}: no endpoints"))))
    }

    /// The version of the member that answers a Status call.
    pub(crate) async fn server_version(&self) -> Result<String> {
        let status = self
            .call("status", |mut c| async move { c.status().await })
            .await?;
        Ok(status.version().to_string())
    }
}

/// An endpoint URL as errors show it: `host:port`.
fn shown(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}
