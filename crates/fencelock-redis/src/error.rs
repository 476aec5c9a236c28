//! Maps redis-rs errors and timeouts into fencelock errors.

use std::future::Future;
use std::time::Duration;

use fencelock_core::{Error, Result};
use redis::{ErrorKind as RK, RedisError, ServerErrorKind as SK};

/// Turns the redis-rs error of a call into a fencelock error of the right
/// kind, keeping the redis error as the source. `endpoint` says who was
/// asked (`Redis at host:port`, see `Conn::endpoint`), `what` names the
/// operation; the message names both.
pub(crate) fn map_redis(e: RedisError, endpoint: &str, what: &str) -> Error {
    classify(e, &format!("{what} on {endpoint}"))
}

/// [`map_redis`] with the message's start given whole.
fn classify(e: RedisError, context: &str) -> Error {
    let detail = match e.kind() {
        RK::Server(_) | RK::Extension => e.detail().map(str::to_string),
        _ => None,
    };
    let message = match &detail {
        Some(d) => format!("{context}: {d}"),
        None => context.to_string(),
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
        Error::timeout(format!("{message}: no answer in time"))
    } else if e.is_connection_refusal() {
        Error::connection(format!("{message}: connection refused"))
    } else if e.is_connection_dropped() {
        Error::connection(format!("{message}: the connection was dropped"))
    } else if e.is_io_error() {
        Error::connection(format!("{message}: the connection failed"))
    } else {
        match e.kind() {
            RK::InvalidClientConfig => Error::invalid_config(message),
            RK::ClusterConnectionNotFound => {
                Error::connection(format!("{message}: no connection to the node"))
            }
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
        return classify(e, &what);
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
/// Errors name `endpoint` and `what` as [`map_redis`] does.
pub(crate) async fn bounded<T, F>(endpoint: &str, limit: Duration, what: &str, fut: F) -> Result<T>
where
    F: Future<Output = Result<T, RedisError>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_redis(e, endpoint, what)),
        Err(_) => Err(Error::timeout(format!(
            "{what} on {endpoint}: no answer within {limit:?}"
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
        let e = map_redis(io, "Redis at 127.0.0.1:7", "acquire");
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert_eq!(
            e.message(),
            "acquire on Redis at 127.0.0.1:7: connection refused"
        );
        let t = RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
        let e = map_redis(t, "Redis at 127.0.0.1:7", "renew");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("127.0.0.1:7"), "{e}");
        let cfg = RedisError::from((RK::InvalidClientConfig, "bad"));
        assert_eq!(map_redis(cfg, "x", "y").kind(), ErrorKind::InvalidConfig);
    }
}
