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
mod guard;
mod machine;

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::watch;

pub use config::{DEFAULT_TTL, LeaseConfig, LeaseConfigBuilder};
pub use guard::Guard;
use guard::Validity;

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
        let grant = CurrentGrant::default();
        let driver =
            driver::Driver::new(self.store, self.config, self.clock, shutdown.clone(), tx, grant.clone(), self.parent);
        let task = tokio::spawn(driver.run(work));
        LeaseHandle { state: rx, grant, shutdown, task: Some(task) }
    }
}

/// The validity of the grant the owner holds, if any: shared by the driver and the handle so that
/// the handle, like a [`Guard`], judges a `Held` state against the local deadline when read.
pub(super) type CurrentGrant = Arc<Mutex<Option<Arc<Validity>>>>;

/// A running lease owner.
pub struct LeaseHandle {
    state: watch::Receiver<LeaseState>,
    grant: CurrentGrant,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), LeaseError>>>,
}

impl LeaseHandle {
    /// The current state. A published `Held` whose local deadline has passed reads as
    /// `Lost { reason: Deadline }` even before the owner's driver has run (after a freeze).
    pub fn state(&self) -> LeaseState {
        self.judged(*self.state.borrow())
    }

    fn judged(&self, s: LeaseState) -> LeaseState {
        let LeaseState::Held { fence } = s else { return s };
        let grant = self.grant.lock().unwrap_or_else(|p| p.into_inner());
        match grant.as_ref() {
            Some(v) if v.fence() == fence && !v.is_valid() => LeaseState::Lost { fence, reason: LostReason::Deadline },
            _ => s,
        }
    }

    /// A watch of the state as the owner's driver publishes it (it may lag a freeze: use
    /// [`state`](Self::state) or the [`Guard`] to judge validity at an instant).
    pub fn subscribe(&self) -> watch::Receiver<LeaseState> {
        self.state.clone()
    }

    /// The fence if held now (judged against the local deadline at this instant).
    pub fn fence(&self) -> Option<u64> {
        self.state().fence()
    }

    /// Waits until the lease is held and returns its fence.
    pub async fn held(&self) -> Result<u64, LeaseError> {
        let mut rx = self.state.clone();
        loop {
            let s = *rx.borrow_and_update();
            match self.judged(s) {
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

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::MemoryStore;
    use crate::testkit::ManualClock;

    /// #10 "belief after a freeze": a process resuming past its local deadline must not act as
    /// holder, not even in the window before the owner's driver task runs again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_freeze_past_the_deadline_reads_lost_before_any_task_runs() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryStore::with_clock(clock.clone(), 1_000_000);
        let ttl = Duration::from_millis(300);
        let cfg = LeaseConfig::builder("l", "n").ttl(ttl).quarantine(false).build().expect("valid config");
        let (tx, mut guards) = tokio::sync::mpsc::unbounded_channel();
        let handle = LeaseOwner::new(store, cfg).with_clock(clock.clone()).start(move |guard: Guard| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(guard.clone());
                guard.lost().await
            }
        });
        let fence = handle.held().await.expect("held");
        let guard = guards.recv().await.expect("work started");
        assert_eq!(guard.valid_fence(), Some(fence));
        assert!(!guard.is_lost());

        // Frozen for one TTL: no renewal could have run. Nothing yields between the jump and
        // the reads below, so the driver's timers have not fired.
        clock.advance(ttl);
        assert!(guard.is_lost(), "a resumed stale holder must read lost at once");
        assert_eq!(guard.valid_fence(), None);
        assert_eq!(handle.fence(), None);
        assert_eq!(handle.state(), LeaseState::Lost { fence, reason: LostReason::Deadline });
        assert_eq!(*handle.subscribe().borrow(), LeaseState::Held { fence }, "the driver has not run yet");

        // Then the driver steps down and the guard's future completes.
        guard.lost().await;
        handle.stop().await.expect("clean stop");
    }
}
