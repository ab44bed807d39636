//! The sweeper: every `sweep_interval`, on every node: epoch, re-announce records, pending
//! entries past their deadline, old tombstones and completer entries, queued jobs, then the
//! cleanup of stale workers.

use std::sync::Arc;

use tracing::warn;

use super::feed::{JobCompletion, Source};
use super::node::{Core, lock, ms};
use super::state::{self, CorruptRecord, Pending, View, job_key, pending_key};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent};
use crate::store::{Expect, MapScan, MapTxn, Read, ReadOuts, Store};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Most corrupt records a node remembers to log once each; past it, further ones are logged
/// on every sweep (an operator has a bigger problem than log volume then).
const GARBAGE_KEYS_MAX: usize = 1024;

/// Fewest entries one sweep asks of each map it reconciles (see [`Core::reconcile_slice_len`]).
const RECONCILE_SLICE_MIN: usize = 16;

/// Most entries one sweep asks of each map it reconciles: bounds a sweep's reads (and the store's
/// work for them) whatever the maps' sizes. Reading an entry costs Redis ~1.3 µs (`HSCAN`'s reply,
/// measured), so this adds at most ~0.2 ms of Redis CPU to a sweep of ~0.5 ms. A job map larger
/// than half this many entries per sweep of the reconcile's period takes longer than the period
/// for a full pass (docs/benchmarks.md, "Sliced reconcile").
pub(crate) const RECONCILE_SLICE_MAX: usize = 128;

/// Slack of the slice length over an even split of the map across the period's sweeps: a pass
/// still ends within the period when the map grows during it or a slice comes back short
/// (`map_scan`'s count is a hint).
const RECONCILE_SLICE_SLACK: usize = 2;

/// Most old tombstones one sweep deletes (the next sweep goes on): a sweep after a long outage
/// stays short.
const TOMBSTONE_DELETES_PER_SWEEP_MAX: usize = 4096;

/// Old tombstones deleted per round trip.
const TOMBSTONE_DELETE_BATCH: usize = 64;

/// How many TTLs the completer's map keeps a completed job's entry (at most the dedup window).
const COMPLETER_RETENTION_TTLS: u32 = 10;

impl<S: Store> Core<S> {
    /// One pass of the sweeper: epoch, reconcile local workers, pending entries, old
    /// tombstones, queued jobs, then dead-worker cleanup. Reads the small maps (one entry per
    /// worker) from the store and the job map from the node's [`JobTable`]: no snapshot of the
    /// job map in the steady state, and work on tombstones only for those past the retention.
    /// Each sweep also reconciles one bounded slice of the job map and of the completer's map
    /// (see [`reconcile_slice_len`](Self::reconcile_slice_len)).
    ///
    /// [`JobTable`]: super::table::JobTable
    pub async fn sweep(&self) -> Result<(), StoreError> {
        let read_at = self.clock.now();
        let (mut view, completer_slice) = self.sweep_view().await?;
        self.note_view_read(&view.keepalive, view.now_ms, self.clock.now());
        self.note_garbage(&self.sweep_garbage(&view), true);
        lock(&self.loads).replace(view.owners());
        // The router hands every tombstone of the feed to the completion feed and the table is
        // gap-free, so nothing is left to reconcile here: only forget old deliveries.
        self.feed.observe(std::iter::empty(), Source::Slice);
        for (job, raw) in view.jobs.iter().filter_map(|(k, v)| Some((k.strip_prefix("j/")?, v))) {
            self.redeliver(job, raw);
        }
        if !mutants::active(Mutant::MP8) {
            for (job, raw, expired) in view.sweepable_pending() {
                let guard = (pending_key(&job), Expect::Value(raw.clone()));
                if expired {
                    let Some(rec_raw) = view.jobs.get(&job_key(&job)).cloned() else { continue };
                    let unacked = Pending::parse(&raw).map(|p| p.worker).unwrap_or_default();
                    let exclude =
                        if view.pick_worker(self.ttl_ms(), &unacked).is_some() { unacked } else { String::new() };
                    // MC54: the worker that did not ack is not excluded.
                    let exclude = if mutants::active(Mutant::MC54) { String::new() } else { exclude };
                    // MC55: the move is not guarded by the pending entry the sweep read.
                    let guard = (!mutants::active(Mutant::MC55)).then_some(guard);
                    self.move_job(&mut view, &job, &rec_raw, guard, &exclude, MoveKind::Redispatched).await?;
                } else {
                    let writes = vec![(pending_key(&job), None)];
                    let out = self.op("map_txn", self.job_txn(vec![guard], writes)).await?;
                    if out.applied {
                        observe::emit(PoolEvent::PendingSwept { job: (&job).into() });
                    }
                }
            }
        }
        self.sweep_completion_events(&view, completer_slice).await?;
        self.delete_old_tombstones(view.now_ms).await?;
        // MC256: the queued jobs assigned without asking for a live worker first.
        if view.pick_worker(self.ttl_ms(), "").is_some() || mutants::active(Mutant::MC256) {
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

    /// How many entries one sweep asks of a map it reconciles, for a job map of `len` entries:
    /// an even split of the map over the sweeps of one reconcile period (half the completer's
    /// retention, node time), with [`RECONCILE_SLICE_SLACK`], in
    /// `RECONCILE_SLICE_MIN..=RECONCILE_SLICE_MAX`. A full pass over the map then ends within the
    /// period (as the whole read once per period used to) while the split is under
    /// `RECONCILE_SLICE_MAX / RECONCILE_SLICE_SLACK` entries per sweep; past that a sweep's cost
    /// stays bounded and the pass takes longer. The completer's map holds at most
    /// one entry per tombstone and record, so the job map's size serves it too.
    pub(crate) fn reconcile_slice_len(&self, len: usize) -> usize {
        let period = self.completer_retention() / 2;
        let sweeps = (period.as_millis() / self.cfg.sweep_interval.as_millis().max(1)).max(1);
        let sweeps = usize::try_from(sweeps).unwrap_or(usize::MAX);
        len.saturating_mul(RECONCILE_SLICE_SLACK).div_ceil(sweeps).clamp(RECONCILE_SLICE_MIN, RECONCILE_SLICE_MAX)
    }

    /// How long the completer's map keeps a completed job's entry.
    fn completer_retention(&self) -> Duration {
        if mutants::active(Mutant::MC431) {
            return self.cfg.done_retention; // MC431: the dedup window alone
        }
        self.cfg.done_retention.min(self.cfg.worker_ttl * COMPLETER_RETENTION_TTLS)
    }

    /// Reconcile a slice of the job map read from the table's cursor `cursor` with the table:
    /// wait until the table holds every change up to the slice's revision, then take in what was
    /// written or deleted behind keel's back ([`JobTable::reconcile`]) and offer the slice's
    /// tombstones to the completion feed.
    ///
    /// [`JobTable::reconcile`]: super::table::JobTable::reconcile
    /// `waits_before`: the feed's read mark as the slice's read began.
    async fn reconcile_slice(&self, cursor: &str, slice: &MapScan, waits_before: u64) -> Result<(), StoreError> {
        self.await_table(slice.rev).await?;
        let r = lock(&self.table).reconcile(cursor, slice);
        if r.found > 0 || r.dropped > 0 {
            observe::emit(PoolEvent::TableReconciled {
                pool: (&self.cfg.name).into(),
                found: r.found,
                dropped: r.dropped,
            });
            self.table_moved.notify_waiters();
        }
        self.observe_tombstones(&slice.entries, "sweep", Source::Slice, waits_before);
        Ok(())
    }

    /// The sweep's view, in two batches of reads (two round trips), in the order
    /// [`view`](Core::view) reads: the epoch marker, keep-alives and one slice of the job map
    /// with its revision `R`; then the jobs in flight from the table once it holds every change
    /// up to `R`; then registrations, cleanup locks, store time and one slice of the completer's
    /// map (returned beside the view, for [`sweep_completion_events`](Self::sweep_completion_events)).
    /// A changed epoch marker (the store lost its data) empties the table before it is read.
    async fn sweep_view(&self) -> Result<(View, MapScan), StoreError> {
        let snapshot = |map: &String| Read::Snapshot { map: map.clone() };
        let (jobs_cursor, count) = {
            let table = lock(&self.table);
            (table.scan_cursor().to_owned(), self.reconcile_slice_len(table.len()))
        };
        let completer_cursor = lock(&self.completer_cursor).clone();
        let completer_scan =
            Read::Scan { map: self.cfg.completer.map().to_owned(), cursor: completer_cursor.clone(), count };
        // The completer's slice is read before the job map's: an entry is written only after its
        // job's completion applied, so every entry of the slice has its tombstone at or below
        // the job slice's revision, which the table holds before the entries are judged. Read
        // after it, an entry could be younger than the table: its job's record gone from the
        // view and its tombstone not yet in the table, it was deleted at once (P44 at poolfeed
        // seed 1340: 173 ms after its job completed). MC210 reads it in the second batch.
        let completer_first = !mutants::active(Mutant::MC210);
        let first: Vec<Read> = [
            Read::Get { map: self.maps.meta.clone(), key: state::EPOCH_KEY.to_owned() },
            snapshot(&self.maps.keepalive),
        ]
        .into_iter()
        .chain(completer_first.then(|| completer_scan.clone()))
        .chain([Read::Scan { map: self.maps.jobs.clone(), cursor: jobs_cursor.clone(), count }])
        .collect();
        let began = self.clock.now();
        let waits_before = self.feed.read_mark();
        let mut out = ReadOuts::new(self.op("reads", self.store.reads(&first)).await?);
        let (epoch, keepalive) = (out.get()?.0, out.snapshot()?.entries);
        let early_completer_slice = if completer_first { Some(out.scan()?) } else { None };
        let jobs_slice = out.scan()?;
        let losses = self.data_losses.load(Ordering::Relaxed);
        self.adopt_epoch(epoch, began).await?;
        // MC462: the test turned round: every sweep without a data loss marks the table out
        // of step, so every sweep rebuilds it from a whole snapshot of the job map.
        if (self.data_losses.load(Ordering::Relaxed) != losses) != mutants::active(Mutant::MC462) {
            lock(&self.table).gap(); // the store lost its data: what the table holds is gone
        }
        self.reconcile_slice(&jobs_cursor, &jobs_slice, waits_before).await?;
        let jobs = lock(&self.table).live().clone();
        let second: Vec<Read> = [snapshot(&self.maps.workers), snapshot(&self.maps.cleanup), Read::Time]
            .into_iter()
            .chain(early_completer_slice.is_none().then_some(completer_scan))
            .collect();
        let mut out = ReadOuts::new(self.op("reads", self.store.reads(&second)).await?);
        let (workers, cleanup, now_ms) = (out.snapshot()?.entries, out.snapshot()?.entries, out.time()?);
        let completer_slice = match early_completer_slice {
            Some(slice) => slice,
            None => out.scan()?,
        };
        {
            let mut at = lock(&self.completer_cursor);
            if *at == completer_cursor {
                at.clone_from(&completer_slice.next); // else another sweep moved the pass on meanwhile
            }
        }
        Ok((View { now_ms, keepalive, workers, jobs, cleanup }, completer_slice))
    }

    /// Wait (up to `op_timeout`) until the router has applied every change of the job map up
    /// to revision `store_rev`; if the feed does not get there (a lagging or restarting router)
    /// or has a hole (a gap, a dropped change), rebuild the table from one snapshot.
    async fn await_table(&self, store_rev: u64) -> Result<(), StoreError> {
        let began = self.clock.now();
        // MC279: a deadline already past (a sign slip): any lag rebuilds the table at once.
        let deadline = if mutants::active(Mutant::MC279) { began } else { began + self.cfg.op_timeout };
        // `table_rev` read under the table's lock, which the caller may hold.
        let awaited = |outcome: &'static str, table_rev: u64| {
            observe::emit(PoolEvent::TableAwaited {
                pool: self.cfg.name.as_str().into(),
                rev: store_rev,
                waited_us: observe::micros(self.clock.now().saturating_duration_since(began)),
                outcome: outcome.into(),
                table_rev,
            });
        };
        let mut waited = false;
        let outcome = loop {
            let moved = self.table_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable(); // registered before the check, so no wake-up is missed
            {
                let table = lock(&self.table);
                if table.is_fresh(store_rev) {
                    if waited {
                        awaited("fresh", table.applied_rev());
                    }
                    return Ok(());
                }
                if !table.is_synced() {
                    break "hole"; // a hole in the feed: waiting cannot fill it
                }
            }
            waited = true;
            tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = &mut moved => {}
                _ = self.clock.sleep_until(deadline) => break "timeout",
            }
        };
        let table_rev = lock(&self.table).applied_rev();
        awaited(outcome, table_rev);
        // The table has a hole (start, gap) or the feed lags too far behind.
        self.resync_feed("sweep").await
    }

    /// Corrupt records of the view's maps and of the job table, in map and key order.
    fn sweep_garbage(&self, view: &View) -> Vec<CorruptRecord> {
        let mut seen = view.corrupt(&self.maps);
        let table = lock(&self.table);
        for (key, raw) in table.corrupt() {
            if let Err(detail) = state::check_value("jobs", key, raw) {
                seen.push(CorruptRecord {
                    map: self.maps.jobs.clone(),
                    key: key.to_owned(),
                    raw: raw.to_owned(),
                    detail,
                });
            }
        }
        seen
    }

    /// Delete the completion tombstones older than `done_retention` (a range of the table's
    /// time index), each guarded by its exact value, in batches of one round trip each.
    async fn delete_old_tombstones(&self, now_ms: u64) -> Result<(), StoreError> {
        let window = match () {
            // MC428: the worker TTL read for the dedup window.
            _ if mutants::active(Mutant::MC428) => ms(self.cfg.worker_ttl),
            // MC429: the window in microseconds against a store time in milliseconds.
            _ if mutants::active(Mutant::MC429) => {
                u64::try_from(self.cfg.done_retention.as_micros()).unwrap_or(u64::MAX)
            }
            _ => ms(self.cfg.done_retention),
        };
        let before = now_ms.saturating_sub(window);
        let old = lock(&self.table).tombstones_before(before, TOMBSTONE_DELETES_PER_SWEEP_MAX);
        for chunk in old.chunks(TOMBSTONE_DELETE_BATCH) {
            let txns: Vec<MapTxn> = chunk
                .iter()
                .map(|(job, raw)| MapTxn {
                    guards: vec![(state::done_key(job), Expect::Value(raw.clone()))],
                    writes: vec![(state::done_key(job), None)],
                })
                .collect();
            self.op("map_txns", self.store.map_txns(&self.maps.jobs, &txns)).await?;
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
    /// under a long dedup window. One slice per sweep, a pass per reconcile period (see
    /// [`reconcile_slice_len`](Self::reconcile_slice_len)): entries live at most 1.5 retentions
    /// while the slices keep up.
    pub(crate) async fn sweep_completion_events(&self, view: &View, slice: MapScan) -> Result<(), StoreError> {
        let keep_ms = ms(self.completer_retention());
        let map = self.cfg.completer.map();
        let entries = slice.entries;
        let (gone, newest_done_ms): (Vec<(String, String)>, Option<u64>) = {
            let table = lock(&self.table);
            let recent = |done_ms: Option<u64>| {
                done_ms.is_some_and(|ms| {
                    let until = ms.saturating_add(keep_ms);
                    // MC238: an entry exactly at its retention taken for old.
                    if crate::mutants::active(crate::mutants::Mutant::MC238) {
                        until > view.now_ms
                    } else {
                        until >= view.now_ms
                    }
                }) && !crate::mutants::active(crate::mutants::Mutant::MC174) // MC174: no retention
            };
            // The entries whose job has no record in the view and no recent tombstone, and the
            // newest of their tombstones' times. Both keys of an entry's job are built in one
            // buffer (a slice holds up to `RECONCILE_SLICE_MAX` entries, every sweep).
            let (mut gone, mut newest) = (Vec::new(), None);
            let mut key = String::new();
            for (k, v) in entries {
                key.clear();
                key.push_str("j/");
                key.push_str(&k);
                if view.jobs.contains_key(key.as_str()) {
                    continue;
                }
                key.clear();
                key.push_str("d/");
                key.push_str(&k);
                let done_ms = table.tombstone_at(&key).and_then(JobCompletion::completed_ms_of);
                if recent(done_ms) {
                    continue;
                }
                newest = newest.max(done_ms);
                gone.push((k, v));
            }
            (gone, newest)
        };
        // MC450: the test turned round: an empty drop announced, a real one not.
        if gone.is_empty() == mutants::active(Mutant::MC450) {
            let (n, now_ms, retention_ms) = (gone.len(), view.now_ms, keep_ms);
            observe::emit(PoolEvent::CompleterEntriesDropping { n, newest_done_ms, now_ms, retention_ms });
        }
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
