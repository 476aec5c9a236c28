//! [`Cleanup`]: what an acquire gives back when it is dropped half-way.

use futures_util::future::BoxFuture;

/// State an acquire in flight may leave in the store (a key it may have
/// set, a queue entry, a node), and how to give it back. While armed, a
/// drop (the caller cancelled, or an error returned early) spawns the
/// cleanup on the current Tokio runtime; without a runtime the store's TTL
/// or session frees it. [`disarm`](Cleanup::disarm) once the state became a
/// grant or was given back in line.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use fencelock_core::raw::Cleanup;
///
/// let (tx, rx) = tokio::sync::oneshot::channel::<String>();
/// let pending = Cleanup::armed(("lock:k".to_string(), tx), |(key, tx)| {
///     Box::pin(async move {
///         let _ = tx.send(key); // delete the key by owner here
///     })
/// });
/// drop(pending); // the acquire was cancelled
/// assert_eq!(rx.await.unwrap(), "lock:k");
/// # }
/// ```
pub struct Cleanup<S: Send + 'static> {
    state: Option<S>,
    run: fn(S) -> BoxFuture<'static, ()>,
    idle: fn(&S) -> bool,
}

impl<S: Send + 'static> Cleanup<S> {
    /// Armed with `state`; `run` gives it back.
    pub fn armed(state: S, run: fn(S) -> BoxFuture<'static, ()>) -> Self {
        Cleanup {
            state: Some(state),
            run,
            idle: |_| false,
        }
    }

    /// Skips the cleanup (spawns nothing) when `idle` says the state
    /// holds nothing to give back at drop time (an acquire between
    /// attempts).
    #[must_use]
    pub fn unless(mut self, idle: fn(&S) -> bool) -> Self {
        self.idle = idle;
        self
    }

    /// The state.
    ///
    /// # Panics
    ///
    /// Never: the state is only taken by `disarm` and `drop`, which consume.
    pub fn state(&self) -> &S {
        self.state
            .as_ref()
            .expect("cleanup state present until consumed")
    }

    /// The state, to update as the acquire learns more (an owner, a path).
    ///
    /// # Panics
    ///
    /// Never (see [`state`](Self::state)).
    pub fn state_mut(&mut self) -> &mut S {
        self.state
            .as_mut()
            .expect("cleanup state present until consumed")
    }

    /// Nothing to give back any more: returns the state without cleanup.
    pub fn disarm(mut self) -> S {
        self.state
            .take()
            .expect("cleanup state present until consumed")
    }

    /// Gives it back now, in line, and disarms.
    pub async fn run_now(mut self) {
        if let Some(s) = self.state.take() {
            (self.run)(s).await;
        }
    }
}

impl<S: Send + 'static> Drop for Cleanup<S> {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        if (self.idle)(&state) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn((self.run)(state));
        }
    }
}

impl<S: Send + 'static> std::fmt::Debug for Cleanup<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleanup")
            .field("armed", &self.state.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting(n: &Arc<AtomicUsize>) -> Cleanup<Arc<AtomicUsize>> {
        Cleanup::armed(Arc::clone(n), |n| {
            Box::pin(async move {
                n.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_once_on_drop_never_after_disarm() {
        let n = Arc::new(AtomicUsize::new(0));
        drop(counting(&n));
        tokio::task::yield_now().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let _ = counting(&n).disarm();
        tokio::task::yield_now().await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        counting(&n).run_now().await;
        tokio::task::yield_now().await;
        assert_eq!(n.load(Ordering::SeqCst), 2);
        drop(counting(&n).unless(|_| true));
        tokio::task::yield_now().await;
        assert_eq!(
            n.load(Ordering::SeqCst),
            2,
            "an idle cleanup spawns nothing"
        );
    }

    #[test]
    fn without_a_runtime_the_store_frees_it() {
        let n = Arc::new(AtomicUsize::new(0));
        drop(counting(&n));
        assert_eq!(n.load(Ordering::SeqCst), 0);
    }
}
