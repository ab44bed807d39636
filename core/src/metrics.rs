//! keel's metrics, through the [`metrics`](https://docs.rs/metrics) facade: every name and label
//! in one place.
//!
//! keel records; it bundles no exporter. An application that wants the numbers installs a
//! recorder (for example `metrics-exporter-prometheus`, as `core/examples/pool_service.rs`
//! does) **before** it starts keel's parts: each part registers its handles once when it starts
//! (so recording is one atomic add, no lookup), and a part started before any recorder was
//! installed records nothing. Without a recorder every call is a no-op.
//!
//! | metric | kind | labels | meaning |
//! |---|---|---|---|
//! | `keel_pool_jobs_dispatched_total` | counter | pool | jobs added by this node |
//! | `keel_pool_jobs_started_total` | counter | pool | handler runs started (after the ack) |
//! | `keel_pool_jobs_completed_total` | counter | pool | completions recorded by this node's workers |
//! | `keel_pool_jobs_abandoned_total` | counter | pool | handler runs that stopped before completing |
//! | `keel_pool_jobs_moved_total` | counter | pool, reason | jobs moved to another worker: `requeued`, `orphan_requeued`, `redispatched`, `assigned`, `handed_back` |
//! | `keel_pool_stale_rejected_total` | counter | pool | acks or completions of a stale attempt refused by the store |
//! | `keel_pool_cleanups_total` | counter | pool | dead workers cleaned up by this node |
//! | `keel_pool_workers_dead_total` | counter | pool | this node's workers that died (cleaned up, or panicked) |
//! | `keel_pool_workers_replaced_total` | counter | pool | dead workers replaced by a fresh incarnation |
//! | `keel_pool_workers_live` | gauge | pool | this node's worker incarnations running |
//! | `keel_pool_data_losses_total` | counter | pool | store lifetimes lost (epoch marker missing or changed) |
//! | `keel_pool_feed_resynced_total` | counter | pool | completions the change feed missed, delivered from a snapshot |
//! | `keel_pool_feed_dropped_total` | counter | pool | completions dropped for a full feed subscriber |
//! | `keel_pool_completion_events_dropped_total` | counter | pool | node-local completion events dropped (completer backlog full) |
//! | `keel_store_errors_total` | counter | part, class | failed store calls by [`StoreError`] class: `unavailable`, `refused`, `timeout`, `disconnected`, `corrupt`, `invalid` |

use metrics::{Counter, Gauge, counter, gauge};

use crate::error::StoreError;

/// The class of a store error, as a label value.
pub fn error_class(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::Refused { .. } => "refused",
        StoreError::Timeout { .. } => "timeout",
        StoreError::Disconnected { .. } => "disconnected",
        StoreError::Corrupt { .. } => "corrupt",
        StoreError::Invalid { .. } => "invalid",
    }
}

/// Count one failed store call of `part` (`pool`, `lease`, …).
pub fn store_error(part: &'static str, e: &StoreError) {
    counter!("keel_store_errors_total", "part" => part, "class" => error_class(e)).increment(1);
}

/// Why a job moved, as a label value (the `kind` of its event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    Requeued,
    OrphanRequeued,
    Redispatched,
    Assigned,
    HandedBack,
}

impl Moved {
    pub fn from_kind(kind: &str) -> Option<Moved> {
        Some(match kind {
            "requeued" => Moved::Requeued,
            "orphan_requeued" => Moved::OrphanRequeued,
            "redispatched" => Moved::Redispatched,
            "assigned" => Moved::Assigned,
            "handed_back" => Moved::HandedBack,
            _ => return None,
        })
    }
}

/// One pool node's metric handles, registered once when the node starts.
#[derive(Clone)]
pub(crate) struct PoolMetrics {
    pub dispatched: Counter,
    pub started: Counter,
    pub completed: Counter,
    pub abandoned: Counter,
    moved: [Counter; 5],
    pub stale_rejected: Counter,
    pub cleanups: Counter,
    pub workers_dead: Counter,
    pub workers_replaced: Counter,
    pub workers_live: Gauge,
    pub data_losses: Counter,
    pub feed_resynced: Counter,
    pub feed_dropped: Counter,
    pub completion_events_dropped: Counter,
}

impl PoolMetrics {
    pub fn new(pool: &str) -> Self {
        let p = pool.to_owned();
        let c = |name: &'static str| counter!(name, "pool" => p.clone());
        let moved =
            |reason: &'static str| counter!("keel_pool_jobs_moved_total", "pool" => p.clone(), "reason" => reason);
        PoolMetrics {
            dispatched: c("keel_pool_jobs_dispatched_total"),
            started: c("keel_pool_jobs_started_total"),
            completed: c("keel_pool_jobs_completed_total"),
            abandoned: c("keel_pool_jobs_abandoned_total"),
            moved: [
                moved("requeued"),
                moved("orphan_requeued"),
                moved("redispatched"),
                moved("assigned"),
                moved("handed_back"),
            ],
            stale_rejected: c("keel_pool_stale_rejected_total"),
            cleanups: c("keel_pool_cleanups_total"),
            workers_dead: c("keel_pool_workers_dead_total"),
            workers_replaced: c("keel_pool_workers_replaced_total"),
            workers_live: gauge!("keel_pool_workers_live", "pool" => p.clone()),
            data_losses: c("keel_pool_data_losses_total"),
            feed_resynced: c("keel_pool_feed_resynced_total"),
            feed_dropped: c("keel_pool_feed_dropped_total"),
            completion_events_dropped: c("keel_pool_completion_events_dropped_total"),
        }
    }

    /// A job moved for `kind` (one of the move event kinds).
    pub fn moved(&self, kind: &str) {
        if let Some(m) = Moved::from_kind(kind) {
            self.moved[m as usize].increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_error_has_a_class() {
        let all = [
            StoreError::Unavailable { reason: String::new() },
            StoreError::Refused { reason: String::new() },
            StoreError::Timeout { op: "x" },
            StoreError::Disconnected { reason: String::new() },
            StoreError::Corrupt { key: String::new(), detail: String::new() },
            StoreError::Invalid { detail: String::new() },
        ];
        let classes: std::collections::BTreeSet<&str> = all.iter().map(error_class).collect();
        assert_eq!(classes.len(), all.len(), "one class each");
        assert_eq!(Moved::from_kind("handed_back"), Some(Moved::HandedBack));
        assert_eq!(Moved::from_kind("dispatched"), None);
    }
}
