//! A lease with fencing tokens: leader election and mutexed supervision (lineage: Sequin's
//! `MutexOwner`, SPEC §3).
//!
//! One [`LeaseOwner`] per process and lease name. While it holds the lease it runs your guarded
//! work with a [`Guard`] carrying the grant's **fence**; pass the fence to every protected resource
//! so it can reject a stale holder. The owner renews every `renew_interval`, retries store errors
//! with jittered backoff but never past its local deadline (send time of the last successful
//! renewal + ttl − drift margin), and at that deadline steps down: it cancels the work, awaits it,
//! publishes [`LeaseState::Lost`] and competes again with a fresh token. It never crashes on a
//! store error and never escalates one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use keel::lease::{LeaseConfig, LeaseOwner};
//! use keel::store::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let config = LeaseConfig::builder("scheduler", "host-a")
//!     .ttl(Duration::from_millis(300))
//!     .quarantine(false) // demo only: a fresh store is quarantined for one TTL by default
//!     .build()?;
//! let handle = LeaseOwner::new(store, config).start(|guard| async move {
//!     // Leader-only work: stop when the lease is lost.
//!     guard.lost().await;
//! });
//! let fence = handle.held().await?;
//! assert_eq!(handle.fence(), Some(fence));
//! handle.stop().await?; // stops the work, then releases by compare-and-delete
//! # Ok(()) }
//! ```

mod config;
mod driver;
// The model checker (`cargo modelcheck`) drives the real machine: feature `model` exposes it.
#[cfg_attr(feature = "model", allow(missing_docs, unreachable_pub))]
mod machine;
/// The lease's pure machine, for the model checker in `keel-tests`. Not a stable API.
#[cfg(feature = "model")]
#[doc(hidden)]
pub use machine::{Machine, Step, Timing};

use std::future::Future;
use std::sync::Arc;

use crate::watch;

pub use config::{DEFAULT_TTL, LeaseConfig, LeaseConfigBuilder};

use crate::clock::{Clock, TokioClock};
use crate::error::StoreError;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Why a held lease was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LostReason {
    /// No renewal succeeded before the local deadline (store down, partition, long pause).
    Deadline,
    /// The store said our token no longer holds the lease (expired or taken).
    Taken,
}

/// What an owner believes, as published on its state watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseState {
    /// Not held (yet); competing for it.
    Awaiting,
    /// Held with this fencing token; the guarded work is running.
    Held {
        /// The grant's fencing token.
        fence: u64,
    },
    /// A grant was lost and its work stopped; competing again.
    Lost {
        /// The lost grant's fence.
        fence: u64,
        /// Why.
        reason: LostReason,
    },
    /// The owner stopped and released.
    Released,
}

impl LeaseState {
    /// The fence, if held.
    pub fn fence(&self) -> Option<u64> {
        match self {
            LeaseState::Held { fence } => Some(*fence),
            _ => None,
        }
    }
}

/// An error surfaced by a [`LeaseHandle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// The owner stopped before the awaited state was reached.
    Stopped,
    /// The owner task panicked (a bug in keel or in guarded work it awaited).
    Panicked(String),
    /// A store error was escalated to the parent. Only the historical mutants MS1/MS2 do this;
    /// keel itself never escalates store errors.
    Escalated(StoreError),
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::Stopped => write!(f, "lease owner stopped"),
            LeaseError::Panicked(m) => write!(f, "lease owner panicked: {m}"),
            LeaseError::Escalated(e) => write!(f, "lease owner escalated a store error: {e}"),
        }
    }
}

impl std::error::Error for LeaseError {}

/// Given to guarded work while the lease is held.
#[derive(Clone, Debug)]
pub struct Guard {
    fence: u64,
    shutdown: Shutdown,
}

impl Guard {
    /// The grant's fencing token. Protected resources must reject fences lower than the highest
    /// they have seen.
    pub fn fence(&self) -> u64 {
        self.fence
    }

    /// Completes when the work must stop (lease lost, or the owner is stopping).
    pub async fn lost(&self) {
        self.shutdown.cancelled().await
    }

    /// Whether the work must stop.
    pub fn is_lost(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// The work's shutdown token (for passing to sub-tasks).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

/// Configures and starts a lease owner.
pub struct LeaseOwner<S: Store> {
    store: S,
    config: LeaseConfig,
    clock: Arc<dyn Clock>,
    parent: Option<Shutdown>,
}

impl<S: Store> LeaseOwner<S> {
    /// An owner of `config.name()` over `store`, on the runtime clock.
    pub fn new(store: S, config: LeaseConfig) -> Self {
        LeaseOwner { store, config, clock: Arc::new(TokioClock), parent: None }
    }

    /// Use another clock (simulation, tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Stop (gracefully: work stopped, lease released) when `parent` is cancelled.
    pub fn with_parent(mut self, parent: &Shutdown) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Spawn the owner. `work` is called once per grant, after the grant is held and renewal is
    /// armed; the future it returns is cancelled (via [`Guard::lost`]) and awaited before the
    /// owner competes again.
    pub fn start<F, Fut>(self, work: F) -> LeaseHandle
    where
        F: FnMut(Guard) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = match &self.parent {
            Some(p) => p.child(&format!("lease:{}", self.config.name)),
            None => Shutdown::new(format!("lease:{}", self.config.name)),
        };
        let (tx, rx) = watch::channel(LeaseState::Awaiting);
        let driver = driver::Driver::new(self.store, self.config, self.clock, shutdown.clone(), tx);
        let task = tokio::spawn(driver.run(work));
        LeaseHandle { state: rx, shutdown, task: Some(task) }
    }
}

/// A running lease owner.
pub struct LeaseHandle {
    state: watch::Receiver<LeaseState>,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), LeaseError>>>,
}

impl LeaseHandle {
    /// The current state.
    pub fn state(&self) -> LeaseState {
        *self.state.borrow()
    }

    /// A watch of the state.
    pub fn subscribe(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }

    /// The fence if held now.
    pub fn fence(&self) -> Option<u64> {
        self.state().fence()
    }

    /// Waits until the lease is held and returns its fence.
    pub async fn held(&self) -> Result<u64, LeaseError> {
        let mut rx = self.state.clone();
        loop {
            match *rx.borrow_and_update() {
                LeaseState::Held { fence } => return Ok(fence),
                LeaseState::Released => return Err(LeaseError::Stopped),
                _ => {}
            }
            rx.changed().await.map_err(|_| LeaseError::Stopped)?;
        }
    }

    /// The owner's shutdown token.
    pub fn shutdown_token(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether the owner task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stop gracefully: cancel and await the guarded work, release by compare-and-delete, and
    /// wait for the owner to exit. Returns how the owner ended.
    pub async fn stop(mut self) -> Result<(), LeaseError> {
        self.shutdown.cancel();
        self.join().await
    }

    /// Wait for the owner to exit without asking it to.
    pub async fn join(&mut self) -> Result<(), LeaseError> {
        match self.task.take() {
            None => Ok(()),
            Some(task) => match task.await {
                Ok(r) => r,
                Err(e) => Err(LeaseError::Panicked(e.to_string())),
            },
        }
    }
}

impl Drop for LeaseHandle {
    fn drop(&mut self) {
        // A dropped handle stops its owner (gracefully, in the background) instead of leaking it.
        self.shutdown.cancel();
    }
}
