//! E2: a lease owner reports a recovery from store errors only after errors, and counts them all,
//! judged at each `store_recovered`.
//!
//! An owner summarises its store errors at warn level, rate-limited (`store_errors`: `count` since
//! the last summary, `total` since its last success), and reports the first success after them
//! (`store_recovered`: `errors`, the errors it recovered from), which starts its count over. The
//! first error after a success is always summarised. So a recovery comes only after a summary
//! since the last recovery, and counts at least that summary's `total`. A recovery with no error
//! before it is an operator paged, or a dashboard's error rate fed, by a store that never failed
//! (MC111: a count that is never reset reports a recovery at every success).
//!
//! And the other side, judged at each success of a store step that ends the error run: an owner
//! with errors summarised since its last recovery reports the recovery in the same step as the
//! success. The owner ends its run at each answer of the store: an acquisition granted,
//! refused by a live holder or quarantined, a renewal renewed or refused, and a read of the
//! store's time (`time_read`, an event of its own since round 36). In the step,
//! `store_recovered` comes before `granted`, `renewed` (they follow the machine's new
//! deadline) and `time_read`, and after `acquire_refused`, `quarantined` and `renew_refused`: so
//! a `granted`, `renewed` or `time_read` with errors still open is E2 at once (a time read at
//! start that leaves the run open: blind-spot hunt, round 38, A #107, MC353), and after a
//! refusal or quarantine with errors
//! open, the owner's next event of a store step must be that `store_recovered` (a success that
//! leaves the run open is an operator never told the store answers again, and a recovery
//! reported later counting errors from before a success; MC119: an acquisition's success that
//! does not end the run). A step's events are emitted with no wait between them, so no other
//! store step of the owner comes between; a log that ends inside a step is not judged. An
//! owner that starts (`owner_started`) or crashes starts its count over; a node's crash or
//! restart forgets its owners.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, Violation, plain};

/// E2 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_recoveries_follow_errors<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, lease, owner) → the last summary's `total` since the owner's last recovery.
    let mut errors: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    // (node, lease, owner) → a refusal or quarantine with errors open, whose step must report
    // the recovery next: (its instant, its event's name).
    let mut pending: BTreeMap<(E::Node, &str, &str), (u64, &str)> = BTreeMap::new();
    let mut v = Vec::new();
    let push = |v: &mut Vec<Violation>, t_us: u64, what: String| {
        if v.len() < 20 {
            v.push(Violation::new("E2", t_us, what));
        }
    };
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            errors.retain(|k, _| &k.0 != node);
            pending.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        let (lease, owner) = match ev {
            LeaseEvent::StoreErrors { lease, owner, .. }
            | LeaseEvent::StoreRecovered { lease, owner, .. }
            | LeaseEvent::Granted { lease, owner, .. }
            | LeaseEvent::Renewed { lease, owner, .. }
            | LeaseEvent::TimeRead { lease, owner, .. }
            | LeaseEvent::AcquireRefused { lease, owner, .. }
            | LeaseEvent::Quarantined { lease, owner, .. }
            | LeaseEvent::RenewRefused { lease, owner, .. }
            | LeaseEvent::AcquireFailed { lease, owner, .. }
            | LeaseEvent::RenewFailed { lease, owner, .. }
            | LeaseEvent::TimeFailed { lease, owner, .. }
            | LeaseEvent::OwnerStarted { lease, owner, .. }
            | LeaseEvent::Crashed { lease, owner, .. } => (plain(lease), plain(owner)),
            _ => continue,
        };
        let key = (node.clone(), lease, owner);
        // A store step's outcome, or a new run of the owner, after a refusal with errors open:
        // the refusal's step ended without its recovery.
        if !matches!(ev, LeaseEvent::StoreRecovered { .. })
            && let Some((t, what)) = pending.remove(&key)
        {
            let total = errors.get(&key).copied().unwrap_or(0);
            let what = format!(
                "{node}: lease {lease} owner {owner} succeeded ({what}) with {total} store errors since its last recovery, and reported no recovery in that step"
            );
            push(&mut v, t, what);
        }
        match ev {
            LeaseEvent::OwnerStarted { .. } | LeaseEvent::Crashed { .. } => {
                errors.remove(&key);
            }
            LeaseEvent::StoreErrors { total, .. } => {
                errors.insert(key, *total);
            }
            LeaseEvent::StoreRecovered { errors: n, .. } => {
                pending.remove(&key);
                let what = match errors.remove(&key) {
                    None => format!("reported a recovery from {n} store errors with none since its last recovery"),
                    Some(total) if *n < total => {
                        format!("reported a recovery from {n} store errors after summarising {total}")
                    }
                    Some(_) => continue,
                };
                push(&mut v, e.t_us(), format!("{node}: lease {lease} owner {owner} {what}"));
            }
            LeaseEvent::Granted { .. } | LeaseEvent::Renewed { .. } | LeaseEvent::TimeRead { .. }
                if errors.contains_key(&key) =>
            {
                let what = match ev {
                    LeaseEvent::Granted { .. } => "granted",
                    LeaseEvent::Renewed { .. } => "renewed",
                    _ => "time_read",
                };
                let total = errors[&key];
                let what = format!(
                    "{node}: lease {lease} owner {owner} succeeded ({what}) with {total} store errors since its last recovery, and reported no recovery before it in that step"
                );
                push(&mut v, e.t_us(), what);
            }
            LeaseEvent::AcquireRefused { .. } | LeaseEvent::Quarantined { .. } | LeaseEvent::RenewRefused { .. }
                if errors.contains_key(&key) =>
            {
                let what = match ev {
                    LeaseEvent::AcquireRefused { .. } => "acquire_refused",
                    LeaseEvent::Quarantined { .. } => "quarantined",
                    _ => "renew_refused",
                };
                pending.insert(key, (e.t_us(), what));
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

    fn granted(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Granted { lease: "L".into(), owner: "a".into(), fence: 1, took_us: 0, belief_us: 0 })
    }

    fn refused(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::AcquireRefused { lease: "L".into(), owner: "a".into(), remaining_ms: 1, took_us: 0 })
    }

    fn renewed(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Renewed { lease: "L".into(), owner: "a".into(), fence: 1, took_us: 0, belief_us: 0 })
    }

    /// A success with errors open carries the recovery in its step: before `granted`/`renewed`,
    /// right after a refusal; a grant or refusal that leaves the run open (MC119) is E2 at the
    /// success; an owner that starts again starts its count over.
    #[test]
    fn a_success_with_errors_open_and_no_recovery_in_its_step_fires_e2() {
        let ok = [errors(1, 1), recovered(2, 1), granted(2), errors(3, 1), refused(4), recovered(4, 1), renewed(5)];
        assert!(lease_recoveries_follow_errors(&ok).is_empty());
        let v = lease_recoveries_follow_errors(&[errors(1, 1), granted(2), recovered(3, 1), renewed(3)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("E2", 2)], "{v:?}");
        assert!(v[0].detail.contains("succeeded (granted) with 1 store errors"), "{}", v[0].detail);
        let v = lease_recoveries_follow_errors(&[errors(1, 1), refused(2), refused(3), recovered(4, 1)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("E2", 2)], "{v:?}");
        assert!(v[0].detail.contains("(acquire_refused)"), "{}", v[0].detail);
        let start = at(
            2,
            LeaseEvent::OwnerStarted {
                lease: "L".into(),
                owner: "a".into(),
                renew_us: 0,
                poll_us: 0,
                retry_min_us: 0,
                retry_max_us: 0,
                ttl_us: 0,
                drift_margin_us: 0,
                error_log_us: 10_000_000,
                work_restart_min_us: 100_000,
                work_restart_max_us: 10_000_000,
                op_timeout_us: 250_000,
                work_stop_timeout_us: 1_000_000,
                permanent_attempts: 3,
            },
        );
        assert!(lease_recoveries_follow_errors(&[errors(1, 1), start, granted(3)]).is_empty());
        // A read of the store's time ends the run too (MC353: it left it open).
        let time_read = |t_ms| at(t_ms, LeaseEvent::TimeRead { lease: "L".into(), owner: "a".into(), took_us: 0 });
        assert!(lease_recoveries_follow_errors(&[errors(1, 1), recovered(2, 1), time_read(2)]).is_empty());
        let v = lease_recoveries_follow_errors(&[errors(1, 1), time_read(2), recovered(3, 1)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("E2", 2)], "{v:?}");
        assert!(v[0].detail.contains("(time_read)"), "{}", v[0].detail);
    }
}
