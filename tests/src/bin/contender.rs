//! The holder program of the cross-process cases and the interop tests,
//! on every backend `fencelock::connect` opens (arguments: see
//! `fencelock_conformance::contender`).

#[tokio::main]
async fn main() -> Result<(), String> {
    fencelock_conformance::contender::main(|url| async move { fencelock::connect(&url).await })
        .await
}
