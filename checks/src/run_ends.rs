//! P45: a worker's runs report their end, judged at the instant.
//!
//! A run acks its job (`acked`) and then, in the same poll, either starts its handler
//! (`started`) or, asked to stop while its ack was in flight, ends (`run_ended`): there is no
//! wait between the two. Every run reports its end as it ends (`run_ended`, whatever the outcome)
//! and the worker stops tracking it then; a run the worker went on tracking after its task ended
//! would turn its attempt's redeliveries away and hold a drain to its bound. So:
//!
//! - an `acked` run starts its handler or ends within [`ACK_TO_START_US`] (MC180, round 19 #11:
//!   a run stopped right after its ack returned without reporting its end, and no event showed
//!   the worker still tracking it);
//! - by its worker's end (`worker_stopped`, `worker_died`) every acked run of it has ended
//!   (`run_ended`) or was aborted (`handler_aborted`).
//!
//! A node's crash or restart ends its runs.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// How long after its ack a run may start its handler or end (µs): the two are one poll apart,
/// so this is only rounding.
const ACK_TO_START_US: u64 = 1_000;

/// P45 over keel's pool events: see the module's doc. The first 20 violations.
pub fn runs_report_their_end<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (worker, job, attempt) → the acked run's node
    let mut acked: BTreeMap<(&str, &str, u64), E::Node> = BTreeMap::new();
    // (acked at, worker, job, attempt) of acked runs that have neither started nor ended
    let mut unstarted: BTreeSet<(u64, &str, &str, u64)> = BTreeSet::new();
    let mut v = Vec::new();
    let mut flag = |t: u64, what: String| {
        if v.len() < 20 {
            v.push(Violation::new("P45", t, what));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        while let Some(&(since, worker, job, attempt)) = unstarted.first()
            && t > since + ACK_TO_START_US
        {
            unstarted.pop_first();
            let n = acked.get(&(worker, job, attempt)).map_or_else(String::new, |n| format!("{n}: "));
            flag(
                since + ACK_TO_START_US,
                format!(
                    "{n}worker {worker} acked job {job} (attempt {attempt}), and the run neither started its handler nor reported its end"
                ),
            );
        }
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            acked.retain(|_, n| n != node);
            continue;
        }
        let Some(p) = e.pool() else { continue };
        match p {
            PoolEvent::Acked { job, worker, attempt } => {
                let key = (plain(worker), plain(job), *attempt);
                acked.insert(key, node.clone());
                unstarted.insert((t, key.0, key.1, key.2));
            }
            PoolEvent::Started { job, worker, attempt } => {
                unstarted.retain(|(_, w, j, a)| (*w, *j, *a) != (plain(worker), plain(job), *attempt));
            }
            PoolEvent::RunEnded { job, worker, attempt } | PoolEvent::HandlerAborted { job, worker, attempt, .. } => {
                let key = (plain(worker), plain(job), *attempt);
                acked.remove(&key);
                unstarted.retain(|(_, w, j, a)| (*w, *j, *a) != key);
            }
            PoolEvent::WorkerStopped { worker } | PoolEvent::WorkerDied { worker, .. } => {
                let worker = plain(worker);
                for (job, attempt) in crate::take_worker_runs(&mut acked, worker) {
                    flag(
                        t,
                        format!(
                            "{node}: worker {worker} ended ({}) with its run of job {job} (attempt {attempt}) never reported ended",
                            p.kind()
                        ),
                    );
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
    use crate::test_entry::{E as Ev, at_ms, pool_at as at, run_started as started};

    fn acked(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::Acked { job: "j".into(), worker: "w".into(), attempt })
    }

    fn ended(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::RunEnded { job: "j".into(), worker: "w".into(), attempt })
    }

    #[test]
    fn an_acked_run_starts_or_ends_at_once() {
        assert_eq!(at_ms(&runs_report_their_end(&[acked(10, 1), started(10, 1), ended(500, 1)])), []);
        assert_eq!(at_ms(&runs_report_their_end(&[acked(10, 1), ended(10, 1), acked(20, 2), started(20, 2)])), []);
        // MC180: asked to stop during its ack, the run returned without a word.
        assert_eq!(at_ms(&runs_report_their_end(&[acked(10, 1), acked(30, 2), started(30, 2)])), [("P45", 11)]);
    }

    #[test]
    fn every_acked_run_has_ended_by_its_workers_end() {
        let stopped = at(400, PoolEvent::WorkerStopped { worker: "w".into() });
        let aborted =
            at(300, PoolEvent::HandlerAborted { job: "j".into(), worker: "w".into(), attempt: 1, waited_us: 1 });
        assert_eq!(at_ms(&runs_report_their_end(&[acked(10, 1), started(10, 1), aborted, stopped.clone()])), []);
        assert_eq!(at_ms(&runs_report_their_end(&[acked(10, 1), started(10, 1), stopped])), [("P45", 400)]);
    }
}
