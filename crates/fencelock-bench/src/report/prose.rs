//! The fixed prose of the generated docs: method, why targets are missed, the backends table's qualitative rows.

pub(super) const METHOD: &str = "
## What is measured

- **cycle**: one client, `acquire` + `release` on a fresh key each time, one after the other:
  cycles per second, and the p50/p99 of one cycle.
- **spread**: C tasks (1, 8, 64), **each with its own client** (its own connection, session or
  lease, as C separate processes would have), cycling on distinct fresh keys: total cycles per
  second; the latency is one cycle.
- **hot key**: C tasks (2, 8, 32), each with its own client, taking and releasing one key as
  fast as they can: grants per second, and the **hand-off latency**: from the instant a holder
  starts its release to the instant the next holder's `acquire` returns (in-process `Instant`s),
  p50 and p99.
- **renewal cost**: one client holding H fresh locks (0, 1, 100, 10,000) with automatic
  renewal; the servers' own request counters are read over a fixed window (Redis `INFO stats`:
  `total_commands_processed` and `total_reads_processed`, one read event being about one round
  trip; etcd `/metrics`: `grpc_server_msg_received_total`; ZooKeeper `mntr`:
  `zk_packets_received`) and scaled to one renewal period (Redis: TTL 3 s, renewal every 1 s;
  etcd: lease 3 s, keep-alive every 1 s; ZooKeeper: session 4 s, checked every 1.33 s). Resident
  memory is `VmRSS` before and after taking the 10,000 locks, in a fresh child process
  (`fencelock-bench --rss-probe`), since the heap left by earlier scenarios hides the growth.

fencelock runs with its defaults (TTL 30 s, automatic renewal on), through `fencelock::connect`.
Beside it, on the same servers in the same run:

- **floor**: the same client library doing only the round trips a lock cycle cannot avoid —
  Redis: `SET key owner NX PX` + a compare-and-delete script (`EVALSHA`), redis-rs; etcd: one
  put-if-absent transaction + one delete, etcd-client; ZooKeeper: one ephemeral-sequential
  create + one get-children + one delete under a parent made beforehand, zookeeper-client.
  The floor cannot wait, so it has no hot-key numbers.
- **peers**: `rslock` 0.10 (Redlock; on 1 Redis and on the same 3 Redis servers as fencelock's
  `redlock://`; waits by retrying `lock`, 3 tries 0–200 ms apart), etcd's server-side
  Lock/Unlock RPC through etcd-client (`etcd-lock-rpc`, one lease per client), and
  zookeeper-client's own lock recipe (`zookeeper-client-lock`, `Client::lock` with a
  Curator-style prefix; released by deleting its node and waiting for the answer).
";

pub(super) const WHY: &str = "
Why targets are missed, where they are (the `server requests / cycle` column of the results
counts what the servers saw; file and line references are for the maintainers):

- **Redis cycle vs floor.** Both make 2 round trips per cycle (`round trips / cycle` below);
  fencelock's scripts do more inside Redis (`INCR` of the fence counter, the owner:token value,
  a `PUBLISH` on release: 8 commands against the floor's 4) and the client does more around
  them (a guard and its watchdog task per grant, a bound on every call). The gap is client and
  script work, not round trips.
- **ZooKeeper cycle vs floor and vs zookeeper-client's recipe.** About 8 server requests per
  cycle against the floor's 3 and the recipe's 5: on a fresh key fencelock's create fails with
  `NoNode`, it creates the CONTAINER parent (and tolerates `NodeExists`), creates again, lists
  the children, sets an `exists` watch on its own node (to see revocation), and deletes; several
  of these are writes, which cost most (crates/fencelock-zookeeper/src/lock.rs, the create path
  near line 122 and 156).
- **etcd cycle vs floor and vs the Lock RPC.** 3 requests per cycle against 2 (enqueue
  transaction, a read to confirm the key is still ours, delete), yet more than 1.5× the time:
  the rest is client-side (session lease lookup, endpoint handling).
- **etcd hot key (fencelock and the Lock RPC alike).** Both wait with a watch that starts at
  an old revision (fencelock: the predecessor's create revision,
  crates/fencelock-etcd/src/grant.rs line 109; the Lock RPC: the revision of its read). etcd
  registers such a watcher as *unsynced*, and unsynced watchers are only caught up by a loop
  that runs every 100 ms. A waiter that queued while the holder held (with 2 clients: every
  other grant) hears of the release up to 100 ms late: p99 near 100 ms and only 20–70 grants/s
  with 2–8 clients. The p50 passes because the other hand-offs go to waiters whose watch had
  already caught up. Starting the watch at the read's header revision + 1 makes it a synced
  watcher, notified at once on the delete (a delete that raced the read is still delivered, by
  the same catch-up loop): a cheap fix.
- **Redis renewal at H = 10,000.** Up to H = 100 it is one round trip per period: locks
  taken within one 2 ms window renew in one pipeline. At 10,000 three things add up: a batch
  holds at most 512 renewals (`with_renew_batch_max`, default 512), so 10,000 need at least 20
  pipelines; Redis reads a pipeline 16 KiB at a time, so a big pipeline counts as several read
  events (about 70 for 10,000 `EVALSHA`s even in one pipeline: the counter overstates round
  trips there); and each guard's watchdog renews on its own clock (TTL/3 after its own grant),
  so locks taken over more than 2 ms fall into different windows. A cheap fix for the last:
  round each guard's renewal instant to a per-client grid, e.g. a multiple of the batch window
  or of TTL/6 (crates/fencelock-core/src/watchdog.rs, `renew_loop`, the
  `sleep_until(state.basis + every)`).
- **etcd memory per held lock.** Every etcd grant keeps its own `revoked` watch
  (crates/fencelock-etcd/src/lock.rs line 485, `wait_deleted` in grant.rs), and etcd-client's
  `watch` opens a new gRPC stream per call: tens of KiB of HTTP/2 stream state per lock in the
  client (and a watch stream per lock on the server). A shared watch stream per client
  (etcd-client's `Watcher::watch` adds watches to an open stream), or one prefix watch on the
  client's own contender keys, would make it a few hundred bytes.
- **Hot key vs rslock.** rslock's grants/s are high because it is unfair: the client that just
  released tries again at once and wins, while the others sleep 0–200 ms between retries (see
  the top client's share of grants, and the hand-off to *another* client, which is what
  waiters experience). fencelock's Redis backend is unfair too, but its waiters are woken by
  pub/sub and compete on every release. Grants/s alone rewards monopolising the lock.
";

pub(super) const RENEWAL_NOTES: &str = "
H = 0 is the idle client (connection, session or lease alone): the traffic to compare against.
Redis and Redlock renew each grant (`renew.lua`, batched per client); etcd and ZooKeeper renew
nothing per lock: one lease keep-alive (etcd) or one session check (ZooKeeper) covers every
lock of the client. memory and file have no server (file locks are held by the kernel and never
renewed).
";

pub(super) const CONSISTENCY: &[(&str, &str)] = &[
    ("memory", "one process; linearizable (one mutex)"),
    ("file", "one host; the kernel's `flock`"),
    ("redis", "one primary, single-threaded: linearizable while it lives; replication (Sentinel, Cluster) is asynchronous"),
    ("redlock-3", "majority of independent servers, no replication; relies on bounded clock drift and pauses"),
    ("zookeeper", "ZAB consensus: linearizable writes, sequentially consistent reads"),
    ("etcd", "Raft consensus: linearizable reads and writes"),
];

pub(super) const FENCING: &[(&str, &str)] = &[
    ("memory", "a counter per key in the process"),
    ("file", "a counter fsynced in the lock file; rises across processes and host restarts"),
    ("redis", "`INCR` counter; a restart without `appendfsync always` or a failover to an async replica can repeat or lower it"),
    ("redlock-3", "the highest per-node counter of the majority, written back: an ordering hint; a node restarted empty breaks it"),
    ("zookeeper", "the lock node's `czxid`: rises across the ensemble, restarts and leader changes"),
    ("etcd", "the contender key's create revision: rises across the cluster and restarts"),
];

pub(super) const WAKE: &[(&str, &str)] = &[
    ("memory", "in-process notification"),
    ("file", "polling, 1 ms doubling to 20 ms"),
    ("redis", "pub/sub message on release, one subscription connection per client; a capped re-check is the safety net"),
    ("redlock-3", "pub/sub on every node; split votes retry after a random pause up to 30 ms"),
    ("zookeeper", "a watch on the predecessor node only (no herd)"),
    ("etcd", "a watch on the predecessor key only"),
];

pub(super) const CRASH: &[(&str, &str)] = &[
    ("memory", "; a process crash takes the store with it"),
    ("file", ""),
    ("redis", ""),
    ("redlock-3", ""),
    ("zookeeper", "; others wait at most that long"),
    ("etcd", "; others wait at most that long"),
];

pub(super) const OPS: &[(&str, &str)] = &[
    ("memory", "nothing: tasks of one process only"),
    ("file", "nothing: processes of one host (not over NFS)"),
    ("redis", "one Redis (~12 MB); for HA, Sentinel (3 sentinels + replicas) or a Cluster (≥ 3 primaries), both with the async-replication caveat"),
    ("redlock-3", "3 or 5 independent Redis servers, no replication; restart a node only after the longest TTL or run `appendfsync always`"),
    ("zookeeper", "a JVM per server (~60–70 MB with a small heap); 3 or 5 for HA"),
    ("etcd", "one etcd (~25–50 MB) on a fast disk (fsync per write); 3 or 5 for HA"),
];

pub(super) const BACKENDS_TAIL: &str = "
## In short

- **One process**: memory. **One host, nothing to run**: file (the kernel frees a dead
  holder's lock at once, and its tokens are strict).
- **Fastest networked lock, and you already run Redis**: Redis, with `BestEffort` tokens:
  a failover or a restart without `appendfsync always` can hand out a second grant.
- **Correctness first (strict fencing, FIFO, failover without a second holder)**: ZooKeeper
  or etcd; both cost a few more round trips per cycle than Redis (see the measured rows) and a
  consensus cluster to run.
- **Redlock** buys tolerance of a minority of Redis servers down, not strict fencing.
";
