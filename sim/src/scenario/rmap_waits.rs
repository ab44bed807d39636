//! **R20**: a map's stop ends every `set_and_wait` still waiting on it. keel's contract
//! (docs/rmap.md): a call in flight when its map stops returns `Closed`, so an application
//! waiting on its write is never left hanging on a map that can no longer wake it. When a node's
//! map stops (`stopped`), each of the node's calls begun and not returned (`saw_start` with no
//! `saw_done`, `saw_err` or `saw_cancelled` yet) must return within the map's op timeout (a call
//! still writing waits out its write) plus 2 ms of running time, frozen time not counted. The op
//! timeout runs on the node's clock: stretched by the slowest clock rate the plan sets, and a call
//! whose node's clock jumped while it was open is not judged (rmapclock seed 1478: a backward jump
//! of 2.4 s, the monotonic clock stalled, held a write begun before the stop 2.1 s). Judged
//! at the call's return, at a crash or restart past the limit, or at the end of the run
//! (blind-spot hunt, round 22, #48: a stop that marks its waiters' registry closed without
//! completing the waiters registered; R3 stops judging a call at its node's stop).
//!
//! And the stop's report: `stopped` counts the waiters it closed (`waiters_closed`). A call is
//! registered in the same poll that begins it, so every call still open at the `stopped` that
//! later returns `Closed` was one of them: their number is at most the count (round 28 B #3
//! counted from the registry the close had just emptied, always 0: an operator never learned
//! that a stop cut calls short). Judged at the `stopped`, once the calls have returned.
//!
//! **R27**: `ReplicatedMap::waiters()` counts the `set_and_wait` calls in flight, judged at each
//! probe (which reads it, `probe`'s `waiters`). keel's waiter registry says what it holds
//! through its events, each emitted in the poll that changes it: a call registers
//! (`waiter_registered`, before its write) and leaves it when its waiter is armed for a write
//! the replica is past (`waiter_armed`, not `parked`), collected by the apply loop
//! (`waiter_woken`; after an unparked arm of a write already lost, the same waiter's), dropped
//! by its caller (`waiter_cancelled`, not `claimed`), or closed with the map (`stopped`). A count
//! that misses the calls still writing (blind-spot hunt, round 37, A #15, MC332: the armed ones
//! only) hides from an operator, or a test waiting on it, the calls a slow store holds up.
//!
//! **R30**: a map's stop completes every call its registry holds, judged at the `stopped`: its
//! `waiters_closed` is the registry's count from the same events as R27's. A call still writing
//! at the stop is registered but not armed; a close that completed the armed waiters only
//! (blind-spot hunt, round 39, B #30, MC365) left it registered, and once its write was
//! acknowledged it parked on a registry nothing would wake again. R20 saw that hang only when a
//! reply came back after the stop (1 seed of 200); the count is wrong at every stop with a call
//! in flight.
//!
//! **R31**: a call's end leaves nothing of it in the registry, judged at each call's return:
//! each `set_and_wait` holds at most one waiter, so once the scenario's call returned, failed or
//! was given up (`saw_done`, `saw_err`, `saw_cancelled`), the registry's count from R27's events
//! is at most the node's calls still open (`saw_start` not yet ended). A wait future that marks
//! its waiter done before it completes (MC397) leaves a cancelled call registered, with no
//! `waiter_cancelled`: R27 reads keel's own events, which the leak keeps consistent with
//! `waiters()`, and the apply loop later collects the orphan when the replica reaches its write
//! (blind-spot hunt, round 42, A #7).

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use super::RunView;
use super::rmap::{Rec, SawError, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// A call not yet returned: when it began, and once its map stopped, (the stop, its limit).
type OpenCall = (u64, Option<(u64, u64)>);

/// Running time past the op timeout a call has to return once its map stopped.
const STOP_RETURN_SLACK_US: u64 = 2_000;

/// R27 over the run's events: see the module's doc. The first 20 violations.
pub fn waiters_count_the_calls(run: &RunView<'_>) -> Vec<Violation> {
    // node → (waiters registered now, the revision of an unparked arm just emitted)
    let mut live: BTreeMap<Who, (u64, Option<u64>)> = BTreeMap::new();
    // node → the scenario's calls begun and not yet ended (R31)
    let mut open: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        if let Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}) = e.world() {
            live.remove(&n);
            open.remove(&n);
            continue;
        }
        if let Some(ev) = e.rmap() {
            let (count, unparked) = live.entry(n).or_default();
            let just_armed = unparked.take();
            match ev {
                RmapEvent::WaiterRegistered { .. } => *count += 1,
                RmapEvent::WaiterArmed { rev, parked: false, .. } => {
                    *count = count.saturating_sub(1);
                    *unparked = Some(*rev);
                }
                // The waiter an unparked arm removed, called lost in the same poll.
                RmapEvent::WaiterWoken { rev, .. } if just_armed == Some(*rev) => {}
                RmapEvent::WaiterWoken { .. } | RmapEvent::WaiterCancelled { claimed: false, .. } => {
                    *count = count.saturating_sub(1);
                }
                RmapEvent::Stopped { waiters_closed, .. } => {
                    // R30: the stop completes every call its registry holds, still writing or not.
                    if *waiters_closed as u64 != *count && v.len() < 20 {
                        v.push(Violation::new(
                            "R30",
                            e.t_us,
                            format!("{n}: the map stopped closing {waiters_closed} waiters while its registry held {count} set_and_wait calls: a call left registered waits on a map that can no longer wake it"),
                        ));
                    }
                    *count = 0;
                }
                _ => {}
            }
            continue;
        }
        match rec(e) {
            Some(Rec::SawStart { .. }) => *open.entry(n).or_default() += 1,
            Some(Rec::SawDone { id, .. } | Rec::SawErr { id, .. } | Rec::SawCancelled { id }) => {
                let calls = open.entry(n).or_default();
                *calls = calls.saturating_sub(1);
                let count = live.get(&n).map_or(0, |l| l.0);
                if count > *calls && v.len() < 20 {
                    v.push(Violation::new(
                        "R31",
                        e.t_us,
                        format!("{n}: set_and_wait {id} ended with {count} waiters registered for {calls} calls still open: an ended call left its waiter behind"),
                    ));
                }
            }
            _ => {}
        }
        if let Some(Rec::Probe { waiters, .. }) = rec(e) {
            let count = live.get(&n).map_or(0, |l| l.0);
            if *waiters != count && v.len() < 20 {
                v.push(Violation::new(
                    "R27",
                    e.t_us,
                    format!("{n}: waiters() said {waiters} while the map's registry held {count} set_and_wait calls"),
                ));
            }
        }
    }
    v
}

/// R20 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>, op_timeout_us: u64) -> Vec<Violation> {
    // The op timeout at the slowest clock rate the plan sets (1.0 in a plan without drift).
    let slowest = crate::keel_rules::clock_rates(run).fold(1.0f64, f64::min).max(1e-3);
    let stretched_us = (op_timeout_us as f64 / slowest) as u64;
    // (node, call) → when it began, and once the map stopped, the limit for its return
    let mut calls: BTreeMap<(Who, &str), OpenCall> = BTreeMap::new();
    // Each `stopped`: (node, when, waiters_closed, calls open then that returned `Closed`), and
    // the calls open at a stop → its index.
    let mut stops: Vec<(Who, u64, usize, usize)> = Vec::new();
    let mut open_at_stop: BTreeMap<(Who, &str), usize> = BTreeMap::new();
    let mut v = Vec::new();
    // A call whose node's clock jumped while it was open waited on a clock that stalled or
    // leapt: its write's timeout is not the limit's.
    let excused = |n: Who, begun: u64, due: u64| crate::keel_rules::clock_jumped(run, &n, begun, due);
    let late = |n: Who, id: &str, (stopped, due): (u64, u64)| {
        Violation::new(
            "R20",
            due,
            format!(
                "{n}: the map stopped at {:.3}s and set_and_wait {id} had not returned {} µs later: a stop that leaves a call waiting",
                stopped as f64 / 1e6,
                due - stopped
            ),
        )
    };
    for e in run.events {
        let n = e.node;
        match (e.world(), e.rmap(), rec(e)) {
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), ..) => {
                calls.retain(|(node, id), (begun, limit)| {
                    if *node != n {
                        return true;
                    }
                    if let Some(l) = limit.filter(|l| e.t_us > l.1 && !excused(n, *begun, l.1)) {
                        v.push(late(n, id, l));
                    }
                    false
                });
            }
            (_, Some(RmapEvent::Stopped { waiters_closed, .. }), _) => {
                for ((node, id), _) in calls.iter().filter(|((node, _), _)| *node == n) {
                    open_at_stop.insert((*node, id), stops.len());
                }
                stops.push((n, e.t_us, *waiters_closed, 0));
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                let due = keel_checks::reach(e.t_us, stretched_us + STOP_RETURN_SLACK_US, &frozen);
                for (_, (_, limit)) in calls.iter_mut().filter(|((node, _), (_, l))| *node == n && l.is_none()) {
                    *limit = Some((e.t_us, due));
                }
            }
            (.., Some(Rec::SawStart { id, .. })) => {
                calls.insert((n, id.as_str()), (e.t_us, None));
            }
            (.., Some(Rec::SawDone { id, .. } | Rec::SawErr { id, .. } | Rec::SawCancelled { id })) => {
                if let Some(i) = open_at_stop.remove(&(n, id.as_str()))
                    && matches!(rec(e), Some(Rec::SawErr { error: SawError::Closed, .. }))
                {
                    stops[i].3 += 1;
                }
                if let Some((begun, Some(l))) = calls.remove(&(n, id.as_str()))
                    && e.t_us > l.1
                    && !excused(n, begun, l.1)
                {
                    v.push(late(n, id, l));
                }
            }
            _ => {}
        }
    }
    for ((n, id), (begun, limit)) in calls {
        if let Some(l) = limit.filter(|l| l.1 < run.end_us && !excused(n, begun, l.1)) {
            v.push(late(n, id, l));
        }
    }
    for (n, t, counted, closed) in stops {
        if closed > counted {
            v.push(Violation::new(
                "R20",
                t,
                format!("{n}: the map's stop reported {counted} waiters closed, but {closed} calls waiting on it then returned Closed"),
            ));
        }
    }
    v.sort_by_key(|x| x.t_us);
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::AppEv;
    use crate::scenario::test_history::{at, judge};

    fn stopped(t_ms: u64, waiters_closed: usize) -> Event {
        let e = RmapEvent::Stopped { map: "m".into(), waiters_closed };
        at(t_ms, Who::Node(0), Ev::Core(CoreEvent::Rmap(e.to_static())))
    }

    fn saw(t_ms: u64, r: Rec) -> Event {
        at(t_ms, Who::Node(0), Ev::App(AppEv::Rmap(r)))
    }

    /// Two calls waiting at the stop, both ended `Closed`: a count of 2 passes, 0 (round 28
    /// B #3) is R20 at the `stopped`; a call that ended otherwise is not counted.
    #[test]
    fn a_stop_that_miscounts_the_waiters_it_closed_fires_r20() {
        let rule = |h: &[Event]| judge(h, 0, 10_000_000, |run| check(run, 250_000));
        let start = |t, id: &str| saw(t, Rec::SawStart { id: id.into(), until: false });
        let closed = |t, id: &str| saw(t, Rec::SawErr { id: id.into(), error: SawError::Closed });
        let run = |count| rule(&[start(1, "a"), start(2, "b"), stopped(10, count), closed(11, "a"), closed(12, "b")]);
        assert!(run(2).is_empty());
        let v = run(0);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "R20", 10_000), "{v:?}");
        assert!(v[0].detail.contains("reported 0 waiters closed, but 2 calls"), "{}", v[0].detail);
        let cancelled = saw(12, Rec::SawCancelled { id: "b".into() });
        assert!(rule(&[start(1, "a"), start(2, "b"), stopped(10, 1), closed(11, "a"), cancelled]).is_empty());
    }

    /// A call writing across its map's stop returns within the op timeout (250 ms) and 2 ms; one
    /// later is R20 at that limit, unless its node's clock jumped while it was open (the write's
    /// timeout runs on that clock: rmapclock seed 1478).
    #[test]
    fn a_call_late_after_the_stop_fires_r20_unless_its_clock_jumped() {
        let rule = |h: &[Event]| judge(h, 0, 10_000_000, |run| check(run, 250_000));
        let start = saw(1, Rec::SawStart { id: "a".into(), until: true });
        let closed = |t| saw(t, Rec::SawErr { id: "a".into(), error: SawError::Closed });
        assert!(rule(&[start.clone(), stopped(10, 1), closed(262)]).is_empty());
        let v = rule(&[start.clone(), stopped(10, 1), closed(263)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "R20", 262_000), "{v:?}");
        let jump = at(5, Who::Node(0), Ev::World(WorldEv::ClockJump { delta_ms: -2_000 }));
        assert!(rule(&[start, jump, stopped(10, 1), closed(2_100)]).is_empty());
    }

    /// Three calls register; one arms past its write (and is called lost in the same poll),
    /// one is woken by the loop, one is still writing: the registry holds 1, and a probe that
    /// says 0 (MC332) or 2 is R27 at the probe.
    #[test]
    fn a_waiter_count_that_differs_from_the_registry_fires_r27() {
        let rule = |h: &[Event]| judge(h, 0, 10_000_000, waiters_count_the_calls);
        let core = |t, e: RmapEvent<'static>| at(t, Who::Node(0), Ev::Core(CoreEvent::Rmap(e)));
        let reg = |t| core(t, RmapEvent::WaiterRegistered { map: "m".into() });
        let history = |waiters| {
            vec![
                reg(1),
                reg(2),
                reg(3),
                core(4, RmapEvent::WaiterArmed { map: "m".into(), rev: 7, parked: false }),
                core(4, RmapEvent::WaiterWoken { map: "m".into(), rev: 7, lost: true }),
                core(5, RmapEvent::WaiterArmed { map: "m".into(), rev: 9, parked: true }),
                core(6, RmapEvent::WaiterWoken { map: "m".into(), rev: 9, lost: false }),
                saw(7, Rec::Probe { rev: 9, syncs: 1, subs: 0, held: 0, waiters }),
            ]
        };
        assert!(rule(&history(1)).is_empty());
        for wrong in [0, 2] {
            let v = rule(&history(wrong));
            assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "R27", 7_000), "{v:?}");
        }
        // The stop closes every waiter.
        assert!(
            rule(&[reg(1), stopped(2, 1), saw(3, Rec::Probe { rev: 0, syncs: 1, subs: 0, held: 0, waiters: 0 })])
                .is_empty()
        );
    }

    /// Two calls register and one is armed (parked): a stop that closes both passes; one that
    /// closes the armed one only (MC365, round 39 B #30) is R30 at the `stopped`.
    #[test]
    fn a_stop_that_leaves_a_call_registered_fires_r30() {
        let rule = |h: &[Event]| judge(h, 0, 10_000_000, waiters_count_the_calls);
        let core = |t, e: RmapEvent<'static>| at(t, Who::Node(0), Ev::Core(CoreEvent::Rmap(e)));
        let reg = |t| core(t, RmapEvent::WaiterRegistered { map: "m".into() });
        let history = |closed| {
            vec![
                reg(1),
                reg(2),
                core(3, RmapEvent::WaiterArmed { map: "m".into(), rev: 9, parked: true }),
                stopped(5, closed),
            ]
        };
        assert!(rule(&history(2)).is_empty());
        let v = rule(&history(1));
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "R30", 5_000), "{v:?}");
    }
}
