//! Scenarios: a workload on the real core, the faults it takes, and what must hold.

use std::time::Duration;

use keel::mutants::Mutant;

use crate::check::{Coverage, Violation};
use crate::history::Event;
use crate::plan::{FaultPlan, PlanSpec};
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
    /// Check the recorded history. `heal_us` is when the nemesis healed; `end_us` when it ended.
    fn check(&self, plan: &FaultPlan, events: &[Event], heal_us: u64, end_us: u64) -> Vec<Violation>;
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
