//! The job completer and the subscription manager (SPEC §6, lineage: River's batch completer and
//! `subscriptionManager`).
//!
//! Producers (workers) report [`Completion`]s to a [`Completer`] through [`Producer`] handles. The
//! completer keeps them in a bounded backlog (producers wait for room, or get
//! [`TryCompleteError::Full`]), writes them to the store in batches (size and interval limits,
//! one idempotent `map_txn` per batch, jittered retries), and emits one batch of
//! [`CompletionEvent`]s per flushed batch into an event channel that **it alone owns**. The
//! [`SubscriptionManager`] distributes those events to subscribers filtered by kind.
//!
//! **Drain protocol.** The completer runs on a *detached* token, so a cancelled caller cannot cut
//! it short. On stop it refuses new producers, waits for every registered producer to finish
//! (drop or [`Producer::finish`]), flushes everything, and only then drops the channel's sender.
//! The subscription manager, stopped after it, keeps distributing until that channel closes and
//! then closes every subscriber channel. Both stops are bounded; what could not be flushed is
//! reported in a typed [`StopError`], never silently lost.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use keel::completer::{Completer, CompleterConfig, Completion, KindFilter, SubscriptionManager};
//! use keel::shutdown::Shutdown;
//! use keel::MemoryStore;
//!
//! let cfg = CompleterConfig::builder("jobs").flush_interval(Duration::from_millis(5)).build()?;
//! let completer = Completer::new(MemoryStore::new(), cfg);
//! let subs = SubscriptionManager::new(&completer);
//! let mut done = subs.subscribe(KindFilter::only(["succeeded"]));
//! let caller = Shutdown::new("app");
//! subs.start(&caller).await;
//! completer.start(&caller).await;
//!
//! let worker = completer.producer("worker-1")?;
//! worker.complete(Completion::new("job-1", 1, "succeeded", "42")).await?;
//! worker.finish();
//!
//! completer.stop().await?; // waits for producers, flushes, closes the event channel
//! subs.stop().await; // drains until that channel closed, then closes subscribers
//! assert_eq!(done.recv().await.map(|e| e.completion.key), Some("job-1".into()));
//! assert!(done.recv().await.is_none()); // closed after every event
//! # Ok(()) }
//! ```

mod batch;
mod config;
mod driver;
mod intake;
mod slot;
mod subscriptions;

#[cfg(all(test, keel_loom))]
mod loom_tests;
#[cfg(all(test, not(keel_loom)))]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::observe::{self, CompleterEvent};
use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

pub use config::{CompleterConfig, CompleterConfigBuilder};
pub use subscriptions::{KindFilter, Subscription, SubscriptionManager};

use crate::clock::{Clock, TokioClock};
use crate::lifecycle::{Lifecycle, Service, ServiceError, Status};
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::Store;
use intake::Intake;
use slot::EventSlot;

/// One finished job, as reported by a producer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Completion {
    /// The job's key (unique per job).
    pub key: String,
    /// The attempt (fence of the job's ownership) this completion belongs to.
    pub attempt: u64,
    /// Outcome, e.g. `succeeded`, `failed`, `cancelled`; subscribers filter on it.
    pub kind: String,
    /// Free-form result.
    pub payload: String,
}

impl Completion {
    /// A completion of `key`'s attempt `attempt` with outcome `kind`.
    ///
    /// ```
    /// let c = keel::completer::Completion::new("job-7", 2, "failed", "timeout");
    /// assert_eq!(c.kind, "failed");
    /// ```
    pub fn new(key: impl Into<String>, attempt: u64, kind: impl Into<String>, payload: impl Into<String>) -> Self {
        Completion { key: key.into(), attempt, kind: kind.into(), payload: payload.into() }
    }

    /// The value the completer writes under [`key`](Self::key) in its map (a checker reads the
    /// store to confirm that a [`CompletionEvent`] is durable).
    ///
    /// ```
    /// let c = keel::completer::Completion::new("job-7", 2, "failed", "timeout");
    /// assert_eq!(c.stored_value(), "2\u{1f}failed\u{1f}timeout");
    /// ```
    pub fn stored_value(&self) -> String {
        batch::encode(self)
    }
}

/// A completion that was durably written to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletionEvent {
    /// What completed.
    pub completion: Completion,
    /// Store revision of the batch write that recorded it.
    pub rev: u64,
    /// The completer run that emitted it.
    pub run: u64,
}

/// Why [`Producer::complete`] (or [`Completer::producer`]) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteError {
    /// The completer is not running.
    NotRunning,
    /// The completer is stopping: no new producers.
    Stopping,
    /// The completer's run has ended: nothing is accepted any more.
    Closed,
    /// The completion's key is one no store takes (empty, or longer than
    /// [`NAME_MAX_BYTES`](crate::store::NAME_MAX_BYTES)): refused at once, so it cannot hold up
    /// its batch (a store refuses such a write for good, and a batch is retried until written).
    InvalidKey {
        /// What is wrong with it.
        detail: String,
    },
}

impl fmt::Display for CompleteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompleteError::NotRunning => write!(f, "completer not running"),
            CompleteError::Stopping => write!(f, "completer stopping: no new producers"),
            CompleteError::Closed => write!(f, "completer closed"),
            CompleteError::InvalidKey { detail } => write!(f, "completion refused: {detail}"),
        }
    }
}

impl std::error::Error for CompleteError {}

/// Why [`Producer::try_complete`] was refused; the completion is handed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryCompleteError {
    /// The backlog is full: retry later, or use [`Producer::complete`] to wait for room.
    Full(Completion),
    /// The completer's run has ended.
    Closed(Completion),
    /// The completion's key is one no store takes (see [`CompleteError::InvalidKey`]).
    InvalidKey(Completion, String),
}

impl fmt::Display for TryCompleteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryCompleteError::Full(c) => write!(f, "completer backlog full (completion {})", c.key),
            TryCompleteError::Closed(c) => write!(f, "completer closed (completion {})", c.key),
            TryCompleteError::InvalidKey(_, detail) => write!(f, "completion refused: {detail}"),
        }
    }
}

impl std::error::Error for TryCompleteError {}

/// A stop that did not drain everything within its bound: nothing is silently lost, it is all
/// listed here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopError {
    /// The run that stopped.
    pub run: u64,
    /// Completions accepted but not (known to be) written. Some may have been written by a
    /// write whose outcome stayed unknown; writes are idempotent, so re-submitting is safe.
    pub unflushed: Vec<Completion>,
    /// Events of written completions that could not be handed to the subscription manager.
    pub undelivered: usize,
    /// Producers still registered when the bound expired.
    pub producers_left: Vec<String>,
}

impl StopError {
    fn is_clean(&self) -> bool {
        if mutants::active(Mutant::MC420) {
            return false; // MC420: a clean test that never answers yes
        }
        self.unflushed.is_empty() && self.undelivered == 0 && self.producers_left.is_empty()
    }
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "completer run {} stopped at its bound with {} completions unflushed, {} events undelivered, producers still registered: {:?}",
            self.run,
            self.unflushed.len(),
            self.undelivered,
            self.producers_left
        )
    }
}

impl std::error::Error for StopError {}

/// The running run's number and backlog.
type CurrentRun = (u64, Arc<Intake>);

/// The stop reports of the last runs, by run: a stop returns its own run's, not whichever run
/// ended last (a stop still waking from its run's exit while a restart runs and stops again).
pub(crate) type Reports = Arc<Mutex<BTreeMap<u64, StopError>>>;

/// How many runs' stop reports a completer keeps for stops still waking up.
pub(crate) const REPORTS_KEPT: usize = 16;
type EventTx = mpsc::Sender<Vec<CompletionEvent>>;
type EventRx = mpsc::Receiver<Vec<CompletionEvent>>;

/// Hands each run's event receiver to the subscription manager (whichever starts first).
#[derive(Clone, Default)]
pub(crate) struct EventSource {
    inner: Arc<SourceInner>,
}

#[derive(Default)]
struct SourceInner {
    pending: Mutex<Option<(u64, EventRx)>>,
    ready: Notify,
}

impl EventSource {
    fn offer(&self, run: u64, rx: EventRx) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        // MC313: a receiver not yet taken is kept: a later run's hand-over is dropped, and a
        // manager started after it reads the older, dead run's channel.
        if pending.is_none() || !mutants::active(Mutant::MC313) {
            *pending = Some((run, rx));
        }
        drop(pending);
        self.inner.ready.notify_one();
    }

    /// The receiver of the next completer run, waiting for the run to start.
    pub(crate) async fn take(&self) -> (u64, EventRx) {
        loop {
            if let Some(r) = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return r;
            }
            self.inner.ready.notified().await;
        }
    }
}

/// Batches completions into the store and owns the completion event channel. A [`Service`].
pub struct Completer<S: Store> {
    store: S,
    cfg: CompleterConfig,
    clock: Arc<dyn Clock>,
    life: Lifecycle,
    current: Arc<Mutex<Option<CurrentRun>>>,
    slot: Arc<EventSlot<EventTx>>,
    source: EventSource,
    reports: Reports,
}

impl<S: Store> fmt::Debug for Completer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").field("name", &self.cfg.name).field("status", &self.life.status()).finish()
    }
}

impl<S: Store> Completer<S> {
    /// A stopped completer over `store` on the runtime clock.
    pub fn new(store: S, cfg: CompleterConfig) -> Self {
        let life = Lifecycle::new(format!("completer:{}", cfg.name));
        Completer {
            store,
            cfg,
            clock: Arc::new(TokioClock),
            life,
            current: Arc::new(Mutex::new(None)),
            slot: Arc::new(EventSlot::new()),
            source: EventSource::default(),
            reports: Reports::default(),
        }
    }

    /// Use another clock (simulation, tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Its config.
    pub fn config(&self) -> &CompleterConfig {
        &self.cfg
    }

    /// Its lifecycle status.
    pub fn status(&self) -> Status {
        self.life.status()
    }

    pub(crate) fn source(&self) -> EventSource {
        self.source.clone()
    }

    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Start a run with a fresh backlog and a fresh event channel. Idempotent. The run is
    /// detached from `parent`: only [`stop`](Completer::stop) ends it.
    pub async fn start(&self, parent: &Shutdown) -> bool {
        let name = format!("completer:{}", self.cfg.name);
        let token = if mutants::active(Mutant::MR1) {
            parent.child(&name) // MR1 (River #400): bound to the caller's cancellation
        } else {
            parent.detached(&name)
        };
        self.life
            .start(token, |ctx| {
                let (tx, rx) = mpsc::channel(self.cfg.event_buffer);
                self.slot.install(ctx.run, tx);
                self.source.offer(ctx.run, rx);
                // MC424: the intake bounded by the batch size, not the backlog it announces.
                let bound = if mutants::active(Mutant::MC424) { self.cfg.batch_size } else { self.cfg.backlog };
                let intake = Arc::new(Intake::new(bound));
                {
                    let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
                    // MC295: the first run's backlog kept across restarts.
                    if current.is_none() || !mutants::active(Mutant::MC295) {
                        *current = Some((ctx.run, intake.clone()));
                    }
                }
                observe::emit(CompleterEvent::CompleterStarted {
                    completer: (&self.cfg.name).into(),
                    run: ctx.run,
                    batch_size: self.cfg.batch_size,
                    flush_interval_us: observe::micros(self.cfg.flush_interval),
                    retry_min_us: observe::micros(self.cfg.retry_min),
                    retry_max_us: observe::micros(self.cfg.retry_max),
                    retry_budget: self.cfg.retry_budget,
                    op_timeout_us: observe::micros(self.cfg.op_timeout),
                    backlog: self.cfg.backlog,
                });
                let d = driver::Driver {
                    store: self.store.clone(),
                    cfg: self.cfg.clone(),
                    clock: self.clock.clone(),
                    run: ctx.run,
                    token: ctx.shutdown,
                    intake,
                    slot: self.slot.clone(),
                    reports: self.reports.clone(),
                };
                d.run()
            })
            .await
    }

    /// Register a producer with the running completer. Its completions are drained before the
    /// event channel closes; drop it (or call [`Producer::finish`]) when it stopped producing.
    pub fn producer(&self, name: &str) -> Result<Producer, CompleteError> {
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((run, intake)) = cur else { return Err(CompleteError::NotRunning) };
        let id = intake.register(name, || {
            observe::emit(CompleterEvent::ProducerRegistered {
                completer: (&self.cfg.name).into(),
                run,
                producer: name.into(),
            })
        })?;
        Ok(Producer { intake, id, run, name: name.to_owned(), completer: self.cfg.name.clone() })
    }

    /// Stop: refuse new producers, wait for registered ones, flush, close the event channel.
    /// Bounded by the config's `stop_timeout`; what was not drained by then is the error.
    /// Idempotent; a no-op before start.
    pub async fn stop(&self) -> Result<(), StopError> {
        // The request is what the drain's start is judged from (V10): a run that does not hear
        // it (a backoff that sleeps through it, MC41) is judged from here.
        if let Status::Running { run } = self.life.status() {
            observe::emit(CompleterEvent::StopRequested {
                completer: (&self.cfg.name).into(),
                run,
                bound_ms: u64::try_from(self.cfg.stop_timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
        // The run this stop ends or waits for; when none runs, the last run's report is returned.
        let stopped = match self.life.status() {
            Status::Running { run } | Status::Stopping { run } => Some(run),
            Status::Stopped => None,
        };
        // The report of the run stopped (the last run's when none was running): a report read
        // from one shared slot could be a later run's, started and stopped while this stop woke.
        let read = || {
            let reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            match stopped {
                // MC138: one shared slot: the last run to end, whichever it is.
                Some(run) if !mutants::active(Mutant::MC138) => reports.get(&run).cloned(),
                _ => reports.last_key_value().map(|(_, r)| r.clone()),
            }
        };
        // MC136: the report read before the run exits: none yet, taken for a clean stop.
        let early = mutants::active(Mutant::MC136).then(read);
        self.life.stop().await;
        let report = early.unwrap_or_else(read);
        let result = match &report {
            Some(r) if !r.is_clean() => Err(r.clone()),
            _ => Ok(()),
        };
        if let Some(run) = stopped.or(report.as_ref().map(|r| r.run)) {
            let lost = result.as_ref().err();
            observe::emit(CompleterEvent::StopReturned {
                completer: (&self.cfg.name).into(),
                run,
                ok: result.is_ok(),
                unflushed: lost.map_or(0, |r| r.unflushed.len()),
                undelivered: lost.map_or(0, |r| r.undelivered),
                producers_left: lost.map_or(0, |r| r.producers_left.len()),
            });
        }
        result
    }
}

impl<S: Store> Service for Completer<S> {
    /// Its lifecycle's name (`completer:{name}`), as its `run_started`/`run_exited` events name it.
    fn name(&self) -> &str {
        self.life.name()
    }

    fn start<'a>(&'a self, parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            Completer::start(self, parent).await;
            Ok(())
        })
    }

    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async move {
            match Completer::stop(self).await {
                // MC172: producers left behind at the bound taken for no loss: the group hears
                // `Ok` while the stop reported them.
                Err(e) if mutants::active(Mutant::MC172) && e.unflushed.is_empty() && e.undelivered == 0 => Ok(()),
                r => r.map_err(|e| ServiceError {
                    service: format!("completer:{}", self.cfg.name),
                    reason: e.to_string(),
                }),
            }
        })
    }
}

/// A registered producer of completions. Dropping it (or [`finish`](Producer::finish)) tells the
/// completer this producer will not complete anything more.
pub struct Producer {
    intake: Arc<Intake>,
    id: u64,
    run: u64,
    name: String,
    completer: String,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("name", &self.name).field("run", &self.run).finish()
    }
}

impl Producer {
    /// Hand over a completion, waiting while the backlog is full.
    pub async fn complete(&self, c: Completion) -> Result<(), CompleteError> {
        // MC268: the outcome kept when the caller drops the wait reads `closed`.
        let given_up = if crate::mutants::active(crate::mutants::Mutant::MC268) { "closed" } else { "cancelled" };
        let mut wait = RoomWait { producer: self, began: AtomicBool::new(false), outcome: given_up };
        let r = self.intake.push(c, || wait.begin()).await;
        wait.outcome = if r.is_ok() { "accepted" } else { "closed" };
        drop(wait);
        // MC196: the acceptance reported before the push's result is looked at.
        if r.is_err() && !crate::mutants::active(crate::mutants::Mutant::MC196) {
            return r;
        }
        self.accepted();
        r
    }

    /// Hand over a completion if there is room now.
    pub fn try_complete(&self, c: Completion) -> Result<(), TryCompleteError> {
        self.intake.try_push(c)?;
        self.accepted();
        Ok(())
    }

    /// Announce a completion taken in, with the backlog it left (V7, V20 count them).
    fn accepted(&self) {
        observe::emit(CompleterEvent::Accepted {
            completer: (&self.completer).into(),
            run: self.run,
            backlog: self.intake.backlog(),
            queued: self.intake.queued(),
        });
    }

    /// The completer run this producer belongs to.
    pub fn run(&self) -> u64 {
        self.run
    }

    /// This producer has stopped: deregister it.
    pub fn finish(self) {}
}

/// A producer's wait for room in the backlog, announced when it begins (`room_wait_begun`) and
/// when it ends, however it ends (`room_wait_ended`, a caller that gives the completion up
/// included): V20 judges that a close ends every wait.
struct RoomWait<'p> {
    producer: &'p Producer,
    began: AtomicBool,
    outcome: &'static str,
}

impl RoomWait<'_> {
    fn begin(&self) {
        self.began.store(true, Ordering::Relaxed);
        let p = self.producer;
        observe::emit(CompleterEvent::RoomWaitBegun {
            completer: (&p.completer).into(),
            run: p.run,
            producer: (&p.name).into(),
        });
    }
}

impl Drop for RoomWait<'_> {
    fn drop(&mut self) {
        if self.began.load(Ordering::Relaxed) {
            let p = self.producer;
            observe::emit(CompleterEvent::RoomWaitEnded {
                completer: (&p.completer).into(),
                run: p.run,
                producer: (&p.name).into(),
                outcome: self.outcome.into(),
            });
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.intake.deregister(self.id) {
            observe::emit(CompleterEvent::ProducerStopped {
                completer: (&self.completer).into(),
                run: self.run,
                producer: (&self.name).into(),
            });
        }
    }
}
