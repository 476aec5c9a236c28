//! Mutual exclusion: among tasks of several clients, and among processes.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fencelock_core::FencingToken;
use tokio::io::AsyncReadExt;

use crate::target::steady;
use crate::Target;

/// 32 tasks over 2 independent clients × 50 rounds on one key: an
/// in-section counter never exceeds 1, and every grant's token is greater
/// than the previous grant's.
pub async fn exclusion(t: &Target) {
    const TASKS: usize = 32;
    const ROUNDS: usize = 50;
    let clients = [t.client().await, t.client().await];
    let key = t.key("exclusion");
    let inside = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None::<FencingToken>));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let lock = Arc::clone(&clients[i % 2]);
        let (key, inside, last) = (key.clone(), Arc::clone(&inside), Arc::clone(&last));
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let g = lock
                    .acquire(&key, &steady())
                    .await
                    .unwrap_or_else(|e| panic!("task {i} round {round}: {e}"));
                let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
                assert_eq!(now_inside, 1, "task {i} round {round}: two holders at once");
                {
                    let mut last = last
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(prev) = *last {
                        assert!(
                            g.token() > prev,
                            "token {} not above the previous grant's {prev}",
                            g.token()
                        );
                    }
                    *last = Some(g.token());
                }
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
                g.release()
                    .await
                    .unwrap_or_else(|e| panic!("task {i} round {round}: release: {e}"));
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Child processes contend for one key; their critical sections, logged
/// with monotonic times, never overlap, and tokens rise in time order.
pub async fn cross_process(t: &Target) {
    const CHILDREN: usize = 3;
    const ROUNDS: usize = 20;
    let key = t.key("cross-process");
    let mut children = Vec::new();
    for _ in 0..CHILDREN {
        let child = tokio::process::Command::new(t.contender())
            .args(["contend", &t.url(), &key, &ROUNDS.to_string(), "10000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", t.contender().display()));
        children.push(child);
    }
    let mut sections: Vec<(u128, u128, u64)> = Vec::new();
    for mut child in children {
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let status = tokio::time::timeout(Duration::from_secs(120), async {
            let _ = stdout.read_to_string(&mut out).await;
            let _ = stderr.read_to_string(&mut err).await;
            child.wait().await
        })
        .await
        .expect("a contender ran for more than 120 s")
        .expect("wait for a contender");
        assert!(status.success(), "contender failed: {err}");
        let mut open: Option<(u128, u64)> = None;
        for line in out.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["enter", ns, token] => {
                    open = Some((ns.parse().expect("ns"), token.parse().expect("token")));
                }
                ["exit", ns] => {
                    let (enter, token) = open.take().expect("exit without enter");
                    sections.push((enter, ns.parse().expect("ns"), token));
                }
                _ => panic!("unexpected contender output {line:?}"),
            }
        }
    }
    assert_eq!(sections.len(), CHILDREN * ROUNDS, "every round logged");
    sections.sort_by_key(|s| s.0);
    for pair in sections.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            b.0 >= a.1,
            "critical sections overlap: [{}, {}] token {} and [{}, {}] token {}",
            a.0,
            a.1,
            a.2,
            b.0,
            b.1,
            b.2
        );
        assert!(b.2 > a.2, "token {} follows token {} in time", b.2, a.2);
    }
}
