//! R12: a replicated map with an anti-entropy period checks itself against the store that period
//! after each load, however often its feed brings changes; judged at its next snapshot read, and
//! where it shows it missed one.
//!
//! A map announces its period when its apply loop starts (`started`: `anti_entropy_us`, 0 for
//! none). After each load (`joined`, `resynced`) the map follows its feed, and the period counts
//! from there on the map's clock. When it passes, the map reads a snapshot: `resynced` with reason
//! `anti_entropy`, or `snapshot_failed` if the read failed. Each carries its read's own `took_us`,
//! so the read's start is known to within the clock's rate. A feed that ends the follow first
//! (`gap`, a revision jump, `after_restart`) starts a resync of its own, whose load starts the
//! period over; a failed read is R11's to judge from there. The map's stop and the node's crash
//! or restart end the judging.
//!
//! A read that starts later than the period allows is judged at its outcome; none by then is
//! judged where the map shows it still follows its feed past the deadline (`applied`, `stale`, or
//! a feed break; not at the history's end, where a read may be in flight). Either is a map that
//! stops checking itself while it is written often: MC109, a timer that starts over at every feed event, never
//! fires on a busy map. One that starts earlier is a period shorter than the one configured: a
//! store read more often than its operators sized it for.

use std::collections::BTreeMap;

use keel::observe::{ResyncReason, RmapEvent};

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// One map's period, and the read its last load makes due (with that read's deadline).
struct Map {
    period_us: u64,
    due: Option<(Due, u64)>,
}

/// R12 over keel's rmap events: see the module's doc. `rates`, the slacks, `frozen` and `jumped`
/// as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn rmap_anti_entropy_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut maps: BTreeMap<(E::Node, &str), Map> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            maps.retain(|k, _| &k.0 != node);
            continue;
        }
        use RmapEvent as R;
        let Some(ev) = e.rmap() else { continue };
        let name = match ev {
            R::Started { map, anti_entropy_us, .. } => {
                let key = (node.clone(), plain(map));
                match *anti_entropy_us {
                    0 => maps.remove(&key),
                    period_us => maps.insert(key, Map { period_us, due: None }),
                };
                continue;
            }
            R::Stopped { map, .. } => {
                maps.remove(&(node.clone(), plain(map)));
                continue;
            }
            R::Applied { map, .. } | R::Stale { map, .. } => {
                // Still following its feed: past the deadline, the read it owed never started.
                if let Some(m) = maps.get_mut(&(node.clone(), plain(map))) {
                    following(&mut verdicts, node, plain(map), m, t);
                }
                continue;
            }
            R::Gap { map, .. } | R::RevJump { map, .. } | R::AfterRestart { map, .. } => {
                if let Some(m) = maps.get_mut(&(node.clone(), plain(map))) {
                    following(&mut verdicts, node, plain(map), m, t);
                    m.due = None; // the feed ended the follow: its own resync's load starts over
                }
                continue;
            }
            R::Joined { map, .. } | R::Resynced { map, .. } | R::SnapshotFailed { map, .. } => plain(map),
            _ => continue,
        };
        let Some(m) = maps.get_mut(&(node.clone(), name)) else { continue };
        let read = match ev {
            R::Resynced { reason: ResyncReason::AntiEntropy, took_us, .. } | R::SnapshotFailed { took_us, .. } => {
                Some(*took_us)
            }
            _ => None,
        };
        if let (Some(took_us), Some((d, _))) = (read, m.due.take()) {
            verdicts.judge(("R12", "R12"), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: map {name}: loaded at {:.3}s with an anti-entropy period of {} µs, its next snapshot read started at {:.3}s, {by} µs {how}",
                    d.earliest as f64 / 1e6,
                    d.wait_max_us,
                    at as f64 / 1e6,
                )
            });
        }
        if matches!(ev, R::Joined { .. } | R::Resynced { .. }) {
            let d = Due { after: "a load", latest: t, wait_max_us: m.period_us, earliest: t, wait_min_us: m.period_us };
            let pace = verdicts.pace;
            let deadline = pace.deadline(&d, verdicts.holes(node));
            m.due = Some((d, deadline));
        }
    }
    verdicts.v
}

/// `m` (map `name` on `node`) was still following its feed at `t`: if its read's deadline had
/// passed, none started in time (R12 at `t`, where it is known).
fn following<N: Ord + Clone + std::fmt::Display, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool>(
    verdicts: &mut Verdicts<N, F, J>,
    node: &N,
    name: &str,
    m: &mut Map,
    t: u64,
) {
    let Some((d, deadline)) = m.due.filter(|(_, deadline)| *deadline < t) else { return };
    m.due = None;
    verdicts.overdue("R12", node, &d, t, || {
        format!(
            "{node}: map {name}: loaded at {:.3}s with an anti-entropy period of {} µs, its next snapshot read was due by {:.3}s and it still followed its feed at {:.3}s",
            d.earliest as f64 / 1e6,
            d.wait_max_us,
            deadline as f64 / 1e6,
            t as f64 / 1e6,
        )
    });
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    /// An anti-entropy period of 100 ms.
    fn started(t_ms: u64) -> Ev {
        at(
            t_ms,
            RmapEvent::Started {
                map: "m".into(),
                retry_min_us: 10_000,
                retry_max_us: 40_000,
                anti_entropy_us: 100_000,
                op_timeout_us: 500_000,
            },
        )
    }

    fn joined(t_ms: u64) -> Ev {
        at(t_ms, RmapEvent::Joined { map: "m".into(), rev: 1, keys: 0, restarted: false })
    }

    fn resynced(t_ms: u64, reason: ResyncReason, took_ms: u64) -> Ev {
        let took_us = took_ms * 1000;
        at(
            t_ms,
            RmapEvent::Resynced {
                map: "m".into(),
                reason,
                rev: 2,
                old_rev: 1,
                changed: 0,
                woken: 0,
                took_us,
                restarted: false,
            },
        )
    }

    fn applied(t_ms: u64) -> Ev {
        at(t_ms, RmapEvent::Applied { map: "m".into(), rev: 3 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        let v = rmap_anti_entropy_on_time(h, crate::steady_clocks(2_000));
        crate::test_entry::at_ms(&v)
    }

    #[test]
    fn reads_a_period_after_each_load_pass_and_others_fire_r12() {
        use ResyncReason::{AntiEntropy, Gap};
        // Loads at 10 and 115 (read 105..115), 220 (read 215..220); a gap's resync starts over.
        let on_time = [
            started(0),
            joined(10),
            applied(50),
            resynced(115, AntiEntropy, 5),
            resynced(220, AntiEntropy, 5),
            at(250, RmapEvent::Gap { map: "m".into(), rev: 3 }),
            resynced(260, Gap, 1),
            resynced(362, AntiEntropy, 2),
        ];
        assert_eq!(judge(&on_time), []);
        // Changes every 30 ms and no read (MC109): R12 at the first change past the deadline (112).
        let busy = [started(0), joined(10), applied(40), applied(70), applied(100), applied(130), applied(160)];
        assert_eq!(judge(&busy), [("R12", 130)]);
        // A read in flight over the deadline is judged by its start, at its outcome.
        assert_eq!(judge(&[started(0), joined(10), resynced(300, AntiEntropy, 190)]), []);
        // Not at the history's end, where a read may be in flight.
        assert_eq!(judge(&[started(0), joined(10)]), []);
        // A read that started late, and one early.
        assert_eq!(judge(&[started(0), joined(10), resynced(125, AntiEntropy, 5)]), [("R12", 125)]);
        assert_eq!(judge(&[started(0), joined(10), resynced(80, AntiEntropy, 5)]), [("R12", 80)]);
        // No period, a stop, a crash: nothing judged.
        let none = RmapEvent::Started {
            map: "m".into(),
            retry_min_us: 1,
            retry_max_us: 1,
            anti_entropy_us: 0,
            op_timeout_us: 1,
        };
        assert_eq!(judge(&[at(0, none), joined(10)]), []);
        let stopped = RmapEvent::Stopped { map: "m".into(), waiters_closed: 0 };
        assert_eq!(judge(&[started(0), joined(10), at(50, stopped)]), []);
        assert_eq!(judge(&[started(0), joined(10), Ev(50_000, "n1", None, Some(Fact::NodeCrash))]), []);
    }
}
