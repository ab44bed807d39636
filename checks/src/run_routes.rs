//! P63: a worker's node routes a job's record changes to the worker for as long as the worker
//! tracks a run of the job, judged at the instant the route goes.
//!
//! A worker starting a run of a job routes the job's changes to itself (`run_routed`, with the
//! run's attempt): a change that moves the job on reaches the run, which is then asked to stop
//! (P37). A job delivered again to the same worker (a redelivery after its ack grace, a store
//! roll-back) starts a newer run beside the older one, which was asked to stop and goes on until
//! it ends. The worker tracks the newer run; the route must outlive it. So the node stops
//! routing (`run_unrouted`) only once the newest run it routed of that job on that worker has
//! reported its end (`run_ended` of its attempt, or `handler_aborted`: a run whose handler
//! outlived its stop's grace is aborted and reports no end). An older run's end that took the route away
//! leaves the newer run deaf to its job's moves: it runs on beside the job's next owner until
//! its completion is refused (round 29 part A #4, MC269).
//!
//! A node's crash or restart ends its routes.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// The newest run a node routed of one job to one worker.
struct Newest {
    attempt: u64,
    routed_us: u64,
    ended: bool,
}

/// P63 over keel's pool events: see the module's doc. The first 20 violations.
pub fn routes_outlive_their_newest_run<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, worker, job) → the newest run routed
    let mut routed: BTreeMap<(E::Node, &str, &str), Newest> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            routed.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::RunRouted { job, worker, attempt } => {
                let newest = Newest { attempt: *attempt, routed_us: t, ended: false };
                routed.insert((node.clone(), plain(worker), plain(job)), newest);
            }
            // An aborted run (its handler outlived the stop's grace) never reports its end.
            PoolEvent::RunEnded { job, worker, attempt } | PoolEvent::HandlerAborted { job, worker, attempt, .. } => {
                if let Some(n) = routed.get_mut(&(node.clone(), plain(worker), plain(job)))
                    && n.attempt == *attempt
                {
                    n.ended = true;
                }
            }
            PoolEvent::RunUnrouted { job, worker } => {
                let why = match routed.remove(&(node.clone(), plain(worker), plain(job))) {
                    None => "though it routed none".to_owned(),
                    Some(n) if n.ended => continue,
                    Some(n) => format!(
                        "while its newest run, attempt {a} routed at {r} µs, had not ended",
                        a = n.attempt,
                        r = n.routed_us
                    ),
                };
                if v.len() < 20 {
                    v.push(Violation::new(
                        "P63",
                        t,
                        format!("{node}: stopped routing job {job}'s record changes to worker {worker} {why}"),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, pool_at as at};

    fn routed(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::RunRouted { job: "j".into(), worker: "w".into(), attempt })
    }

    fn ended(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::RunEnded { job: "j".into(), worker: "w".into(), attempt })
    }

    fn unrouted(t_ms: u64) -> Ev {
        at(t_ms, PoolEvent::RunUnrouted { job: "j".into(), worker: "w".into() })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&routes_outlive_their_newest_run(h))
    }

    #[test]
    fn a_route_goes_with_its_run() {
        assert!(judge(&[routed(10, 1), ended(50, 1), unrouted(50)]).is_empty());
    }

    #[test]
    fn a_route_goes_once_the_newest_run_ended() {
        // The older run ends first and keeps the route; the newer one's end takes it.
        assert!(judge(&[routed(10, 1), routed(20, 2), ended(30, 1), ended(60, 2), unrouted(60)]).is_empty());
        // The newer run ends first: the route goes with it, the older one still stopping.
        assert!(judge(&[routed(10, 1), routed(20, 2), ended(30, 2), unrouted(30), ended(40, 1)]).is_empty());
    }

    /// A run aborted at its stop's bound reports no end: its route may go (round 43: a fenced
    /// worker's stop of all its runs now takes their routes).
    #[test]
    fn a_route_goes_with_its_aborted_run() {
        let aborted =
            at(40, PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 2, waited_us: 750 });
        assert!(judge(&[routed(10, 1), routed(20, 2), aborted, unrouted(40)]).is_empty());
        let older =
            at(40, PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 1, waited_us: 750 });
        assert_eq!(judge(&[routed(10, 1), routed(20, 2), older, unrouted(40)]), [("P63", 40)]);
    }

    #[test]
    fn an_older_runs_end_that_takes_the_route_is_caught() {
        assert_eq!(judge(&[routed(10, 1), routed(20, 2), ended(30, 1), unrouted(30)]), [("P63", 30)]);
    }

    #[test]
    fn a_route_taken_that_was_never_given_is_caught() {
        assert_eq!(judge(&[unrouted(30)]), [("P63", 30)]);
        assert_eq!(judge(&[routed(10, 1), ended(20, 1), unrouted(20), unrouted(25)]), [("P63", 25)]);
    }
}
