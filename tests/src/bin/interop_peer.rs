//! The etcd peers of the interop tests (`fencelock_testbed::interop`):
//! `etcdctl lock`, and etcd's own Lock service through the etcd-client
//! crate. Same arguments and lines as the Curator peer
//! (`tests/interop/java/Peer.java`).
//!
//! ```text
//! fencelock-interop-peer <peer> <recipe> <endpoints> <name> <session_ms> hold <wait_ms> <hold_ms>
//! fencelock-interop-peer <peer> <recipe> <endpoints> <name> <session_ms> loop <rounds> <marker> <inside_ms>
//! fencelock-interop-peer section <hold_ms> <marker|->   # what `etcdctl lock` runs under the lock
//! ```
//!
//! `<peer>` is `etcdctl` or `etcd-lock-service`; `<recipe>` is `mutex`.
//! `wait_ms` -1 waits as long as it takes. Lines: `pid <pid>` (the process
//! owning the lease), `connected <us>`, `acquired <us> <create revision>`,
//! `busy <us>`, `releasing <us>`, `released <us>`, `overlap <us>`,
//! `done <grants>` (microseconds since the Unix epoch).

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use etcd_client::{Client, LockOptions};
use fencelock_testbed::interop::{marker, unix_us};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::{timeout, Instant};

type Res<T = ()> = Result<T, String>;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn arg(args: &[String], i: usize) -> Res<&str> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}; see the module docs"))
}

fn num<T: std::str::FromStr>(args: &[String], i: usize) -> Res<T>
where
    T::Err: std::fmt::Display,
{
    let s = arg(args, i)?;
    s.parse().map_err(|e| format!("argument {i} {s:?}: {e}"))
}

/// The wait bound: `None` for a negative number of milliseconds.
fn bound(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// The critical section: enters the marker (if any), says `acquired`,
/// stays `dwell`, leaves, says `releasing`.
fn inside(token: i64, dwell: Duration, marker: Option<&Path>) -> Res {
    let entered = match marker {
        Some(m) => {
            let entered = marker::enter(m).map_err(|e| format!("marker {}: {e}", m.display()))?;
            if !entered {
                say(&format!("overlap {}", unix_us()));
            }
            entered
        }
        None => false,
    };
    say(&format!("acquired {} {token}", unix_us()));
    std::thread::sleep(dwell);
    if let (true, Some(m)) = (entered, marker) {
        marker::leave(m).map_err(|e| format!("marker {}: {e}", m.display()))?;
    }
    say(&format!("releasing {}", unix_us()));
    Ok(())
}

fn marker_arg(s: &str) -> Option<&Path> {
    (s != "-").then(|| Path::new(s))
}

/// Lease TTL in whole seconds (at least 1) for a session of `ms`.
fn ttl_secs(ms: u64) -> i64 {
    i64::try_from(ms.div_ceil(1000).max(1)).unwrap_or(i64::MAX)
}

#[tokio::main]
async fn main() -> Res {
    let args: Vec<String> = std::env::args().collect();
    let peer = arg(&args, 1)?;
    if peer == "section" {
        return section(&args);
    }
    let recipe = arg(&args, 2)?;
    if recipe != "mutex" {
        return Err(format!("unknown recipe {recipe:?} (known: mutex)"));
    }
    let endpoints = arg(&args, 3)?;
    let name = arg(&args, 4)?;
    let session_ms: u64 = num(&args, 5)?;
    let mode = arg(&args, 6)?;
    match (peer, mode) {
        ("etcdctl", "hold") => {
            etcdctl_hold(
                endpoints,
                name,
                session_ms,
                bound(num(&args, 7)?),
                num(&args, 8)?,
            )
            .await
        }
        ("etcdctl", "loop") => {
            say(&format!("connected {}", unix_us()));
            let rounds: u32 = num(&args, 7)?;
            for _ in 0..rounds {
                let mut child =
                    etcdctl(endpoints, name, session_ms, num(&args, 9)?, arg(&args, 8)?)?;
                forward(&mut child, None).await?;
                wait_ok(&mut child).await?;
            }
            say(&format!("done {rounds}"));
            Ok(())
        }
        ("etcd-lock-service", mode) => {
            let service = LockService::connect(endpoints, session_ms).await?;
            say(&format!("connected {}", unix_us()));
            match mode {
                "hold" => {
                    let wait = bound(num(&args, 7)?);
                    let hold = Duration::from_millis(num(&args, 8)?);
                    match service.acquire(name, wait).await? {
                        None => {
                            say(&format!("busy {}", unix_us()));
                            service.close().await
                        }
                        Some((key, token)) => {
                            inside(token, hold, None)?;
                            service.release(key).await?;
                            say(&format!("released {}", unix_us()));
                            service.close().await
                        }
                    }
                }
                "loop" => {
                    let rounds: u32 = num(&args, 7)?;
                    let m = Path::new(arg(&args, 8)?);
                    let dwell = Duration::from_millis(num(&args, 9)?);
                    for _ in 0..rounds {
                        let (key, token) = service
                            .acquire(name, None)
                            .await?
                            .ok_or("an unbounded acquire came back without the lock")?;
                        inside(token, dwell, Some(m))?;
                        service.release(key).await?;
                    }
                    say(&format!("done {rounds}"));
                    service.close().await
                }
                other => Err(format!("unknown mode {other:?}")),
            }
        }
        (peer, mode) => Err(format!("unknown peer {peer:?} or mode {mode:?}")),
    }
}

/// `section <hold_ms> <marker|->`: run by `etcdctl lock` while it holds the
/// lock, with the holder's create revision in `ETCD_LOCK_REV`.
fn section(args: &[String]) -> Res {
    // Dies with etcdctl, as a command under a crashed lock holder should.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl: {e}"))?;
    let token: i64 = std::env::var("ETCD_LOCK_REV")
        .map_err(|_| "ETCD_LOCK_REV not set: run under etcdctl lock".to_string())?
        .parse()
        .map_err(|e| format!("ETCD_LOCK_REV: {e}"))?;
    let hold = Duration::from_millis(num(args, 2)?);
    inside(token, hold, marker_arg(arg(args, 3)?))
}

/// `etcdctl lock` running our `section` under the lock.
fn etcdctl(
    endpoints: &str,
    name: &str,
    session_ms: u64,
    hold_ms: u64,
    marker: &str,
) -> Res<tokio::process::Child> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = Command::new("etcdctl")
        .arg(format!("--endpoints={endpoints}"))
        .args(["lock", &format!("--ttl={}", ttl_secs(session_ms)), name])
        .arg(me)
        .args(["section", &hold_ms.to_string(), marker])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("etcdctl: {e}"))?;
    if let Some(pid) = child.id() {
        say(&format!("pid {pid}"));
    }
    Ok(child)
}

/// Passes the section's lines on; with `first_by`, fails with `Ok(false)`
/// when no grant came by then.
async fn forward(child: &mut tokio::process::Child, first_by: Option<Instant>) -> Res<bool> {
    let out = child.stdout.take().ok_or("etcdctl: no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let mut granted = false;
    loop {
        let next = match (granted, first_by) {
            (false, Some(t)) => match tokio::time::timeout_at(t, lines.next_line()).await {
                Ok(n) => n,
                Err(_) => return Ok(false),
            },
            _ => lines.next_line().await,
        };
        let Some(line) = next.map_err(|e| e.to_string())? else {
            return Ok(granted);
        };
        granted |= line.starts_with("acquired ");
        say(&line);
    }
}

async fn wait_ok(child: &mut tokio::process::Child) -> Res {
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("etcdctl lock: {status}"))
    }
}

async fn etcdctl_hold(
    endpoints: &str,
    name: &str,
    session_ms: u64,
    wait: Option<Duration>,
    hold_ms: u64,
) -> Res {
    say(&format!("connected {}", unix_us()));
    let mut child = etcdctl(endpoints, name, session_ms, hold_ms, "-")?;
    let by = wait.map(|w| Instant::now() + w);
    if forward(&mut child, by).await? {
        wait_ok(&mut child).await?;
        say(&format!("released {}", unix_us()));
        return Ok(());
    }
    // Not granted in time: SIGTERM makes etcdctl give its session up (its
    // queued key goes with the lease).
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = timeout(Duration::from_secs(5), child.wait()).await;
    say(&format!("busy {}", unix_us()));
    Ok(())
}

/// etcd's Lock service with a lease of our own, kept alive in the background.
struct LockService {
    client: Client,
    lease: i64,
    keeper: tokio::task::JoinHandle<()>,
}

impl LockService {
    async fn connect(endpoints: &str, session_ms: u64) -> Res<Self> {
        let eps: Vec<&str> = endpoints.split(',').collect();
        let mut client = Client::connect(eps, None)
            .await
            .map_err(|e| format!("etcd connect {endpoints}: {e}"))?;
        let ttl = ttl_secs(session_ms);
        let lease = client
            .lease_grant(ttl, None)
            .await
            .map_err(|e| format!("lease grant: {e}"))?
            .id();
        say(&format!("pid {}", std::process::id()));
        let mut c = client.clone();
        let every = Duration::from_millis(u64::try_from(ttl).unwrap_or(1) * 1000 / 3);
        let keeper = tokio::spawn(async move {
            let Ok((mut keeper, mut stream)) = c.lease_keep_alive(lease).await else {
                return;
            };
            loop {
                if keeper.keep_alive().await.is_err() {
                    return;
                }
                if !matches!(stream.message().await, Ok(Some(_))) {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        });
        Ok(LockService {
            client,
            lease,
            keeper,
        })
    }

    /// The holder key and its create revision, or `None` when not granted
    /// within `wait`.
    async fn acquire(&self, name: &str, wait: Option<Duration>) -> Res<Option<(Vec<u8>, i64)>> {
        let mut c = self.client.clone();
        let call = c.lock(name, Some(LockOptions::new().with_lease(self.lease)));
        let granted = match wait {
            Some(w) => match timeout(w, call).await {
                Ok(r) => r,
                Err(_) => return Ok(None),
            },
            None => call.await,
        }
        .map_err(|e| format!("lock {name}: {e}"))?;
        let key = granted.key().to_vec();
        let got = c
            .get(key.clone(), None)
            .await
            .map_err(|e| format!("get: {e}"))?;
        let token = got
            .kvs()
            .first()
            .map(etcd_client::KeyValue::create_revision)
            .ok_or("the granted key is gone")?;
        Ok(Some((key, token)))
    }

    async fn release(&self, key: Vec<u8>) -> Res {
        self.client
            .clone()
            .unlock(key)
            .await
            .map(|_| ())
            .map_err(|e| format!("unlock: {e}"))
    }

    /// Revokes the lease: a key still queued goes with it.
    async fn close(self) -> Res {
        self.keeper.abort();
        self.client
            .clone()
            .lease_revoke(self.lease)
            .await
            .map(|_| ())
            .map_err(|e| format!("lease revoke: {e}"))
    }
}
