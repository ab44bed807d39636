//! Coverage goals judged on what a fault did, not on what the plan told the nemesis to do.
//!
//! A goal judged on a plan's windows ("a renewal inside a reply-delay window") stays reached
//! when the simulator's own fault machinery breaks and does less than the plan says. Blind-spot
//! hunt 32 A planted such bugs in the simulator: a roll-back that kept every write (or lost all
//! of them), a lost reply drawn before its request applied, a reply delay held on the request
//! instead of the reply, a one-way cut the wrong way round. Every sweep passed with every goal
//! reached; only stale corpus entries saw them, and a user's own `Sim` has no corpus. These
//! goals read what the store and the world recorded at the fault's own instant, so a fault that
//! stops doing its job fails the sweep that asked for it ([`crate::harness::Sim::fault_effects`]).

use std::collections::BTreeMap;

use crate::check::Coverage;
use crate::history::{Event, ServerEv, Who, WorldEv};
use crate::plan::FaultKind;

/// Each fault kind's goals: what a sweep that draws the kind must see it do at least once.
const EFFECTS: &[(FaultKind, &str)] = &[
    (FaultKind::StoreUnavailable, "requests_refused_while_loading"),
    (FaultKind::LatencySpike, "requests_slowed_by_a_spike"),
    (FaultKind::ReplyLoss, "reply_lost_after_apply"),
    (FaultKind::ReplyDelay, "reply_held_after_apply"),
    (FaultKind::NodeLatency, "request_and_reply_slowed_unequally"),
    (FaultKind::StoreRollback, "rollback_kept_some_writes_lost_others"),
    (FaultKind::Partition, "cut_both_ways_served_none"),
    (FaultKind::PartitionOneWay, "cut_to_store_served_none"),
    (FaultKind::PartitionOneWay, "cut_from_store_served_requests"),
    (FaultKind::ClockJump, "jump_moved_the_clock_by_its_delta"),
    (FaultKind::ClockDrift, "drifted_clock_woke_sleepers_at_their_deadline"),
];

/// The goals of the fault kinds in `kinds`, in a fixed order.
pub fn goals(kinds: &[FaultKind]) -> Vec<&'static str> {
    EFFECTS.iter().filter(|(k, _)| kinds.contains(k)).map(|(_, g)| *g).collect()
}

/// One node's cut by the store, from its `partition` to its `partition_healed`.
struct Cut {
    dir: String,
    /// Another cut of the node overlapped this one: which one a heal ended is unknown.
    overlapped: bool,
    /// The node crashed, paused or stopped during the cut: it may have sent nothing.
    disturbed: bool,
}

/// The effect goals `events` reached (of every kind: the caller keeps the ones it asked for).
pub fn reached(events: &[Event]) -> Coverage {
    let mut c = Coverage::new();
    let mut cuts: BTreeMap<Who, Vec<Cut>> = BTreeMap::new();
    // Per node, the delta of its last planned jump (its `clock_jumped` follows at once).
    let mut last_jump: BTreeMap<Who, i64> = BTreeMap::new();
    for e in events {
        if let Some(s) = e.server() {
            match s {
                ServerEv::ReplyDropped { applied: true, .. } => {
                    c.insert("reply_lost_after_apply");
                }
                ServerEv::Held { before_ms, after_ms, delay_ms, applied: true, .. } => {
                    if *delay_ms > 0 {
                        c.insert("reply_held_after_apply");
                    }
                    if before_ms != after_ms {
                        c.insert("request_and_reply_slowed_unequally");
                    }
                }
                _ => {}
            }
            continue;
        }
        let Some(w) = e.world() else { continue };
        match w {
            WorldEv::RolledBack { kept: true, lost: true } => {
                c.insert("rollback_kept_some_writes_lost_others");
            }
            WorldEv::StoreAnswering { refused } if *refused > 0 => {
                c.insert("requests_refused_while_loading");
            }
            WorldEv::LatencySpikeEnded { slowed } if *slowed > 0 => {
                c.insert("requests_slowed_by_a_spike");
            }
            // A jump moved the clock by the plan's delta while sleeps waited on it.
            WorldEv::ClockJumped { moved_ms, sleepers, .. }
                if *sleepers > 0 && last_jump.get(&e.node) == Some(moved_ms) =>
            {
                c.insert("jump_moved_the_clock_by_its_delta");
            }
            WorldEv::ClockJump { delta_ms } => {
                last_jump.insert(e.node, *delta_ms);
            }
            WorldEv::ClockDriftEnded { on_time } if *on_time > 0 => {
                c.insert("drifted_clock_woke_sleepers_at_their_deadline");
            }
            WorldEv::Partition { node, dir, .. } => {
                let open = cuts.entry(*node).or_default();
                let overlapped = !open.is_empty();
                open.iter_mut().for_each(|cut| cut.overlapped = true);
                open.push(Cut { dir: dir.clone(), overlapped, disturbed: false });
            }
            WorldEv::NodeCrash {} | WorldEv::NodePause {} | WorldEv::NodeStop {} => {
                cuts.entry(e.node).or_default().iter_mut().for_each(|cut| cut.disturbed = true);
            }
            WorldEv::PartitionHealed { node, served } => {
                let Some(open) = cuts.get_mut(node) else { continue };
                let Some(cut) = open.pop() else { continue };
                if cut.overlapped {
                    open.iter_mut().for_each(|c| c.overlapped = true);
                    continue;
                }
                match (cut.dir.as_str(), *served) {
                    ("Both", false) if !cut.disturbed => c.insert("cut_both_ways_served_none"),
                    ("ToStore", false) if !cut.disturbed => c.insert("cut_to_store_served_none"),
                    ("FromStore", true) => c.insert("cut_from_store_served_requests"),
                    _ => false,
                };
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::at;

    fn cut(dir: &str, served: bool, between: Option<WorldEv>) -> Vec<Event> {
        let n = Who::Node(1);
        let mut h = vec![at(100, Who::Nemesis, WorldEv::Partition { node: n, dir: dir.into(), ms: 500 })];
        h.extend(between.map(|w| at(300, n, w)));
        h.push(at(600, Who::Nemesis, WorldEv::PartitionHealed { node: n, served }));
        h
    }

    #[test]
    fn a_cut_reaches_its_goal_only_when_it_did_what_its_direction_says() {
        assert!(reached(&cut("ToStore", false, None)).contains("cut_to_store_served_none"));
        assert!(reached(&cut("ToStore", true, None)).is_empty(), "requests got through a cut towards the store");
        assert!(reached(&cut("ToStore", false, Some(WorldEv::NodePause {}))).is_empty(), "a frozen node sends nothing");
        assert!(reached(&cut("FromStore", true, None)).contains("cut_from_store_served_requests"));
        assert!(reached(&cut("FromStore", false, None)).is_empty(), "no request got through a cut of replies");
        assert!(reached(&cut("Both", false, None)).contains("cut_both_ways_served_none"));
    }

    #[test]
    fn overlapping_cuts_of_one_node_reach_nothing() {
        let n = Who::Node(0);
        let h = vec![
            at(100, Who::Nemesis, WorldEv::Partition { node: n, dir: "ToStore".into(), ms: 500 }),
            at(200, Who::Nemesis, WorldEv::Partition { node: n, dir: "FromStore".into(), ms: 100 }),
            at(300, Who::Nemesis, WorldEv::PartitionHealed { node: n, served: true }),
            at(600, Who::Nemesis, WorldEv::PartitionHealed { node: n, served: false }),
        ];
        assert!(reached(&h).is_empty());
    }

    #[test]
    fn replies_count_only_for_requests_the_store_applied() {
        let to = Who::Node(2);
        let lost = |applied| vec![at(10, Who::Store, ServerEv::ReplyDropped { to, applied })];
        assert!(reached(&lost(true)).contains("reply_lost_after_apply"));
        assert!(reached(&lost(false)).is_empty());
        let held = |before_ms, after_ms, delay_ms, applied| {
            reached(&[at(10, Who::Store, ServerEv::Held { to, before_ms, after_ms, delay_ms, applied })])
        };
        assert!(held(0, 0, 40, true).contains("reply_held_after_apply"));
        assert!(held(0, 0, 40, false).is_empty(), "a refused request's reply");
        assert!(held(30, 5, 0, true).contains("request_and_reply_slowed_unequally"));
        assert!(!held(30, 30, 0, true).contains("request_and_reply_slowed_unequally"));
    }

    #[test]
    fn a_roll_back_counts_when_it_kept_some_and_lost_some() {
        let rb = |kept, lost| reached(&[at(10, Who::Nemesis, WorldEv::RolledBack { kept, lost })]);
        assert!(rb(true, true).contains("rollback_kept_some_writes_lost_others"));
        assert!(rb(true, false).is_empty(), "a roll-back that lost nothing");
        assert!(rb(false, true).is_empty(), "a roll-back to an empty store");
    }

    #[test]
    fn a_refusal_window_and_a_spike_count_when_they_met_a_request() {
        let at_end = |w: WorldEv| reached(&[at(10, Who::Nemesis, w)]);
        assert!(at_end(WorldEv::StoreAnswering { refused: 3 }).contains("requests_refused_while_loading"));
        assert!(at_end(WorldEv::StoreAnswering { refused: 0 }).is_empty());
        assert!(at_end(WorldEv::LatencySpikeEnded { slowed: 1 }).contains("requests_slowed_by_a_spike"));
        assert!(at_end(WorldEv::LatencySpikeEnded { slowed: 0 }).is_empty());
    }

    #[test]
    fn a_jump_counts_when_it_moved_the_clock_by_its_delta_and_a_drift_when_sleeps_kept_it() {
        let n = Who::Node(0);
        let jump = |delta_ms, moved_ms, sleepers| {
            reached(&[
                at(10, n, WorldEv::ClockJump { delta_ms }),
                at(10, n, WorldEv::ClockJumped { moved_ms, sleepers, rate_ppm: 1_000_000 }),
            ])
        };
        assert!(jump(-1_500, -1_500, 2).contains("jump_moved_the_clock_by_its_delta"));
        assert!(jump(2_000, 2, 2).is_empty(), "a 2 s jump that moved the clock 2 ms");
        assert!(jump(2_000, 2_000, 0).is_empty(), "a jump with nothing waiting on the clock");
        let drift = |on_time| reached(&[at(10, n, WorldEv::ClockDriftEnded { on_time })]);
        assert!(drift(4).contains("drifted_clock_woke_sleepers_at_their_deadline"));
        assert!(drift(0).is_empty());
    }

    #[test]
    fn the_goals_follow_the_kinds() {
        assert_eq!(goals(&[FaultKind::NodeCrash]), Vec::<&str>::new());
        assert_eq!(goals(&[FaultKind::PartitionOneWay]).len(), 2);
        assert_eq!(goals(&FaultKind::ALL).len(), EFFECTS.len());
    }
}
