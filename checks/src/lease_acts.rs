//! S25: a lease owner acts on a grant only inside its belief, judged at each act.
//!
//! Each `granted` and `renewed` says how long the owner now believes in `fence` (`belief_us`,
//! on its own clock, from that event). Publishing `held`, and starting or restarting the guarded
//! work (`work_started`, `work_restarted`), hands the application a grant: each must come
//! before that belief ends. A driver that wakes late (frozen, or its turn delayed) must step
//! down first; one that checks a due restart before its deadline restarts the work, and
//! publishes `held` again, for a grant whose guard is already lost (blind-spot hunt, round 22,
//! #9). Judged on the owner's clock at its slowest in-bound rate: an act whose global distance
//! from the belief's event, at that rate, already reaches the belief is past the deadline
//! whatever the clock did. Frozen time counts (the owner's clock runs on while it is frozen);
//! an owner whose clock jumped meanwhile is excused.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Clocks, Entry, Fact, Span, Violation, plain};

/// An owner's belief in a grant: its fence, the event it began at, how long it lasts.
#[derive(Clone, Copy)]
struct Belief {
    fence: u64,
    since: u64,
    belief_us: u64,
}

/// S25 over keel's lease events: see the module's doc. The first 20 violations.
pub fn lease_acts_inside_the_belief<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut beliefs: BTreeMap<(E::Node, &str, &str), Belief> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            beliefs.retain(|k, _| &k.0 != node);
            continue;
        }
        use LeaseEvent as L;
        let (lease, owner, fence, what) = match e.lease() {
            Some(
                L::Granted { lease, owner, fence, belief_us, .. } | L::Renewed { lease, owner, fence, belief_us, .. },
            ) => {
                beliefs.insert(
                    (node.clone(), plain(lease), plain(owner)),
                    Belief { fence: *fence, since: t, belief_us: *belief_us },
                );
                continue;
            }
            Some(L::SteppingDown { lease, owner, .. } | L::Lost { lease, owner, .. }) => {
                beliefs.remove(&(node.clone(), plain(lease), plain(owner)));
                continue;
            }
            Some(L::Held { lease, owner, fence }) => (lease, owner, *fence, "published held"),
            Some(L::WorkStarted { lease, owner, fence }) => (lease, owner, *fence, "started its work"),
            Some(L::WorkRestarted { lease, owner, fence }) => (lease, owner, *fence, "restarted its work"),
            _ => continue,
        };
        let (lease, owner) = (plain(lease), plain(owner));
        let Some(&Belief { fence: held, since, belief_us }) = beliefs.get(&(node.clone(), lease, owner)) else {
            continue;
        };
        let elapsed_us = (t.saturating_sub(since) as f64 * clocks.rates.0) as u64;
        if held != fence || elapsed_us < belief_us || (clocks.jumped)(node, since, t) || v.len() >= 20 {
            continue;
        }
        v.push(Violation::new(
            "S25",
            t,
            format!(
                "{node}: {owner} {what} under fence {fence} of {lease} {} µs after its belief began, which was {belief_us} µs: past its deadline",
                t - since
            ),
        ));
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

    #[test]
    fn a_work_restarted_or_held_past_the_belief_fires_s25() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&lease_acts_inside_the_belief(h, crate::steady_clocks(0)));
        let (lease, owner) = (|| "l".into(), || "a".into());
        let granted = at(
            10,
            LeaseEvent::Granted { lease: lease(), owner: owner(), fence: 1, took_us: 4_000, belief_us: 900_000 },
        );
        let held = |t| at(t, LeaseEvent::Held { lease: lease(), owner: owner(), fence: 1 });
        let restarted = |t| at(t, LeaseEvent::WorkRestarted { lease: lease(), owner: owner(), fence: 1 });
        let down = |t| at(t, LeaseEvent::SteppingDown { lease: lease(), owner: owner(), fence: 1 });
        assert_eq!(judge(&[granted.clone(), held(10), restarted(909)]), []);
        // At the deadline's instant, or after it.
        assert_eq!(judge(&[granted.clone(), held(910)]), [("S25", 910)]);
        assert_eq!(judge(&[granted.clone(), restarted(1_500)]), [("S25", 1_500)]);
        // After a step-down the belief is gone: nothing more to judge until the next grant.
        assert_eq!(judge(&[granted, down(905), restarted(1_500)]), []);
    }
}
