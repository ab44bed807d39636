//! Check your own service, from your own crate: the public harness.
//!
//! A service built on keel gets the same simulated world keel's own scenarios run in (a store
//! that crashes, loses data, partitions, pauses and per-node clocks), keel's rules judged for free
//! on keel's typed events, its own checkers over its own typed events, and a replay line that
//! names *its* test. No registry to edit: the program is given by value, the way turmoil's
//! `Builder` takes it.
//!
//! ```no_run
//! use std::time::Duration;
//! use keel_sim::harness::{Node, Sim};
//!
//! #[derive(Clone, Debug)]
//! enum Ev {
//!     Started(usize),
//!     Done(usize),
//! }
//!
//! async fn service(node: Node<Ev>) {
//!     node.record(Ev::Started(node.index()));
//!     // … the service's work, on node.store().await and node.clock() …
//!     node.record(Ev::Done(node.index()));
//! }
//!
//! // In a #[test] of your crate:
//! Sim::<Ev>::new("my-service")
//!     .nodes(3)
//!     .node(service)
//!     .check(|run| {
//!         let start = |e: &Ev| matches!(e, Ev::Started(_));
//!         let done = |s: &Ev, e: &Ev| matches!((s, e), (Ev::Started(a), Ev::Done(b)) if a == b);
//!         run.eventually("every start finishes", Duration::from_secs(5), start, done)
//!     })
//!     .sometimes("a node restarted", |run| run.events.iter().filter(|e| matches!(e.ev, Ev::Started(0))).count() > 1)
//!     .test(); // seeds from MADSIM_TEST_SEED / MADSIM_TEST_NUM; panics with a replay line
//! ```
//!
//! What a run judges besides the user's checkers:
//! - keel's lease rules (S1, S4, S6) on the run's lease events
//!   ([`crate::scenario::lease::lease_exclusive`]), when the service holds a keel lease (one
//!   lease per run); S11, an owner that moves to a new token
//!   releases the old one (judged at the store, `scenario::lease_orphans`); S12, an owner's store
//!   attempts come when its timing says: after a refusal within a poll, after a grant or a
//!   renewal within a renewal period, after a failed renewal within its streak's backoff; S13,
//!   and not before the floor of those waits, no retry storm
//!   ([`crate::keel_rules::lease_attempts_on_time`]);
//! - keel's pool rules on the run's pool events and the store's history
//!   ([`crate::keel_rules::pool_rules`]): P2, no two handlers of one job run at once beyond the
//!   documented 100 ms hand-off (frozen time not counted), no attempt is started by two workers,
//!   no stale cleanup lock is taken over twice; P3, no job is given to a worker whose keep-alive
//!   is stale or marked stopping, and no cleaner takes a worker whose keep-alive is live; P5, no
//!   pending entry is removed by a write not guarded by its attempt; P7, no worker goes on with
//!   a run, unfenced, after its keep-alive expired at the store; P8, a draining worker keeps its
//!   registration and its runs until they return or its drain deadline passes; P9, a cleanup
//!   moves only jobs of the worker it cleans;
//! - keel's completer rules V3 and V4: a stop that begins with the store healthy loses nothing
//!   (no unflushed or undelivered completion reported); a stop that reports its bound reached
//!   took that long; V10: a run's drain begins at once at its stop request (or once the store
//!   write it had in flight ended); and V9: a service group's stop returns only once every
//!   service of the group stopped (no run of one of its keel lifecycles still going);
//! - keel's map rules R2, R3 and R6 on the run's replica events: a replica's revision never goes
//!   back within a node's life (except by a resync after data loss); `set_and_wait` returns only
//!   once the replica has applied its write; a revision jump on the feed only where a store
//!   restart re-seeded the map's revisions (else changes were missed);
//! - P1 when asked ([`Run::keel_jobs_completed`]): every job keel took in completes;
//! - every [`FencedResource`] the run used: an accepted write never carries a fence below one
//!   accepted before it for the same key (`F1`);
//! - keel assertions, panics, spins (a loop of sleeps already due, even one whose panic a task of
//!   yours or keel's caught), and the linearizability of every store history (as for keel's own
//!   scenarios).
//!
//! See `docs/testing-your-service.md` for the walk from zero to a replayed failing seed.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keel::mutants::Mutant;
use keel::shutdown::Shutdown;

use crate::check::{Coverage, Violation};
use crate::clock::SimClock;
use crate::history::Event;
use crate::net::SimStore;
use crate::plan::{FaultKind, FaultPlan, PlanSpec, Profile};
use crate::runner::{self, RunOutcome};
use crate::scenario::{AppEv, RunView, Scenario};
use crate::world::{NodeCtx, NodeMain};

/// Seeds a [`Sim::test`] runs when `MADSIM_TEST_NUM` is not set.
pub const DEFAULT_SEEDS: u64 = 20;
/// A sweep of at least this many seeds must reach every "sometimes" goal.
pub const GOALS_MIN_SEEDS: u64 = 20;

type UserMain<E> = Arc<dyn Fn(Node<E>) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;
type UserCheck<E> = Arc<dyn Fn(&Run<'_, E>) -> Vec<Violation> + Send + Sync>;
type UserGoal<E> = Arc<dyn Fn(&Run<'_, E>) -> bool + Send + Sync>;
type UserGoals<E> = Arc<dyn Fn(&Run<'_, E>) -> Coverage + Send + Sync>;

/// A simulation of the user's service: its nodes, its faults, its rules.
pub struct Sim<E = ()> {
    name: &'static str,
    nodes: usize,
    kinds: Vec<FaultKind>,
    window: Duration,
    unit: Duration,
    drift_bound: f64,
    op_timeout: Duration,
    settle: Duration,
    main: Option<UserMain<E>>,
    checks: Vec<UserCheck<E>>,
    goals: Vec<(&'static str, UserGoal<E>)>,
    goal_sets: Vec<UserGoals<E>>,
    goal_names: &'static [&'static str],
    /// The fault kinds' own goals ([`Sim::fault_effects`]) are required.
    fault_effects: bool,
    /// Every goal a sweep must reach: `goal_names`, then the faults' effects when required
    /// (kept up to date by the builder, whatever order its calls come in).
    all_goals: &'static [&'static str],
    mutants: &'static [Mutant],
    keel_rules: bool,
    features: String,
    /// A scenario of keel-sim's own: replayed by `cargo sim replay`, not by a user's test.
    built_in: bool,
    seeds: u64,
}

/// One event the user's service recorded, stamped with when and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped<E> {
    /// Simulated µs since the run started.
    pub t_us: u64,
    /// The node's index.
    pub node: usize,
    /// The event.
    pub ev: E,
}

/// A finished run, as the user's checkers see it.
pub struct Run<'a, E> {
    /// Everything keel recorded (typed keel events, the world's faults, the store's view) and
    /// the per-node timeline.
    pub view: &'a RunView<'a>,
    /// The user's own events, in order.
    pub events: &'a [Stamped<E>],
}

impl<E: Debug> Run<'_, E> {
    /// When the faults stopped (µs).
    pub fn heal_us(&self) -> u64 {
        self.view.heal_us
    }

    /// When the run ended (µs).
    pub fn end_us(&self) -> u64 {
        self.view.end_us
    }

    /// Every job keel's pool completed in this run (keel's `completed` events, and the
    /// completions the store applied whose worker never learnt it: every reply lost), with when
    /// it first completed (µs): for "no job lost" rules over the jobs a service dispatched.
    pub fn keel_completed_jobs(&self) -> BTreeMap<String, u64> {
        let mut done = BTreeMap::new();
        for e in self.view.events {
            let job = match (e.pool(), e.server()) {
                (Some(keel::observe::PoolEvent::Completed { job, .. }), _) => job.to_string(),
                (_, Some(crate::history::ServerEv::CompletionLanded { job, .. })) => job.clone(),
                _ => continue,
            };
            done.entry(job).or_insert(e.t_us);
        }
        done
    }

    /// keel's P1 for the service's pool: every job keel took in is completed within `within`
    /// after the later of its dispatch and the heal (jobs whose deadline is past the run's end,
    /// and runs with store data loss, are not judged). Add it with `.check(|run|
    /// run.keel_jobs_completed(…))` when every job of the service must finish.
    pub fn keel_jobs_completed(&self, within: Duration) -> Vec<Violation> {
        crate::keel_rules::pool_jobs_lost(self.view, within)
    }

    /// The run's shared value of type `T` (see [`Node::shared`]), if a node made one.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        shared_get::<T>()
    }

    /// Liveness: for every event matching `start`, an event matching `end(start)` is recorded
    /// by the deadline (`within` after the later of the event and the heal); otherwise a
    /// violation of `invariant` at the deadline. An end recorded before its start counts: a
    /// service may learn late that its own request went through (a lost reply, then
    /// `Duplicate`). Events that start too late to be judged are skipped.
    pub fn eventually(
        &self,
        invariant: &'static str,
        within: Duration,
        start: impl Fn(&E) -> bool,
        end: impl Fn(&E, &E) -> bool,
    ) -> Vec<Violation> {
        let within_us = u64::try_from(within.as_micros()).unwrap_or(u64::MAX);
        let mut v = Vec::new();
        for s in self.events.iter().filter(|s| start(&s.ev)) {
            let deadline = s.t_us.max(self.heal_us()).saturating_add(within_us);
            if deadline > self.end_us() {
                continue;
            }
            let met = self.events.iter().any(|e| e.t_us <= deadline && end(&s.ev, &e.ev));
            if !met {
                v.push(Violation::new(
                    invariant,
                    deadline,
                    format!(
                        "{:?} (n{} at {:.3}s) had no follow-up within {within:?} of the heal",
                        s.ev,
                        s.node,
                        s.t_us as f64 / 1e6
                    ),
                ));
            }
        }
        v
    }
}

/// What one node of the user's service is given: who it is, its clock, the store, its stop.
pub struct Node<E> {
    ctx: NodeCtx,
    nodes: usize,
    _events: PhantomData<fn(E)>,
}

impl<E> Clone for Node<E> {
    fn clone(&self) -> Self {
        Node { ctx: self.ctx.clone(), nodes: self.nodes, _events: PhantomData }
    }
}

/// madsim's message endpoint, for traffic between your nodes: bind it on
/// [`Node::ip`] (or `0.0.0.0`) and send to [`Node::peer_ip`]. Partitions between nodes
/// ([`FaultKind::NodePartition`]) drop its messages.
pub use madsim::net::Endpoint;

impl<E: Debug + Clone + 'static> Node<E> {
    /// `n0`, `n1`, …: use it as the node's identity (lease owner, pool node).
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// The node's index.
    pub fn index(&self) -> usize {
        self.ctx.index
    }

    /// How many application nodes the run has.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// This node's address on the simulated network.
    pub fn ip(&self) -> std::net::IpAddr {
        Self::peer_ip(self.ctx.index)
    }

    /// Node `index`'s address on the simulated network (every node keeps its address across
    /// restarts).
    pub fn peer_ip(index: usize) -> std::net::IpAddr {
        crate::world::node_ip(index)
    }

    /// The node's own clock (skewed, drifting and jumping as the faults say): pass it to keel
    /// (`with_clock`) and use it for every sleep and deadline of the service.
    pub fn clock(&self) -> SimClock {
        self.ctx.clock.clone()
    }

    /// A client of the simulated store (a fresh connection each call).
    pub async fn store(&self) -> SimStore {
        self.ctx.store().await
    }

    /// Cancelled when the node is stopped gracefully: pass it to keel (`with_parent`).
    pub fn shutdown(&self) -> &Shutdown {
        &self.ctx.shutdown
    }

    /// keel-sim's own node context (history, lower-level helpers).
    pub fn ctx(&self) -> &NodeCtx {
        &self.ctx
    }

    /// Simulated µs since the run started.
    pub fn now_us(&self) -> u64 {
        self.ctx.history.now_us()
    }

    /// Record an event of the user's type: it reaches the user's checkers typed, and the trace
    /// hash and the timeline as its `Debug` text.
    pub fn record(&self, ev: E) {
        self.ctx.record(crate::history::Ev::App(AppEv::User(format!("{ev:?}"))));
        let stamped = Stamped { t_us: self.now_us(), node: self.ctx.index, ev };
        USER_EVENTS.with(|u| {
            if let Some(list) = u.borrow_mut().as_mut().and_then(|b| b.downcast_mut::<Vec<Stamped<E>>>()) {
                list.push(stamped);
            }
        });
    }

    /// The run's one value of type `T`, shared by every node of this run (made on first use,
    /// dropped when the next run starts): a test double every node writes to, a tally.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        SHARED.with(|s| {
            let mut s = s.borrow_mut();
            let any = s.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()) as Shared).clone();
            match any.downcast::<T>() {
                Ok(t) => t,
                // Keyed by the type's id, so the downcast holds; never crash the user's test.
                Err(_) => Arc::new(T::default()),
            }
        })
    }
}

thread_local! {
    /// The running simulation's user events (madsim runs one simulation per thread).
    static USER_EVENTS: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    /// The running simulation's shared values, by type.
    static SHARED: RefCell<BTreeMap<TypeId, Shared>> = const { RefCell::new(BTreeMap::new()) };
    /// The goals the last judged run reached (the runner asks for coverage after the check).
    static REACHED: RefCell<Coverage> = const { RefCell::new(Coverage::new()) };
}

type Shared = Arc<dyn Any + Send + Sync>;

fn shared_get<T: Send + Sync + 'static>() -> Option<Arc<T>> {
    SHARED.with(|s| s.borrow().get(&TypeId::of::<T>()).cloned()).and_then(|a| a.downcast::<T>().ok())
}

/// A resource guarded by fences, as a service's side effect should be (a database row with a
/// version column, an object store with a generation precondition). A write is accepted only
/// with a fence at least the highest accepted for its key. [`FencedResource::write_unfenced`]
/// is the write a service author gets wrong: accepted whatever its fence.
///
/// Every run that used one is judged: an accepted write with a fence below one accepted earlier
/// for the same key is `F1` (a stale holder's side effect landed after a newer holder's).
#[derive(Default)]
pub struct FencedResource {
    state: Mutex<FencedState>,
}

#[derive(Default)]
struct FencedState {
    max: BTreeMap<String, u64>,
    writes: Vec<FencedWrite>,
}

/// One write a [`FencedResource`] took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FencedWrite {
    /// Simulated µs.
    pub t_us: u64,
    /// Writer's node index.
    pub node: usize,
    /// Key written.
    pub key: String,
    /// The writer's fence (a lease fence, a job attempt).
    pub fence: u64,
    /// Whether the resource took it.
    pub accepted: bool,
}

impl FencedResource {
    fn state(&self) -> MutexGuard<'_, FencedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write `key` under `fence`: accepted only if no higher fence was accepted for it.
    pub fn write<E: Debug + Clone + 'static>(&self, node: &Node<E>, key: &str, fence: u64) -> bool {
        let mut s = self.state();
        let max = s.max.get(key).copied().unwrap_or(0);
        let accepted = fence >= max;
        if accepted {
            s.max.insert(key.to_owned(), fence);
        }
        s.writes.push(FencedWrite { t_us: node.now_us(), node: node.index(), key: key.to_owned(), fence, accepted });
        accepted
    }

    /// Write `key` without comparing the fence (the bug): always accepted.
    pub fn write_unfenced<E: Debug + Clone + 'static>(&self, node: &Node<E>, key: &str, fence: u64) {
        let mut s = self.state();
        let max = s.max.entry(key.to_owned()).or_insert(0);
        *max = (*max).max(fence);
        s.writes.push(FencedWrite {
            t_us: node.now_us(),
            node: node.index(),
            key: key.to_owned(),
            fence,
            accepted: true,
        });
    }

    /// Every write, in order.
    pub fn writes(&self) -> Vec<FencedWrite> {
        self.state().writes.clone()
    }

    /// `F1`: accepted writes whose fence is below one accepted before for the same key.
    pub fn violations(&self) -> Vec<Violation> {
        stale_accepted(&self.state().writes)
    }
}

/// `F1` over a resource's writes, in order: the shared rule (`keel-checks`, also the chaos
/// lane's judge of its real register).
fn stale_accepted(writes: &[FencedWrite]) -> Vec<Violation> {
    keel_checks::resource_fence_order(
        writes.iter().map(|w| (w.t_us, w.key.as_str(), w.fence, format!("n{}", w.node), w.accepted)),
    )
}

impl<E: Debug + Clone + Send + 'static> Sim<E> {
    /// A simulation called `name` (it names the run in reports and replay lines), with keel's
    /// defaults: 3 nodes, every fault kind but data loss, whole or rolled back (partitions and
    /// latency between nodes included; add [`FaultKind::StoreRollback`] with [`Sim::faults`] to
    /// check a service against a Redis with `appendfsync everysec`, and [`FaultKind::AccessDenied`]
    /// to check what it does when the store refuses it for good), a 20 s fault window, a 1 s unit (a
    /// lease TTL or a worker TTL), clocks within a 10 % drift bound, 10 s to settle after the
    /// heal.
    pub fn new(name: &str) -> Self {
        Sim {
            name: Box::leak(name.to_owned().into_boxed_str()),
            nodes: 3,
            kinds: FaultKind::ALL
                .iter()
                .chain(FaultKind::BETWEEN_NODES.iter())
                .copied()
                .filter(|k| !matches!(k, FaultKind::StoreDataLoss | FaultKind::StoreRollback))
                .collect(),
            window: Duration::from_secs(20),
            unit: Duration::from_secs(1),
            drift_bound: 0.1,
            op_timeout: Duration::from_millis(500),
            settle: Duration::from_secs(10),
            main: None,
            checks: Vec::new(),
            goals: Vec::new(),
            goal_sets: Vec::new(),
            goal_names: &[],
            fault_effects: false,
            all_goals: &[],
            mutants: &[],
            keel_rules: true,
            features: "sim".into(),
            built_in: false,
            seeds: DEFAULT_SEEDS,
        }
    }

    /// Application nodes (each runs the node program).
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// The fault kinds the plan may use (default: all but data loss and roll-backs).
    pub fn faults(mut self, kinds: &[FaultKind]) -> Self {
        self.kinds = kinds.to_vec();
        self.refresh_goals();
        self
    }

    /// The fault window before the heal.
    pub fn window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }

    /// The service's typical timeout (a lease or worker TTL): fault durations scale with it.
    pub fn unit(mut self, d: Duration) -> Self {
        self.unit = d;
        self
    }

    /// The drift bound the service's timing is configured for.
    pub fn drift_bound(mut self, rate: f64) -> Self {
        self.drift_bound = rate;
        self
    }

    /// The longest a store call of the service may take (500 ms unless set): set it to the
    /// longest `op_timeout` of the keel parts the service runs (and of its own store calls).
    /// E6 judges every call against it, on the calling node's clock. The simulated client gives
    /// up on a call by itself only after [`CLIENT_TIMEOUT_FACTOR`](crate::net::CLIENT_TIMEOUT_FACTOR)
    /// of them (a generous socket timeout), so a call the service does not bound is seen, not
    /// cut; a caller that drops a call after half of it gives up its connection.
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// How long the run goes on after the heal before it is judged.
    pub fn settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    /// The program every node runs (restarted after a crash or a graceful restart).
    pub fn node<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Node<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.main = Some(Arc::new(move |n| Box::pin(f(n))));
        self
    }

    /// A rule of the service, judged on every run: return the violations (empty when it held).
    pub fn check<F>(mut self, f: F) -> Self
    where
        F: Fn(&Run<'_, E>) -> Vec<Violation> + Send + Sync + 'static,
    {
        self.checks.push(Arc::new(f));
        self
    }

    /// A situation a sweep must reach at least once (a goal): proves the faults reach the code.
    pub fn sometimes<F>(mut self, name: &'static str, f: F) -> Self
    where
        F: Fn(&Run<'_, E>) -> bool + Send + Sync + 'static,
    {
        self.goals.push((name, Arc::new(f)));
        self.add_goal_names(&[name]);
        self
    }

    /// Several goals judged in one pass over the run: `f` returns the ones this run reached
    /// (names outside `names` are ignored by the sweep's goal check).
    pub fn sometimes_all<F>(mut self, names: &'static [&'static str], f: F) -> Self
    where
        F: Fn(&Run<'_, E>) -> Coverage + Send + Sync + 'static,
    {
        self.goal_sets.push(Arc::new(f));
        self.add_goal_names(names);
        self
    }

    /// Require every fault kind the plans draw to show its effect at least once in a sweep
    /// (judged like [`Sim::sometimes`], over [`GOALS_MIN_SEEDS`] seeds or more): a request refused
    /// while the store was loading, a request held by a latency spike, a reply lost
    /// after its request applied, a reply held after its request applied, a request and its
    /// reply slowed unequally, a roll-back that kept some writes and lost others, a cut towards
    /// the store that let none of the node's requests through and a cut of its replies that let
    /// them through. Each is read from what the store or the world did at the fault's instant,
    /// not from the plan: a broken fault (a roll-back that keeps every write) fails the sweep
    /// instead of passing it with nothing tested. Turn it on when the service calls the store
    /// often enough that every drawn fault meets a call; keel's own scenarios do.
    pub fn fault_effects(mut self) -> Self {
        self.fault_effects = true;
        self.refresh_goals();
        self
    }

    /// Recompute every goal a sweep must reach: the service's own, then its faults' effects.
    fn refresh_goals(&mut self) {
        let mut all = self.goal_names.to_vec();
        if self.fault_effects {
            all.extend(crate::effects::goals(&self.kinds));
        }
        self.all_goals = Box::leak(all.into_boxed_slice());
    }

    fn add_goal_names(&mut self, names: &[&'static str]) {
        let all: Vec<&'static str> = self.goal_names.iter().chain(names).copied().collect();
        self.goal_names = Box::leak(all.into_boxed_slice());
        self.refresh_goals();
    }

    /// The mutants (historical bugs re-injected in keel, see `keel::mutants`) this simulation
    /// must catch: `cargo sim mutants` runs them against a built-in scenario; your own test can
    /// run one with [`Sim::run_mutant`].
    pub fn mutants(mut self, mutants: &'static [Mutant]) -> Self {
        self.mutants = mutants;
        self
    }

    /// Seeds [`Sim::test`] runs when `MADSIM_TEST_NUM` is not set (default [`DEFAULT_SEEDS`]).
    pub fn seeds(mut self, n: u64) -> Self {
        self.seeds = n;
        self
    }

    /// The crate features the replay line names (default `sim`): say which of yours were on,
    /// e.g. `if cfg!(feature = "buggy") { "sim,buggy" } else { "sim" }`.
    pub fn replay_features(mut self, features: &str) -> Self {
        self.features = features.to_owned();
        self
    }

    /// Mark a built-in scenario (its replay line is keel-sim's).
    pub(crate) fn built_in(mut self) -> Self {
        self.built_in = true;
        self
    }

    /// Leave out keel's own rules (lease S1/S4, pool P2, completer V3/V4, map R2/R3): when the service holds
    /// more than one lease per run, or judges those parts itself.
    pub fn without_keel_rules(mut self) -> Self {
        self.keel_rules = false;
        self
    }

    /// Run one seed (the plan derived from it) and judge it.
    pub fn run(&self, seed: u64) -> RunOutcome {
        runner::run(self, seed, None, Profile::Swarm, None)
    }

    /// Run one seed with keel's `mutant` switched on (a historical bug re-injected in the core):
    /// a rule of yours that should see it must report a violation.
    pub fn run_mutant(&self, seed: u64, mutant: Mutant) -> RunOutcome {
        runner::run(self, seed, Some(mutant), Profile::Swarm, None)
    }

    /// Run `plan` (a saved or shrunk fault plan) under `seed` and judge it.
    pub fn run_plan(&self, seed: u64, plan: FaultPlan) -> RunOutcome {
        runner::run(self, seed, None, plan.profile, Some(plan))
    }

    /// The test entry point: runs seeds `MADSIM_TEST_SEED ..` (default 1), `MADSIM_TEST_NUM` of
    /// them (default [`Sim::seeds`]), with a progress bar when stderr is a terminal, and panics
    /// on the first failing seed with its violations, whether replaying it gave the same trace
    /// hash (else the first divergence), the paths of its HTML timeline and of its fault plan
    /// (JSON), and a replay line that names this test. The first seed is run twice and must give
    /// the same trace hash (else the test fails, naming the first event that differed). A sweep
    /// of [`GOALS_MIN_SEEDS`] or more must reach every goal.
    ///
    /// Environment: `KEEL_SIM_PLAN=<file>` runs that fault plan (a saved or shrunk one) instead
    /// of the seed's own; `KEEL_SIM_SHRINK=1` shrinks a failing run's plan to the fewest,
    /// shortest faults that still break the same rule and prints its replay line;
    /// `KEEL_SIM_VERBOSE=1` prints the failing run's whole history.
    pub fn test(&self) {
        let first = env_u64("MADSIM_TEST_SEED").unwrap_or(1);
        let num = env_u64("MADSIM_TEST_NUM").unwrap_or(self.seeds).max(1);
        let plan = std::env::var("KEEL_SIM_PLAN").ok().map(|path| self.load_plan(&path));
        let bar = progress_bar(num, self.name);
        let mut reached = Coverage::new();
        for seed in first..first.saturating_add(num) {
            let out = match &plan {
                Some(p) => self.run_plan(seed, p.clone()),
                None => self.run(seed),
            };
            bar.inc(1);
            reached.extend(out.coverage.iter().copied());
            if out.passed() {
                if seed == first {
                    self.assert_deterministic(&out, plan.as_ref());
                }
                continue;
            }
            bar.finish_and_clear();
            self.fail(out, plan.is_some());
        }
        bar.finish_and_clear();
        let goals = self.all_goals;
        let missed: Vec<&str> = goals.iter().copied().filter(|g| !reached.contains(g)).collect();
        println!(
            "{}: seeds {first}..{} passed; goals reached {}/{}",
            self.name,
            first.saturating_add(num),
            goals.len() - missed.len(),
            goals.len()
        );
        if num >= GOALS_MIN_SEEDS && !missed.is_empty() {
            panic!("{}: {num} seeds never reached these goals: {}", self.name, missed.join(", "));
        }
    }

    /// The plan in `path`, checked against this simulation (a bad file fails the test, naming it).
    fn load_plan(&self, path: &str) -> FaultPlan {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("KEEL_SIM_PLAN={path}: {e}"));
        crate::corpus::plan_from_json(&text, &self.plan_spec()).unwrap_or_else(|e| panic!("KEEL_SIM_PLAN={path}: {e}"))
    }

    /// Report the failing run `out` (replayed once, its timeline and plan saved, shrunk when
    /// asked) and panic.
    fn fail(&self, out: RunOutcome, from_file: bool) -> ! {
        let seed = out.seed;
        let again = self.run_plan(seed, out.plan.clone());
        let replayed = if again.trace_hash == out.trace_hash {
            format!("replayed: same trace hash {:016x}", out.trace_hash)
        } else {
            let at = crate::history::first_divergence(&out.events, &again.events)
                .map(|(i, a, b)| format!(" first divergence at event {i}: {a} / {b}"))
                .unwrap_or_default();
            format!(
                "NOT DETERMINISTIC: trace hash {:016x} then {:016x};{at} (a wall clock, OS randomness or a thread reached behaviour)",
                out.trace_hash, again.trace_hash
            )
        };
        let lines: Vec<String> = out.violations.iter().map(|v| format!("  {v}")).collect();
        let saved = save_timeline(&out).map(|p| format!("timeline: {p}\n")).unwrap_or_default();
        let plan_file = save_plan(&out.plan, &format!("{}-seed{seed}", self.name));
        if env_u64("KEEL_SIM_VERBOSE").is_some_and(|v| v > 0) {
            for e in &out.events {
                eprintln!("{}", e.line());
            }
        }
        let mut replay = match (&plan_file, from_file) {
            (Some(f), true) => format!("KEEL_SIM_PLAN={f} {}", replay_line(seed, &self.features)),
            _ => replay_line(seed, &self.features),
        };
        let plan_line = plan_file.as_ref().map(|f| format!("plan: {f}\n")).unwrap_or_default();
        if env_u64("KEEL_SIM_SHRINK").is_some_and(|v| v > 0) {
            replay.push_str(&self.shrunk_replay(&out));
        } else {
            replay.push_str("\n(KEEL_SIM_SHRINK=1 in front of it shrinks the fault plan to the fewest, shortest faults that still fail)");
        }
        panic!(
            "{name}: seed {seed} broke {n} rule(s):\n{lines}\n{replayed}\n{saved}{plan_line}replay: {replay}",
            name = self.name,
            n = out.violations.len(),
            lines = lines.join("\n"),
        );
    }

    /// Shrink `out`'s plan (same rule broken) and say how to replay the result.
    fn shrunk_replay(&self, out: &RunOutcome) -> String {
        let invariant = out.violations.first().map(|v| v.invariant);
        let shrunk = crate::shrink::shrink(
            self,
            out.seed,
            None,
            out.plan.profile,
            Some(out.plan.clone()),
            invariant,
            crate::shrink::Limits::default(),
            &mut |_| {},
        );
        match shrunk {
            Ok(s) => {
                let file = save_plan(&s.plan, &format!("{}-seed{}-shrunk", self.name, out.seed));
                let cut = if s.hit_limit { " (attempt budget spent: may not be minimal)" } else { "" };
                format!(
                    "\nshrunk: {} faults -> {} faults, still {}, after {} runs{cut}\nreplay shrunk: KEEL_SIM_PLAN={} {}",
                    s.original_faults,
                    s.plan.events.len(),
                    s.invariant,
                    s.attempts,
                    file.unwrap_or_else(|| "<could not write the plan>".into()),
                    replay_line(s.seed, &self.features)
                )
            }
            Err(e) => format!("\nshrink: {e}"),
        }
    }
}

/// A progress bar on stderr when it is a terminal (hidden otherwise, and in CI logs).
fn progress_bar(seeds: u64, name: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(seeds);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} seeds {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    bar
}

/// Write `plan` as JSON under the system's temp dir (`keel-sim-<stem>.plan.json`); its path.
fn save_plan(plan: &FaultPlan, stem: &str) -> Option<String> {
    let path = std::env::temp_dir().join(format!("keel-sim-{stem}.plan.json"));
    let text = serde_json::to_string_pretty(plan).ok()?;
    std::fs::write(&path, text).ok()?;
    Some(path.display().to_string())
}

/// Write the failing run's HTML timeline (every node's lives, faults and events, the violations
/// marked) under the system's temp dir; returns its path.
fn save_timeline(out: &RunOutcome) -> Option<String> {
    let path = std::env::temp_dir().join(format!("keel-sim-{}-seed{}.html", out.scenario, out.seed));
    std::fs::write(&path, crate::html::page(out)).ok()?;
    Some(path.display().to_string())
}

impl<E: Debug + Clone + Send + 'static> Sim<E> {
    /// Run `out`'s seed again: a passing sweep proves nothing if its runs cannot be replayed.
    fn assert_deterministic(&self, out: &RunOutcome, plan: Option<&FaultPlan>) {
        let again = match plan {
            Some(p) => self.run_plan(out.seed, p.clone()),
            None => self.run(out.seed),
        };
        if again.trace_hash == out.trace_hash {
            return;
        }
        let at = crate::history::first_divergence(&out.events, &again.events)
            .map(|(i, a, b)| format!("first divergence at event {i}:\n  {a}\n  {b}"))
            .unwrap_or_default();
        panic!(
            "{}: seed {} is not deterministic (trace hash {:016x} then {:016x}); {at}\nsomething outside the simulator reached behaviour: a wall clock, OS randomness, a thread, a default-hasher map iterated, an unbiased select!",
            self.name, out.seed, out.trace_hash, again.trace_hash
        );
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// `MADSIM_TEST_SEED=… MADSIM_TEST_NUM=1 cargo test --features … --test BIN -- --exact TEST`
/// for the test running on this thread.
fn replay_line(seed: u64, features: &str) -> String {
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(b, _)| b.to_owned()));
    let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_owned);
    let bin = bin.map(|b| format!(" --test {b}")).unwrap_or_default();
    let test = test.map(|t| format!(" -- --exact {t}")).unwrap_or_default();
    format!("MADSIM_TEST_SEED={seed} MADSIM_TEST_NUM=1 cargo test --features {features}{bin}{test}")
}

impl<E: Debug + Clone + Send + 'static> Scenario for Sim<E> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            nodes: self.nodes,
            kinds: self.kinds.clone(),
            window_ms: u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX),
            unit_ms: u64::try_from(self.unit.as_millis()).unwrap_or(u64::MAX).max(1),
            drift_bound: self.drift_bound,
        }
    }

    fn replay_line(&self, seed: u64, mutant: Option<Mutant>, profile: Profile) -> String {
        if self.built_in {
            return crate::runner::replay_line(self.name, seed, mutant, profile);
        }
        let env_m = mutant.map(|m| format!("KEEL_SIM_MUTANT={m:?} ")).unwrap_or_default();
        format!("replay: {env_m}{}", replay_line(seed, &self.features))
    }

    fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    fn settle(&self, _plan: &FaultPlan) -> Duration {
        self.settle
    }

    fn node_main(&self) -> NodeMain {
        // A run starts: fresh user events and shared values on this thread.
        USER_EVENTS.with(|u| *u.borrow_mut() = Some(Box::new(Vec::<Stamped<E>>::new())));
        SHARED.with(|s| s.borrow_mut().clear());
        REACHED.with(|r| r.borrow_mut().clear());
        let (main, nodes) = (self.main.clone(), self.nodes);
        Arc::new(move |ctx: NodeCtx| {
            let main = main.clone();
            Box::pin(async move {
                if let Some(main) = main {
                    main(Node { ctx, nodes, _events: PhantomData }).await;
                }
            })
        })
    }

    fn check(&self, view: &RunView<'_>) -> Vec<Violation> {
        let events: Vec<Stamped<E>> = USER_EVENTS.with(|u| {
            u.borrow().as_ref().and_then(|b| b.downcast_ref::<Vec<Stamped<E>>>()).cloned().unwrap_or_default()
        });
        let run = Run { view, events: &events };
        let mut v = Vec::new();
        if self.main.is_none() {
            v.push(Violation::new("sim", 0, "no node program: call Sim::node"));
        }
        // E6 judges the simulated client's calls, the service's own as well as keel's.
        v.extend(crate::keel_rules::calls_end_by_the_op_timeout(view));
        if self.keel_rules {
            v.extend(crate::keel_rules::free_rules(view));
        }
        if let Some(r) = shared_get::<FencedResource>() {
            v.extend(r.violations());
        }
        for c in &self.checks {
            v.extend(c(&run));
        }
        let mut reached: Coverage = self.goals.iter().filter(|(_, g)| g(&run)).map(|(n, _)| *n).collect();
        for set in &self.goal_sets {
            reached.extend(set(&run));
        }
        if self.fault_effects {
            reached.extend(crate::effects::reached(view.events));
        }
        REACHED.with(|r| *r.borrow_mut() = reached);
        v
    }

    fn coverage(&self, _events: &[Event]) -> Coverage {
        REACHED.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        self.all_goals
    }

    fn mutants(&self) -> &'static [Mutant] {
        self.mutants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t_us: u64, node: usize, key: &str, fence: u64, accepted: bool) -> FencedWrite {
        FencedWrite { t_us, node, key: key.into(), fence, accepted }
    }

    #[test]
    fn a_stale_write_is_f1_only_if_accepted_and_only_per_key() {
        let ok = [w(1, 0, "a", 1, true), w(2, 1, "a", 2, true), w(3, 0, "a", 1, false), w(4, 0, "b", 1, true)];
        assert!(stale_accepted(&ok).is_empty());
        let bad = [w(1, 0, "a", 1, true), w(2, 1, "a", 2, true), w(3, 0, "a", 1, true)];
        let v = stale_accepted(&bad);
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].invariant, v[0].t_us), ("F1", 3));
        assert!(v[0].detail.contains("n0 wrote \"a\" with fence 1 after n1 wrote it with fence 2"), "{}", v[0].detail);
    }
}
