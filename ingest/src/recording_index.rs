//! A node's recordings in the site's index, when several nodes share a PostgreSQL store: every
//! [`PASS`] the node adds what it finished recording since, takes out what it no longer has
//! (retention, quotas, the CLI), and removes the files of recordings deleted through another node.
//! Each pass reads directory names only; a recording's log is read once, when it is first indexed.
//!
//! So any node lists every node's recordings (from the index) and serves them (a request for one
//! kept elsewhere is forwarded to its node, [`crate::nodes`]). It sits beside `record/`, not in
//! it: `record/` knows nothing of the store, so the store can name its types without a cycle.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use boltstream_shared::username::Username;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::record::Recordings;
use crate::store::{NodeClaim, Store};

/// Between two passes: how soon a finished recording is listed on the other nodes, and a
/// recording deleted through another node leaves this node's disk.
pub const PASS: Duration = Duration::from_secs(2);

/// Keeps the index up to date with this node's recordings until `shutdown`.
pub async fn keep_indexed(
    recordings: Arc<Recordings>,
    store: Arc<Store>,
    node: NodeClaim,
    shutdown: CancellationToken,
) {
    let mut indexed: Option<HashSet<(Username, u64)>> = None;
    let mut tick = crate::ticks::aligned_interval(PASS);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (r, s, n) = (Arc::clone(&recordings), Arc::clone(&store), node.clone());
        let before = indexed.take();
        let pass = tokio::task::spawn_blocking(move || pass(&r, &s, &n, before)).await;
        indexed = match pass {
            Ok(Ok(now)) => Some(now),
            Ok(Err(err)) => {
                warn!(error = %err, "could not update the index of past broadcasts");
                None // start afresh next time
            }
            Err(_) => None,
        };
    }
}

/// One pass; what is indexed after it. `indexed` is `None` on the first pass (and after a
/// failed one): the node's rows are then replaced by what it has.
fn pass(
    recordings: &Recordings,
    store: &Store,
    node: &NodeClaim,
    indexed: Option<HashSet<(Username, u64)>>,
) -> Result<HashSet<(Username, u64)>, crate::store::StoreError> {
    for (channel, id) in store.deleted_recordings(&node.node_id)? {
        if let Ok(user) = Username::parse(&channel) {
            recordings.delete(&user, id);
        }
    }
    let fresh = indexed.is_none();
    let mut indexed = indexed.unwrap_or_default();
    if fresh {
        store.unindex_recordings(&node.node_id, &[], true)?;
    }
    let here: HashSet<(Username, u64)> = recordings.all_ids().into_iter().collect();
    let gone: Vec<(String, u64)> = (indexed.difference(&here))
        .map(|(user, id)| (user.to_string(), *id))
        .collect();
    let new: Vec<(String, crate::record::RecordingInfo)> = (here.difference(&indexed))
        .filter_map(|(user, id)| Some((user.to_string(), recordings.info(user, *id)?)))
        .collect();
    if !gone.is_empty() {
        store.unindex_recordings(&node.node_id, &gone, false)?;
    }
    if !new.is_empty() {
        store.index_recordings(node, &new)?;
    }
    indexed.retain(|key| here.contains(key));
    for (user, info) in &new {
        if let Ok(user) = Username::parse(user) {
            indexed.insert((user, info.id));
        }
    }
    Ok(indexed)
}
