//! The suite run the way a backend outside this repository runs it: a
//! harness of its own (here on the in-process memory store of
//! `fencelock-core`) and `runner::main`.

use std::sync::Arc;

use fencelock_conformance::runner::{self, Backend};
use fencelock_conformance::Harness;
use fencelock_core::{DistributedLock, MemoryLock, MemoryStore, Result};

/// One fresh memory store per case; every client a handle on it.
struct Memory {
    store: Arc<MemoryStore>,
}

#[async_trait::async_trait]
impl Harness for Memory {
    fn backend(&self) -> &str {
        "memory"
    }

    fn url(&self) -> String {
        "memory://".into()
    }

    async fn connect(&self, _url: &str) -> Result<Arc<dyn DistributedLock>> {
        Ok(Arc::new(MemoryLock::with_store(Arc::clone(&self.store))))
    }
}

fn main() {
    runner::main(vec![Backend::new("memory", || async {
        Ok(Box::new(Memory {
            store: MemoryStore::new(),
        }) as Box<dyn Harness>)
    })]);
}
