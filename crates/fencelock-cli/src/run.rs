//! `fencelock run`: the command under the lock.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use fencelock::{ErrorKind, LockGuard, LockOptions};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};

use crate::report::{fail, holder_json, holder_text, one_line};
use crate::{exit, RunArgs};

/// How one `run` ended, for the JSON report.
fn report(json: bool, args: &RunArgs, outcome: &str, token: Option<u64>, code: u8) {
    if json {
        eprintln!(
            "{}",
            json!({"key": args.key, "outcome": outcome, "token": token, "exit": code})
        );
    }
}

/// How long naming the holder of a busy lock may delay the exit.
const HOLDER_LOOKUP_BOUND: Duration = Duration::from_secs(3);

/// Says that the lock is busy and who holds it (owner or "not fencelock",
/// token, time left), as far as the store tells; `outcome` is `busy` or
/// `timeout`.
async fn report_busy(url: &str, json: bool, args: &RunArgs, outcome: &str, code: u8) {
    let looked = tokio::time::timeout(HOLDER_LOOKUP_BOUND, async {
        fencelock::inspector(url).await?.status(&args.key).await
    })
    .await;
    let holder = match &looked {
        Ok(Ok(s)) => s.holders.first().cloned(),
        _ => None,
    };
    if json {
        eprintln!(
            "{}",
            json!({"key": args.key, "outcome": outcome, "token": null, "exit": code,
                "holder": holder.as_ref().map(holder_json)})
        );
        return;
    }
    let why = if outcome == "busy" {
        "is busy".to_string()
    } else {
        format!("is still busy after {:?}", args.wait.unwrap_or_default())
    };
    let who = match (&holder, &looked) {
        (Some(h), _) => format!(": held {}", holder_text(h)),
        (None, Ok(Ok(_))) => " (the holder let go just now)".to_string(),
        (None, Ok(Err(e))) => format!(" (cannot tell who holds it: {})", one_line(e)),
        (None, Err(_)) => " (cannot tell who holds it: no answer in time)".to_string(),
    };
    eprintln!("fencelock: {:?} {why}{who}", args.key);
}

/// Signals that stop a waiting `fencelock` and reach the running command.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.hup.recv() => Signal::SIGHUP,
            _ = self.quit.recv() => Signal::SIGQUIT,
        }
    }
}

fn status_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(1),
        _ => 1,
    }
}

fn send(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

/// `fencelock run`.
pub async fn run(url: &str, json: bool, args: RunArgs) -> u8 {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fencelock: cannot handle signals: {e}");
            return exit::SOFTWARE;
        }
    };
    let lock = match fencelock::connect(url).await {
        Ok(l) => l,
        Err(e) => return fail(&e, json, true),
    };
    let opts = LockOptions::new().with_ttl(args.ttl);
    let acquired = async {
        match args.wait {
            Some(w) if w.is_zero() => lock.try_acquire(&args.key, &opts).await,
            Some(w) => lock
                .acquire(&args.key, &opts.clone().with_wait(w))
                .await
                .map(Some),
            None => lock.acquire(&args.key, &opts).await.map(Some),
        }
    };
    let guard = tokio::select! {
        r = acquired => r,
        sig = signals.next() => {
            eprintln!("fencelock: interrupted by {sig} while waiting for {:?}", args.key);
            return u8::try_from(128 + sig as i32).unwrap_or(1);
        }
    };
    let guard = match guard {
        Ok(Some(g)) => g,
        Ok(None) => {
            report_busy(url, json, &args, "busy", args.conflict_exit_code).await;
            return args.conflict_exit_code;
        }
        Err(e) if e.kind() == ErrorKind::Busy && args.wait.is_some() => {
            report_busy(url, json, &args, "timeout", args.timeout_exit_code).await;
            return args.timeout_exit_code;
        }
        Err(e) => return fail(&e, json, true),
    };
    let code = supervise(&args, json, guard, &mut signals).await;
    code
}

/// How long a lost lock's best-effort release may delay the exit.
const LOST_RELEASE_BOUND: Duration = Duration::from_millis(500);

/// Runs the command while holding `guard`; stops it when the lock is lost.
async fn supervise(args: &RunArgs, json: bool, guard: LockGuard, signals: &mut Signals) -> u8 {
    let token = guard.token();
    let mut cmd = tokio::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .env("FENCELOCK_KEY", &args.key)
        .env("FENCELOCK_TOKEN", token.to_string());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                exit::NOT_FOUND
            } else {
                exit::CANNOT_EXECUTE
            };
            eprintln!("fencelock: cannot run {:?}: {e}", args.command[0]);
            let _ = guard.release().await;
            report(json, args, "cannot-run", Some(token.get()), code);
            return code;
        }
    };
    let pid = child.id();
    let lost = guard.lost();
    tokio::pin!(lost);
    let mut was_lost = false;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let status = loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            status = child.wait() => break status,
            () = &mut lost, if !was_lost => {
                was_lost = true;
                eprintln!(
                    "fencelock: the lock {:?} (token {token}) was lost; stopping the command (SIGTERM, SIGKILL after {:?})",
                    args.key, args.grace
                );
                send(pid, Signal::SIGTERM);
                kill_at = Some(tokio::time::Instant::now() + args.grace);
            }
            () = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() => {
                send(pid, Signal::SIGKILL);
                kill_at = None;
            }
            sig = signals.next() => send(pid, sig),
        }
    };
    let released = if was_lost {
        // Best effort only: the store may be the reason the lock was lost
        // (down, paused, cut off), and a script waits for our exit code.
        // (Its outcome does not change ours: the lock was lost.)
        let _ = tokio::time::timeout(LOST_RELEASE_BOUND, guard.release()).await;
        Ok(())
    } else {
        guard.release().await
    };
    let code = match status {
        Ok(s) => status_code(s),
        Err(e) => {
            eprintln!("fencelock: lost track of the command: {e}");
            exit::SOFTWARE
        }
    };
    let (outcome, code) = match released {
        _ if was_lost => ("lost", exit::LOST),
        Err(e) if e.kind() == ErrorKind::Lost => {
            eprintln!(
                "fencelock: the lock {:?} was lost before the command finished; its work may have overlapped another holder's",
                args.key
            );
            ("lost", exit::LOST)
        }
        Err(e) => {
            eprintln!(
                "fencelock: release failed (the TTL frees the lock): {}",
                one_line(&e)
            );
            ("ran", code)
        }
        Ok(()) => ("ran", code),
    };
    report(json, args, outcome, Some(token.get()), code);
    code
}
