//! What the watch hub is told, and how a subscription ends.

use tokio::sync::oneshot;

/// How a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// etcd reported the key's delete (at or after the start revision).
    Deleted,
    /// The watch could not be kept (compacted start revision, hub gone):
    /// read the key to decide.
    Unsure,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// At this revision: nothing is missed, but etcd may deliver late.
    At(i64),
    /// At the server's current revision, for a caller whose read at
    /// revision `read` saw the key with create revision `created`:
    /// delivered at once; a gap after the read is read over.
    AfterRead { read: i64, created: i64 },
}

/// A request to the hub.
pub(crate) enum Cmd {
    Add {
        id: u64,
        key: String,
        from: Start,
        done: oneshot::Sender<Seen>,
    },
    Remove(u64),
}
