//! The sweeper: every `sweep_interval`, on every node: epoch, re-announce records, pending
//! entries past their deadline, old tombstones and completer entries, queued jobs, then the
//! cleanup of stale workers.

use std::sync::Arc;

use tracing::warn;

use super::feed::JobCompletion;
use super::node::{Core, lock, ms};
use super::state::{self, CorruptRecord, Pending, View, job_key, pending_key};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent};
use crate::store::{Expect, Store};

/// Most corrupt records a node remembers to log once each; past it, further ones are logged
/// on every sweep (an operator has a bigger problem than log volume then).
const GARBAGE_KEYS_MAX: usize = 1024;

/// How many TTLs the completer's map keeps a completed job's entry (at most the dedup window).
const COMPLETER_RETENTION_TTLS: u32 = 10;

impl<S: Store> Core<S> {
    /// One pass of the sweeper: epoch, reconcile local workers, pending entries, queued jobs,
    /// then dead-worker cleanup.
    pub async fn sweep(&self) -> Result<(), StoreError> {
        self.check_epoch().await?;
        let read_at = self.clock.now();
        let mut view = self.view(true).await?;
        self.note_view_read(&view.keepalive, view.now_ms, self.clock.now());
        self.note_garbage(&view.corrupt(&self.maps), true);
        lock(&self.loads).replace(view.records().map(|(j, r)| (j, r.owner)));
        self.observe_tombstones(&view.jobs, "sweep");
        for (job, raw) in view.jobs.iter().filter_map(|(k, v)| Some((k.strip_prefix("j/")?, v))) {
            self.route(job, Some(raw));
        }
        if !mutants::active(Mutant::MP8) {
            for (job, raw, expired) in view.sweepable_pending() {
                let guard = (pending_key(&job), Expect::Value(raw.clone()));
                if expired {
                    let Some(rec_raw) = view.jobs.get(&job_key(&job)).cloned() else { continue };
                    let unacked = Pending::parse(&raw).map(|p| p.worker).unwrap_or_default();
                    let exclude =
                        if view.pick_worker(self.ttl_ms(), &unacked).is_some() { unacked } else { String::new() };
                    self.move_job(&mut view, &job, &rec_raw, Some(guard), &exclude, MoveKind::Redispatched).await?;
                } else {
                    let writes = [(pending_key(&job), None)];
                    let out = self.op("map_txn", self.job_txn(&[guard], &writes)).await?;
                    if out.applied {
                        observe::emit(PoolEvent::PendingSwept { job: (&job).into() });
                    }
                }
            }
        }
        self.sweep_completion_events(&view).await?;
        for (job, raw) in view.old_tombstones(ms(self.cfg.done_retention)) {
            let guard = [(state::done_key(&job), Expect::Value(raw))];
            let writes = [(state::done_key(&job), None)];
            self.op("map_txn", self.job_txn(&guard, &writes)).await?;
        }
        if view.pick_worker(self.ttl_ms(), "").is_some() {
            for (job, rec) in view.queued() {
                self.move_job(&mut view, &job, &rec.encode(), None, "", MoveKind::Assigned).await?;
            }
        }
        let keepalive_only = mutants::active(Mutant::MP7);
        for w in view.stale_workers(self.ttl_ms(), keepalive_only) {
            if lock(&self.local).contains_key(&w) && view.keepalive.contains_key(&w) {
                continue; // our own worker, merely slow: it fences itself; others clean it if it stays stale
            }
            if let Err(e) = self.cleanup(&view, &w, read_at).await {
                warn!(target: "keel::pool", worker = %w, error = %e, "cleanup interrupted; it is retried on the next sweep");
            }
        }
        Ok(())
    }

    /// Log each corrupt record once, when first seen (an ERROR: it blocks its key until an
    /// operator repairs it or calls [`quarantine_corrupt`](super::quarantine_corrupt)). With
    /// `complete` (a full sweep saw every map) records no longer there are forgotten, so a new
    /// corruption of the same key is logged again.
    pub(crate) fn note_garbage(&self, seen: &[CorruptRecord], complete: bool) {
        let mut known = lock(&self.garbage);
        if complete {
            known.retain(|(map, key), raw| seen.iter().any(|c| &c.map == map && &c.key == key && &c.raw == raw));
        }
        for c in seen {
            let id = (c.map.clone(), c.key.clone());
            if known.get(&id) != Some(&c.raw) {
                tracing::error!(target: "keel::pool", kind = "corrupt_record", pool = %self.cfg.name, map = %c.map, key = %c.key,
                    detail = c.detail, "corrupt pool record: it blocks its key until repaired or quarantined (keel::pool::quarantine_corrupt); logged once");
                if known.len() < GARBAGE_KEYS_MAX {
                    known.insert(id, c.raw.clone());
                }
            }
        }
    }

    /// Corrupt records known to this node (seen by the last sweep or a dispatch).
    pub fn corrupt_records(&self) -> usize {
        lock(&self.garbage).len()
    }

    /// The completer's map keeps one entry per completed job (with its payload); drop those
    /// whose job has no record and whose tombstone is gone or older than
    /// [`COMPLETER_RETENTION_TTLS`] TTLs: the map stays bounded by the completion rate even
    /// under a long dedup window.
    pub(crate) async fn sweep_completion_events(&self, view: &View) -> Result<(), StoreError> {
        let map = self.cfg.completer.map();
        let entries = self.op("map_snapshot", self.store.map_snapshot(map)).await?.entries;
        let keep_ms = ms(self.cfg.done_retention.min(self.cfg.worker_ttl * COMPLETER_RETENTION_TTLS));
        let recent = |k: &str| {
            view.jobs
                .get(&state::done_key(k))
                .and_then(|raw| JobCompletion::from_tombstone(k, raw))
                .is_some_and(|c| c.completed_ms.saturating_add(keep_ms) >= view.now_ms)
        };
        let gone: Vec<(String, String)> =
            entries.into_iter().filter(|(k, _)| !view.jobs.contains_key(&job_key(k)) && !recent(k)).collect();
        for chunk in gone.chunks(256) {
            let guards: Vec<_> = chunk.iter().map(|(k, v)| (k.clone(), Expect::Value(v.clone()))).collect();
            let writes: Vec<_> = chunk.iter().map(|(k, _)| (k.clone(), None)).collect();
            // Guarded as a whole: a concurrent rewrite just leaves the chunk to the next sweep.
            self.op("map_txn", self.store.map_txn(map, &guards, &writes)).await?;
        }
        Ok(())
    }

    /// The sweeper task: runs until the node's token is cancelled.
    pub async fn run_sweeper(self: Arc<Self>) {
        loop {
            tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = self.shutdown.cancelled() => return,
                    _ = self.clock.sleep(self.cfg.sweep_interval) => {}
                }
            if let Err(e) = self.sweep().await {
                warn!(target: "keel::pool", error = %e, "sweep failed; retrying next period");
            }
        }
    }
}
