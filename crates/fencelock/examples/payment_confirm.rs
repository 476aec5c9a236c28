//! The origin notes' payment-confirmation API, made real.
//!
//! Several simulated API servers receive the confirmation of the same payment
//! at once. Each takes the lock `paymentConfirm:<paymentKey>` with
//! `tryLock(0, 5, SECONDS)` semantics (wait 0, lease 5 s): the one that gets
//! it calls the payment provider, passing its fencing token; the others
//! answer with the fallback at once. Unrelated background work keeps running
//! the whole time, and the lock is released on every path.
//!
//! ```text
//! cargo run --example payment_confirm                       # in-process memory backend
//! cargo run --example payment_confirm --features full -- --url redis://127.0.0.1:6379
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fencelock::{Attempt, DistributedLockExt, FenceGate, FencingToken, LockOptions};
use tokio::sync::Barrier;

const SERVERS: usize = 5;

/// The payment provider: refuses a confirmation carrying a stale fencing token.
struct PaymentProvider {
    fence: FenceGate,
    confirmed: std::sync::Mutex<Vec<String>>,
}

impl PaymentProvider {
    async fn confirm(&self, payment_key: &str, token: FencingToken) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(200)).await; // the provider's round trip
        self.fence
            .admit(payment_key, token)
            .map_err(|stale| stale.to_string())?;
        let mut confirmed = self.confirmed.lock().map_err(|e| e.to_string())?;
        if confirmed.iter().any(|k| k == payment_key) {
            return Err("already confirmed".into());
        }
        confirmed.push(payment_key.to_string());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut url = "memory://".to_string();
    let mut payment_key = "PK-20261125-0001".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next().ok_or("--url needs a value")?,
            "--payment" => payment_key = args.next().ok_or("--payment needs a value")?,
            "-h" | "--help" => {
                println!("usage: payment_confirm [--url URL] [--payment KEY]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }

    let lock = fencelock::connect(&url).await?;
    println!("backend: {} ({url})", lock.capabilities().backend);
    let provider = Arc::new(PaymentProvider {
        fence: FenceGate::new(),
        confirmed: std::sync::Mutex::new(Vec::new()),
    });

    // Unrelated background work: keeps ticking while locks are awaited.
    let ticks = Arc::new(AtomicUsize::new(0));
    let background = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let opts = LockOptions::new()
        .with_wait(Duration::ZERO)
        .with_hold_cap(Duration::from_secs(5));
    let start = Arc::new(Barrier::new(SERVERS));
    let mut servers = Vec::new();
    for server in 1..=SERVERS {
        let (lock, provider, opts, start) = (
            Arc::clone(&lock),
            Arc::clone(&provider),
            opts.clone(),
            Arc::clone(&start),
        );
        let key = format!("paymentConfirm:{payment_key}");
        let payment_key = payment_key.clone();
        servers.push(tokio::spawn(async move {
            start.wait().await;
            let attempt = lock
                .try_with_lock(&key, &opts, |lease| async move {
                    let token = lease.token();
                    (token, provider.confirm(&payment_key, token).await)
                })
                .await;
            match attempt {
                Ok(Attempt::Ran((token, Ok(())))) => {
                    println!("server {server}: confirmed {key} under fencing token {token}");
                    true
                }
                Ok(Attempt::Ran((token, Err(why)))) => {
                    println!("server {server}: provider refused (token {token}): {why}");
                    false
                }
                Ok(Attempt::Busy) => {
                    println!("server {server}: lock busy -> fallback: \"payment is being confirmed, try again shortly\"");
                    false
                }
                Err(e) => {
                    eprintln!("server {server}: lock error: {e}");
                    false
                }
            }
        }));
    }
    let mut confirmations = 0;
    for s in servers {
        if s.await? {
            confirmations += 1;
        }
    }
    background.abort();
    println!(
        "{confirmations} confirmation, {} fallbacks; background work ticked {} times meanwhile",
        SERVERS - confirmations,
        ticks.load(Ordering::Relaxed)
    );
    if confirmations != 1 {
        return Err(format!("expected exactly one confirmation, saw {confirmations}").into());
    }
    Ok(())
}
