//! P37: a run whose job's record moved on is asked to stop at the delivery, and a run asked to
//! stop before its handler started never starts it.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// A stop a worker owes: its run of `job` (at `attempt`) was superseded by a delivery at `t_us`.
struct Owed<'a> {
    job: &'a str,
    attempt: u64,
    delivered: u64,
    t_us: u64,
}

/// P37: a worker asks its run of a job to stop at the instant it is handed a record of that
/// job which moves the run on: the record is gone, or names a newer attempt (another worker's,
/// or its own again). Judged at the worker's next event, its next delivery, or the history's end:
/// after such a `record_delivered` the worker's `run_stop_asked` of the job (or the run's own
/// `handler_returned`) comes at the same instant, before anything else of that worker. A run
/// counts from its `started` to its `handler_returned` (the machine tracks it until its end is
/// received, which is later); a fence, a stop, a death or the node's crash or restart stops every
/// run of the worker by other means and ends the judging. A superseded run left going is the
/// stale handler of a job another worker now runs: two runs at once for as long as the handler
/// takes, its side effects unfenced until its completion is refused (MC139, the blind-spot hunt's
/// round 16 part B #1). And a run asked to stop (`run_stop_asked` of its attempt) while its ack
/// was in flight never starts its handler (`started` of that attempt), unless the record of that
/// attempt is delivered again (a store roll-back restored it) (MC143, round 17 part B #11). The
/// first 20 violations. The stop that pays names the run's attempt (or a newer run's that
/// replaced it): a `run_stop_asked` at attempt 0 found no run to stop, and the run goes on (hunt
/// 46 A: the sweep's mutation of the driver's run lookup survived, the event alone paid; MC438).
pub fn superseded_runs_are_stopped<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, worker, job) → the attempt its running handler runs
    let mut running: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    // (node, worker) → the stop it owes
    let mut owed: BTreeMap<(E::Node, &str), Owed<'_>> = BTreeMap::new();
    // (node, worker, job) → the attempt whose run it asked to stop
    let mut stopped: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    let unpaid = |v: &mut Vec<Violation>, node: &E::Node, worker: &str, o: &Owed<'_>, at: u64, why: &str| {
        v.push(Violation::new(
            "P37",
            at,
            format!(
                "{node}: worker {worker} was handed job {job}'s record at attempt {delivered} ({gone}) at {t} µs while it ran attempt {attempt}, and {why} without asking that run to stop",
                job = o.job,
                delivered = o.delivered,
                gone = if o.delivered == 0 { "gone" } else { "a newer attempt" },
                t = o.t_us,
                attempt = o.attempt,
            ),
        ));
    };
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            running.retain(|k, _| &k.0 != node);
            owed.retain(|k, _| &k.0 != node);
            stopped.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        let Some(worker) = worker_of(p) else { continue };
        let key = (node.clone(), worker);
        // Whatever else the worker does first, at this instant or later, breaks its debt.
        // A stop pays only if it reached the run (its attempt, or a newer run's that replaced
        // it since): one that found no run of the job (attempt 0) stopped nothing (MC438).
        let pays = match p {
            PoolEvent::RunStopAsked { job, attempt, .. } => {
                owed.get(&key).is_some_and(|o| o.job == plain(job) && o.t_us == e.t_us() && *attempt >= o.attempt)
            }
            PoolEvent::HandlerReturned { job, .. } => {
                owed.get(&key).is_some_and(|o| o.job == plain(job) && o.t_us == e.t_us())
            }
            _ => false,
        };
        if pays {
            owed.remove(&key);
        } else if let Some(o) = owed.remove(&key) {
            let why = match p {
                PoolEvent::RecordDelivered { .. } => "was handed another record",
                _ if e.t_us() > o.t_us => "time went on",
                PoolEvent::RunStopAsked { job, attempt, .. } if plain(job) == o.job => {
                    if *attempt == 0 {
                        "asked a stop that reached no run"
                    } else {
                        "asked an older run to stop"
                    }
                }
                PoolEvent::RunStopAsked { .. } => "asked another run to stop",
                _ => "did something else first",
            };
            unpaid(&mut v, node, worker, &o, e.t_us(), why);
        }
        match p {
            PoolEvent::Started { job, attempt, .. } => {
                let k = (node.clone(), worker, plain(job));
                if stopped.get(&k) == Some(attempt) && v.len() < 20 {
                    v.push(Violation::new(
                        "P37",
                        e.t_us(),
                        format!(
                            "{node}: worker {worker} started job {job} at attempt {attempt}, a run it had asked to stop"
                        ),
                    ));
                }
                running.insert(k, *attempt);
            }
            PoolEvent::RunStopAsked { job, attempt, .. } if *attempt > 0 => {
                stopped.insert((node.clone(), worker, plain(job)), *attempt);
            }
            PoolEvent::HandlerReturned { job, attempt, .. } => {
                let k = (node.clone(), worker, plain(job));
                if running.get(&k) == Some(attempt) {
                    running.remove(&k);
                }
            }
            PoolEvent::RecordDelivered { job, attempt: delivered, .. } => {
                let job = plain(job);
                // The record of a stopped attempt delivered again may start it again.
                let k = (node.clone(), worker, job);
                if stopped.get(&k) == Some(delivered) {
                    stopped.remove(&k);
                }
                if let Some(&attempt) = running.get(&(node.clone(), worker, job))
                    && (*delivered == 0 || *delivered > attempt)
                {
                    owed.insert(key, Owed { job, attempt, delivered: *delivered, t_us: e.t_us() });
                }
            }
            PoolEvent::Fenced { .. }
            | PoolEvent::WorkerStopping { .. }
            | PoolEvent::WorkerDead { .. }
            | PoolEvent::WorkerStopped { .. } => {
                running.retain(|k, _| !(&k.0 == node && k.1 == worker));
                stopped.retain(|k, _| !(&k.0 == node && k.1 == worker));
            }
            _ => {}
        }
    }
    let end = events.last().map_or(0, |e| e.t_us());
    for ((node, worker), o) in &owed {
        unpaid(&mut v, node, worker, o, end, "the history ended");
    }
    v.truncate(20);
    v
}

/// The worker an event is about, for the events this rule reads.
fn worker_of<'a>(p: &'a PoolEvent<'static>) -> Option<&'a str> {
    match p {
        PoolEvent::RecordDelivered { worker, .. }
        | PoolEvent::RunStopAsked { worker, .. }
        | PoolEvent::Started { worker, .. }
        | PoolEvent::HandlerReturned { worker, .. }
        | PoolEvent::Acked { worker, .. }
        | PoolEvent::Fenced { worker, .. }
        | PoolEvent::WorkerStopping { worker, .. }
        | PoolEvent::WorkerDead { worker }
        | PoolEvent::WorkerStopped { worker }
        | PoolEvent::Keepalive { worker, .. }
        | PoolEvent::BeatEnded { worker, .. } => Some(plain(worker)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E as Ev, pool_at as at, run_started as started};

    fn delivered(t_ms: u64, attempt: u64, owner: &'static str) -> Ev {
        at(t_ms, PoolEvent::RecordDelivered { job: "j".into(), worker: "w".into(), attempt, owner: owner.into() })
    }

    fn asked(t_ms: u64) -> Ev {
        at(t_ms, PoolEvent::RunStopAsked { job: "j".into(), worker: "w".into(), attempt: 1 })
    }

    fn returned(t_ms: u64, attempt: u64) -> Ev {
        let (job, worker) = ("j".into(), "w".into());
        at(t_ms, PoolEvent::HandlerReturned { job, worker, attempt, completed: true, stopped: false })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&superseded_runs_are_stopped(h))
    }

    #[test]
    fn a_record_that_moves_a_run_on_is_followed_at_once_by_its_stop() {
        // Moved to another worker at a newer attempt, gone, or ours again at a newer attempt.
        for (attempt, owner) in [(2, "w2"), (0, ""), (2, "w")] {
            assert_eq!(judge(&[started(10, 1), delivered(20, attempt, owner), asked(20)]), [], "{attempt} {owner}");
            // Not asked (MC139): judged at the worker's next event, its next delivery or the end.
            assert_eq!(judge(&[started(10, 1), delivered(20, attempt, owner)]), [("P37", 20)]);
            assert_eq!(judge(&[started(10, 1), delivered(20, attempt, owner), delivered(20, 1, "w")]), [("P37", 20)]);
            assert_eq!(judge(&[started(10, 1), delivered(20, attempt, owner), returned(900, 1)]), [("P37", 900)]);
        }
        // A stop that reached no run (attempt 0, MC438) does not pay.
        let missed = at(20, PoolEvent::RunStopAsked { job: "j".into(), worker: "w".into(), attempt: 0 });
        assert_eq!(judge(&[started(10, 1), delivered(20, 2, "w2"), missed]), [("P37", 20)]);
        // The run's own end at the instant pays too (it had just returned).
        assert_eq!(judge(&[started(10, 1), delivered(20, 2, "w2"), returned(20, 1)]), []);
    }

    /// A run asked to stop while its ack was in flight never starts (MC143), unless the record of
    /// its attempt is delivered again.
    #[test]
    fn a_run_asked_to_stop_before_its_start_never_starts() {
        assert_eq!(judge(&[delivered(10, 0, ""), asked(10), started(12, 1)]), [("P37", 12)]);
        assert_eq!(judge(&[delivered(10, 0, ""), asked(10), delivered(20, 1, "w"), started(22, 1)]), []);
        // The newer attempt that replaced it starts.
        assert_eq!(judge(&[delivered(10, 2, "w"), asked(10), started(12, 2)]), []);
    }

    #[test]
    fn repeats_older_records_and_runs_already_over_owe_nothing() {
        // A repeated delivery of the run's own record, or an older record of another worker.
        assert_eq!(judge(&[started(10, 2), delivered(20, 2, "w"), delivered(30, 1, "w2")]), []);
        // The handler returned: its completion deletes the record, whose delivery owes nothing.
        assert_eq!(judge(&[started(10, 1), returned(15, 1), delivered(20, 0, "")]), []);
        // A replaced run's end does not end the newer run.
        let h =
            [started(10, 1), delivered(20, 2, "w"), asked(20), started(25, 2), returned(26, 1), delivered(30, 0, "")];
        assert_eq!(judge(&h), [("P37", 30)]);
        // A fence stops every run by other means; so does a crash.
        let fenced = at(15, PoolEvent::Fenced { worker: "w".into(), running: 1 });
        assert_eq!(judge(&[started(10, 1), fenced, delivered(20, 2, "w2")]), []);
        let crash = Ev(15_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[started(10, 1), crash, delivered(20, 2, "w2")]), []);
        // Another worker's delivery is not this worker's debt.
        let other =
            at(20, PoolEvent::RecordDelivered { job: "j".into(), worker: "w2".into(), attempt: 2, owner: "w2".into() });
        assert_eq!(judge(&[started(10, 1), other]), []);
    }
}
