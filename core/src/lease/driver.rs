//! The async driver of the lease machine: performs its steps against the store and the clock.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::{debug, error, info, trace, warn};

use super::guard::Validity;
use super::machine::{Machine, Step, Timing};
use super::{CurrentGrant, Guard, LeaseConfig, LeaseError, LeaseState, LostReason, WorkPolicy, WorkState};
use crate::watch;
use crate::clock::{Clock, Instant};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::{Acquire, Renew, Store};

pub(super) struct Driver<S: Store> {
    pub store: S,
    pub cfg: LeaseConfig,
    pub clock: Arc<dyn Clock>,
    pub shutdown: Shutdown,
    pub state: watch::Sender<LeaseState>,
    pub grant: CurrentGrant,
    /// The owner's parent, if any: only the crash cascade of MS1/MS2 touches it.
    pub parent: Option<Shutdown>,
    pub policy: WorkPolicy,
    pub permanent_attempts: u32,
}

/// One run of the guarded work. Its task ends with the panic message if the work panicked: the
/// work runs under `catch_unwind`, so a panic never reaches the owner (nor, under madsim, the
/// whole simulation).
struct Work {
    stop: Shutdown,
    task: tokio::task::JoinHandle<Result<(), String>>,
    fence: u64,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Completes when the running work ends by itself, with its panic message if it panicked; never
/// completes without running work. The finished task is taken out of `work`.
async fn work_ended(work: &mut Option<Work>) -> (u64, Result<(), String>) {
    let Some(w) = work.as_mut() else { return std::future::pending().await };
    let r = match (&mut w.task).await {
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    };
    let fence = w.fence;
    *work = None;
    (fence, r)
}

/// How often a store error is logged at warn level while errors go on: the first after a
/// success, then one line per interval carrying how many happened meanwhile.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Rate-limited warnings for store errors. Every error is also logged at debug level.
#[derive(Default)]
struct ErrorLog {
    last_warn: Option<Instant>,
    unlogged: u64,
    total: u64,
}

impl ErrorLog {
    fn error(&mut self, now: Instant, lease: &str, op: &'static str, e: &StoreError) {
        self.total += 1;
        self.unlogged += 1;
        if self.last_warn.is_none_or(|t| now.saturating_duration_since(t) >= ERROR_LOG_INTERVAL) {
            let (count, total, transient) = (self.unlogged, self.total, e.is_transient());
            if transient {
                warn!(target: "keel::lease", lease, op, count, total, error = %e, kind = "store_errors", "store errors; retrying (logged at most every 10 s, count = errors since the last line)");
            } else {
                error!(target: "keel::lease", lease, op, count, total, error = %e, kind = "store_errors", "permanent store error (credentials, ACL, corrupt key or invalid name): an operator must act; retrying");
            }
            self.last_warn = Some(now);
            self.unlogged = 0;
        }
    }

    fn ok(&mut self, lease: &str) {
        if self.total > 0 {
            info!(target: "keel::lease", lease, errors = self.total, kind = "store_recovered", "store answering again");
        }
        *self = ErrorLog::default();
    }
}

/// Run `op`, giving up at `deadline` on the local clock (an unknown outcome).
async fn until<T>(
    clock: &dyn Clock,
    deadline: Instant,
    op: &'static str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::select! {
        biased; // fixed poll order: tokio's per-thread select RNG would break replay
        r = fut => r,
        _ = clock.sleep_until(deadline) => Err(StoreError::Timeout { op }),
    }
}

impl<S: Store> Driver<S> {
    /// The validity of the current grant, if held.
    fn current(&self) -> Option<Arc<Validity>> {
        self.grant.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_current(&self, v: Option<Arc<Validity>>) {
        let old = std::mem::replace(&mut *self.grant.lock().unwrap_or_else(|p| p.into_inner()), v);
        if let Some(old) = old {
            old.end();
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            ttl: self.cfg.ttl,
            renew_interval: self.cfg.renew_interval,
            drift_margin: self.cfg.drift_margin,
            retry_min: self.cfg.retry_min,
            retry_max: self.cfg.retry_max,
            poll_interval: self.cfg.poll_interval,
            work: self.policy,
            permanent_attempts: self.permanent_attempts,
        }
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    pub async fn run<F, Fut>(self, mut work_fn: F) -> Result<(), LeaseError>
    where
        F: FnMut(Guard) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = self.cfg.name.clone();
        let owner = self.cfg.owner.clone();
        let ttl_ms = Self::ms(self.cfg.ttl);
        let quarantine_ms = if self.cfg.quarantine { ttl_ms } else { 0 };
        let mut m = Machine::new(self.timing(), &owner, self.clock.now());
        let mut errors = ErrorLog::default();
        let mut work: Option<Work> = None;
        let mut zombies: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut shutting_down = false;
        let mut just_lost = false;
        loop {
            if !shutting_down && self.shutdown.is_cancelled() {
                shutting_down = true;
                m.on_shutdown();
            }
            let step = m.poll(self.clock.now());
            match step {
                Step::StoreTime => {
                    let deadline = self.clock.now() + self.cfg.op_timeout;
                    let r = tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        r = until(&*self.clock, deadline, "time", self.store.time_ms()) => r,
                        _ = self.shutdown.cancelled(), if !shutting_down => continue,
                    };
                    match &r {
                        Ok(_) => errors.ok(&name),
                        Err(e) => {
                            debug!(target: "keel::lease", lease = %name, owner = %owner, kind = "time_failed", error = %e, "store time unavailable; retrying");
                            errors.error(self.clock.now(), &name, "time", e);
                        }
                    }
                    m.on_time(self.clock.now(), r);
                }
                Step::Acquire { token } => {
                    let sent = self.clock.now();
                    let deadline = sent + self.cfg.op_timeout;
                    let r = tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        r = until(&*self.clock, deadline, "lease_acquire", self.acquire(&token, ttl_ms, quarantine_ms)) => r,
                        _ = self.shutdown.cancelled(), if !shutting_down => Err(StoreError::Timeout { op: "lease_acquire" }),
                    };
                    match &r {
                        Ok(Acquire::Held { remaining_ms }) => {
                            debug!(target: "keel::lease", lease = %name, owner = %owner, remaining_ms, kind = "acquire_refused", "held by another owner")
                        }
                        Ok(Acquire::Quarantined { remaining_ms }) => {
                            info!(target: "keel::lease", lease = %name, owner = %owner, remaining_ms, kind = "quarantined", "store lost the lease's data; waiting out the quarantine")
                        }
                        Ok(Acquire::Granted { .. }) => {}
                        Err(e) => {
                            debug!(target: "keel::lease", lease = %name, owner = %owner, kind = "acquire_failed", error = %e, "acquire failed; retrying");
                            errors.error(self.clock.now(), &name, "lease_acquire", e);
                        }
                    }
                    if r.is_ok() {
                        errors.ok(&name);
                    }
                    m.on_acquire(sent, self.clock.now(), r);
                }
                Step::Renew { token, deadline } => {
                    let sent = self.clock.now();
                    let cut = deadline.min(sent + self.cfg.op_timeout);
                    let r = if mutants::active(Mutant::MS7) {
                        self.renew_hanging(&token, ttl_ms, sent).await
                    } else {
                        until(&*self.clock, cut, "lease_renew", self.renew(&token, ttl_ms)).await
                    };
                    match &r {
                        Ok(Renew::Renewed { fence }) => {
                            trace!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "renewed", "renewed")
                        }
                        Ok(Renew::NotHolder) => {}
                        Err(e) => {
                            debug!(target: "keel::lease", lease = %name, owner = %owner, kind = "renew_failed", error = %e, "renewal failed; retrying before the deadline");
                            errors.error(self.clock.now(), &name, "lease_renew", e);
                        }
                    }
                    if r.is_ok() {
                        errors.ok(&name);
                    }
                    m.on_renew(sent, self.clock.now(), r);
                    // Guards read the deadline themselves: extend it at the instant the machine does.
                    if let (Some(v), Some(d)) = (self.current(), m.deadline()) {
                        v.extend(d);
                    }
                }
                Step::StartWork { fence } => {
                    let stop = self.shutdown.child("work");
                    // Held{fence} is published first, so the grant's validity exists; were it
                    // missing, the work would get a guard that is already lost.
                    let validity = self.current().filter(|v| v.fence() == fence).unwrap_or_else(|| {
                        let v = Validity::new(fence, self.clock.clone(), self.clock.now());
                        v.end();
                        v
                    });
                    let fut = work_fn(Guard { validity, shutdown: stop.clone() });
                    // A panic in the work ends this task with its message; it never unwinds into
                    // the owner.
                    let fut = AssertUnwindSafe(fut).catch_unwind().map(|r| r.map_err(|p| panic_message(&*p)));
                    info!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "work_started", "guarded work started");
                    work = Some(Work { stop, task: tokio::spawn(fut), fence });
                    if mutants::active(Mutant::MS4) {
                        // MS4: a slow start-up blocks the owner before renewal gets going.
                        self.clock.sleep(self.cfg.ttl + self.cfg.ttl / 2).await;
                    }
                }
                Step::StopWork => {
                    // The grant ends for its guards before the work is even told to stop.
                    self.set_current(None);
                    if let Some(w) = work.take() {
                        self.stop_work(w).await;
                    }
                    m.on_work_stopped(self.clock.now());
                }
                Step::Release { token } => {
                    if just_lost && mutants::active(Mutant::MS6) {
                        // MS6: the old renew timer survives the demotion and re-acquires.
                        zombies.push(self.spawn_zombie(token));
                    } else {
                        self.release(&token).await;
                    }
                }
                Step::Publish(s) => {
                    just_lost = matches!(s, LeaseState::Lost { .. });
                    let current = self.current().map(|v| v.fence());
                    match (&s, m.deadline()) {
                        // A work restart re-publishes Held: the grant (and its guards) go on.
                        (LeaseState::Held { fence, .. }, _) if current == Some(*fence) => {}
                        (LeaseState::Held { fence, .. }, Some(d)) => {
                            self.set_current(Some(Validity::new(*fence, self.clock.clone(), d)))
                        }
                        _ => self.set_current(None),
                    }
                    let previous = self.state.borrow().clone();
                    self.trace_state(&previous, &s);
                    self.publish(s);
                }
                Step::Wait { until: at } => {
                    tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        _ = self.clock.sleep_until(at) => {}
                        _ = self.shutdown.cancelled(), if !shutting_down => {}
                        (fence, r) = work_ended(&mut work) => {
                            match &r {
                                Ok(()) => warn!(target: "keel::lease", lease = %name, owner = %owner, fence, panicked = false, kind = "work_ended", "guarded work returned while the lease is held"),
                                Err(p) => error!(target: "keel::lease", lease = %name, owner = %owner, fence, panicked = true, panic = %p, kind = "work_ended", "guarded work panicked while the lease is held"),
                            }
                            m.on_work_ended(self.clock.now(), r.is_err());
                        }
                    }
                }
                Step::Escalate(e) => {
                    // MS1/MS2: Sequin's MutexOwner crashed, and its one-for-all supervisor took the
                    // whole runtime subtree down with it: the work is killed, not stopped, and the
                    // owner's parent is cancelled.
                    error!(target: "keel::lease", lease = %name, owner = %owner, kind = "crashed", error = %e, "escalating store error to the parent");
                    if let Some(w) = work.take() {
                        w.task.abort();
                    }
                    if let Some(parent) = &self.parent {
                        parent.cancel();
                    }
                    zombies.iter().for_each(|z| z.abort());
                    return Err(LeaseError::Escalated(e));
                }
                Step::Exit => {
                    zombies.iter().for_each(|z| z.abort());
                    return Ok(());
                }
            }
        }
    }

    async fn acquire(&self, token: &str, ttl_ms: u64, quarantine_ms: u64) -> Result<Acquire, StoreError> {
        // MS8: Sequin's acquire_or_touch knows no quarantine.
        let quarantine_ms = if mutants::active(Mutant::MS8) { 0 } else { quarantine_ms };
        self.store.lease_acquire(&self.cfg.name, token, ttl_ms, quarantine_ms).await
    }

    async fn renew(&self, token: &str, ttl_ms: u64) -> Result<Renew, StoreError> {
        if !mutants::active(Mutant::MS8) {
            return self.store.lease_renew(&self.cfg.name, token, ttl_ms).await;
        }
        // MS8: renew by acquire_or_touch, which re-creates a lost key for our token. Its reply is
        // the token, not a fence: the owner goes on with the fence it holds.
        let held = self.current().map_or(0, |v| v.fence());
        Ok(match self.store.lease_acquire(&self.cfg.name, token, ttl_ms, 0).await? {
            Acquire::Granted { .. } => Renew::Renewed { fence: held },
            Acquire::Held { .. } | Acquire::Quarantined { .. } => Renew::NotHolder,
        })
    }

    /// MS7: a renewal whose client retries inside the call (a reconnect loop) and is cut only by
    /// the client's own timeout of about one TTL and a half, not by the local deadline.
    async fn renew_hanging(&self, token: &str, ttl_ms: u64, sent: Instant) -> Result<Renew, StoreError> {
        let give_up = sent + self.cfg.ttl + self.cfg.ttl / 2;
        until(&*self.clock, give_up, "lease_renew", async {
            loop {
                match self.store.lease_renew(&self.cfg.name, token, ttl_ms).await {
                    Err(e) if e.is_transient() => self.clock.sleep(self.cfg.retry_min).await,
                    r => return r,
                }
            }
        })
        .await
    }

    fn publish(&self, s: LeaseState) {
        self.state.send_replace(s);
    }

    fn trace_state(&self, previous: &LeaseState, s: &LeaseState) {
        let (name, owner) = (&self.cfg.name, &self.cfg.owner);
        match s {
            LeaseState::Held { fence, work } if previous.fence() == Some(*fence) => match work {
                WorkState::Running => {
                    info!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "work_restarted", "guarded work restarted")
                }
                WorkState::Restarting { restarts, panicked } => {
                    info!(target: "keel::lease", lease = %name, owner = %owner, fence, restarts, panicked, kind = "work_restarting", "guarded work ended; restarting it after a backoff")
                }
            },
            LeaseState::Held { fence, .. } => {
                info!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "held", "lease held")
            }
            LeaseState::Failed { error, attempts } => {
                error!(target: "keel::lease", lease = %name, owner = %owner, attempts, error = %error, kind = "failed", "the store keeps refusing the lease with a permanent error")
            }
            &LeaseState::Lost { fence, reason } => {
                let why = match reason {
                    LostReason::Deadline => "deadline",
                    LostReason::Taken => "taken",
                    LostReason::WorkEnded => "work_ended",
                };
                warn!(target: "keel::lease", lease = %name, owner = %owner, fence, reason = why, kind = "lost", "lease lost; guarded work stopped")
            }
            LeaseState::Released => {
                info!(target: "keel::lease", lease = %name, owner = %owner, kind = "released", "lease released")
            }
            LeaseState::Awaiting => {}
        }
    }

    async fn stop_work(&self, w: Work) {
        w.stop.cancel();
        let mut task = w.task;
        tokio::select! {
            biased; // fixed poll order: tokio's per-thread select RNG would break replay
            r = &mut task => match r {
                Ok(Ok(())) => {}
                Ok(Err(p)) => error!(target: "keel::lease", lease = %self.cfg.name, panic = %p, "guarded work panicked while stopping"),
                Err(e) => error!(target: "keel::lease", lease = %self.cfg.name, error = %e, "guarded work task failed"),
            },
            _ = self.clock.sleep(self.cfg.work_stop_timeout) => {
                error!(target: "keel::lease", lease = %self.cfg.name, "guarded work ignored cancellation; aborting it");
                task.abort();
            }
        }
        info!(target: "keel::lease", lease = %self.cfg.name, owner = %self.cfg.owner, fence = w.fence, kind = "work_stopped", "guarded work stopped");
    }

    async fn release(&self, token: &str) {
        let deadline = self.clock.now() + self.cfg.op_timeout;
        let r = if mutants::active(Mutant::MS5) {
            #[cfg(feature = "mutants")]
            {
                until(&*self.clock, deadline, "lease_release", async {
                    self.store.lease_delete_unchecked(&self.cfg.name).await.map(|()| true)
                })
                .await
            }
            #[cfg(not(feature = "mutants"))]
            {
                Ok(false)
            }
        } else {
            until(&*self.clock, deadline, "lease_release", self.store.lease_release(&self.cfg.name, token)).await
        };
        if let Err(e) = r {
            // Best effort: the key expires by its TTL anyway.
            warn!(target: "keel::lease", lease = %self.cfg.name, error = %e, "release failed; the grant will expire by its TTL");
        }
    }

    fn spawn_zombie(&self, token: String) -> tokio::task::JoinHandle<()> {
        let (store, clock, state) = (self.store.clone(), self.clock.clone(), self.state.clone());
        let (name, owner) = (self.cfg.name.clone(), self.cfg.owner.clone());
        let (every, ttl_ms) = (self.cfg.renew_interval, Self::ms(self.cfg.ttl));
        tokio::spawn(async move {
            loop {
                clock.sleep(every).await;
                if let Ok(Acquire::Granted { fence }) = store.lease_acquire(&name, &token, ttl_ms, 0).await
                    && state.borrow().fence() != Some(fence)
                {
                    info!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "held", "lease held");
                    state.send_replace(LeaseState::Held { fence, work: WorkState::Running });
                }
            }
        })
    }
}
