//! R24: a replicated map's store attempt reports no longer than its apply loop has been at it,
//! judged at each attempt's outcome.
//!
//! One task, the map's apply loop, opens its feed and reads its snapshots, and emits every
//! event of the map but the waiters' (`waiter_armed`, `waiter_woken`, `waiter_cancelled`,
//! `wait_returned`, from the callers). So each attempt (`watch_opened`, `watch_failed`,
//! `snapshot_failed`, and the snapshot read a `resynced` reports) began after the loop's
//! previous event of that map, and its `took_us` is no longer than the running time since,
//! at the clocks' fastest rate with their early slack (a clock jump excused). One measured from
//! an earlier start lies: a resync-latency dashboard that reads seconds for a read of
//! milliseconds during an outage (blind-spot hunt, round 27, B #16, MC272: a snapshot retry
//! loop's start taken once, before its first attempt).
//!
//! A node's crash or restart ends the judging of its maps.

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use crate::cadence::Clocks;
use crate::{Entry, Fact, Span, Violation};

/// R24 over keel's rmap events: see the module's doc. The first 20 violations.
pub fn rmap_attempts_report_their_own_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    // (node, map) → the instant of the apply loop's latest event
    let mut latest: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            latest.retain(|k, _| &k.0 != node);
            continue;
        }
        use RmapEvent as R;
        let Some(ev) = e.rmap() else { continue };
        let Some(map) = crate::apply_loop_map(ev) else { continue };
        let took = match ev {
            R::WatchOpened { took_us, .. } => Some((*took_us, "a watch open")),
            R::WatchFailed { took_us, .. } => Some((*took_us, "a failed watch open")),
            R::SnapshotFailed { took_us, .. } => Some((*took_us, "a failed snapshot")),
            R::Resynced { took_us, .. } => Some((*took_us, "a resync's snapshot read")),
            _ => None,
        };
        let since = latest.insert((node.clone(), map), t);
        if let (Some((took_us, what)), Some(since)) = (took, since)
            && clocks.longest_local(node, since, t).is_some_and(|most| took_us > most)
            && v.len() < 20
        {
            v.push(Violation::new(
                "R24",
                t,
                format!(
                    "{node}: map {map}: {what} reported it took {took_us} µs, but the apply loop's previous event was {running} µs before its end",
                    running = t - since
                ),
            ));
        }
    }
    v
}

/// R24's other side: a map's watch open or snapshot that failed by its timeout took the map's
/// op timeout (`started`'s `op_timeout_us`), judged at its `watch_failed` or `snapshot_failed`.
///
/// The cut and the measure are on the same clock, the map's, so no rate slack applies (a
/// millisecond for rounding). A store call cut sooner gives up on a store slower than the cut
/// but within the timeout the map was configured to: its replica never resyncs from such a
/// store (blind-spot hunt, round 33, B #11: snapshots cut at the backoff's cap). A node's crash
/// or restart ends the judging of its maps.
pub fn rmap_timeouts_take_the_op_timeout<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, map) → its op timeout
    let mut timeouts: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            timeouts.retain(|k, _| &k.0 != node);
            continue;
        }
        use RmapEvent as R;
        let (map, error, took_us, what) = match e.rmap() {
            Some(R::Started { map, op_timeout_us, .. }) => {
                timeouts.insert((node.clone(), crate::plain(map)), *op_timeout_us);
                continue;
            }
            Some(R::WatchFailed { map, error, took_us }) => (map, error, *took_us, "watch open"),
            Some(R::SnapshotFailed { map, error, took_us }) => (map, error, *took_us, "snapshot"),
            _ => continue,
        };
        let Some(&bound) = timeouts.get(&(node.clone(), crate::plain(map))) else { continue };
        if crate::timed_out_short(crate::plain(error), took_us, bound) && v.len() < 20 {
            v.push(Violation::new(
                "R24",
                t,
                format!(
                    "{node}: map {map}: a {what} timed out after {took_us} µs, short of the map's op timeout of {bound} µs"
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
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    fn failed(t_ms: u64, took_ms: u64) -> Ev {
        at(t_ms, RmapEvent::SnapshotFailed { map: "m".into(), error: "x".into(), took_us: took_ms * 1000 })
    }

    fn opened(t_ms: u64, took_ms: u64) -> Ev {
        at(t_ms, RmapEvent::WatchOpened { map: "m".into(), took_us: took_ms * 1000 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        at_ms(&rmap_attempts_report_their_own_time(h, crate::steady_clocks(2_000)))
    }

    #[test]
    fn attempts_fit_since_the_previous_event() {
        assert!(judge(&[opened(10, 5), failed(40, 25), opened(200, 3), failed(230, 20)]).is_empty());
    }

    #[test]
    fn an_attempt_measured_from_an_earlier_start_is_caught() {
        // The second failure reports the loop's whole retry (backoff included) as its read.
        assert_eq!(judge(&[opened(10, 5), failed(40, 25), opened(200, 3), failed(230, 220)]), [("R24", 230)]);
    }

    #[test]
    fn a_timeout_takes_the_op_timeout() {
        let started = at(
            0,
            RmapEvent::Started {
                map: "m".into(),
                retry_min_us: 10_000,
                retry_max_us: 400_000,
                anti_entropy_us: 0,
                op_timeout_us: 500_000,
            },
        );
        let timed_out = |t_ms, took_ms: u64| {
            let error = "store operation map_snapshot timed out (outcome unknown)".into();
            at(t_ms, RmapEvent::SnapshotFailed { map: "m".into(), error, took_us: took_ms * 1000 })
        };
        let judge = |h: &[Ev]| at_ms(&rmap_timeouts_take_the_op_timeout(h));
        assert!(
            judge(&[started.clone(), timed_out(600, 500), failed(700, 30)]).is_empty(),
            "a refusal may come at once"
        );
        assert_eq!(judge(&[started, timed_out(500, 400)]), [("R24", 500)], "cut at the backoff's cap");
    }

    #[test]
    fn a_callers_event_does_not_shorten_the_loops_time() {
        let armed = at(35, RmapEvent::WaiterArmed { map: "m".into(), rev: 3, parked: true });
        assert!(judge(&[opened(10, 5), armed, failed(40, 25)]).is_empty());
    }
}
