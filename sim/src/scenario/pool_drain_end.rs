//! **P21**: a draining worker finishes once its runs ended, judged where its drain ends.
//!
//! A worker told to stop (`worker_stopping`) drains its runs for up to `drain_ms` of its local
//! time, and finishes (hands its producer to the completer: `producer_stopped`) as soon as its
//! last run has ended and no keep-alive beat is in flight; a beat is at most `beat_bound_ms`
//! (both in `worker_stopping`). So `producer_stopped` comes within `beat_bound_ms` of running
//! time (frozen time not counted, stretched by the slowest in-bound clock) of the later of the
//! stop and the end of the worker's last run (its completion recorded or given up: `completed`,
//! `complete_failed`, `stale_rejected`; or `abandoned`, or a `handler_returned` not completed),
//! plus 2 ms, unless a run of it was still going (started, not ended) when it finished: then its
//! bound ran out, which excuses it. A drain that waits for its bound with nothing
//! left to drain (blind-spot hunt, round 8, #5) makes every graceful stop of a worker, and of
//! the node and the completer behind it, take the whole `shutdown_deadline`. Judged per worker;
//! a worker fenced or found dead during its drain, or whose node crashed, is not judged.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::{CompleterEvent, PoolEvent};
use keel_checks::{plain, reach};

use super::RunView;
use crate::check::Violation;
use crate::history::{Event, Who, WorldEv};

/// Slack of running time past the bound.
const SLACK_US: u64 = 2_000;

struct Drain {
    node: Who,
    since: u64,
    beat_us: u64,
    last_run: u64,
}

/// P21 over a run's events; `slowest` is the slowest in-bound clock rate of its plan.
pub fn drains_end_with_their_runs(run: &RunView<'_>, slowest: f64) -> Vec<Violation> {
    let mut drains: BTreeMap<&str, Drain> = BTreeMap::new();
    let mut open: BTreeMap<&str, BTreeSet<(&str, u64)>> = BTreeMap::new(); // worker → runs going
    let mut v = Vec::new();
    for e in run.events {
        let t = e.t_us;
        if let Some(p) = e.pool() {
            match p {
                PoolEvent::WorkerStopping { worker, beat_bound_ms, .. } => {
                    let d = Drain { node: e.node, since: t, beat_us: beat_bound_ms.saturating_mul(1000), last_run: t };
                    drains.insert(plain(worker), d);
                }
                PoolEvent::Started { job, worker, attempt } => {
                    open.entry(plain(worker)).or_default().insert((plain(job), *attempt));
                }
                // A run ends with its completion recorded or given up, not at the handler's
                // return: a completion written under latency can outlast the drain.
                PoolEvent::HandlerReturned { job, worker, attempt, completed: false, .. }
                | PoolEvent::Completed { job, worker, attempt }
                | PoolEvent::CompleteFailed { job, worker, attempt, .. }
                | PoolEvent::Abandoned { job, worker, attempt }
                | PoolEvent::StaleRejected { job, worker, attempt, .. } => {
                    if let Some(runs) = open.get_mut(plain(worker)) {
                        runs.remove(&(plain(job), *attempt));
                    }
                    if let Some(d) = drains.get_mut(plain(worker)) {
                        d.last_run = t;
                    }
                }
                PoolEvent::Fenced { worker, .. } | PoolEvent::WorkerDead { worker } => {
                    drains.remove(plain(worker));
                }
                _ => {}
            }
        } else if let Some(CompleterEvent::ProducerStopped { producer, .. }) = e.completer() {
            let Some(d) = drains.remove(plain(producer)) else { continue };
            if open.get(plain(producer)).is_some_and(|r| !r.is_empty()) {
                continue; // a run still going: the drain's bound ran out
            }
            let holes: Vec<_> = run.timeline.frozen(d.node).collect();
            let wait = (d.beat_us as f64 / slowest.clamp(0.01, 1.0)) as u64;
            let due = reach(d.last_run, wait.saturating_add(SLACK_US), &holes);
            if t > due && v.len() < 20 {
                v.push(Violation::new(
                    "P21",
                    t,
                    format!(
                        "{}: worker {producer} finished its drain at {:.3}s, {} µs after it could: it was asked to stop at {:.3}s and its last run ended at {:.3}s (a beat in flight takes at most {} µs)",
                        d.node,
                        t as f64 / 1e6,
                        t - due,
                        d.since as f64 / 1e6,
                        d.last_run as f64 / 1e6,
                        d.beat_us
                    ),
                ));
            }
        } else if matches!(e.world(), Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {})) {
            drains.retain(|_, d| d.node != e.node);
        }
    }
    v
}

/// **P61**: a pool node's completer outlasts its workers' drains, judged at the completer's stop
/// request. A stopping node drains its workers (each for up to `drain_ms`, then a keep-alive
/// beat in flight, `beat_bound_ms`, both in `worker_stopping`) and then stops its completer, whose
/// bound (`stop_requested.bound_ms`) must leave room for the completions those drains write: more
/// than `drain_ms` + `beat_bound_ms` of any worker of the node. A completer bound equal to the
/// workers' drain (blind-spot hunt, round 27, A #3) gives up on the completion events of jobs that
/// finished late in a graceful stop; P50 and P19 excuse refusals once the completer stopped at
/// its bound, which keel itself set. The node's crash or start forgets its workers.
pub fn pool_completers_outlast_their_drains(events: &[Event]) -> Vec<Violation> {
    let mut drains: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            drains.remove(&e.node);
            continue;
        }
        if let Some(PoolEvent::WorkerStopping { drain_ms, beat_bound_ms, .. }) = e.pool() {
            let d = drains.entry(e.node).or_default();
            *d = (*d).max(drain_ms + beat_bound_ms);
            continue;
        }
        let Some(CompleterEvent::StopRequested { completer, run, bound_ms }) = e.completer() else { continue };
        if !completer.as_str().starts_with("keel:pool:") {
            continue;
        }
        if let Some(&need) = drains.get(&e.node)
            && *bound_ms <= need
            && v.len() < 20
        {
            v.push(Violation::new(
                "P61",
                e.t_us,
                format!(
                    "{}: the pool's completer {completer} run {run} was stopped with a bound of {bound_ms} ms, no more than its workers' drain and beat ({need} ms): completions written at a drain's end are given up",
                    e.node
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::test_history::{at, handler_returned, judge, pool, worker_draining};

    fn p21(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 10_000_000, |run| drains_end_with_their_runs(run, 1.0))
    }

    /// `worker_draining`, its run's handler returning at 1 090 ms and its completion recorded
    /// at 1 100 ms.
    fn draining() -> Vec<Event> {
        let mut h = worker_draining();
        h.push(handler_returned(1_090, true, false));
        h.push(pool(1_100, PoolEvent::Completed { job: "j".into(), worker: "w".into(), attempt: 1 }));
        h
    }

    fn finished(t_ms: u64) -> Event {
        let e = CompleterEvent::ProducerStopped { completer: "c".into(), run: 1, producer: "w".into() };
        at(t_ms, Who::Node(0), Ev::Core(CoreEvent::Completer(e.to_static())))
    }

    /// Finished within a beat of the completion: on time. At the drain's bound, 650 ms after the
    /// last run ended (MC70): late. With a run still going then: its bound ran out, excused.
    #[test]
    fn a_drain_held_past_its_last_run_fires_p21() {
        let mut h = draining();
        h.push(finished(1_500));
        assert!(p21(&h).is_empty(), "{:?}", p21(&h));
        let mut h = draining();
        h.push(finished(1_750));
        let v = p21(&h);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P21", 1_750_000)], "{v:?}");
        let mut h = draining();
        h.truncate(3); // j#1 never ends
        h.push(finished(1_750));
        assert!(p21(&h).is_empty(), "{:?}", p21(&h));
    }
}
