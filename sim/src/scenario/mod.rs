//! Scenarios: a workload on the real core, the faults it takes, and what must hold.

use std::time::Duration;

use keel::mutants::Mutant;

use crate::check::{Coverage, Violation};
use crate::history::{Ev, Event};
use crate::plan::{FaultPlan, PlanSpec};
use crate::timeline::Timeline;
use crate::world::NodeMain;

pub mod completer;
pub mod lease;
pub mod pool;
pub mod rmap;

/// A scenario the checker can run.
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
}

/// Every scenario, by name.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(lease::LeaseScenario::default()),
        Box::new(rmap::RmapScenario::default()),
        Box::new(completer::CompleterScenario::default()),
        Box::new(pool::PoolScenario::default()),
    ]
}

/// The scenario called `name`.
pub fn by_name(name: &str) -> Option<Box<dyn Scenario>> {
    all().into_iter().find(|s| s.name() == name)
}

/// Which narrow-window faults are in force, followed event by event (for coverage goals).
#[derive(Default)]
pub struct NarrowWindows {
    reply_delay_until: u64,
    latency_until: std::collections::BTreeMap<crate::history::Who, (u64, bool)>,
}

impl NarrowWindows {
    /// Take `e` into account (call on every event, in order).
    pub fn see(&mut self, e: &Event) {
        match e.world() {
            Some(crate::history::WorldEv::ReplyDelay { ms, .. }) => self.reply_delay_until = e.t_us + ms * 1000,
            Some(crate::history::WorldEv::NodeLatency { node, ms, to_ms, from_ms }) => {
                self.latency_until.insert(*node, (e.t_us + ms * 1000, to_ms != from_ms));
            }
            _ => {}
        }
    }

    /// Whether replies are held back after apply at `t`.
    pub fn reply_delayed(&self, t: u64) -> bool {
        t < self.reply_delay_until
    }

    /// Whether `node`'s requests and replies are slowed unequally at `t`.
    pub fn asymmetric(&self, node: crate::history::Who, t: u64) -> bool {
        self.latency_until.get(&node).is_some_and(|(until, asym)| *asym && t < *until)
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
