//! Creating our contender node: one write in the common cases, and never
//! an orphan when the reply is lost.

use std::collections::HashSet;

use fencelock_core::{Error, OwnerId, Result};
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::error::{once, retry, Failure};
use crate::key::{node_name_prefix, node_prefix};
use crate::session::Session;

/// How many parent paths [`Parents`] remembers before it starts over.
const KNOWN_PARENTS: usize = 4096;

/// Parent nodes a client saw exist lately: a hint that picks the cheapest
/// first create (see [`create_node`]), never relied on for safety.
#[derive(Default)]
pub(crate) struct Parents(std::sync::Mutex<HashSet<String>>);

impl Parents {
    /// Whether `parent` was seen to exist lately (a hint).
    fn knows(&self, parent: &str) -> bool {
        self.0.lock().is_ok_and(|known| known.contains(parent))
    }

    /// Remembers (or forgets) that `parent` exists.
    fn learn(&self, parent: &str, exists: bool) {
        if let Ok(mut known) = self.0.lock() {
            if !exists {
                known.remove(parent);
            } else if !known.contains(parent) {
                if known.len() >= KNOWN_PARENTS {
                    known.clear();
                }
                known.insert(parent.to_string());
            }
        }
    }
}

/// Creates our contender node; finds it again when the reply was lost.
///
/// One write in the common cases. For a parent this client saw lately,
/// a plain create of the child. Otherwise (a fresh key) one transaction
/// creates the parent (a container) and the child together; when the
/// parent turns out to exist (`NodeExists` on its create, so nothing
/// was written) the plain create follows, and when the plain create
/// finds no parent (`NoNode`: the server reaped the empty container)
/// the transaction follows. A missing prefix node is made on `NoNode` from the
/// transaction, as Curator's `creatingParentContainersIfNeeded` does.
pub(crate) async fn create_node(
    session: &Session,
    parents: &Parents,
    base: &str,
    parent: &str,
    owner: OwnerId,
) -> Result<Created> {
    let client = &session.client;
    let prefix = node_prefix(parent, owner);
    let data = owner.to_string();
    let mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut with_parent = !parents.knows(parent);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let sent = Instant::now();
        let outcome = if with_parent {
            let mut txn = client.new_multi_writer();
            txn.add_create(parent, &[], &container)
                .and_then(|()| txn.add_create(&prefix, data.as_bytes(), &mode))
                .map_err(|e| Failure::Zk(e).into_error("creating the lock node"))?;
            let commit = txn.commit();
            let done = once(session.call_timeout, async move {
                match commit.await {
                    Ok(results) => Ok(Ok(results)),
                    Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                        Ok(Err((index, source)))
                    }
                    Err(zk::MultiWriteError::RequestFailed { source }) => Err(source),
                }
            })
            .await;
            match done {
                Ok(Ok(results)) => {
                    session.heard(sent);
                    parents.learn(parent, true);
                    // Created with its parent in one transaction, the
                    // child is the parent's first child: it sorts first
                    // (sequence 0) for as long as it exists.
                    let path = results
                        .into_iter()
                        .nth(1)
                        .and_then(|r| match r {
                            zk::MultiWriteResult::Create { path, stat } => Some((path, stat)),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            Error::backend("the create transaction answered without the lock node")
                        })?;
                    return Ok(Created {
                        // ZooKeeper before 3.7.2/3.8.2 leaves the stat out
                        // (ZOOKEEPER-4026): the czxid then comes from the
                        // exists that sets our watch.
                        czxid: Some(path.1.czxid).filter(|z| *z > 0),
                        path: path.0,
                        alone: true,
                    });
                }
                Ok(Err((0, zk::Error::NodeExists))) => {
                    parents.learn(parent, true);
                    with_parent = false;
                    continue;
                }
                Ok(Err((0, zk::Error::NoNode))) if attempts <= 4 => {
                    retry(session.call_timeout, || client.mkdir(base, &persistent))
                        .await
                        .map_err(|f| f.into_error("creating the prefix node"))?;
                    continue;
                }
                Ok(Err((_, e))) => Err(Failure::Zk(e)),
                Err(f) => Err(f),
            }
        } else {
            match once(
                session.call_timeout,
                client.create(&prefix, data.as_bytes(), &mode),
            )
            .await
            {
                Ok((stat, seq)) => {
                    session.heard(sent);
                    return Ok(Created {
                        path: format!("{prefix}{seq}"),
                        czxid: Some(stat.czxid).filter(|z| *z > 0),
                        alone: false,
                    });
                }
                Err(Failure::Zk(zk::Error::NoNode)) if attempts <= 4 => {
                    parents.learn(parent, false);
                    with_parent = true;
                    continue;
                }
                Err(f) => Err(f),
            }
        };
        match outcome {
            Err(f @ (Failure::Zk(zk::Error::ConnectionLoss) | Failure::Timeout(_))) => {
                // The create may have happened: look for our owner id.
                if let Some(found) = find_own(session, parent, owner)
                    .await
                    .map_err(|f| f.into_error("looking for the lock node after a lost reply"))?
                {
                    return Ok(Created {
                        path: format!("{parent}/{found}"),
                        czxid: None,
                        alone: false,
                    });
                }
                if attempts > 4 {
                    return Err(f.into_error("creating the lock node"));
                }
            }
            Err(f) => return Err(f.into_error("creating the lock node")),
            Ok(()) => {}
        }
    }
}

/// Our contender node, as created.
pub(crate) struct Created {
    pub(crate) path: String,
    /// Its `czxid` when the create's reply carried it.
    pub(crate) czxid: Option<i64>,
    /// Created in one transaction with its parent: the parent's first
    /// child, so the lowest contender for as long as it exists.
    pub(crate) alone: bool,
}

/// Finds our node among `parent`'s children by the owner id in its name.
pub(crate) async fn find_own(
    session: &Session,
    parent: &str,
    owner: OwnerId,
) -> Result<Option<String>, Failure> {
    let client = &session.client;
    let name = node_name_prefix(owner);
    match retry(session.call_timeout, || client.list_children(parent)).await {
        Ok(children) => Ok(children.into_iter().find(|c| c.starts_with(&name))),
        Err(Failure::Zk(zk::Error::NoNode)) => Ok(None),
        Err(f) => Err(f),
    }
}
