//! S17: a lease owner believes in a grant for at most its TTL less its drift margin, counted
//! from the attempt's send, judged at each grant and renewal.
//!
//! The store extends a grant at some instant after the request left the owner, so the owner's
//! belief, counted on its own clock from the send, ends inside the store's grant as long as its
//! clock runs within the drift margin. The owner announces its TTL and margin
//! (`owner_started`: `ttl_us`, `drift_margin_us`); each `granted` and `renewed` says how long the
//! attempt took (`took_us`, from the send) and how long the owner now believes (`belief_us`,
//! from the reply), both on the owner's clock. So `belief_us + took_us ≤ ttl_us −
//! drift_margin_us`, exactly (1 µs for the rounding of two readings). A belief counted from the
//! reply (MC14) outlives the grant by the round trip; one without its margin (MC105) by the
//! drift a clock may have. S6 sees either only when the clocks and the network make it matter;
//! this sees it at every grant.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, Violation, plain};

/// S17 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_beliefs_keep_their_margin<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, lease, owner) → (ttl_us, drift_margin_us)
    let mut owners: BTreeMap<(E::Node, &str, &str), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            owners.retain(|k, _| &k.0 != node);
            continue;
        }
        let (lease, owner, what, took_us, belief_us) = match e.lease() {
            Some(LeaseEvent::OwnerStarted { lease, owner, ttl_us, drift_margin_us, .. }) => {
                owners.insert((node.clone(), plain(lease), plain(owner)), (*ttl_us, *drift_margin_us));
                continue;
            }
            Some(LeaseEvent::Granted { lease, owner, took_us, belief_us, .. }) => {
                (plain(lease), plain(owner), "grant", *took_us, *belief_us)
            }
            Some(LeaseEvent::Renewed { lease, owner, took_us, belief_us, .. }) => {
                (plain(lease), plain(owner), "renewal", *took_us, *belief_us)
            }
            _ => continue,
        };
        let Some(&(ttl_us, margin_us)) = owners.get(&(node.clone(), lease, owner)) else { continue };
        let allowed_us = ttl_us.saturating_sub(margin_us).saturating_sub(took_us);
        if belief_us > allowed_us + 1 && v.len() < 20 {
            v.push(Violation::new(
                "S17",
                e.t_us(),
                format!(
                    "{node}: {owner} believes its {what} of {lease} for {belief_us} µs from the reply, {} µs past its TTL ({ttl_us} µs) less its drift margin ({margin_us} µs) counted from the send ({took_us} µs before)",
                    belief_us - allowed_us
                ),
            ));
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

    fn started() -> Ev {
        let (lease, owner) = ("l".into(), "a".into());
        let (renew_us, poll_us, retry_min_us, retry_max_us) = (333_000, 333_000, 20_000, 83_000);
        let (ttl_us, drift_margin_us) = (1_000_000, 90_000);
        at(
            0,
            LeaseEvent::OwnerStarted {
                lease,
                owner,
                renew_us,
                poll_us,
                retry_min_us,
                retry_max_us,
                ttl_us,
                drift_margin_us,
                error_log_us: 10_000_000,
                work_restart_min_us: 100_000,
                work_restart_max_us: 10_000_000,
                op_timeout_us: 250_000,
                work_stop_timeout_us: 1_000_000,
                permanent_attempts: 3,
            },
        )
    }

    fn granted(took_us: u64, belief_us: u64) -> Ev {
        at(10, LeaseEvent::Granted { lease: "l".into(), owner: "a".into(), fence: 1, took_us, belief_us })
    }

    fn renewed(took_us: u64, belief_us: u64) -> Ev {
        at(20, LeaseEvent::Renewed { lease: "l".into(), owner: "a".into(), fence: 1, took_us, belief_us })
    }

    #[test]
    fn a_belief_past_the_ttl_less_the_margin_from_the_send_fires_s17() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&lease_beliefs_keep_their_margin(h));
        // TTL 1 s, margin 90 ms, the attempt took 4 ms: 906 ms of belief at most.
        assert_eq!(judge(&[started(), granted(4_000, 906_000), renewed(4_000, 906_001)]), []);
        // Counted from the reply (MC14), or without the margin (MC105).
        assert_eq!(judge(&[started(), granted(4_000, 910_000)]), [("S17", 10)]);
        assert_eq!(judge(&[started(), renewed(4_000, 996_000)]), [("S17", 20)]);
        // An owner that announced nothing is not judged.
        assert_eq!(judge(&[granted(4_000, 996_000)]), []);
    }
}
