//! One shared pub/sub connection per client, multiplexing the wake-up
//! channels of every key that has waiters.
//!
//! A waiter registers an [`Interest`] in its key's channel. The first
//! interest in a channel subscribes it, the last one to leave unsubscribes
//! it. A background task owns the connection: it reads messages and wakes
//! the waiters they are for, and on a broken connection it reconnects
//! (trying each configured node in turn), re-subscribes every channel and
//! wakes every waiter, since messages may have been lost in the gap.
//!
//! A message names the one waiter it wakes (its waiter id, as the release
//! script chose it from the key's queue), or is `released`, which wakes every
//! waiter of the channel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant};

/// What a waiter sees of its channel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChanState {
    /// Bumped on every message (and on every reconnect).
    pub(crate) wakes: u64,
    /// Whether the server confirmed the subscription.
    pub(crate) subscribed: bool,
}

struct Entry {
    waiters: usize,
    state: watch::Sender<ChanState>,
    /// Waiters that can be woken by name: waiter id -> its own wake counter.
    named: HashMap<String, watch::Sender<u64>>,
}

type Registry = Arc<Mutex<HashMap<String, Entry>>>;

fn lock(r: &Registry) -> MutexGuard<'_, HashMap<String, Entry>> {
    r.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle a client keeps; cloning it is cheap.
#[derive(Clone)]
pub(crate) struct Subscriber {
    registry: Registry,
    sync: mpsc::UnboundedSender<String>,
}

/// How the background task reaches Redis.
pub(crate) struct SubscriberConfig {
    /// The nodes to subscribe on, tried in turn (a PUBLISH on a Redis
    /// Cluster reaches every node, so any one node will do).
    pub(crate) clients: Vec<redis::Client>,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

impl Subscriber {
    /// Starts the background task on the current runtime. It connects on
    /// the first interest and ends when the last handle is dropped.
    pub(crate) fn start(config: SubscriberConfig) -> Self {
        let registry: Registry = Arc::default();
        let (sync, rx) = mpsc::unbounded_channel();
        tokio::spawn(Task::new(Arc::clone(&registry), config).run(rx));
        Subscriber { registry, sync }
    }

    /// Registers a waiter on `channel`, subscribing it if it is the first.
    /// With a waiter id it is also woken by messages that name it; without
    /// one (Redlock) only by `released`.
    pub(crate) fn interest(&self, channel: &str, waiter: Option<&str>) -> Interest {
        let (rx, named) = {
            let mut reg = lock(&self.registry);
            let e = reg.entry(channel.to_string()).or_insert_with(|| {
                let _ = self.sync.send(channel.to_string());
                Entry {
                    waiters: 0,
                    state: watch::channel(ChanState::default()).0,
                    named: HashMap::new(),
                }
            });
            e.waiters += 1;
            let named = waiter.map(|w| {
                let (tx, rx) = watch::channel(0u64);
                e.named.insert(w.to_string(), tx);
                (w.to_string(), rx)
            });
            (e.state.subscribe(), named)
        };
        Interest {
            channel: channel.to_string(),
            rx,
            named,
            registry: Arc::clone(&self.registry),
            sync: self.sync.clone(),
        }
    }

    /// How many waiters of this client wait on `channel`.
    pub(crate) fn waiters(&self, channel: &str) -> usize {
        lock(&self.registry).get(channel).map_or(0, |e| e.waiters)
    }
}

/// One waiter's registration on one channel. Dropping it unregisters.
pub(crate) struct Interest {
    channel: String,
    rx: watch::Receiver<ChanState>,
    /// The waiter id and its own wake counter, when it can be woken by name.
    named: Option<(String, watch::Receiver<u64>)>,
    registry: Registry,
    sync: mpsc::UnboundedSender<String>,
}

impl Interest {
    /// Marks every wake-up so far as seen: call it just before an attempt,
    /// so that [`woken`](Self::woken) reports only later ones.
    pub(crate) fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
        if let Some((_, rx)) = self.named.as_mut() {
            rx.borrow_and_update();
        }
    }

    /// Waits until the subscription is confirmed, at most `limit`. Returns
    /// whether it is.
    pub(crate) async fn wait_subscribed(&mut self, limit: Duration) -> bool {
        matches!(
            timeout(limit, self.rx.wait_for(|s| s.subscribed)).await,
            Ok(Ok(_))
        )
    }

    /// Completes on the next wake-up after the last [`mark_seen`](Self::mark_seen):
    /// one for the whole channel, or one that names this waiter.
    pub(crate) async fn woken(&mut self) {
        // A closed sender (cannot happen while this interest holds its
        // entry) must not turn the caller's wait into a busy loop.
        let Interest { rx, named, .. } = self;
        let all = async {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let by_name = async {
            let open = match named.as_mut() {
                Some((_, rx)) => rx.changed().await.is_ok(),
                None => false,
            };
            if !open {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = all => {}
            () = by_name => {}
        }
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut reg = lock(&self.registry);
        if let Some(e) = reg.get_mut(&self.channel) {
            if let Some((w, _)) = &self.named {
                e.named.remove(w);
            }
            e.waiters = e.waiters.saturating_sub(1);
            if e.waiters == 0 {
                reg.remove(&self.channel);
                let _ = self.sync.send(std::mem::take(&mut self.channel));
            }
        }
    }
}

const PING_EVERY: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

struct Task {
    registry: Registry,
    config: SubscriberConfig,
    sink: Option<PubSubSink>,
    stream: Option<PubSubStream>,
    subscribed: HashSet<String>,
    next_node: usize,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Task {
    fn new(registry: Registry, config: SubscriberConfig) -> Self {
        Task {
            registry,
            config,
            sink: None,
            stream: None,
            subscribed: HashSet::new(),
            next_node: 0,
            backoff: MIN_BACKOFF,
            retry_at: None,
        }
    }

    async fn run(mut self, mut sync: mpsc::UnboundedReceiver<String>) {
        let mut next_ping = Instant::now() + PING_EVERY;
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                cmd = sync.recv() => match cmd {
                    Some(channel) => self.sync(channel).await,
                    None => return,
                },
                msg = next_message(&mut self.stream) => match msg {
                    Some((channel, whom)) => self.wake(&channel, &whom),
                    None => self.lost("the pub/sub connection closed"),
                },
                () = sleep_until(self.retry_at.unwrap_or(far)), if self.retry_at.is_some() => {
                    self.retry_at = None;
                    self.connect().await;
                }
                () = sleep_until(next_ping), if self.sink.is_some() => {
                    next_ping = Instant::now() + PING_EVERY;
                    self.ping().await;
                }
            }
        }
    }

    fn wanted(&self, channel: &str) -> bool {
        lock(&self.registry).contains_key(channel)
    }

    /// Brings the server's subscription of `channel` in line with the
    /// registry, connecting first when needed.
    async fn sync(&mut self, channel: String) {
        if self.sink.is_none() {
            if self.wanted(&channel) && self.retry_at.is_none() {
                // Not connected: connect now (this subscribes every wanted channel).
                self.connect().await;
            }
            return;
        }
        self.apply(channel).await;
    }

    /// [`sync`](Self::sync) on a live connection.
    async fn apply(&mut self, channel: String) {
        let wanted = self.wanted(&channel);
        let have = self.subscribed.contains(&channel);
        if wanted && have {
            // A waiter that came back before the unsubscribe went out.
            self.set_subscribed(&channel);
            return;
        }
        if wanted == have {
            return;
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let limit = self.config.response_timeout;
        let result = if wanted {
            timeout(limit, sink.subscribe(&channel)).await
        } else {
            timeout(limit, sink.unsubscribe(&channel)).await
        };
        match result {
            Ok(Ok(())) if wanted => {
                self.subscribed.insert(channel.clone());
                self.set_subscribed(&channel);
            }
            Ok(Ok(())) => {
                self.subscribed.remove(&channel);
            }
            Ok(Err(e)) => self.lost(&format!("SUBSCRIBE/UNSUBSCRIBE failed: {e}")),
            Err(_) => self.lost("SUBSCRIBE/UNSUBSCRIBE did not answer in time"),
        }
    }

    fn set_subscribed(&self, channel: &str) {
        if let Some(e) = lock(&self.registry).get(channel) {
            e.state.send_if_modified(|s| {
                if s.subscribed {
                    return false;
                }
                s.subscribed = true;
                s.wakes = s.wakes.wrapping_add(1);
                true
            });
        }
    }

    /// A message on `channel`: wakes the waiter it names, if it is one of
    /// ours (a waiter of another client otherwise), or everyone on `released`
    /// (or anything that is not a waiter id of this client's format).
    fn wake(&self, channel: &str, whom: &str) {
        let reg = lock(&self.registry);
        let Some(e) = reg.get(channel) else {
            return;
        };
        if is_waiter_id(whom) {
            if let Some(tx) = e.named.get(whom) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
            return;
        }
        e.state.send_modify(|s| s.wakes = s.wakes.wrapping_add(1));
    }

    async fn ping(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        match timeout(self.config.response_timeout, sink.ping::<redis::Value>()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.lost(&format!("PING failed: {e}")),
            Err(_) => self.lost("PING did not answer in time"),
        }
    }

    /// Drops the connection, wakes every waiter (they re-try and fall back
    /// to timed re-checks) and schedules a reconnect while anyone waits.
    fn lost(&mut self, why: &str) {
        tracing::debug!(reason = why, "fencelock-redis pub/sub connection lost");
        self.sink = None;
        self.stream = None;
        self.subscribed.clear();
        let reg = lock(&self.registry);
        for e in reg.values() {
            e.state.send_modify(|s| {
                s.subscribed = false;
                s.wakes = s.wakes.wrapping_add(1);
            });
        }
        self.retry_at = if reg.is_empty() {
            None
        } else {
            Some(Instant::now() + self.backoff)
        };
        drop(reg);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Connects to the next node and subscribes every wanted channel.
    async fn connect(&mut self) {
        let clients = &self.config.clients;
        if clients.is_empty() {
            return;
        }
        let client = &clients[self.next_node % clients.len()];
        let connected = timeout(self.config.connect_timeout, client.get_async_pubsub()).await;
        let pubsub = match connected {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                self.next_node = self.next_node.wrapping_add(1);
                return self.lost(&format!("cannot connect: {e}"));
            }
            Err(_) => {
                self.next_node = self.next_node.wrapping_add(1);
                return self.lost("cannot connect in time");
            }
        };
        let (mut sink, stream) = pubsub.split();
        let channels: Vec<String> = lock(&self.registry).keys().cloned().collect();
        if !channels.is_empty() {
            match timeout(self.config.response_timeout, sink.subscribe(&channels)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return self.lost(&format!("SUBSCRIBE failed: {e}")),
                Err(_) => return self.lost("SUBSCRIBE did not answer in time"),
            }
        }
        self.sink = Some(sink);
        self.stream = Some(stream);
        self.backoff = MIN_BACKOFF;
        self.subscribed = channels.iter().cloned().collect();
        for c in &channels {
            self.set_subscribed(c);
        }
        // Channels dropped from the registry while we subscribed: bring in line.
        let stale: Vec<String> = channels.into_iter().filter(|c| !self.wanted(c)).collect();
        for c in stale {
            self.apply(c).await;
        }
    }
}

/// Whether a message names one waiter: a waiter id is 32 lowercase hex
/// digits (an [`OwnerId`](fencelock_core::OwnerId) in its simple form).
fn is_waiter_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The channel and payload of the next message, or `None` when the
/// connection closed; pending forever while not connected.
async fn next_message(stream: &mut Option<PubSubStream>) -> Option<(String, String)> {
    match stream {
        Some(s) => s.next().await.map(|m| {
            let whom = m.get_payload::<String>().unwrap_or_default();
            (m.get_channel_name().to_string(), whom)
        }),
        None => std::future::pending().await,
    }
}
