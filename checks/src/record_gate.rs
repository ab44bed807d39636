//! P42: a worker is handed no job record while it is draining or fenced, judged at each delivery.
//!
//! A worker told to stop (`worker_stopping`) drains the runs it has and takes no new one; a
//! worker whose keep-alive went unconfirmed (`fenced`, until `unfenced`) may already be judged
//! dead by a cleaner that is moving its jobs. Either way its driver must not hand its machine a
//! record (`record_delivered`): a draining worker that still takes records (blind-spot hunt,
//! round 18, B #15) starts runs its drain then cuts at its bound or hands back, and a fenced one
//! starts runs of jobs a cleaner is requeueing. A worker's end (`worker_stopped`, `worker_dead`)
//! and its node's crash or restart end the judging.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// Why a worker takes no records.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Closed {
    Draining,
    Fenced,
}

/// P42 over keel's pool events: see the module's doc. The first 20 violations.
pub fn workers_closed_to_records<E: Entry>(events: &[E]) -> Vec<Violation> {
    // worker → (its node, why it takes no records)
    let mut closed: BTreeMap<&str, (E::Node, Closed)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            closed.retain(|_, (n, _)| n != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::WorkerStopping { worker, .. }) => {
                closed.insert(plain(worker), (node.clone(), Closed::Draining));
            }
            Some(PoolEvent::Fenced { worker, .. }) => {
                // A draining worker fenced stays closed either way.
                closed.entry(plain(worker)).or_insert((node.clone(), Closed::Fenced));
            }
            Some(PoolEvent::Unfenced { worker })
                if closed.get(plain(worker)).is_some_and(|(_, c)| *c == Closed::Fenced) =>
            {
                closed.remove(plain(worker));
            }
            Some(PoolEvent::WorkerStopped { worker } | PoolEvent::WorkerDead { worker }) => {
                closed.remove(plain(worker));
            }
            Some(PoolEvent::RecordDelivered { job, worker, attempt, .. }) => {
                if let Some((_, why)) = closed.get(plain(worker))
                    && v.len() < 20
                {
                    let why = if *why == Closed::Draining { "draining (worker_stopping)" } else { "fenced" };
                    v.push(Violation::new(
                        "P42",
                        t,
                        format!(
                            "{node}: worker {} was handed the record of job {} (attempt {attempt}) while {why}",
                            plain(worker),
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
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn delivered(t_ms: u64) -> Ev {
        at(t_ms, PoolEvent::RecordDelivered { job: "j".into(), worker: "w".into(), attempt: 1, owner: "w".into() })
    }

    #[test]
    fn no_record_reaches_a_draining_or_fenced_worker() {
        let stopping =
            at(10, PoolEvent::WorkerStopping { worker: "w".into(), running: 1, drain_ms: 500, beat_bound_ms: 50 });
        assert_eq!(at_ms(&workers_closed_to_records(&[delivered(5), stopping.clone()])), []);
        assert_eq!(at_ms(&workers_closed_to_records(&[stopping, delivered(20)])), [("P42", 20)]);
        let fenced = at(10, PoolEvent::Fenced { worker: "w".into(), running: 0 });
        let unfenced = at(30, PoolEvent::Unfenced { worker: "w".into() });
        assert_eq!(at_ms(&workers_closed_to_records(&[fenced.clone(), delivered(20)])), [("P42", 20)]);
        assert_eq!(at_ms(&workers_closed_to_records(&[fenced, unfenced, delivered(40)])), []);
    }

    /// A draining worker stays closed through a fence and its lift, and the violation says
    /// why; its end, or its node's crash or restart, ends the judging (another node's does not).
    #[test]
    fn a_draining_worker_stays_closed_until_it_ends() {
        let stopping =
            at(10, PoolEvent::WorkerStopping { worker: "w".into(), running: 1, drain_ms: 500, beat_bound_ms: 50 });
        let fenced = at(12, PoolEvent::Fenced { worker: "w".into(), running: 0 });
        let unfenced = at(14, PoolEvent::Unfenced { worker: "w".into() });
        let v = workers_closed_to_records(&[stopping.clone(), fenced.clone(), unfenced, delivered(20)]);
        assert_eq!(at_ms(&v), [("P42", 20)]);
        assert!(v[0].detail.contains("while draining"), "{}", v[0].detail);
        let v = workers_closed_to_records(&[fenced.clone(), delivered(20)]);
        assert!(v[0].detail.ends_with("while fenced"), "{}", v[0].detail);
        for end in [PoolEvent::WorkerStopped { worker: "w".into() }, PoolEvent::WorkerDead { worker: "w".into() }] {
            assert_eq!(at_ms(&workers_closed_to_records(&[stopping.clone(), at(15, end), delivered(20)])), []);
        }
        let fact = |node, f| Ev(15_000, node, None, Some(f));
        for f in [Fact::NodeCrash, Fact::NodeStart] {
            assert_eq!(at_ms(&workers_closed_to_records(&[fenced.clone(), fact("n1", f), delivered(20)])), []);
        }
        assert_eq!(
            at_ms(&workers_closed_to_records(&[fenced, fact("n2", Fact::NodeCrash), delivered(20)])),
            [("P42", 20)]
        );
    }
}
