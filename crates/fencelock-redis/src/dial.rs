//! Opening one node: a redis-rs client from a URL, and a reconnecting
//! connection to it within the connect timeout. Errors name the endpoint.

use std::future::Future;
use std::time::Duration;

use fencelock_core::raw::url::redact;
use fencelock_core::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::host_port;
use crate::error::map_connect;

/// A client for one node. `tls`: the root certificates of a private CA
/// (for a `rediss://` URL), else redis-rs's defaults.
pub(crate) fn open(url: &str, tls: Option<&redis::TlsCertificates>) -> Result<redis::Client> {
    let client = match tls {
        Some(certs) if url.to_ascii_lowercase().starts_with("rediss://") => {
            redis::Client::build_with_tls(url, certs.clone())
        }
        _ => redis::Client::open(url),
    };
    client.map_err(|e| {
        Error::invalid_config(format!("{:?} is not a valid Redis URL", redact(url))).with_source(e)
    })
}

/// The `host:port` a client connects to (never its password).
pub(crate) fn endpoint(client: &redis::Client) -> String {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => host_port(host, *port),
        other => other.to_string(),
    }
}

/// A reconnecting connection to one server, bounded by the connect timeout.
pub(crate) async fn manager(
    client: &redis::Client,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1));
    connect_bounded(
        connect_timeout,
        &endpoint(client),
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
}

/// Connects within `limit`; errors name `endpoint` (`host:port`, or the
/// cluster's seed nodes).
pub(crate) async fn connect_bounded<T>(
    limit: Duration,
    endpoint: &str,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_connect(e, endpoint)),
        Err(_) => Err(Error::connection(format!(
            "cannot connect to Redis at {endpoint}: no answer within {limit:?}"
        ))),
    }
}
