//! Resident memory per held lock, measured in a fresh child process.

use crate::*;
use fencelock::LockOptions;
use std::sync::Arc;
use std::time::Duration;

/// Runs `fencelock-bench --rss-probe URL H TTL_MS` and reads its answer:
/// (RSS before, RSS after taking H locks, errors).
pub(crate) async fn rss_probe(
    url: &str,
    h: usize,
    opts: &LockOptions,
) -> Result<(u64, u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(exe)
            .arg("--rss-probe")
            .arg(url)
            .arg(h.to_string())
            .arg(opts.ttl().as_millis().to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| "the probe did not finish within 180 s".to_string())?
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (out.status.success(), v.as_slice()) {
        (true, [a, b, e]) => Ok((*a, *b, *e)),
        _ => Err(format!(
            "probe failed: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The child side of [`rss_probe`]: connect, warm up, read RSS, take `h`
/// locks on fresh keys (64 at a time), read RSS, print, release.
pub(crate) async fn rss_probe_child(url: &str, h: usize, ttl_ms: u64) -> Result<(), String> {
    use futures_util::stream::{self, StreamExt};
    let lock = fencelock::connect(url).await.map_err(|e| e.to_string())?;
    let opts = LockOptions::new().with_ttl(Duration::from_millis(ttl_ms));
    let prefix = format!("rss{:08x}", rand_u32());
    let warm = lock
        .acquire(&format!("{prefix}-warm"), &opts)
        .await
        .map_err(|e| e.to_string())?;
    warm.release().await.map_err(|e| e.to_string())?;
    let before = measure::rss_bytes().unwrap_or(0);
    let results: Vec<_> = stream::iter(0..h)
        .map(|i| {
            let (lock, opts, key) = (Arc::clone(&lock), opts.clone(), format!("{prefix}-{i}"));
            async move { lock.try_acquire(&key, &opts).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let after = measure::rss_bytes().unwrap_or(0);
    let mut guards = Vec::new();
    let mut errors = 0u64;
    for r in results {
        match r {
            Ok(Some(g)) => guards.push(g),
            _ => errors += 1,
        }
    }
    println!("{before} {after} {errors}");
    stream::iter(guards)
        .map(|g| async move {
            let _ = g.release().await;
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    Ok(())
}

pub(crate) fn rand_u32() -> u32 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
