//! An operator's view of a pool's store state (also what the simulator audits).

use std::collections::BTreeMap;

use super::state::{CleanupLock, CorruptRecord, KeepAlive, Maps, View, check_value};
use crate::error::StoreError;
use crate::store::{Expect, MapWrite, MemoryStore, Store};

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
    /// Values keel would not have written, in any of the pool's maps (counted nowhere else:
    /// every other field skips them). A corrupt job record blocks its key; see
    /// [`quarantine_corrupt`].
    pub corrupt: Vec<CorruptRecord>,
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
    read(store, pool).await
}

/// [`inspect`] of a [`MemoryStore`]'s data in place, without the scan for corrupt records
/// (`corrupt` left empty) and reading of the job map only its records and pending entries (not
/// its completion tombstones, most of it in a long run): the same report otherwise. The
/// simulator's auditor reads the pool so every quarter second, from every node, as an observer
/// whose reads must not cost the run or the store's checker anything (the sweeps and the job
/// table check every record anyway).
#[doc(hidden)]
pub async fn inspect_in_place(store: &MemoryStore, pool: &str) -> Result<PoolReport, StoreError> {
    let maps = Maps::new(pool);
    let view = View {
        keepalive: store.map_snapshot(&maps.keepalive).await?.entries,
        workers: store.map_snapshot(&maps.workers).await?.entries,
        jobs: store.map_entries_from(&maps.jobs, JOB_RECORDS_FROM),
        cleanup: store.map_snapshot(&maps.cleanup).await?.entries,
        now_ms: store.time_ms().await?,
    };
    Ok(report(&view))
}

/// The first key of the job map a report reads: records (`j/`) and pending entries (`p/`) sort
/// after every completion tombstone (`d/`).
const JOB_RECORDS_FROM: &str = "j/";

async fn read<S: Store>(store: &S, pool: &str) -> Result<PoolReport, StoreError> {
    let maps = Maps::new(pool);
    let meta = store.map_snapshot(&maps.meta).await?.entries;
    let completions_map = format!("keel:pool:{pool}:completions");
    let completions = store.map_snapshot(&completions_map).await?.entries;
    let view = View {
        keepalive: store.map_snapshot(&maps.keepalive).await?.entries,
        workers: store.map_snapshot(&maps.workers).await?.entries,
        jobs: store.map_snapshot(&maps.jobs).await?.entries,
        cleanup: store.map_snapshot(&maps.cleanup).await?.entries,
        now_ms: store.time_ms().await?,
    };
    let mut r = report(&view);
    r.corrupt = view.corrupt(&maps);
    // MC380: the completer's map scanned under the meta map's kind (a copy-pasted row): every
    // completion entry it holds is reported corrupt.
    let completions_kind = if crate::mutants::active(crate::mutants::Mutant::MC380) { "meta" } else { "completions" };
    for (kind, map, entries) in [("meta", &maps.meta, &meta), (completions_kind, &completions_map, &completions)] {
        for (key, raw) in entries {
            if let Err(detail) = check_value(kind, key, raw) {
                r.corrupt.push(CorruptRecord { map: map.clone(), key: key.clone(), raw: raw.clone(), detail });
            }
        }
    }
    Ok(r)
}

/// The report of `view` but for its corrupt records (each field skips them).
fn report(view: &View) -> PoolReport {
    let mut r = PoolReport { now_ms: view.now_ms, ..PoolReport::default() };
    for w in view.known_workers(false) {
        // MC167: the age the wrong way round (0 for any keep-alive written in the past).
        let age = view.keepalive.get(&w).and_then(|v| KeepAlive::parse(v)).map(|k| {
            if crate::mutants::active(crate::mutants::Mutant::MC167) {
                k.ms.saturating_sub(view.now_ms)
            } else {
                view.now_ms.saturating_sub(k.ms)
            }
        });
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
        // MC145: the time left to the deadline reported as the time past it.
        let overdue = if crate::mutants::active(crate::mutants::Mutant::MC145) {
            p.deadline_ms.saturating_sub(view.now_ms)
        } else {
            view.now_ms.saturating_sub(p.deadline_ms)
        };
        r.pending.insert(job.to_owned(), (p.worker, p.attempt, overdue));
    }
    r
}

/// The map corrupt records of pool `pool` are moved to by [`quarantine_corrupt`].
pub fn quarantine_map(pool: &str) -> String {
    format!("keel:pool:{pool}:quarantine")
}

/// Move every corrupt record of pool `pool` out of the way (the operator's repair): each is
/// first copied to [`quarantine_map`] under the key `{map}[{key}]` with its raw value, then
/// deleted from its map guarded by that exact value (a record rewritten meanwhile is left
/// alone). Returns the records moved. Safe to run against a live pool: only values keel cannot
/// read are touched, and a job whose record was garbage can then be dispatched again.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::StoreError> {
/// use keel::store::{MapWrite, MemoryStore, Store};
/// let store = MemoryStore::new();
/// store.map_write("keel:pool:emails:jobs", "j/welcome-42", MapWrite::Set("garbage".into())).await?;
/// assert_eq!(keel::pool::inspect(&store, "emails").await?.corrupt.len(), 1);
/// let moved = keel::pool::quarantine_corrupt(&store, "emails").await?;
/// assert_eq!(moved[0].key, "j/welcome-42");
/// assert!(keel::pool::inspect(&store, "emails").await?.corrupt.is_empty());
/// let kept = store.map_get(&keel::pool::quarantine_map("emails"), "keel:pool:emails:jobs[j/welcome-42]").await?;
/// assert_eq!(kept.0.as_deref(), Some("garbage"));
/// # Ok(()) }
/// ```
pub async fn quarantine_corrupt<S: Store>(store: &S, pool: &str) -> Result<Vec<CorruptRecord>, StoreError> {
    let report = inspect(store, pool).await?;
    let quarantine = quarantine_map(pool);
    let mut moved = Vec::new();
    for c in report.corrupt {
        let at = format!("{}[{}]", c.map, c.key);
        store.map_write(&quarantine, &at, MapWrite::Set(c.raw.clone())).await?;
        let out =
            store.map_txn(&c.map, &[(c.key.clone(), Expect::Value(c.raw.clone()))], &[(c.key.clone(), None)]).await?;
        if out.applied {
            tracing::warn!(target: "keel::pool", kind = "corrupt_record_quarantined", pool, map = %c.map, key = %c.key,
                quarantine = %quarantine, "corrupt pool record moved to the quarantine map");
            moved.push(c);
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place report is `inspect`'s but for the corrupt records, though it skips the
    /// job map's tombstones: the records and pending entries all sort after them. On paused
    /// time: the two reports read the store's time apart, and on the running clock they failed
    /// whenever a millisecond passed between them (ages and `now_ms` off by one).
    #[tokio::test(start_paused = true)]
    async fn the_in_place_report_is_inspects() -> Result<(), StoreError> {
        let store = MemoryStore::new();
        let maps = Maps::new("p");
        let now = store.time_ms().await?;
        for (map, key, raw) in [
            (&maps.keepalive, "w1", format!("{now}")),
            (&maps.workers, "w1", "n0".to_owned()),
            (&maps.workers, "w2", "n1".to_owned()),
            (&maps.cleanup, "w2", format!("n0|{}", now + 500)),
            (&maps.jobs, "d/c", format!("1|w4|{now}")),
            (&maps.jobs, "j/a", "2|w1|10".to_owned()),
            (&maps.jobs, "j/b", "1||20".to_owned()),
            (&maps.jobs, "j/e", "1|w3|30".to_owned()),
            (&maps.jobs, "p/a", format!("2|w1|{}", now.saturating_sub(40))),
            (&maps.jobs, "p/zz", "garbage".to_owned()),
        ] {
            store.map_write(map, key, MapWrite::Set(raw)).await?;
        }
        let full = inspect(&store, "p").await?;
        assert_eq!(full.corrupt.len(), 1, "{:?}", full.corrupt);
        assert_eq!(full.jobs.len(), 3);
        assert_eq!(full.pending.len(), 1);
        assert_eq!(full.workers.len(), 3, "w1, w2, and w3 by its job record: {:?}", full.workers);
        assert_eq!(inspect_in_place(&store, "p").await?, PoolReport { corrupt: Vec::new(), ..full });
        Ok(())
    }
}
