//! What is measured: the implementations and the store deployments.

/// One implementation measured on a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// fencelock itself.
    Fencelock,
    /// The store's unavoidable round trips.
    Floor,
    /// rslock.
    Rslock,
    /// etcd's Lock/Unlock RPC.
    EtcdRpc,
    /// zookeeper-client's lock recipe.
    ZkRecipe,
}

impl Impl {
    /// The name in results and tables.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Fencelock => "fencelock",
            Impl::Floor => "floor",
            Impl::Rslock => "rslock",
            Impl::EtcdRpc => "etcd-lock-rpc",
            Impl::ZkRecipe => "zookeeper-client-lock",
        }
    }
}

/// A store deployment to measure.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Its name in results (`redis`, `redlock-3`, `etcd-cluster`...).
    pub name: &'static str,
    /// The fixture that starts it.
    pub fixture: &'static str,
    /// The backend family (`redis`, `zookeeper`, `etcd`, `memory`, `file`).
    pub backend: &'static str,
    /// What runs, in words.
    pub shape: &'static str,
    /// The implementations measured on it.
    pub impls: &'static [Impl],
    /// Whether the renewal-cost scenario runs on it.
    pub renewal: bool,
    /// Whether it is one server (for the hand-off target).
    pub single_server: bool,
}

/// Every deployment, in run order.
pub fn deployments() -> Vec<Deployment> {
    use Impl::*;
    vec![
        Deployment {
            name: "memory",
            fixture: "memory",
            backend: "memory",
            shape: "in-process",
            impls: &[Fencelock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "file",
            fixture: "file",
            backend: "file",
            shape: "flock on a local dir",
            impls: &[Fencelock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "redis",
            fixture: "redis",
            backend: "redis",
            shape: "1 Redis server",
            impls: &[Fencelock, Floor, Rslock],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "redlock-3",
            fixture: "redlock",
            backend: "redlock",
            shape: "Redlock over 3 independent Redis servers",
            impls: &[Fencelock, Rslock],
            renewal: true,
            single_server: false,
        },
        Deployment {
            name: "redis-cluster",
            fixture: "redis-cluster",
            backend: "redis",
            shape: "Redis Cluster, 3 primaries",
            impls: &[Fencelock],
            renewal: false,
            single_server: false,
        },
        Deployment {
            name: "zookeeper",
            fixture: "zookeeper",
            backend: "zookeeper",
            shape: "1 ZooKeeper server",
            impls: &[Fencelock, Floor, ZkRecipe],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "zookeeper-ensemble",
            fixture: "zookeeper-ensemble",
            backend: "zookeeper",
            shape: "ZooKeeper ensemble of 3",
            impls: &[Fencelock, Floor, ZkRecipe],
            renewal: false,
            single_server: false,
        },
        Deployment {
            name: "etcd",
            fixture: "etcd",
            backend: "etcd",
            shape: "1 etcd member",
            impls: &[Fencelock, Floor, EtcdRpc],
            renewal: true,
            single_server: true,
        },
        Deployment {
            name: "etcd-cluster",
            fixture: "etcd-cluster",
            backend: "etcd",
            shape: "etcd cluster of 3",
            impls: &[Fencelock, Floor, EtcdRpc],
            renewal: false,
            single_server: false,
        },
    ]
}
