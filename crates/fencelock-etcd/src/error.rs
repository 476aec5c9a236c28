//! Maps etcd-client errors onto fencelock's error kinds.

use etcd_client::Error as EtcdError;
use fencelock_core::{Error, ErrorKind};
use tonic::Code;

/// Turns an etcd-client error from `what` (a short description of the call)
/// into a fencelock error with the right kind and the client error as source.
pub(crate) fn from_etcd(what: &str, e: EtcdError) -> Error {
    let (kind, detail) = match &e {
        EtcdError::GRpcStatus(status) => {
            let kind = match status.code() {
                Code::Unavailable | Code::Aborted => ErrorKind::Connection,
                // A connection that closed under the call (e.g. another
                // service on the port hung up) is unreachable, not slow.
                Code::Cancelled if closed_under(status) => ErrorKind::Connection,
                Code::Cancelled | Code::DeadlineExceeded => ErrorKind::Timeout,
                // Not a gRPC server's answer (e.g. another service on the
                // port: "h2 protocol error"): unreachable as etcd.
                Code::Unknown | Code::Internal if looks_like_transport(status.message()) => {
                    ErrorKind::Connection
                }
                _ => ErrorKind::Backend,
            };
            (kind, status.message().to_string())
        }
        EtcdError::IoError(_) | EtcdError::TransportError(_) | EtcdError::WatchError(_) => {
            (ErrorKind::Connection, causes(&e))
        }
        EtcdError::InvalidArgs(_)
        | EtcdError::InvalidUri(_)
        | EtcdError::InvalidMetadataValue(_)
        | EtcdError::EndpointError(_) => (ErrorKind::InvalidConfig, String::new()),
        _ => (ErrorKind::Backend, String::new()),
    };
    let message = if detail.is_empty() {
        format!("etcd {what} failed")
    } else {
        format!("etcd {what} failed: {detail}")
    };
    Error::new(kind, message).with_source(e)
}

/// The first lines of an error and its causes, each once: one line that
/// says what went wrong, without the client's debug dumps.
fn causes(e: &EtcdError) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cur {
        let text = c.to_string();
        let line = text.lines().next().unwrap_or_default().trim().to_string();
        if !line.is_empty() && !out.iter().any(|o| o.contains(&line)) {
            out.push(line);
        }
        cur = c.source();
    }
    out.join(": ")
}

/// Whether a status came from the transport's connection closing.
fn closed_under(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        if c.to_string().contains("connection closed") {
            return true;
        }
        cause = c.source();
    }
    false
}

fn looks_like_transport(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "transport",
        "connection",
        "broken pipe",
        "h2 protocol",
        "connect",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Whether a call that failed this way may succeed on another endpoint.
pub(crate) fn try_elsewhere(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout)
}

/// Whether etcd said the lease does not exist (expired or revoked).
pub(crate) fn lease_not_found(e: &EtcdError) -> bool {
    match e {
        EtcdError::LeaseKeepAliveError(m) => m.contains("not found"),
        EtcdError::GRpcStatus(s) => s.message().contains("lease not found"),
        _ => false,
    }
}

/// Whether etcd refused a lease grant because a lease with that id exists.
pub(crate) fn lease_exists(e: &EtcdError) -> bool {
    matches!(e, EtcdError::GRpcStatus(s) if s.message().contains("lease already exists"))
}
