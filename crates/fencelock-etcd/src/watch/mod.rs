//! One watch stream per client, shared by every waiter and every held grant.
//!
//! etcd multiplexes any number of watches on one gRPC watch stream; a
//! background task (the hub) owns that stream, creates one server-side
//! watch per subscription (a single key, deletes only, from an explicit
//! start revision), and completes the subscription when etcd reports the
//! key's delete. A held lock thus costs a map entry here and a watcher on the
//! server, not a stream of its own, and subscribing never waits for a round
//! trip: with an explicit start revision no delete can be missed, whenever
//! the server gets to create the watch.
//!
//! A waiter watches differently ([`Watches::subscribe_live`]): from the
//! server's current revision, which etcd serves at once, where a watch from
//! an older revision is *unsynced* and etcd 3.4 catches it up only every
//! 100 ms. The created answer's header revision is at least the revision the
//! watch starts after; when it is past the waiter's read, a delete may have
//! fallen in between, so the hub reads the key once: gone (or created
//! again, as a Go client of the same lease does) means deleted; the same
//! key means any later delete comes through the watch, which stays.
//!
//! When the stream breaks the hub reopens it on the next endpoint and
//! re-creates every live watch from its original start (so nothing in
//! between is missed, or, for a live watch, the gap is read over). When etcd cancels a watch (its start revision was
//! compacted) the subscription completes with [`Seen::Unsure`] and the
//! caller reads the key to decide.

mod cmd;
mod hub;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::endpoints::Endpoints;
use cmd::{Cmd, Start};

pub(crate) use cmd::Seen;

/// The client's watch hub: cheap to share, spawns its task on first use.
pub(crate) struct Watches {
    endpoints: Arc<Endpoints>,
    tx: StdMutex<Option<mpsc::UnboundedSender<Cmd>>>,
    next: AtomicU64,
}

/// One watch of one key's delete. Dropping it cancels the server-side watch.
pub(crate) struct Subscription {
    id: u64,
    tx: mpsc::UnboundedSender<Cmd>,
    rx: oneshot::Receiver<Seen>,
}

impl Subscription {
    /// Waits until the key is deleted or the watch cannot be kept.
    pub(crate) async fn wait(&mut self) -> Seen {
        (&mut self.rx).await.unwrap_or(Seen::Unsure)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Remove(self.id));
    }
}

impl Watches {
    pub(crate) fn new(endpoints: Arc<Endpoints>) -> Self {
        Watches {
            endpoints,
            tx: StdMutex::new(None),
            next: AtomicU64::new(1),
        }
    }

    /// Watches `key` for a delete at revision `from` or later. Does no I/O
    /// itself and never waits for the server: the hub creates the watch.
    /// Must be called inside a Tokio runtime.
    pub(crate) fn subscribe(&self, key: &str, from: i64) -> Subscription {
        self.add(key, Start::At(from))
    }

    /// Watches `key`, seen with create revision `created` by a read at
    /// revision `read`, for its delete, promptly: from the server's current
    /// revision, with one read of the key when the watch starts later than
    /// `read`. As [`subscribe`](Self::subscribe) otherwise.
    pub(crate) fn subscribe_live(&self, key: &str, read: i64, created: i64) -> Subscription {
        self.add(key, Start::AfterRead { read, created })
    }

    fn add(&self, key: &str, from: Start) -> Subscription {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, rx) = oneshot::channel();
        let mut cmd = Cmd::Add {
            id,
            key: key.to_string(),
            from,
            done,
        };
        let mut slot = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..2 {
            let tx = match slot.as_ref().filter(|t| !t.is_closed()) {
                Some(tx) => tx.clone(),
                None => {
                    // First use, or the hub's runtime went away: start one.
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(hub::run(Arc::clone(&self.endpoints), rx));
                    *slot = Some(tx.clone());
                    tx
                }
            };
            match tx.send(cmd) {
                Ok(()) => return Subscription { id, tx, rx },
                Err(mpsc::error::SendError(c)) => {
                    cmd = c;
                    *slot = None;
                }
            }
        }
        // Unreachable in practice (a fresh hub accepts); the subscription
        // then reports `Unsure` and the caller reads.
        let (tx, _) = mpsc::unbounded_channel();
        Subscription { id, tx, rx }
    }
}
