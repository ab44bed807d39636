//! **P54**: a worker hands a job back only once its run of the job has ended, judged at the
//! hand-back.
//!
//! A draining worker whose bound ran out stops its runs first and hands their jobs back after
//! (`moved` with kind `handed_back`): the job then starts elsewhere while nothing of it runs here.
//! A worker that hands back first (blind-spot hunt, round 24, A #28) lets the next owner start
//! the job while the old run still writes; P2 sees that only when the overlap outlasts its
//! 100 ms hand-off. Here the hand-back itself is judged: at each `handed_back` of job j off
//! worker w, no run of j on w is going (`started`, with no `run_ended` or `handler_aborted` yet). A
//! crash or restart of the node ends its runs.

use std::collections::BTreeMap;

use keel::observe::{MoveKind, PoolEvent};
use keel_checks::plain;

use crate::check::Violation;
use crate::history::{Event, Who, WorldEv};

/// P54 over a run's events. The first 20 violations.
pub fn handbacks_follow_their_runs(events: &[Event]) -> Vec<Violation> {
    // (worker, job) → (attempt, node) of the run going
    let mut going: BTreeMap<(&str, &str), (u64, Who)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            going.retain(|_, r| r.1 != e.node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::Started { job, worker, attempt }) => {
                going.insert((plain(worker), plain(job)), (*attempt, e.node));
            }
            // An aborted run ends at its abort (pool seed 195: aborted at the drain's bound
            // while its completion was still retried, it reports no `run_ended`).
            Some(
                PoolEvent::RunEnded { job, worker, attempt } | PoolEvent::HandlerAborted { job, worker, attempt, .. },
            ) => {
                let k = (plain(worker), plain(job));
                if going.get(&k).is_some_and(|r| r.0 == *attempt) {
                    going.remove(&k);
                }
            }
            Some(PoolEvent::Moved { kind: MoveKind::HandedBack, job, from, attempt, .. }) => {
                if let Some(&(run, _)) = going.get(&(plain(from), plain(job)))
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "P54",
                        e.t_us,
                        format!(
                            "{}: {} handed {} back (attempt {attempt} next) while its run of attempt {run} was still going",
                            e.node,
                            plain(from),
                            plain(job)
                        ),
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
    use crate::scenario::test_history::pool;

    fn moved(t_ms: u64) -> Event {
        pool(
            t_ms,
            PoolEvent::Moved {
                kind: MoveKind::HandedBack,
                job: "j".into(),
                from: "w".into(),
                worker: "x".into(),
                attempt: 2,
                now_ms: t_ms,
                cleaned: "".into(),
            },
        )
    }

    #[test]
    fn a_job_handed_back_while_its_run_goes_fires_p54() {
        let started = pool(100, PoolEvent::Started { job: "j".into(), worker: "w".into(), attempt: 1 });
        let ended = pool(1_000, PoolEvent::RunEnded { job: "j".into(), worker: "w".into(), attempt: 1 });
        let v = handbacks_follow_their_runs(&[started.clone(), moved(900), ended.clone()]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P54", 900_000));
        assert!(handbacks_follow_their_runs(&[started, ended, moved(1_001)]).is_empty());
    }
}
