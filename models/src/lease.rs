//! The lease: 2–3 owners running the real [`Machine`] against the real [`StoreState`].
//!
//! Time moves in global ticks; each owner's local clock advances by the tick times its own rate,
//! slow or fast at the configured drift bound. A timer that came due during a tick (a wait, an
//! operation deadline) fires before anything else happens at the new instant: it fired during
//! the tick. Messages are delayed (the clock ticks with requests in flight), lost (request or
//! reply), or applied after their sender gave up (strays). Owners crash and restart with a new
//! incarnation; the store restarts losing every key. The driver's step handling, including the
//! driver-side mutants MS5 and MS6, mirrors `keel::lease::driver`.

use std::time::Duration;

use keel::StoreError;
use keel::clock::Instant;
use keel::lease::{LeaseState, Machine, Step, Timing, WorkPolicy, WorkState};
use keel::mutants::{self, Mutant};
use keel::store::{Acquire, Renew, StoreState};
use stateright::{Model, Property};

use super::Explain;

const NAME: &str = "lease";
/// Store time at the start (any value: only differences matter).
const BASE_MS: u64 = 1_000;
/// Most requests in flight after their sender gave up (a bound on the explored space).
const STRAYS_MAX: usize = 1;
/// Most local steps one owner takes without waiting or sending (a machine that loops is a bug).
const STEPS_PER_ACTION_MAX: usize = 32;

/// Bounds and timing of one lease model.
#[derive(Clone, Debug)]
pub struct LeaseModel {
    /// Number of owners (2 or 3).
    pub owners: usize,
    /// The machine's timing (ttl, renew interval, drift margin, retries, poll).
    pub timing: Timing,
    /// The driver's operation timeout.
    pub op_timeout: Duration,
    /// One global clock step.
    pub tick_ms: u64,
    /// Global time explored.
    pub horizon_ms: u64,
    /// Clock rate error of an owner, per mille (slow owners run at 1 − ρ, fast ones at 1 + ρ).
    pub drift_permille: u64,
    /// Lost requests or replies per run.
    pub losses_max: u8,
    /// Ticks that pass with a request or reply still in flight (delays), per run. Otherwise the
    /// network is prompt: everything in flight arrives before the clock moves on.
    pub delays_max: u8,
    /// Owner crashes (each followed by a restart) per run.
    pub crashes_max: u8,
    /// Store restarts that lose every key, per run.
    pub store_restarts_max: u8,
    /// Origin of every local clock (only differences of instants matter).
    pub t0: Instant,
    /// The historical bug switched on while exploring (None = the fixed code).
    pub mutant: Option<Mutant>,
}

impl LeaseModel {
    /// `owners` owners with network faults only (one lost message, two delayed ticks), 2.4 s.
    pub fn new(owners: usize) -> Self {
        const MS: Duration = Duration::from_millis(1);
        LeaseModel {
            owners,
            timing: Timing {
                ttl: 900 * MS,
                renew_interval: 300 * MS,
                drift_margin: 90 * MS,
                retry_min: 100 * MS,
                retry_max: 300 * MS,
                poll_interval: 300 * MS,
                // The guarded work never ends by itself here: its policy is not exercised.
                work: WorkPolicy::default(),
                permanent_attempts: keel::lease::DEFAULT_PERMANENT_ERROR_ATTEMPTS,
            },
            op_timeout: 200 * MS,
            tick_ms: 100,
            horizon_ms: 2_400,
            // The config's bound: drift_margin / ttl = 10 %.
            drift_permille: 100,
            losses_max: 1,
            delays_max: 2,
            crashes_max: 0,
            store_restarts_max: 0,
            t0: Instant::now(),
            mutant: None,
        }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.timing.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// How long after the last fault exactly one owner must hold (SPEC S3: ttl + renew + poll),
    /// plus one tick of discretisation.
    fn settle_ms(&self) -> u64 {
        let t = &self.timing;
        u64::try_from((t.ttl + t.renew_interval + t.poll_interval).as_millis()).unwrap_or(u64::MAX) + self.tick_ms
    }

    fn now(&self, o: &Owner) -> Instant {
        self.t0 + Duration::from_micros(o.local_us)
    }
}

/// A request of the driver to the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Req {
    /// `lease_acquire`.
    Acquire(String),
    /// `lease_renew`.
    Renew(String),
    /// `lease_release` (compare-and-delete).
    Release(String),
    /// MS5's plain delete.
    Delete(String),
}

/// Where a request is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flight {
    /// On its way to the store.
    Sent,
    /// Applied; the reply is on its way back.
    Replied(Reply),
    /// Lost (request or reply): only the deadline ends the wait.
    Lost,
}

/// A store reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// To an acquire.
    Acquire(Result<Acquire, StoreError>),
    /// To a renewal.
    Renew(Result<Renew, StoreError>),
    /// To a release.
    Release,
}

/// The one operation a driver awaits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pending {
    req: Req,
    sent: Instant,
    deadline: Instant,
    flight: Flight,
}

/// One owner process: its machine plus what its driver holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner {
    machine: Machine,
    /// Local clock rate, per mille of real time.
    rate_permille: u64,
    /// Local time since the model's start, in µs.
    local_us: u64,
    /// The machine asked to be polled again at this local instant.
    wake: Instant,
    pending: Option<Pending>,
    /// The last state published on the handle.
    belief: LeaseState,
    /// The fence whose guarded work runs.
    work: Option<u64>,
    just_lost: bool,
    /// MS6: the surviving renew timer of a demoted grant, re-acquiring with its token.
    zombie: Option<String>,
    exited: bool,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    t_ms: u64,
    store: StoreState,
    /// The store is restarting: requests fail until the next tick.
    restarting: bool,
    owners: Vec<Owner>,
    strays: Vec<Req>,
    losses: u8,
    delays: u8,
    crashes: u8,
    store_restarts: u8,
    last_fault_ms: u64,
    /// Highest fence any owner ever believed.
    max_fence: u64,
    /// History flags: a belief with a fence not above every earlier one; a release that deleted
    /// another token's grant.
    fence_regressed: bool,
    foreign_deleted: bool,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Global time advances one tick (requests still in flight are delayed).
    Tick,
    /// Owner runs its machine until it waits or sends.
    Step(usize),
    /// The store applies the owner's request.
    Deliver(usize),
    /// The reply reaches the owner.
    Reply(usize),
    /// The owner's operation deadline fires.
    Timeout(usize),
    /// The owner's request or reply is lost.
    Lose(usize),
    /// A request whose sender gave up is applied now.
    ApplyStray(usize),
    /// MS6's surviving timer re-acquires.
    Zombie(usize),
    /// The owner crashes and restarts.
    Crash(usize),
    /// The store restarts and loses every key.
    StoreRestart,
}

impl LeaseModel {
    /// A process that starts at local time `local_us` and first reads the store's time at
    /// `start_us` (its incarnation: a restarted process reads a later time than its predecessor).
    fn fresh_owner(&self, i: usize, rate_permille: u64, local_us: u64, start_us: u64) -> Owner {
        let now = self.t0 + Duration::from_micros(local_us);
        Owner {
            machine: Machine::new(self.timing.clone(), &format!("o{i}"), self.t0 + Duration::from_micros(start_us)),
            rate_permille,
            local_us,
            wake: now,
            pending: None,
            belief: LeaseState::Awaiting,
            work: None,
            just_lost: false,
            zombie: None,
            exited: false,
        }
    }

    /// A timer of `o` is due: it fires before anything else happens at this instant.
    fn due(&self, o: &Owner) -> bool {
        let now = self.now(o);
        match &o.pending {
            None => !o.exited && now >= o.wake,
            Some(p) => now >= p.deadline,
        }
    }

    fn apply(&self, st: &mut State, req: &Req) -> Reply {
        let now = BASE_MS + st.t_ms;
        if st.restarting {
            let e = StoreError::Unavailable { reason: "store restarting".into() };
            return match req {
                Req::Acquire(_) => Reply::Acquire(Err(e)),
                Req::Renew(_) => Reply::Renew(Err(e)),
                Req::Release(_) | Req::Delete(_) => Reply::Release,
            };
        }
        let ttl = self.ttl_ms();
        match req {
            Req::Acquire(token) => Reply::Acquire(st.store.lease_acquire(NAME, token, ttl, ttl, now)),
            Req::Renew(token) => Reply::Renew(st.store.lease_renew(NAME, token, ttl, now)),
            Req::Release(token) | Req::Delete(token) => {
                let before = st.store.lease_holder(NAME, now).map(|(t, _)| t.to_owned());
                if let Req::Delete(_) = req {
                    st.store.lease_delete_unchecked(NAME);
                } else {
                    let _ = st.store.lease_release(NAME, token, now);
                }
                let after = st.store.lease_holder(NAME, now).map(|(t, _)| t.to_owned());
                if before.as_ref().is_some_and(|b| b != token) && after != before {
                    st.foreign_deleted = true;
                }
                Reply::Release
            }
        }
    }

    fn publish(st: &mut State, i: usize, s: LeaseState) {
        // A restart of the guarded work republishes the same grant: not a new belief.
        if let LeaseState::Held { fence, .. } = s
            && st.owners[i].belief.fence() != Some(fence)
        {
            if fence <= st.max_fence {
                st.fence_regressed = true;
            }
            st.max_fence = st.max_fence.max(fence);
        }
        st.owners[i].belief = s;
    }

    fn send(&self, o: &mut Owner, req: Req, deadline: Instant) {
        let sent = self.now(o);
        o.pending = Some(Pending { req, sent, deadline, flight: Flight::Sent });
    }

    /// The driver loop of `keel::lease::driver`, until the machine waits or a request is out.
    fn step(&self, st: &mut State, i: usize) {
        for _ in 0..STEPS_PER_ACTION_MAX {
            let now = self.now(&st.owners[i]);
            let step = st.owners[i].machine.poll(now);
            // The store's clock in ms, for a StoreTime step.
            let store_time = if st.restarting {
                Err(StoreError::Unavailable { reason: "store restarting".into() })
            } else {
                Ok(BASE_MS + st.t_ms)
            };
            let o = &mut st.owners[i];
            match step {
                // Answered at once: lost or delayed replies are explored on the acquire.
                Step::StoreTime => o.machine.on_time(now, store_time),
                Step::Acquire { token } => return self.send(o, Req::Acquire(token), now + self.op_timeout),
                Step::Renew { token, deadline } => {
                    return self.send(o, Req::Renew(token), deadline.min(now + self.op_timeout));
                }
                Step::StartWork { fence } => o.work = Some(fence),
                Step::StopWork => {
                    o.work = None;
                    o.machine.on_work_stopped(now);
                }
                Step::Release { token } => {
                    if o.just_lost && mutants::active(Mutant::MS6) {
                        o.zombie = Some(token);
                    } else if mutants::active(Mutant::MS5) {
                        return self.send(o, Req::Delete(token), now + self.op_timeout);
                    } else {
                        return self.send(o, Req::Release(token), now + self.op_timeout);
                    }
                }
                Step::Publish(s) => {
                    o.just_lost = matches!(s, LeaseState::Lost { .. });
                    Self::publish(st, i, s);
                }
                Step::Wait { until } => {
                    o.wake = until;
                    return;
                }
                Step::Escalate(_) | Step::Exit => {
                    o.exited = true;
                    o.work = None;
                    o.belief = LeaseState::Released;
                    return;
                }
            }
        }
        panic!("owner {i} took {STEPS_PER_ACTION_MAX} steps without waiting: {:?}", st.owners[i].machine);
    }

    /// Hand the outcome of the pending request to the machine (reply or deadline).
    fn finish(&self, st: &mut State, i: usize, reply: Option<Reply>) {
        let o = &mut st.owners[i];
        let Some(p) = o.pending.take() else { return };
        let now = self.now(o);
        let timeout = |op| StoreError::Timeout { op };
        match (p.req, reply) {
            (Req::Acquire(_), Some(Reply::Acquire(r))) => o.machine.on_acquire(p.sent, now, r),
            (Req::Acquire(_), _) => o.machine.on_acquire(p.sent, now, Err(timeout("lease_acquire"))),
            (Req::Renew(_), Some(Reply::Renew(r))) => o.machine.on_renew(p.sent, now, r),
            (Req::Renew(_), _) => o.machine.on_renew(p.sent, now, Err(timeout("lease_renew"))),
            (Req::Release(_) | Req::Delete(_), _) => {}
        }
        o.wake = now;
    }

    fn stray(st: &mut State, p: Option<Pending>) {
        if let Some(Pending { req, flight: Flight::Sent, .. }) = p
            && st.strays.len() < STRAYS_MAX
        {
            st.strays.push(req);
        }
    }

    /// A request or a reply is on its way.
    fn in_flight(st: &State) -> bool {
        st.owners
            .iter()
            .any(|o| matches!(o.pending.as_ref().map(|p| &p.flight), Some(Flight::Sent | Flight::Replied(_))))
    }

    fn believers(st: &State) -> usize {
        st.owners.iter().filter(|o| matches!(o.belief, LeaseState::Held { .. })).count()
    }
}

impl Model for LeaseModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        mutants::set(self.mutant);
        // Every combination of slow and fast clocks.
        let (slow, fast) = (1000 - self.drift_permille, 1000 + self.drift_permille);
        (0..1usize << self.owners)
            .map(|mask| State {
                t_ms: 0,
                store: StoreState::default(),
                restarting: false,
                owners: (0..self.owners)
                    .map(|i| self.fresh_owner(i, if mask & (1 << i) == 0 { slow } else { fast }, 0, 0))
                    .collect(),
                strays: Vec::new(),
                losses: 0,
                delays: 0,
                crashes: 0,
                store_restarts: 0,
                last_fault_ms: 0,
                max_fence: 0,
                fence_regressed: false,
                foreign_deleted: false,
            })
            .collect()
    }

    fn actions(&self, st: &State, actions: &mut Vec<Action>) {
        // Due timers first: they fired during the last tick, before anything at this instant.
        let due: Vec<usize> = (0..st.owners.len()).filter(|&i| self.due(&st.owners[i])).collect();
        if !due.is_empty() {
            for i in due {
                match st.owners[i].pending {
                    None => actions.push(Action::Step(i)),
                    Some(_) => actions.push(Action::Timeout(i)),
                }
            }
            return;
        }
        for (i, o) in st.owners.iter().enumerate() {
            match o.pending.as_ref().map(|p| &p.flight) {
                Some(Flight::Sent) => actions.push(Action::Deliver(i)),
                Some(Flight::Replied(_)) => actions.push(Action::Reply(i)),
                _ => {}
            }
            if matches!(o.pending.as_ref().map(|p| &p.flight), Some(Flight::Sent | Flight::Replied(_)))
                && st.losses < self.losses_max
            {
                actions.push(Action::Lose(i));
            }
            if o.zombie.is_some() {
                actions.push(Action::Zombie(i));
            }
            if st.crashes < self.crashes_max {
                actions.push(Action::Crash(i));
            }
        }
        for k in 0..st.strays.len() {
            actions.push(Action::ApplyStray(k));
        }
        if st.store_restarts < self.store_restarts_max && !st.restarting {
            actions.push(Action::StoreRestart);
        }
        if st.t_ms + self.tick_ms <= self.horizon_ms && (!Self::in_flight(st) || st.delays < self.delays_max) {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        // The switch is per thread, and the checker explores in threads of its own.
        mutants::set(self.mutant);
        let mut st = last.clone();
        match action {
            Action::Tick => {
                st.t_ms += self.tick_ms;
                for o in &mut st.owners {
                    o.local_us += self.tick_ms * o.rate_permille;
                }
                st.restarting = false;
                if Self::in_flight(&st) {
                    st.delays += 1;
                    st.last_fault_ms = st.t_ms;
                }
            }
            Action::Step(i) => self.step(&mut st, i),
            Action::Deliver(i) => {
                let req = st.owners[i].pending.as_ref()?.req.clone();
                let reply = self.apply(&mut st, &req);
                st.owners[i].pending.as_mut()?.flight = Flight::Replied(reply);
            }
            Action::Reply(i) => {
                let Flight::Replied(r) = st.owners[i].pending.as_ref()?.flight.clone() else { return None };
                self.finish(&mut st, i, Some(r));
            }
            Action::Timeout(i) => {
                let p = st.owners[i].pending.clone();
                self.finish(&mut st, i, None);
                Self::stray(&mut st, p);
            }
            Action::Lose(i) => {
                st.owners[i].pending.as_mut()?.flight = Flight::Lost;
                st.losses += 1;
                st.last_fault_ms = st.t_ms;
            }
            Action::ApplyStray(k) => {
                let req = st.strays.remove(k);
                let _ = self.apply(&mut st, &req);
                st.last_fault_ms = st.t_ms;
            }
            Action::Zombie(i) => {
                let token = st.owners[i].zombie.clone()?;
                let now = BASE_MS + st.t_ms;
                if let Ok(Acquire::Granted { fence }) = st.store.lease_acquire(NAME, &token, self.ttl_ms(), 0, now)
                    && st.owners[i].belief.fence() != Some(fence)
                {
                    Self::publish(&mut st, i, LeaseState::Held { fence, work: WorkState::Running });
                }
            }
            Action::Crash(i) => {
                let old = &st.owners[i];
                // The restarted process reads the store's time one tick later: the store's clock
                // has moved on, so its incarnation (and every token) differs from its predecessor's.
                let start_us = old.local_us + self.tick_ms * old.rate_permille;
                let fresh = self.fresh_owner(i, old.rate_permille, old.local_us, start_us);
                let p = std::mem::replace(&mut st.owners[i], fresh).pending;
                Self::stray(&mut st, p);
                st.crashes += 1;
                st.last_fault_ms = st.t_ms;
            }
            Action::StoreRestart => {
                st.store = StoreState::default();
                st.restarting = true;
                st.store_restarts += 1;
                st.last_fault_ms = st.t_ms;
            }
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("S1: at most one owner believes it holds", |_, st: &State| LeaseModel::believers(st) <= 1),
            Property::always("S1: believed fences strictly increase", |_, st: &State| !st.fence_regressed),
            Property::always("S4: held only while its guarded work runs", |_, st: &State| {
                st.owners.iter().all(|o| o.belief.fence().is_none_or(|f| o.work == Some(f)))
            }),
            Property::always("S5: a release never deletes another token", |_, st: &State| !st.foreign_deleted),
            Property::always("S3: exactly one holder once faults stop", |m: &Self, st: &State| {
                st.t_ms < st.last_fault_ms + m.settle_ms() || LeaseModel::believers(st) == 1
            }),
        ]
    }
}

impl Explain for LeaseModel {
    fn describe(&self, st: &State) -> String {
        let owners: Vec<String> = st
            .owners
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let belief = match o.belief {
                    LeaseState::Held { fence, .. } => format!("held#{}", fence % 1000),
                    LeaseState::Failed { .. } => "failed".into(),
                    LeaseState::Lost { .. } => "lost".into(),
                    LeaseState::Awaiting => "awaiting".into(),
                    LeaseState::Released => "released".into(),
                };
                let op = o.pending.as_ref().map_or(String::new(), |p| {
                    let what = match &p.req {
                        Req::Acquire(_) => "acquire",
                        Req::Renew(_) => "renew",
                        Req::Release(_) => "release",
                        Req::Delete(_) => "DEL",
                    };
                    let at = match p.flight {
                        Flight::Sent => "sent",
                        Flight::Replied(_) => "replied",
                        Flight::Lost => "lost",
                    };
                    format!(" [{what} {at}]")
                });
                format!("o{i}@{}ms {belief}{op}", o.local_us / 1000)
            })
            .collect();
        let now = BASE_MS + st.t_ms;
        let holder = st.store.lease_holder(NAME, now).map_or("none".to_owned(), |(t, f)| format!("{t}#{}", f % 1000));
        format!("t={}ms store:{holder} | {}", st.t_ms, owners.join(", "))
    }
}
