//! The chaos command (`scripts/chaos` wraps it):
//!
//! ```text
//! fencelock-chaos [SCENARIO...] [--backend NAME]... [--duration SECONDS] [--short] [--json PATH]
//! ```
//!
//! Runs the chosen scenarios (all without arguments) on their backends,
//! prints one line per scenario and backend, and writes every figure as
//! JSON (default `target/fencelock-chaos/results.json`). Exits 1 when a
//! scenario where safety is promised shows a violation, 2 on a harness
//! error.

use std::time::Duration;

use fencelock_testbed::chaos::{plan, run, Bins, Settings};

fn usage() -> String {
    "usage: fencelock-chaos [SCENARIO...] [--backend NAME]... [--duration SECONDS] [--short] [--json PATH]".into()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut scenarios, mut backends) = (Vec::new(), Vec::new());
    let mut duration = Duration::from_secs(20);
    let mut short = false;
    let mut json = std::path::PathBuf::from("target/fencelock-chaos/results.json");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" | "-b" => {
                let v = args.next().ok_or_else(usage)?;
                backends.extend(v.split(',').map(str::to_string));
            }
            "--duration" | "-d" => {
                let v = args.next().ok_or_else(usage)?;
                let secs: f64 = v
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|e| format!("--duration {v}: {e}"))?;
                duration = Duration::from_secs_f64(secs);
            }
            "--short" => short = true,
            "--json" => json = args.next().ok_or_else(usage)?.into(),
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            s if s.starts_with('-') => return Err(usage()),
            s => scenarios.push(s.to_string()),
        }
    }
    let settings = if short {
        Settings::short()
    } else {
        Settings::full(duration)
    };
    let bins = Bins::beside_current_exe()?;
    let jobs = plan(&scenarios, &backends);
    if jobs.is_empty() {
        return Err(format!("nothing to run for {scenarios:?} on {backends:?}"));
    }
    let mut reports = Vec::new();
    let (mut violations, mut errors) = (0u64, 0usize);
    for job in &jobs {
        let r = run(job, &settings, &bins).await;
        println!("{}", r.line());
        for n in r.notes.iter().chain(&r.examples) {
            println!("    {n}");
        }
        violations += r.violations();
        errors += r.errors.len();
        reports.push(r);
    }
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let doc = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "settings": {
            "duration_s": settings.duration.as_secs_f64(),
            "clients": settings.clients,
            "tasks": settings.tasks,
            "short": settings.short,
        },
        "results": reports,
    });
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!("wrote {}", json.display());
    if violations > 0 {
        eprintln!("fencelock-chaos: {violations} safety violation(s) where safety is promised");
        std::process::exit(1);
    }
    if errors > 0 {
        eprintln!("fencelock-chaos: {errors} harness or liveness error(s) (see ERRORS above)");
        std::process::exit(2);
    }
    Ok(())
}
