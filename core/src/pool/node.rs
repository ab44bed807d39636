//! The node: dispatch, the sweeper (pending entries, queued jobs, epoch) and the cleaner of
//! dead workers, plus the router that hands assignments to this node's workers.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::cleanup::{Attempt, Cleanup, Command, LockMap, Outcome, Reply};
use super::feed::{Feed, JobCompletion};
use super::load::LoadIndex;
use super::state::{self, CorruptRecord, DEAD, JobRecord, Maps, Pending, View, job_key, pending_key};
use super::{PoolConfig, PoolError};
use crate::clock::{Clock, Instant};
use crate::completer::{Completer, SubscriptionManager};
use crate::error::StoreError;
use crate::metrics as keel_metrics;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::{Expect, MapWrite, Store, Watch, WatchEvent};

/// An assignment handed to a local worker: the job and its record's raw value.
pub(crate) type Assign = (String, Option<String>);

/// Most corrupt records a node remembers to log once each; past it, further ones are logged
/// on every sweep (an operator has a bigger problem than log volume then).
const GARBAGE_KEYS_MAX: usize = 1024;

/// How many TTLs of store time the completion feed remembers what it delivered: more than a
/// completion's retries can take between its time read and its write (cleanup_retries ×
/// (op_timeout + backoff) < 2·ttl with the defaults).
const FEED_HORIZON_TTLS: u64 = 4;

/// How many TTLs the completer's map keeps a completed job's entry (at most the dedup window).
const COMPLETER_RETENTION_TTLS: u32 = 10;

pub(crate) struct Core<S: Store> {
    pub store: S,
    pub cfg: PoolConfig,
    pub maps: Maps,
    pub clock: Arc<dyn Clock>,
    pub incarnation: u64,
    pub shutdown: Shutdown,
    next_worker: AtomicU64,
    local: Mutex<BTreeMap<String, mpsc::Sender<Assign>>>,
    /// Job owners as last seen (sweep snapshots, feed, own writes): dispatch's load source.
    loads: Mutex<LoadIndex>,
    epoch: Mutex<Option<String>>,
    pub data_losses: AtomicU64,
    /// Worker incarnations of this node whose task runs.
    pub live_workers: AtomicU64,
    pub worker_deaths: AtomicU64,
    pub worker_replacements: AtomicU64,
    /// Corrupt records seen by the last sweep (map, key) → value: each is logged once, when
    /// first seen, and forgotten once it is gone (repaired or quarantined).
    garbage: Mutex<BTreeMap<(String, String), String>>,
    /// Batches completion events (each worker is a producer) and owns their channel.
    pub completer: Completer<S>,
    /// Distributes the completer's events to the node's subscribers.
    pub events: SubscriptionManager,
    /// The pool-wide completion feed (tombstones from the job map's feed and snapshots).
    pub feed: Feed,
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Store> Core<S> {
    pub fn new(store: S, cfg: PoolConfig, clock: Arc<dyn Clock>, incarnation: u64, shutdown: Shutdown) -> Self {
        let maps = Maps::new(&cfg.name);
        let completer = Completer::new(store.clone(), cfg.completer.clone()).with_clock(clock.clone());
        let events = SubscriptionManager::new(&completer);
        let feed = Feed::new(incarnation, ms(cfg.worker_ttl) * FEED_HORIZON_TTLS);
        Core {
            feed,
            completer,
            events,
            store,
            cfg,
            maps,
            clock,
            incarnation,
            shutdown,
            next_worker: AtomicU64::new(1),
            local: Mutex::new(BTreeMap::new()),
            loads: Mutex::new(LoadIndex::default()),
            epoch: Mutex::new(None),
            data_losses: AtomicU64::new(0),
            live_workers: AtomicU64::new(0),
            worker_deaths: AtomicU64::new(0),
            worker_replacements: AtomicU64::new(0),
            garbage: Mutex::new(BTreeMap::new()),
        }
    }

    /// Once the node's token is cancelled: stop the completer (it waits for every worker's
    /// producer, i.e. for the workers' drain, then flushes) and then the subscription manager
    /// (it delivers everything flushed, then closes the subscriptions).
    pub async fn close_completions(self: Arc<Self>) {
        self.shutdown.cancelled().await;
        if let Err(e) = self.completer.stop().await {
            observe::emit(PoolEvent::CompletionEventsUnflushed { error: Text::display(&e) });
        }
        self.events.stop().await;
    }

    pub fn ttl_ms(&self) -> u64 {
        ms(self.cfg.worker_ttl)
    }

    /// Run a store operation with the configured timeout on the local clock.
    pub async fn op<T>(
        &self,
        name: &'static str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let r = tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            r = fut => r,
            _ = self.clock.sleep(self.cfg.op_timeout) => Err(StoreError::Timeout { op: name }),
        };
        if let Err(e) = &r {
            keel_metrics::store_error("pool", e);
        }
        r
    }

    pub fn new_worker_id(&self) -> String {
        let n = self.next_worker.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{}", self.cfg.node, self.incarnation, n)
    }

    pub fn register_local(&self, id: &str, tx: mpsc::Sender<Assign>) {
        lock(&self.local).insert(id.to_owned(), tx);
    }

    pub fn unregister_local(&self, id: &str) {
        lock(&self.local).remove(id);
    }

    /// A worker incarnation's task started (+1) or ended (-1).
    pub fn live_workers_changed(&self, delta: i64) {
        if delta >= 0 {
            self.live_workers.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            let prev = self.live_workers.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            assert!(prev >= delta.unsigned_abs(), "live worker count went below zero");
        }
        keel_metrics::workers_live(self.live_workers.load(Ordering::Relaxed));
    }

    /// One of this node's workers died (cleaned up by the pool, or panicked).
    pub fn worker_died(&self) {
        self.worker_deaths.fetch_add(1, Ordering::Relaxed);
    }

    /// A dead worker was replaced by a fresh incarnation.
    pub fn worker_replaced(&self) {
        self.worker_replacements.fetch_add(1, Ordering::Relaxed);
    }

    /// Tell this node's workers about job `job`'s record (`None`: completed or gone): its owner
    /// starts it, any other worker running it stops. Never blocks: a full queue drops the
    /// message (the periodic reconcile or the pending sweeper delivers it again).
    fn route(&self, job: &str, raw: Option<&str>) {
        // A record goes to its owner; only a feed change (which may revoke someone's run) goes
        // to every local worker, so re-announcements cannot flood the queues.
        let owner = raw.and_then(JobRecord::parse).map(|r| r.owner);
        let txs: Vec<mpsc::Sender<Assign>> = {
            let local = lock(&self.local);
            match &owner {
                Some(o) => local.get(o).cloned().into_iter().collect(),
                None => local.values().cloned().collect(),
            }
        };
        for tx in txs {
            if tx.try_send((job.to_owned(), raw.map(str::to_owned))).is_err() {
                debug!(target: "keel::pool", job, "worker queue full; assignment left to the reconcile");
            }
        }
    }

    /// A change from the feed: the owner starts it, every other local worker stops a stale run.
    fn route_change(&self, job: &str, raw: Option<&str>) {
        self.note_owner(job, raw);
        let txs: Vec<mpsc::Sender<Assign>> = lock(&self.local).values().cloned().collect();
        for tx in txs {
            let _ = tx.try_send((job.to_owned(), raw.map(str::to_owned)));
        }
    }

    /// Update the load index with `job`'s record (`None` or unparsable: gone).
    fn note_owner(&self, job: &str, raw: Option<&str>) {
        let owner = raw.and_then(JobRecord::parse).map(|r| r.owner);
        lock(&self.loads).set(job, owner.as_deref());
    }

    /// Snapshot the maps the decisions need, then read store time (so every keep-alive in the
    /// view is at most `now_ms`: liveness is never judged against a future keep-alive).
    pub async fn view(&self, all: bool) -> Result<View, StoreError> {
        let keepalive = self.op("map_snapshot", self.store.map_snapshot(&self.maps.keepalive)).await?.entries;
        let jobs = self.op("map_snapshot", self.store.map_snapshot(&self.maps.jobs)).await?.entries;
        let (workers, cleanup) = if all {
            (
                self.op("map_snapshot", self.store.map_snapshot(&self.maps.workers)).await?.entries,
                self.op("map_snapshot", self.store.map_snapshot(&self.maps.cleanup)).await?.entries,
            )
        } else {
            Default::default()
        };
        let now_ms = self.op("time", self.store.time_ms()).await?;
        Ok(View { now_ms, keepalive, workers, jobs, cleanup })
    }

    /// Add job `job` once, assigned to the least-loaded live worker (or queued if none).
    pub async fn dispatch(&self, job: &str, payload: &str) -> Result<u64, PoolError> {
        if job.is_empty() || job.len() > 512 || job.contains('\u{1f}') {
            return Err(PoolError::InvalidJob { detail: "job key must be 1..=512 bytes without U+001F".into() });
        }
        // Keep-alives (one per worker) and store time only: the job map is not read, so the cost
        // does not grow with the number of jobs. Loads come from the node's index; duplicates
        // are caught by the transaction's guards.
        let keepalive = self.op("map_snapshot", self.store.map_snapshot(&self.maps.keepalive)).await?.entries;
        let now_ms = self.op("time", self.store.time_ms()).await?;
        let view = View { now_ms, keepalive, ..View::default() };
        let worker = {
            let loads = lock(&self.loads);
            view.pick_worker_by(self.ttl_ms(), "", |w| loads.load(w)).unwrap_or_default()
        };
        let rec = JobRecord { attempt: 1, owner: worker.clone(), payload: payload.to_owned() };
        let mut writes = vec![(job_key(job), Some(rec.encode()))];
        if !worker.is_empty() {
            let deadline_ms = view.now_ms.saturating_add(ms(self.cfg.ack_grace));
            let p = Pending { attempt: 1, worker: worker.clone(), deadline_ms };
            writes.push((pending_key(job), Some(p.encode())));
        }
        // Added once: neither a live record nor a recent completion tombstone may exist.
        let mut guards = vec![(job_key(job), Expect::Absent), (state::done_key(job), Expect::Absent)];
        if mutants::active(Mutant::MP15) {
            // MP15 (pulse #74): "already running" judged from this node's cached view, "being
            // started" by the pending entry; the record itself is no guard. A lagging view admits
            // a running job (acked: no pending entry) again and overwrites its record.
            if lock(&self.loads).knows(job) {
                return Err(PoolError::Duplicate { job: job.to_owned() });
            }
            guards[0] = (pending_key(job), Expect::Absent);
        }
        let out = self.op("map_txn", self.store.map_txn(&self.maps.jobs, &guards, &writes)).await?;
        if !out.applied {
            // A key blocked by a record keel cannot read is not a duplicate: say what blocks it.
            for key in [job_key(job), state::done_key(job)] {
                let (raw, _) = self.op("map_get", self.store.map_get(&self.maps.jobs, &key)).await?;
                if let Some(raw) = raw
                    && let Err(detail) = state::check_value("jobs", &key, &raw)
                {
                    let bad = CorruptRecord { map: self.maps.jobs.clone(), key, raw, detail };
                    self.note_garbage(std::slice::from_ref(&bad), false);
                    return Err(PoolError::Store(bad.error()));
                }
            }
            return Err(PoolError::Duplicate { job: job.to_owned() });
        }
        self.note_owner(job, Some(&rec.encode()));
        observe::emit(PoolEvent::Dispatched {
            job: job.into(),
            worker: (&worker).into(),
            attempt: 1,
            now_ms: view.now_ms,
        });
        self.route(job, Some(&rec.encode()));
        Ok(1)
    }

    /// Move `job` (whose record is `from_raw`) to the least-loaded live worker other than
    /// `exclude`, under the next attempt, guarded by the record (and `extra` guards). Updates
    /// `view` so the next pick sees the new load. Returns whether it moved.
    pub async fn move_job(
        &self,
        view: &mut View,
        job: &str,
        from_raw: &str,
        extra: Option<(String, Expect)>,
        exclude: &str,
        kind: MoveKind,
    ) -> Result<bool, StoreError> {
        let Some(rec) = JobRecord::parse(from_raw) else {
            return Err(StoreError::corrupt(job_key(job), "unparsable job record"));
        };
        let target = view.pick_worker(self.ttl_ms(), exclude).unwrap_or_default();
        let new = rec.moved_to(&target);
        let pending = (!target.is_empty()).then(|| {
            let deadline_ms = view.now_ms.saturating_add(ms(self.cfg.ack_grace));
            Pending { attempt: new.attempt, worker: target.clone(), deadline_ms }.encode()
        });
        let mut guards = vec![(job_key(job), Expect::Value(from_raw.to_owned()))];
        guards.extend(extra);
        let writes = [(job_key(job), Some(new.encode())), (pending_key(job), pending)];
        let out = self.op("map_txn", self.store.map_txn(&self.maps.jobs, &guards, &writes)).await?;
        if out.applied {
            view.jobs.insert(job_key(job), new.encode());
            self.note_owner(job, Some(&new.encode()));
            observe::emit(PoolEvent::Moved {
                kind,
                job: job.into(),
                from: (&rec.owner).into(),
                worker: (&target).into(),
                attempt: new.attempt,
                now_ms: view.now_ms,
            });
            self.route(job, Some(&new.encode()));
        }
        Ok(out.applied)
    }

    /// Check the epoch marker. A missing or changed marker means the store lost its data: every
    /// job, worker and lock it held is gone. That is reported loudly on every node that sees it.
    pub async fn check_epoch(&self) -> Result<(), StoreError> {
        let (current, _) = self.op("map_get", self.store.map_get(&self.maps.meta, state::EPOCH_KEY)).await?;
        let known = lock(&self.epoch).clone();
        if current.is_some() && current == known {
            return Ok(());
        }
        if let Some(old) = &known {
            self.data_losses.fetch_add(1, Ordering::Relaxed);
            observe::emit(PoolEvent::DataLoss {
                pool: (&self.cfg.name).into(),
                old_epoch: old.into(),
                new_epoch: current.as_ref().map(Text::from),
            });
        }
        let fresh = format!("{}.{}", self.cfg.node, self.incarnation);
        let value = match current {
            Some(v) => v,
            None => {
                let w = self.store.map_write(&self.maps.meta, state::EPOCH_KEY, MapWrite::SetIfAbsent(fresh));
                self.op("map_write", w).await?.value.unwrap_or_default()
            }
        };
        *lock(&self.epoch) = Some(value);
        Ok(())
    }

    /// One pass of the sweeper: epoch, reconcile local workers, pending entries, queued jobs,
    /// then dead-worker cleanup.
    pub async fn sweep(&self) -> Result<(), StoreError> {
        self.check_epoch().await?;
        let read_at = self.clock.now();
        let mut view = self.view(true).await?;
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
                    let out = self.op("map_txn", self.store.map_txn(&self.maps.jobs, &[guard], &writes)).await?;
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
            self.op("map_txn", self.store.map_txn(&self.maps.jobs, &guard, &writes)).await?;
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
    fn note_garbage(&self, seen: &[CorruptRecord], complete: bool) {
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
    async fn sweep_completion_events(&self, view: &View) -> Result<(), StoreError> {
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

    /// Clean up stale worker `w` by driving the pure [`Cleanup`] machine: lock, re-judge, fence,
    /// requeue every job (with retries), then delete its state and release. Idempotent: a crash
    /// at any step leaves a state that the next cleaner finishes.
    /// `read_at`: when the sweep began reading `view` (the lock expires a lock TTL after the
    /// view's store time, so the machine counts its budget from then).
    pub async fn cleanup(&self, view: &View, w: &str, read_at: Instant) -> Result<(), StoreError> {
        let start = super::cleanup::Start {
            now_ms: view.now_ms,
            keepalive: view.keepalive.get(w).map(String::as_str),
            lock: view.cleanup.get(w).map(String::as_str),
            holder: format!("{}.{}", self.cfg.node, self.incarnation),
            ttl_ms: self.ttl_ms(),
            lock_ttl: self.cfg.cleanup_lock_ttl,
            op_timeout: self.cfg.op_timeout,
        };
        let (mut machine, mut command) = Cleanup::start(&start);
        let orphan = view.is_orphan_owner(w);
        let kind = if orphan { MoveKind::OrphanRequeued } else { MoveKind::Requeued };
        let mut fresh = View::default();
        loop {
            let reply = match command {
                Command::Lock { map, write } => {
                    let map = match map {
                        LockMap::Cleanup => &self.maps.cleanup,
                        LockMap::Keepalive => &self.maps.keepalive,
                    };
                    let attempt = machine.attempt().cloned();
                    let out = self.op("map_write", self.store.map_write(map, w, write)).await?;
                    if out.applied && attempt.is_some() {
                        let lock = Text::from(&machine.lock);
                        match attempt {
                            Some(Attempt::Take) => observe::emit(PoolEvent::CleanupLocked { worker: w.into(), lock }),
                            Some(Attempt::TakeOver(from)) => observe::emit(PoolEvent::CleanupTakeover {
                                worker: w.into(),
                                from: (&from).into(),
                                lock,
                            }),
                            _ => {}
                        }
                    }
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::ReadKeepalive => {
                    Reply::Keepalive(self.op("map_get", self.store.map_get(&self.maps.keepalive, w)).await?.0)
                }
                Command::ReadTime => Reply::Time(self.op("time", self.store.time_ms()).await?),
                Command::Fence { expected } => {
                    let cas = MapWrite::CompareAndSet { expected, new: DEAD.to_owned() };
                    let out = self.op("map_write", self.store.map_write(&self.maps.keepalive, w, cas)).await?;
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::ReadOwned => {
                    fresh = self.view(false).await?;
                    Reply::Owned(
                        fresh
                            .records()
                            .filter(|(_, r)| r.owner == w)
                            .map(|(j, r)| (j.to_owned(), r.encode()))
                            .collect(),
                    )
                }
                Command::Requeue { job, raw } => {
                    self.requeue_with_retries(&mut fresh, &job, &raw, w, kind).await?;
                    Reply::Done
                }
                Command::DeleteKeepalive { expected } => {
                    let write = MapWrite::CompareAndDelete(expected);
                    let out = self.op("map_write", self.store.map_write(&self.maps.keepalive, w, write)).await?;
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::DeleteWorker => {
                    let out =
                        self.op("map_write", self.store.map_write(&self.maps.workers, w, MapWrite::Delete)).await?;
                    Reply::Written { applied: out.applied, value: out.value }
                }
                Command::Release { lock } => {
                    self.release(w, &lock).await;
                    Reply::Done
                }
                Command::Finish(outcome) => {
                    return match outcome {
                        Outcome::Cleaned => {
                            observe::emit(PoolEvent::WorkerCleaned { worker: w.into(), orphan });
                            Ok(())
                        }
                        Outcome::LockLifetime => Err(StoreError::Timeout { op: "cleanup lock lifetime" }),
                        Outcome::Alive => {
                            debug!(target: "keel::pool", worker = w, "worker is alive on a fresh read; left alone");
                            Ok(())
                        }
                        Outcome::NotOurs | Outcome::Confused => Ok(()),
                    };
                }
            };
            command = machine.on(reply, self.clock.now().saturating_duration_since(read_at));
        }
    }

    async fn requeue_with_retries(
        &self,
        view: &mut View,
        job: &str,
        raw: &str,
        w: &str,
        kind: MoveKind,
    ) -> Result<(), StoreError> {
        let (min, max) = self.cfg.cleanup_backoff;
        let mut wait = min;
        let mut raw = raw.to_owned();
        for attempt in 1..=self.cfg.cleanup_retries {
            match self.move_job(view, job, &raw, None, w, kind).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    // The record changed under us: re-read it; done if w no longer owns it.
                    let (cur, _) = self.op("map_get", self.store.map_get(&self.maps.jobs, &job_key(job))).await?;
                    match cur.as_deref().and_then(JobRecord::parse) {
                        Some(r) if r.owner == w => raw = r.encode(),
                        _ => return Ok(()),
                    }
                }
                Err(e) if attempt == self.cfg.cleanup_retries || !e.is_transient() => return Err(e),
                Err(e) => debug!(target: "keel::pool", job, error = %e, "requeue failed; retrying"),
            }
            self.clock.sleep(wait).await;
            wait = (wait * 2).min(max);
        }
        Err(StoreError::Timeout { op: "requeue" })
    }

    /// MP10 (pulse #61): write `job` back from memory (the stopping worker removed its state and
    /// its job records from the maps first), to another worker. A crash before this loses the
    /// job: nothing in the store remembers it.
    pub async fn reinsert(&self, view: &mut View, job: &str, raw: &str, w: &str) -> Result<(), StoreError> {
        let Some(rec) = JobRecord::parse(raw) else { return Ok(()) };
        view.jobs.remove(&job_key(job));
        let target = view.pick_worker(self.ttl_ms(), w).unwrap_or_default();
        let new = rec.moved_to(&target);
        let mut writes = vec![(job_key(job), Some(new.encode()))];
        if !target.is_empty() {
            let p = Pending {
                attempt: new.attempt,
                worker: target.clone(),
                deadline_ms: view.now_ms.saturating_add(ms(self.cfg.ack_grace)),
            };
            writes.push((pending_key(job), Some(p.encode())));
        }
        let out =
            self.op("map_txn", self.store.map_txn(&self.maps.jobs, &[(job_key(job), Expect::Absent)], &writes)).await?;
        if out.applied {
            view.jobs.insert(job_key(job), new.encode());
            observe::emit(PoolEvent::Moved {
                kind: MoveKind::HandedBack,
                job: job.into(),
                from: w.into(),
                worker: (&target).into(),
                attempt: new.attempt,
                now_ms: view.now_ms,
            });
            self.route(job, Some(&new.encode()));
        }
        Ok(())
    }

    async fn release(&self, w: &str, mine: &str) {
        let del = self.store.map_write(&self.maps.cleanup, w, MapWrite::CompareAndDelete(mine.to_owned()));
        if let Err(e) = self.op("map_write", del).await {
            debug!(target: "keel::pool", worker = w, error = %e, "cleanup lock release failed; it expires");
        }
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

    /// Offer every tombstone of a job-map snapshot to the completion feed (`why`: what
    /// prompted the reconcile, for the event).
    pub fn observe_tombstones(&self, jobs: &BTreeMap<String, String>, why: &'static str) {
        let tombs = jobs.iter().filter_map(|(k, v)| Some((k.strip_prefix("d/")?, v.as_str())));
        let d = self.feed.observe(tombs, true);
        if d.news > 0 && why != "start" {
            observe::emit(PoolEvent::FeedResynced { why: why.into(), completions: d.news });
        }
        if d.dropped > 0 {
            observe::emit(PoolEvent::FeedDropped { dropped: d.dropped });
        }
    }

    /// The feed reported a gap: reconcile the completion feed from a fresh snapshot now (the
    /// sweeper would within a period; assignments need nothing, the sweeper re-announces).
    async fn resync_feed(&self, why: &'static str) {
        match self.op("map_snapshot", self.store.map_snapshot(&self.maps.jobs)).await {
            Ok(snap) => self.observe_tombstones(&snap.entries, why),
            Err(e) => debug!(target: "keel::pool", error = %e, "feed resync failed; the next sweep reconciles"),
        }
    }

    /// The router: follows the job map's feed and hands new assignments to local workers, and
    /// new tombstones to the completion feed. On a gap the completion feed is reconciled from a
    /// snapshot; assignments need no resync (the sweeper re-announces every period).
    pub async fn run_router(self: Arc<Self>) {
        let mut watch = loop {
            tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = self.shutdown.cancelled() => return,
                    w = self.store.watch(&self.maps.jobs) => match w {
                        Ok(w) => break w,
                        Err(_) => self.clock.sleep(self.cfg.sweep_interval).await,
                    },
                }
        };
        // Watch first, then snapshot (docs/rmap.md): nothing written after the watch opened is
        // missed, and the baseline resolves waiters of jobs completed before it.
        self.resync_feed("start").await;
        loop {
            let ev = tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.shutdown.cancelled() => return,
                ev = watch.next() => ev,
            };
            match ev {
                WatchEvent::Change(c) => {
                    if let Some(job) = c.key.strip_prefix("j/") {
                        self.route_change(job, c.value.as_deref());
                    } else if let (Some(job), Some(raw)) = (c.key.strip_prefix("d/"), c.value.as_deref()) {
                        let d = self.feed.observe([(job, raw)].into_iter(), false);
                        if d.dropped > 0 {
                            observe::emit(PoolEvent::FeedDropped { dropped: d.dropped });
                        }
                    }
                }
                WatchEvent::Gap => self.resync_feed("gap").await,
            }
        }
    }
}
