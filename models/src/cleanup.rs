//! The pool's dead-worker cleanup: two cleaners driving the real [`Cleanup`] machine against the
//! real [`StoreState`], a dead worker owning two jobs, an expired lock left by a cleaner that
//! crashed earlier, cleaner crashes at every step, store time advancing in ticks (so locks expire
//! and are taken over).
//!
//! A cleaner sweeps (reads the worker's keep-alive and lock at the current store time, and starts
//! a cleanup if the worker is stale), then performs its machine's commands one store call per
//! step. A requeue is one atomic guarded move (what `requeue_with_retries` converges to: moved
//! under its next attempt if the worker still owns it). The model chooses the interleaving, the
//! crashes and the ticks; nothing of the protocol is restated here.

use std::collections::BTreeMap;
use std::time::Duration;

use keel::mutants::{self, Mutant};
use keel::pool::{
    Cleanup, CleanupCommand as Command, CleanupReply as Reply, CleanupStart, LockMap, fence_write, keepalive_stale,
};
use keel::store::{Expect, MapWrite, StoreState};
use stateright::{Model, Property};

use super::Explain;

const KEEPALIVE: &str = "keepalive";
const WORKERS: &str = "workers";
const LOCKS: &str = "cleanup";
const JOBS: &str = "jobs";
const WORKER: &str = "w";
/// The dead worker's jobs.
const JOB_NAMES: [&str; 2] = ["a", "b"];
/// Store time when the model starts: the worker last beat at 1 s.
const T0_MS: u64 = 10_000;

/// Bounds of one cleanup model.
#[derive(Clone, Debug)]
pub struct CleanupModel {
    /// Cleaners (each a node's sweeper).
    pub cleaners: usize,
    /// Cleaner crashes, per run (a crashed cleaner stays down; its lock expires).
    pub crashes_max: u8,
    /// Store time advances in steps of this many ms, up to `horizon_ms` after the start.
    pub tick_ms: u64,
    /// Store time at which the run ends (after every lock a crash left could expire).
    pub horizon_ms: u64,
    /// The worker TTL.
    pub ttl_ms: u64,
    /// The cleanup lock's TTL.
    pub lock_ttl_ms: u64,
    /// The store operation timeout.
    pub op_timeout_ms: u64,
    /// The historical bug switched on while exploring (None = the fixed code).
    pub mutant: Option<Mutant>,
}

impl Default for CleanupModel {
    fn default() -> Self {
        CleanupModel {
            cleaners: 2,
            crashes_max: 1,
            tick_ms: 1_000,
            horizon_ms: 4_000,
            ttl_ms: 1_000,
            lock_ttl_ms: 3_000,
            op_timeout_ms: 500,
            mutant: None,
        }
    }
}

/// One cleanup in progress.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Run {
    machine: Cleanup,
    next: Command,
    /// Store time of the sweep that started it (its lock expires a lock TTL later).
    swept_ms: u64,
    /// It deleted its own lock (released it, or MP4's keep-alive-as-lock with the worker).
    released: bool,
}

/// One cleaner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cleaner {
    up: bool,
    run: Option<Run>,
    /// Store time its last finished sweep started at.
    swept_ms: Option<u64>,
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    t_ms: u64,
    store: StoreState,
    cleaners: Vec<Cleaner>,
    crashes: u8,
    /// Moves per (job, attempt moved from): a second is a double requeue.
    moves: BTreeMap<(String, u64), u8>,
    /// History flag: a cleaner decided to write the worker's state or jobs after its lock could
    /// have expired (another cleaner may hold it by then).
    late_write: bool,
}

/// What can happen next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Cleaner `i` sweeps: reads the worker's keep-alive and lock, and starts a cleanup if the
    /// worker is stale.
    Sweep(usize),
    /// Cleaner `i` performs its next command (one store call) and feeds the reply back.
    Step(usize),
    /// Cleaner `i` crashes (its lock stays until it expires).
    Crash(usize),
    /// Store time advances one tick.
    Tick,
}

/// A job record in the model: `owner#attempt` (owner empty: queued).
fn record(owner: &str, attempt: u64) -> String {
    format!("{owner}#{attempt}")
}

fn parse(raw: &str) -> Option<(&str, u64)> {
    let (owner, attempt) = raw.split_once('#')?;
    Some((owner, attempt.parse().ok()?))
}

fn job_key(job: &str) -> String {
    format!("j/{job}")
}

impl CleanupModel {
    fn get(st: &State, map: &str, key: &str) -> Option<String> {
        st.store.map_get(map, key).ok().and_then(|(v, _)| v)
    }

    fn write(st: &mut State, map: &str, write: &MapWrite) -> Reply {
        match st.store.map_write(map, WORKER, write, st.t_ms) {
            Ok((out, _)) => Reply::Written { applied: out.applied, value: out.value },
            Err(_) => Reply::Written { applied: false, value: None },
        }
    }

    fn owned(st: &State) -> Vec<(String, String)> {
        JOB_NAMES
            .iter()
            .filter_map(|j| {
                let raw = Self::get(st, JOBS, &job_key(j))?;
                (parse(&raw)?.0 == WORKER).then(|| ((*j).to_owned(), raw))
            })
            .collect()
    }

    /// Whether a sweep at the current store time sees the worker as stale (keep-alive missing,
    /// dead or old) and not yet cleaned (registered, or owning a job).
    fn stale(&self, st: &State) -> bool {
        let ka_stale = Self::get(st, KEEPALIVE, WORKER).is_none_or(|ka| keepalive_stale(&ka, st.t_ms, self.ttl_ms));
        ka_stale && (Self::get(st, WORKERS, WORKER).is_some() || !Self::owned(st).is_empty())
    }

    /// Perform `cmd` for cleaner `i`; the reply.
    fn perform(st: &mut State, cmd: &Command) -> Reply {
        match cmd {
            Command::Lock { map, write } => {
                let map = if *map == LockMap::Cleanup { LOCKS } else { KEEPALIVE };
                Self::write(st, map, write)
            }
            Command::ReadKeepalive => Reply::Keepalive(Self::get(st, KEEPALIVE, WORKER)),
            Command::ReadTime => Reply::Time(st.t_ms),
            Command::Fence { expected } => Self::write(st, KEEPALIVE, &fence_write(expected.as_deref())),
            Command::ReadOwned => Reply::Owned(Self::owned(st)),
            Command::Requeue { job, .. } => {
                if let Some(raw) = Self::get(st, JOBS, &job_key(job))
                    && let Some((WORKER, attempt)) = parse(&raw)
                {
                    let guard = [(job_key(job), Expect::Value(raw.clone()))];
                    let writes = [(job_key(job), Some(record("", attempt + 1)))];
                    if st.store.map_txn(JOBS, &guard, &writes, st.t_ms).is_ok_and(|(o, _)| o.applied) {
                        *st.moves.entry((job.clone(), attempt)).or_default() += 1;
                    }
                }
                Reply::Done
            }
            Command::DeleteKeepalive { expected } => {
                Self::write(st, KEEPALIVE, &MapWrite::CompareAndDelete(expected.clone()))
            }
            Command::DeleteWorker => Self::write(st, WORKERS, &MapWrite::Delete),
            Command::Release { lock } => {
                let _ = Self::write(st, LOCKS, &MapWrite::CompareAndDelete(lock.clone()));
                Reply::Done
            }
            Command::Finish(_) => Reply::Done,
        }
    }

    /// Cleaner `i` takes `cmd` as its next command, or ends its run on `Finish` (its sweep
    /// counts as done at the time it started: what it saw).
    fn follow(st: &mut State, i: usize, cmd: Command) {
        let c = &mut st.cleaners[i];
        if let Command::Finish(_) = cmd {
            c.swept_ms = c.run.take().map(|r| r.swept_ms);
        } else if let Some(run) = c.run.as_mut() {
            run.next = cmd;
        }
    }

    /// Until when nobody else may take `run`'s lock: the expiry its lock value carries, or for
    /// MP4's keep-alive claim (last-seen + ttl), until that claim is stale.
    fn held_until(&self, run: &Run) -> u64 {
        let lock = &run.machine.lock;
        match lock.rsplit_once('|') {
            Some((_, expires)) => expires.parse().unwrap_or(0),
            None => lock.parse::<u64>().map_or(0, |ms| ms + self.ttl_ms),
        }
    }

    /// Cleaners holding a lock nobody else may take yet, in the middle of a cleanup.
    fn holders(&self, st: &State) -> usize {
        let runs = st.cleaners.iter().filter_map(|c| c.run.as_ref());
        runs.filter(|r| r.machine.locked && !r.released && st.t_ms < self.held_until(r)).count()
    }

    /// The end of the run: every lock a crash left has expired, no cleanup is in progress and
    /// every live cleaner swept at this time.
    ///
    /// Whether the lock expired (a lock lives through its `expires_ms`, docs/pool.md) is read here
    /// from the lock's own `holder|expires_ms`, not asked of
    /// keel: a keel that never took an expired lock over (its `lock_step` calling it busy) made
    /// every state with a crashed cleaner's lock unsettled, and P1 below vacuous exactly where it
    /// matters (cargo-mutants, round 35 A: 384 unique states instead of 76 883, every property
    /// held).
    fn settled(&self, st: &State) -> bool {
        let expired =
            |l: &str| l.rsplit_once('|').and_then(|(_, e)| e.parse::<u64>().ok()).is_some_and(|e| e < st.t_ms);
        let lock_free = Self::get(st, LOCKS, WORKER).is_none_or(|l| expired(&l));
        st.t_ms >= T0_MS + self.horizon_ms
            && lock_free
            && st.cleaners.iter().all(|c| !c.up || (c.run.is_none() && c.swept_ms == Some(st.t_ms)))
    }
}

impl Model for CleanupModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        mutants::set(self.mutant);
        let mut store = StoreState::default();
        let mut put = |map: &str, key: &str, v: String| {
            let _ = store.map_write(map, key, &MapWrite::Set(v), T0_MS);
        };
        put(KEEPALIVE, WORKER, format!("1000|{}", self.ttl_ms));
        put(WORKERS, WORKER, "registered".into());
        // A cleaner that crashed long ago left its lock: expired, to be taken over.
        put(LOCKS, WORKER, format!("old.1|{}", T0_MS - 1_000));
        for j in JOB_NAMES {
            put(JOBS, &job_key(j), record(WORKER, 1));
        }
        let cleaner = Cleaner { up: true, run: None, swept_ms: None };
        vec![State {
            t_ms: T0_MS,
            store,
            cleaners: vec![cleaner; self.cleaners],
            crashes: 0,
            moves: BTreeMap::new(),
            late_write: false,
        }]
    }

    fn actions(&self, st: &State, actions: &mut Vec<Action>) {
        for (i, c) in st.cleaners.iter().enumerate() {
            if !c.up {
                continue;
            }
            if c.run.is_some() {
                actions.push(Action::Step(i));
                // A crash late enough that its lock could outlive the run is not explored.
                if st.crashes < self.crashes_max && st.t_ms + self.lock_ttl_ms < T0_MS + self.horizon_ms {
                    actions.push(Action::Crash(i));
                }
            } else if c.swept_ms != Some(st.t_ms) {
                actions.push(Action::Sweep(i));
            }
        }
        if st.t_ms < T0_MS + self.horizon_ms {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        // The switch is per thread, and the checker explores in threads of its own.
        mutants::set(self.mutant);
        let mut st = last.clone();
        match action {
            Action::Sweep(i) => {
                if !self.stale(&st) {
                    st.cleaners[i].swept_ms = Some(st.t_ms);
                    return Some(st);
                }
                let (ka, lock) = (Self::get(&st, KEEPALIVE, WORKER), Self::get(&st, LOCKS, WORKER));
                let (machine, next) = Cleanup::start(&CleanupStart {
                    now_ms: st.t_ms,
                    keepalive: ka.as_deref(),
                    lock: lock.as_deref(),
                    holder: format!("c{i}"),
                    ttl_ms: self.ttl_ms,
                    lock_ttl: Duration::from_millis(self.lock_ttl_ms),
                    op_timeout: Duration::from_millis(self.op_timeout_ms),
                    since_view: Duration::ZERO,
                });
                st.cleaners[i].run = Some(Run { machine, next: next.clone(), swept_ms: st.t_ms, released: false });
                Self::follow(&mut st, i, next);
            }
            Action::Step(i) => {
                let cmd = st.cleaners[i].run.as_ref()?.next.clone();
                let reply = Self::perform(&mut st, &cmd);
                let t = st.t_ms;
                let run = st.cleaners[i].run.as_mut()?;
                run.released |= match &cmd {
                    Command::Release { .. } => true,
                    Command::DeleteKeepalive { expected } => *expected == run.machine.lock,
                    _ => false,
                };
                let next = run.machine.on(reply, Duration::from_millis(t - run.swept_ms));
                // Deciding to write is the machine's part; the write may then land late (a
                // request in flight): the guards of each write are what makes that harmless.
                st.late_write |= next.writes() && t >= self.held_until(run);
                Self::follow(&mut st, i, next);
            }
            Action::Crash(i) => {
                st.cleaners[i].up = false;
                st.cleaners[i].run = None;
                st.crashes += 1;
            }
            Action::Tick => st.t_ms += self.tick_ms,
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("P1: no job lost (every job keeps its record)", |_, st: &State| {
                JOB_NAMES.iter().all(|j| CleanupModel::get(st, JOBS, &job_key(j)).is_some())
            }),
            Property::always("cleanup lock: at most one cleaner holds it", |m: &Self, st: &State| m.holders(st) <= 1),
            Property::always("cleanup lock: no write decided after it could have expired", |_, st: &State| {
                !st.late_write
            }),
            Property::always("no attempt of a job is requeued twice", |_, st: &State| {
                st.moves.values().all(|&n| n <= 1)
            }),
            Property::always("P1: no job left on the dead worker once cleaners settle", |m: &Self, st: &State| {
                !m.settled(st) || CleanupModel::owned(st).is_empty()
            }),
        ]
    }
}

impl Explain for CleanupModel {
    fn describe(&self, st: &State) -> String {
        let get = |map: &str, key: &str| Self::get(st, map, key).unwrap_or_else(|| "-".into());
        let jobs: Vec<String> = JOB_NAMES.iter().map(|j| format!("{j}={}", get(JOBS, &job_key(j)))).collect();
        let cleaners: Vec<String> = st
            .cleaners
            .iter()
            .enumerate()
            .map(|(i, c)| match (&c.run, c.up) {
                (_, false) => format!("c{i} down"),
                (None, true) => format!("c{i} idle"),
                (Some(r), true) => {
                    let next = format!("{:?}", r.next);
                    let next = next.split([' ', '(']).next().unwrap_or_default().to_owned();
                    format!("c{i}{} next {next}", if r.machine.locked { " locked" } else { "" })
                }
            })
            .collect();
        format!(
            "t={}s ka={} worker={} lock={} | {} | {}",
            (st.t_ms - T0_MS) as f64 / 1000.0,
            get(KEEPALIVE, WORKER),
            get(WORKERS, WORKER),
            get(LOCKS, WORKER),
            jobs.join(" "),
            cleaners.join(", ")
        )
    }
}
