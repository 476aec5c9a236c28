//! Renewal batching: the renewals of every guard of one client that fall
//! within a small window are sent as one pipeline of `EVALSHA` calls, so
//! renewing many held locks costs one round trip per tick, not one per lock.

use std::time::Duration;

use fencelock_core::{Error, Result};
use futures_util::future::join_all;
use redis::{RedisError, RedisResult, ServerErrorKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::conn::Conn;
use crate::error::{bounded, map_redis};
use crate::scripts::RENEW;

struct Request {
    lock_key: String,
    owner: String,
    ttl_ms: u64,
    reply: oneshot::Sender<Result<bool>>,
}

/// The handle guards renew through; cheap to clone.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Request>,
    response_timeout: Duration,
    /// For naming the endpoint in errors.
    conn: Conn,
}

impl Batcher {
    /// Starts the batcher task on the current runtime; it ends when the
    /// last handle is dropped.
    pub(crate) fn start(
        conn: Conn,
        window: Duration,
        max: usize,
        response_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn.clone(), rx, window, max.max(1), response_timeout));
        Batcher {
            tx,
            response_timeout,
            conn,
        }
    }

    /// Compare-and-PEXPIRE `lock_key` to `ttl_ms` if `owner` holds it.
    pub(crate) async fn renew(&self, lock_key: &str, owner: &str, ttl_ms: u64) -> Result<bool> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                lock_key: lock_key.to_string(),
                owner: owner.to_string(),
                ttl_ms,
                reply,
            })
            .map_err(|_| {
                Error::connection(format!(
                    "renew on {}: the renewal task has stopped",
                    self.conn.endpoint()
                ))
            })?;
        // The batch itself is bounded by the response timeout; this bound
        // adds the window and some slack.
        match tokio::time::timeout(self.response_timeout * 2, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::connection(format!(
                "renew on {}: the renewal task dropped the request",
                self.conn.endpoint()
            ))),
            Err(_) => Err(Error::timeout(format!(
                "renew on {}: no answer within {:?}",
                self.conn.endpoint(),
                self.response_timeout * 2
            ))),
        }
    }
}

async fn run(
    conn: Conn,
    mut rx: mpsc::UnboundedReceiver<Request>,
    window: Duration,
    max: usize,
    response_timeout: Duration,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = Instant::now() + window;
        while batch.len() < max {
            match rx.try_recv() {
                Ok(r) => {
                    batch.push(r);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if window.is_zero() {
                break;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => batch.push(r),
                    None => break,
                },
                () = sleep_until(until) => break,
            }
        }
        tokio::spawn(flush(conn.clone(), batch, response_timeout));
    }
}

async fn flush(conn: Conn, batch: Vec<Request>, limit: Duration) {
    tracing::trace!(renewals = batch.len(), "fencelock-redis renewal batch");
    let at = conn.endpoint();
    if conn.is_cluster() {
        // A cluster pipeline must stay within one slot; keys of different
        // locks live in different slots. Send the calls concurrently
        // instead: the cluster client pipelines them per node.
        join_all(batch.into_iter().map(|r| {
            let mut conn = conn.clone();
            let at = &at;
            async move {
                let mut inv = RENEW.prepare_invoke();
                inv.key(&r.lock_key).arg(&r.owner).arg(r.ttl_ms);
                let result = bounded(at, limit, "renew", inv.invoke_async::<i64>(&mut conn))
                    .await
                    .map(|n| n == 1);
                let _ = r.reply.send(result);
            }
        }))
        .await;
        return;
    }
    let mut conn = conn;
    let mut results = bounded(&at, limit, "renew", pipeline(&batch, &mut conn)).await;
    if needs_reload(&results) {
        let reloaded = bounded(
            &at,
            limit,
            "renew: SCRIPT LOAD",
            RENEW.load_async(&mut conn),
        )
        .await;
        results = match reloaded {
            Ok(_) => bounded(&at, limit, "renew", pipeline(&batch, &mut conn)).await,
            Err(e) => Err(e),
        };
    }
    match results {
        Ok(results) => {
            let mut results = results.into_iter();
            for r in batch {
                let result = match results.next() {
                    Some(Ok(n)) => Ok(n == 1),
                    Some(Err(e)) => Err(map_redis(e, &at, "renew")),
                    None => Err(Error::backend(
                        "renew: the pipeline returned too few replies",
                    )),
                };
                let _ = r.reply.send(result);
            }
        }
        Err(e) => {
            let (kind, message) = (e.kind(), e.message().to_string());
            for r in batch {
                let _ = r.reply.send(Err(Error::new(kind, message.clone())));
            }
        }
    }
}

async fn pipeline(batch: &[Request], conn: &mut Conn) -> RedisResult<Vec<RedisResult<i64>>> {
    let mut p = redis::pipe();
    p.ignore_errors();
    for r in batch {
        p.invoke_script(RENEW.key(&r.lock_key).arg(&r.owner).arg(r.ttl_ms));
    }
    p.query_async(conn).await
}

fn needs_reload(results: &Result<Vec<RedisResult<i64>>>) -> bool {
    let is_noscript =
        |e: &RedisError| e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript);
    matches!(results, Ok(v) if v.iter().any(|r| r.as_ref().is_err_and(is_noscript)))
}
