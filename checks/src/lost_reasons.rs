//! S18: a lease owner's step-down names its cause, judged at each `lost`.
//!
//! An owner that believed it held `fence` (`held`) stops believing for one of three causes, and
//! `lost` says which; the first cause wins (the machine steps down once):
//!
//! | reason | what must have come since `held` |
//! |---|---|
//! | `taken` | the store said the token holds no grant (`renew_refused`), or renewed it under another fence (`renewed` with a fence not the one held) |
//! | `work_ended` | the guarded work ended by itself (`work_ended`) |
//! | `deadline` | neither a refusal nor another fence; and the belief ran out: the `lost` comes no earlier than the last `granted` or `renewed` plus its `belief_us` |
//!
//! Operators page on `taken` (another process holds the lease: a split or a stolen key) and on
//! `deadline` (the store is unreachable); a refusal reported as a deadline (round 16 #12, MC127)
//! sends them to the network when the key was taken, and a deadline reported early steps down
//! before the belief ran out. The belief is a local wait: judged at the fastest clock the
//! history allows, with the early slack, a clock jump excusing. An owner's stop, release or
//! crash, and a node's crash or restart, end the judging.

use std::collections::BTreeMap;

use keel::lease::LostReason;
use keel::observe::LeaseEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// What an owner's current belief has seen.
struct Belief {
    fence: u64,
    /// The store refused the token, or renewed it under another fence.
    taken: bool,
    work_ended: bool,
    /// The last grant's or renewal's reply, and the belief it gave (local µs).
    last: Option<(u64, u64)>,
}

/// S18 over keel's lease events: see the module's doc; `clocks` as for
/// [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn lease_losses_name_their_cause<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut owners: BTreeMap<(E::Node, &str, &str), Belief> = BTreeMap::new();
    // (node, lease, owner) → the last grant's reply and belief, before its `held`
    let mut granted: BTreeMap<(E::Node, &str, &str), (u64, u64)> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            owners.retain(|k, _| &k.0 != node);
            granted.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        use LeaseEvent as L;
        let (lease, owner) = match ev {
            L::Held { lease, owner, .. }
            | L::Granted { lease, owner, .. }
            | L::Renewed { lease, owner, .. }
            | L::RenewRefused { lease, owner, .. }
            | L::WorkEnded { lease, owner, .. }
            | L::Lost { lease, owner, .. }
            | L::Stopping { lease, owner }
            | L::Released { lease, owner }
            | L::Crashed { lease, owner, .. }
            | L::OwnerStarted { lease, owner, .. } => (plain(lease), plain(owner)),
            _ => continue,
        };
        let key = (node.clone(), lease, owner);
        match ev {
            L::Granted { belief_us, .. } => {
                granted.insert(key, (t, *belief_us));
            }
            L::Held { fence, .. } => {
                let last = granted.remove(&key);
                owners.insert(key, Belief { fence: *fence, taken: false, work_ended: false, last });
            }
            L::Renewed { fence, belief_us, .. } => {
                if let Some(b) = owners.get_mut(&key) {
                    if *fence == b.fence {
                        b.last = Some((t, *belief_us));
                    } else {
                        b.taken = true;
                    }
                }
            }
            L::RenewRefused { .. } => {
                if let Some(b) = owners.get_mut(&key) {
                    b.taken = true;
                }
            }
            L::WorkEnded { .. } => {
                if let Some(b) = owners.get_mut(&key) {
                    b.work_ended = true;
                }
            }
            L::Lost { fence, reason, .. } => {
                let Some(b) = owners.remove(&key) else { continue };
                let who = format!("{node}: lease {lease} owner {owner}");
                let wrong = match reason {
                    LostReason::Taken if !b.taken => {
                        Some("taken, with no refusal and no other fence from the store since it held it")
                    }
                    LostReason::WorkEnded if !b.work_ended => {
                        Some("work_ended, with no end of its work since it held it")
                    }
                    LostReason::Deadline if b.taken => {
                        Some("deadline, after the store refused its token or renewed it under another fence")
                    }
                    _ => None,
                };
                if let Some(what) = wrong {
                    verdicts.v.push(Violation::new("S18", t, format!("{who} lost fence {fence} for reason {what}")));
                } else if *reason == LostReason::Deadline
                    && let Some((at, belief_us)) = b.last
                {
                    let d = Due { after: "", latest: at, wait_max_us: 0, earliest: at, wait_min_us: belief_us };
                    let holes = verdicts.holes(node).to_vec();
                    if verdicts.pace.judge(&d, t, 0, &holes).early.is_some() {
                        verdicts.overdue("S18", node, &d, t, || {
                            format!(
                                "{who} lost fence {fence} for its deadline {} µs after its last grant or renewal, which it believed for {belief_us} µs",
                                t - at
                            )
                        });
                    }
                }
            }
            _ => {
                owners.remove(&key);
            }
        }
    }
    verdicts.v.truncate(20);
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn held(t_ms: u64, fence: u64, belief_ms: u64) -> [Ev; 2] {
        let (lease, owner) = ("L".into(), "a".into());
        let belief_us = belief_ms * 1000;
        [
            at(t_ms, LeaseEvent::Granted { lease, owner, fence, took_us: 0, belief_us }),
            at(t_ms, LeaseEvent::Held { lease: "L".into(), owner: "a".into(), fence }),
        ]
    }

    fn lost(t_ms: u64, reason: LostReason) -> Ev {
        at(t_ms, LeaseEvent::Lost { lease: "L".into(), owner: "a".into(), fence: 7, reason })
    }

    fn refused(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::RenewRefused { lease: "L".into(), owner: "a".into(), took_us: 0 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&lease_losses_name_their_cause(h, crate::steady_clocks(2_000)))
    }

    fn with(h: [Ev; 2], rest: &[Ev]) -> Vec<Ev> {
        h.into_iter().chain(rest.iter().cloned()).collect()
    }

    /// Each reason with its cause passes; a refusal reported as a deadline (MC127), a taken with
    /// no refusal, and a deadline before the belief ran out are S18 at the `lost`.
    #[test]
    fn a_loss_that_misnames_its_cause_fires_s18() {
        assert_eq!(judge(&with(held(0, 7, 900), &[refused(300), lost(310, LostReason::Taken)])), []);
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(900, LostReason::Deadline)])), []);
        assert_eq!(judge(&with(held(0, 7, 900), &[refused(300), lost(310, LostReason::Deadline)])), [("S18", 310)]);
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(310, LostReason::Taken)])), [("S18", 310)]);
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(500, LostReason::Deadline)])), [("S18", 500)]);
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(500, LostReason::WorkEnded)])), [("S18", 500)]);
        let ended = at(400, LeaseEvent::WorkEnded { lease: "L".into(), owner: "a".into(), fence: 7, panic: None });
        assert_eq!(judge(&with(held(0, 7, 900), &[ended, lost(500, LostReason::WorkEnded)])), []);
        // A renewal under another fence is a take; one under the same fence extends the belief.
        let renewed = |t, fence| {
            at(t, LeaseEvent::Renewed { lease: "L".into(), owner: "a".into(), fence, took_us: 0, belief_us: 900_000 })
        };
        assert_eq!(judge(&with(held(0, 7, 900), &[renewed(300, 9), lost(300, LostReason::Taken)])), []);
        assert_eq!(
            judge(&with(held(0, 7, 900), &[renewed(300, 7), lost(1_000, LostReason::Deadline)])),
            [("S18", 1_000)]
        );
        assert_eq!(judge(&with(held(0, 7, 900), &[renewed(300, 7), lost(1_200, LostReason::Deadline)])), []);
    }
}
