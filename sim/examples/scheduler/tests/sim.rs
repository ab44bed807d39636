//! The scheduler under keel-sim: three nodes, store and node faults, per-node clocks.
//! `cargo test --features sim` passes; `cargo test --features sim,buggy` fails with a replay line.

use std::sync::Arc;
use std::time::Duration;

use keel_sim::check::Violation;
use keel_sim::harness::{FencedResource, Node, Sim};
use scheduler::{Ledger, SchedEv};

/// The ledger of the test: keel-sim's fenced test double, written as `node`.
struct Ledger4Test(Node<SchedEv>, Arc<FencedResource>);

impl Ledger for Ledger4Test {
    fn write(&self, key: &str, fence: u64) -> bool {
        self.1.write(&self.0, key, fence)
    }
    fn write_unfenced(&self, key: &str, fence: u64) {
        self.1.write_unfenced(&self.0, key, fence)
    }
}

async fn node(node: Node<SchedEv>) {
    let ledger = Arc::new(Ledger4Test(node.clone(), node.shared::<FencedResource>()));
    let (store, clock) = (node.store().await, Arc::new(node.clock()));
    let reporter = node.clone();
    let report = move |e: SchedEv| reporter.record(e);
    scheduler::run_node(node.name(), store, clock, node.shutdown(), ledger, report).await;
}

#[test]
fn scheduler_under_faults() {
    Sim::<SchedEv>::new("scheduler")
        .nodes(3)
        .seeds(50)
        .unit(scheduler::TTL)
        .window(Duration::from_secs(20))
        .settle(Duration::from_secs(15))
        .replay_features(if cfg!(feature = "buggy") { "sim,buggy" } else { "sim" })
        // every fault the plans draw must show its effect once in the sweep (a reply lost after
        // its write applied, each cut's direction, ...): proof the faults met the scheduler's calls
        .fault_effects()
        .node(node)
        // keel's lease rules and the ledger's fence rule (F1) are judged for free; ours: every
        // job dispatched 5 s before the end completed (a worker cut off may not learn that its
        // completion landed, and a restarted node's feed starts afresh: either record counts).
        .check(|run| {
            let mut done = run.keel_completed_jobs();
            for e in run.events {
                if let SchedEv::Observed { job, .. } = &e.ev {
                    done.entry(job.clone()).or_insert(e.t_us);
                }
            }
            let lost = run.events.iter().filter(|e| e.t_us + 5_000_000 < run.end_us()).filter_map(|e| match &e.ev {
                SchedEv::Dispatched { job, .. } if !done.contains_key(job) => Some((e.t_us, job)),
                _ => None,
            });
            lost.map(|(t, job)| Violation::new("job lost", t, format!("{job} was dispatched and never completed")))
                .collect()
        })
        .sometimes("leadership moved", |run| {
            let fences = run.events.iter().filter_map(|e| match &e.ev {
                SchedEv::Dispatched { fence, .. } => Some(*fence),
                _ => None,
            });
            fences.collect::<std::collections::BTreeSet<_>>().len() > 1
        })
        .sometimes("a feed delivered a completion", |run| {
            run.events.iter().any(|e| matches!(e.ev, SchedEv::Observed { .. }))
        })
        .sometimes("a job ran again", |run| {
            run.events.iter().any(|e| matches!(e.ev, SchedEv::Observed { attempt, .. } if attempt > 1))
        })
        .test();
}
