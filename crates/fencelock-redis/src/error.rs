//! Maps redis-rs errors and timeouts into fencelock errors.

use std::future::Future;
use std::time::Duration;

use fencelock_core::{Error, Result};
use redis::{ErrorKind as RK, RedisError, ServerErrorKind as SK};

/// Turns a redis-rs error into a fencelock error of the right kind, keeping
/// the redis error as the source. `what` names the operation.
pub(crate) fn map_redis(e: RedisError, what: &str) -> Error {
    let detail = match e.kind() {
        RK::Server(_) | RK::Extension => e.detail().map(str::to_string),
        _ => None,
    };
    let message = match &detail {
        Some(d) => format!("{what}: {d}"),
        None => what.to_string(),
    };
    // The cluster client reports a failed AUTH on its initial connections as
    // an I/O error whose text carries the real kind.
    let auth_failed = e.kind() == RK::AuthenticationFailed
        || (e.kind() == RK::Io && e.to_string().contains("AuthenticationFailed"));
    let err = if auth_failed {
        Error::connection(format!(
            "{message}: authentication failed (check user name and password)"
        ))
        .with_retryable(false)
    } else if e.is_timeout() {
        Error::timeout(format!("{message}: Redis did not answer in time"))
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        Error::connection(message)
    } else {
        match e.kind() {
            RK::InvalidClientConfig => Error::invalid_config(message),
            RK::ClusterConnectionNotFound => Error::connection(message),
            RK::Server(SK::ClusterDown | SK::TryAgain | SK::MasterDown | SK::BusyLoading) => {
                Error::backend(message).with_retryable(true)
            }
            RK::Server(SK::ReadOnly) => {
                Error::backend(format!("{message}: the node is a read-only replica"))
                    .with_retryable(true)
            }
            _ => Error::backend(message),
        }
    };
    err.with_source(e)
}

/// Maps the error of a connection attempt to `endpoint` (`host:port`): the
/// message names the endpoint and what went wrong, the redis-rs error is
/// the source. A Redis server's own refusal (authentication, a server
/// error) keeps its kind; no answer in time, a refused or broken
/// connection, and a reply that is not Redis's protocol (another service
/// on that port) are `Connection`: the endpoint is unreachable as a Redis
/// server.
pub(crate) fn map_connect(e: RedisError, endpoint: &str) -> Error {
    let what = format!("cannot connect to Redis at {endpoint}");
    let auth_failed = e.kind() == RK::AuthenticationFailed
        || (e.kind() == RK::Io && e.to_string().contains("AuthenticationFailed"));
    if auth_failed
        || matches!(
            e.kind(),
            RK::Server(_) | RK::Extension | RK::InvalidClientConfig
        )
    {
        return map_redis(e, &what);
    }
    let err = if e.is_timeout() {
        Error::connection(format!("{what}: no answer in time"))
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        Error::connection(format!("{what}: {}", first_line(&e)))
    } else {
        Error::connection(format!("{endpoint} did not answer like a Redis server"))
    };
    err.with_source(e)
}

/// The first line of a client error.
fn first_line(e: &RedisError) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Runs a store call with a deadline: a call that does not finish within
/// `limit` becomes [`ErrorKind::Timeout`](fencelock_core::ErrorKind::Timeout).
pub(crate) async fn bounded<T, F>(limit: Duration, what: &str, fut: F) -> Result<T>
where
    F: Future<Output = Result<T, RedisError>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_redis(e, what)),
        Err(_) => Err(Error::timeout(format!(
            "{what}: Redis did not answer within {limit:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fencelock_core::ErrorKind;

    #[test]
    fn kinds_map_as_documented() {
        let io = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(map_redis(io, "x").kind(), ErrorKind::Connection);
        let t = RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
        assert_eq!(map_redis(t, "x").kind(), ErrorKind::Timeout);
        let cfg = RedisError::from((RK::InvalidClientConfig, "bad"));
        assert_eq!(map_redis(cfg, "x").kind(), ErrorKind::InvalidConfig);
    }
}
