//! Events of the stores (targets `keel::store`, `keel::store::redis`).

use tracing::{debug, info, warn};

use super::{Text, events};

events! {
    /// What a store backend saw.
    #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
    pub enum StoreEvent<'a> {
        /// The memory store was reset: all data lost (simulated data loss).
        MemoryReset {} = "memory_reset",
        /// The memory store restarted, its data kept or `rolled_back` to a checkpoint.
        MemoryRestarted { rolled_back: bool } = "memory_restarted",
        /// A memory watch lagged behind by `missed` changes (reported as a gap).
        MemoryWatchLagged { missed: u64 } = "memory_watch_lagged",
        /// A Redis watch feed reconnected and reported a gap.
        WatchResubscribed { map: Text<'a> } = "watch_resubscribed",
        /// A Redis watch connection was lost.
        WatchDisconnected { map: Text<'a> } = "watch_disconnected",
        /// A Redis watch connection stopped answering.
        WatchUnresponsive { map: Text<'a> } = "watch_disconnected",
        /// An unparsable change message on a Redis feed (reported as a gap).
        WatchGarbage { map: Text<'a> } = "watch_garbage",
    }
}

pub(super) fn log(e: &StoreEvent<'_>) {
    use StoreEvent as E;
    match e {
        // The memory store's two lines carry no `kind`, as before the seam.
        E::MemoryReset {} => warn!(target: "keel::store", "memory store reset: all data lost"),
        E::MemoryRestarted { rolled_back } => {
            warn!(target: "keel::store", rolled_back, "memory store restarted; leases quarantined once")
        }
        E::MemoryWatchLagged { missed } => debug!(target: "keel::store", missed, "memory watch lagged"),
        E::WatchResubscribed { map } => {
            info!(target: "keel::store::redis", map = %map, kind = "watch_resubscribed", "watch feed reconnected; reported a gap")
        }
        E::WatchDisconnected { map } => {
            warn!(target: "keel::store::redis", map = %map, kind = "watch_disconnected", "watch connection lost")
        }
        E::WatchUnresponsive { map } => {
            warn!(target: "keel::store::redis", map = %map, kind = "watch_disconnected", "watch connection stopped answering")
        }
        E::WatchGarbage { map } => {
            warn!(target: "keel::store::redis", map = %map, kind = "watch_garbage", "unparsable change message; reporting a gap")
        }
    }
}
