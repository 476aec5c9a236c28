//! The two transactions of the queue: joining it (put-if-absent plus the
//! read of our place) and re-reading our place after a wake-up.

use etcd_client::{
    Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};
use fencelock_core::{Error, Result};

use crate::endpoints::Endpoints;

/// A contender seen in the queue: its key and create revision.
pub(crate) type Contender = (String, i64);

/// Where the enqueue transaction put us.
pub(crate) enum Place {
    /// First in line: granted.
    Holder,
    /// Behind someone: the predecessor, when the transaction could tell.
    Behind(Option<Contender>),
}

/// What the enqueue transaction found.
pub(crate) struct Queued {
    /// Our key's create revision (the fencing token).
    pub(crate) mine: i64,
    /// The transaction's revision (what it read is as of then).
    pub(crate) rev: i64,
    pub(crate) place: Place,
}

fn revision(r: &TxnResponse) -> Result<i64> {
    r.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::backend("etcd txn answered without a header"))
}

fn contender(kv: &etcd_client::KeyValue) -> Contender {
    (
        String::from_utf8_lossy(kv.key()).into_owned(),
        kv.create_revision(),
    )
}

/// Puts our contender key (value: the owner id, attached to `lease`) if
/// absent, and reads our place in the queue, in one transaction (Go's
/// `concurrency.Mutex` does the same put-if-absent and holder read in one
/// txn).
///
/// After a successful put our key is the newest contender, so the two
/// newest contenders (sorted by create revision, descending) are ours and
/// our predecessor: no predecessor means we hold the lock, and a waiter
/// knows whom to watch without another read. When the key exists already,
/// it is our own put answered before (the call is retried on another
/// endpoint after a timeout): the key is named after our fresh lease.
pub(crate) async fn enqueue(
    endpoints: &Endpoints,
    contenders: &str,
    etcd_key: &str,
    owner: &str,
    lease: i64,
) -> Result<Queued> {
    let r = endpoints
        .call("txn", |mut c| {
            let newest = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_limit(2)
                .with_keys_only();
            let first = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Create, SortOrder::Ascend)
                .with_limit(1)
                .with_keys_only();
            let txn = Txn::new()
                .when([Compare::create_revision(etcd_key, CompareOp::Equal, 0)])
                .and_then([
                    TxnOp::put(etcd_key, owner, Some(PutOptions::new().with_lease(lease))),
                    TxnOp::get(contenders, Some(newest)),
                ])
                .or_else([
                    TxnOp::get(etcd_key, None),
                    TxnOp::get(contenders, Some(first)),
                ]);
            async move { c.txn(txn).await }
        })
        .await?;
    let rev = revision(&r)?;
    let ops = r.op_responses();
    let Some(TxnOpResponse::Get(queue)) = ops.get(1) else {
        return Err(Error::backend("etcd txn answered without the queue read"));
    };
    if r.succeeded() {
        // The put created our key at `rev`, the txn's revision.
        let mine = rev;
        let ours_first = queue
            .kvs()
            .first()
            .is_some_and(|kv| kv.key() == etcd_key.as_bytes() && kv.create_revision() == mine);
        let place = if ours_first {
            match queue.kvs().get(1) {
                None => Place::Holder,
                Some(kv) => Place::Behind(Some(contender(kv))),
            }
        } else {
            Place::Behind(None) // not expected; the waiter reads
        };
        return Ok(Queued { mine, rev, place });
    }
    let kv = match ops.first() {
        Some(TxnOpResponse::Get(g)) => g.kvs().first().cloned(),
        _ => None,
    };
    let Some(kv) = kv.filter(|kv| kv.lease() == lease && kv.value() == owner.as_bytes()) else {
        return Err(Error::backend(format!(
            "the contender key {etcd_key} exists but is not this acquisition's"
        )));
    };
    let mine = kv.create_revision();
    let holder = queue.kvs().first().map(|h| h.create_revision());
    let place = if holder.is_none_or(|h| h == mine) {
        Place::Holder
    } else {
        Place::Behind(None)
    };
    Ok(Queued { mine, rev, place })
}

/// After a wake-up, in one read-only transaction: the contender created
/// just before ours (Go's `waitDeletes` read), and our own key (the
/// etcd#11456 check: a waiter whose key or lease is gone must not be
/// granted). `None` when our key is not ours any more; else the
/// predecessor (if any) and the read's revision.
pub(crate) async fn recheck(
    endpoints: &Endpoints,
    contenders: &str,
    etcd_key: &str,
    mine: i64,
    lease: i64,
) -> Result<Option<(Option<Contender>, i64)>> {
    let r = endpoints
        .call("txn", |mut c| {
            let pred = GetOptions::new()
                .with_prefix()
                .with_sort(SortTarget::Create, SortOrder::Descend)
                .with_max_create_revision(mine - 1)
                .with_limit(1)
                .with_keys_only();
            let txn = Txn::new().and_then([
                TxnOp::get(contenders, Some(pred)),
                TxnOp::get(etcd_key, None),
            ]);
            async move { c.txn(txn).await }
        })
        .await?;
    let rev = revision(&r)?;
    let reads = r.op_responses();
    let (Some(TxnOpResponse::Get(pred)), Some(TxnOpResponse::Get(own))) =
        (reads.first(), reads.get(1))
    else {
        return Err(Error::backend("etcd txn answered without its reads"));
    };
    let ours = own
        .kvs()
        .first()
        .is_some_and(|kv| kv.create_revision() == mine && kv.lease() == lease);
    if !ours {
        return Ok(None);
    }
    Ok(Some((pred.kvs().first().map(contender), rev)))
}
