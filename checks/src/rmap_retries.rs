//! R11: a replicated map retries a failed watch open or snapshot when its backoff says, neither
//! sooner nor later, judged at each retry.
//!
//! A map announces its retry timing when its apply loop starts (`started`: `retry_min_us`,
//! `retry_max_us`). keel's backoff has no jitter: after the n-th failure in a row (n from 0) of
//! a watch open (`watch_failed`) or of a snapshot (`snapshot_failed`), each with its attempt's own
//! `took_us`, the map waits `retry_min`·2^n, at most `retry_max`, and then makes its next
//! attempt: the watch again after a failed open; after a failed snapshot a fresh watch (a
//! failure may be a store restart, whose old feed may hold lost history), then the snapshot. So
//! the next attempt after any failure is a watch open (`watch_opened` or `watch_failed`), whose
//! start is its outcome less its own duration. A watch's failures in a row count from the last
//! opened watch, a snapshot's from the last snapshot loaded (`joined`, `resynced`): each retry
//! loop starts its backoff over.
//!
//! One that starts before its wait is a retry storm on a failing store (MC90: a watch backoff
//! that starts at nothing); one that starts after it keeps the replica stale longer than the map
//! was configured to (MC91: a doubling without its cap). The map's stop, and the node's crash or
//! restart, end the judging.

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// One map's retry timing and its failures in a row.
#[derive(Default)]
struct Map {
    min_us: u64,
    max_us: u64,
    watch_failures: u32,
    snapshot_failures: u32,
    due: Option<Due>,
}

impl Map {
    /// The wait after a failure with `before` failures of its loop before it.
    fn wait_us(&self, before: u32) -> u64 {
        self.min_us.saturating_mul(1u64 << before.min(32)).min(self.max_us)
    }
}

/// R11 over keel's rmap events: see the module's doc. `slowest`, `fastest`, the slacks, `frozen`
/// and `jumped` as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn rmap_retries_on_time<E: Entry>(
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
        let (name, took_us) = match ev {
            R::Started { map, retry_min_us, retry_max_us, .. } => {
                let m = Map { min_us: *retry_min_us, max_us: *retry_max_us, ..Map::default() };
                maps.insert((node.clone(), plain(map)), m);
                continue;
            }
            R::Stopped { map, .. } => {
                maps.remove(&(node.clone(), plain(map)));
                continue;
            }
            R::Joined { map, .. } | R::Resynced { map, .. } => {
                if let Some(m) = maps.get_mut(&(node.clone(), plain(map))) {
                    (m.snapshot_failures, m.due) = (0, None);
                }
                continue;
            }
            R::WatchOpened { map, took_us } | R::WatchFailed { map, took_us, .. } => (plain(map), *took_us),
            R::SnapshotFailed { map, took_us, .. } => (plain(map), *took_us),
            _ => continue,
        };
        let Some(m) = maps.get_mut(&(node.clone(), name)) else { continue };
        let watch = !matches!(ev, R::SnapshotFailed { .. });
        if let Some(d) = m.due.take()
            && watch
        {
            verdicts.judge(("R11", "R11"), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: map {name}: after {} at {:.3}s its retry was due {} µs later, and its next watch open started at {:.3}s, {by} µs {how}",
                    d.after,
                    d.earliest as f64 / 1e6,
                    d.wait_max_us,
                    at as f64 / 1e6,
                )
            });
        }
        let (after, wait_us) = match ev {
            R::WatchOpened { .. } => {
                m.watch_failures = 0;
                continue;
            }
            R::WatchFailed { .. } => {
                m.watch_failures += 1;
                ("a failed watch open", m.wait_us(m.watch_failures - 1))
            }
            _ => {
                m.snapshot_failures += 1;
                ("a failed snapshot", m.wait_us(m.snapshot_failures - 1))
            }
        };
        m.due = Some(Due { after, latest: t, wait_max_us: wait_us, earliest: t, wait_min_us: wait_us });
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    /// retry_min 10 ms, retry_max 40 ms.
    fn started(t_ms: u64) -> Ev {
        at(
            t_ms,
            RmapEvent::Started {
                map: "m".into(),
                retry_min_us: 10_000,
                retry_max_us: 40_000,
                anti_entropy_us: 0,
                op_timeout_us: 500_000,
            },
        )
    }

    fn watch(t_ms: u64, took_ms: u64, ok: bool) -> Ev {
        let (map, took_us) = ("m".into(), took_ms * 1000);
        at(
            t_ms,
            if ok {
                RmapEvent::WatchOpened { map, took_us }
            } else {
                RmapEvent::WatchFailed { map, error: "x".into(), took_us }
            },
        )
    }

    fn snapshot_failed(t_ms: u64, took_ms: u64) -> Ev {
        at(t_ms, RmapEvent::SnapshotFailed { map: "m".into(), error: "x".into(), took_us: took_ms * 1000 })
    }

    fn joined(t_ms: u64) -> Ev {
        at(t_ms, RmapEvent::Joined { map: "m".into(), rev: 1, keys: 0, restarted: false })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&rmap_retries_on_time(h, crate::steady_clocks(2_000)))
    }

    #[test]
    fn retries_after_their_backoff_pass_and_others_fire_r11() {
        // Watch failures wait 10, 20, 40, 40 ms; a snapshot's failures count on their own.
        let on_time = [
            started(0),
            watch(5, 5, false),
            watch(20, 5, false),
            watch(45, 5, false),
            watch(90, 5, false),
            watch(135, 5, true),
            snapshot_failed(140, 2),
            watch(152, 2, true),
            snapshot_failed(155, 1),
            watch(177, 2, true),
            joined(180),
            snapshot_failed(300, 1),
            watch(312, 2, true),
        ];
        assert_eq!(judge(&on_time), []);
        // A retry at once after a failed open (MC90's storm).
        assert_eq!(judge(&[started(0), watch(5, 5, false), watch(7, 1, false)]), [("R11", 7)]);
        // A retry 80 ms after the third failure, twice its capped wait (MC91's doubling).
        let late = [started(0), watch(5, 5, false), watch(20, 5, false), watch(45, 5, false), watch(130, 5, true)];
        assert_eq!(judge(&late), [("R11", 130)]);
        // After a failed snapshot the fresh watch comes a backoff later, not at once.
        assert_eq!(judge(&[started(0), watch(5, 5, true), snapshot_failed(10, 1), watch(12, 1, true)]), [("R11", 12)]);
        // A stop ends the judging; a node's restart too.
        let stopped = RmapEvent::Stopped { map: "m".into(), waiters_closed: 0 };
        assert_eq!(judge(&[started(0), watch(5, 5, false), at(6, stopped), watch(7, 1, false)]), []);
    }
}
