//! One workload run: a store, the resource, K clients × M tasks, the log.

use std::path::PathBuf;
use std::time::Duration;

use fencelock::{Capabilities, Expiry};

use super::client::{self, ClientProc, Config};
use super::events::{Event, Fault, Kind, Log};
use super::netns::{Members, Net};
use super::resource::{Resource, Stats};
use crate::fixture::Fixture;
use crate::monotonic_ns;
use crate::proxy::{Mode, ProxyGroup};

/// The harness's binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bins {
    /// `fencelock-chaos-client`.
    pub client: PathBuf,
    /// `fencelock-chaos-resource`.
    pub resource: PathBuf,
    /// `fencelock-contender` (a plain waiter/holder process).
    pub contender: PathBuf,
}

impl Bins {
    /// The binaries next to the running executable (for `fencelock-chaos`).
    ///
    /// # Errors
    ///
    /// When the executable's directory is unknown.
    pub fn beside_current_exe() -> Result<Bins, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let dir = exe.parent().ok_or("no directory")?;
        Ok(Bins {
            client: dir.join("fencelock-chaos-client"),
            resource: dir.join("fencelock-chaos-resource"),
            contender: dir.join("fencelock-contender"),
        })
    }
}

/// How long and how wide a scenario runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The workload's duration (scenarios with a fault sequence run at
    /// least as long as the sequence needs).
    pub duration: Duration,
    /// Client processes (K).
    pub clients: usize,
    /// Tasks per client (M).
    pub tasks: usize,
    /// Short mode (the test command's): fewer fault rounds.
    pub short: bool,
}

impl Settings {
    /// The test command's short settings: 3 processes × 8 tasks, 3 s.
    pub fn short() -> Settings {
        Settings {
            duration: Duration::from_secs(3),
            clients: 3,
            tasks: 8,
            short: true,
        }
    }

    /// The full run's settings: 3 processes × 8 tasks, `duration`.
    pub fn full(duration: Duration) -> Settings {
        Settings {
            duration,
            clients: 3,
            tasks: 8,
            short: false,
        }
    }
}

/// Sets `name=value` in `url`'s query, replacing an existing value.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    parts.push(format!("{name}={value}"));
    format!("{base}?{}", parts.join("&"))
}

/// The chaos harness's timing for a backend: a 1 s TTL; 2 s sessions on
/// ZooKeeper (etcd's leases follow each grant's TTL).
pub fn tuned(backend: &str, url: &str) -> String {
    if backend.starts_with("zookeeper") {
        with_param(url, "session_timeout", "2s")
    } else {
        url.to_string()
    }
}

/// Connects to `url`, retrying for up to `bound` (a store that just
/// started may answer its health probe before it takes sessions).
///
/// # Errors
///
/// The last error when the bound passes.
pub async fn connect_retry(
    url: &str,
    bound: Duration,
) -> Result<std::sync::Arc<dyn fencelock::DistributedLock>, String> {
    let end = tokio::time::Instant::now() + bound;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let err =
            match tokio::time::timeout(left.max(Duration::from_secs(1)), fencelock::connect(url))
                .await
            {
                Ok(Ok(l)) => return Ok(l),
                Ok(Err(e)) => format!("connect to {url}: {e}"),
                Err(_) => format!("connect to {url} hung for {bound:?}"),
            };
        if tokio::time::Instant::now() >= end {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The abandon bound [`tuned`] gives a backend (before a client can say):
/// the TTL, the 2 s session or lease, nothing for the file backend.
pub fn expected_bound(backend: &str) -> Duration {
    if backend.starts_with("zookeeper") || backend.starts_with("etcd") {
        Duration::from_secs(2)
    } else if backend == "file" {
        Duration::ZERO
    } else {
        Duration::from_millis(TTL_MS)
    }
}

/// The TTL every grant asks for (ms).
pub const TTL_MS: u64 = 1000;

/// A running workload.
#[derive(Debug)]
pub struct Run {
    /// The store.
    pub fixture: Fixture,
    /// Every event and fault.
    pub log: Log,
    /// The resource process.
    pub resource: Resource,
    /// The backend's capabilities (from a client of the tuned URL).
    pub caps: Capabilities,
    /// The client template (URL, key, timing).
    pub cfg: Config,
    /// Client processes, by client number (in-process clients: `None`).
    pub procs: Vec<Option<ClientProc>>,
    /// Each client's proxies, when it talks through its own.
    pub proxies: Vec<Option<ProxyGroup>>,
    bins: Bins,
    in_process: Vec<tokio::task::JoinHandle<()>>,
    started: u128,
    /// Temporary files (restarted servers' logs).
    pub scratch: tempfile::TempDir,
    /// The server members' network namespaces (S12-member), removed after
    /// the servers (the fixture, the first field, drops first).
    pub members: Option<Members>,
    /// The clients' network namespaces (S12, S13), removed after
    /// everything else (the last field drops last).
    pub net: Option<Net>,
}

impl Run {
    /// Starts the store, the resource and the template; no clients yet.
    /// Clients stop starting new attempts after `run_for`.
    ///
    /// # Errors
    ///
    /// When the store or the resource does not start.
    pub async fn start(
        backend: &str,
        fenced: bool,
        run_for: Duration,
        work_ms: (u64, u64),
        bins: &Bins,
    ) -> Result<Run, String> {
        Run::start_with(backend, fenced, run_for, work_ms, bins, None).await
    }

    /// [`start`](Self::start) with the clients in `net`'s namespaces
    /// (client `i` in namespace `i`): the servers and the resource also
    /// listen on `net`'s addresses, and the clients connect there.
    ///
    /// # Errors
    ///
    /// When the store or the resource does not start.
    pub async fn start_with(
        backend: &str,
        fenced: bool,
        run_for: Duration,
        work_ms: (u64, u64),
        bins: &Bins,
        net: Option<Net>,
    ) -> Result<Run, String> {
        Run::start_inner(backend, fenced, run_for, work_ms, bins, net, None).await
    }

    /// [`start`](Self::start) with each server member in one of
    /// `members`' namespaces ([`Fixture::start_placed`]); the clients and
    /// the resource stay in the root namespace.
    ///
    /// # Errors
    ///
    /// When the store or the resource does not start.
    pub async fn start_members(
        backend: &str,
        fenced: bool,
        run_for: Duration,
        work_ms: (u64, u64),
        bins: &Bins,
        members: Members,
    ) -> Result<Run, String> {
        Run::start_inner(backend, fenced, run_for, work_ms, bins, None, Some(members)).await
    }

    async fn start_inner(
        backend: &str,
        fenced: bool,
        run_for: Duration,
        work_ms: (u64, u64),
        bins: &Bins,
        net: Option<Net>,
        members: Option<Members>,
    ) -> Result<Run, String> {
        let (fixture, resource, url) = match (&net, &members) {
            (_, Some(m)) => {
                let f = Fixture::start_placed(backend, &m.placements()).await?;
                let res = Resource::start(&bins.resource, fenced).await?;
                let url = tuned(backend, &f.url());
                (f, res, url)
            }
            (Some(n), None) => {
                let f = Fixture::start_on(backend, n.server_ip()).await?;
                let res = Resource::start_on(&bins.resource, fenced, Some(n.resource_ip())).await?;
                let url = tuned(backend, &f.url_via(&f.endpoints_on(n.server_ip())));
                (f, res, url)
            }
            (None, None) => {
                let f = Fixture::start(backend).await?;
                let res = Resource::start(&bins.resource, fenced).await?;
                let url = tuned(backend, &f.url());
                (f, res, url)
            }
        };
        let caps = connect_retry(&url, Duration::from_secs(30))
            .await?
            .capabilities();
        let started = monotonic_ns();
        let cfg = Config {
            url,
            key: format!("chaos-{:08x}", rand::random::<u32>()),
            tasks: 1,
            resource: resource.addr(),
            ttl_ms: TTL_MS,
            wait_ms: 20_000,
            until_ns: started + run_for.as_nanos(),
            work_min_ms: work_ms.0,
            work_max_ms: work_ms.1,
        };
        Ok(Run {
            fixture,
            log: Log::new(),
            resource,
            caps,
            cfg,
            procs: Vec::new(),
            proxies: Vec::new(),
            bins: bins.clone(),
            in_process: Vec::new(),
            started,
            scratch: tempfile::tempdir().map_err(|e| e.to_string())?,
            members,
            net,
        })
    }

    /// How long an abandoned grant can keep others out.
    pub fn bound(&self) -> Duration {
        self.caps.abandon_bound(Duration::from_millis(TTL_MS))
    }

    /// Whether grants end only with their process (the file backend).
    pub fn process_bound(&self) -> bool {
        self.caps.expiry == Expiry::Process
    }

    /// Starts a client with `tasks` tasks: a process, or a task of this
    /// process for the memory store (which processes cannot share). With
    /// `proxied`, the client talks through proxies of its own. Returns its
    /// client number.
    ///
    /// # Errors
    ///
    /// When it cannot start.
    pub async fn add_client(&mut self, tasks: usize, proxied: bool) -> Result<usize, String> {
        let id = self.procs.len();
        let mut cfg = Config {
            tasks,
            ..self.cfg.clone()
        };
        let mut group = None;
        if proxied && !self.fixture.endpoints().is_empty() {
            let g = ProxyGroup::start(self.fixture.endpoints())
                .await
                .map_err(|e| e.to_string())?;
            cfg.url = tuned(self.fixture.backend(), &self.fixture.url_via(&g.addrs()));
            group = Some(g);
        }
        if self.fixture.backend() == "memory" {
            let lock = connect_retry(&cfg.url, Duration::from_secs(30)).await?;
            let sink = client::log_sink(&self.log, id);
            self.in_process
                .push(tokio::spawn(client::run(lock, cfg, sink)));
            self.procs.push(None);
        } else {
            let prefix = match &self.net {
                Some(n) if id >= n.groups() => {
                    return Err(format!(
                        "client {id} has no network namespace ({} made)",
                        n.groups()
                    ))
                }
                Some(n) => n.exec_prefix(id),
                None => Vec::new(),
            };
            let p = ClientProc::spawn_in(&prefix, &self.bins.client, &cfg, id, &self.log)?;
            self.procs.push(Some(p));
        }
        self.proxies.push(group);
        Ok(id)
    }

    /// Starts a client process with `tasks` tasks that talks to
    /// `endpoints` only (a subset or an order of the fixture's, e.g. one
    /// member of a cluster). Returns its client number.
    ///
    /// # Errors
    ///
    /// When it cannot start, or the clients need namespaces.
    pub fn add_client_via(
        &mut self,
        tasks: usize,
        endpoints: &[std::net::SocketAddr],
    ) -> Result<usize, String> {
        if self.net.is_some() || self.fixture.backend() == "memory" {
            return Err("add_client_via: only for processes in the root namespace".into());
        }
        let id = self.procs.len();
        let cfg = Config {
            tasks,
            url: tuned(self.fixture.backend(), &self.fixture.url_via(endpoints)),
            ..self.cfg.clone()
        };
        let p = ClientProc::spawn_in(&[], &self.bins.client, &cfg, id, &self.log)?;
        self.procs.push(Some(p));
        self.proxies.push(None);
        Ok(id)
    }

    /// Sets the proxies of client `id` (if it has any).
    pub fn set_proxies(&self, id: usize, mode: Mode) {
        if let Some(Some(g)) = self.proxies.get(id) {
            g.set(mode);
        }
    }

    /// Client processes that are alive.
    pub fn live(&self) -> Vec<usize> {
        self.procs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| !p.is_dead()))
            .map(|(i, _)| i)
            .collect()
    }

    /// When the clients stop starting attempts (ns).
    pub fn until_ns(&self) -> u128 {
        self.cfg.until_ns
    }

    /// Waits, up to `bound`, for a `read` event (a holder inside its
    /// critical section) from one of `clients`; returns it.
    pub async fn next_read(&self, clients: &[usize], bound: Duration) -> Option<Event> {
        let mut rx = self.log.subscribe();
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(e) if matches!(e.kind, Kind::Read { .. }) && clients.contains(&e.client) => {
                        return Some(e)
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        };
        tokio::time::timeout(bound, wait).await.ok().flatten()
    }

    /// Waits, up to `bound`, for a grant to any client other than `not`
    /// that started after `after` (ns).
    pub async fn grant_after(&self, after: u128, not: Option<usize>, bound: Duration) -> bool {
        let seen = |e: &Event| {
            matches!(e.kind, Kind::Grant { .. }) && e.ns > after && Some(e.client) != not
        };
        let mut rx = self.log.subscribe();
        if self.log.events().iter().any(seen) {
            return true;
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(e) if seen(&e) => return true,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return false,
                }
            }
        };
        tokio::time::timeout(bound, wait).await.unwrap_or(false)
    }

    /// Records a fault.
    pub fn fault(&self, f: Fault) {
        self.log.fault(f);
    }

    /// Sleeps until the clients' end, if it is still ahead.
    pub async fn wait_end(&self) {
        let now = monotonic_ns();
        if let Some(left) = self.cfg.until_ns.checked_sub(now) {
            let left = u64::try_from(left).unwrap_or(u64::MAX);
            tokio::time::sleep(Duration::from_nanos(left)).await;
        }
    }

    /// Waits for every client to finish (heals every proxy first), then
    /// reads the resource.
    pub async fn finish(mut self) -> Outcome {
        self.wait_end().await;
        for g in self.proxies.iter().flatten() {
            g.set(Mode::Pass);
        }
        let mut problems = Vec::new();
        if let Some(n) = &self.net {
            for i in 0..n.groups() {
                if let Err(e) = n.heal(i) {
                    problems.push(e);
                }
            }
        }
        if let Some(m) = &self.members {
            for i in 0..m.count() {
                if let Err(e) = m.heal(i) {
                    problems.push(e);
                }
            }
        }
        let bound =
            Duration::from_millis(self.cfg.wait_ms) + self.bound() * 2 + Duration::from_secs(10);
        for p in self.procs.drain(..).flatten() {
            let id = p.id;
            if !p.is_dead() && !p.finish(bound).await {
                problems.push(format!("client {id} did not finish within {bound:?}"));
            }
        }
        for h in self.in_process.drain(..) {
            if tokio::time::timeout(bound, h).await.is_err() {
                problems.push("an in-process client did not finish".into());
            }
        }
        let ended = monotonic_ns();
        let stats = match self.resource.stats().await {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(format!("the resource could not be read: {e}"));
                None
            }
        };
        #[allow(clippy::cast_precision_loss)]
        let secs = (ended - self.started) as f64 / 1e9;
        Outcome {
            events: self.log.events(),
            faults: self.log.faults(),
            stats,
            secs,
            problems,
        }
    }
}

/// What a finished run left.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every event.
    pub events: Vec<Event>,
    /// Every fault.
    pub faults: Vec<Fault>,
    /// The resource's counters (if it could be read).
    pub stats: Option<Stats>,
    /// How long the run took (s).
    pub secs: f64,
    /// Harness problems.
    pub problems: Vec<String>,
}
