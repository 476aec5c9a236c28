//! `fencelock`: run a program under a distributed lock, inspect locks.
//!
//! ```text
//! fencelock run nightly-backup -- ./backup.sh      # file:// lock on this host, nothing to install
//! fencelock --url redis://127.0.0.1:6379 run --wait 0 paymentConfirm:PK-1 -- ./confirm PK-1
//! fencelock status nightly-backup
//! fencelock --json list
//! fencelock unlock --force nightly-backup           # break a wedged holder's lock
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod duration;
mod exit;
mod inspect;
mod report;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Run a program under a distributed lock with a fencing token, or inspect
/// locks. One command for a file on this host, Redis, ZooKeeper and etcd.
#[derive(Debug, Parser)]
#[command(name = "fencelock", version, propagate_version = true, after_help = exit::TABLE)]
struct Cli {
    /// The lock service: file:///dir (default: file:// in a per-user
    /// directory on this host), redis://host:port,
    /// redis+cluster://h:p,h:p, zk://h:p, etcd://h:p, ...
    #[arg(long, env = "FENCELOCK_URL", default_value = "file://", global = true)]
    url: String,
    /// Machine-readable output: JSON on stdout (for `run`, on stderr, since
    /// stdout belongs to the command).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Take the lock, run COMMAND with FENCELOCK_KEY and FENCELOCK_TOKEN in
    /// its environment, release when it exits, and exit with its status.
    #[command(after_help = exit::TABLE)]
    Run(RunArgs),
    /// Is KEY held, by which owner, with which token, how long is left.
    #[command(after_help = exit::TABLE)]
    Status {
        /// The lock key.
        key: String,
    },
    /// Every lock held or waited for whose key starts with PREFIX, where
    /// the backend can list.
    #[command(after_help = exit::TABLE)]
    List {
        /// Also keys with only history (a fence counter, a lock file or
        /// directory left by earlier grants).
        #[arg(long)]
        all: bool,
        /// Only keys starting with this.
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Break a wedged lock: delete the grant on KEY whoever holds it, and
    /// raise the key's fencing token so the old holder's later writes are
    /// refused by any fenced resource. A holder that is still alive learns
    /// it lost the lock (its `run` exits 80).
    #[command(after_help = exit::TABLE)]
    Unlock {
        /// Required: the holder may still be working.
        #[arg(long)]
        force: bool,
        /// The lock key.
        key: String,
    },
}

/// Options of `fencelock run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The lock's time to live; renewed automatically while the command runs.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    ttl: Duration,
    /// How long to wait for a busy lock; 0 fails at once (like flock -n).
    /// Default: wait as long as it takes.
    #[arg(long, value_parser = duration::parse)]
    wait: Option<Duration>,
    /// Exit status when the lock is busy and --wait is 0.
    #[arg(long, default_value_t = exit::CONFLICT)]
    conflict_exit_code: u8,
    /// Exit status when --wait runs out.
    #[arg(long, default_value_t = exit::TIMEOUT)]
    timeout_exit_code: u8,
    /// After the lock is lost: how long the command has between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    grace: Duration,
    /// The lock key.
    key: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

/// Parses the command line: usage errors exit 64 (not clap's 2), `--help`
/// and `--version` exit 0.
fn parse() -> Result<Cli, u8> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            exit::USAGE
        } else {
            0
        }
    })
}

/// A process-local store cannot keep processes apart: every `fencelock`
/// would get a store of its own.
fn coordinates(url: &str) -> Result<(), String> {
    match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("memory") => Err(format!(
            "{url:?} is a store inside one process and cannot keep processes apart; use file:// for locks on one host, or a server (redis://, zk://, etcd://)"
        )),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse() {
        Ok(c) => c,
        Err(code) => return ExitCode::from(code),
    };
    if let Err(message) = coordinates(&cli.url) {
        let to_stderr = matches!(cli.command, Command::Run(_));
        return ExitCode::from(report::usage(&message, cli.json, to_stderr));
    }
    let code = match cli.command {
        Command::Run(args) => run::run(&cli.url, cli.json, args).await,
        Command::Status { key } => inspect::status(&cli.url, cli.json, &key).await,
        Command::List { all, prefix } => inspect::list(&cli.url, cli.json, all, &prefix).await,
        Command::Unlock { force, key } => inspect::unlock(&cli.url, cli.json, force, &key).await,
    };
    ExitCode::from(code)
}
