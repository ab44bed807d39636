//! P105: a worker that stops gracefully deregisters itself, judged at its `worker_stopped`.
//!
//! A stopping worker drains its runs, hands its jobs back, then deletes its keep-alive and its
//! registration (`worker_deregistered`, with the error of the call that failed, if one did) and
//! only then reports `worker_stopped`. A stop that skips the deletion (hunt 46 A's sweep: the
//! deregistration replaced by a no-op, MC456) leaves the keep-alive, marked stopping, and the
//! registration to a cleaner: a worker TTL and a sweep later another node locks, fences and
//! cleans a worker that stopped cleanly, and every job a hand-back failed to move waits that long
//! too. Nothing else sees it: the cleanup is the path for dead workers and every rule accepts
//! it. So every `worker_stopped` follows a `worker_deregistered` of the same worker. A node's
//! crash or restart ends its workers without either event.

use std::collections::BTreeSet;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// P105 over keel's pool events: see the module's doc. The first 20 violations.
pub fn graceful_stops_deregister<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, worker) that reported a deregistration
    let mut deregistered: BTreeSet<(E::Node, &str)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            deregistered.retain(|(n, _)| n != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::WorkerDeregistered { worker, .. }) => {
                deregistered.insert((node.clone(), plain(worker)));
            }
            Some(PoolEvent::WorkerStopped { worker })
                if !deregistered.remove(&(node.clone(), plain(worker))) && v.len() < 20 =>
            {
                v.push(Violation::new(
                    "P105",
                    e.t_us(),
                    format!(
                        "{node}: worker {} reported it stopped without deleting its keep-alive and registration: a cleaner will take a worker that stopped cleanly for dead",
                        plain(worker)
                    ),
                ));
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entry::{E, at_ms, pool_at as at};

    fn stopped(t: u64) -> E {
        at(t, PoolEvent::WorkerStopped { worker: "w".into() })
    }

    fn deregistered(t: u64, error: Option<&'static str>) -> E {
        at(t, PoolEvent::WorkerDeregistered { worker: "w".into(), error: error.map(Into::into), took_us: 900 })
    }

    #[test]
    fn a_stop_without_its_deregistration_fires_p105() {
        assert_eq!(at_ms(&graceful_stops_deregister(&[stopped(100)])), [("P105", 100)]);
    }

    #[test]
    fn a_stop_after_its_deregistration_passes_even_a_failed_one() {
        assert!(graceful_stops_deregister(&[deregistered(90, None), stopped(100)]).is_empty());
        assert!(graceful_stops_deregister(&[deregistered(90, Some("timeout")), stopped(100)]).is_empty());
    }

    #[test]
    fn another_nodes_deregistration_does_not_count() {
        let d = deregistered(90, None);
        let other = E(d.0, "n2", d.2.clone(), None);
        assert_eq!(at_ms(&graceful_stops_deregister(&[other, stopped(100)])), [("P105", 100)]);
    }
}
