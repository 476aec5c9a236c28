//! The command connection: one type over a standalone server, a Redis
//! Cluster, and a primary found through Sentinel, opened from a target.

use std::sync::Arc;
use std::time::Duration;

use fencelock_core::Result;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::Target;
use crate::dial::{connect_bounded, endpoint, manager, open};
use crate::error::map_redis;
use crate::sentinel::SentinelConn;

/// A reconnecting multiplexed connection to one server, the async cluster
/// client, or the Sentinel-followed primary. Cheap to clone (clones share
/// one connection per node).
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server, with its `host:port`.
    Single(ConnectionManager, Arc<str>),
    /// A Redis Cluster, with its seed nodes (`host:port,host:port`).
    Cluster(ClusterConnection, Arc<str>),
    Sentinel(SentinelConn),
}

/// What [`Conn::open`] makes: the connection, and a client per node for
/// the pub/sub subscriber.
pub(crate) type Opened = (Conn, Vec<redis::Client>);

impl Conn {
    /// Connects to `target` within `ct`; every call on the connection is
    /// bounded by `rt` as well.
    pub(crate) async fn open(
        target: &Target,
        tls: Option<redis::TlsCertificates>,
        ct: Duration,
        rt: Duration,
    ) -> Result<Opened> {
        Ok(match target {
            Target::Single(url) => {
                let client = open(url, tls.as_ref())?;
                let manager = manager(&client, ct, rt).await?;
                (
                    Conn::Single(manager, endpoint(&client).into()),
                    vec![client],
                )
            }
            Target::Sentinel(spec) => {
                let (conn, clients) = SentinelConn::connect(spec, tls, ct, rt).await?;
                (Conn::Sentinel(conn), clients)
            }
            Target::Cluster(nodes) => {
                let clients = nodes
                    .iter()
                    .map(|n| open(n, tls.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
                let seeds = clients.iter().map(endpoint).collect::<Vec<_>>().join(",");
                let mut cluster = ClusterClient::builder(nodes.clone())
                    .connection_timeout(ct)
                    .response_timeout(rt)
                    .retries(3);
                if let Some(certs) = tls {
                    cluster = cluster.certs(certs);
                }
                let cluster = cluster.build().map_err(|e| {
                    map_redis(e, &format!("Redis Cluster at {seeds}"), "configuration")
                })?;
                let conn = connect_bounded(ct, &seeds, cluster.get_async_connection()).await?;
                (Conn::Cluster(conn, seeds.into()), clients)
            }
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(..))
    }

    /// Who answers calls on this connection, for error messages: `Redis at
    /// host:port`, the Cluster's seeds, or the primary Sentinel names now.
    /// Never a password.
    pub(crate) fn endpoint(&self) -> String {
        match self {
            Conn::Single(_, at) => format!("Redis at {at}"),
            Conn::Cluster(_, seeds) => format!("Redis Cluster at {seeds}"),
            Conn::Sentinel(c) => c.endpoint(),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c, _) => c.req_packed_command(cmd),
            Conn::Cluster(c, _) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c, _) => c.get_db(),
            Conn::Cluster(c, _) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}
