//! [`main`]: a test binary (`harness = false`) that runs the suite.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use libtest_mimic::{Arguments, Failed, Trial};

use crate::{registered, registry::ALL, Harness, Target};

type Start =
    Arc<dyn Fn() -> LocalBoxFuture<'static, Result<Box<dyn Harness>, String>> + Send + Sync>;

/// One backend for [`main`]: the module name in test names
/// (`conformance::<module>::<case>`) and how to start a fresh store with
/// its harness (once per case, so cases never disturb each other).
pub struct Backend {
    module: &'static str,
    start: Start,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend named `module` whose store `start` starts. A store that
    /// cannot start fails the run, never skips it.
    pub fn new<F, Fut>(module: &'static str, start: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Box<dyn Harness>, String>> + 'static,
    {
        Backend {
            module,
            start: Arc::new(move || Box::pin(start())),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// Runs the suite on `backends` as a test binary, with the usual test
/// arguments (a name filter, `--test-threads`, `--list`, ...), and exits.
///
/// For each backend whose tests the filter selects, a store is started
/// once to read the backend's [`Capabilities`](fencelock_core::Capabilities);
/// every case that applies is registered as `conformance::<module>::<case>`,
/// and every case that does not is listed as ignored, with the reason on
/// standard error.
///
/// ```no_run
/// use fencelock_conformance::{runner::Backend, Harness};
/// # struct MyHarness;
/// # #[async_trait::async_trait]
/// # impl Harness for MyHarness {
/// #     fn backend(&self) -> &str { "mine" }
/// #     fn url(&self) -> String { "mine://".into() }
/// #     async fn connect(&self, _: &str) -> fencelock_core::Result<std::sync::Arc<dyn fencelock_core::DistributedLock>> {
/// #         Ok(std::sync::Arc::new(fencelock_core::MemoryLock::new()))
/// #     }
/// # }
/// // tests/conformance.rs of a backend crate, with `harness = false`:
/// fn main() {
///     fencelock_conformance::runner::main(vec![Backend::new("mine", || async {
///         Ok(Box::new(MyHarness) as Box<dyn Harness>)
///     })]);
/// }
/// ```
pub fn main(backends: Vec<Backend>) -> ! {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for backend in backends {
        let prefix = format!("conformance::{}::", backend.module);
        let wanted = match &args.filter {
            None => true,
            Some(f) => prefix.contains(f.as_str()) || f.starts_with(&prefix),
        };
        if !wanted {
            continue;
        }
        if args.list {
            trials.extend(
                ALL.iter()
                    .map(|c| Trial::test(format!("{prefix}{}", c.name), || Ok(()))),
            );
            continue;
        }
        let start = Arc::clone(&backend.start);
        let probed = runtime().block_on(async move {
            let harness = start().await?;
            let lock = harness
                .connect(&harness.url())
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", harness.url()))?;
            let caps = lock.capabilities();
            let (run, left_out) = registered(&caps, &*harness);
            Ok::<_, String>((harness.backend().to_string(), run, left_out))
        });
        let (name, run, left_out) = match probed {
            Ok(p) => p,
            Err(e) => {
                let why = format!(
                    "conformance {}: the store could not start: {e}",
                    backend.module
                );
                trials.push(Trial::test(format!("{prefix}store"), move || {
                    Err(why.into())
                }));
                continue;
            }
        };
        for (case, why) in left_out {
            eprintln!(
                "conformance {name} {}: not registered ({} case): {why}",
                case.name, case.primitive
            );
            trials.push(
                Trial::test(format!("{prefix}{}", case.name), || Ok(())).with_ignored_flag(true),
            );
        }
        for (case, primitive) in run {
            let start = Arc::clone(&backend.start);
            // The lock's cases keep their names; another primitive's cases
            // read `conformance::<module>::<primitive>::<case>`.
            let name = match primitive {
                "lock" => format!("{prefix}{}", case.name),
                p => format!("{prefix}{p}::{}", case.name),
            };
            trials.push(Trial::test(name, move || {
                runtime().block_on(async move {
                    let harness = start()
                        .await
                        .map_err(|e| Failed::from(format!("the store could not start: {e}")))?;
                    let target = Target::new(harness).for_primitive(primitive);
                    case.run(&target).await;
                    Ok(())
                })
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit()
}
