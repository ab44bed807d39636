//! Routing: the node's router follows the job map's feed and hands records to this node's
//! workers (bounded queues, never blocking), tombstones to the completion feed, and owners to
//! the load index.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::feed::Source;
use super::load::LoadIndex;
use super::node::{Assign, Core, lock};
use super::state::JobRecord;
use super::table::JobTable;
use crate::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, PoolEvent, Text};
use crate::store::{MapSnapshot, Store, Watch, WatchEvent};

/// Hand `job`'s record to local worker `worker`'s queue, never blocking: a full queue drops it
/// (`delivery_dropped`) and the next sweep hands it over again.
fn hand_over(tx: &mpsc::Sender<Assign>, worker: &str, job: &str, raw: Option<&str>) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send((job.to_owned(), raw.map(str::to_owned))) {
        observe::emit(PoolEvent::DeliveryDropped { job: job.into(), worker: worker.into() });
    }
}

impl<S: Store> Core<S> {
    /// Tell this node's workers about job `job`'s record (`None`: completed or gone): its owner
    /// starts it, any other worker running it stops. Never blocks: a full queue drops the
    /// message (the periodic reconcile or the pending sweeper delivers it again).
    pub(crate) fn route(&self, job: &str, raw: Option<&str>) {
        // A record goes to its owner; only a feed change (which may revoke someone's run) goes
        // to every local worker, so re-announcements cannot flood the queues.
        let owner = raw.and_then(JobRecord::owner_of);
        let txs: Vec<(String, mpsc::Sender<Assign>)> = {
            let local = lock(&self.local);
            match owner {
                Some(o) => local.get_key_value(o).map(|(w, tx)| (w.clone(), tx.clone())).into_iter().collect(),
                None => local.iter().map(|(w, tx)| (w.clone(), tx.clone())).collect(),
            }
        };
        for (worker, tx) in txs {
            hand_over(&tx, &worker, job, raw);
        }
    }

    /// A sweep's re-delivery of `job`'s record `raw` to its owner, unless the owner already
    /// runs that attempt (it would ignore the repeat). Each sweep re-delivers every record a
    /// local worker owns, through queues that drop what does not fit: sent in key order with
    /// the repeats of running jobs among them, the records that needed it (an ack or a
    /// completion that failed) met a full queue at every sweep and were never run again
    /// (round 43: pool runs with `intake_buffer(1)` stranded jobs for good, P1).
    pub(crate) fn redeliver(&self, job: &str, raw: &str) {
        // MC426: every record re-sent, the repeats of running jobs too.
        if !mutants::active(Mutant::MC426)
            && let Some((attempt, owner)) = JobRecord::head(raw)
            && lock(&self.local_runs).get(job).is_some_and(|ws| ws.iter().any(|(w, a)| w == owner && *a == attempt))
        {
            return;
        }
        self.route(job, Some(raw));
    }

    /// A change from the feed: the owner starts it, a local worker running the job stops a
    /// stale run. Only those get it: a worker that neither owns the job nor runs it ignores
    /// every record of it (`WorkerMachine::on_record`), and each change sent to all the node's
    /// workers cost one message, wake-up and parse per worker and job change.
    /// `loads`: the load index, which takes the job's owner (held by the caller until the job
    /// table took the change too, P83).
    pub(crate) fn route_change(&self, loads: &mut LoadIndex, job: &str, raw: Option<&str>) {
        let owner = raw.and_then(JobRecord::owner_of);
        // MC413: a record's deletion (its job completed) not taken by the index: the job stays
        // counted against its last owner until the next sweep replaces the index.
        if !(owner.is_none() && mutants::active(Mutant::MC413)) {
            loads.set(job, owner);
        }
        let txs: Vec<(String, mpsc::Sender<Assign>)> = {
            let local = lock(&self.local);
            let runs = lock(&self.local_runs);
            let running = runs.get(job).into_iter().flatten().map(|(w, _)| w.as_str()).filter(|w| Some(*w) != owner);
            owner
                .into_iter()
                .chain(running)
                .filter_map(|w| local.get_key_value(w))
                .map(|(w, tx)| (w.clone(), tx.clone()))
                .collect()
        };
        for (worker, tx) in txs {
            hand_over(&tx, &worker, job, raw);
        }
    }

    /// Update the load index with `job`'s record `raw`, which this node's write made at revision
    /// `rev` (a dispatch, a move): unless the router took that change already, and maybe later
    /// ones of the job (a quick job's completion can beat its dispatch's reply home), in which
    /// case the index holds what the table does. Noting the write's owner then put a completed
    /// job back in the index, counted against its worker until the next sweep replaced it (a
    /// keel bug until round 43: 163 times in poolfeed seeds 0..200; P83, MC414).
    pub(crate) fn note_written(&self, job: &str, raw: &str, rev: u64) {
        // MC449: the node's own write not noted: its index counts it a feed delay later.
        if mutants::active(Mutant::MC449) {
            return;
        }
        let mut loads = lock(&self.loads);
        let table = lock(&self.table);
        let taken = table.applied_rev() >= rev;
        // MC414: the write's owner noted whatever the router took since.
        let owner = if taken && !mutants::active(Mutant::MC414) {
            table.value(&super::state::job_key(job)).and_then(JobRecord::owner_of)
        } else {
            JobRecord::owner_of(raw)
        };
        loads.set(job, owner);
        if taken {
            index_follows_table(&table, &loads, job, rev);
        }
    }

    /// Offer every tombstone of a job-map snapshot to the completion feed (`why`: what
    /// prompted the reconcile, for the event).
    /// `waits_before`: the feed's [`read_mark`](super::feed::Feed::read_mark) as the read began.
    pub fn observe_tombstones(
        &self,
        jobs: &BTreeMap<String, String>,
        why: &'static str,
        source: Source,
        waits_before: u64,
    ) {
        let tombs = jobs.iter().filter_map(|(k, v)| Some((k.strip_prefix("d/")?, v.as_str())));
        let d = self.feed.observe_read(tombs, source, waits_before);
        // MC451: a resync announced at every read but the start's, news or none.
        if (d.news > 0 || mutants::active(Mutant::MC451)) && why != "start" {
            observe::emit(PoolEvent::FeedResynced { why: why.into(), completions: d.news });
        }
        if d.dropped > 0 {
            observe::emit(PoolEvent::FeedDropped { dropped: d.dropped });
        }
    }

    /// Rebuild the job table from `snap`, a whole snapshot of the job map read because of `why`,
    /// and wake a sweep waiting for it (`job_table_rebuilt`: in the steady state there are
    /// none, and their cost grows with the retained tombstones).
    /// `feed_gaps` and `took_us`: see `job_table_rebuilt`.
    pub(crate) fn resync_table(&self, snap: &MapSnapshot, why: &'static str, feed_gaps: u64, took_us: u64) {
        let replaced = lock(&self.table).replace(snap);
        observe::emit(PoolEvent::TableRebuilt {
            pool: self.cfg.name.as_str().into(),
            why: why.into(),
            rev: snap.rev,
            entries: snap.entries.len(),
            replaced,
            feed_gaps,
            took_us,
        });
        // MC221: the rebuild wakes no waiting sweep, which sleeps to its op timeout (round 23 A #10).
        if replaced && !mutants::active(Mutant::MC221) {
            self.table_moved.notify_waiters();
        }
    }

    /// The feed reported a gap, or the table found a hole in it: rebuild the table and
    /// reconcile the completion feed from a fresh snapshot now (the sweeper would within a
    /// period; assignments need nothing, the sweeper re-announces). Returns whether it read one.
    /// A sweep's reconcile of a table with a hole, or a feed too far behind, is the same read
    /// (`why` "sweep"). The gaps it heals are those reported before its request: a gap reported
    /// while it is read may have lost changes the snapshot predates.
    pub(crate) async fn resync_feed(&self, why: &'static str) -> Result<(), StoreError> {
        let mut gaps = self.feed.gaps();
        let began = self.clock.now();
        let waits_before = self.feed.read_mark();
        let snap = self.op("map_snapshot", self.store.map_snapshot(&self.maps.jobs)).await?;
        if mutants::active(Mutant::MC274) {
            gaps = self.feed.gaps(); // MC274: the gaps read once the snapshot is in
        }
        let took_us = observe::micros(self.clock.now().saturating_duration_since(began));
        self.resync_table(&snap, why, gaps, took_us);
        self.observe_tombstones(&snap.entries, why, Source::Whole { gaps }, waits_before);
        Ok(())
    }

    /// [`resync_feed`](Self::resync_feed) until a snapshot is read (or the node stops), one
    /// attempt per sweep interval, without reading the feed meanwhile: the watch buffers the
    /// changes (a full buffer reports a gap, resynced in turn). A router that went on reading
    /// would hand each change to a table out of sync, which drops it; then a sweep's snapshot
    /// read before the last change consumed would put the table back in sync behind the feed,
    /// and the next change would look like a hole: one more whole snapshot, and a hole no store
    /// made (P25 judges the feed's own holes).
    async fn resync_feed_until_done(&self, why: &'static str) {
        let pool = || Text::from(self.cfg.name.as_str());
        loop {
            let began = self.clock.now();
            let r = self.resync_feed(why).await;
            let took_us = observe::micros(self.clock.now().saturating_duration_since(began));
            let e = match r {
                Ok(()) => return observe::emit(PoolEvent::RouterResynced { pool: pool(), took_us }),
                Err(e) => e,
            };
            // MC117: the wait and its announcement the cleanup backoff's floor.
            let wait =
                if mutants::active(Mutant::MC117) { self.cfg.cleanup_backoff.0 } else { self.cfg.sweep_interval };
            let retry_us = observe::micros(wait);
            observe::emit(PoolEvent::RouterResyncFailed { pool: pool(), took_us, retry_us, error: Text::display(&e) });
            if mutants::active(Mutant::MC113) {
                continue; // MC113: retried at once, a snapshot of the whole job map per round trip
            }
            if mutants::active(Mutant::MC123) {
                self.clock.sleep(wait).await; // MC123: the wait deaf to the stop
                continue;
            }
            tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.shutdown.cancelled() => return,
                _ = self.clock.sleep(wait) => {}
            }
        }
    }

    /// The router: follows the job map's feed and hands new assignments to local workers, and
    /// new tombstones to the completion feed. On a gap, or a hole the table finds, the table and
    /// the completion feed are resynced from a snapshot at once, by the router itself: while it
    /// reads, the watch buffers the changes made meanwhile, which then apply on top. (A table left
    /// out of sync until a sweep rebuilt it would drop every change the router consumed during
    /// that sweep's read, find a hole again at the next change, and be rebuilt by every sweep:
    /// whole snapshots of the job map in the steady state.) Assignments need no resync (the
    /// sweeper re-announces every period).
    pub async fn run_router(self: Arc<Self>) {
        // MC445: the router gone at once, the sweeps left to do its work.
        if mutants::active(Mutant::MC445) {
            return;
        }
        let Some(mut watch) = self.open_watch(&self.maps.jobs).await else { return };
        // Watch first, then snapshot (docs/rmap.md): nothing written after the watch opened is
        // missed, and the baseline resolves waiters of jobs completed before it.
        self.resync_feed_until_done("start").await;
        loop {
            let ev = tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.shutdown.cancelled() => return,
                ev = watch.next() => ev,
            };
            match ev {
                WatchEvent::Change(c) => {
                    // A table out of sync that the router did not put there: a sweep found the
                    // store had lost its data (its epoch marker changed) and called `gap()`. The
                    // table would drop this change (`Step::Skip`), and the sweep's own snapshot,
                    // read before this change was committed but landing after it, would put the
                    // table back in sync behind what the router consumed: the next change a hole
                    // no store made (poolloss seed 201: a resync at R, the sweep's gap, change R+1
                    // dropped, the sweep's snapshot at R, change R+2 a `feed_hole`, P25). So the
                    // router resyncs first, as for a gap: its snapshot, read after this change
                    // arrived, holds it, and the watch buffers the changes made meanwhile. (The
                    // completion feed missed nothing: it takes every change's tombstone, synced
                    // table or not, so no `feed.gap()`.)
                    if !lock(&self.table).is_synced() {
                        self.resync_feed_until_done("data_loss").await;
                    }
                    let rev = c.rev;
                    let hole = {
                        // The load index is held until the table took the change: both follow the
                        // feed in one step, and P83 compares them after it.
                        let mut loads = lock(&self.loads);
                        if let Some(job) = c.key.strip_prefix("j/") {
                            self.route_change(&mut loads, job, c.value.as_deref());
                        } else if let (Some(job), Some(raw)) = (c.key.strip_prefix("d/"), c.value.as_deref()) {
                            let d = self.feed.observe_change(job, raw, rev);
                            if d.dropped > 0 {
                                observe::emit(PoolEvent::FeedDropped { dropped: d.dropped });
                            }
                        }
                        // Last: the table takes the change's strings.
                        let job = crate::assert::ENABLED.then(|| c.key.strip_prefix("j/").map(str::to_owned)).flatten();
                        let mut table = lock(&self.table);
                        let hole = table.apply(c);
                        if let Some(job) = job.filter(|_| table.applied_rev() == rev) {
                            index_follows_table(&table, &loads, &job, rev); // applied, not skipped
                        }
                        hole
                    };
                    if !mutants::active(Mutant::MC262) {
                        self.table_moved.notify_waiters(); // MC262: a change wakes no waiting sweep
                    }
                    if let Some(expected) = hole {
                        self.feed.gap();
                        let feed_gaps = self.feed.gaps();
                        observe::emit(PoolEvent::FeedHole { pool: (&self.cfg.name).into(), expected, rev, feed_gaps });
                        if mutants::active(Mutant::MC124) {
                            let _ = self.resync_feed("hole").await; // MC124: one silent try
                            continue;
                        }
                        self.resync_feed_until_done("hole").await
                    }
                }
                WatchEvent::Gap => {
                    lock(&self.table).gap();
                    if !mutants::active(Mutant::MC273) {
                        self.feed.gap(); // MC273: the completion feed is not told
                    }
                    observe::emit(PoolEvent::RouterGap { pool: (&self.cfg.name).into(), feed_gaps: self.feed.gaps() });
                    self.resync_feed_until_done("gap").await
                }
            }
        }
    }
}

/// The load index names the owner the job table holds for `job` (P83, checked wherever keel is
/// proven, under both locks): once the router applied a change of the job's record at `rev`
/// (both follow the same feed in one step), and once this node noted its own write of it at
/// `rev` when the table had taken that revision already. An index entry left behind (a
/// completion or a move the index did not take, or a write noted over the router's later
/// change) skews every later pick toward the wrong workers until the next sweep replaces the
/// index, and a pick's slack (P59's 8 jobs) hides it while the drift is small: blind-spot hunt,
/// round 43, B #1.
fn index_follows_table(table: &JobTable, loads: &LoadIndex, job: &str, rev: u64) {
    let held = table.value(&format!("j/{job}")).and_then(JobRecord::owner_of);
    let indexed = loads.owner(job);
    crate::keel_assert!(
        held == indexed,
        "load index out of step with the job table at revision {rev}: job {job} owned by {held:?} in the table, {indexed:?} in the index"
    );
}
