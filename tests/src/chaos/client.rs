//! The workload: tasks that loop acquire → fenced critical section on the
//! [resource](super::resource) → release, logging every step; and the
//! client processes that run them (`fencelock-chaos-client`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fencelock::{DistributedLock, LockOptions};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::events::{Event, Kind, Log};
use super::resource::{Conn, Reply};
use crate::monotonic_ns;

/// What one client runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The lock URL.
    pub url: String,
    /// The lock key (one key for the whole run).
    pub key: String,
    /// Tasks in this client.
    pub tasks: usize,
    /// The resource's address.
    pub resource: SocketAddr,
    /// The TTL of every grant, in ms.
    pub ttl_ms: u64,
    /// How long one `acquire` waits, in ms.
    pub wait_ms: u64,
    /// Stop starting new attempts at this monotonic time (ns).
    pub until_ns: u128,
    /// The time between the read and the write, in ms: uniform in
    /// `work_min_ms..=work_max_ms`.
    pub work_min_ms: u64,
    /// See [`work_min_ms`](Self::work_min_ms).
    pub work_max_ms: u64,
}

impl Config {
    /// The command-line form (`key=value` words) that [`Config::parse`] reads.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("url={}", self.url),
            format!("key={}", self.key),
            format!("tasks={}", self.tasks),
            format!("resource={}", self.resource),
            format!("ttl_ms={}", self.ttl_ms),
            format!("wait_ms={}", self.wait_ms),
            format!("until_ns={}", self.until_ns),
            format!("work_ms={}..{}", self.work_min_ms, self.work_max_ms),
        ]
    }

    /// Parses [`to_args`](Self::to_args) words.
    ///
    /// # Errors
    ///
    /// Names the missing or bad word.
    pub fn parse(args: &[String]) -> Result<Config, String> {
        let get = |name: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| format!("missing {name}="))
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?.parse().map_err(|e| format!("{name}: {e}"))
        };
        let (lo, hi) = get("work_ms")?
            .split_once("..")
            .ok_or("work_ms=<min>..<max>")?;
        Ok(Config {
            url: get("url")?.to_string(),
            key: get("key")?.to_string(),
            tasks: usize::try_from(num("tasks")?).map_err(|e| e.to_string())?,
            resource: get("resource")?
                .parse()
                .map_err(|e| format!("resource: {e}"))?,
            ttl_ms: num("ttl_ms")?,
            wait_ms: num("wait_ms")?,
            until_ns: get("until_ns")?
                .parse()
                .map_err(|e| format!("until_ns: {e}"))?,
            work_min_ms: lo.parse().map_err(|e| format!("work_ms: {e}"))?,
            work_max_ms: hi.parse().map_err(|e| format!("work_ms: {e}"))?,
        })
    }

    fn opts(&self) -> LockOptions {
        LockOptions::new()
            .with_ttl(Duration::from_millis(self.ttl_ms))
            .with_wait(Duration::from_millis(self.wait_ms))
    }

    fn work(&self) -> Duration {
        let span = self.work_max_ms.saturating_sub(self.work_min_ms);
        Duration::from_millis(self.work_min_ms + rand::random::<u64>() % (span + 1))
    }
}

/// Where a task's events go: `(task, seq, ns, kind)`.
pub type Sink = Arc<dyn Fn(usize, u64, u128, Kind) + Send + Sync>;

/// Runs `cfg.tasks` tasks on `lock` until `cfg.until_ns`.
pub async fn run(lock: Arc<dyn DistributedLock>, cfg: Config, sink: Sink) {
    let mut handles = Vec::new();
    for task in 0..cfg.tasks {
        let (lock, cfg, sink) = (Arc::clone(&lock), cfg.clone(), Arc::clone(&sink));
        handles.push(tokio::spawn(async move {
            run_task(&*lock, &cfg, task, &sink).await;
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

async fn run_task(lock: &dyn DistributedLock, cfg: &Config, task: usize, sink: &Sink) {
    let emit = |seq: u64, kind: Kind| sink(task, seq, monotonic_ns(), kind);
    let mut conn: Option<Conn> = None;
    let opts = cfg.opts();
    let mut seq = 0u64;
    while monotonic_ns() < cfg.until_ns {
        seq += 1;
        let asked = monotonic_ns();
        let guard = match lock.acquire(&cfg.key, &opts).await {
            Ok(g) => g,
            Err(e) => {
                emit(
                    seq,
                    Kind::AcquireError {
                        kind: format!("{:?}", e.kind()),
                    },
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let now = monotonic_ns();
        let deadline_ns = now + guard.remaining().as_nanos();
        sink(
            task,
            seq,
            now,
            Kind::Grant {
                token: guard.token().get(),
                deadline_ns,
                waited_ns: now.saturating_sub(asked),
            },
        );
        let mut watcher = watch(&guard, deadline_ns, task, seq, sink);
        // The critical section: no is_lost() check on purpose (a pause can
        // always come right after one); the resource's fence must hold.
        let token = guard.token().get();
        if conn.is_none() {
            conn = Conn::connect(cfg.resource).await.ok();
        }
        if let Some(c) = conn.as_mut() {
            match c.read(token).await {
                Ok(Reply::Ok(v)) => {
                    emit(seq, Kind::Read { value: v });
                    tokio::time::sleep(cfg.work()).await;
                    match c.write(token, v + 1).await {
                        Ok(Reply::Ok(_)) => emit(seq, Kind::Write { value: v + 1 }),
                        Ok(Reply::Stale) => emit(seq, Kind::WriteRejected),
                        Err(_) => conn = None,
                    }
                }
                Ok(Reply::Stale) => emit(seq, Kind::ReadRejected),
                Err(_) => conn = None,
            }
        }
        if guard.is_lost() {
            // A holder resumed past its deadline gets here at once: let the
            // watcher log the signal it is about to see before it stops.
            let _ = tokio::time::timeout(Duration::from_millis(50), &mut watcher).await;
        }
        if !watcher.is_finished() {
            watcher.abort();
            let _ = watcher.await;
        }
        let start = monotonic_ns();
        let outcome = match guard.release().await {
            Ok(()) => "ok".to_string(),
            Err(e) if e.kind() == fencelock::ErrorKind::Lost => "lost".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        };
        sink(task, seq, start, Kind::Release { outcome });
    }
}

/// The loss watcher of one grant: logs its deadline's moves and its lost
/// signal into `sink`, until aborted.
pub fn watch(
    guard: &fencelock::LockGuard,
    deadline_ns: u128,
    task: usize,
    seq: u64,
    sink: &Sink,
) -> tokio::task::JoinHandle<()> {
    let handle = guard.handle();
    let sink = Arc::clone(sink);
    tokio::spawn(async move {
        let lost = handle.lost();
        tokio::pin!(lost);
        let mut last = deadline_ns;
        loop {
            tokio::select! {
                () = &mut lost => {
                    sink(task, seq, monotonic_ns(), Kind::Lost);
                    return;
                }
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    let now = monotonic_ns();
                    let d = now + handle.remaining().as_nanos();
                    // Only forward moves bigger than 1 ms are news.
                    if d > last + 1_000_000 && !handle.is_lost() {
                        last = d;
                        sink(task, seq, now, Kind::Deadline { deadline_ns: d });
                    }
                }
            }
        }
    })
}

/// Acquires `key` on `lock`, logs the grant (or the error) as `task`/`seq`
/// into `sink`, holds it until `until` completes or the grant is lost,
/// then releases and logs the release. Returns the token, or the error.
///
/// # Errors
///
/// The acquire's error.
pub async fn hold_once(
    lock: &dyn DistributedLock,
    key: &str,
    opts: &LockOptions,
    sink: &Sink,
    (task, seq): (usize, u64),
    until: impl std::future::Future<Output = ()>,
) -> fencelock::Result<u64> {
    let asked = monotonic_ns();
    let guard = match lock.acquire(key, opts).await {
        Ok(g) => g,
        Err(e) => {
            sink(
                task,
                seq,
                monotonic_ns(),
                Kind::AcquireError {
                    kind: format!("{:?}", e.kind()),
                },
            );
            return Err(e);
        }
    };
    let now = monotonic_ns();
    let deadline_ns = now + guard.remaining().as_nanos();
    let token = guard.token().get();
    sink(
        task,
        seq,
        now,
        Kind::Grant {
            token,
            deadline_ns,
            waited_ns: now.saturating_sub(asked),
        },
    );
    let watcher = watch(&guard, deadline_ns, task, seq, sink);
    tokio::select! {
        () = until => {}
        () = guard.lost() => {}
    }
    watcher.abort();
    let _ = watcher.await;
    let start = monotonic_ns();
    let outcome = match guard.release().await {
        Ok(()) => "ok".to_string(),
        Err(e) if e.kind() == fencelock::ErrorKind::Lost => "lost".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    sink(task, seq, start, Kind::Release { outcome });
    Ok(token)
}

/// A sink that prints lines on stdout (the client process's).
pub fn stdout_sink() -> Sink {
    use std::io::Write;
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    Arc::new(move |task, seq, ns, kind| {
        let line = Event {
            client: 0,
            task,
            seq,
            ns,
            kind,
        }
        .to_string();
        let mut o = out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    })
}

/// A sink into `log` as client `client` (for in-process clients).
pub fn log_sink(log: &Log, client: usize) -> Sink {
    let log = log.clone();
    Arc::new(move |task, seq, ns, kind| {
        log.push(Event {
            client,
            task,
            seq,
            ns,
            kind,
        });
    })
}

/// A client process (`fencelock-chaos-client`) whose events go to a log.
#[derive(Debug)]
pub struct ClientProc {
    /// Its client number in the log.
    pub id: usize,
    child: tokio::process::Child,
    reader: tokio::task::JoinHandle<()>,
    pid: u32,
    log: Log,
    dead: bool,
}

impl ClientProc {
    /// Starts the binary at `bin` with `cfg`, as client `id` of `log`.
    ///
    /// # Errors
    ///
    /// When the process cannot start.
    pub fn spawn(bin: &Path, cfg: &Config, id: usize, log: &Log) -> Result<ClientProc, String> {
        ClientProc::spawn_in(&[], bin, cfg, id, log)
    }

    /// [`spawn`](Self::spawn) through `prefix`, a command that execs the
    /// binary in the same process (`ip netns exec <ns>`: its PID is the
    /// client's, to pause and kill).
    ///
    /// # Errors
    ///
    /// When the process cannot start.
    pub fn spawn_in(
        prefix: &[String],
        bin: &Path,
        cfg: &Config,
        id: usize,
        log: &Log,
    ) -> Result<ClientProc, String> {
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        let mut child = cmd
            .args(cfg.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id().ok_or("the client exited at once")?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(e) = Event::parse(id, &line) {
                    sink.push(e);
                }
            }
        });
        Ok(ClientProc {
            id,
            child,
            reader,
            pid,
            log: log.clone(),
            dead: false,
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn signal(&self, sig: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// SIGSTOP.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// SIGKILL; logs a `died` event (which ends its open grants).
    pub async fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        let ns = monotonic_ns();
        let _ = self.child.wait().await;
        self.dead = true;
        self.log.push(Event {
            client: self.id,
            task: 0,
            seq: 0,
            ns,
            kind: Kind::Died,
        });
    }

    /// Whether it was killed.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Waits up to `bound` for it to exit (and its output to be read), then
    /// kills it. Returns whether it exited by itself.
    pub async fn finish(mut self, bound: Duration) -> bool {
        self.resume();
        let exited = tokio::time::timeout(bound, self.child.wait()).await.is_ok();
        if !exited {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        exited
    }
}
