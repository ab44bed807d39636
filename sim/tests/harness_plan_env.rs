//! `KEEL_SIM_PLAN=<file>`: the replay line of a failing harness test names a saved plan, and
//! `Sim::test` must run that plan, not each seed's own (hunt 32 A #19: the variable was read
//! and ignored, so a user "replaying" a shrunk plan ran a different run). Its own test binary:
//! the variable is process-wide.

#![cfg(madsim)]

use std::time::Duration;

use keel_sim::harness::{Node, Sim};
use keel_sim::plan::{FaultKind, FaultPlan, Profile};
use keel_sim::scenario::Scenario;

#[derive(Clone, Debug, PartialEq)]
struct Started(usize);

/// A service whose rule fails when a node starts twice: every crash restarts one.
fn starts_once() -> Sim<Started> {
    Sim::<Started>::new("plan-env")
        .nodes(2)
        .faults(&[FaultKind::NodeCrash])
        .window(Duration::from_secs(5))
        .seeds(20)
        .node(|node: Node<Started>| async move { node.record(Started(node.index())) })
        .check(|run| {
            let starts = run.events.iter().filter(|e| matches!(e.ev, Started(_))).count();
            if starts > 2 {
                vec![keel_sim::check::Violation::new("once", run.end_us(), "a node started twice")]
            } else {
                vec![]
            }
        })
}

#[test]
fn the_plan_in_keel_sim_plan_is_the_one_every_seed_runs() {
    let sim = starts_once();
    let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.test()));
    assert!(own.is_err(), "the seeds' own plans crash a node");
    let calm = FaultPlan::generate(1, Profile::Calm, &sim.plan_spec());
    let path = std::env::temp_dir().join(format!("keel-sim-plan-env-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&calm).expect("a plan serialises")).expect("plan written");
    // SAFETY: this binary runs this one test; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var("KEEL_SIM_PLAN", &path) };
    let with_calm = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.test()));
    let _ = std::fs::remove_file(&path);
    assert!(with_calm.is_ok(), "with a calm plan in KEEL_SIM_PLAN no seed crashes a node");
}
