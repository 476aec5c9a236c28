//! The Lua scripts, loaded once per server and called by SHA (`EVALSHA`).
//!
//! `redis::Script::invoke_async` sends `EVALSHA` and, on `NOSCRIPT` (a
//! restarted or failed-over server), loads the script and retries once.
//! Pipelines do not do that; the renewal batcher reloads by itself.

use std::sync::LazyLock;

use redis::Script;

/// `SET NX PX` + `INCR` of the fence counter; re-takes our own grant on a retry.
pub(crate) static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/acquire.lua")));

/// Compare-and-delete by owner, then `PUBLISH` a wake-up.
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));

/// Compare-and-`PEXPIRE` by owner.
pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/renew.lua")));

/// Read-only status of one lock.
pub(crate) static INSPECT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/inspect.lua")));

/// Raises a fence counter to at least a floor (Redlock's token hand-off).
pub(crate) static RAISE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/raise.lua")));

/// Deletes whatever holds a lock and burns a token (`unlock --force`).
/// Not loaded at connect time: `invoke_async` loads it on first use.
pub(crate) static FORCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/force.lua")));

/// Every script, for loading at connect time.
pub(crate) fn all() -> [&'static Script; 5] {
    [&ACQUIRE, &RELEASE, &RENEW, &INSPECT, &RAISE]
}

/// A duration as whole milliseconds for a script argument (a TTL, a
/// queue entry's life), at least 1.
pub(crate) fn ttl_ms(ttl: std::time::Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
