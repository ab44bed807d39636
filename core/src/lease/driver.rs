//! The async driver of the lease machine: performs its steps against the store and the clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::watch;
use tracing::{debug, error, info, trace, warn};

use super::machine::{Machine, Step, Timing};
use super::guard::Validity;
use super::{CurrentGrant, Guard, LeaseConfig, LeaseError, LeaseState, LostReason};
use crate::clock::{Clock, Instant};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::shutdown::Shutdown;
use crate::store::{Acquire, Renew, Store};

pub(super) struct Driver<S: Store> {
    store: S,
    cfg: LeaseConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    state: watch::Sender<LeaseState>,
    grant: CurrentGrant,
    /// The owner's parent, if any: only the crash cascade of MS1/MS2 touches it.
    parent: Option<Shutdown>,
}

struct Work {
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
    fence: u64,
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
    pub fn new(
        store: S,
        cfg: LeaseConfig,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
        state: watch::Sender<LeaseState>,
        grant: CurrentGrant,
        parent: Option<Shutdown>,
    ) -> Self {
        Driver { store, cfg, clock, shutdown, state, grant, parent }
    }

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
        }
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    /// The store time at start makes this process's tokens unique (`owner:incarnation:n`).
    async fn incarnation(&self) -> Option<u64> {
        let mut wait = self.cfg.retry_min;
        loop {
            let deadline = self.clock.now() + self.cfg.op_timeout;
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                _ = self.shutdown.cancelled() => return None,
                r = until(&*self.clock, deadline, "time", self.store.time_ms()) => match r {
                    Ok(t) => return Some(t),
                    Err(e) => warn!(target: "keel::lease", lease = %self.cfg.name, error = %e, "store time unavailable; retrying"),
                },
            }
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                _ = self.shutdown.cancelled() => return None,
                _ = self.clock.sleep(wait) => {}
            }
            wait = (wait * 2).min(self.cfg.poll_interval);
        }
    }

    pub async fn run<F, Fut>(self, mut work_fn: F) -> Result<(), LeaseError>
    where
        F: FnMut(Guard) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = self.cfg.name.clone();
        let owner = self.cfg.owner.clone();
        let Some(incarnation) = self.incarnation().await else {
            self.publish(LeaseState::Released);
            return Ok(());
        };
        let ttl_ms = Self::ms(self.cfg.ttl);
        let quarantine_ms = if self.cfg.quarantine { ttl_ms } else { 0 };
        let mut m = Machine::new(self.timing(), &owner, incarnation, self.clock.now());
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
                            warn!(target: "keel::lease", lease = %name, owner = %owner, kind = "acquire_failed", error = %e, "acquire failed; retrying")
                        }
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
                            warn!(target: "keel::lease", lease = %name, owner = %owner, kind = "renew_failed", error = %e, "renewal failed; retrying before the deadline")
                        }
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
                    match (s, m.deadline()) {
                        (LeaseState::Held { fence }, Some(d)) => {
                            self.set_current(Some(Validity::new(fence, self.clock.clone(), d)))
                        }
                        _ => self.set_current(None),
                    }
                    self.trace_state(&s);
                    self.publish(s);
                }
                Step::Wait { until: at } => {
                    tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        _ = self.clock.sleep_until(at) => {}
                        _ = self.shutdown.cancelled(), if !shutting_down => {}
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

    fn trace_state(&self, s: &LeaseState) {
        let (name, owner) = (&self.cfg.name, &self.cfg.owner);
        match *s {
            LeaseState::Held { fence } => {
                info!(target: "keel::lease", lease = %name, owner = %owner, fence, kind = "held", "lease held")
            }
            LeaseState::Lost { fence, reason } => {
                let why = match reason {
                    LostReason::Deadline => "deadline",
                    LostReason::Taken => "taken",
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
            r = &mut task => if let Err(e) = r {
                error!(target: "keel::lease", lease = %self.cfg.name, error = %e, "guarded work panicked");
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
                    state.send_replace(LeaseState::Held { fence });
                }
            }
        })
    }
}
