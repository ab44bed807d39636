//! The node: its shared state ([`Core`]), store time and views, dispatch and job moves, and the
//! epoch check. The sweeper, the cleaner's driver and the router live in their own files.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::batch::Batch;
use super::cache::NodeCache;
use super::feed::Feed;
use super::load::LoadIndex;
use super::state::{self, CorruptRecord, JobRecord, Maps, Pending, View, job_key, pending_key};
use super::table::JobTable;
use super::{PoolConfig, PoolError};
use crate::clock::Clock;
use crate::completer::{Completer, SubscriptionManager};
use crate::error::StoreError;
use crate::metrics as keel_metrics;
use crate::mutants::{self, Mutant};
use crate::observe::{self, MoveKind, PoolEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::{Expect, MapWrite, Read, ReadOuts, Store, TxnOutcome};

/// An assignment handed to a local worker: the job and its record's raw value.
pub(crate) type Assign = (String, Option<String>);

/// How many TTLs of store time the completion feed remembers what it delivered: more than a
/// completion's retries can take between its time read and its write (cleanup_retries ×
/// (op_timeout + backoff) < 2·ttl with the defaults).
const FEED_HORIZON_TTLS: u64 = 4;

pub(crate) struct Core<S: Store> {
    pub store: S,
    pub cfg: PoolConfig,
    pub maps: Maps,
    pub clock: Arc<dyn Clock>,
    pub incarnation: u64,
    pub shutdown: Shutdown,
    next_worker: AtomicU64,
    pub(crate) local: Mutex<BTreeMap<String, mpsc::Sender<Assign>>>,
    /// Which local workers run each job, at which attempt (job → (worker id, attempt)), so a
    /// change of a job's record goes to its owner and to the workers running it, not to every
    /// local worker, and a sweep does not re-send a record its owner already runs (route.rs).
    pub(crate) local_runs: Mutex<BTreeMap<String, Vec<(String, u64)>>>,
    /// Job owners as last seen (sweep snapshots, feed, own writes): dispatch's load source.
    pub(crate) loads: Mutex<LoadIndex>,
    /// The job map as the router last saw it (feed on top of a snapshot): what sweeps read.
    pub(crate) table: Mutex<JobTable>,
    /// Woken whenever the router moved the table on, for a sweep waiting for a revision.
    pub(crate) table_moved: Notify,
    /// Cursor of the sweep's pass over the completer's map (`sweep.rs`).
    pub(crate) completer_cursor: Mutex<String>,
    epoch: Mutex<Option<String>>,
    /// Epoch markers this node wrote (tried): each one it writes is new, so a marker it writes
    /// again after a loss never looks like the one other nodes hold from before it.
    epoch_writes: AtomicU64,
    /// Keep-alives and store time as last read, for dispatch and completion (cache.rs).
    pub(crate) cache: Mutex<NodeCache>,
    /// The job map's group commit (batch.rs).
    batch: Batch,
    pub data_losses: AtomicU64,
    /// Worker incarnations of this node whose task runs.
    pub live_workers: AtomicU64,
    pub worker_deaths: AtomicU64,
    pub worker_replacements: AtomicU64,
    /// Corrupt records seen by the last sweep (map, key) → value: each is logged once, when
    /// first seen, and forgotten once it is gone (repaired or quarantined).
    pub(crate) garbage: Mutex<BTreeMap<(String, String), String>>,
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: Store> Core<S> {
    pub fn new(store: S, cfg: PoolConfig, clock: Arc<dyn Clock>, incarnation: u64, shutdown: Shutdown) -> Self {
        let maps = Maps::new(&cfg.name);
        let completer = Completer::new(store.clone(), cfg.completer.clone()).with_clock(clock.clone());
        let events = SubscriptionManager::new(&completer);
        let batch = Batch::start(store.clone(), maps.jobs.clone(), clock.clone(), cfg.op_timeout);
        let feed = Feed::new(incarnation, ms(cfg.worker_ttl) * FEED_HORIZON_TTLS).with_max_waiters(cfg.max_waiters);
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
            local_runs: Mutex::new(BTreeMap::new()),
            loads: Mutex::new(LoadIndex::default()),
            table: Mutex::new(JobTable::default()),
            table_moved: Notify::new(),
            completer_cursor: Mutex::new(crate::store::MAP_SCAN_START.to_owned()),
            epoch: Mutex::new(None),
            epoch_writes: AtomicU64::new(0),
            cache: Mutex::new(NodeCache::default()),
            batch,
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
        if mutants::active(Mutant::MC463) {
            return; // MC463: the stop leaves the completer and its subscriptions running
        }
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
        // MC328: the cut armed on the runtime's timer, not the node's clock: on a node whose
        // clock runs slow it fires before the op timeout has passed on that clock.
        let cut: crate::clock::Sleep = if mutants::active(Mutant::MC328) {
            Box::pin(tokio::time::sleep(self.cfg.op_timeout))
        } else {
            self.clock.sleep(self.cfg.op_timeout)
        };
        let r = tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            r = fut => r,
            _ = cut => Err(StoreError::Timeout { op: name }),
        };
        if let Err(e) = &r {
            keel_metrics::store_error("pool", e);
        }
        r
    }

    /// Open a watch of `map`, tried again every sweep interval until it opens (`None`: the node
    /// stopped first). Each try is cut at the op timeout like every call (E6): a watch request
    /// stuck behind a slow link would otherwise hold the task for good. Each failed try is a
    /// `watch_open_failed` and the opening a `watch_opened` (P68 judges the retries' pacing).
    pub(crate) async fn open_watch(&self, map: &str) -> Option<S::Watch> {
        let pool = || Text::from(&self.cfg.name);
        let mut tries = 0u32;
        loop {
            tries += 1;
            let tried = self.clock.now();
            let w = tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.shutdown.cancelled() => return None,
                w = async {
                    // MC198: the watch opened without the op timeout.
                    if mutants::active(Mutant::MC198) {
                        self.store.watch(map).await
                    } else {
                        self.op("watch", self.store.watch(map)).await
                    }
                } => w,
            };
            let took_us = observe::micros(self.clock.now().saturating_duration_since(tried));
            match w {
                Ok(w) => {
                    observe::emit(PoolEvent::WatchOpened { pool: pool(), map: map.into(), tries, took_us });
                    return Some(w);
                }
                Err(e) => {
                    // MC322: the retry after a failed open at once.
                    let wait = if mutants::active(Mutant::MC322) { Duration::ZERO } else { self.cfg.sweep_interval };
                    let retry_us = observe::micros(self.cfg.sweep_interval);
                    let error = Text::display(&e);
                    observe::emit(PoolEvent::WatchOpenFailed {
                        pool: pool(),
                        map: map.into(),
                        took_us,
                        retry_us,
                        error,
                    });
                    tokio::select! {
                        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                        _ = self.shutdown.cancelled() => return None,
                        _ = self.clock.sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// One guarded transaction on the job map, sent with whatever else this node has waiting
    /// (batch.rs): its own outcome, or its batch's error (outcome unknown).
    pub(crate) async fn job_txn(
        &self,
        guards: Vec<(String, Expect)>,
        writes: Vec<(String, Option<String>)>,
    ) -> Result<TxnOutcome, StoreError> {
        self.batch.txn(guards, writes).await
    }

    pub fn new_worker_id(&self) -> String {
        let n = self.next_worker.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{}", self.cfg.node, self.incarnation, n)
    }

    pub fn register_local(&self, id: &str, tx: mpsc::Sender<Assign>) {
        lock(&self.local).insert(id.to_owned(), tx);
    }

    pub fn unregister_local(&self, id: &str) {
        // MC447: a gone worker's channel and routes kept.
        if mutants::active(Mutant::MC447) {
            return;
        }
        lock(&self.local).remove(id);
        let mut runs = lock(&self.local_runs);
        // MC448: every worker's routes dropped with the gone worker's.
        if mutants::active(Mutant::MC448) {
            runs.clear();
        }
        runs.retain(|_, ws| {
            ws.retain(|(w, _)| w != id);
            !ws.is_empty()
        });
    }

    /// Whether this node still holds worker `id`'s delivery channel, and how many job routes
    /// it holds for all its workers (`worker_forgotten`, P100).
    pub(crate) fn local_state_of(&self, id: &str) -> (bool, usize) {
        let kept = lock(&self.local).contains_key(id);
        (kept, lock(&self.local_runs).values().map(Vec::len).sum())
    }

    /// Local worker `worker` started a run of `job`: from now on every change of the job's
    /// record reaches it (before its ack is sent, so a change the ack could miss is one the ack's
    /// guard refuses).
    pub fn local_run_started(&self, job: &str, worker: &str, attempt: u64) {
        let mut runs = lock(&self.local_runs);
        let ws = runs.entry(job.to_owned()).or_default();
        match ws.iter_mut().find(|(w, _)| w == worker) {
            Some((_, a)) => *a = attempt, // a worker tracks one run per job: the newest
            None => ws.push((worker.to_owned(), attempt)),
        }
        observe::emit(PoolEvent::RunRouted { job: job.into(), worker: worker.into(), attempt });
    }

    /// Local worker `worker` no longer runs `job` (its tracked run ended).
    pub fn local_run_ended(&self, job: &str, worker: &str) {
        let mut runs = lock(&self.local_runs);
        let Some(ws) = runs.get_mut(job) else { return };
        let before = ws.len();
        ws.retain(|(w, _)| w != worker);
        if ws.len() < before {
            observe::emit(PoolEvent::RunUnrouted { job: job.into(), worker: worker.into() });
        }
        if ws.is_empty() {
            runs.remove(job);
        }
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

    /// Snapshot the maps the decisions need, then read store time (so every keep-alive in the
    /// view is at most `now_ms`: liveness is never judged against a future keep-alive): one
    /// batch of reads, one round trip.
    pub async fn view(&self, all: bool) -> Result<View, StoreError> {
        let snapshot = |map: &String| Read::Snapshot { map: map.clone() };
        let mut reads = vec![snapshot(&self.maps.keepalive), snapshot(&self.maps.jobs)];
        if all {
            reads.extend([snapshot(&self.maps.workers), snapshot(&self.maps.cleanup)]);
        }
        reads.push(Read::Time);
        let mut out = ReadOuts::new(self.op("reads", self.store.reads(&reads)).await?);
        let keepalive = out.snapshot()?.entries;
        let jobs = out.snapshot()?.entries;
        let (workers, cleanup) =
            if all { (out.snapshot()?.entries, out.snapshot()?.entries) } else { Default::default() };
        let now_ms = out.time()?;
        Ok(View { now_ms, keepalive, workers, jobs, cleanup })
    }

    /// Add job `job` once, assigned to the least-loaded live worker (or queued if none).
    pub async fn dispatch(&self, job: &str, payload: &str) -> Result<u64, PoolError> {
        self.dispatch_at(job, payload).await.map(|_| 1)
    }

    /// [`dispatch`](Self::dispatch), returning the job map's revision of its write.
    pub async fn dispatch_at(&self, job: &str, payload: &str) -> Result<u64, PoolError> {
        if job.is_empty() || job.len() > 512 || job.contains('\u{1f}') {
            return Err(PoolError::InvalidJob { detail: "job key must be 1..=512 bytes without U+001F".into() });
        }
        // No store read in the steady state: the pick is from the node's cached keep-alives
        // against its store-time estimate (cache.rs says why a hint is enough), loads from the
        // node's index; duplicates are caught by the transaction's guards. A cache that names no
        // live worker is read again once (workers may have registered since).
        let (mut keepalive, mut now_ms, mut read) = self.keepalive_hint(false).await?;
        let worker = loop {
            let pick = {
                let loads = lock(&self.loads);
                state::pick_live(&keepalive, now_ms, self.ttl_ms(), "", |w| loads.load(w))
            };
            match pick {
                Some(w) => break w,
                // MC452: queued on the cached keep-alives, no fresh read.
                None if read || mutants::active(Mutant::MC452) => break String::new(),
                None => (keepalive, now_ms, read) = self.keepalive_hint(true).await?,
            }
        };
        let raw = JobRecord { attempt: 1, owner: worker.clone(), payload: payload.to_owned() }.encode();
        let mut writes = vec![(job_key(job), Some(raw.clone()))];
        // MC112: the ack deadline counted with the worker TTL, not the ack grace.
        let grace = if mutants::active(Mutant::MC112) { self.cfg.worker_ttl } else { self.cfg.ack_grace };
        let pending = (!worker.is_empty()).then(|| Pending::due(1, &worker, now_ms, grace));
        if let Some(p) = &pending {
            writes.push((pending_key(job), Some(p.encode())));
        }
        // Added once: neither a live record nor a recent completion tombstone may exist.
        let mut guards = vec![(job_key(job), Expect::Absent), (state::done_key(job), Expect::Absent)];
        if mutants::active(Mutant::MC430) {
            guards.pop(); // MC430: the record alone guards the key, not its tombstone
        }
        if mutants::active(Mutant::MP15) {
            // MP15 (pulse #74): "already running" judged from this node's cached view, "being
            // started" by the pending entry; the record itself is no guard. A lagging view admits
            // a running job (acked: no pending entry) again and overwrites its record.
            if lock(&self.loads).knows(job) {
                return Err(PoolError::Duplicate { job: job.to_owned() });
            }
            guards[0] = (pending_key(job), Expect::Absent);
        }
        if let Some(p) = pending.as_ref().filter(|_| mutants::active(Mutant::MC122)) {
            p.written(job, now_ms); // MC122: said before the transaction, whatever it does
        }
        let out = self.op("map_txn", self.job_txn(guards, writes)).await?;
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
        self.note_written(job, &raw, out.rev);
        if let Some(p) = pending.as_ref().filter(|_| !mutants::active(Mutant::MC122)) {
            p.written(job, now_ms);
        }
        observe::emit(PoolEvent::Dispatched { job: job.into(), worker: (&worker).into(), attempt: 1, now_ms });
        self.route(job, Some(&raw));
        Ok(out.rev)
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
        let since_ms = self.pending_since_ms(view.now_ms);
        let pending = (!target.is_empty()).then(|| Pending::due(new.attempt, &target, since_ms, self.cfg.ack_grace));
        let mut guards = vec![(job_key(job), Expect::Value(from_raw.to_owned()))];
        guards.extend(extra);
        // MC121: the pending entry deleted, not written.
        let entry = pending.as_ref().map(Pending::encode).filter(|_| !mutants::active(Mutant::MC121));
        let writes = vec![(job_key(job), Some(new.encode())), (pending_key(job), entry)];
        let out = self.op("map_txn", self.job_txn(guards, writes)).await?;
        if out.applied {
            if let Some(p) = &pending {
                p.written(job, since_ms);
            }
            // MC342: the pick not noted in the view.
            if !mutants::active(Mutant::MC342) {
                view.jobs.insert(job_key(job), new.encode());
            }
            self.note_written(job, &new.encode(), out.rev);
            observe::emit(PoolEvent::Moved {
                kind,
                job: job.into(),
                from: (&rec.owner).into(),
                worker: (&target).into(),
                attempt: new.attempt,
                now_ms: view.now_ms,
                // A cleanup moves its dead worker's jobs off that worker: `exclude` is it.
                cleaned: match kind {
                    MoveKind::Requeued | MoveKind::OrphanRequeued => exclude.into(),
                    _ => "".into(),
                },
            });
            self.route(job, Some(&new.encode()));
        }
        Ok(out.applied)
    }

    /// The store time a move's pending deadline counts from: the newest the node knows (its
    /// last store-time read plus the local time since), at least `decided_ms`, the store time of
    /// the view the move was decided on. A view read long before its moves (a cleanup's requeues
    /// after their backoff, a drain's hand-backs) would otherwise write a deadline already past,
    /// and a sweep would re-dispatch the job inside its worker's ack grace (blind-spot hunt,
    /// round 15: deadlines up to 4.3 s late in pool seeds 0..200).
    pub(crate) fn pending_since_ms(&self, decided_ms: u64) -> u64 {
        let known = lock(&self.cache).now_ms(self.clock.now(), Duration::MAX);
        // MC386: the view's store time, however old.
        if mutants::active(Mutant::MC386) {
            return decided_ms;
        }
        known.map_or(decided_ms, |ms| ms.max(decided_ms))
    }

    /// Check the epoch marker. A missing or changed marker means the store lost its data: every
    /// job, worker and lock it held is gone. That is reported loudly on every node that sees it.
    pub async fn check_epoch(&self) -> Result<(), StoreError> {
        let began = self.clock.now();
        let (current, _) = self.op("map_get", self.store.map_get(&self.maps.meta, state::EPOCH_KEY)).await?;
        self.adopt_epoch(current, began).await
    }

    /// [`check_epoch`](Self::check_epoch) on a marker already read (`current`, by a read that
    /// began at `began`): report a loss, write a fresh marker if it is missing.
    pub(crate) async fn adopt_epoch(
        &self,
        current: Option<String>,
        began: crate::clock::Instant,
    ) -> Result<(), StoreError> {
        // MC453: the marker neither checked nor adopted.
        if mutants::active(Mutant::MC453) {
            return Ok(());
        }
        let took_us = || observe::micros(self.clock.now().saturating_duration_since(began));
        let checked = || observe::emit(PoolEvent::EpochChecked { pool: (&self.cfg.name).into(), took_us: took_us() });
        let known = lock(&self.epoch).clone();
        if current.is_some() && current == known {
            checked();
            return Ok(());
        }
        if let Some(old) = &known {
            self.data_losses.fetch_add(1, Ordering::Relaxed);
            observe::emit(PoolEvent::DataLoss {
                pool: (&self.cfg.name).into(),
                old_epoch: old.into(),
                new_epoch: current.as_ref().map(Text::from),
                took_us: took_us(),
            });
            // Reported once: until it adopts a marker the node holds none, so a write that fails
            // below does not make the next read report the same loss again.
            *lock(&self.epoch) = None;
        }
        let value = match current {
            Some(v) => v,
            // MC114: the marker is never written: every node adopts a missing one, and a store
            // that loses the pool's data leaves a missing one, which changes nothing.
            None if mutants::active(Mutant::MC114) => {
                checked();
                return Ok(());
            }
            None => {
                // `node.incarnation`, then `node.incarnation.n` for the node's n-th write: a
                // node's marker after a loss is not the one the others hold from before it.
                let fresh = match self.epoch_writes.fetch_add(1, Ordering::Relaxed) {
                    0 => format!("{}.{}", self.cfg.node, self.incarnation),
                    n => format!("{}.{}.{n}", self.cfg.node, self.incarnation),
                };
                let w = self.store.map_write(&self.maps.meta, state::EPOCH_KEY, MapWrite::SetIfAbsent(fresh));
                self.op("map_write", w).await?.value.unwrap_or_default()
            }
        };
        *lock(&self.epoch) = Some(value);
        checked();
        Ok(())
    }
}
