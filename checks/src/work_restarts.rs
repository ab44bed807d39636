//! S20: guarded work that ends by itself while its lease is held is handled as the owner's work
//! policy says, judged at the instant and where each restart falls due.
//!
//! An owner announces its policy when it starts (`owner_started`: `work_restart_min_us` and
//! `work_restart_max_us`, both 0 for the step-down policy). When the work of the grant it holds
//! ends by itself (`work_ended`, with its panic if it panicked):
//! - under a restart policy the owner's next lease event is `work_restarting` of that grant, with
//!   `restarts` one more than the grant's restarts so far and `panicked` as the work ended (or its
//!   step-down: the deadline came first); the work starts again (`work_restarted`) after its
//!   backoff, `min`·2^(restarts−1) capped at `max` and jittered down to half: no sooner than half
//!   of it, no later than all of it (a renewal in flight when it falls due delays it to that
//!   renewal's end), unless the owner's belief ends first. A restart without a pending one, or
//!   after the belief ended, is a violation too: work running for a grant the owner left.
//! - under the step-down policy its next lease event is `stepping_down` of that grant, and it never
//!   restarts the work.
//!
//! The bugs this sees at the instant: a restart with no backoff (a work that fails at once
//! restarts in a hot loop beside a store it may be hammering), a backoff that never grows or
//! ignores its cap, a restart after the grant ended, a `panicked` flag or a restart count that
//! lies to the operator, and a step-down policy that keeps the lease with no work running. A
//! node's crash or restart ends its owners' judging; a node's clock that jumped excuses a restart's
//! timing.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// One owner: its policy (restart backoff bounds, µs; `None`: step down), the fence it holds and
/// its restarts so far, what its work's end asks of its next lease event, and a restart due.
#[derive(Default)]
struct Owner {
    policy: Option<(u64, u64)>,
    held: Option<u64>,
    restarts: u32,
    expect: Option<Expect>,
    due: Option<Restart>,
    /// The fence whose restart was reported overdue (its late restart is not reported again).
    overdue: Option<u64>,
}

/// What the owner's next lease event must be, after its work ended at `at`.
struct Expect {
    at: u64,
    fence: u64,
    panicked: bool,
}

/// A restart due: its floor and deadline (as a [`Due`]) and the latest instant it may come, a
/// renewal in flight at the deadline moving it to that renewal's end.
struct Restart {
    fence: u64,
    due: Due,
    deadline: u64,
}

/// The wait of the `restarts`-th restart under bounds `(min, max)`, as keel's backoff draws it:
/// (floor, most).
fn backoff((min, max): (u64, u64), restarts: u32) -> (u64, u64) {
    let exp = restarts.saturating_sub(1).min(16);
    let most = min.saturating_mul(1u64 << exp).min(max);
    (most / 2, most)
}

/// S20 over keel's lease events: see the module's doc. The clocks as for
/// [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn lease_work_restarts_follow_the_policy<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let pace = verdicts.pace;
    let mut owners: BTreeMap<(E::Node, &str, &str), Owner> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            owners.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        use LeaseEvent as L;
        let (lease, owner) = match ev {
            L::OwnerStarted { lease, owner, work_restart_min_us, work_restart_max_us, .. } => {
                let policy = (*work_restart_max_us > 0).then_some((*work_restart_min_us, *work_restart_max_us));
                owners.insert((node.clone(), plain(lease), plain(owner)), Owner { policy, ..Owner::default() });
                continue;
            }
            L::Granted { lease, owner, .. }
            | L::Held { lease, owner, .. }
            | L::WorkEnded { lease, owner, .. }
            | L::WorkRestarting { lease, owner, .. }
            | L::WorkRestarted { lease, owner, .. }
            | L::Renewed { lease, owner, .. }
            | L::RenewFailed { lease, owner, .. }
            | L::RenewRefused { lease, owner, .. }
            | L::SteppingDown { lease, owner, .. }
            | L::Lost { lease, owner, .. }
            | L::Released { lease, owner }
            | L::Stopping { lease, owner }
            | L::Crashed { lease, owner, .. } => (plain(lease), plain(owner)),
            _ => continue,
        };
        let Some(o) = owners.get_mut(&(node.clone(), lease, owner)) else { continue };
        // A restart overdue, judged at the owner's next lease event past its deadline (a renewal in
        // flight then holds the driver: its outcome moves the deadline to itself).
        if let Some(r) = o.due.as_mut()
            && t > r.deadline
        {
            match ev {
                L::Renewed { took_us, .. } | L::RenewFailed { took_us, .. } | L::RenewRefused { took_us, .. }
                    if t.saturating_sub(pace.stretch(*took_us)) <= r.deadline =>
                {
                    r.deadline = t.saturating_add(pace.late_slack_us);
                }
                L::WorkRestarted { .. } => {} // judged below
                _ => {
                    let fence = r.fence;
                    if let Some(r) = o.due.take() {
                        verdicts.overdue("S20", node, &r.due, t, || {
                            format!(
                                "{node}: lease {lease} owner {owner}: the work of fence {fence} ended at {:.3}s and was due to restart within {} µs; not restarted by its {} at {:.3}s, the grant held",
                                r.due.earliest as f64 / 1e6,
                                r.due.wait_max_us,
                                ev.kind(),
                                t as f64 / 1e6
                            )
                        });
                    }
                    o.overdue = Some(fence);
                }
            }
        }
        let mut found: Vec<String> = Vec::new();
        let mut v = |why: String| found.push(why);
        // The event that follows a work's end.
        let followed = o.expect.is_some();
        if let Some(x) = o.expect.take() {
            let ok = match (ev, o.policy) {
                (L::WorkRestarting { fence, restarts, panicked, .. }, Some(bounds)) => {
                    if *fence != x.fence || *restarts != o.restarts + 1 || *panicked != x.panicked {
                        v(format!(
                            "the work of fence {} ended at {:.3}s ({}, its restart {} of the grant), and the owner reported restart {restarts} of fence {fence}, panicked {panicked}",
                            x.fence,
                            x.at as f64 / 1e6,
                            if x.panicked { "panicked" } else { "returned" },
                            o.restarts + 1
                        ));
                    }
                    o.restarts = *restarts;
                    let (floor, most) = backoff(bounds, *restarts);
                    let due = Due {
                        after: "work_ended",
                        latest: x.at,
                        wait_max_us: most,
                        earliest: x.at,
                        wait_min_us: floor,
                    };
                    let deadline = pace.deadline(&due, verdicts.holes(node));
                    o.due = Some(Restart { fence: *fence, due, deadline });
                    true
                }
                (L::SteppingDown { fence, .. }, _) => *fence == x.fence,
                _ => false,
            };
            if !ok {
                let asked = match o.policy {
                    Some(_) => "its restart (`work_restarting`) or, its deadline come, its step-down",
                    None => "its step-down (the step-down policy)",
                };
                v(format!(
                    "the work of fence {} ended by itself at {:.3}s; the owner's next lease event was to be {asked}, not {}",
                    x.fence,
                    x.at as f64 / 1e6,
                    ev.kind()
                ));
            }
        }
        match ev {
            L::WorkRestarting { .. } if followed => {}
            L::Held { fence, .. } => {
                (o.held, o.restarts, o.due, o.overdue) = (Some(*fence), 0, None, None);
            }
            L::WorkEnded { fence, panic, .. } if o.held == Some(*fence) => {
                o.expect = Some(Expect { at: t, fence: *fence, panicked: panic.is_some() });
            }
            L::WorkRestarting { fence, .. } => {
                v(format!("restart of the work of fence {fence} reported with no end of its work before it"));
            }
            L::WorkRestarted { fence, .. } if o.overdue == Some(*fence) => o.overdue = None,
            L::WorkRestarted { fence, .. } => match o.due.take() {
                Some(r) if r.fence == *fence && o.held == Some(*fence) => {
                    let floor = r
                        .due
                        .earliest
                        .saturating_add(pace.shrink(r.due.wait_min_us))
                        .saturating_sub(pace.early_slack_us);
                    let off = if t > r.deadline {
                        Some(("no later than", r.due.wait_max_us, t - r.deadline, "late"))
                    } else if t < floor {
                        Some(("no sooner than", r.due.wait_min_us, floor - t, "early"))
                    } else {
                        None
                    };
                    if let Some((what, wait_us, by, how)) = off {
                        verdicts.overdue("S20", node, &r.due, t, || {
                            format!(
                                "{node}: lease {lease} owner {owner}: the work of fence {fence} ended at {:.3}s and was due to restart {what} {wait_us} µs after, and restarted at {:.3}s, {by} µs {how}",
                                r.due.earliest as f64 / 1e6,
                                t as f64 / 1e6,
                            )
                        });
                    }
                }
                _ => v(format!(
                    "the work of fence {fence} restarted with no restart pending for a grant the owner holds (its policy: {})",
                    if o.policy.is_some() { "restart" } else { "step down" }
                )),
            },
            L::SteppingDown { .. } | L::Lost { .. } | L::Released { .. } | L::Stopping { .. } | L::Crashed { .. } => {
                (o.held, o.due) = (None, None);
            }
            _ => {}
        }
        for why in found {
            if verdicts.v.len() < 20 {
                verdicts.v.push(Violation::new("S20", t, format!("{node}: lease {lease} owner {owner}: {why}")));
            }
        }
    }
    // A restart still due at the history's end, its deadline passed.
    let end = events.last().map_or(0, |e| e.t_us());
    for ((node, lease, owner), o) in &owners {
        if let Some(r) = o.due.as_ref().filter(|r| r.deadline < end) {
            verdicts.overdue("S20", node, &r.due, end, || {
                format!(
                    "{node}: lease {lease} owner {owner}: the work of fence {} ended at {:.3}s and was due to restart within {} µs; not restarted by the history's end while the grant is held",
                    r.fence,
                    r.due.earliest as f64 / 1e6,
                    r.due.wait_max_us
                )
            });
        }
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::steady_clocks;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn started(restart: Option<(u64, u64)>) -> Ev {
        crate::test_entry::owner_started(restart)
    }

    fn held(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::Held { lease: "L".into(), owner: "a".into(), fence: 7 })
    }

    fn ended(t_ms: u64, panicked: bool) -> Ev {
        let panic = panicked.then(|| "boom".into());
        at(t_ms, LeaseEvent::WorkEnded { lease: "L".into(), owner: "a".into(), fence: 7, panic })
    }

    fn restarting(t_ms: u64, restarts: u32, panicked: bool) -> Ev {
        at(t_ms, LeaseEvent::WorkRestarting { lease: "L".into(), owner: "a".into(), fence: 7, restarts, panicked })
    }

    fn restarted(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::WorkRestarted { lease: "L".into(), owner: "a".into(), fence: 7 })
    }

    fn stepping_down(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::SteppingDown { lease: "L".into(), owner: "a".into(), fence: 7 })
    }

    fn judge(events: &[Ev]) -> Vec<u64> {
        lease_work_restarts_follow_the_policy(events, steady_clocks(1_000)).iter().map(|v| v.t_us / 1000).collect()
    }

    #[test]
    fn restarts_keep_their_backoff() {
        let policy = Some((100_000, 400_000));
        // Restart 1 waits 50..100 ms, restart 2 100..200 ms, restart 4 capped at 200..400 ms.
        let good = [
            started(policy),
            held(10),
            ended(100, true),
            restarting(100, 1, true),
            restarted(180),
            ended(300, false),
            restarting(300, 2, false),
            restarted(450),
        ];
        assert_eq!(judge(&good), Vec::<u64>::new());
        // No backoff: restarted at once.
        assert_eq!(
            judge(&[started(policy), held(10), ended(100, false), restarting(100, 1, false), restarted(101)]),
            [101]
        );
        // The backoff ignored: restarted a whole second later while held.
        assert_eq!(
            judge(&[started(policy), held(10), ended(100, false), restarting(100, 1, false), restarted(1100)]),
            [1100]
        );
        // Never restarted while held: judged at the history's end.
        assert_eq!(judge(&[started(policy), held(10), ended(100, false), restarting(100, 1, false), held(900)]), [900]);
        // A renewal in flight when the restart fell due holds the driver: the restart follows it.
        let renewed = at(
            400,
            LeaseEvent::Renewed {
                lease: "L".into(),
                owner: "a".into(),
                fence: 7,
                took_us: 350_000,
                belief_us: 900_000,
            },
        );
        let held_up =
            [started(policy), held(10), ended(100, false), restarting(100, 1, false), renewed, restarted(400)];
        assert_eq!(judge(&held_up), Vec::<u64>::new());
        // The restart count and the panic flag must say what happened.
        assert_eq!(judge(&[started(policy), held(10), ended(100, true), restarting(100, 1, false)]), [100]);
        assert_eq!(judge(&[started(policy), held(10), ended(100, true), restarting(100, 2, true)]), [100]);
    }

    #[test]
    fn a_step_down_ends_the_judging_and_no_restart_follows_it() {
        let policy = Some((100_000, 400_000));
        // The deadline came first: the owner stepped down, nothing restarts.
        assert_eq!(judge(&[started(policy), held(10), ended(100, false), stepping_down(100)]), Vec::<u64>::new());
        // A restart after the step-down: work for a grant the owner left.
        let late = [
            started(policy),
            held(10),
            ended(100, false),
            restarting(100, 1, false),
            stepping_down(120),
            restarted(180),
        ];
        assert_eq!(judge(&late), [180]);
    }

    #[test]
    fn the_step_down_policy_steps_down_and_never_restarts() {
        assert_eq!(judge(&[started(None), held(10), ended(100, false), stepping_down(100)]), Vec::<u64>::new());
        assert_eq!(judge(&[started(None), held(10), ended(100, false), restarting(100, 1, false)]), [100]);
        assert_eq!(judge(&[started(None), held(10), ended(100, false), restarted(300)]), [300, 300]);
    }
}
