//! **R14**: `ReplicatedMap::joined()` returns once the map joined, not before, and at once.
//!
//! An application waits for `joined()` before it trusts reads (docs/rmap.md). The map's join is
//! its `joined` event (the first snapshot loaded). The scenario's nodes await `joined()` from the
//! start (`join_awaited`) and record what it returned and what the map said right after, in the
//! same poll (`join_returned`). Judged at the instant:
//! - a `joined()` that returns `Ok` comes after the map's `joined` in the node's life, with the
//!   map saying it is joined, and its key count (`len()`) the one its snapshot holds: a join
//!   reported early lets the application read an empty or partial map as the truth;
//! - a `joined()` that returns `Ok` returns the revision the replica is at (its last `joined`,
//!   `applied` or `resynced` in the node's life): a revision read before the join (0) or kept
//!   from an earlier poll tells the application it has seen less than it has (blind-spot hunt,
//!   round 22, #45);
//! - a `joined()` that fails does so only once the node's stop was asked (the map closed);
//! - a `joined()` awaited when the map joins returns within 2 ms of running time (frozen time
//!   not counted): a missed wake-up leaves the application waiting on a map that is ready.
//!
//! A node's crash or restart ends its judging.
//!
//! **R15**: `ReplicatedMap::syncs()` counts the map's loads: the join and every resync. The
//! driver bumps it in the same poll as the load's `joined` or `resynced`, so each of the
//! scenario's probes (`probe`, every `PROBE_MS`, which reads it) must see exactly the loads of
//! its node's life so far. A count that stops rising (blind-spot hunt, round 18, A #10: it
//! counted the join only) tells an operator, or a test waiting on it, that the map never
//! resynced.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::RmapEvent;
use keel_checks::reach;

use super::RunView;
use super::rmap::{Rec, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// Running time a `joined()` has to return once its map joined.
const JOINED_RETURNS_US: u64 = 2_000;

/// R14 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    let mut joined: BTreeSet<Who> = BTreeSet::new();
    // node → the replica's revision: its last join, applied change or resync
    let mut at: BTreeMap<Who, u64> = BTreeMap::new();
    let mut awaiting: BTreeSet<Who> = BTreeSet::new();
    // node → when its `joined()` is due back
    let mut due: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    let mut say = |t: u64, why: String| {
        if v.len() < 20 {
            v.push(Violation::new("R14", t, why));
        }
    };
    let late = |n: Who| {
        format!("{n}: the map joined, and the application's joined() has not returned {JOINED_RETURNS_US} µs later")
    };
    for e in run.events {
        let n = e.node;
        if let Some(&by) = due.get(&n)
            && e.t_us > by
        {
            due.remove(&n);
            awaiting.remove(&n);
            say(by, late(n));
        }
        match (e.rmap(), e.world(), rec(e)) {
            (Some(RmapEvent::Applied { rev, .. } | RmapEvent::Resynced { rev, .. }), ..) => {
                at.insert(n, *rev);
            }
            (Some(RmapEvent::Joined { rev, .. }), ..) => {
                at.insert(n, *rev);
                joined.insert(n);
                if awaiting.contains(&n) {
                    due.insert(n, reach(e.t_us, JOINED_RETURNS_US, &run.timeline.frozen(n).collect::<Vec<_>>()));
                }
            }
            (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => {
                joined.remove(&n);
                awaiting.remove(&n);
                due.remove(&n);
                at.remove(&n);
            }
            (.., Some(Rec::JoinAwaited {})) => {
                awaiting.insert(n);
            }
            (.., Some(Rec::JoinReturned { ok, rev, loaded, keys, snapshot_keys })) => {
                awaiting.remove(&n);
                due.remove(&n);
                let stopping =
                    run.timeline.life_at(n, e.t_us).and_then(|l| l.stop_requested).is_some_and(|s| s <= e.t_us);
                if *ok && !joined.contains(&n) {
                    say(e.t_us, format!("{n}: joined() returned revision {rev} before the map joined"));
                } else if *ok && (!loaded || keys != snapshot_keys) {
                    say(
                        e.t_us,
                        format!(
                            "{n}: joined() returned revision {rev}, and right after the map said joined={loaded} with {keys} keys where its snapshot held {snapshot_keys}"
                        ),
                    );
                } else if *ok && at.get(&n) != Some(rev) {
                    let replica = at.get(&n).copied().unwrap_or(0);
                    say(e.t_us, format!("{n}: joined() returned revision {rev}; the replica was at {replica}"));
                } else if !ok && !stopping {
                    say(e.t_us, format!("{n}: joined() failed while nobody stopped the node"));
                }
            }
            _ => {}
        }
    }
    for (n, by) in due {
        if by < run.end_us {
            say(by, late(n));
        }
    }
    v
}

/// R15 over the run's events: see the module's doc. The first 20 violations.
pub fn syncs_count_loads(run: &RunView<'_>) -> Vec<Violation> {
    let mut loads: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.rmap(), e.world(), rec(e)) {
            (Some(RmapEvent::Joined { .. } | RmapEvent::Resynced { .. }), ..) => *loads.entry(n).or_default() += 1,
            (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => {
                loads.remove(&n);
            }
            (.., Some(Rec::Probe { syncs, .. })) => {
                let seen = loads.get(&n).copied().unwrap_or(0);
                if *syncs != seen && v.len() < 20 {
                    v.push(Violation::new(
                        "R15",
                        e.t_us,
                        format!("{n}: the map's syncs() said {syncs}; it loaded {seen} times (its join and resyncs) in this life"),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}
