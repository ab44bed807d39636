//! **R9**: a replicated map hears its node's graceful stop at once.
//!
//! The scenario's maps are started with the node's token as their parent, so a graceful stop
//! (`node_stop`) cancels each map's driver. Every wait of the driver (the feed, a snapshot or a
//! watch being opened, the backoff between their retries) listens for it, and what it does on
//! the way out (closing the waiters and subscribers) does not wait: its `stopped` comes within
//! [`STOP_HEARD_SLACK_US`] of running time of the `node_stop`, frozen time not counted. A
//! backoff that sleeps through the stop (MC60, blind-spot hunt, round 7, #6) holds the map's
//! stop, and the node's shutdown behind it, for up to `retry_max`.
//!
//! Judged for a map that had started in the node's life (an rmap event before the stop); a
//! crash or a restart past the limit is late too (the stop was not heard by then), one before it
//! ends the wait; one still open at the end of the run is judged there.
//!
//! **R26**: `ReplicatedMap::stop()` returns only once the map's apply loop ended. Its doc
//! promises that pending `set_and_wait` calls fail `Closed` and subscriptions end: an
//! application that stops the map and then writes, or drops its store, relies on the loop being
//! gone. The scenario records `stop_returned` in the poll the node's `map.stop()` returns in
//! (the node's token, the map's parent, was cancelled just before); the map's `stopped`, the
//! loop's last event, must precede it in the node's life. A stop that took a token already
//! cancelled (by the parent) for a loop already ended returned at once, with the loop still
//! running (blind-spot hunt, round 37, A #9, MC330): R9 saw the loop stop in time, R22's late
//! call came only after the node's tasks were joined, by when the loop had ended.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::Span;
use keel::observe::RmapEvent;

use super::RunView;
use super::rmap::{Rec, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// How soon a map hears its node's stop, in simulated time: keel's driver stops at the request's
/// instant; its smallest backoff in the scenario is 50 ms.
const STOP_HEARD_SLACK_US: u64 = 2_000;

/// R9 over the run's events.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    let mut started: BTreeSet<Who> = BTreeSet::new();
    let mut stopped: BTreeSet<Who> = BTreeSet::new();
    // node → (stop asked, due)
    let mut open: BTreeMap<Who, (u64, u64)> = BTreeMap::new();
    let frozen = |n: Who| -> Vec<Span> { run.timeline.frozen(n).collect() };
    let late = |n: Who, (asked, due): (u64, u64)| {
        Violation::new(
            "R9",
            due,
            format!(
                "{n}: stop requested at {:.3}s, the replicated map not stopped within {} µs of it: the map does not hear its stop",
                asked as f64 / 1e6,
                STOP_HEARD_SLACK_US
            ),
        )
    };
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.world(), e.rmap()) {
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), _) => {
                if let Some(o) = open.remove(&n).filter(|o| e.t_us > o.1) {
                    v.push(late(n, o));
                }
                started.remove(&n);
                stopped.remove(&n);
            }
            (Some(WorldEv::NodeStop {}), _) if started.contains(&n) && !stopped.contains(&n) => {
                open.entry(n).or_insert((e.t_us, keel_checks::reach(e.t_us, STOP_HEARD_SLACK_US, &frozen(n))));
            }
            (_, Some(RmapEvent::Stopped { .. })) => {
                if let Some(o) = open.remove(&n).filter(|o| e.t_us > o.1) {
                    v.push(late(n, o));
                }
                stopped.insert(n);
            }
            (_, Some(_)) => {
                started.insert(n);
            }
            _ => {}
        }
    }
    v.extend(open.into_iter().filter(|(_, o)| run.end_us > o.1).map(|(n, o)| late(n, o)));
    v.truncate(20);
    v
}

/// R26 over the run's events: a node's `stop_returned` comes after its map's `stopped` in the
/// node's life. The first 20 violations.
pub fn stop_waits_for_the_loop(run: &RunView<'_>) -> Vec<Violation> {
    let mut stopped: BTreeSet<Who> = BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.world(), e.rmap(), rec(e)) {
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), ..) => {
                stopped.remove(&n);
            }
            (_, Some(RmapEvent::Stopped { .. }), _) => {
                stopped.insert(n);
            }
            (.., Some(Rec::StopReturned {})) if !stopped.contains(&n) => v.push(Violation::new(
                "R26",
                e.t_us,
                format!("{n}: the replicated map's stop() returned while its apply loop still runs (no `stopped` yet)"),
            )),
            _ => {}
        }
    }
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::test_history::{at, judge};

    fn rmap(t_ms: u64, e: RmapEvent<'_>) -> Event {
        at(t_ms, Who::Node(0), Ev::Core(CoreEvent::Rmap(e.to_static())))
    }

    fn world(t_ms: u64, e: WorldEv) -> Event {
        at(t_ms, Who::Node(0), e)
    }

    #[test]
    fn a_stop_that_returns_before_the_loop_ended_fires_r26() {
        use crate::scenario::AppEv;
        let rule = |h: &[Event]| judge(h, 0, 100_000, stop_waits_for_the_loop);
        let stopped = rmap(10, RmapEvent::Stopped { map: "m".into(), waiters_closed: 0 });
        let returned = |t| at(t, Who::Node(0), Ev::App(AppEv::Rmap(Rec::StopReturned {})));
        assert!(rule(&[stopped.clone(), returned(10)]).is_empty());
        let v = rule(&[returned(10)]);
        assert_eq!((v.len(), v[0].invariant), (1, "R26"), "{v:?}");
        // A `stopped` of an earlier life does not count.
        assert_eq!(rule(&[stopped, world(11, WorldEv::NodeStart {}), returned(12)]).len(), 1);
    }

    #[test]
    fn a_map_that_stops_after_its_node_stop_fires_r9() {
        let rule = |h: &[Event]| judge(h, 0, 100_000, check);
        let joined = rmap(1, RmapEvent::Joined { map: "m".into(), rev: 1, keys: 0, restarted: false });
        let stopped = |t| rmap(t, RmapEvent::Stopped { map: "m".into(), waiters_closed: 0 });
        let stop = world(10, WorldEv::NodeStop {});
        assert!(rule(&[joined.clone(), stop.clone(), stopped(10)]).is_empty());
        // Stopped 40 ms after the request (a backoff slept through it): late at the limit.
        let v = rule(&[joined.clone(), stop.clone(), stopped(50)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "R9", 12_000), "{v:?}");
        // Never stopped: judged at the end of the run, or at a crash past the limit.
        assert_eq!(rule(&[joined.clone(), stop.clone()]).len(), 1);
        assert_eq!(rule(&[joined.clone(), stop.clone(), world(30, WorldEv::NodeCrash {})]).len(), 1);
        // A crash within the limit ends the wait; a map that never started is not judged.
        assert!(rule(&[joined, stop.clone(), world(11, WorldEv::NodeCrash {})]).is_empty());
        assert!(rule(&[stop, stopped(50)]).is_empty());
    }
}
