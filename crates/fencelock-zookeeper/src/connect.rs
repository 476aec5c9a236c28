//! Saying why no session could be established: which endpoint refused, and
//! which bound ran out.

use std::io::ErrorKind as IoKind;
use std::time::Duration;

use fencelock_core::{Error, ErrorKind};
use tokio::net::TcpStream;
use zookeeper_client as zk;

use crate::error::map_zk;

/// How long the diagnosis waits for one endpoint's TCP handshake.
const PROBE: Duration = Duration::from_millis(300);

/// What became of one endpoint.
enum Fate {
    /// It refused, or could not be reached at all (the text says how).
    Unreachable(String),
    /// It answered TCP but gave no session in time, or did not answer.
    Silent,
}

/// The error for a failed session establishment.
///
/// zookeeper-client tries every host once (`fail_eagerly`) and then says
/// only `NoHosts`. To name each endpoint's fate, the hosts are probed with
/// a bare TCP connect (only on this failure path): an immediate refusal
/// (or an unknown name, an unreachable network) is a
/// [`Connection`](ErrorKind::Connection) error; an endpoint that accepts
/// TCP but gave no session, or does not answer, ran out the per-host
/// connection bound: [`Timeout`](ErrorKind::Timeout).
pub(crate) async fn connect_error(hosts: &[String], per_host: Duration, e: zk::Error) -> Error {
    if !matches!(
        e,
        zk::Error::NoHosts | zk::Error::Timeout | zk::Error::ConnectionLoss
    ) {
        return map_zk(
            e,
            &format!("connecting to ZooKeeper at {}", hosts.join(",")),
        );
    }
    let fates = futures_util::future::join_all(hosts.iter().map(|h| probe(h))).await;
    let silent = fates.iter().any(|f| matches!(f, Fate::Silent));
    let say = |fate: &Fate| match fate {
        Fate::Unreachable(why) => why.clone(),
        Fate::Silent => format!(
            "no session within the connection timeout of {per_host:?}, 2/5 of the session timeout"
        ),
    };
    let message = match (hosts, fates.as_slice()) {
        ([host], [fate]) => format!("cannot connect to ZooKeeper at {host}: {}", say(fate)),
        _ => format!(
            "cannot connect to ZooKeeper at any of {}",
            hosts
                .iter()
                .zip(&fates)
                .map(|(h, f)| format!("{h} ({})", say(f)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let kind = if silent {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    Error::new(kind, message).with_source(e)
}

async fn probe(host: &str) -> Fate {
    match tokio::time::timeout(PROBE, TcpStream::connect(host)).await {
        Ok(Err(e)) if e.kind() == IoKind::ConnectionRefused => {
            Fate::Unreachable("connection refused".into())
        }
        Ok(Err(e)) => Fate::Unreachable(e.to_string()),
        Ok(Ok(_)) | Err(_) => Fate::Silent,
    }
}
