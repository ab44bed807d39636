//! **P46**: a worker's stops end its runs by their bound, judged where the bound passes.
//!
//! P43 judges that a worker's runs stop with it and that no abort comes before its
//! `shutdown_deadline`; this is the other half. A worker that fences itself (`fenced`) or finds
//! itself dead (`worker_dead`) asks every run to stop at that instant and waits for them all
//! against one deadline, `shutdown_deadline` later on its own clock, aborting what is left
//! (`handler_aborted`). A draining worker (`worker_stopping`) does the same once its drain ends,
//! at most `drain_ms` later, after a keep-alive beat in flight (`beat_bound_ms`). So each run
//! going at such an instant ends (`run_ended`, `handler_aborted`) within that bound,
//! converted to global time at the slowest in-bound clock rate of the plan, the node's frozen
//! time not counted, plus 2 ms. A run is its task, from its `acked` to its `run_ended` (P45):
//! a handler that returned may still be writing its completion, and the stop waits for that. A stop that gives each run its own bound from its turn in the
//! wait (blind-spot hunt, round 19, #1: aborts up to 3.7 s past the stop's deadline, MC181)
//! keeps a fenced worker's handlers running beside the cleaner that requeues their jobs. A node
//! whose clock left its bound or jumped back is excused over that span (the scenario's caller
//! skips plans beyond the bound), and its crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;
use keel_checks::{plain, reach};

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{Who, WorldEv};

/// Running time past the bound a run's end may take: the scheduling of the wait and the abort.
const SLACK_US: u64 = 2_000;

/// A run going, and the stop that asked it: when, by when it must end, and why.
struct Going {
    node: Who,
    stop: Option<(u64, u64, &'static str)>,
}

/// P46 over a run's events; `slowest` is the slowest in-bound clock rate of its plan and
/// `excused` the spans in which a node's clock was out of its bound.
pub fn stops_end_runs_by_their_bound(
    run: &RunView<'_>,
    slowest: f64,
    excused: &BTreeMap<Who, Vec<Span>>,
) -> Vec<Violation> {
    let mut going: BTreeMap<(&str, &str, u64), Going> = BTreeMap::new();
    // worker → its shutdown deadline (µs)
    let mut bounds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut v = Vec::new();
    let stretch = |us: u64| (us as f64 / slowest.clamp(0.01, 1.0)) as u64;
    for e in run.events {
        let t = e.t_us;
        // Judged where the bound passes: at the first event past it.
        let late: Vec<_> =
            going.iter().filter_map(|(k, g)| g.stop.filter(|(_, due, _)| t > *due).map(|s| (*k, g.node, s))).collect();
        for ((worker, job, attempt), node, (asked, due, why)) in late {
            going.remove(&(worker, job, attempt));
            let out = excused.get(&node).is_some_and(|s| s.iter().any(|s| s.start <= due && asked <= s.end));
            if !out && v.len() < 20 {
                v.push(Violation::new(
                    "P46",
                    due,
                    format!(
                        "{node}: job {job} (attempt {attempt}) on worker {worker} still running past the bound of its worker's stop ({why} at {:.3}s)",
                        asked as f64 / 1e6
                    ),
                ));
            }
        }
        if matches!(e.world(), Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {})) {
            going.retain(|_, g| g.node != e.node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        let (worker, wait_us, why) = match p {
            PoolEvent::WorkerRegistered { worker, shutdown_deadline_us, .. } => {
                bounds.insert(plain(worker), *shutdown_deadline_us);
                continue;
            }
            PoolEvent::Acked { job, worker, attempt } => {
                going.insert((plain(worker), plain(job), *attempt), Going { node: e.node, stop: None });
                continue;
            }
            PoolEvent::RunEnded { job, worker, attempt } | PoolEvent::HandlerAborted { job, worker, attempt, .. } => {
                going.remove(&(plain(worker), plain(job), *attempt));
                continue;
            }
            PoolEvent::Fenced { worker, .. } => (plain(worker), 0, "fence"),
            PoolEvent::WorkerDead { worker } => (plain(worker), 0, "death"),
            PoolEvent::WorkerStopping { worker, drain_ms, beat_bound_ms, .. } => {
                (plain(worker), (drain_ms + beat_bound_ms) * 1000, "drain")
            }
            _ => continue,
        };
        let Some(&bound) = bounds.get(worker) else { continue };
        let frozen: Vec<Span> = run.timeline.frozen(e.node).collect();
        let due = reach(t, stretch(bound + wait_us).saturating_add(SLACK_US), &frozen);
        for (_, g) in going.range_mut((worker, "", 0)..).take_while(|((w, _, _), _)| *w == worker) {
            g.stop.get_or_insert((t, due, why));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::scenario::test_history::{at, judge, pool};

    fn p46(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 10_000_000, |run| stops_end_runs_by_their_bound(run, 1.0, &BTreeMap::new()))
    }

    /// Worker w (shutdown deadline 300 ms) runs j#1 from its ack at 100 ms; it fences itself at
    /// 1 000 ms.
    fn fenced_with_a_run() -> Vec<Event> {
        let registered = PoolEvent::WorkerRegistered {
            worker: "w".into(),
            keepalive_interval_us: 1,
            shutdown_deadline_us: 300_000,
            took_us: 0,
        };
        vec![
            at(0, Who::Node(0), WorldEv::NodeStart {}),
            pool(10, registered),
            pool(100, PoolEvent::Acked { job: "j".into(), worker: "w".into(), attempt: 1 }),
            pool(1_000, PoolEvent::Fenced { worker: "w".into(), running: 1 }),
        ]
    }

    /// Ended (or aborted) within the fence's bound: on time. Aborted 600 ms after the fence, a
    /// bound per run from its turn (MC181): P46 where the bound passed. A run that ended before
    /// the fence is not asked.
    #[test]
    fn a_run_still_going_past_its_workers_stop_bound_fires_p46() {
        let ended = |t_ms| pool(t_ms, PoolEvent::RunEnded { job: "j".into(), worker: "w".into(), attempt: 1 });
        let aborted = |t_ms| {
            pool(
                t_ms,
                PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 1, waited_us: 300_000 },
            )
        };
        let h = |last: Event| {
            let mut h = fenced_with_a_run();
            h.push(last);
            h
        };
        assert_eq!(p46(&h(ended(1_200))), []);
        assert_eq!(p46(&h(aborted(1_301))), []);
        let v = p46(&h(aborted(1_600)));
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P46", 1_302_000)], "{v:?}");
        let mut early = fenced_with_a_run();
        early.insert(3, ended(500));
        early.push(pool(5_000, PoolEvent::WorkerStopped { worker: "w".into() }));
        assert_eq!(p46(&early), []);
    }
}
