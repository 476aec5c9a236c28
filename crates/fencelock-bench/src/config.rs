//! The command line and the run settings.

use crate::*;
use std::path::PathBuf;
use std::time::Duration;

/// Run settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The smoke mode: tiny counts, target/ only.
    pub smoke: bool,
    /// Repetitions per measurement.
    pub reps: usize,
    /// Seconds per repetition.
    pub secs: f64,
    /// Client counts of the spread scenario.
    pub spread: Vec<usize>,
    /// Client counts of the hot-key scenario.
    pub hot: Vec<usize>,
    /// Held-lock counts of the renewal scenario.
    pub held: Vec<usize>,
    /// Renewal: wait before reading counters.
    pub settle: Duration,
    /// Renewal: the counter window.
    pub window: Duration,
    /// Deployments to run.
    pub only: Option<Vec<String>>,
    /// Output directory.
    pub out: PathBuf,
    /// Whether to regenerate docs/.
    pub docs: bool,
    /// The command line, for the docs.
    pub command: String,
}

pub(crate) fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

pub(crate) fn usage() -> ! {
    eprintln!(
        "usage: fencelock-bench [--smoke] [--reps N] [--secs S] [--only name,name] [--url name=URL]... [--out DIR] [--no-docs]\n\
         deployments: {}",
        deployments().iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
    );
    std::process::exit(2)
}

pub(crate) fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("fencelock-bench");
    let mut cfg = if smoke {
        Config {
            smoke,
            reps: 1,
            secs: 0.1,
            spread: vec![1, 4],
            hot: vec![2],
            held: vec![1, 20],
            settle: Duration::from_millis(100),
            window: Duration::from_millis(300),
            only: Some(
                ["memory", "file", "redis", "zookeeper", "etcd"]
                    .map(String::from)
                    .to_vec(),
            ),
            out: target.join("smoke"),
            docs: false,
            command: String::new(),
        }
    } else {
        Config {
            smoke,
            reps: 3,
            secs: 0.8,
            spread: vec![1, 8, 64],
            hot: vec![2, 8, 32],
            held: vec![1, 100, 10_000],
            settle: Duration::from_millis(1500),
            window: Duration::from_secs(3),
            only: None,
            out: target,
            docs: true,
            command: String::new(),
        }
    };
    cfg.command = std::iter::once("scripts/bench".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--smoke" => {}
            "--reps" => cfg.reps = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => cfg.secs = val().parse().unwrap_or_else(|_| usage()),
            "--only" => cfg.only = Some(val().split(',').map(String::from).collect()),
            "--out" => cfg.out = PathBuf::from(val()),
            "--no-docs" => cfg.docs = false,
            "--url" => {
                let v = val();
                let Some((name, url)) = v.split_once('=') else {
                    usage()
                };
                let Some(d) = deployments().into_iter().find(|d| d.name == name) else {
                    usage()
                };
                // Fixture::start reads FENCELOCK_<FIXTURE>_URL for external servers.
                let var = format!(
                    "FENCELOCK_{}_URL",
                    d.fixture.to_uppercase().replace('-', "_")
                );
                std::env::set_var(var, url);
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if cfg.only.is_some() && !cfg.smoke {
        // A partial run does not regenerate the docs.
        cfg.docs = false;
    }
    cfg
}
