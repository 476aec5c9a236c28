//! The hub task: owns the client's one watch stream, creates a server-side
//! watch per subscription, completes a subscription on its key's delete,
//! and reopens the stream elsewhere when it breaks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, WatchFilterType, WatchOptions, WatchResponseStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::{sleep_until, timeout, Instant};

use super::cmd::{Cmd, Seen, Start};
use crate::endpoints::Endpoints;

struct Sub {
    key: String,
    from: Start,
    done: oneshot::Sender<Seen>,
    watch: Option<i64>,
}

enum Req {
    Create(String, Start),
    Cancel(i64),
}

fn options(from: Start) -> WatchOptions {
    let o = WatchOptions::new().with_filters([WatchFilterType::NoPut]);
    match from {
        Start::At(rev) => o.with_start_revision(rev),
        Start::AfterRead { .. } => o,
    }
}

/// An open watch stream. Requests go through a forwarder task so the hub
/// never blocks on a full request channel while it should be reading.
struct Conn {
    idx: usize,
    req: mpsc::UnboundedSender<Req>,
    resp: WatchResponseStream,
    forwarder: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

impl Conn {
    fn send(&self, r: Req) {
        // A failed send means the forwarder ended: the stream is broken and
        // the response side will say so.
        let _ = self.req.send(r);
    }
}

#[derive(Default)]
struct State {
    subs: HashMap<u64, Sub>,
    by_watch: HashMap<i64, u64>,
    /// Subscriptions whose create request is on the wire, in send order
    /// (etcd answers creates on one stream in order).
    creating: VecDeque<u64>,
}

impl State {
    fn fire(&mut self, id: u64, seen: Seen) {
        if let Some(sub) = self.subs.remove(&id) {
            let _ = sub.done.send(seen);
        }
    }

    fn disconnected(&mut self) {
        self.by_watch.clear();
        self.creating.clear();
        for sub in self.subs.values_mut() {
            sub.watch = None;
        }
        self.subs.retain(|_, s| !s.done.is_closed());
    }
}

/// Opens a stream on the current endpoint carrying a create for every live
/// subscription.
async fn open(endpoints: &Endpoints, st: &mut State) -> Option<Conn> {
    let first = st
        .subs
        .iter()
        .map(|(id, s)| (*id, s.key.clone(), s.from))
        .next()?;
    let idx = endpoints.current();
    let opened = async {
        let mut c = endpoints.client(idx).await.ok()?;
        c.watch(first.1.as_str(), Some(options(first.2))).await.ok()
    };
    let Ok(Some(stream)) = timeout(endpoints.request_timeout, opened).await else {
        tracing::debug!("etcd watch stream did not open; moving on");
        endpoints.rotate(idx);
        return None;
    };
    let (mut sender, resp) = stream.split();
    let (req, mut reqs) = mpsc::unbounded_channel::<Req>();
    let forwarder = tokio::spawn(async move {
        while let Some(r) = reqs.recv().await {
            let sent = match r {
                Req::Create(key, from) => sender.watch(key, Some(options(from))).await,
                Req::Cancel(id) => sender.cancel(id).await,
            };
            if sent.is_err() {
                return;
            }
        }
    })
    .abort_handle();
    let conn = Conn {
        idx,
        req,
        resp,
        forwarder,
    };
    st.creating.push_back(first.0);
    for (id, sub) in &st.subs {
        if *id != first.0 {
            conn.send(Req::Create(sub.key.clone(), sub.from));
            st.creating.push_back(*id);
        }
    }
    Some(conn)
}

/// The hub: runs until every `Watches` handle and subscription is gone.
pub(super) async fn run(endpoints: Arc<Endpoints>, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
    let mut st = State::default();
    let mut conn: Option<Conn> = None;
    let mut reopen_at: Option<Instant> = None;
    let far = Duration::from_secs(86_400);
    let (checked_tx, mut checked) = mpsc::unbounded_channel::<(u64, Option<bool>)>();
    loop {
        if conn.is_none() && !st.subs.is_empty() && reopen_at.is_none_or(|t| Instant::now() >= t) {
            reopen_at = None;
            conn = open(&endpoints, &mut st).await;
            if conn.is_none() {
                reopen_at = Some(Instant::now() + Duration::from_millis(100));
            }
        }
        let wake = reopen_at.unwrap_or_else(|| Instant::now() + far);
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(Cmd::Add { id, key, from, done }) => {
                    if let Some(c) = &conn {
                        c.send(Req::Create(key.clone(), from));
                        st.creating.push_back(id);
                    }
                    st.subs.insert(id, Sub { key, from, done, watch: None });
                }
                Some(Cmd::Remove(id)) => {
                    if let Some(sub) = st.subs.remove(&id) {
                        if let Some(w) = sub.watch {
                            st.by_watch.remove(&w);
                            if let Some(c) = &conn {
                                c.send(Req::Cancel(w));
                            }
                        }
                    }
                    // Still being created: cancelled when etcd names its id.
                }
            },
            msg = async {
                match conn.as_mut() {
                    Some(c) => c.resp.message().await,
                    None => std::future::pending().await,
                }
            } => {
                let r = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) | Err(_) => {
                        tracing::debug!("etcd watch stream broke; reopening elsewhere");
                        if let Some(c) = conn.take() {
                            endpoints.rotate(c.idx);
                        }
                        st.disconnected();
                        reopen_at = Some(Instant::now() + Duration::from_millis(50));
                        continue;
                    }
                };
                let wid = r.watch_id();
                if r.created() {
                    let Some(id) = st.creating.pop_front() else {
                        continue;
                    };
                    if r.canceled() {
                        st.fire(id, Seen::Unsure);
                        continue;
                    }
                    let revision = r.header().map_or(i64::MAX, |h| h.revision());
                    match st.subs.get_mut(&id) {
                        Some(sub) => {
                            sub.watch = Some(wid);
                            st.by_watch.insert(wid, id);
                            if let Start::AfterRead { read, created } = sub.from {
                                if revision > read {
                                    // The watch starts after revisions the
                                    // caller has not seen: a delete may be
                                    // among them.
                                    let (endpoints, key, tx) = (
                                        Arc::clone(&endpoints),
                                        sub.key.clone(),
                                        checked_tx.clone(),
                                    );
                                    tokio::spawn(async move {
                                        let same = Box::pin(still(&endpoints, &key, created)).await;
                                        let _ = tx.send((id, same));
                                    });
                                }
                            }
                        }
                        None => {
                            if let Some(c) = &conn {
                                c.send(Req::Cancel(wid));
                            }
                            continue;
                        }
                    }
                }
                if r.canceled() {
                    // etcd dropped the watch (e.g. compacted): let the owner read.
                    if let Some(id) = st.by_watch.remove(&wid) {
                        st.fire(id, Seen::Unsure);
                    }
                    continue;
                }
                if r.events().iter().any(|e| e.event_type() == EventType::Delete) {
                    if let Some(id) = st.by_watch.remove(&wid) {
                        st.fire(id, Seen::Deleted);
                        if let Some(c) = &conn {
                            c.send(Req::Cancel(wid));
                        }
                    }
                }
            }
            Some((id, present)) = checked.recv() => {
                let seen = match present {
                    Some(true) => continue,
                    Some(false) => Seen::Deleted,
                    None => Seen::Unsure,
                };
                if let Some(w) = st.subs.get(&id).and_then(|s| s.watch) {
                    st.by_watch.remove(&w);
                    if let Some(c) = &conn {
                        c.send(Req::Cancel(w));
                    }
                }
                st.fire(id, seen);
            }
            () = sleep_until(wake), if reopen_at.is_some() => {}
        }
    }
}

/// Whether `key` still exists as created at revision `created` (`None`:
/// could not tell).
async fn still(endpoints: &Endpoints, key: &str, created: i64) -> Option<bool> {
    endpoints
        .call("get", |mut c| async move {
            c.get(key, Some(etcd_client::GetOptions::new().with_keys_only()))
                .await
        })
        .await
        .ok()
        .map(|r| {
            r.kvs()
                .first()
                .is_some_and(|kv| kv.create_revision() == created)
        })
}
