//! An operator's view of a pool's store state (also what the simulator audits).

use std::collections::BTreeMap;

use super::state::{CleanupLock, KeepAlive, Maps, View};
use crate::error::StoreError;
use crate::store::Store;

/// A pool's state as read from the store at one store time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolReport {
    /// Store time of the report (ms).
    pub now_ms: u64,
    /// Every worker with any state, with the age of its keep-alive in ms (None: no keep-alive).
    pub workers: BTreeMap<String, Option<u64>>,
    /// Workers registered in the `workers` map.
    pub registered: Vec<String>,
    /// Cleanup locks: worker → ms until the lock expires (0 if expired).
    pub cleanup_locks: BTreeMap<String, u64>,
    /// Jobs: key → (owner, attempt); owner empty while queued.
    pub jobs: BTreeMap<String, (String, u64)>,
    /// Pending dispatches: key → (worker, attempt, ms past the deadline, 0 if not yet due).
    pub pending: BTreeMap<String, (String, u64, u64)>,
}

/// Read pool `pool`'s state from `store`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::StoreError> {
/// let report = keel::pool::inspect(&keel::MemoryStore::new(), "emails").await?;
/// assert!(report.jobs.is_empty() && report.workers.is_empty());
/// # Ok(()) }
/// ```
pub async fn inspect<S: Store>(store: &S, pool: &str) -> Result<PoolReport, StoreError> {
    let maps = Maps::new(pool);
    let view = View {
        keepalive: store.map_snapshot(&maps.keepalive).await?.entries,
        workers: store.map_snapshot(&maps.workers).await?.entries,
        jobs: store.map_snapshot(&maps.jobs).await?.entries,
        cleanup: store.map_snapshot(&maps.cleanup).await?.entries,
        now_ms: store.time_ms().await?,
    };
    let mut r = PoolReport { now_ms: view.now_ms, ..PoolReport::default() };
    for w in view.known_workers(false) {
        let age = view.keepalive.get(&w).and_then(|v| KeepAlive::parse(v)).map(|k| view.now_ms.saturating_sub(k.ms));
        r.workers.insert(w, age);
    }
    r.registered = view.workers.keys().cloned().collect();
    for (w, v) in &view.cleanup {
        let left = CleanupLock::parse(v).map_or(0, |l| l.expires_ms.saturating_sub(view.now_ms));
        r.cleanup_locks.insert(w.clone(), left);
    }
    for (job, rec) in view.records() {
        r.jobs.insert(job.to_owned(), (rec.owner, rec.attempt));
    }
    for (job, _, p) in view.pendings() {
        r.pending.insert(job.to_owned(), (p.worker, p.attempt, view.now_ms.saturating_sub(p.deadline_ms)));
    }
    Ok(r)
}
