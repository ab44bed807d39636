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
//!
//! Both ways round: a belief is also no shorter than that (to 1 µs), since keel counts it from
//! the send, exactly: an owner that believes less steps down while the store still holds its
//! grant, and a renewal counted from the previous deadline or a round trip taken off twice
//! (blind-spot hunt, round 23, B #21 and #26) stays short for good. A belief of 0 (a grant
//! answered past the belief it grants, never held) is not judged that way. And the margin itself
//! covers the clocks the run has: at `owner_started`, `drift_margin_us ≥ ttl_us · (1 −
//! slowest)`, 1 ms of slack, where `slowest` is the slowest in-bound clock rate of the run (a
//! margin of a hundredth of the TTL under clocks 8 % slow, round 23 B #4: the belief outlives
//! the grant whenever renewals stop for a TTL).

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, Violation, plain};

/// Slack on the margin's cover of the slowest clock: 1 ms.
const MARGIN_SLACK_US: u64 = 1_000;

/// S17 over keel's lease events: see the module's doc. `slowest`: the slowest in-bound clock
/// rate of the run (1.0 for real clocks). The first 20 violations.
pub fn lease_beliefs_keep_their_margin<E: Entry>(events: &[E], slowest: f64) -> Vec<Violation> {
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
                let needed_us = (*ttl_us as f64 * (1.0 - slowest.min(1.0))) as u64;
                if drift_margin_us + MARGIN_SLACK_US < needed_us && v.len() < 20 {
                    v.push(Violation::new(
                        "S17",
                        e.t_us(),
                        format!(
                            "{node}: {} of {} keeps a drift margin of {drift_margin_us} µs of its TTL ({ttl_us} µs), under the {needed_us} µs a clock at rate {slowest:.3} (the run's slowest in bound) needs: its belief would outlive the store's grant",
                            plain(owner),
                            plain(lease)
                        ),
                    ));
                }
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
        if belief_us > 0 && belief_us + 1 < allowed_us && v.len() < 20 {
            v.push(Violation::new(
                "S17",
                e.t_us(),
                format!(
                    "{node}: {owner} believes its {what} of {lease} for {belief_us} µs from the reply, {} µs short of its TTL ({ttl_us} µs) less its drift margin ({margin_us} µs) counted from the send ({took_us} µs before): it would step down while the store holds its grant",
                    allowed_us - belief_us
                ),
            ));
        }
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
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&lease_beliefs_keep_their_margin(h, 1.0));
        // TTL 1 s, margin 90 ms, the attempt took 4 ms: 906 ms of belief exactly.
        assert_eq!(judge(&[started(), granted(4_000, 906_000), renewed(4_000, 906_001)]), []);
        // Short: counted from the previous deadline, or the round trip taken off twice (round
        // 23 B #21, #26); a grant answered past its belief (0) is not judged that way.
        assert_eq!(judge(&[started(), renewed(4_000, 545_000)]), [("S17", 20)]);
        assert_eq!(judge(&[started(), granted(4_000, 902_000)]), [("S17", 10)]);
        assert_eq!(judge(&[started(), granted(950_000, 0)]), []);
        // Counted from the reply (MC14), or without the margin (MC105).
        assert_eq!(judge(&[started(), granted(4_000, 910_000)]), [("S17", 10)]);
        assert_eq!(judge(&[started(), renewed(4_000, 996_000)]), [("S17", 20)]);
        // An owner that announced nothing is not judged.
        assert_eq!(judge(&[granted(4_000, 996_000)]), []);
        // A belief of 0 is not judged short even where 2 µs of belief were left.
        assert_eq!(judge(&[started(), granted(909_998, 0)]), []);
        assert_eq!(judge(&[started(), granted(909_998, 1)]), []);
        assert_eq!(judge(&[started(), granted(905_000, 1)]), [("S17", 10)]);
    }

    /// A node's crash or restart forgets the owners it announced; another node's does not.
    #[test]
    fn a_crash_forgets_the_owners_of_its_node_only() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&lease_beliefs_keep_their_margin(h, 1.0));
        let fact = |node, f| Ev(5_000, node, None, Some(f));
        assert_eq!(judge(&[started(), fact("n1", Fact::NodeCrash), granted(4_000, 996_000)]), []);
        assert_eq!(judge(&[started(), fact("n1", Fact::NodeStart), granted(4_000, 996_000)]), []);
        assert_eq!(judge(&[started(), fact("n2", Fact::NodeCrash), granted(4_000, 996_000)]), [("S17", 10)]);
    }

    /// The margin covers the run's slowest clock: 90 ms of a 1 s TTL covers a clock at 0.92
    /// (80 ms), not one at 0.85 (150 ms); real clocks need none.
    #[test]
    fn a_margin_short_of_the_slowest_clock_fires_s17() {
        let judge = |slowest| crate::test_entry::at_ms(&lease_beliefs_keep_their_margin(&[started()], slowest));
        assert_eq!(judge(1.0), []);
        assert_eq!(judge(0.92), []);
        assert_eq!(judge(0.85), [("S17", 0)]);
        assert_eq!(judge(1.08), []);
    }

    /// At the slack's edge: a clock at rate 0.5 needs 500 ms of a 1 s TTL; a margin of 499 ms
    /// is within the 1 ms of slack, one of 498.999 ms is not.
    #[test]
    fn a_margin_within_its_slack_of_the_slowest_clock_passes() {
        let with_margin = |drift_margin_us| {
            let mut e = started();
            if let Some(Event::Lease(LeaseEvent::OwnerStarted { drift_margin_us: m, .. })) = &mut e.2 {
                *m = drift_margin_us;
            }
            crate::test_entry::at_ms(&lease_beliefs_keep_their_margin(&[e], 0.5))
        };
        assert_eq!(with_margin(499_000), []);
        assert_eq!(with_margin(498_999), [("S17", 0)]);
    }
}
