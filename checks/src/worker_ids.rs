//! P36: a worker id names one incarnation, judged at each replacement.
//!
//! A pool fences a dead worker by its id (the dead marker on its keep-alive) and judges every
//! job record, pending entry and completion by the id it names. So an incarnation that replaces
//! a dead one takes an id no incarnation had before (`worker_replaced`: `worker` is new, never
//! `replaces` nor any id seen in the run: round 16 #18, a replacement that kept the dead id and
//! ran the records still naming it, the two incarnations' events indistinguishable). A node's
//! crash or restart forgets nothing: ids are `node.incarnation.n`, new for each node
//! incarnation.
//!
//! (An id a cleanup fenced may register again, by design: a worker still registering when a
//! cleanup judged its keep-alive stale retries until the cleanup has deleted the dead marker,
//! then registers under its own id, its old jobs moved off it and its stale attempts refused:
//! docs/pool.md, "Dead-worker cleanup", step 2. It is the same incarnation, not a reuse.)

use std::collections::BTreeSet;

use keel::observe::PoolEvent;

use crate::{Entry, Violation, plain};

/// P36 over keel's pool events: see the module's doc. The first 20 violations.
pub fn worker_ids_name_one_incarnation<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        let Some(keel::observe::Event::Pool(p)) = e.keel() else { continue };
        let node = e.node();
        match p {
            PoolEvent::WorkerReplaced { worker, replaces, .. } => {
                let (worker, replaces) = (plain(worker), plain(replaces));
                if worker == replaces || seen.contains(worker) {
                    v.push(Violation::new(
                        "P36",
                        e.t_us(),
                        format!("{node}: worker {replaces} replaced by {worker}, an id an incarnation had before"),
                    ));
                }
                seen.insert(worker);
                seen.insert(replaces);
            }
            PoolEvent::WorkerRegistered { worker, .. } | PoolEvent::CleanupFenced { worker, .. } => {
                seen.insert(plain(worker));
            }
            _ => {}
        }
        if v.len() >= 20 {
            break;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn registered(t_ms: u64, w: &str) -> Ev {
        at(
            t_ms,
            PoolEvent::WorkerRegistered {
                worker: w.into(),
                keepalive_interval_us: 1,
                shutdown_deadline_us: 1,
                took_us: 1,
            },
        )
    }

    fn replaced(t_ms: u64, w: &str, old: &str) -> Ev {
        at(t_ms, PoolEvent::WorkerReplaced { worker: w.into(), replaces: old.into(), after_ms: 0 })
    }

    fn fenced(t_ms: u64, w: &str) -> Ev {
        at(t_ms, PoolEvent::CleanupFenced { worker: w.into(), keepalive: None, now_ms: 1 })
    }

    /// Fresh ids pass, and a fenced id that registers again (the same incarnation); a
    /// replacement that keeps the dead id (MC129), or takes an id seen before, is P36 at the
    /// instant.
    #[test]
    fn a_reused_worker_id_fires_p36() {
        let ok = [registered(1, "n.1.1"), fenced(5, "n.1.1"), replaced(6, "n.1.2", "n.1.1"), registered(7, "n.1.2")];
        assert!(worker_ids_name_one_incarnation(&ok).is_empty());
        let v = worker_ids_name_one_incarnation(&[registered(1, "n.1.1"), replaced(6, "n.1.1", "n.1.1")]);
        assert_eq!(crate::test_entry::at_ms(&v), [("P36", 6)]);
        let v = worker_ids_name_one_incarnation(&[registered(1, "n.1.1"), replaced(6, "n.1.1", "n.1.2")]);
        assert_eq!(crate::test_entry::at_ms(&v), [("P36", 6)]);
        assert!(worker_ids_name_one_incarnation(&[fenced(5, "n.1.1"), registered(7, "n.1.1")]).is_empty());
    }
}
