//! Scenarios: a workload on the real core, the faults it takes, and what must hold. Each
//! built-in one is written on the public harness ([`Sim`]), as a user's scenario is.

use std::time::Duration;

use keel::mutants::Mutant;

use crate::check::{Coverage, Violation};
use crate::harness::Sim;
use crate::history::{Ev, Event};
use crate::plan::{FaultPlan, PlanSpec};
use crate::timeline::Timeline;
use crate::world::NodeMain;

pub mod completer;
pub mod completer_late;
pub mod drift;
pub mod lease;
pub mod lease_handle;
pub mod lease_late;
pub mod lease_orphans;
pub mod lease_release;
pub mod lease_tokens;
pub mod lease_work;
pub mod lease_yield;
pub mod life_waits;
pub mod pool;
pub mod pool_cleanup;
pub mod pool_config;
pub mod pool_counters;
pub mod pool_deregister;
pub mod pool_dispatch;
pub mod pool_drain;
pub mod pool_drain_end;
pub mod pool_events;
pub mod pool_feed;
pub mod pool_formats;
pub mod pool_handback;
pub mod pool_handles;
pub mod pool_keepalive;
pub mod pool_owners;
pub mod pool_pairs;
pub mod pool_picks;
pub mod pool_queue;
pub mod pool_stamps;
pub mod pool_stop_bound;
pub mod pool_stopping;
pub mod pool_table;
pub mod rmap;
pub mod rmap_join;
pub mod rmap_stop;
pub mod rmap_waits;
#[cfg(test)]
pub(crate) mod test_history;
pub mod worker_fence;

/// What the runner, the sweeps, the shrinker and the CLI need of a simulation. [`Sim`] (the
/// public harness) implements it; every built-in scenario is a [`Sim`], written the way a user
/// writes theirs.
pub trait Scenario: Send + Sync {
    /// Its name on the command line.
    fn name(&self) -> &'static str;
    /// What the plan generator may do.
    fn plan_spec(&self) -> PlanSpec;
    /// Store operation timeout of the simulated client.
    fn op_timeout(&self) -> Duration;
    /// Simulated time after the heal before the final checks.
    fn settle(&self, plan: &FaultPlan) -> Duration;
    /// Each application node's main function.
    fn node_main(&self) -> NodeMain;
    /// Judge the recorded run.
    fn check(&self, run: &RunView<'_>) -> Vec<Violation>;
    /// Situations this run reached.
    fn coverage(&self, events: &[Event]) -> Coverage;
    /// Situations a sweep must reach at least once.
    fn coverage_goals(&self) -> &'static [&'static str];
    /// Mutants this scenario is meant to catch.
    fn mutants(&self) -> &'static [Mutant];
    /// The one-line replay of a run of this scenario (the run watchdog prints it for a hang).
    fn replay_line(&self, seed: u64, mutant: Option<Mutant>, profile: crate::plan::Profile) -> String {
        crate::runner::replay_line(self.name(), seed, mutant, profile)
    }
}

/// Every built-in scenario, each written on the public harness ([`Sim`]) a user's own
/// scenario is written on.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(lease::LeaseScenario::default().sim()),
        Box::new(rmap::RmapScenario::default().sim()),
        Box::new(rmap::RmapScenario::with_anti_entropy().sim()),
        Box::new(rmap::RmapScenario::with_clock_faults().sim()),
        Box::new(completer::CompleterScenario::default().sim()),
        Box::new(completer::CompleterScenario { clock_faults: true, ..completer::CompleterScenario::default() }.sim()),
        Box::new(pool::PoolScenario::default().sim()),
        Box::new(pool::PoolScenario { feed: true, ..pool::PoolScenario::default() }.sim()),
        Box::new(pool::PoolScenario { data_loss: true, ..pool::PoolScenario::default() }.sim()),
    ]
}

/// The scenario called `name`.
/// The store's clock as the history saw it start: store time runs at the rate of global time
/// from the store's first start (`store_up`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoreClock {
    up_us: u64,
    up_ms: u64,
}

impl StoreClock {
    /// From the store's first `store_up`; None when the history has none.
    pub(crate) fn of(events: &[Event]) -> Option<StoreClock> {
        events.iter().find_map(|e| match e.server() {
            Some(crate::history::ServerEv::StoreUp { now_ms }) => Some(StoreClock { up_us: e.t_us, up_ms: *now_ms }),
            _ => None,
        })
    }

    /// The global instant (µs) at which the store's clock read `ms`.
    pub(crate) fn global_us(self, ms: u64) -> u64 {
        (i128::from(self.up_us) + (i128::from(ms) - i128::from(self.up_ms)) * 1000).max(0) as u64
    }
}

pub fn by_name(name: &str) -> Option<Box<dyn Scenario>> {
    all().into_iter().find(|s| s.name() == name)
}

/// A built-in scenario's shape on the harness: its faults, timing and store timeout. keel's
/// lease rules are each scenario's own business (the lease scenario judges them itself).
fn on_harness(name: &str, spec: &PlanSpec, op_timeout: Duration, settle: Duration) -> Sim {
    Sim::new(name)
        .nodes(spec.nodes)
        .faults(&spec.kinds)
        .window(Duration::from_millis(spec.window_ms))
        .unit(Duration::from_millis(spec.unit_ms))
        .drift_bound(spec.drift_bound)
        .op_timeout(op_timeout)
        .settle(settle)
        .without_keel_rules()
        .fault_effects()
        .built_in()
}

/// Replies the store held back after it applied their requests, followed event by event (for
/// coverage goals): judged on what the store did (its `held` events), not on the plan's windows,
/// so a delay that holds the request instead of the reply reaches no goal (blind-spot hunt,
/// round 32, A #8).
#[derive(Default)]
pub struct NarrowWindows {
    /// Per node, until when (µs) a reply the store held for a reply delay may still be arriving.
    delayed: std::collections::BTreeMap<crate::history::Who, u64>,
    /// The same for a request and its reply slowed unequally (asymmetric latency).
    uneven: std::collections::BTreeMap<crate::history::Who, u64>,
}

/// How long after its hold a held reply may take to reach its node (the network's latency,
/// slowed by a network fault at most by this).
const HELD_REPLY_SLACK_US: u64 = 100_000;

impl NarrowWindows {
    /// Take `e` into account (call on every event, in order).
    pub fn see(&mut self, e: &Event) {
        if let Some(crate::history::ServerEv::Held { to, before_ms, after_ms, delay_ms, applied: true }) = e.server() {
            let until = e.t_us + (delay_ms + after_ms) * 1000 + HELD_REPLY_SLACK_US;
            if *delay_ms > 0 {
                self.delayed.insert(*to, until);
            }
            if before_ms != after_ms {
                self.uneven.insert(*to, until);
            }
        }
    }

    /// Whether a reply to `node` held back by a reply delay, after its request applied, is on
    /// its way or just arrived at `t`.
    pub fn reply_delayed(&self, node: crate::history::Who, t: u64) -> bool {
        self.delayed.get(&node).is_some_and(|until| t <= *until)
    }

    /// Whether a request of `node` and its reply, slowed unequally, are on their way or the
    /// reply just arrived at `t`.
    pub fn asymmetric(&self, node: crate::history::Who, t: u64) -> bool {
        self.uneven.get(&node).is_some_and(|until| t <= *until)
    }
}

/// One finished run, as every checker sees it: borrowed, derived once.
pub struct RunView<'a> {
    /// The fault plan that ran.
    pub plan: &'a FaultPlan,
    /// The history, in order.
    pub events: &'a [Event],
    /// Every node's lives (up, crashed, paused, incarnations).
    pub timeline: &'a Timeline,
    /// When the nemesis healed (µs).
    pub heal_us: u64,
    /// When the run ended (µs).
    pub end_us: u64,
}

/// What a scenario's workload records (its own typed events).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppEv {
    /// The lease scenario.
    Lease(lease::Rec),
    /// The replicated map scenario.
    Rmap(rmap::Rec),
    /// The completer scenario.
    Completer(completer::Rec),
    /// The pool scenario.
    Pool(pool::Rec),
    /// A user's scenario (the harness): the user's event, as its `Debug` text. The typed value
    /// goes to the user's checkers; the text goes to the trace hash and the timeline.
    User(String),
}

impl std::fmt::Display for AppEv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppEv::Lease(e) => e.fmt(f),
            AppEv::Rmap(e) => e.fmt(f),
            AppEv::Completer(e) => e.fmt(f),
            AppEv::Pool(e) => e.fmt(f),
            AppEv::User(e) => f.write_str(e),
        }
    }
}

macro_rules! app_ev {
    ($($m:ident => $v:ident),*) => {$(
        impl From<$m::Rec> for Ev {
            fn from(e: $m::Rec) -> Self {
                Ev::App(AppEv::$v(e))
            }
        }
    )*};
}
app_ev!(lease => Lease, rmap => Rmap, completer => Completer, pool => Pool);
