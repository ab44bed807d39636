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

/// P100 over keel's pool events: a worker incarnation's end leaves its node holding neither
/// the worker's delivery channel nor any route of it, and every other worker's routes as they
/// were, judged at the node's `worker_forgotten` (emitted right after it dropped the worker).
///
/// A node keeps, for each of its local workers, the channel that delivers its job records and
/// the jobs whose record changes it routes to it (`run_routed`, `run_unrouted`). When a
/// worker's task ends the node drops both: a channel kept makes the node's sweeps take the
/// gone worker's stale keep-alive for one of their own slow workers, which fence themselves,
/// and never clean it up (hunt 47 A's survivor 532, `unregister_local` a no-op, MC447: other
/// nodes' sweeps cleaned it, a one-node pool never would), and the node's memory grows with
/// every incarnation; every route dropped with it (533, 534: the route table cleared, MC448)
/// leaves a job another worker still runs deaf to its moves. The node reports what it holds
/// after (`kept`, `routes`); the routes it holds are those it announced (`run_routed` less
/// `run_unrouted`), less every route of a worker it forgot (a run whose worker ended without
/// its end, a panicked task, loses its route here silently). A node's crash or restart, or a
/// new pool life on it, ends its routes. The first 20 violations.
pub fn gone_workers_are_forgotten<E: Entry>(events: &[E]) -> Vec<Violation> {
    // node → the (worker, job) routes it announced
    let mut routes: BTreeMap<E::Node, std::collections::BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            routes.remove(node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::NodeStarted { .. } => {
                routes.remove(node);
            }
            PoolEvent::RunRouted { job, worker, .. } => {
                routes.entry(node.clone()).or_default().insert((plain(worker), plain(job)));
            }
            PoolEvent::RunUnrouted { job, worker } => {
                if let Some(r) = routes.get_mut(node) {
                    r.remove(&(plain(worker), plain(job)));
                }
            }
            PoolEvent::WorkerForgotten { worker, kept, routes: held } => {
                let r = routes.entry(node.clone()).or_default();
                r.retain(|(w, _)| *w != plain(worker));
                let why = if *kept {
                    "still holds its delivery channel".to_owned()
                } else if *held != r.len() {
                    format!("holds {held} job routes for its workers, not the {n} it announced and kept", n = r.len())
                } else {
                    continue;
                };
                if v.len() < 20 {
                    v.push(Violation::new(
                        "P100",
                        t,
                        format!("{node}: worker {worker}'s task ended and its node {why}"),
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

    fn forgotten(t_ms: u64, worker: &str, kept: bool, routes: usize) -> Ev {
        at(t_ms, PoolEvent::WorkerForgotten { worker: worker.into(), kept, routes })
    }

    fn routed_to(t_ms: u64, worker: &str, job: &str) -> Ev {
        at(t_ms, PoolEvent::RunRouted { job: job.into(), worker: worker.into(), attempt: 1 })
    }

    fn p100(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&gone_workers_are_forgotten(h))
    }

    #[test]
    fn a_forgotten_worker_leaves_the_others_routes() {
        // w's run ended without its end (a panicked task): its route goes silently; v's stays.
        let h = [routed_to(10, "w", "a"), routed_to(20, "v", "b"), forgotten(30, "w", false, 1)];
        assert!(p100(&h).is_empty());
        let h = [routed_to(10, "v", "b"), unrouted(20), forgotten(30, "v", false, 0)];
        assert!(p100(&h).is_empty());
    }

    #[test]
    fn a_gone_workers_kept_channel_fires_p100() {
        assert_eq!(p100(&[forgotten(30, "w", true, 0)]), [("P100", 30)]);
    }

    #[test]
    fn another_workers_routes_dropped_with_the_gone_one_fire_p100() {
        let h = [routed_to(10, "w", "a"), routed_to(20, "v", "b"), forgotten(30, "w", false, 0)];
        assert_eq!(p100(&h), [("P100", 30)]);
        // The gone worker's routes kept instead.
        let h = [routed_to(10, "w", "a"), forgotten(30, "w", false, 1)];
        assert_eq!(p100(&h), [("P100", 30)]);
    }
}
