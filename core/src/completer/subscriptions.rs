//! The subscription manager: distributes completion events to subscribers, filtered by kind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::warn;

use crate::observe::{self, CompleterEvent};

use super::{Completer, CompletionEvent, EventSource};
use crate::clock::Clock;
use crate::lifecycle::{Lifecycle, Service, ServiceError, Status};
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Which completion kinds a subscriber wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindFilter {
    /// Every kind.
    All,
    /// Only these kinds.
    Kinds(BTreeSet<String>),
}

impl KindFilter {
    /// Only the given kinds.
    ///
    /// ```
    /// use keel::completer::KindFilter;
    /// let f = KindFilter::only(["failed"]);
    /// assert!(f.accepts("failed") && !f.accepts("succeeded"));
    /// assert!(KindFilter::All.accepts("anything"));
    /// // An empty list (say, from an empty config entry) accepts nothing: `All` is spelled out.
    /// assert!(!KindFilter::only(Vec::<String>::new()).accepts("failed"));
    /// ```
    pub fn only<I: IntoIterator<Item = K>, K: Into<String>>(kinds: I) -> Self {
        KindFilter::Kinds(kinds.into_iter().map(Into::into).collect())
    }

    /// Whether events of `kind` pass.
    pub fn accepts(&self, kind: &str) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::Kinds(k) => k.contains(kind),
        }
    }
}

/// A subscriber's end. Bounded: when its buffer is full, new events for it are **dropped and
/// counted** ([`dropped`](Subscription::dropped)); the manager never blocks on a slow subscriber.
/// The channel closes (`recv` returns `None`) after the manager drained the completer's channel,
/// i.e. after every event of the run was offered to it.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<CompletionEvent>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, or `None` once the manager closed this subscription.
    pub async fn recv(&mut self) -> Option<CompletionEvent> {
        self.rx.recv().await
    }

    /// An event if one is buffered.
    pub fn try_recv(&mut self) -> Option<CompletionEvent> {
        self.rx.try_recv().ok()
    }

    /// Events dropped because this subscriber's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Sub {
    filter: KindFilter,
    tx: mpsc::Sender<CompletionEvent>,
    dropped: Arc<AtomicU64>,
}

struct Shared {
    /// The completer whose events it distributes (named in its events).
    completer: String,
    source: EventSource,
    clock: Arc<dyn Clock>,
    subs: Mutex<BTreeMap<u64, Sub>>,
    next_id: AtomicU64,
    buffer: usize,
    drain_timeout: Duration,
}

/// Distributes a [`Completer`]'s events to [`Subscription`]s. A [`Service`]: stop it after the
/// completer; on stop it keeps distributing until the completer's channel closes (bounded by
/// `drain_timeout`), then closes every subscriber channel.
pub struct SubscriptionManager {
    shared: Arc<Shared>,
    life: Lifecycle,
}

impl std::fmt::Debug for SubscriptionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionManager").field("status", &self.life.status()).finish()
    }
}

impl SubscriptionManager {
    /// A stopped manager for `completer`'s events (subscriber buffers of 1024 events, drain bound
    /// of the completer's stop timeout).
    pub fn new<S: Store>(completer: &Completer<S>) -> Self {
        SubscriptionManager {
            shared: Arc::new(Shared {
                completer: completer.config().name().to_owned(),
                source: completer.source(),
                clock: completer.clock(),
                subs: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(1),
                buffer: 1024,
                drain_timeout: completer.config().stop_timeout(),
            }),
            // Named after its completer: two managers on one node (two completers) are two
            // services in the logs and to the checker's lifecycle rules.
            life: Lifecycle::new(format!("subscriptions:{}", completer.config().name())),
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(s) => f(s),
            None => warn!(target: "keel::completer", "subscription manager already started: setting ignored"),
        }
        self
    }

    /// Capacity of each subscriber's buffer (at least 1). Set before starting.
    pub fn with_buffer(self, events: usize) -> Self {
        // MC217: the setting ignored: the default buffer stays in force.
        if crate::mutants::active(crate::mutants::Mutant::MC217) {
            return self;
        }
        self.configure(|s| s.buffer = events.max(1))
    }

    /// Bound of the drain on stop. Set before starting.
    pub fn with_drain_timeout(self, d: Duration) -> Self {
        // MC242: the setting ignored; the completer's stop timeout stays the drain bound.
        if crate::mutants::active(crate::mutants::Mutant::MC242) {
            return self;
        }
        self.configure(|s| s.drain_timeout = d)
    }

    /// Its lifecycle status.
    pub fn status(&self) -> Status {
        self.life.status()
    }

    /// Subscribe to events whose kind passes `filter`. A subscription lives until the current
    /// (or next) run of the manager ends.
    pub fn subscribe(&self, filter: KindFilter) -> Subscription {
        let (tx, rx) = mpsc::channel(self.shared.buffer);
        let dropped = Arc::new(AtomicU64::new(0));
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.lock().insert(id, Sub { filter, tx, dropped: dropped.clone() });
        Subscription { rx, dropped }
    }

    /// Start distributing. Idempotent; detached from `parent` (only stop ends it).
    pub async fn start(&self, parent: &Shutdown) -> bool {
        let shared = self.shared.clone();
        // MC312: the manager on the caller's child token: a cancelled caller starts its drain
        // bound before the group stops the completer.
        let token = if mutants::active(Mutant::MC312) {
            parent.child("subscriptions")
        } else {
            parent.detached("subscriptions")
        };
        self.life.start(token, move |ctx| shared.run(ctx.run, ctx.shutdown)).await
    }

    /// Stop: drain until the completer's channel closes (bounded), then close every subscriber.
    pub async fn stop(&self) {
        // The request is what the drain bound runs from: a run that never looks at it (stuck
        // waiting on a subscriber, MR6) is judged from here.
        if let Status::Running { run } = self.life.status() {
            let bound_ms = u64::try_from(self.shared.drain_timeout.as_millis()).unwrap_or(u64::MAX);
            observe::emit(CompleterEvent::SmStopRequested {
                completer: (&self.shared.completer).into(),
                run,
                bound_ms,
            });
        }
        self.life.stop().await
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Sub>> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self: Arc<Self>, run: u64, token: Shutdown) {
        let (source_run, mut rx) = tokio::select! {
            biased; // fixed poll order: tokio's per-thread select RNG would break replay
            r = self.source.take() => r,
            _ = token.cancelled() => {
                self.close_all(run, 0);
                return;
            }
        };
        observe::emit(CompleterEvent::SmStarted { completer: (&self.completer).into(), run, source_run });
        let started = self.clock.now();
        let mut deadline = None;
        let mut delivered = 0u64;
        loop {
            let far = self.clock.now() + Duration::from_secs(3600);
            tokio::select! {
                // The stop request is looked at first, so a manager that returned on it (MR3)
                // would lose whatever is still buffered.
                biased;
                _ = token.cancelled(), if deadline.is_none() => {
                    if mutants::active(Mutant::MR3) {
                        // MR3: return on cancel without draining the completer's channel.
                        break;
                    }
                    observe::emit(CompleterEvent::SmDraining { completer: (&self.completer).into(), run });
                    // MC314: the stop drains what is buffered now and closes, not waiting for the
                    // completer's channel to close.
                    if mutants::active(Mutant::MC314) {
                        while let Ok(events) = rx.try_recv() {
                            delivered += self.distribute(events);
                        }
                        break;
                    }
                    // MC93: the bound counted from the run's start: a manager stopped after
                    // running longer than its bound gives up on the drain at once.
                    let from = if mutants::active(Mutant::MC93) { started } else { self.clock.now() };
                    deadline = Some(from + self.drain_timeout);
                }
                _ = self.clock.sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                    observe::emit(CompleterEvent::SmDrainTimeout { completer: (&self.completer).into(), run });
                    break;
                }
                batch = rx.recv() => match batch {
                    // MR6 (River): wait for room in each subscriber's buffer. The select is not
                    // polled meanwhile, so neither the stop request nor the drain bound is seen.
                    Some(events) if mutants::active(Mutant::MR6) => delivered += self.distribute_waiting(events).await,
                    Some(events) => delivered += self.distribute(events),
                    None => break,
                },
            }
        }
        self.close_all(run, delivered);
    }

    /// Offer each event to every subscriber whose filter accepts it. Returns offers made.
    fn distribute(&self, events: Vec<CompletionEvent>) -> u64 {
        let mut subs = self.lock();
        let mut offers = 0;
        let mut gone = Vec::new();
        for ev in events {
            for (id, sub) in subs.iter() {
                if gone.contains(id) {
                    continue; // found gone earlier in this batch: offered once, reported once
                }
                // MC248: counted before the filter: every event for every subscriber.
                if mutants::active(Mutant::MC248) {
                    offers += 1;
                }
                if !sub.filter.accepts(&ev.completion.kind) {
                    continue;
                }
                if !mutants::active(Mutant::MC248) {
                    offers += 1;
                }
                match sub.tx.try_send(ev.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.dropped.fetch_add(1, Ordering::Relaxed);
                        let completer = (&self.completer).into();
                        observe::emit(CompleterEvent::SubscriberDropped { completer, subscriber: *id });
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
                }
            }
        }
        for id in gone {
            // MC327: announced gone and kept: offered every later batch again, for good.
            if !mutants::active(Mutant::MC327) {
                subs.remove(&id);
            }
            observe::emit(CompleterEvent::SubscriberGone { completer: (&self.completer).into(), subscriber: id });
        }
        offers
    }

    /// MR6 only: River's distribution, a send that waits for room in each subscriber's buffer.
    async fn distribute_waiting(&self, events: Vec<CompletionEvent>) -> u64 {
        let subs: Vec<(u64, KindFilter, mpsc::Sender<CompletionEvent>)> =
            self.lock().iter().map(|(id, s)| (*id, s.filter.clone(), s.tx.clone())).collect();
        let mut offers = 0;
        let mut gone = Vec::new();
        for ev in events {
            for (id, filter, tx) in &subs {
                if filter.accepts(&ev.completion.kind) {
                    offers += 1;
                    if tx.send(ev.clone()).await.is_err() {
                        gone.push(*id);
                    }
                }
            }
        }
        let mut live = self.lock();
        for id in gone {
            if live.remove(&id).is_some() {
                observe::emit(CompleterEvent::SubscriberGone { completer: (&self.completer).into(), subscriber: id });
            }
        }
        offers
    }

    fn close_all(&self, run: u64, delivered: u64) {
        // Removing the senders closes the channels; nothing sends to them afterwards.
        let subs = std::mem::take(&mut *self.lock());
        // MC170: the total read from the map the close just emptied: always 0.
        let counted = if mutants::active(Mutant::MC170) { &*self.lock() } else { &subs };
        let dropped: u64 = counted.values().map(|s| s.dropped.load(Ordering::Relaxed)).sum();
        observe::emit(CompleterEvent::SubscriptionsClosed {
            completer: (&self.completer).into(),
            run,
            subs: subs.len(),
            delivered,
            dropped,
        });
    }
}

impl Service for SubscriptionManager {
    fn name(&self) -> &str {
        self.life.name()
    }

    fn start<'a>(&'a self, parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            SubscriptionManager::start(self, parent).await;
            Ok(())
        })
    }

    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async move {
            SubscriptionManager::stop(self).await;
            Ok(())
        })
    }
}
