//! The implementations measured: fencelock itself, the floor (the bare
//! round trips of one lock cycle on each store, through the same client
//! library) and the peers (rslock, etcd's Lock RPC, zookeeper-client's lock
//! recipe), all behind one small trait.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fencelock::{DistributedLock, LockGuard, LockOptions};

/// An error of one lock operation, as text.
pub type OpError = String;

/// One measured implementation, connected to one store.
#[async_trait]
pub trait Locker: Send + Sync {
    /// Takes `key`, waiting while another client holds it.
    async fn lock(&self, key: &str) -> Result<Held, OpError>;
    /// Whether [`lock`](Self::lock) can wait for a busy key (the floor cannot).
    fn waits(&self) -> bool {
        true
    }
}

/// A held lock of any implementation.
pub enum Held {
    /// A fencelock guard.
    Fencelock(LockGuard),
    /// The floor on Redis: the owner value to compare-and-delete.
    RedisFloor(redis::aio::MultiplexedConnection, String, String),
    /// rslock's lock.
    Rslock(Box<rslock::Lock>),
    /// The floor on etcd: the key to delete.
    EtcdFloor(etcd_client::Client, String),
    /// etcd's Lock RPC: the ownership key to unlock.
    EtcdRpc(etcd_client::Client, Vec<u8>),
    /// A ZooKeeper node to delete (the floor, and zookeeper-client's recipe).
    ZkNode(zookeeper_client::Client, String),
}

impl Held {
    /// Releases, waiting for the store's answer.
    pub async fn release(self) -> Result<(), OpError> {
        match self {
            Held::Fencelock(g) => g.release().await.map_err(|e| e.to_string()),
            Held::RedisFloor(mut conn, key, owner) => {
                let n: i64 = CAD
                    .key(key)
                    .arg(owner)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                if n == 1 {
                    Ok(())
                } else {
                    Err("floor: the key was not ours".into())
                }
            }
            Held::Rslock(l) => {
                l.lock_manager.unlock(&l).await;
                Ok(())
            }
            Held::EtcdFloor(mut c, key) => c
                .delete(key, None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Held::EtcdRpc(mut c, key) => c.unlock(key).await.map(|_| ()).map_err(|e| e.to_string()),
            Held::ZkNode(c, path) => c.delete(&path, None).await.map_err(|e| e.to_string()),
        }
    }
}

static CAD: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
    )
});

/// fencelock through `fencelock::connect`: default options (TTL 30 s,
/// automatic renewal), waiting without a bound (the caller bounds it).
pub struct Fencelock {
    /// The connected lock service.
    pub lock: Arc<dyn DistributedLock>,
    /// The options of every acquisition.
    pub opts: LockOptions,
}

impl Fencelock {
    /// Connects one client.
    pub async fn connect(url: &str) -> Result<Self, OpError> {
        let lock = fencelock::connect(url).await.map_err(|e| e.to_string())?;
        Ok(Fencelock {
            lock,
            opts: LockOptions::new(),
        })
    }
}

#[async_trait]
impl Locker for Fencelock {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        self.lock
            .acquire(key, &self.opts)
            .await
            .map(Held::Fencelock)
            .map_err(|e| e.to_string())
    }
}

/// The floor on Redis: `SET key owner NX PX 30000`, and a compare-and-delete
/// script (`EVALSHA`) to release.
pub struct RedisFloor {
    conn: redis::aio::MultiplexedConnection,
}

impl RedisFloor {
    /// Opens one multiplexed connection.
    pub async fn connect(addr: &str) -> Result<Self, OpError> {
        let client = redis::Client::open(format!("redis://{addr}")).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        // Load the script once, as fencelock does at connect.
        CAD.prepare_invoke()
            .load_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(RedisFloor { conn })
    }
}

#[async_trait]
impl Locker for RedisFloor {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.conn.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(&owner)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        match ok {
            Some(_) => Ok(Held::RedisFloor(conn, key.to_string(), owner)),
            None => Err("floor: key busy (the floor does not wait)".into()),
        }
    }
    fn waits(&self) -> bool {
        false
    }
}

/// rslock (Redlock over 1 or N nodes), its default retry settings.
pub struct Rslock {
    manager: rslock::LockManager,
}

impl Rslock {
    /// A lock manager over `addrs`, connected eagerly.
    pub async fn connect(addrs: &[String]) -> Result<Self, OpError> {
        let uris: Vec<String> = addrs.iter().map(|a| format!("redis://{a}")).collect();
        let manager = rslock::LockManager::new(uris);
        // Warm the connections so connecting is not measured.
        let probe = format!("bench-warm-{}", uuid::Uuid::new_v4().simple());
        let l = manager
            .lock(probe.as_bytes(), Duration::from_secs(5))
            .await
            .map_err(|e| format!("rslock: {e:?}"))?;
        manager.unlock(&l).await;
        Ok(Rslock { manager })
    }
}

#[async_trait]
impl Locker for Rslock {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        // `acquire_no_guard` loops over `lock` (3 tries, random 0-200 ms
        // pauses) until it succeeds: rslock's way of waiting.
        self.manager
            .acquire_no_guard(key.as_bytes(), Duration::from_secs(30))
            .await
            .map(|l| Held::Rslock(Box::new(l)))
            .map_err(|e| format!("rslock: {e:?}"))
    }
}

async fn etcd_client(endpoints: &[String]) -> Result<etcd_client::Client, OpError> {
    let eps: Vec<String> = endpoints.iter().map(|a| format!("http://{a}")).collect();
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    etcd_client::Client::connect(eps, Some(opts))
        .await
        .map_err(|e| e.to_string())
}

/// The floor on etcd: one put-if-absent transaction, one delete.
pub struct EtcdFloor {
    client: etcd_client::Client,
}

impl EtcdFloor {
    /// Connects one client.
    pub async fn connect(endpoints: &[String]) -> Result<Self, OpError> {
        Ok(EtcdFloor {
            client: etcd_client(endpoints).await?,
        })
    }
}

#[async_trait]
impl Locker for EtcdFloor {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        use etcd_client::{Compare, CompareOp, Txn, TxnOp};
        let mut c = self.client.clone();
        let k = format!("/bench-floor/{key}");
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.clone(), "owner", None)]);
        let r = c.txn(txn).await.map_err(|e| e.to_string())?;
        if r.succeeded() {
            Ok(Held::EtcdFloor(c, k))
        } else {
            Err("floor: key busy (the floor does not wait)".into())
        }
    }
    fn waits(&self) -> bool {
        false
    }
}

/// etcd's server-side Lock/Unlock RPC (v3lock), on one lease per client.
pub struct EtcdRpc {
    client: etcd_client::Client,
    lease: i64,
}

impl EtcdRpc {
    /// Connects one client and grants its lease (300 s: longer than any
    /// measurement, so no keep-alive is needed).
    pub async fn connect(endpoints: &[String]) -> Result<Self, OpError> {
        let mut client = etcd_client(endpoints).await?;
        let lease = client
            .lease_grant(300, None)
            .await
            .map_err(|e| e.to_string())?
            .id();
        Ok(EtcdRpc { client, lease })
    }
}

#[async_trait]
impl Locker for EtcdRpc {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        let mut c = self.client.clone();
        let r = c
            .lock(
                format!("/bench-rpc/{key}"),
                Some(etcd_client::LockOptions::new().with_lease(self.lease)),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Held::EtcdRpc(c, r.key().to_vec()))
    }
}

async fn zk_client(endpoints: &[String]) -> Result<zookeeper_client::Client, OpError> {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(&endpoints.join(","))
        .await
        .map_err(|e| e.to_string())
}

async fn zk_ensure(client: &zookeeper_client::Client, path: &str) -> Result<(), OpError> {
    use zookeeper_client::{Acls, CreateMode, Error};
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match client.create(path, &[], &opts).await {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The floor on ZooKeeper: one ephemeral-sequential create, one
/// get-children, one delete, under a parent made before the clock starts.
pub struct ZkFloor {
    client: zookeeper_client::Client,
    parent: String,
}

impl ZkFloor {
    /// Connects one session and makes its parent node.
    pub async fn connect(endpoints: &[String], run: &str, i: usize) -> Result<Self, OpError> {
        let client = zk_client(endpoints).await?;
        zk_ensure(&client, "/bench-floor").await?;
        let parent = format!("/bench-floor/{run}-{i}");
        zk_ensure(&client, &parent).await?;
        Ok(ZkFloor { client, parent })
    }
}

#[async_trait]
impl Locker for ZkFloor {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        use zookeeper_client::{Acls, CreateMode};
        let opts = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let prefix = format!("{}/{key}-lock-", self.parent);
        let (_, seq) = self
            .client
            .create(&prefix, b"owner", &opts)
            .await
            .map_err(|e| e.to_string())?;
        let path = format!("{prefix}{seq}");
        let children = self
            .client
            .list_children(&self.parent)
            .await
            .map_err(|e| e.to_string())?;
        // Tasks sharing a client share its parent: count this key's nodes.
        let mine = format!("{key}-lock-");
        if children.iter().filter(|c| c.starts_with(&mine)).count() != 1 {
            let _ = self.client.delete(&path, None).await;
            return Err("floor: key busy (the floor does not wait)".into());
        }
        Ok(Held::ZkNode(self.client.clone(), path))
    }
    fn waits(&self) -> bool {
        false
    }
}

/// zookeeper-client's own lock recipe (`Client::lock`, Curator-compatible
/// prefix, container parent created on demand), released by deleting the
/// lock node and waiting for the answer.
pub struct ZkRecipe {
    client: zookeeper_client::Client,
}

impl ZkRecipe {
    /// Connects one session.
    pub async fn connect(endpoints: &[String]) -> Result<Self, OpError> {
        let client = zk_client(endpoints).await?;
        zk_ensure(&client, "/bench-recipe").await?;
        Ok(ZkRecipe { client })
    }
}

#[async_trait]
impl Locker for ZkRecipe {
    async fn lock(&self, key: &str) -> Result<Held, OpError> {
        use zookeeper_client::{Acls, CreateMode, LockOptions, LockPrefix};
        let dir = format!("/bench-recipe/{key}");
        let prefix = LockPrefix::new_curator(&dir, "lock-").map_err(|e| e.to_string())?;
        let options = LockOptions::new(Acls::anyone_all())
            .with_ancestor_options(CreateMode::Container.with_acls(Acls::anyone_all()))
            .map_err(|e| e.to_string())?;
        let lc = self
            .client
            .lock(prefix, b"", options)
            .await
            .map_err(|e| e.to_string())?;
        let path = lc.lock_path().to_string();
        // The recipe's own release is a background delete without a result;
        // the benchmark deletes the node itself and waits for the answer,
        // as every other implementation's release does. Forgetting the
        // recipe's handle leaks only its path string.
        std::mem::forget(lc);
        Ok(Held::ZkNode(self.client.clone(), path))
    }
}
