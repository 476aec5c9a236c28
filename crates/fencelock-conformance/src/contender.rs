//! [`main`]: the program the cross-process cases run as holders.
//!
//! ```text
//! <contender> contend <url> <key> <rounds> <ttl_ms> [marker]  # prints "enter <ns> <token>" / "exit <ns>"
//! <contender> hold <url> <key> <ttl_ms>                       # prints "held <token>", then waits to be killed
//! ```
//!
//! With a marker file, `contend` also creates it with `O_EXCL` inside each
//! section and deletes it on leaving, printing `overlap <ns>` when it was
//! there already (someone else inside: interop tests share it with other
//! clients' processes).

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use fencelock_core::{DistributedLock, LockOptions, Result};

use crate::{marker, monotonic_ns};

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

/// The contender's `main` for a backend: `connect` opens the store a URL
/// names. Reads the process arguments (see the module docs).
///
/// # Errors
///
/// A message for bad arguments or a failed lock call (the process then
/// exits non-zero and the case fails).
pub async fn main<F, Fut>(connect: F) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Arc<dyn DistributedLock>>>,
{
    let args: Vec<String> = std::env::args().collect();
    let mode = arg(&args, 1)?;
    let lock = connect(arg(&args, 2)?.to_string())
        .await
        .map_err(|e| e.to_string())?;
    let key = arg(&args, 3)?;
    let mut out = std::io::stdout();
    let say = |out: &mut std::io::Stdout, line: String| -> Result<(), String> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
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
                    say(&mut out, format!("overlap {}", monotonic_ns()))?;
                }
                say(&mut out, format!("enter {} {}", monotonic_ns(), g.token()))?;
                tokio::time::sleep(Duration::from_millis(2)).await;
                if let (true, Some(m)) = (entered, marker_file) {
                    marker::leave(m).map_err(|e| format!("marker: {e}"))?;
                }
                say(&mut out, format!("exit {}", monotonic_ns()))?;
                g.release().await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "hold" => {
            let opts = LockOptions::new()
                .with_ttl(ms(arg(&args, 4)?)?)
                .with_wait(Duration::from_secs(60));
            let g = lock.acquire(key, &opts).await.map_err(|e| e.to_string())?;
            say(&mut out, format!("held {}", g.token()))?;
            std::future::pending::<()>().await;
            Ok(())
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}
