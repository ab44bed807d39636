//! A worker pool over the shared store (lineage: goa.design pulse's pool, SPEC §5).
//!
//! Nodes run workers; jobs are dispatched once by key, assigned to the **least-loaded live
//! worker** (ties broken by the smallest worker id), acknowledged by the worker when it starts,
//! and completed under **attempt fencing**: every (re)assignment bumps the job's attempt, and an
//! ack or completion for an older attempt is rejected by a guarded transaction. A worker beats a
//! keep-alive in store time; one whose keep-alive is older than `worker_ttl` is stale, and any
//! node's sweeper cleans it up under a per-worker cleanup lock taken by compare-and-set: it
//! requeues every job first and only then deletes the worker's state, so a cleaner that crashes
//! mid-way leaves work that the next cleaner finishes. A worker that cannot confirm its keep-alive
//! within `worker_ttl − drift_margin` (local clock) stops its handlers before anyone can requeue
//! their jobs. The store layout and protocol are described in `docs/pool.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError};
//! use keel::shutdown::Shutdown;
//! use keel::store::MemoryStore;
//!
//! struct Echo(tokio::sync::mpsc::UnboundedSender<String>);
//! impl JobHandler for Echo {
//!     async fn run(&self, job: Job) -> JobOutcome {
//!         let _ = self.0.send(format!("{}={}", job.key(), job.payload()));
//!         JobOutcome::Completed
//!     }
//! }
//!
//! let config = PoolConfig::builder("emails", "host-a").worker_ttl(Duration::from_millis(600)).build()?;
//! let node = Pool::new(MemoryStore::new(), config).start().await?;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let request = Shutdown::new("request");
//! let worker = node.add_worker(Echo(tx), &request);
//! request.cancel(); // the worker outlives the request that created it
//! node.dispatch("welcome-42", "to=ada").await?;
//! let again = node.dispatch("welcome-42", "again").await;
//! assert!(matches!(again, Err(PoolError::Duplicate { .. })), "a job key is added once");
//! assert_eq!(rx.recv().await.as_deref(), Some("welcome-42=to=ada"));
//! worker.stop().await;
//! node.stop().await;
//! # Ok(()) }
//! ```

mod batch;
mod cache;
mod cleaner;
// The model checker (`cargo modelcheck`) drives the real cleanup machine: feature `model` exposes it.
#[cfg_attr(feature = "model", allow(missing_docs, unreachable_pub))]
mod cleanup;
/// The dead-worker cleanup's pure machine, for the model checker in `keel-models`. Not a stable API.
#[cfg(feature = "model")]
#[doc(hidden)]
pub use cleanup::{
    Attempt, Cleanup, Command as CleanupCommand, LockMap, Outcome as CleanupOutcome, Reply as CleanupReply,
    Start as CleanupStart, fence_write, keepalive_stale,
};
mod complete;
mod config;
mod feed;
mod inspect;
mod load;
mod node;
mod route;
mod run;
mod state;
mod supervise;
mod sweep;
mod table;
mod worker;
mod worker_machine;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::watch;

pub use crate::completer::{CompletionEvent, KindFilter, Subscription};
pub use config::{
    DEDUP_WINDOW_MAX, DEFAULT_START_TIMEOUT, DEFAULT_WORKER_TTL, PoolConfig, PoolConfigBuilder, RESTART_BACKOFF_MAX,
    START_TIMEOUT_MAX,
};

/// The [`Completion::kind`](crate::completer::Completion) of a job completed by a pool worker.
pub const COMPLETED: &str = "completed";
pub use feed::{CompletionFeed, FEED_BUFFER_MAX, FEED_SUBSCRIBERS_MAX, JobCompletion, WAITERS_MAX};
pub use inspect::{PoolReport, inspect, inspect_in_place, quarantine_corrupt, quarantine_map};
pub use state::CorruptRecord;
#[doc(hidden)]
pub use state::decode;

use crate::clock::{Clock, TokioClock};
use crate::error::StoreError;
use crate::observe::{self, PoolEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::Store;
use node::Core;

/// An error of a pool operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// A job with this key exists already (dispatched and not completed yet). After a dispatch
    /// that failed with an unknown outcome, this answer to the retry means the first one landed.
    Duplicate {
        /// The job key.
        job: String,
    },
    /// The job key was rejected.
    InvalidJob {
        /// Why.
        detail: String,
    },
    /// The store failed; see [`StoreError::outcome`] for whether the operation may have applied.
    /// From [`Pool::start`]: a permanent error ([`StoreError::is_transient`] is false), returned
    /// at once instead of being retried.
    Store(StoreError),
    /// [`Pool::start`] could not reach the store within its start timeout
    /// ([`PoolConfigBuilder::start_timeout`]).
    StartTimeout {
        /// How long it waited.
        waited: std::time::Duration,
        /// Store calls it made.
        attempts: u32,
        /// The last store error.
        last_error: StoreError,
    },
    /// The node has as many feed subscribers ([`FEED_SUBSCRIBERS_MAX`]) or waiters
    /// ([`WAITERS_MAX`]) as it takes.
    TooManyWaiters,
    /// The node stopped.
    Stopped,
}

impl From<StoreError> for PoolError {
    fn from(e: StoreError) -> Self {
        PoolError::Store(e)
    }
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Duplicate { job } => write!(f, "job {job:?} already exists"),
            PoolError::InvalidJob { detail } => write!(f, "invalid job: {detail}"),
            PoolError::Store(e) => write!(f, "pool store error: {e}"),
            PoolError::StartTimeout { waited, attempts, last_error } => {
                write!(f, "pool start: store not reachable after {waited:?} ({attempts} attempts): {last_error}")
            }
            PoolError::TooManyWaiters => write!(f, "too many completion waiters or feed subscribers on this node"),
            PoolError::Stopped => write!(f, "pool node stopped"),
        }
    }
}

impl std::error::Error for PoolError {}

/// How a handler run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// The job is done: record its completion (rejected if this attempt is stale).
    Completed,
    /// The handler stopped without finishing (it was asked to stop, or gave up): the job stays
    /// in the pool and runs again, here or elsewhere.
    Abandoned,
}

/// One attempt of one job, as given to a [`JobHandler`].
#[derive(Clone, Debug)]
pub struct Job {
    key: String,
    payload: String,
    attempt: u64,
    worker: String,
    stop: Shutdown,
}

impl Job {
    /// The job's key.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The job's payload.
    pub fn payload(&self) -> &str {
        &self.payload
    }
    /// The attempt number (1 for the first assignment, +1 per reassignment): the fence of job
    /// ownership. Pass it to resources that must reject a stale attempt.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }
    /// The id of the worker running it.
    pub fn worker(&self) -> &str {
        &self.worker
    }
    /// Completes when the handler must stop (worker stopping past its deadline, worker fenced or
    /// dead). A handler that returns after this is treated as [`JobOutcome::Abandoned`].
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }
    /// Whether the handler must stop.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// What users implement: the work of one job.
///
/// ```
/// use keel::pool::{Job, JobHandler, JobOutcome};
/// struct Resize;
/// impl JobHandler for Resize {
///     async fn run(&self, job: Job) -> JobOutcome {
///         tokio::select! {
///             _ = job.stopped() => JobOutcome::Abandoned, // honour the stop promptly
///             _ = async { /* resize job.payload() */ } => JobOutcome::Completed,
///         }
///     }
/// }
/// ```
pub trait JobHandler: Send + Sync + 'static {
    /// Run one attempt of `job`. Must return soon after [`Job::stopped`] completes.
    fn run(&self, job: Job) -> impl Future<Output = JobOutcome> + Send;
}

/// How a worker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerExit {
    /// Stopped (gracefully, or before it registered).
    Stopped,
    /// Cleaned up by the pool while it could not prove it was alive; its jobs moved elsewhere.
    Dead,
    /// Its task panicked.
    Panicked,
}

/// How often [`Pool::start`] repeats its warning while it waits for the store.
pub const START_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Configures and starts a pool node.
pub struct Pool<S: Store> {
    store: S,
    config: PoolConfig,
    clock: Arc<dyn Clock>,
    parent: Option<Shutdown>,
}

impl<S: Store> Pool<S> {
    /// A node of pool `config.name()` over `store`, on the runtime clock.
    pub fn new(store: S, config: PoolConfig) -> Self {
        Pool { store, config, clock: Arc::new(TokioClock), parent: None }
    }

    /// Use another clock (simulation, tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Stop the node (gracefully) when `parent` is cancelled.
    pub fn with_parent(mut self, parent: &Shutdown) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Read store time until it answers (the node's incarnation), within the start timeout.
    async fn wait_for_store(&self, shutdown: &Shutdown) -> Result<u64, PoolError> {
        let cfg = &self.config;
        let started = self.clock.now();
        let deadline = started + cfg.start_timeout;
        // The backoff doubles from the pool's `cleanup_backoff` min up to a sweep interval (or
        // the min, if a user set it longer): a start that waits longer than a sweep for a store
        // that is back only delays the node.
        // MC404: the cap read from the keep-alive interval.
        let cap = if crate::mutants::active(crate::mutants::Mutant::MC404) {
            cfg.keepalive_interval
        } else {
            cfg.sweep_interval
        };
        let (retry_min, retry_max) = (cfg.cleanup_backoff.0, cap.max(cfg.cleanup_backoff.0));
        let mut wait = retry_min;
        let mut attempts = 0u32;
        let mut next_log = started;
        loop {
            attempts += 1;
            let tried = self.clock.now();
            let r = tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = shutdown.cancelled() => return Err(PoolError::Stopped),
                r = self.store.time_ms() => r,
                _ = self.clock.sleep(cfg.op_timeout) => Err(StoreError::Timeout { op: "time" }),
            };
            let e = match r {
                Ok(t) => {
                    if attempts > 1 {
                        observe::emit(PoolEvent::StartStoreReached {
                            pool: (&cfg.name).into(),
                            node: (&cfg.node).into(),
                            attempts,
                            took_us: observe::micros(self.clock.now().saturating_duration_since(tried)),
                        });
                    }
                    return Ok(t);
                }
                Err(e) => e,
            };
            let now = self.clock.now();
            let took_us = observe::micros(now.saturating_duration_since(tried));
            let waited = now.saturating_duration_since(started);
            let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            // MC192: a start that retries every error until its timeout, permanent ones too.
            let permanent = !e.is_transient() && !crate::mutants::active(crate::mutants::Mutant::MC192);
            if permanent || now >= deadline {
                observe::emit(PoolEvent::StartFailed {
                    pool: (&cfg.name).into(),
                    node: (&cfg.node).into(),
                    attempts,
                    waited_ms,
                    permanent,
                    took_us,
                    error: Text::display(&e),
                });
                return Err(if permanent {
                    PoolError::Store(e)
                } else {
                    PoolError::StartTimeout { waited, attempts, last_error: e }
                });
            }
            observe::emit(PoolEvent::StartRetry {
                pool: (&cfg.name).into(),
                node: (&cfg.node).into(),
                attempt: attempts,
                took_us,
                retry_min_us: observe::micros(retry_min),
                retry_max_us: observe::micros(retry_max),
                remaining_us: observe::micros(deadline.saturating_duration_since(now)),
                error: Text::display(&e),
            });
            if now >= next_log {
                observe::emit(PoolEvent::StartWaiting {
                    pool: (&cfg.name).into(),
                    node: (&cfg.node).into(),
                    attempts,
                    waited_ms,
                    timeout_ms: u64::try_from(cfg.start_timeout.as_millis()).unwrap_or(u64::MAX),
                    error: Text::display(&e),
                });
                // MC403: the pace counted from the start's beginning, not the last warning: once
                // the first period is over, every retry warns.
                let base = if crate::mutants::active(crate::mutants::Mutant::MC403) { started } else { now };
                next_log = base + START_LOG_EVERY;
            }
            tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = shutdown.cancelled() => return Err(PoolError::Stopped),
                // The last sleep ends at the deadline, for one last try there.
                // MC320: the backoff skipped.
                _ = self.clock.sleep(if crate::mutants::active(crate::mutants::Mutant::MC320) { std::time::Duration::ZERO } else { wait.min(deadline.saturating_duration_since(now)) }) => {}
            }
            // MC321: the doubling without its cap.
            wait = if crate::mutants::active(crate::mutants::Mutant::MC321) {
                wait * 2
            } else {
                (wait * 2).min(retry_max)
            };
        }
    }

    /// Start the node: read the store time (the node's incarnation, which makes worker ids
    /// unique per process), check the epoch marker, and spawn the sweeper, the router and the keep-alive follower.
    ///
    /// While the store is unreachable it retries with backoff and says so (a warning at the
    /// first failure, then one every [`START_LOG_EVERY`] with the attempt count). It fails with
    /// [`PoolError::StartTimeout`] once [`PoolConfigBuilder::start_timeout`] has passed, at once
    /// with [`PoolError::Store`] on a permanent error ([`StoreError::is_transient`] false:
    /// corrupt data, an argument the store refuses), and with [`PoolError::Stopped`] when the
    /// parent token is cancelled.
    pub async fn start(self) -> Result<PoolNode<S>, PoolError> {
        let shutdown = match &self.parent {
            Some(p) => p.child(&format!("pool:{}", self.config.name)),
            None => Shutdown::new(format!("pool:{}", self.config.name)),
        };
        let incarnation = self.wait_for_store(&shutdown).await?;
        let core = Arc::new(Core::new(self.store, self.config, self.clock, incarnation, shutdown.clone()));
        let _ = core.check_epoch().await; // retried by every sweep
        // Consumers first: the subscription manager takes the completer's first run's channel.
        core.events.start(&shutdown).await;
        core.completer.start(&shutdown).await;
        let tasks = vec![
            tokio::spawn(core.clone().run_sweeper()),
            tokio::spawn(core.clone().run_router()),
            tokio::spawn(core.clone().run_keepalive_follower()),
            tokio::spawn(core.clone().close_completions()),
        ];
        observe::emit(PoolEvent::NodeStarted {
            pool: (&core.cfg.name).into(),
            node: (&core.cfg.node).into(),
            ack_grace_us: observe::micros(core.cfg.ack_grace),
            sweep_interval_us: observe::micros(core.cfg.sweep_interval),
            cleanup_lock_ttl_us: observe::micros(core.cfg.cleanup_lock_ttl),
            op_timeout_us: observe::micros(core.cfg.op_timeout),
            dedup_window_us: observe::micros(core.cfg.done_retention),
            drift_margin_us: observe::micros(core.cfg.drift_margin),
        });
        Ok(PoolNode { core, shutdown, tasks, workers: std::sync::Mutex::new(Vec::new()) })
    }
}

/// A running pool node.
pub struct PoolNode<S: Store> {
    core: Arc<Core<S>>,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: std::sync::Mutex<Vec<watch::Receiver<supervise::SlotState>>>,
}

impl<S: Store> PoolNode<S> {
    /// Add job `job` with `payload`, once: a key that exists already is
    /// [`PoolError::Duplicate`]. It is assigned to the least-loaded live worker, or queued until
    /// one is live. Returns the attempt number (1).
    pub async fn dispatch(&self, job: &str, payload: &str) -> Result<u64, PoolError> {
        if self.shutdown.is_cancelled() {
            return Err(PoolError::Stopped);
        }
        self.core.dispatch(job, payload).await
    }

    /// Start a **supervised** worker running `handler` on this node. `caller` is the token of
    /// the request that asked for it: the worker does **not** stop with it (its own token is a
    /// child of the node's, detached from the caller); it stops with [`WorkerHandle::stop`] or
    /// the node.
    ///
    /// A worker that dies (the pool cleaned it up after a store outage or pause past
    /// `worker_ttl`, or its task panicked) is replaced by a fresh incarnation (a new worker id)
    /// after a jittered backoff ([`PoolConfigBuilder::worker_restart`]; opt out with
    /// [`PoolConfigBuilder::no_worker_restart`]), so the node keeps as many workers as were
    /// added. Each death is a `worker_died` warning and each replacement a `worker_replaced`
    /// event on target `keel::pool`; [`PoolNode::live_workers`] counts them.
    pub fn add_worker<H: JobHandler>(&self, handler: H, caller: &Shutdown) -> WorkerHandle {
        let (token, state) = supervise::start_slot(&self.core, &self.shutdown, handler, caller);
        let mut ws = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        ws.retain(|d| d.borrow().exit.is_none()); // bounded by live slots
        ws.push(state.clone());
        WorkerHandle { token, state }
    }

    /// Worker incarnations running on this node now (registering, working or draining). With
    /// supervision on, it returns to the number of workers added after each death, once the
    /// replacement backoff has passed.
    pub fn live_workers(&self) -> usize {
        usize::try_from(self.core.live_workers.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// Workers of this node that died (cleaned up by the pool, or panicked) so far.
    pub fn worker_deaths(&self) -> u64 {
        self.core.worker_deaths.load(Ordering::Relaxed)
    }

    /// Dead workers of this node replaced by a fresh incarnation so far.
    pub fn worker_replacements(&self) -> u64 {
        self.core.worker_replacements.load(Ordering::Relaxed)
    }

    /// Subscribe to this node's completion events: one [`CompletionEvent`] (kind [`COMPLETED`],
    /// key = job, attempt, payload = the job's payload) per job completed by one of this node's
    /// workers, after the completion was recorded. Events are at most once per subscriber (a
    /// full subscriber buffer drops, counted by [`Subscription::dropped`]); the subscription
    /// closes after the node stopped and delivered everything its workers completed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::pool::{Job, JobHandler, JobOutcome, KindFilter, Pool, PoolConfig, COMPLETED};
    /// use keel::shutdown::Shutdown;
    /// use keel::store::MemoryStore;
    ///
    /// struct Done;
    /// impl JobHandler for Done {
    ///     async fn run(&self, _job: Job) -> JobOutcome {
    ///         JobOutcome::Completed
    ///     }
    /// }
    ///
    /// let node = Pool::new(MemoryStore::new(), PoolConfig::builder("thumbs", "host-a").build()?).start().await?;
    /// let mut completed = node.subscribe(KindFilter::only([COMPLETED]));
    /// let worker = node.add_worker(Done, &Shutdown::new("request"));
    /// node.dispatch("img-1", "small").await?;
    /// let event = completed.recv().await.expect("an event");
    /// assert_eq!((event.completion.key.as_str(), event.completion.payload.as_str()), ("img-1", "small"));
    /// worker.stop().await;
    /// node.stop().await;
    /// assert!(completed.recv().await.is_none(), "closed once the node stopped");
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self, filter: KindFilter) -> Subscription {
        self.core.events.subscribe(filter)
    }

    /// Subscribe to the **pool-wide** completion feed: one [`JobCompletion`] per job of the pool
    /// completed from now on, whichever node dispatched it and whichever worker ran it (this
    /// node may have no workers at all). Delivered from the store's record of completions (the
    /// completion tombstones), through the job map's change feed, and reconciled from a
    /// snapshot after every feed gap (reconnect, store restart) and every sweep, so no
    /// completion is lost across a gap; each is delivered once per subscriber. A subscriber
    /// that falls [`FEED_BUFFER_MAX`] behind loses the newest ones, counted by
    /// [`CompletionFeed::dropped`]. Closes when the node stops.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig};
    /// use keel::shutdown::Shutdown;
    /// use keel::store::MemoryStore;
    ///
    /// struct Done;
    /// impl JobHandler for Done {
    ///     async fn run(&self, _job: Job) -> JobOutcome {
    ///         JobOutcome::Completed
    ///     }
    /// }
    ///
    /// let store = MemoryStore::new();
    /// let cfg = |node: &str| PoolConfig::builder("thumbs", node).worker_ttl(Duration::from_millis(600)).build();
    /// let worker_node = Pool::new(store.clone(), cfg("worker-host")?).start().await?;
    /// let _worker = worker_node.add_worker(Done, &Shutdown::new("request"));
    /// // A node that only dispatches:
    /// let api = Pool::new(store, cfg("api-host")?).start().await?;
    /// let mut feed = api.completions()?;
    /// let done = api.dispatch_and_wait("img-1", "small").await?; // dispatch, then await its completion
    /// assert_eq!(done.job, "img-1"); // attempt 2 if it was queued before the worker registered
    /// assert_eq!(feed.recv().await.map(|c| c.job), Some("img-1".to_owned()));
    /// api.stop().await;
    /// worker_node.stop().await;
    /// # Ok(()) }
    /// ```
    pub fn completions(&self) -> Result<CompletionFeed, PoolError> {
        if self.shutdown.is_cancelled() {
            return Err(PoolError::Stopped);
        }
        self.core.feed.subscribe().ok_or(PoolError::TooManyWaiters)
    }

    /// Dispatch `job` (as [`dispatch`](Self::dispatch)) and wait for its completion, wherever
    /// it runs. The wait is registered before the dispatch, so it cannot miss the completion.
    /// Errors of the dispatch are returned as they are (after an error with unknown outcome,
    /// retry: `Duplicate` means the first try landed, then [`wait_for`](Self::wait_for) it).
    /// Cancel-safe: dropping the future deregisters the wait.
    pub async fn dispatch_and_wait(&self, job: &str, payload: &str) -> Result<JobCompletion, PoolError> {
        // MC348: the wait registered once the dispatch returned: a completion that lands first
        // (the dispatch's reply slow) is never seen.
        if crate::mutants::active(crate::mutants::Mutant::MC348) {
            self.dispatch(job, payload).await?;
            let waiter = self.core.feed.wait(job).ok_or_else(|| self.full_or_stopped())?;
            waiter.floor(0);
            return self.await_waiter(waiter).await;
        }
        let waiter = self.core.feed.wait(job).ok_or_else(|| self.full_or_stopped())?;
        if self.shutdown.is_cancelled() {
            return Err(PoolError::Stopped);
        }
        // The dispatch's write: any change of the key at or below it is an earlier life's.
        let rev = self.core.dispatch_at(job, payload).await?;
        waiter.floor(rev);
        self.await_waiter(waiter).await
    }

    /// Wait for the completion of `job`, dispatched earlier by any node: returns at once if
    /// the store holds its completion (within the dedup window), else when it completes.
    /// Never polls: it is woken by the completion feed (or its resync after a gap).
    pub async fn wait_for(&self, job: &str) -> Result<JobCompletion, PoolError> {
        let waiter = self.core.feed.wait(job).ok_or_else(|| self.full_or_stopped())?;
        // MC433: a wait answered from the node's feed's remembered deliveries (saving the store
        // read): a key added again after its window gets its earlier life's completion.
        #[cfg(feature = "mutants")]
        if crate::mutants::active(crate::mutants::Mutant::MC433)
            && let Some(c) = self.core.feed.remembered_of(job)
        {
            return Ok(c);
        }
        // Registered first, then the store's record: a completion landing in between is seen
        // by the waiter, one before it is in the store.
        let key = state::done_key(job);
        let (tomb, rev) = self.core.op("map_get", self.core.store.map_get(&self.core.maps.jobs, &key)).await?;
        if let Some(c) = tomb.as_deref().and_then(|raw| JobCompletion::from_tombstone(job, raw)) {
            return Ok(c);
        }
        // The map as this read saw it: a change of the key at or below it is an earlier life's.
        waiter.floor(rev);
        self.await_waiter(waiter).await
    }

    fn full_or_stopped(&self) -> PoolError {
        if self.shutdown.is_cancelled() { PoolError::Stopped } else { PoolError::TooManyWaiters }
    }

    async fn await_waiter(&self, mut waiter: feed::Waiter) -> Result<JobCompletion, PoolError> {
        tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = self.shutdown.cancelled() => Err(PoolError::Stopped),
            r = &mut waiter.rx => r.map_err(|_| PoolError::Stopped),
        }
    }

    /// How many times this node saw the store lose the pool's data (epoch marker missing or
    /// changed). Each is also a `data_loss` error event on target `keel::pool`.
    pub fn data_losses(&self) -> u64 {
        self.core.data_losses.load(Ordering::Relaxed)
    }

    /// How many corrupt records of the pool this node knows of (seen by its last sweep or a
    /// dispatch; each was logged once as a `corrupt_record` error event on target `keel::pool`).
    /// [`inspect`] lists them; [`quarantine_corrupt`] moves them out of the way.
    pub fn corrupt_records(&self) -> usize {
        self.core.corrupt_records()
    }

    /// The node's shutdown token.
    pub fn shutdown_token(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Stop the node: every worker drains (finishes or hands back its jobs within its
    /// deadline) and deregisters, then the sweeper and router stop.
    pub async fn stop(mut self) {
        let (pool, node) = (&self.core.cfg.name, &self.core.cfg.node);
        observe::emit(PoolEvent::NodeStopping { pool: pool.into(), node: node.into() });
        self.shutdown.cancel();
        // Workers are children of the node's token: they are draining; wait for every exit.
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for mut done in workers {
            let _ = done.wait_for(|s| s.exit.is_some()).await;
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.core.feed.close();
        observe::emit(PoolEvent::NodeStopped { node: (&self.core.cfg.node).into() });
    }
}

impl<S: Store> Drop for PoolNode<S> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A running worker slot: one worker, replaced by a fresh incarnation when it dies.
pub struct WorkerHandle {
    token: Shutdown,
    state: watch::Receiver<supervise::SlotState>,
}

impl WorkerHandle {
    /// The current (or last) incarnation's worker id (`node.incarnation.n`, unique per
    /// incarnation: a replacement has a new id).
    pub fn id(&self) -> String {
        self.state.borrow().id.clone()
    }

    /// Incarnations started so far: 1, plus one per replaced death.
    pub fn incarnations(&self) -> u64 {
        self.state.borrow().incarnations
    }

    /// Whether the worker has ended for good (stopped, or died with supervision off).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().exit.is_some()
    }

    /// Wait for the worker to end for good without asking it to: after a graceful stop
    /// (the node's), or a death when dead workers are not replaced.
    pub async fn join(&mut self) -> WorkerExit {
        match self.state.wait_for(|s| s.exit.is_some()).await {
            Ok(s) => s.exit.unwrap_or(WorkerExit::Panicked),
            Err(_) => WorkerExit::Panicked,
        }
    }

    /// Stop gracefully: stop taking jobs, let running ones finish within the shutdown deadline,
    /// hand back the rest, deregister; no replacement follows. Returns how the last incarnation
    /// ended.
    pub async fn stop(mut self) -> WorkerExit {
        self.token.cancel();
        self.join().await
    }
}

#[cfg(test)]
pub(crate) mod regression; // its failing store (`Mortal`) serves the completer's tests too
#[cfg(test)]
mod tests;
