//! S23: a lease owner reports its guarded work's end before it leaves the grant, judged at the
//! instant it leaves.
//!
//! The owner starts the work under a grant (`work_started`) and, before it publishes the grant's
//! end (`lost`, or `released` at its stop), either heard the work end by itself (`work_ended`) or
//! stopped it (`work_stopped`: told to stop and gone, aborted at `work_stop_timeout` if it did not
//! listen). S15 judges that `work_stopped` comes only once the work ended; this is its converse:
//! an owner that goes on without the report leaves the logs and the caller saying nothing of a
//! work it may have left running (blind-spot hunt, round 18, A #5: a work aborted at its stop
//! timeout was never reported stopped; 2 of 3 000 lease seeds reached the abort before the
//! scenario's n3 began to finish its batch deaf to its stop). The owner's crash (`crashed`) and
//! its node's crash or restart end the judging.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, Violation, plain};

/// S23 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_work_ends_reported<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, lease, owner) → the fence of the work going, with no end reported yet
    let mut going: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            going.retain(|(n, _, _), _| n != node);
            continue;
        }
        let Some(l) = e.lease() else { continue };
        match l {
            LeaseEvent::WorkStarted { lease, owner, fence } => {
                going.insert((node.clone(), plain(lease), plain(owner)), *fence);
            }
            LeaseEvent::WorkEnded { lease, owner, .. }
            | LeaseEvent::WorkStopped { lease, owner, .. }
            | LeaseEvent::Crashed { lease, owner, .. } => {
                going.remove(&(node.clone(), plain(lease), plain(owner)));
            }
            LeaseEvent::Lost { lease, owner, .. } | LeaseEvent::Released { lease, owner } => {
                if let Some(fence) = going.remove(&(node.clone(), plain(lease), plain(owner)))
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "S23",
                        t,
                        format!(
                            "{node}: {} of lease {} left its grant ({}) with the work of fence {fence} never reported ended or stopped",
                            plain(owner),
                            plain(lease),
                            l.kind()
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
    use keel::lease::LostReason;
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn started(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::WorkStarted { lease: "l".into(), owner: "o".into(), fence: 7 })
    }

    fn lost(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Lost { lease: "l".into(), owner: "o".into(), fence: 7, reason: LostReason::Deadline })
    }

    #[test]
    fn an_owner_leaving_its_grant_with_its_work_unreported_fires_s23() {
        let stopped = at(
            20,
            LeaseEvent::WorkStopped { lease: "l".into(), owner: "o".into(), fence: 7, waited_us: 0, aborted: false },
        );
        assert_eq!(at_ms(&lease_work_ends_reported(&[started(0), stopped, lost(21)])), []);
        assert_eq!(at_ms(&lease_work_ends_reported(&[started(0), lost(21)])), [("S23", 21)]);
        let released = at(30, LeaseEvent::Released { lease: "l".into(), owner: "o".into() });
        assert_eq!(at_ms(&lease_work_ends_reported(&[started(0), released])), [("S23", 30)]);
        let crash = Ev(10_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(at_ms(&lease_work_ends_reported(&[started(0), crash, lost(21)])), []);
    }
}
