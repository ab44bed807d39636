//! P43: a worker's runs stop with it, judged at the instant.
//!
//! A worker that fences itself (`fenced`: its keep-alive went unconfirmed, a cleaner may soon move
//! its jobs) or finds itself dead (`worker_dead`) asks every run it started to stop at that
//! instant, and waits for each up to its `shutdown_deadline`, aborting what ignores the request
//! (`handler_aborted`); a worker whose drain ended does the same before it hands back and
//! deregisters. So:
//!
//! - a run going when its worker fenced itself or found itself dead returns asked to stop
//!   (its `handler_returned` says `stopped`), or is aborted: a run that returns unstopped after
//!   that instant was never told, and ran on beside a cleaner that may be requeueing its job;
//! - no run starts on a worker while it is fenced or dead;
//! - by the worker's end (`worker_stopped`, `worker_died`) no run it started is still going;
//! - no abort comes before the stop's bound: `handler_aborted`'s `waited_us` (the worker's local
//!   time since the stop's request) is at least the `shutdown_deadline_us` its
//!   `worker_registered` announced, less 2 ms: a bound cut to the op timeout aborts handlers that
//!   needed their graceful window (round 19 #43). Aborts past the bound are not judged here: a
//!   freeze or a clock jump of the node stretches the wait in its local time; the simulator's
//!   P46 reads the node's frozen spans and clock, and judges them (round 19 #1, MC181).
//!
//! A run's end matched to its worker's task by the job alone forgot the newer run when a replaced
//! older run of the job ended (blind-spot hunt, round 18, B #1): that run completed 0.4–0.5 s
//! after its worker fenced itself, and nothing saw it, since P7 ends a run's belief at the fence
//! and leaves the handler's lag to P2, which sees it only if the job runs again meanwhile. A node's
//! crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// How far before the bound an abort may come (µs of the worker's own clock: the bound and the
/// wait are measured on it, so no rate is converted).
const ABORT_SLACK_US: u64 = 2_000;

/// Why a worker's runs had to stop.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cause {
    Fence,
    Death,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Fence => "fence (fenced)",
            Cause::Death => "death (worker_dead)",
        }
    }
}

/// A run going: its node, and the stop it was due since (when and why).
struct Going<N> {
    node: N,
    stop_due: Option<(u64, Cause)>,
}

/// P43 over keel's pool events: see the module's doc. The first 20 violations.
pub fn runs_stop_with_their_worker<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (worker, job, attempt) → the run
    let mut going: BTreeMap<(&str, &str, u64), Going<E::Node>> = BTreeMap::new();
    // worker → (its node, why it runs nothing)
    let mut closed: BTreeMap<&str, (E::Node, Cause)> = BTreeMap::new();
    // worker → the bound its stops wait for a run (µs)
    let mut bounds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut v = Vec::new();
    let mut flag = |t: u64, what: String| {
        if v.len() < 20 {
            v.push(Violation::new("P43", t, what));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            going.retain(|_, g| g.node != *node);
            closed.retain(|_, (n, _)| n != node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::Started { job, worker, attempt } => {
                let (job, worker) = (plain(job), plain(worker));
                if let Some((_, why)) = closed.get(worker) {
                    flag(
                        t,
                        format!(
                            "{node}: worker {worker} started job {job} (attempt {attempt}) after its {}",
                            why.name()
                        ),
                    );
                }
                going.insert((worker, job, *attempt), Going { node: node.clone(), stop_due: None });
            }
            PoolEvent::HandlerReturned { job, worker, attempt, stopped, .. } => {
                let (job, worker) = (plain(job), plain(worker));
                if let Some(Going { stop_due: Some((since, why)), .. }) = going.remove(&(worker, job, *attempt))
                    && !stopped
                {
                    let after = (t - since) as f64 / 1e6;
                    flag(
                        t,
                        format!(
                            "{node}: job {job} (attempt {attempt}) on worker {worker} returned unstopped {after:.3}s after its worker's {}: the run was never told to stop",
                            why.name()
                        ),
                    );
                }
            }
            PoolEvent::WorkerRegistered { worker, shutdown_deadline_us, .. } => {
                bounds.insert(plain(worker), *shutdown_deadline_us);
            }
            PoolEvent::HandlerAborted { job, worker, attempt, waited_us } => {
                let (job, worker) = (plain(job), plain(worker));
                going.remove(&(worker, job, *attempt));
                if let Some(&bound) = bounds.get(worker)
                    && waited_us.saturating_add(ABORT_SLACK_US) < bound
                {
                    flag(
                        t,
                        format!(
                            "{node}: worker {worker} aborted job {job} (attempt {attempt}) {:.3}s after its stop was asked, before its shutdown deadline of {:.3}s",
                            *waited_us as f64 / 1e6,
                            bound as f64 / 1e6
                        ),
                    );
                }
            }
            PoolEvent::Fenced { worker, .. } | PoolEvent::WorkerDead { worker } => {
                let (worker, why) =
                    (plain(worker), if matches!(p, PoolEvent::Fenced { .. }) { Cause::Fence } else { Cause::Death });
                for (_, g) in going.range_mut((worker, "", 0)..).take_while(|((w, _, _), _)| *w == worker) {
                    g.stop_due.get_or_insert((t, why));
                }
                if closed.get(worker).is_none_or(|(_, c)| *c != Cause::Death) {
                    closed.insert(worker, (node.clone(), why));
                }
            }
            PoolEvent::Unfenced { worker } if closed.get(plain(worker)).is_some_and(|(_, c)| *c == Cause::Fence) => {
                closed.remove(plain(worker));
            }
            PoolEvent::WorkerStopped { worker } | PoolEvent::WorkerDied { worker, .. } => {
                let worker = plain(worker);
                for (job, attempt) in crate::take_worker_runs(&mut going, worker) {
                    flag(
                        t,
                        format!(
                            "{node}: worker {worker} ended ({}) with job {job} (attempt {attempt}) still running",
                            p.kind()
                        ),
                    );
                }
                closed.remove(worker);
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, at_ms, pool_at as at, run_started as started};

    fn returned(t_ms: u64, attempt: u64, stopped: bool) -> Ev {
        let e =
            PoolEvent::HandlerReturned { job: "j".into(), worker: "w".into(), attempt, completed: !stopped, stopped };
        at(t_ms, e)
    }

    fn fenced(t_ms: u64) -> Ev {
        at(t_ms, PoolEvent::Fenced { worker: "w".into(), running: 1 })
    }

    #[test]
    fn a_run_going_at_its_workers_fence_must_return_stopped() {
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), fenced(10), returned(11, 1, true)])), []);
        assert_eq!(
            at_ms(&runs_stop_with_their_worker(&[started(0, 1), fenced(10), returned(400, 1, false)])),
            [("P43", 400)]
        );
        let v = runs_stop_with_their_worker(&[started(0, 1), fenced(10), returned(400, 1, false)]);
        assert!(v[0].detail.contains("returned unstopped 0.390s after its worker's fence (fenced)"), "{}", v[0].detail);
        // Returned before the fence: not judged.
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), returned(5, 1, false), fenced(10)])), []);
        // Aborted at the bound: ended.
        let aborted =
            at(310, PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 1, waited_us: 300_000 });
        let stopped = at(400, PoolEvent::WorkerStopped { worker: "w".into() });
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), fenced(10), aborted, stopped.clone()])), []);
        // Still going at the worker's end.
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), stopped])), [("P43", 400)]);
    }

    /// An abort before the announced bound (MC176) is P43 at the abort; one past it is not judged
    /// (a freeze stretches the wait in local time).
    #[test]
    fn an_abort_comes_at_the_workers_shutdown_deadline() {
        let registered = at(
            0,
            PoolEvent::WorkerRegistered {
                worker: "w".into(),
                keepalive_interval_us: 1,
                shutdown_deadline_us: 300_000,
                took_us: 0,
            },
        );
        let abort = |waited_us| {
            at(400, PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 1, waited_us })
        };
        let h = |a| [registered.clone(), started(1, 1), fenced(100), a];
        assert_eq!(at_ms(&runs_stop_with_their_worker(&h(abort(300_500)))), []);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&h(abort(250_000)))), [("P43", 400)]);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&h(abort(600_000)))), []);
        // The 2 ms of slack, to the µs.
        assert_eq!(at_ms(&runs_stop_with_their_worker(&h(abort(298_000)))), []);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&h(abort(297_999)))), [("P43", 400)]);
    }

    #[test]
    fn no_run_starts_on_a_fenced_or_dead_worker() {
        let unfenced = at(20, PoolEvent::Unfenced { worker: "w".into() });
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[fenced(10), started(15, 1)])), [("P43", 15)]);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[fenced(10), unfenced, started(25, 1)])), []);
        let dead = at(10, PoolEvent::WorkerDead { worker: "w".into() });
        let unfenced = at(20, PoolEvent::Unfenced { worker: "w".into() });
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[dead.clone(), unfenced, started(25, 1)])), [("P43", 25)]);
        // A fenced worker that then finds itself dead stays dead through the fence's lift.
        let (fence, died) = (fenced(5), at(12, PoolEvent::WorkerDead { worker: "w".into() }));
        let unfenced = at(20, PoolEvent::Unfenced { worker: "w".into() });
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[fence, died, unfenced, started(25, 1)])), [("P43", 25)]);
        // The violation names the cause.
        let v = runs_stop_with_their_worker(&[fenced(10), started(15, 1)]);
        assert!(v[0].detail.ends_with("after its fence (fenced)"), "{}", v[0].detail);
        let v = runs_stop_with_their_worker(&[dead, started(15, 1)]);
        assert!(v[0].detail.ends_with("after its death (worker_dead)"), "{}", v[0].detail);
    }

    /// A node's crash or restart ends its runs and forgets its fences; another node's does not.
    #[test]
    fn a_crash_ends_the_runs_and_fences_of_its_node_only() {
        let fact = |node, f| Ev(5_000, node, None, Some(f));
        let stopped = at(20, PoolEvent::WorkerStopped { worker: "w".into() });
        for f in [Fact::NodeCrash, Fact::NodeStart] {
            assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), fact("n1", f), stopped.clone()])), []);
            assert_eq!(at_ms(&runs_stop_with_their_worker(&[fenced(0), fact("n1", f), started(10, 1)])), []);
        }
        let crash = fact("n2", Fact::NodeCrash);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[started(0, 1), crash.clone(), stopped])), [("P43", 20)]);
        assert_eq!(at_ms(&runs_stop_with_their_worker(&[fenced(0), crash, started(10, 1)])), [("P43", 10)]);
    }
}
