//! The async driver of the lease machine: performs its steps against the store and the clock.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::error;

use super::guard::Validity;
use super::machine::{Machine, Step, Timing};
use super::{CurrentGrant, Guard, LeaseConfig, LeaseError, LeaseState, WorkPolicy, WorkState};
use crate::clock::{Clock, Instant};
use crate::error::StoreError;
use crate::mutants::{self, Mutant};
use crate::observe::{self, LeaseEvent, Text};
use crate::shutdown::Shutdown;
use crate::store::{Acquire, Renew, Store};
use crate::watch;

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
        // MC243: the task's own result dropped: a work that panicked reads as a clean return.
        Ok(_) if crate::mutants::active(crate::mutants::Mutant::MC243) => Ok(()),
        Ok(r) => r,
        Err(e) => Err(e.to_string()),
    };
    let fence = w.fence;
    *work = None;
    (fence, r)
}

/// Rate-limited reports of store errors (each error is also its own debug-level event).
#[derive(Default)]
struct ErrorLog {
    last_warn: Option<Instant>,
    unlogged: u64,
    total: u64,
}

impl ErrorLog {
    fn error(&mut self, now: Instant, cfg: &LeaseConfig, op: &'static str, e: &StoreError) {
        self.total += 1;
        self.unlogged += 1;
        if self.last_warn.is_none_or(|t| now.saturating_duration_since(t) >= cfg.error_log_interval)
            || mutants::active(Mutant::MC126)
        {
            observe::emit(LeaseEvent::StoreErrors {
                lease: (&cfg.name).into(),
                owner: (&cfg.owner).into(),
                op: op.into(),
                count: self.unlogged,
                total: self.total,
                permanent: !e.is_transient(),
                error: Text::display(e),
            });
            if mutants::active(Mutant::MC126) {
                return; // MC126: the warn time never recorded: a warn line per error
            }
            self.last_warn = Some(now);
            if !mutants::active(Mutant::MC125) {
                self.unlogged = 0; // MC125: not reset, each line counts from the first error
            }
        }
    }

    fn ok(&mut self, cfg: &LeaseConfig) {
        if self.total > 0 {
            observe::emit(LeaseEvent::StoreRecovered {
                lease: (&cfg.name).into(),
                owner: (&cfg.owner).into(),
                errors: self.total,
            });
            if mutants::active(Mutant::MC111) {
                return; // MC111: the count kept, so every later success reports a recovery
            }
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
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let (restart_min, restart_max) = self.policy.restart_bounds().unwrap_or_default();
        observe::emit(LeaseEvent::OwnerStarted {
            lease: (&name).into(),
            owner: (&owner).into(),
            renew_us: us(self.cfg.renew_interval),
            poll_us: us(self.cfg.poll_interval),
            retry_min_us: us(self.cfg.retry_min),
            retry_max_us: us(self.cfg.retry_max),
            ttl_us: us(self.cfg.ttl),
            drift_margin_us: us(self.cfg.drift_margin),
            error_log_us: us(self.cfg.error_log_interval),
            work_restart_min_us: us(restart_min),
            work_restart_max_us: us(restart_max),
            op_timeout_us: us(self.cfg.op_timeout),
            work_stop_timeout_us: us(self.cfg.work_stop_timeout),
            permanent_attempts: self.permanent_attempts,
        });
        let mut errors = ErrorLog::default();
        let mut work: Option<Work> = None;
        let mut zombies: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut shutting_down = false;
        let mut just_lost = false;
        // One wait for the shutdown across every turn of the loop (not a fresh one registered
        // and dropped per `select!`). Polled only while `!shutting_down`: it completes only once
        // the token is cancelled, and the next turn then sets `shutting_down`.
        // MC346: an owner with a parent that listens to its parent alone.
        let heard = match &self.parent {
            Some(p) if mutants::active(Mutant::MC346) => p.clone(),
            _ => self.shutdown.clone(),
        };
        let cancelled = heard.cancelled();
        tokio::pin!(cancelled);
        loop {
            if !shutting_down && heard.is_cancelled() {
                shutting_down = true;
                observe::emit(LeaseEvent::Stopping { lease: (&name).into(), owner: (&owner).into() });
                m.on_shutdown();
            }
            // One reading of the local clock per turn (and one after each store call): the
            // clock does not move between awaits, and each reading costs a lock and the
            // runtime's time.
            let now = self.clock.now();
            // The guard never believes longer than its owner: work checking the guard after the
            // owner's deadline writes on a grant the store may have expired (round 16 #14, MC131:
            // S9's window, which needs a freeze at the deadline; this sees it at every turn).
            if let (Some(v), Some(d)) = (self.current(), m.deadline()) {
                let g = v.deadline();
                crate::keel_assert!(
                    g.is_none_or(|g| g <= d),
                    "guard of fence {} valid to {g:?}, past its owner's deadline {d:?}",
                    v.fence()
                );
            }
            let step = m.poll(now);
            match step {
                Step::StoreTime => {
                    let deadline = now + self.cfg.op_timeout;
                    let r = tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        r = until(&*self.clock, deadline, "time", self.store.time_ms()) => r,
                        _ = &mut cancelled, if !shutting_down => continue,
                    };
                    let done = self.clock.now();
                    let took_us = us(done.saturating_duration_since(now));
                    match &r {
                        Ok(_) => {
                            // MC353: the time read leaves the error run open.
                            if !mutants::active(Mutant::MC353) {
                                errors.ok(&self.cfg);
                            }
                            observe::emit(LeaseEvent::TimeRead {
                                lease: (&name).into(),
                                owner: (&owner).into(),
                                took_us,
                            });
                        }
                        Err(e) => {
                            observe::emit(LeaseEvent::TimeFailed {
                                lease: (&name).into(),
                                owner: (&owner).into(),
                                error: Text::display(e),
                                took_us,
                            });
                            errors.error(done, &self.cfg, "time", e);
                        }
                    }
                    // MC298: the wait after a failed read counted from its send.
                    m.on_time(if crate::mutants::active(crate::mutants::Mutant::MC298) { now } else { done }, r);
                }
                Step::Acquire { token } => {
                    let sent = now;
                    let deadline = sent + self.cfg.op_timeout;
                    // An acquisition cut by the owner's own stop has an unknown outcome (the
                    // machine keeps its token to release), but it is no store failure: not
                    // reported as one (S42), nor counted in the error run.
                    let (r, cut_by_stop) = tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        r = until(&*self.clock, deadline, "lease_acquire", self.acquire(&token, ttl_ms, quarantine_ms)) => (r, false),
                        _ = &mut cancelled, if !shutting_down => {
                            // MC423: the stop reported as the store timing out.
                            (Err(StoreError::Timeout { op: "lease_acquire" }), !mutants::active(Mutant::MC423))
                        }
                    };
                    let done = self.clock.now();
                    let took_us = us(done.saturating_duration_since(sent));
                    match &r {
                        Ok(Acquire::Held { remaining_ms }) => observe::emit(LeaseEvent::AcquireRefused {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            remaining_ms: *remaining_ms,
                            took_us,
                        }),
                        Ok(Acquire::Quarantined { remaining_ms }) => observe::emit(LeaseEvent::Quarantined {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            remaining_ms: *remaining_ms,
                            took_us,
                        }),
                        Ok(Acquire::Granted { .. }) => {} // once the machine set its deadline, below
                        Err(_) if cut_by_stop => {}
                        Err(e) => {
                            observe::emit(LeaseEvent::AcquireFailed {
                                lease: (&name).into(),
                                owner: (&owner).into(),
                                error: Text::display(e),
                                took_us,
                            });
                            errors.error(done, &self.cfg, "lease_acquire", e);
                        }
                    }
                    // MC119: the acquisition's success leaves the error run open.
                    if r.is_ok() && !mutants::active(Mutant::MC119) {
                        errors.ok(&self.cfg);
                    }
                    let granted = if let Ok(Acquire::Granted { fence }) = r { Some(fence) } else { None };
                    m.on_acquire(sent, done, r);
                    if let Some(fence) = granted {
                        let belief_us = m.deadline().map_or(0, |d| us(d.saturating_duration_since(done)));
                        let (lease, owner) = ((&name).into(), (&owner).into());
                        observe::emit(LeaseEvent::Granted { lease, owner, fence, took_us, belief_us });
                    }
                }
                Step::Renew { token, deadline } => {
                    let sent = now;
                    let cut = deadline.min(sent + self.cfg.op_timeout);
                    let r = if mutants::active(Mutant::MS7) {
                        self.renew_hanging(&token, ttl_ms, sent).await
                    } else if mutants::active(Mutant::MC459) {
                        // MC459: the cut armed on the runtime's timer, not the owner's clock: on a
                        // node whose clock runs slow it fires before the cut's instant on that clock.
                        let within = cut.saturating_duration_since(sent);
                        tokio::select! {
                            biased; // fixed poll order: tokio's per-thread select RNG would break replay
                            r = self.renew(&token, ttl_ms) => r,
                            () = tokio::time::sleep(within) => Err(StoreError::Timeout { op: "lease_renew" }),
                        }
                    } else {
                        until(&*self.clock, cut, "lease_renew", self.renew(&token, ttl_ms)).await
                    };
                    let done = self.clock.now();
                    let took_us = us(done.saturating_duration_since(sent));
                    match &r {
                        Ok(Renew::Renewed { .. }) => {} // once the machine set its deadline, below
                        Ok(Renew::NotHolder) => observe::emit(LeaseEvent::RenewRefused {
                            lease: (&name).into(),
                            owner: (&owner).into(),
                            took_us,
                        }),
                        Err(e) => {
                            observe::emit(LeaseEvent::RenewFailed {
                                lease: (&name).into(),
                                owner: (&owner).into(),
                                error: Text::display(e),
                                took_us,
                            });
                            errors.error(done, &self.cfg, "lease_renew", e);
                        }
                    }
                    if r.is_ok() {
                        errors.ok(&self.cfg);
                    }
                    let renewed = if let Ok(Renew::Renewed { fence }) = r { Some(fence) } else { None };
                    m.on_renew(sent, done, r);
                    if let Some(fence) = renewed {
                        let belief_us = m.deadline().map_or(0, |d| us(d.saturating_duration_since(done)));
                        let (lease, owner) = ((&name).into(), (&owner).into());
                        observe::emit(LeaseEvent::Renewed { lease, owner, fence, took_us, belief_us });
                    }
                    // Guards read the deadline themselves: extend it at the instant the machine does.
                    // MC96: not extended: the work stops at the first grant's deadline while the
                    // owner goes on renewing.
                    if let (Some(v), Some(d)) = (self.current(), m.deadline())
                        && !mutants::active(Mutant::MC96)
                    {
                        v.extend(d);
                    }
                }
                Step::StartWork { fence } => {
                    // A child of the owner's token, itself the parent's child: a node's stop
                    // reaches the work at once, even while the owner waits on a renewal (S26).
                    // MC213: a token of its own, cancelled only by the owner's step-down.
                    // MC345: a child of the parent, which a stop of the handle never cancels.
                    let stop = match &self.parent {
                        _ if mutants::active(Mutant::MC213) => crate::shutdown::Shutdown::new("work"),
                        Some(p) if mutants::active(Mutant::MC345) => p.child("work"),
                        _ => self.shutdown.child("work"),
                    };
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
                    observe::emit(LeaseEvent::WorkStarted { lease: (&name).into(), owner: (&owner).into(), fence });
                    work = Some(Work { stop, task: tokio::spawn(fut), fence });
                    if mutants::active(Mutant::MS4) {
                        // MS4: a slow start-up blocks the owner before renewal gets going.
                        self.clock.sleep(self.cfg.ttl + self.cfg.ttl / 2).await;
                    }
                }
                Step::StopWork => {
                    // The grant ends for its guards before the work is even told to stop. A
                    // step-down keeps the ended grant where the handle reads it, with its reason:
                    // the handle reads the loss from here, not a `Held` while a slow work stops.
                    // A stop steps down too: the owner renews no more, so a handle that read
                    // `Held` while a slow work stops would outlive the grant (S1, S6: found when
                    // the lease scenario's n3 began to finish its batch deaf to its stop).
                    // MC164: the stop clears the grant, and the handle reads the published `Held`.
                    let stopping =
                        (shutting_down && !mutants::active(Mutant::MC164)).then_some(super::LostReason::Stopped);
                    let mut lose_late = None;
                    match (self.current(), m.stepping_down()) {
                        (Some(v), Some((fence, reason))) if v.fence() == fence => {
                            let (lease, owner) = ((&name).into(), (&owner).into());
                            observe::emit(LeaseEvent::SteppingDown { lease, owner, fence });
                            v.lose(reason);
                        }
                        (Some(v), None) if let Some(reason) = stopping => {
                            let (lease, owner, fence) = ((&name).into(), (&owner).into(), v.fence());
                            observe::emit(LeaseEvent::SteppingDown { lease, owner, fence });
                            if mutants::active(Mutant::MC178) {
                                // MC178: the grant ends for the handle once the work stopped.
                                lose_late = Some((v, reason));
                            } else {
                                v.lose(reason);
                            }
                        }
                        _ => self.set_current(None),
                    }
                    if let Some(w) = work.take() {
                        self.stop_work(w).await;
                    }
                    if let Some((v, reason)) = lose_late.take() {
                        v.lose(reason);
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
                            // MC131: the guard's validity counted from its publication, a TTL on.
                            let d = if mutants::active(Mutant::MC131) { now + self.cfg.ttl } else { d };
                            self.set_current(Some(Validity::new(*fence, self.clock.clone(), d)))
                        }
                        _ => self.set_current(None),
                    }
                    let previous = self.state.borrow().clone();
                    self.trace_state(&previous, &s);
                    self.publish(s);
                }
                Step::Wait { until: at } => {
                    // MC51: the wait sleeps through a stop; the owner hears it when the wait ends.
                    let hear_stop = !shutting_down && !mutants::active(Mutant::MC51);
                    tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        _ = self.clock.sleep_until(at) => {}
                        _ = &mut cancelled, if hear_stop => {}
                        (fence, r) = work_ended(&mut work) => {
                            observe::emit(LeaseEvent::WorkEnded {
                                lease: (&name).into(),
                                owner: (&owner).into(),
                                fence,
                                panic: r.as_ref().err().map(Text::from),
                            });
                            m.on_work_ended(self.clock.now(), r.is_err());
                        }
                    }
                }
                Step::Escalate(e) => {
                    // MS1/MS2: Sequin's MutexOwner crashed, and its one-for-all supervisor took the
                    // whole runtime subtree down with it: the work is killed, not stopped, and the
                    // owner's parent is cancelled.
                    observe::emit(LeaseEvent::Crashed {
                        lease: (&name).into(),
                        owner: (&owner).into(),
                        error: Text::display(&e),
                    });
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
        let (lease, owner) = (name.into(), owner.into());
        match *s {
            LeaseState::Held { fence, work } if previous.fence() == Some(fence) => match work {
                WorkState::Running => observe::emit(LeaseEvent::WorkRestarted { lease, owner, fence }),
                WorkState::Restarting { restarts, panicked } => {
                    observe::emit(LeaseEvent::WorkRestarting { lease, owner, fence, restarts, panicked })
                }
            },
            LeaseState::Held { fence, .. } => observe::emit(LeaseEvent::Held { lease, owner, fence }),
            LeaseState::Failed { ref error, attempts } => {
                observe::emit(LeaseEvent::Failed { lease, owner, attempts, error: Text::display(error) })
            }
            LeaseState::Lost { fence, reason } => observe::emit(LeaseEvent::Lost { lease, owner, fence, reason }),
            LeaseState::Released => observe::emit(LeaseEvent::Released { lease, owner }),
            LeaseState::Awaiting => observe::emit(LeaseEvent::Awaiting { lease, owner }),
        }
    }

    async fn stop_work(&self, w: Work) {
        // MC293: the work's token left alone.
        if !mutants::active(Mutant::MC293) {
            w.stop.cancel();
        }
        let told = self.clock.now();
        let stopped = |aborted: bool| {
            observe::emit(LeaseEvent::WorkStopped {
                lease: (&self.cfg.name).into(),
                owner: (&self.cfg.owner).into(),
                fence: w.fence,
                waited_us: crate::observe::micros(self.clock.now().saturating_duration_since(told)),
                aborted,
            })
        };
        // MC79: the work reported stopped once told to stop, before it ended.
        let early = mutants::active(Mutant::MC79);
        if early {
            stopped(false);
        }
        let mut task = w.task;
        let aborted = tokio::select! {
            biased; // fixed poll order: tokio's per-thread select RNG would break replay
            r = &mut task => {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(p)) => error!(target: "keel::lease", lease = %self.cfg.name, panic = %p, "guarded work panicked while stopping"),
                    Err(e) => error!(target: "keel::lease", lease = %self.cfg.name, error = %e, "guarded work task failed"),
                }
                false
            }
            // MC177: the abort comes at the op timeout.
            // MC351: the abort armed on the runtime's timer, not the owner's clock.
            _ = async {
                let wait = if mutants::active(Mutant::MC177) { self.cfg.op_timeout } else { self.cfg.work_stop_timeout };
                if mutants::active(Mutant::MC351) { tokio::time::sleep(wait).await } else { self.clock.sleep(wait).await }
            } => {
                error!(target: "keel::lease", lease = %self.cfg.name, "guarded work ignored cancellation; aborting it");
                // MC294: the abort forgotten: the work runs on until it ends by itself.
                if !mutants::active(Mutant::MC294) {
                    task.abort();
                }
                true
            }
        };
        if aborted {
            // An aborted work's future is dropped when the runtime next handles its task: wait
            // for that, so that `work_stopped` (and the `lost` after it) follow the work's own
            // drop (its guards, its drop-time clean-up). S15 saw the report come first at lease
            // seed 2216, a clock jump ending the stop's wait.
            let _ = task.await;
        }
        // MC166: an aborted work never reported stopped.
        let unreported = aborted && mutants::active(Mutant::MC166);
        if !early && !unreported {
            stopped(aborted);
        }
    }

    async fn release(&self, token: &str) {
        let sent = self.clock.now();
        // MC155: the release waits a TTL for its reply, not the op timeout.
        let cut = if mutants::active(Mutant::MC155) { self.cfg.ttl } else { self.cfg.op_timeout };
        // MC421: the deadline counted back from the send: every release gives up at once.
        let deadline = if mutants::active(Mutant::MC421) { sent.checked_sub(cut).unwrap_or(sent) } else { sent + cut };
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
        observe::emit(LeaseEvent::ReleaseEnded {
            lease: (&self.cfg.name).into(),
            owner: (&self.cfg.owner).into(),
            token: token.into(),
            // MC76: a release that failed (its outcome unknown) reported as done.
            released: *r.as_ref().unwrap_or(&mutants::active(Mutant::MC76)),
            // MC270: the call's bound reported as its duration.
            took_us: crate::observe::micros(
                if mutants::active(Mutant::MC270) { deadline } else { self.clock.now() }
                    .saturating_duration_since(sent),
            ),
            error: r.as_ref().err().map(|e| Text::display(e)),
        });
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
                    state.send_replace(LeaseState::Held { fence, work: WorkState::Running });
                }
            }
        })
    }
}

#[cfg(all(test, not(keel_loom)))]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::observe::{Event, Observer};

    /// (kind, count, total or errors) of every store-error summary the driver emits.
    #[derive(Default)]
    struct Summaries(RefCell<Vec<(&'static str, u64, u64)>>);

    impl Observer for Summaries {
        fn event(&self, e: &Event<'_>) {
            match e {
                Event::Lease(LeaseEvent::StoreErrors { count, total, .. }) => {
                    self.0.borrow_mut().push(("store_errors", *count, *total))
                }
                Event::Lease(LeaseEvent::StoreRecovered { errors, .. }) => {
                    self.0.borrow_mut().push(("store_recovered", 0, *errors))
                }
                _ => {}
            }
        }
    }

    /// A failing store is reported at the first error, then once per `error_log_interval` with
    /// the count since the last report; a recovery is reported once after errors, never after a
    /// success that followed successes (cargo-mutants: the reports switched off, and the
    /// recovery reported after every success, both survived the other tests).
    #[test]
    fn store_errors_are_reported_at_first_then_per_interval_and_recovery_only_after_errors() {
        let seen = Rc::new(Summaries::default());
        let before = observe::set_thread_observer(Some(seen.clone()));
        let cfg = LeaseConfig::builder("l", "o").build().expect("defaults are valid");
        let e = StoreError::Timeout { op: "lease_renew" };
        let t0 = Instant::now();
        let mut log = ErrorLog::default();
        log.ok(&cfg); // a success after successes: nothing to report
        for s in [0, 1, 9] {
            log.error(t0 + Duration::from_secs(s), &cfg, "lease_renew", &e);
        }
        log.error(t0 + cfg.error_log_interval, &cfg, "lease_renew", &e);
        log.ok(&cfg);
        log.ok(&cfg);
        observe::set_thread_observer(before);
        assert_eq!(
            *seen.0.borrow(),
            [("store_errors", 1, 1), ("store_errors", 3, 4), ("store_recovered", 0, 4)],
            "first error at once, the next three summarised at the interval, one recovery"
        );
    }
}
