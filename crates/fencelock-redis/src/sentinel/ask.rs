//! Asking the Sentinels: which node is the primary of a master name, and
//! which replicas they consider up. Errors name the Sentinel asked.

use std::time::Duration;

use fencelock_core::{Error, Result};
use tokio::time::timeout;

use crate::dial::endpoint;
use crate::error::{map_connect, map_redis};

/// Asks the Sentinels in turn, from `start`, for the primary's address.
/// Returns it with the index of the Sentinel that answered.
pub(crate) async fn ask_primary(
    sentinels: &[redis::Client],
    master: &str,
    start: usize,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<((String, u16), usize)> {
    let mut last: Option<Error> = None;
    let mut unknown = 0;
    for step in 0..sentinels.len() {
        let i = (start + step) % sentinels.len();
        let reply: Result<Option<(String, String)>> = async {
            let mut c = sentinel_conn(&sentinels[i], connect_timeout).await?;
            let cmd = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(master)
                .clone();
            let at = format!("the Sentinel at {}", endpoint(&sentinels[i]));
            let what = "SENTINEL get-master-addr-by-name";
            match timeout(response_timeout, cmd.query_async(&mut c)).await {
                Ok(r) => r.map_err(|e| map_redis(e, &at, what)),
                Err(_) => Err(Error::timeout(format!(
                    "{what} on {at}: no answer within {response_timeout:?}"
                ))),
            }
        }
        .await;
        match reply {
            Ok(Some((host, port))) => match port.parse::<u16>() {
                Ok(port) => return Ok(((host, port), i)),
                Err(_) => {
                    last = Some(Error::backend(format!(
                        "the Sentinel at {} named the primary at port {port:?}",
                        endpoint(&sentinels[i])
                    )));
                }
            },
            Ok(None) => unknown += 1,
            Err(e) => last = Some(e),
        }
    }
    if unknown > 0 && last.is_none() {
        return Err(Error::invalid_config(format!(
            "no Sentinel monitors a master named {master:?}"
        )));
    }
    Err(match last {
        Some(e) => Error::connection(format!(
            "no Sentinel of {} named the primary of {master:?}: {e}",
            sentinels.len()
        ))
        .with_source(e),
        None => Error::invalid_config("no Sentinel given"),
    })
}

/// The replicas the first answering Sentinel knows and considers up
/// (best effort: an empty list on any failure).
pub(crate) async fn ask_replicas(
    sentinels: &[redis::Client],
    master: &str,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Vec<(String, u16)> {
    for s in sentinels {
        let Ok(mut c) = sentinel_conn(s, connect_timeout).await else {
            continue;
        };
        let cmd = redis::cmd("SENTINEL").arg("replicas").arg(master).clone();
        let Ok(Ok(list)) = timeout(
            response_timeout,
            cmd.query_async::<Vec<Vec<String>>>(&mut c),
        )
        .await
        else {
            continue;
        };
        return list
            .iter()
            .filter_map(|fields| {
                let get = |name: &str| {
                    fields
                        .chunks(2)
                        .find(|kv| kv.first().is_some_and(|k| k == name))
                        .and_then(|kv| kv.get(1).cloned())
                };
                let flags = get("flags").unwrap_or_default();
                if flags.contains("down") || flags.contains("disconnected") {
                    return None;
                }
                Some((get("ip")?, get("port")?.parse().ok()?))
            })
            .collect();
    }
    Vec::new()
}

async fn sentinel_conn(
    client: &redis::Client,
    connect_timeout: Duration,
) -> Result<redis::aio::MultiplexedConnection> {
    let at = endpoint(client);
    match timeout(connect_timeout, client.get_multiplexed_async_connection()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(map_connect(e, &at)),
        Err(_) => Err(Error::connection(format!(
            "cannot connect to the Sentinel at {at}: no answer within {connect_timeout:?}"
        ))),
    }
}
