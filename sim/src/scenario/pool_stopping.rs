//! P12, a graceful stop's stopping mark judged at the instant (blind-spot hunt, round 4, second
//! half, #6): a worker that reports `WorkerStopping` with runs going sends its next keep-alive,
//! marked `stopping`, at once, so dispatchers and cleanups stop giving it jobs it would only hand
//! back.
//!
//! The worker's machine asks for that beat at the stop itself (`WorkerMachine::on_stop`), before
//! it hears anything else; the beat's `Keepalive` event follows its read of store time, one
//! round trip later. P3's pick cannot see a mark written late: it judges the marks the store
//! applied, and a late one condemns nothing. So P12 wants the worker's first `Keepalive` after
//! its `WorkerStopping` within [`STOPPING_BEAT_US`] of the stop, and marked `stopping`; judged
//! at that deadline (or at the late or unmarked beat, whichever comes first).
//!
//! Not judged: a stop with no run going (the drain ends at once: hand back and deregister, no
//! beat). Excused: the worker's own fence by the deadline (a fence at the stop cancels the beat;
//! one while the time read hangs may come first), its node crashed or frozen, and anything that
//! can hold a round trip to the store back beyond the bound: the store down or refusing,
//! latency, reply loss or delay, the node's partition or latency, killed connections, each from
//! its start until [`RECONNECT_SETTLE_US`] after its end (a reconnect after it).

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{Event, ServerEv, Who, WorldEv, plain};

/// How long after a worker's stop its stopping beat may be sent: one round trip to the store
/// (the beat's read of store time; 2–10 ms undisturbed) and the scheduling around it (a node's
/// workers stop together). Calibrated on unmutated pool seeds 0..300: a bound of 11 ms fails 4,
/// 20 ms none (poolfeed too); MC39 is caught as often at 11 ms as at 50 ms (13 of 0..50).
pub const STOPPING_BEAT_US: u64 = 50_000;

/// How long a fault on the way to the store excuses a late beat after it ended: the client's
/// reconnect and the requests queued meanwhile.
pub const RECONNECT_SETTLE_US: u64 = 1_000_000;

/// A stop waiting for its stopping beat.
struct Stop {
    node: Who,
    t0: u64,
    excused: bool,
}

/// P12 (see the module's doc).
pub fn stopping_beats(run: &RunView<'_>) -> Vec<Violation> {
    let events = run.events;
    let disturbed = store_path_disturbed(events, run.end_us);
    let late = |s: &Stop, w: &str, what: &str| {
        let window = Span { start: s.t0, end: s.t0 + STOPPING_BEAT_US + 1 };
        let held_back = disturbed
            .iter()
            .filter(|(n, _)| n.is_none_or(|n| n == s.node))
            .map(|(_, span)| *span)
            .chain(run.timeline.frozen(s.node))
            .any(|d| d.overlap(&window).is_some());
        (!s.excused && !held_back).then(|| {
            Violation::new(
                "P12",
                s.t0 + STOPPING_BEAT_US,
                format!("{w} ({}) stopped with runs going at {} ms: {what}", s.node, s.t0 / 1000),
            )
        })
    };
    let mut stops: BTreeMap<&str, Stop> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let t = e.t_us;
        // Every stop whose deadline passed before this event without its beat.
        let due: Vec<&str> = stops.iter().filter(|(_, s)| s.t0 + STOPPING_BEAT_US < t).map(|(w, _)| *w).collect();
        for w in due {
            if let Some(s) = stops.remove(w) {
                v.extend(late(&s, w, "no stopping beat sent within the bound"));
            }
        }
        if matches!(e.world(), Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {})) {
            stops.retain(|_, s| s.node != e.node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::WorkerStopping { worker, running, .. }) if *running > 0 => {
                stops.insert(plain(worker), Stop { node: e.node, t0: t, excused: false });
            }
            Some(PoolEvent::Fenced { worker, .. }) => {
                if let Some(s) = stops.get_mut(plain(worker)) {
                    s.excused = true;
                }
            }
            Some(PoolEvent::Keepalive { worker, stopping, .. }) => {
                let w = plain(worker);
                if let Some(s) = stops.remove(w)
                    && !stopping
                {
                    v.extend(late(&s, w, "its next keep-alive is not marked stopping"));
                }
            }
            _ => {}
        }
    }
    for (w, s) in stops {
        if s.t0 + STOPPING_BEAT_US < run.end_us {
            v.extend(late(&s, w, "no stopping beat sent within the bound"));
        }
    }
    v.sort_by_key(|x| x.t_us);
    v.truncate(20);
    v
}

/// Spans in which a round trip to the store may be held back beyond [`STOPPING_BEAT_US`]: for
/// one node (`Some`) or every node (`None`), each until [`RECONNECT_SETTLE_US`] after its end.
pub(super) fn store_path_disturbed(events: &[Event], end_us: u64) -> Vec<(Option<Who>, Span)> {
    let mut out = Vec::new();
    let mut store_down: Option<u64> = None;
    // node → (when its first open partition began, how many are open): partitions nest, and
    // one ending leaves the node cut off while another is in force (pool seeds 2003 and 2013:
    // a cut of n1 from 27.6 s outlived one from 22.8 s that ended at 28.2 s, and only the heal
    // at 30 s ended it, with no event of its own).
    let mut partitioned: BTreeMap<Who, (u64, u32)> = BTreeMap::new();
    let mut slowed: Option<u64> = None;
    let settled = |start: u64, end: u64| Span { start, end: end.saturating_add(RECONNECT_SETTLE_US) };
    for e in events {
        let Some(w) = e.world() else { continue };
        let t = e.t_us;
        match w {
            WorldEv::StoreRefusing { ms }
            | WorldEv::LatencySpike { ms, .. }
            | WorldEv::ReplyLoss { ms, .. }
            | WorldEv::ReplyDelay { ms, .. } => out.push((None, settled(t, t + ms * 1000))),
            WorldEv::NodeLatency { node, ms, .. } | WorldEv::AccessDenied { node, ms } => {
                out.push((Some(*node), settled(t, t + ms * 1000)))
            }
            WorldEv::FeedDisconnect {} => out.push((None, settled(t, t))),
            WorldEv::StoreCrash { .. } => store_down = Some(store_down.unwrap_or(t)),
            WorldEv::StoreRestart {} => out.push((None, settled(store_down.take().unwrap_or(t), t))),
            WorldEv::Partition { node, .. } => partitioned.entry(*node).or_insert((t, 0)).1 += 1,
            WorldEv::PartitionHealed { node, .. } => match partitioned.get_mut(node) {
                Some((_, open)) if *open > 1 => *open -= 1,
                _ => {
                    let start = partitioned.remove(node).map_or(t, |(start, _)| start);
                    out.push((Some(*node), settled(start, t)));
                }
            },
            // The heal lifts every fault still in force, without an event of each one's end.
            WorldEv::Heal {} => {
                out.extend(std::mem::take(&mut partitioned).into_iter().map(|(n, (s, _))| (Some(n), settled(s, t))));
                out.extend(slowed.take().map(|s| (None, settled(s, t))));
            }
            WorldEv::NetworkLatency { .. } => slowed = Some(slowed.unwrap_or(t)),
            WorldEv::NetworkLatencyEnded { extra_ms: 0 } => {
                out.push((None, settled(slowed.take().unwrap_or(t), t)));
            }
            _ => {}
        }
    }
    out.extend(store_down.map(|s| (None, Span { start: s, end: end_us.saturating_add(1) })));
    out.extend(slowed.map(|s| (None, Span { start: s, end: end_us.saturating_add(1) })));
    out.extend(partitioned.into_iter().map(|(n, (s, _))| (Some(n), Span { start: s, end: end_us.saturating_add(1) })));
    out
}

/// P66: a worker's beat lands as it announced it. Each keep-alive value the store applies for a
/// worker (not the dead marker) whose store time the worker announced in a `keepalive` event
/// must carry that event's TTL and `stopping` mark, judged at the write. P12 and the drain's
/// rules read the worker's own event, so a beat that announces `stopping` and writes the plain
/// value (blind-spot hunt, round 35, B #14) left every dispatcher and sweep giving a draining
/// worker new jobs while each rule was satisfied. The first 20 violations.
pub fn beats_land_as_announced(events: &[Event]) -> Vec<Violation> {
    let mut announced: BTreeMap<(&str, u64), (u64, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(PoolEvent::Keepalive { worker, ms, ttl_ms, stopping }) = e.pool() {
            announced.insert((plain(worker), *ms), (*ttl_ms, *stopping));
            continue;
        }
        let Some(ServerEv::KeepaliveWritten { worker, value: Some(value), .. }) = e.server() else { continue };
        let Some((ms, ttl_ms, stopping)) = keel::pool::decode::keepalive(value) else { continue };
        let Some(&(want_ttl, want_stopping)) = announced.get(&(worker.as_str(), ms)) else { continue };
        if (ttl_ms != Some(want_ttl) || stopping != want_stopping) && v.len() < 20 {
            v.push(Violation::new(
                "P66",
                e.t_us,
                format!(
                    "worker {worker}'s keep-alive of store time {ms} landed as {value:?}, but it announced a TTL of {want_ttl} ms{}",
                    if want_stopping { " marked stopping" } else { ", not stopping" }
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::{at, judge, pool};

    /// A stopping beat that lands without its mark fires P66 at the write; one that lands as
    /// announced, and a write nobody announced, do not.
    #[test]
    fn a_beat_written_otherwise_than_announced_fires_p66() {
        let written = |t_ms: u64, value: &str| {
            at(
                t_ms,
                Who::Store,
                ServerEv::KeepaliveWritten { worker: "w".into(), value: Some(value.into()), now_ms: t_ms },
            )
        };
        let ok = [beat(1_000, true), written(1_002, "1000|1500|stopping")];
        assert!(beats_land_as_announced(&ok).is_empty());
        let v = beats_land_as_announced(&[beat(1_000, true), written(1_002, "1000|1500")]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P66", 1_002_000)], "{v:?}");
        assert!(v[0].detail.contains("marked stopping"), "{}", v[0].detail);
        assert!(beats_land_as_announced(&[written(1_002, "999|1500")]).is_empty());
    }

    fn p12(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 10_000_000, stopping_beats)
    }

    fn stopping(t_ms: u64, running: usize) -> Event {
        pool(t_ms, PoolEvent::WorkerStopping { worker: "w".into(), running, drain_ms: 750, beat_bound_ms: 500 })
    }

    fn beat(t_ms: u64, stopping: bool) -> Event {
        pool(t_ms, PoolEvent::Keepalive { worker: "w".into(), ms: t_ms, ttl_ms: 1_500, stopping })
    }

    fn with(extra: impl IntoIterator<Item = Event>) -> Vec<Violation> {
        let mut h = vec![at(0, Who::Node(0), WorldEv::NodeStart {}), stopping(1_000, 1)];
        h.extend(extra);
        p12(&h)
    }

    #[test]
    fn a_stop_whose_stopping_beat_waits_for_the_regular_one_fires_p12_at_the_bound() {
        // The beat 300 ms later (the next regular beat, MC39): judged at the bound.
        let v = with([beat(1_300, true)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P12", 1_050_000));
        assert!(v[0].detail.contains("no stopping beat sent within the bound"), "{}", v[0].detail);
        // No beat at all (the runs ended before the next regular beat: hand back, deregister).
        let v = with([pool(1_200, PoolEvent::WorkerStopped { worker: "w".into() })]);
        assert_eq!((v.len(), v[0].t_us), (1, 1_050_000), "{v:?}");
        // Nothing after the stop till the run's end.
        assert_eq!(with([]).len(), 1);
        // A beat in time that is not marked stopping.
        let v = with([beat(1_004, false)]);
        assert_eq!((v.len(), v[0].t_us), (1, 1_050_000), "{v:?}");
        assert!(v[0].detail.contains("not marked stopping"), "{}", v[0].detail);
    }

    #[test]
    fn a_stopping_beat_in_time_or_an_excused_one_is_silent() {
        assert!(with([beat(1_004, true)]).is_empty());
        assert!(with([beat(1_050, true)]).is_empty(), "at the bound itself");
        // Another worker's beat is not this one's.
        let other = pool(1_004, PoolEvent::Keepalive { worker: "x".into(), ms: 1, ttl_ms: 1_500, stopping: false });
        assert_eq!(with([other, beat(1_300, true)]).len(), 1);
        // A stop with nothing running drains nothing: no beat.
        assert!(p12(&[stopping(1_000, 0), pool(1_010, PoolEvent::WorkerStopped { worker: "w".into() })]).is_empty());
        // Its own fence (at the stop, or while the time read hangs).
        assert!(with([pool(1_020, PoolEvent::Fenced { worker: "w".into(), running: 1 })]).is_empty());
        // Its node crashed, or was frozen during the window.
        assert!(with([at(1_010, Who::Node(0), WorldEv::NodeCrash {})]).is_empty());
        let pause = [at(1_030, Who::Node(0), WorldEv::NodePause {}), at(1_400, Who::Node(0), WorldEv::NodeResume {})];
        assert!(with(pause.into_iter().chain([beat(1_401, true)])).is_empty());
        // The way to the store held back: its node partitioned, or latency on its requests,
        // also ending shortly before the stop (the reconnect); another node's is no excuse.
        let cut = |node| {
            [
                at(200, Who::Node(node), WorldEv::Partition { node: Who::Node(node), dir: "Both".into(), ms: 500 }),
                at(700, Who::Node(node), WorldEv::PartitionHealed { node: Who::Node(node), served: false }),
            ]
        };
        assert!(with(cut(0).into_iter().chain([beat(1_300, true)])).is_empty());
        assert_eq!(with(cut(1).into_iter().chain([beat(1_300, true)])).len(), 1);
        let slow = at(1_010, Who::Store, WorldEv::LatencySpike { ms: 100, extra_ms: 200 });
        assert!(with([slow, beat(1_300, true)]).is_empty());
        let after = at(1_100, Who::Store, WorldEv::LatencySpike { ms: 100, extra_ms: 200 });
        assert_eq!(with([after, beat(1_300, true)]).len(), 1, "a fault after the bound excuses nothing");
    }

    /// Pool seeds 2003 and 2013: a partition that began inside another outlives its end, and
    /// the heal ends every fault still in force without an event of each one's end.
    #[test]
    fn nested_partitions_disturb_until_the_last_ends_or_the_heal() {
        let n = Who::Node(1);
        let part = |t, ms| at(t, Who::Nemesis, WorldEv::Partition { node: n, dir: "Both".into(), ms });
        let healed = |t| at(t, Who::Nemesis, WorldEv::PartitionHealed { node: n, served: false });
        let spans = |h: &[Event]| -> Vec<(Option<Who>, u64, u64)> {
            let out = store_path_disturbed(h, 10_000_000).into_iter();
            out.map(|(w, s)| (w, s.start / 1000, (s.end - RECONNECT_SETTLE_US) / 1000)).collect()
        };
        assert_eq!(spans(&[part(100, 500), healed(600)]), [(Some(n), 100, 600)]);
        assert_eq!(spans(&[part(100, 500), part(400, 800), healed(600), healed(1_200)]), [(Some(n), 100, 1_200)]);
        let heal = at(900, Who::Nemesis, WorldEv::Heal {});
        assert_eq!(spans(&[part(100, 500), part(400, 800), healed(600), heal.clone()]), [(Some(n), 100, 900)]);
        let slow = at(200, Who::Nemesis, WorldEv::NetworkLatency { ms: 5_000, extra_ms: 50 });
        assert_eq!(spans(&[slow, heal]), [(None, 200, 900)]);
    }
}
