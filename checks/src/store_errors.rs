//! E2: a lease owner reports a recovery from store errors only after errors, and counts them all,
//! judged at each `store_recovered`.
//!
//! An owner summarises its store errors at warn level, rate-limited (`store_errors`: `count` since
//! the last summary, `total` since its last success), and reports the first success after them
//! (`store_recovered`: `errors`, the errors it recovered from), which starts its count over. The
//! first error after a success is always summarised. So a recovery comes only after a summary
//! since the last recovery, and counts at least that summary's `total`. A recovery with no error
//! before it is an operator paged, or a dashboard's error rate fed, by a store that never failed
//! (MC111: a count that is never reset reports a recovery at every success). A node's crash or
//! restart forgets its owners.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, Violation, plain};

/// E2 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_recoveries_follow_errors<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, lease, owner) → the last summary's `total` since the owner's last recovery.
    let mut errors: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            errors.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.lease() {
            Some(LeaseEvent::StoreErrors { lease, owner, total, .. }) => {
                errors.insert((node.clone(), plain(lease), plain(owner)), *total);
            }
            Some(LeaseEvent::StoreRecovered { lease, owner, errors: n }) => {
                let (lease, owner) = (plain(lease), plain(owner));
                let what = match errors.remove(&(node.clone(), lease, owner)) {
                    None => format!("reported a recovery from {n} store errors with none since its last recovery"),
                    Some(total) if *n < total => {
                        format!("reported a recovery from {n} store errors after summarising {total}")
                    }
                    Some(_) => continue,
                };
                if v.len() < 20 {
                    v.push(Violation::new("E2", e.t_us(), format!("{node}: lease {lease} owner {owner} {what}")));
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
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn errors(t_ms: u64, total: u64) -> Ev {
        let (op, error) = ("renew".into(), "timeout".into());
        at(
            t_ms,
            LeaseEvent::StoreErrors {
                lease: "L".into(),
                owner: "a".into(),
                op,
                count: 1,
                total,
                permanent: false,
                error,
            },
        )
    }

    fn recovered(t_ms: u64, errors: u64) -> Ev {
        at(t_ms, LeaseEvent::StoreRecovered { lease: "L".into(), owner: "a".into(), errors })
    }

    /// Errors, then a recovery counting them: no violation; a second recovery with no error since
    /// (MC111), or one counting fewer than summarised, is E2 at the recovery; a crash forgets.
    #[test]
    fn a_recovery_without_errors_before_it_fires_e2() {
        assert!(lease_recoveries_follow_errors(&[errors(1, 1), errors(5, 4), recovered(6, 5)]).is_empty());
        let v = lease_recoveries_follow_errors(&[errors(1, 1), recovered(2, 1), recovered(3, 1)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("E2", 3)], "{v:?}");
        assert!(v[0].detail.contains("with none since its last recovery"), "{}", v[0].detail);
        assert_eq!(
            crate::test_entry::at_ms(&lease_recoveries_follow_errors(&[errors(1, 4), recovered(2, 3)])),
            [("E2", 2)]
        );
        let crash = Ev(2000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(lease_recoveries_follow_errors(&[errors(1, 1), crash, recovered(3, 1)]).len(), 1);
    }
}
