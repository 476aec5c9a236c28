//! Mapping ZooKeeper client errors, and bounded calls.

use std::future::Future;
use std::time::Duration;

use fencelock_core::{Error, ErrorKind};
use tokio::time::{sleep, timeout_at, Instant};
use zookeeper_client as zk;

/// Why one bounded ZooKeeper call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server or the client library said no.
    Zk(zk::Error),
    /// No answer within the call timeout.
    Timeout(Duration),
}

impl Failure {
    /// Whether the session behind the call is gone for good.
    pub(crate) fn session_gone(&self) -> bool {
        matches!(
            self,
            Failure::Zk(
                zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::SessionMoved
            )
        )
    }

    /// A fencelock error saying what failed.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            Failure::Timeout(d) => {
                Error::timeout(format!("ZooKeeper did not answer {what} within {d:?}"))
            }
            Failure::Zk(e) => map_zk(e, what),
        }
    }
}

/// Maps a client error into the fencelock error kinds.
pub(crate) fn map_zk(e: zk::Error, what: &str) -> Error {
    let kind = match &e {
        zk::Error::ConnectionLoss
        | zk::Error::NoHosts
        | zk::Error::ClientClosed
        | zk::Error::SessionExpired
        | zk::Error::SessionMoved => ErrorKind::Connection,
        zk::Error::Timeout => ErrorKind::Timeout,
        _ => ErrorKind::Backend,
    };
    let detail = match &e {
        zk::Error::SessionExpired => "the ZooKeeper session expired",
        zk::Error::ConnectionLoss => "the connection to ZooKeeper broke",
        zk::Error::NoHosts => "no ZooKeeper host could be reached",
        zk::Error::ClientClosed => "the ZooKeeper client is closed",
        zk::Error::NoAuth | zk::Error::AuthFailed => {
            "ZooKeeper refused access (ACL or authentication)"
        }
        _ => "ZooKeeper returned an error",
    };
    Error::new(kind, format!("{what}: {detail}")).with_source(e)
}

/// What a call's error says, with the client library's connection-level
/// failures folded into `ConnectionLoss`.
///
/// When the connection breaks by an I/O error (e.g. a reset by the server)
/// or stops answering, zookeeper-client fails every request in flight with
/// `Error::Custom` (the I/O error, or "no response from connection"), not
/// with `ConnectionLoss`; only a clean EOF gives `ConnectionLoss`. For a
/// request both mean the same: the connection broke and the outcome is
/// unknown; the session reconnects by itself. Replies from a server are
/// never `Custom`.
fn normalize(e: zk::Error) -> zk::Error {
    match e {
        zk::Error::Custom(c) => {
            tracing::debug!(error = %c, "ZooKeeper connection broke under a request");
            zk::Error::ConnectionLoss
        }
        e => e,
    }
}

/// Runs `op` (which sends its request when called) until it answers
/// something other than a broken connection (`ConnectionLoss`, see
/// [`normalize`]), within `limit` in all.
/// Only for idempotent operations: reads, and deletes of our own nodes.
pub(crate) async fn retry<T, F, Fut>(limit: Duration, mut op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, zk::Error>>,
{
    let until = Instant::now() + limit;
    loop {
        match timeout_at(until, op()).await.map(|r| r.map_err(normalize)) {
            Err(_) => return Err(Failure::Timeout(limit)),
            Ok(Err(zk::Error::ConnectionLoss)) => {
                if Instant::now() + Duration::from_millis(20) >= until {
                    return Err(Failure::Zk(zk::Error::ConnectionLoss));
                }
                sleep(Duration::from_millis(20)).await;
            }
            Ok(Err(e)) => return Err(Failure::Zk(e)),
            Ok(Ok(v)) => return Ok(v),
        }
    }
}

/// Runs `op` once within `limit` (for non-idempotent calls such as a
/// create); a broken connection is `ConnectionLoss` (see [`normalize`]).
pub(crate) async fn once<T, Fut>(limit: Duration, fut: Fut) -> Result<T, Failure>
where
    Fut: Future<Output = Result<T, zk::Error>>,
{
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(Failure::Timeout(limit)),
        Ok(r) => r.map_err(|e| Failure::Zk(normalize(e))),
    }
}
