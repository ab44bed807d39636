//! The async driver of the lease machine: performs its steps against the store and the clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::watch;
use tracing::{error, warn};

use super::machine::{Machine, Step, Timing};
use super::{Guard, LeaseConfig, LeaseError, LeaseState};
use crate::clock::{Clock, Instant};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, LeaseEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::{Acquire, Renew, Store};

pub(super) struct Driver<S: Store> {
    store: S,
    cfg: LeaseConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    state: watch::Sender<LeaseState>,
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
    ) -> Self {
        Driver { store, cfg, clock, shutdown, state }
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
                        r = until(&*self.clock, deadline, "lease_acquire", self.store.lease_acquire(&name, &token, ttl_ms, quarantine_ms)) => r,
                        _ = self.shutdown.cancelled(), if !shutting_down => Err(StoreError::Timeout { op: "lease_acquire" }),
                    };
                    match &r {
                        Ok(Acquire::Held { remaining_ms }) => observe::emit(LeaseEvent::AcquireRefused {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            remaining_ms: *remaining_ms,
                        }),
                        Ok(Acquire::Quarantined { remaining_ms }) => observe::emit(LeaseEvent::Quarantined {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            remaining_ms: *remaining_ms,
                        }),
                        Ok(Acquire::Granted { .. }) => {}
                        Err(e) => observe::emit(LeaseEvent::AcquireFailed {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            error: Text::display(e),
                        }),
                    }
                    m.on_acquire(sent, self.clock.now(), r);
                }
                Step::Renew { token, deadline } => {
                    let sent = self.clock.now();
                    let cut = deadline.min(sent + self.cfg.op_timeout);
                    let r =
                        until(&*self.clock, cut, "lease_renew", self.store.lease_renew(&name, &token, ttl_ms)).await;
                    match &r {
                        Ok(Renew::Renewed { fence }) => observe::emit(LeaseEvent::Renewed {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            fence: *fence,
                        }),
                        Ok(Renew::NotHolder) => {}
                        Err(e) => observe::emit(LeaseEvent::RenewFailed {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            error: Text::display(e),
                        }),
                    }
                    m.on_renew(sent, self.clock.now(), r);
                }
                Step::StartWork { fence } => {
                    let stop = self.shutdown.child("work");
                    let fut = work_fn(Guard { fence, shutdown: stop.clone() });
                    observe::emit(LeaseEvent::WorkStarted { lease: (&name).into(), owner: (&owner).into(), fence });
                    work = Some(Work { stop, task: tokio::spawn(fut), fence });
                    if mutants::active(Mutant::MS4) {
                        // MS4: a slow start-up blocks the owner before renewal gets going.
                        self.clock.sleep(self.cfg.ttl + self.cfg.ttl / 2).await;
                    }
                }
                Step::StopWork => {
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
                    observe::emit(LeaseEvent::Crashed {
                        lease: (&name).into(),
                        owner: (&owner).into(),
                        error: Text::display(&e),
                    });
                    if let Some(w) = work.take() {
                        self.stop_work(w).await;
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

    fn publish(&self, s: LeaseState) {
        self.state.send_replace(s);
    }

    fn trace_state(&self, s: &LeaseState) {
        let (name, owner) = (&self.cfg.name, &self.cfg.owner);
        match *s {
            LeaseState::Held { fence } => {
                observe::emit(LeaseEvent::Held { lease: name.into(), owner: owner.into(), fence })
            }
            LeaseState::Lost { fence, reason } => {
                observe::emit(LeaseEvent::Lost { lease: name.into(), owner: owner.into(), fence, reason })
            }
            LeaseState::Released => observe::emit(LeaseEvent::Released { lease: name.into(), owner: owner.into() }),
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
        observe::emit(LeaseEvent::WorkStopped {
            lease: (&self.cfg.name).into(),
            owner: (&self.cfg.owner).into(),
            fence: w.fence,
        });
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
                    observe::emit(LeaseEvent::Held { lease: (&name).into(), owner: (&owner).into(), fence });
                    state.send_replace(LeaseState::Held { fence });
                }
            }
        })
    }
}
