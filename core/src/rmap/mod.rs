//! A replicated map with change notifications and `set_and_wait` (lineage: pulse's rmap,
//! SPEC §4).
//!
//! Every node holds a local replica of one store hash. Reads ([`get`](ReplicatedMap::get),
//! [`snapshot`](ReplicatedMap::snapshot), …) are served from memory and never wait for
//! notification delivery. Writes go to the store as one atomic script each, which bumps the map's
//! revision and publishes the change; every replica applies changes in revision order and
//! resyncs from a fresh snapshot whenever the feed may have missed some. See `docs/rmap.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keel::rmap::{ReplicatedMap, RmapConfig};
//! use keel::store::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let a = ReplicatedMap::start(store.clone(), RmapConfig::builder("routes").build()?);
//! let b = ReplicatedMap::start(store, RmapConfig::builder("routes").build()?);
//! b.joined().await?;
//! let mut changes = b.subscribe()?;
//! // Returns once `a`'s own replica reflects the write (revision ≥ the write's).
//! let rev = a.set_and_wait("/users", "svc-users:8080").await?;
//! assert_eq!(a.get("/users").as_deref(), Some("svc-users:8080"));
//! let change = changes.recv().await.expect("b sees the change");
//! assert_eq!((change.key.as_str(), change.rev), ("/users", rev));
//! a.stop().await;
//! b.stop().await;
//! # Ok(()) }
//! ```

mod config;
mod driver;
// The model checker (`cargo modelcheck`) drives the real replica: feature `model` exposes it.
#[cfg_attr(feature = "model", allow(missing_docs, unreachable_pub))]
mod replica;
/// The replica's pure machine, for the model checker in `keel-models`. Not a stable API.
#[cfg(feature = "model")]
#[doc(hidden)]
pub use replica::Verdict;
mod subscribe;
mod waiters;

#[cfg(all(test, keel_loom))]
mod loom_tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::watch;
use tokio::sync::mpsc;

pub use config::{RmapConfig, RmapConfigBuilder};
pub use subscribe::Subscription;

use crate::clock::{Clock, TokioClock};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::{MapSnapshot, MapWrite, Store, WriteOutcome};
#[cfg(feature = "model")]
#[doc(hidden)]
pub use replica::Replica;
#[cfg(not(feature = "model"))]
use replica::Replica;
use waiters::{RegisterError, Registry, WaitResult};

/// An error of a [`ReplicatedMap`] operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmapError {
    /// The store failed; see [`StoreError::outcome`] for whether the write may have applied.
    Store(StoreError),
    /// The map was stopped.
    Closed,
    /// The caller's token was cancelled before the replica caught up. The write itself was
    /// acknowledged (or is in flight) and may be applied.
    Cancelled,
    /// The store lost its data after acknowledging the write: a snapshot taken later does not
    /// contain it. The replica mirrors the store again, at revision `rev`.
    DataLost {
        /// Revision of the snapshot that showed the loss.
        rev: u64,
    },
    /// Too many `set_and_wait` calls in flight ([`RmapConfigBuilder::max_waiters`]).
    TooManyWaiters,
    /// Too many live subscriptions ([`RmapConfigBuilder::max_subscribers`]).
    TooManySubscribers,
}

impl fmt::Display for RmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RmapError::Store(e) => write!(f, "replicated map: {e}"),
            RmapError::Closed => write!(f, "replicated map stopped"),
            RmapError::Cancelled => write!(f, "cancelled while waiting for the replica"),
            RmapError::DataLost { rev } => write!(f, "the store lost the write with its data (now at revision {rev})"),
            RmapError::TooManyWaiters => write!(f, "too many set_and_wait calls in flight"),
            RmapError::TooManySubscribers => write!(f, "too many subscriptions"),
        }
    }
}

impl std::error::Error for RmapError {}

impl From<StoreError> for RmapError {
    fn from(e: StoreError) -> Self {
        RmapError::Store(e)
    }
}

/// MP1's shared notification channel (the historical `ichan`), only built under that mutant.
struct Mp1 {
    gate: tokio::sync::Mutex<()>,
    tx: mpsc::Sender<crate::store::Change>,
    rx: tokio::sync::Mutex<mpsc::Receiver<crate::store::Change>>,
}

/// State shared by the handles and the apply loop.
struct Shared {
    replica: Mutex<Replica>,
    waiters: crate::sync::Arc<Registry>,
    subs: subscribe::Subscribers,
    /// Completed syncs (join + resyncs).
    syncs: watch::Sender<u64>,
    mp1: Option<Mp1>,
}

impl Shared {
    fn lock_replica(&self) -> MutexGuard<'_, Replica> {
        // Updates under this lock are single assignments of plain data: a panic elsewhere cannot
        // leave the replica half-written in a way worse than stale, which a resync repairs.
        self.replica.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn revision(&self) -> u64 {
        self.lock_replica().rev()
    }

    fn len(&self) -> usize {
        self.lock_replica().entries().len()
    }
}

struct Control {
    shutdown: Shutdown,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Control {
    fn drop(&mut self) {
        // The last handle gone stops the apply loop instead of leaking it.
        self.shutdown.cancel();
    }
}

/// Options of [`ReplicatedMap::builder`] beyond the config: clock and parent token.
pub struct RmapBuilder<S: Store> {
    store: S,
    config: RmapConfig,
    clock: Arc<dyn Clock>,
    parent: Option<Shutdown>,
}

impl<S: Store> RmapBuilder<S> {
    /// Use `clock` for timeouts, backoff and anti-entropy (default: the runtime's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Stop the map when `parent` is cancelled.
    pub fn parent(mut self, parent: &Shutdown) -> Self {
        self.parent = Some(parent.clone());
        self
    }

    /// Spawn the apply loop and return the handle. The replica is empty until
    /// [`joined`](ReplicatedMap::joined).
    pub fn start(self) -> ReplicatedMap<S> {
        let cfg = Arc::new(self.config);
        let shutdown = match &self.parent {
            Some(p) => p.child(&format!("rmap:{}", cfg.name)),
            None => Shutdown::new(format!("rmap:{}", cfg.name)),
        };
        let mp1 = mutants::active(Mutant::MP1).then(|| {
            let (tx, rx) = mpsc::channel(100);
            Mp1 { gate: tokio::sync::Mutex::new(()), tx, rx: tokio::sync::Mutex::new(rx) }
        });
        let shared = Arc::new(Shared {
            replica: Mutex::new(Replica::default()),
            waiters: crate::sync::Arc::new(Registry::new(&cfg.name, cfg.max_waiters)),
            subs: subscribe::Subscribers::new(cfg.subscriber_buffer, cfg.max_subscribers),
            syncs: watch::channel(0).0,
            mp1,
        });
        let d = driver::Driver {
            store: self.store.clone(),
            cfg: cfg.clone(),
            clock: self.clock.clone(),
            shutdown: shutdown.clone(),
            shared: shared.clone(),
        };
        let task = tokio::spawn(d.run());
        ReplicatedMap {
            store: self.store,
            cfg,
            clock: self.clock,
            shared,
            ctl: Arc::new(Control { shutdown, task: tokio::sync::Mutex::new(Some(task)) }),
        }
    }
}

/// A handle to one node's replica of a map. Cheap to clone; the apply loop stops when
/// [`stop`](Self::stop) is called, the parent token is cancelled, or the last handle is dropped.
pub struct ReplicatedMap<S: Store> {
    store: S,
    cfg: Arc<RmapConfig>,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
    ctl: Arc<Control>,
}

impl<S: Store> Clone for ReplicatedMap<S> {
    fn clone(&self) -> Self {
        ReplicatedMap {
            store: self.store.clone(),
            cfg: self.cfg.clone(),
            clock: self.clock.clone(),
            shared: self.shared.clone(),
            ctl: self.ctl.clone(),
        }
    }
}

impl<S: Store> fmt::Debug for ReplicatedMap<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedMap").field("name", &self.cfg.name).field("rev", &self.revision()).finish()
    }
}

impl<S: Store> ReplicatedMap<S> {
    /// Start a replica of `config.name()` over `store` on the runtime's clock.
    pub fn start(store: S, config: RmapConfig) -> Self {
        Self::builder(store, config).start()
    }

    /// A builder to set the clock and the parent token before starting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use keel::clock::TokioClock;
    /// use keel::rmap::{ReplicatedMap, RmapConfig};
    /// use keel::shutdown::Shutdown;
    /// use keel::store::MemoryStore;
    /// let service = Shutdown::new("service");
    /// let map = ReplicatedMap::builder(MemoryStore::new(), RmapConfig::builder("flags").build()?)
    ///     .clock(Arc::new(TokioClock))
    ///     .parent(&service)
    ///     .start();
    /// map.joined().await?;
    /// service.cancel(); // stops the map too
    /// map.stop().await;
    /// assert!(map.set("x", "1").await.is_ok()); // writes still reach the store
    /// # Ok(()) }
    /// ```
    pub fn builder(store: S, config: RmapConfig) -> RmapBuilder<S> {
        RmapBuilder { store, config, clock: Arc::new(TokioClock), parent: None }
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Waits until the replica loaded its first snapshot; returns its revision.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::rmap::{ReplicatedMap, RmapConfig};
    /// use keel::store::{MapWrite, MemoryStore, Store};
    /// let store = MemoryStore::new();
    /// store.map_write("m", "k", MapWrite::Set("v".into())).await?;
    /// let map = ReplicatedMap::start(store, RmapConfig::builder("m").build()?);
    /// let rev = map.joined().await?;
    /// assert_eq!(map.revision(), rev);
    /// assert_eq!(map.get("k").as_deref(), Some("v"));
    /// # Ok(()) }
    /// ```
    pub async fn joined(&self) -> Result<u64, RmapError> {
        let mut rx = self.shared.syncs.subscribe();
        let called_at = self.revision();
        loop {
            // MC228: the stop judged before the join: a stopped map that joined says `Closed`.
            if crate::mutants::active(crate::mutants::Mutant::MC228) && self.ctl.shutdown.is_cancelled() {
                return Err(RmapError::Closed);
            }
            // MC151: the join counted from zero: returns before the first load.
            let floor = u64::from(!crate::mutants::active(crate::mutants::Mutant::MC151));
            if *rx.borrow_and_update() >= floor {
                // MC201: the revision read when the call began, not the one the join reached.
                return Ok(if crate::mutants::active(crate::mutants::Mutant::MC201) {
                    called_at
                } else {
                    self.revision()
                });
            }
            if self.ctl.shutdown.is_cancelled() {
                return Err(RmapError::Closed);
            }
            tokio::select! {
                biased;
                r = rx.changed() => r.map_err(|_| RmapError::Closed)?,
                _ = self.ctl.shutdown.cancelled() => {}
            }
        }
    }

    /// Completed syncs so far (the join plus every resync).
    pub fn syncs(&self) -> u64 {
        *self.shared.syncs.borrow()
    }

    /// The local value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        let replica = self.shared.lock_replica();
        if crate::mutants::active(crate::mutants::Mutant::MC415) {
            // MC415: a range lookup where an exact one is meant: an absent key answers the value
            // of the next key in order.
            return replica
                .entries()
                .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
                .next()
                .map(|(_, v)| v.clone());
        }
        replica.entries().get(key).cloned()
    }

    /// A copy of the whole replica with the revision it reflects (and the store's seedings of
    /// the map's revisions it last loaded): once converged, the store's own snapshot.
    pub fn snapshot(&self) -> MapSnapshot {
        self.shared.lock_replica().snapshot()
    }

    /// The local keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.shared.lock_replica().entries().keys().cloned().collect()
    }

    /// Number of local entries.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the replica is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The revision the replica reflects (0 before the join).
    pub fn revision(&self) -> u64 {
        self.shared.revision()
    }

    /// Whether a snapshot was loaded yet.
    pub fn is_joined(&self) -> bool {
        self.shared.lock_replica().is_loaded()
    }

    /// `set_and_wait` calls in flight (registered waiters).
    pub fn waiters(&self) -> usize {
        self.shared.waiters.len()
    }

    /// Live subscriptions.
    pub fn subscribers(&self) -> usize {
        self.shared.subs.len()
    }

    /// Apply one write through the store (one atomic script: mutate, bump, publish). The
    /// replica reflects it once its change is applied; use [`set_and_wait`](Self::set_and_wait)
    /// to wait for that.
    pub async fn write(&self, key: &str, write: MapWrite) -> Result<WriteOutcome, RmapError> {
        // MC185: a write cut at the retry floor, not the op timeout.
        let cut = if crate::mutants::active(crate::mutants::Mutant::MC185) {
            self.cfg.retry_min
        } else {
            self.cfg.op_timeout
        };
        let r = driver::timed(&*self.clock, cut, "map_write", self.store.map_write(&self.cfg.name, key, write)).await;
        let r = match r {
            // MC402: keel's own cut at the op timeout reported as a call that never left (not
            // applied), though the request went out and may have applied.
            Err(StoreError::Timeout { .. }) if crate::mutants::active(crate::mutants::Mutant::MC402) => {
                Err(StoreError::Unavailable { reason: "map_write: no reply within the op timeout".into() })
            }
            r => r,
        };
        Ok(r?)
    }

    /// Set `key` to `value`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::rmap::{ReplicatedMap, RmapConfig};
    /// use keel::store::MemoryStore;
    /// let map = ReplicatedMap::start(MemoryStore::new(), RmapConfig::builder("m").build()?);
    /// let out = map.set("k", "v1").await?;
    /// assert!(out.applied);
    /// assert!(!map.set_if_absent("k", "v2").await?.applied);
    /// assert!(map.compare_and_set("k", "v1", "v3").await?.applied);
    /// assert!(!map.compare_and_delete("k", "v1").await?.applied);
    /// assert!(map.delete("k").await?.applied);
    /// map.append("list", ["a", "b", "c"]).await?;
    /// let out = map.remove("list", ["b"]).await?;
    /// assert_eq!(keel::store::list_items(out.value.as_deref().unwrap_or("")), vec!["a", "c"]);
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, key: &str, value: &str) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::Set(value.to_owned())).await
    }

    /// Set `key` only if it is absent.
    pub async fn set_if_absent(&self, key: &str, value: &str) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::SetIfAbsent(value.to_owned())).await
    }

    /// Set `key` to `new` only if it holds `expected`.
    pub async fn compare_and_set(&self, key: &str, expected: &str, new: &str) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::CompareAndSet { expected: expected.to_owned(), new: new.to_owned() }).await
    }

    /// Delete `key` only if it holds `expected`.
    pub async fn compare_and_delete(&self, key: &str, expected: &str) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::CompareAndDelete(expected.to_owned())).await
    }

    /// Delete `key`.
    pub async fn delete(&self, key: &str) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::Delete).await
    }

    /// Append items to the list value of `key`.
    pub async fn append<I: IntoIterator<Item = T>, T: Into<String>>(
        &self,
        key: &str,
        items: I,
    ) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::Append(items.into_iter().map(Into::into).collect())).await
    }

    /// Remove every occurrence of the items from the list value of `key`.
    pub async fn remove<I: IntoIterator<Item = T>, T: Into<String>>(
        &self,
        key: &str,
        items: I,
    ) -> Result<WriteOutcome, RmapError> {
        self.write(key, MapWrite::Remove(items.into_iter().map(Into::into).collect())).await
    }

    /// Set `key` to `value` and wait until this node's replica has applied a revision ≥ the
    /// write's; returns the write's revision. A per-call waiter is registered before the write,
    /// so the wake-up cannot be missed; dropping the future cancels the wait and removes the
    /// waiter. Never hangs while the map runs and the store is reachable; fails with
    /// [`RmapError::Closed`] if the map stops first and [`RmapError::DataLost`] if the store
    /// lost the write with its data.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::rmap::{ReplicatedMap, RmapConfig};
    /// use keel::store::MemoryStore;
    /// let map = ReplicatedMap::start(MemoryStore::new(), RmapConfig::builder("m").build()?);
    /// let rev = map.set_and_wait("k", "v").await?;
    /// assert!(map.revision() >= rev);
    /// assert_eq!(map.get("k").as_deref(), Some("v"));
    /// assert_eq!(map.waiters(), 0);
    /// # Ok(()) }
    /// ```
    pub async fn set_and_wait(&self, key: &str, value: &str) -> Result<u64, RmapError> {
        if let Some(m) = &self.shared.mp1 {
            return self.set_and_wait_mp1(m, key, value).await;
        }
        let register = || {
            Registry::register(&self.shared.waiters).map_err(|e| match e {
                RegisterError::Closed => RmapError::Closed,
                RegisterError::Full => RmapError::TooManyWaiters,
            })
        };
        // Registered before the write: a stopped map (or a full registry) refuses the call
        // before anything of it reaches the store. MC223 registers after the write.
        let early = if crate::mutants::active(crate::mutants::Mutant::MC223) { None } else { Some(register()?) };
        let out = self.set(key, value).await?;
        let mut waiter = match early {
            Some(w) => w,
            None => register()?,
        };
        waiter.arm(out.rev);
        match waiter.wait().await {
            WaitResult::Reached(reached) => {
                // Judged at the instant it returns: the replica must have applied the write.
                let local_rev = self.revision();
                crate::observe::emit(crate::observe::RmapEvent::WaitReturned {
                    map: (&self.cfg.name).into(),
                    rev: out.rev,
                    local_rev,
                });
                // MC183: the revision the replica reached, not the write's.
                Ok(if crate::mutants::active(crate::mutants::Mutant::MC183) { reached } else { out.rev })
            }
            // MC232: a lost write reported as the map's stop.
            WaitResult::Lost(_) if crate::mutants::active(crate::mutants::Mutant::MC232) => Err(RmapError::Closed),
            WaitResult::Lost(rev) => Err(RmapError::DataLost { rev }),
            // MC265: the map's stop reported as the caller's cancellation.
            WaitResult::Closed if crate::mutants::active(crate::mutants::Mutant::MC265) => Err(RmapError::Cancelled),
            WaitResult::Closed => Err(RmapError::Closed),
        }
    }

    /// [`set_and_wait`](Self::set_and_wait), cancelled when `token` is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::rmap::{ReplicatedMap, RmapConfig, RmapError};
    /// use keel::shutdown::Shutdown;
    /// use keel::store::MemoryStore;
    /// let map = ReplicatedMap::start(MemoryStore::new(), RmapConfig::builder("m").build()?);
    /// let token = Shutdown::new("request");
    /// token.cancel();
    /// assert_eq!(map.set_and_wait_until("k", "v", &token).await, Err(RmapError::Cancelled));
    /// assert_eq!(map.waiters(), 0); // nothing leaked
    /// # Ok(()) }
    /// ```
    pub async fn set_and_wait_until(&self, key: &str, value: &str, token: &Shutdown) -> Result<u64, RmapError> {
        // MC398: the token looked at once, before the call: the wait is deaf to it.
        if crate::mutants::active(crate::mutants::Mutant::MC398) {
            if token.is_cancelled() {
                return Err(RmapError::Cancelled);
            }
            return self.set_and_wait(key, value).await;
        }
        tokio::select! {
            biased;
            _ = token.cancelled() => Err(RmapError::Cancelled),
            r = self.set_and_wait(key, value) => r,
        }
    }

    /// MP1 (pulse `ichan`): wait on the one shared channel for a change that *looks like* ours.
    async fn set_and_wait_mp1(&self, m: &Mp1, key: &str, value: &str) -> Result<u64, RmapError> {
        drop(m.gate.lock().await); // the map's lock, held by the apply loop while it sends
        let out = self.set(key, value).await?;
        let mut rx = m.rx.lock().await;
        loop {
            match rx.recv().await {
                Some(c) if c.key == key && c.value.as_deref() == Some(value) => return Ok(out.rev),
                Some(_) => {} // someone else's notification, consumed and lost
                None => return Err(RmapError::Closed),
            }
        }
    }

    /// Subscribe to changes (bounded; overflow dropped and counted, see [`Subscription`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use keel::rmap::{ReplicatedMap, RmapConfig};
    /// use keel::store::MemoryStore;
    /// let cfg = RmapConfig::builder("m").subscriber_buffer(1).build()?;
    /// let map = ReplicatedMap::start(MemoryStore::new(), cfg);
    /// map.joined().await?;
    /// let mut sub = map.subscribe()?;
    /// map.set_and_wait("a", "1").await?;
    /// map.set_and_wait("b", "2").await?; // buffer full: dropped for this subscriber, counted
    /// assert_eq!(sub.recv().await.map(|c| c.key), Some("a".to_owned()));
    /// assert_eq!(sub.dropped(), 1);
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> Result<Subscription, RmapError> {
        self.shared.subs.subscribe().ok_or(RmapError::TooManySubscribers)
    }

    /// The map's shutdown token (a child of the parent, if any).
    pub fn shutdown_token(&self) -> &Shutdown {
        &self.ctl.shutdown
    }

    /// Stop the apply loop and wait for it: pending `set_and_wait` calls fail with
    /// [`RmapError::Closed`], subscriptions end. Idempotent; other handles see the map stopped.
    pub async fn stop(&self) {
        // MC330: a token already cancelled (by the parent) taken for a loop already ended.
        if crate::mutants::active(crate::mutants::Mutant::MC330) && self.ctl.shutdown.is_cancelled() {
            return;
        }
        self.ctl.shutdown.cancel();
        // The handle stays in its slot, under the lock, until the loop has ended: a second stop
        // running meanwhile waits for the lock and so for the loop (a handle taken out first let
        // it return at once, with the loop still writing: round 28 B K1), and a stop dropped
        // mid-wait leaves the handle for the next one.
        let mut slot = self.ctl.task.lock().await;
        if let Some(t) = slot.as_mut() {
            let ended = t.await;
            *slot = None;
            if let Err(e) = ended {
                tracing::error!(target: "keel::rmap", map = %self.cfg.name, error = %e, "apply loop panicked");
            }
        }
    }
}

#[cfg(all(test, not(keel_loom)))]
mod tests;
