//! A child process for the cross-process cases.
//!
//! ```text
//! fencelock-contender contend <url> <key> <rounds> <ttl_ms> [marker]  # prints "enter <ns> <token>" / "exit <ns>"
//! fencelock-contender hold <url> <key> <ttl_ms>               # prints "held <token>", then waits to be killed
//! ```
//!
//! With a marker file, `contend` also creates it with `O_EXCL` inside each
//! section and deletes it on leaving, printing `overlap <ns>` when it was
//! there already (someone else inside: the interop cases share it with
//! other clients' processes).

use std::io::Write;
use std::time::Duration;

use fencelock::LockOptions;
use fencelock_conformance::interop::marker;
use fencelock_conformance::monotonic_ns;

fn arg(args: &[String], i: usize) -> Result<&str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}; see the module docs"))
}

fn ms(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("{s:?}: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let mode = arg(&args, 1)?;
    let lock = fencelock::connect(arg(&args, 2)?)
        .await
        .map_err(|e| e.to_string())?;
    let key = arg(&args, 3)?;
    let mut out = std::io::stdout();
    match mode {
        "contend" => {
            let rounds: u32 = arg(&args, 4)?.parse().map_err(|e| format!("rounds: {e}"))?;
            let opts = LockOptions::new()
                .with_ttl(ms(arg(&args, 5)?)?)
                .with_wait(Duration::from_secs(60));
            let marker_file = args.get(6).map(std::path::Path::new);
            for _ in 0..rounds {
                let g = lock.acquire(key, &opts).await.map_err(|e| e.to_string())?;
                let entered = match marker_file {
                    Some(m) => marker::enter(m).map_err(|e| format!("marker: {e}"))?,
                    None => false,
                };
                if marker_file.is_some() && !entered {
                    writeln!(out, "overlap {}", monotonic_ns()).map_err(|e| e.to_string())?;
                }
                writeln!(out, "enter {} {}", monotonic_ns(), g.token())
                    .map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_millis(2)).await;
                if let (true, Some(m)) = (entered, marker_file) {
                    marker::leave(m).map_err(|e| format!("marker: {e}"))?;
                }
                writeln!(out, "exit {}", monotonic_ns()).map_err(|e| e.to_string())?;
                out.flush().map_err(|e| e.to_string())?;
                g.release().await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "hold" => {
            let opts = LockOptions::new()
                .with_ttl(ms(arg(&args, 4)?)?)
                .with_wait(Duration::from_secs(60));
            let g = lock.acquire(key, &opts).await.map_err(|e| e.to_string())?;
            writeln!(out, "held {}", g.token()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            std::future::pending::<()>().await;
            Ok(())
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}
