//! The chaos harness's shared resource (see
//! `fencelock_testbed::chaos::resource`):
//!
//! ```text
//! fencelock-chaos-resource fenced|unfenced [IP]   # prints "listening <addr>", serves until killed
//! ```
//!
//! It listens on 127.0.0.1 (or `IP`) and a port of its own.

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let fenced = match std::env::args().nth(1).as_deref() {
        Some("fenced") => true,
        Some("unfenced") => false,
        other => {
            return Err(format!(
                "usage: fencelock-chaos-resource fenced|unfenced (got {other:?})"
            ))
        }
    };
    let ip: std::net::IpAddr = match std::env::args().nth(2) {
        Some(a) => a.parse().map_err(|e| format!("bad IP {a:?}: {e}"))?,
        None => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let listener = tokio::net::TcpListener::bind((ip, 0))
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut out = std::io::stdout();
    writeln!(out, "listening {addr}").map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    fencelock_testbed::chaos::resource::serve(listener, fenced).await;
    Ok(())
}
