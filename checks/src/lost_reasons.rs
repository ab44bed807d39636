//! S18: a lease owner's step-down names its cause, judged at each `lost`; S19: it comes by its
//! deadline, judged where the deadline passes.
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
//!
//! **S19**: an owner that believes past its deadline holds on to a grant it can no longer vouch
//! for: its work's guards read lost on time (they judge the deadline themselves), but the owner
//! still says `held`, releases its token late, and a stop that waits for its step-down waits
//! longer. So at the slowest clock the history allows, with the late slack, frozen time not
//! counted, the owner has begun to step down (`stepping_down`: its guards read lost from there;
//! its `lost` comes once its work stopped) or its belief ended otherwise, or it renewed, by the last grant's
//! or renewal's reply plus its `belief_us`: judged at the owner node's first event past that
//! instant, or at the history's end (the blind-spot hunt's round 17 A #16: a wait between steps
//! not cut at the deadline, MC142, stepped down up to `retry_max` late, inside the drift margin
//! that S6 allows).

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
    /// S19: the belief's end as a local wait, and the latest instant the owner may still hold.
    due: Option<(Due, u64)>,
}

impl Belief {
    /// A belief in `fence` since a reply at `at` for `belief_us` (when known).
    fn new<N: Ord + Clone, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool>(
        fence: u64,
        last: Option<(u64, u64)>,
        verdicts: &mut Verdicts<N, F, J>,
        node: &N,
    ) -> Self {
        let mut b = Belief { fence, taken: false, work_ended: false, last: None, due: None };
        if let Some((at, belief_us)) = last {
            b.renewed(at, belief_us, verdicts, node);
        }
        b
    }

    /// A grant or renewal of the fence held, answered at `at`, believed for `belief_us`.
    fn renewed<N: Ord + Clone, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool>(
        &mut self,
        at: u64,
        belief_us: u64,
        verdicts: &mut Verdicts<N, F, J>,
        node: &N,
    ) {
        self.last = Some((at, belief_us));
        let d = Due { after: "", latest: at, wait_max_us: belief_us, earliest: at, wait_min_us: belief_us };
        let pace = verdicts.pace;
        self.due = Some((d, pace.deadline(&d, verdicts.holes(node))));
    }
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
        past_deadline(&mut verdicts, &mut owners, node, t);
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
            | L::SteppingDown { lease, owner, .. }
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
                owners.insert(key, Belief::new(*fence, last, &mut verdicts, node));
            }
            L::Renewed { fence, belief_us, .. } => {
                if let Some(b) = owners.get_mut(&key) {
                    if *fence == b.fence {
                        b.renewed(t, *belief_us, &mut verdicts, node);
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
            L::SteppingDown { .. } => {
                // S19 met: the guards read lost from here; S18 judges the `lost` that follows
                // once the work stopped.
                if let Some(b) = owners.get_mut(&key) {
                    b.due = None;
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
    let end = events.last().map_or(0, |e| e.t_us());
    let nodes: Vec<E::Node> = owners.keys().map(|k| k.0.clone()).collect();
    for node in nodes {
        past_deadline(&mut verdicts, &mut owners, &node, end.saturating_add(1));
    }
    verdicts.v.truncate(20);
    verdicts.v
}

/// S19 at `t` on `node`: each of its owners whose belief's latest end has passed still holds.
fn past_deadline<N: Ord + Clone + std::fmt::Display, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool>(
    verdicts: &mut Verdicts<N, F, J>,
    owners: &mut BTreeMap<(N, &str, &str), Belief>,
    node: &N,
    t: u64,
) {
    for ((n, lease, owner), b) in owners.iter_mut() {
        if n != node {
            continue;
        }
        let Some((d, deadline)) = b.due.filter(|(_, deadline)| *deadline < t) else { continue };
        b.due = None;
        verdicts.overdue("S19", node, &d, t, || {
            format!(
                "{node}: lease {lease} owner {owner} still held fence {} at {:.3}s: its last grant or renewal, answered at {:.3}s, was believed for {} µs, so it had to step down by {:.3}s",
                b.fence,
                t as f64 / 1e6,
                d.latest as f64 / 1e6,
                d.wait_max_us,
                deadline as f64 / 1e6,
            )
        });
    }
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

    /// An owner still holding past its belief's end (2 ms of slack) fires S19 at its node's next
    /// event, or at the history's end (MC142: the wait between steps not cut at the deadline).
    #[test]
    fn an_owner_that_holds_past_its_deadline_fires_s19() {
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(902, LostReason::Deadline)])), []);
        // The step-down begins on time; its `lost` waits for the work to stop.
        let stepping = at(901, LeaseEvent::SteppingDown { lease: "L".into(), owner: "a".into(), fence: 7 });
        assert_eq!(judge(&with(held(0, 7, 900), &[stepping, lost(990, LostReason::Deadline)])), []);
        assert_eq!(judge(&with(held(0, 7, 900), &[lost(950, LostReason::Deadline)])), [("S19", 950)]);
        assert_eq!(judge(&with(held(0, 7, 900), &[refused(903), lost(960, LostReason::Taken)])), [("S19", 903)]);
        // A renewal moves the deadline; a stop ends the judging; another node's events do not judge.
        let renewed = at(
            800,
            LeaseEvent::Renewed { lease: "L".into(), owner: "a".into(), fence: 7, took_us: 0, belief_us: 900_000 },
        );
        assert_eq!(judge(&with(held(0, 7, 900), &[renewed, lost(1_700, LostReason::Deadline)])), []);
        let stopping = at(500, LeaseEvent::Stopping { lease: "L".into(), owner: "a".into() });
        assert_eq!(judge(&with(held(0, 7, 900), &[stopping, refused(2_000)])), []);
        let elsewhere = Ev(950_000, "n2", lost(0, LostReason::Deadline).2, None);
        assert_eq!(judge(&with(held(0, 7, 900), std::slice::from_ref(&elsewhere))), [("S19", 950)]);
        // Judged at the history's end only once it is past the deadline.
        let early_end = Ev(500_000, "n2", elsewhere.2, None);
        assert_eq!(judge(&with(held(0, 7, 900), &[early_end])), []);
    }
}
