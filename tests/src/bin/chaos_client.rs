//! One chaos client process: M tasks looping acquire → fenced critical
//! section → release, printing every event (see
//! `fencelock_testbed::chaos::client`):
//!
//! ```text
//! fencelock-chaos-client url=<url> key=<key> tasks=<M> resource=<addr> ttl_ms=<ms> wait_ms=<ms> until_ns=<ns> work_ms=<min>..<max>
//! ```

use fencelock_testbed::chaos::client::{run, stdout_sink, Config};

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = Config::parse(&args)?;
    let lock =
        fencelock_testbed::chaos::run::connect_retry(&cfg.url, std::time::Duration::from_secs(30))
            .await?;
    run(lock, cfg, stdout_sink()).await;
    Ok(())
}
