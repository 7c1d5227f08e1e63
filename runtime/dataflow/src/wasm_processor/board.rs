//! The plugins of the wasm nodes an embedded pipeline runs, posted by each
//! node instance under the pipeline's channel, so the application that holds
//! the pipeline can read their metrics without an admin server.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use wasmtel_runtime::{MetricsSnapshot, Plugin};

/// channel → (node name, one core's plugin).
static BOARD: Mutex<BTreeMap<String, Vec<(String, Plugin)>>> = Mutex::new(BTreeMap::new());

/// Posts one node instance's plugin under `channel`.
pub(crate) fn post(channel: &str, node: &str, plugin: Plugin) {
    let mut board = BOARD.lock().unwrap_or_else(PoisonError::into_inner);
    board.entry(channel.to_string()).or_default().push((node.to_string(), plugin));
}

/// Forgets a pipeline's plugins (it stopped), letting their instances go.
pub(crate) fn clear(channel: &str) {
    BOARD.lock().unwrap_or_else(PoisonError::into_inner).remove(channel);
}

/// Each node's plugin metrics, its cores added up.
pub(crate) fn metrics(channel: &str) -> BTreeMap<String, MetricsSnapshot> {
    let plugins = BOARD.lock().unwrap_or_else(PoisonError::into_inner).get(channel).cloned().unwrap_or_default();
    let mut by_node: BTreeMap<String, MetricsSnapshot> = BTreeMap::new();
    for (node, plugin) in plugins {
        let snapshot = plugin.metrics();
        match by_node.get_mut(&node) {
            Some(total) => total.add(&snapshot),
            None => {
                by_node.insert(node, snapshot);
            }
        }
    }
    by_node
}
