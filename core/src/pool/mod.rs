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

mod complete;
mod config;
mod inspect;
mod load;
mod node;
mod state;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::watch;
use tokio::sync::mpsc;
use tracing::debug;

pub use crate::completer::{CompletionEvent, KindFilter, Subscription};
pub use config::{DEFAULT_WORKER_TTL, PoolConfig, PoolConfigBuilder};

/// The [`Completion::kind`](crate::completer::Completion) of a job completed by a pool worker.
pub const COMPLETED: &str = "completed";
pub use inspect::{PoolReport, inspect, quarantine_corrupt, quarantine_map};
pub use state::CorruptRecord;
#[doc(hidden)]
pub use state::decode;

use crate::clock::{Clock, TokioClock};
use crate::error::StoreError;
use crate::observe::{self, PoolEvent};
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
    Store(StoreError),
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

    /// Start the node: read the store time (the node's incarnation, which makes worker ids
    /// unique per process), check the epoch marker, and spawn the sweeper and the router.
    /// Retries while the store is unreachable; fails only when the parent token is cancelled.
    pub async fn start(self) -> Result<PoolNode<S>, PoolError> {
        let shutdown = match &self.parent {
            Some(p) => p.child(&format!("pool:{}", self.config.name)),
            None => Shutdown::new(format!("pool:{}", self.config.name)),
        };
        let mut wait = self.config.cleanup_backoff.0;
        let incarnation = loop {
            let r = tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = shutdown.cancelled() => return Err(PoolError::Stopped),
                    r = self.store.time_ms() => r,
                    _ = self.clock.sleep(self.config.op_timeout) => Err(StoreError::Timeout { op: "time" }),
                };
            if let Ok(t) = r {
                break t;
            }
            tokio::select! {
            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = shutdown.cancelled() => return Err(PoolError::Stopped),
                    _ = self.clock.sleep(wait) => {}
                }
            wait = (wait * 2).min(self.config.sweep_interval);
        };
        let core = Arc::new(Core::new(self.store, self.config, self.clock, incarnation, shutdown.clone()));
        let _ = core.check_epoch().await; // retried by every sweep
        // Consumers first: the subscription manager takes the completer's first run's channel.
        core.events.start(&shutdown).await;
        core.completer.start(&shutdown).await;
        let tasks = vec![
            tokio::spawn(core.clone().run_sweeper()),
            tokio::spawn(core.clone().run_router()),
            tokio::spawn(core.clone().close_completions()),
        ];
        observe::emit(PoolEvent::NodeStarted { pool: (&core.cfg.name).into(), node: (&core.cfg.node).into() });
        Ok(PoolNode { core, shutdown, tasks, workers: std::sync::Mutex::new(Vec::new()) })
    }
}

/// A running pool node.
pub struct PoolNode<S: Store> {
    core: Arc<Core<S>>,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: std::sync::Mutex<Vec<watch::Receiver<Option<WorkerExit>>>>,
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

    /// Start a worker running `handler` on this node. `caller` is the token of the request that
    /// asked for it: the worker does **not** stop with it (its own token is a child of the
    /// node's, detached from the caller); it stops with [`WorkerHandle::stop`] or the node.
    pub fn add_worker<H: JobHandler>(&self, handler: H, caller: &Shutdown) -> WorkerHandle {
        let id = self.core.new_worker_id();
        let token = self.shutdown.child(&format!("worker:{id}"));
        let (tx, rx) = mpsc::channel(self.core.cfg.intake_buffer);
        self.core.register_local(&id, tx);
        // Registered before the worker runs, so the completer's drain waits for this worker.
        let producer = match self.core.completer.producer(&id) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                debug!(target: "keel::pool", worker = %id, error = %e, "no completion events for this worker (node stopping)");
                None
            }
        };
        let w = worker::Worker {
            producer,
            core: self.core.clone(),
            id: id.clone(),
            handler: Arc::new(handler),
            token: token.clone(),
            caller: caller.child("worker"),
            intake: rx,
        };
        let task = tokio::spawn(w.run());
        let (done_tx, done) = watch::channel(None);
        tokio::spawn({
            let token = token.clone();
            async move {
                let exit = task.await.unwrap_or(WorkerExit::Panicked);
                token.cancel();
                done_tx.send_replace(Some(exit));
            }
        });
        let mut ws = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        ws.retain(|d| d.borrow().is_none()); // bounded by live workers
        ws.push(done.clone());
        WorkerHandle { id, token, done }
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
        self.shutdown.cancel();
        // Workers are children of the node's token: they are draining; wait for every exit.
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for mut done in workers {
            let _ = done.wait_for(Option::is_some).await;
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        observe::emit(PoolEvent::NodeStopped { node: (&self.core.cfg.node).into() });
    }
}

impl<S: Store> Drop for PoolNode<S> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A running worker.
pub struct WorkerHandle {
    id: String,
    token: Shutdown,
    done: watch::Receiver<Option<WorkerExit>>,
}

impl WorkerHandle {
    /// The worker's id (unique per incarnation: `node.incarnation.n`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the worker has ended.
    pub fn is_finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// Wait for the worker to end without asking it to.
    pub async fn join(&mut self) -> WorkerExit {
        match self.done.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(WorkerExit::Panicked),
            Err(_) => WorkerExit::Panicked,
        }
    }

    /// Stop gracefully: stop taking jobs, let running ones finish within the shutdown deadline,
    /// hand back the rest, deregister. Returns how it ended.
    pub async fn stop(mut self) -> WorkerExit {
        self.token.cancel();
        self.join().await
    }
}

#[cfg(test)]
mod regression;
#[cfg(test)]
mod tests;
