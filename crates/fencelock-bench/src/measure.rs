//! The scenarios (cycle, spread, hot key, renewal cost), their statistics,
//! and the server-side counters and resident memory they read.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use crate::impls::{Held, Locker};

/// Bound on one lock operation of an uncontended scenario.
const OP_BOUND: Duration = Duration::from_secs(10);
/// How long hot-key waiters may still run after the clock stops.
const HOT_GRACE: Duration = Duration::from_secs(5);

/// What one repetition measured.
#[derive(Debug, Default, Clone)]
pub struct Rep {
    /// Completed operations (cycles or grants) inside the measured time.
    pub ops: u64,
    /// The measured time.
    pub secs: f64,
    /// Latencies in µs (cycle time, or hand-off time on the hot key).
    pub lat_us: Vec<u64>,
    /// Failed operations.
    pub errors: u64,
    /// The first error seen.
    pub first_error: Option<String>,
    /// Hot key: hand-offs to a different client, µs.
    pub cross_us: Vec<u64>,
    /// Hot key: the largest share of grants one client took.
    pub max_share: f64,
}

impl Rep {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
    fn merge(&mut self, other: Rep) {
        self.ops += other.ops;
        self.lat_us.extend(other.lat_us);
        self.cross_us.extend(other.cross_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }
    /// The `q` quantile (0..=1) of the latencies, in µs.
    pub fn quantile(&mut self, q: f64) -> Option<f64> {
        if self.lat_us.is_empty() {
            return None;
        }
        self.lat_us.sort_unstable();
        let idx = ((self.lat_us.len() - 1) as f64 * q).round();
        let idx = usize::try_from(float_to_u64(idx)).unwrap_or(usize::MAX);
        Some(self.lat_us[idx.min(self.lat_us.len() - 1)] as f64)
    }
}

/// `f` as an integer, saturating (the values here are small and positive).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn float_to_u64(f: f64) -> u64 {
    if f.is_finite() && f > 0.0 {
        f as u64
    } else {
        0
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

async fn cycle_once(l: &dyn Locker, key: &str) -> Result<(), String> {
    let held = timeout(OP_BOUND, l.lock(key))
        .await
        .map_err(|_| format!("lock did not answer within {OP_BOUND:?}"))??;
    timeout(OP_BOUND, held.release())
        .await
        .map_err(|_| format!("release did not answer within {OP_BOUND:?}"))?
}

/// One client: acquire + release on fresh keys, one after another, for `dur`.
pub async fn cycle(l: &Arc<dyn Locker>, prefix: &str, dur: Duration) -> Rep {
    let start = Instant::now();
    let end = start + dur;
    let mut rep = Rep::default();
    let mut i = 0u64;
    while Instant::now() < end {
        // In-process backends never wait on I/O: yield so the runtime can
        // reap the aborted watchdog tasks of released guards.
        tokio::task::yield_now().await;
        let key = format!("{prefix}-{i}");
        i += 1;
        let t0 = Instant::now();
        match cycle_once(&**l, &key).await {
            Ok(()) => {
                rep.ops += 1;
                rep.lat_us.push(micros(t0.elapsed()));
            }
            Err(e) => {
                rep.error(e);
                if rep.errors > 20 {
                    break;
                }
            }
        }
    }
    rep.secs = start.elapsed().as_secs_f64();
    rep
}

/// `tasks` tasks cycling on distinct fresh keys for `dur`, task `t` on
/// client `t % clients.len()`: total operations per second.
pub async fn spread(clients: &[Arc<dyn Locker>], tasks: usize, prefix: &str, dur: Duration) -> Rep {
    let start = Instant::now();
    let tasks: Vec<_> = (0..tasks)
        .map(|t| {
            let l = Arc::clone(&clients[t % clients.len()]);
            let prefix = format!("{prefix}-t{t}");
            tokio::spawn(async move { cycle(&l, &prefix, dur).await })
        })
        .collect();
    let mut total = Rep::default();
    for t in tasks {
        match t.await {
            Ok(r) => total.merge(r),
            Err(e) => total.error(format!("task failed: {e}")),
        }
    }
    total.secs = start.elapsed().as_secs_f64();
    total
}

/// `clients.len()` tasks, one client each, taking and releasing one key for
/// `dur`: grants per second, and the hand-off latency from the instant a
/// holder starts its release to the instant the next holder's acquire
/// returns.
pub async fn hot(clients: &[Arc<dyn Locker>], key: &str, dur: Duration) -> Rep {
    let start = Instant::now();
    let end = start + dur;
    let last_release: Arc<Mutex<Option<(Instant, usize)>>> = Arc::new(Mutex::new(None));
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(me, l)| {
            let l = Arc::clone(l);
            let key = key.to_string();
            let last_release = Arc::clone(&last_release);
            tokio::spawn(async move {
                let mut rep = Rep::default();
                while Instant::now() < end {
                    tokio::task::yield_now().await;
                    let held: Held = match timeout_at(end + HOT_GRACE, l.lock(&key)).await {
                        Ok(Ok(h)) => h,
                        Ok(Err(e)) => {
                            rep.error(e);
                            if rep.errors > 20 {
                                break;
                            }
                            continue;
                        }
                        Err(_) => break,
                    };
                    let granted = Instant::now();
                    {
                        let mut last = last_release.lock().unwrap_or_else(PoisonError::into_inner);
                        let prev = last.take();
                        if granted < end {
                            rep.ops += 1;
                            if let Some((p, who)) = prev {
                                let d = micros(granted.saturating_duration_since(p));
                                rep.lat_us.push(d);
                                if who != me {
                                    rep.cross_us.push(d);
                                }
                            }
                        }
                        *last = Some((Instant::now(), me));
                    }
                    match timeout(OP_BOUND, held.release()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => rep.error(e),
                        Err(_) => rep.error("release timed out".into()),
                    }
                }
                rep
            })
        })
        .collect();
    let mut total = Rep::default();
    let mut most = 0;
    for t in tasks {
        match t.await {
            Ok(r) => {
                most = most.max(r.ops);
                total.merge(r);
            }
            Err(e) => total.error(format!("task failed: {e}")),
        }
    }
    total.secs = dur.as_secs_f64();
    total.max_share = most as f64 / total.ops.max(1) as f64;
    total
}

/// The process's resident memory in bytes (`VmRSS` of /proc/self/status).
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A server-side request counter for one store.
#[derive(Debug, Clone)]
pub enum Counter {
    /// Redis: `INFO stats` on each node, over connections kept open.
    Redis(Vec<String>, RedisConns),
    /// etcd: `grpc_server_msg_received_total` from `/metrics` of each member.
    Etcd(Vec<String>),
    /// ZooKeeper: `zk_packets_received` of `mntr` on each server.
    Zk(Vec<String>),
    /// No server.
    None,
}

/// The counter's own Redis connections, opened on first use.
pub type RedisConns = Arc<tokio::sync::Mutex<Vec<redis::aio::MultiplexedConnection>>>;

/// One reading of a [`Counter`]: (requests, round trips), summed over nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Requests the servers processed (commands, gRPC messages, packets).
    pub requests: f64,
    /// Read events (Redis `total_reads_processed`: about one per round trip).
    pub reads: f64,
    /// etcd: keep-alive messages alone.
    pub keepalives: f64,
}

async fn raw(addr: &str, request: &[u8]) -> Result<String, String> {
    let mut s = timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("{addr}: connect timed out"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    s.write_all(request).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .map_err(|_| format!("{addr}: read timed out"))?
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn field(text: &str, name: &str, sep: char) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(sep))
        .and_then(|v| v.trim().parse().ok())
}

impl Counter {
    /// Reads the counter now.
    pub async fn read(&self) -> Result<Reading, String> {
        let mut r = Reading::default();
        match self {
            Counter::None => {}
            Counter::Redis(nodes, conns) => {
                let mut conns = conns.lock().await;
                if conns.is_empty() {
                    for n in nodes {
                        let client = redis::Client::open(format!("redis://{n}"))
                            .map_err(|e| e.to_string())?;
                        conns.push(
                            client
                                .get_multiplexed_async_connection()
                                .await
                                .map_err(|e| e.to_string())?,
                        );
                    }
                }
                for c in conns.iter_mut() {
                    let info: String = redis::cmd("INFO")
                        .arg("stats")
                        .query_async(c)
                        .await
                        .map_err(|e| e.to_string())?;
                    r.requests += field(&info, "total_commands_processed", ':').unwrap_or(0.0);
                    r.reads += field(&info, "total_reads_processed", ':').unwrap_or(0.0);
                }
            }
            Counter::Etcd(members) => {
                for m in members {
                    let req = format!("GET /metrics HTTP/1.0\r\nHost: {m}\r\n\r\n");
                    let text = raw(m, req.as_bytes()).await?;
                    for line in text.lines() {
                        if let Some(rest) = line.strip_prefix("grpc_server_msg_received_total{") {
                            let v: f64 = rest
                                .rsplit(' ')
                                .next()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0.0);
                            r.requests += v;
                            if rest.contains("grpc_method=\"LeaseKeepAlive\"") {
                                r.keepalives += v;
                            }
                        }
                    }
                }
            }
            Counter::Zk(servers) => {
                for s in servers {
                    let text = raw(s, b"mntr").await?;
                    r.requests += field(&text, "zk_packets_received", '\t')
                        .ok_or_else(|| format!("{s}: no zk_packets_received in mntr"))?;
                }
            }
        }
        Ok(r)
    }

    /// How many servers it reads.
    pub fn servers(&self) -> usize {
        match self {
            Counter::Redis(n, _) | Counter::Etcd(n) | Counter::Zk(n) => n.len(),
            Counter::None => 0,
        }
    }

    /// The requests the counter itself adds between two readings (one
    /// `INFO` per Redis node).
    pub fn own(&self) -> f64 {
        match self {
            Counter::Redis(n, _) => n.len() as f64,
            _ => 0.0,
        }
    }
}

/// What holding `h` locks cost one client.
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// Server requests per second while holding them.
    pub requests_per_sec: f64,
    /// Redis read events (round trips) per second.
    pub reads_per_sec: f64,
    /// etcd keep-alive messages per second.
    pub keepalives_per_sec: f64,
    /// Seconds to take all of them.
    pub acquire_secs: f64,
    /// Errors while taking them.
    pub errors: u64,
    /// The first error.
    pub first_error: Option<String>,
}

/// Holds `h` locks in one client (`lock`, fresh keys, taken 64 at a time),
/// waits `settle`, reads the server counters over `window`, and releases.
pub async fn renewal(
    lock: &Arc<dyn fencelock::DistributedLock>,
    opts: &fencelock::LockOptions,
    counter: &Counter,
    prefix: &str,
    h: usize,
    settle: Duration,
    window: Duration,
) -> Result<Renewal, String> {
    let mut out = Renewal::default();
    let t0 = Instant::now();
    let results: Vec<_> = stream::iter(0..h)
        .map(|i| {
            let lock = Arc::clone(lock);
            let key = format!("{prefix}-{i}");
            let opts = opts.clone();
            async move { timeout(OP_BOUND, lock.try_acquire(&key, &opts)).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    out.acquire_secs = t0.elapsed().as_secs_f64();
    let mut guards = Vec::with_capacity(h);
    for r in results {
        match r {
            Ok(Ok(Some(g))) => guards.push(g),
            Ok(Ok(None)) => {
                out.errors += 1;
                out.first_error.get_or_insert("busy".into());
            }
            Ok(Err(e)) => {
                out.errors += 1;
                out.first_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                out.errors += 1;
                out.first_error.get_or_insert("acquire timed out".into());
            }
        }
    }
    // A measurement window, not a wait for a condition: renewals run on
    // their own clock and the counters are read around a fixed interval.
    let (settle, window) = if matches!(counter, Counter::None) {
        (Duration::ZERO, Duration::from_millis(10))
    } else {
        (settle, window)
    };
    tokio::time::sleep(settle).await;
    let a = counter.read().await?;
    let ta = Instant::now();
    tokio::time::sleep(window).await;
    let b = counter.read().await?;
    let secs = ta.elapsed().as_secs_f64();
    let lost = guards.iter().filter(|g| g.is_lost()).count();
    if lost > 0 {
        out.errors += u64::try_from(lost).unwrap_or(u64::MAX);
        out.first_error
            .get_or_insert(format!("{lost} guards lost while held"));
    }
    let own = counter.own();
    out.requests_per_sec = ((b.requests - a.requests - own).max(0.0)) / secs;
    out.reads_per_sec = ((b.reads - a.reads - own).max(0.0)) / secs;
    out.keepalives_per_sec = (b.keepalives - a.keepalives).max(0.0) / secs;
    stream::iter(guards)
        .map(|g| async move {
            let _ = timeout(OP_BOUND, g.release()).await;
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    Ok(out)
}
