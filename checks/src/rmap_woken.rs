//! R25: a replicated map's resync reports the waiters it woke, judged at each `resynced`.
//!
//! A load collects, under the waiters' lock and in the same step as its `resynced`, every parked
//! `set_and_wait` its snapshot settles (`waiter_woken` each, reached or lost), and reports their
//! number (`woken`). So the `waiter_woken`s of the map between the apply loop's previous event
//! and its `resynced` are the load's, but for a caller's own arm that found its write already
//! lost (`waiter_armed` unparked, then its `waiter_woken` of the same revision at once). A count
//! read elsewhere (the waiters still parked after the load) tells an operator reading resyncs
//! that nobody was waiting, or that everyone was (blind-spot hunt, round 30, B #2, MC276).
//!
//! A node's crash or restart ends the judging of its maps.

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use crate::{Entry, Fact, Violation, plain};

/// One map's waiters woken since the apply loop's latest event.
#[derive(Default)]
struct Since {
    woken: usize,
    /// The revision of a caller's unparked arm, whose own `waiter_woken` may follow.
    armed: Option<u64>,
}

/// R25 over keel's rmap events: see the module's doc. The first 20 violations.
pub fn rmap_resyncs_count_their_woken<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut maps: BTreeMap<(E::Node, &str), Since> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            maps.retain(|k, _| &k.0 != node);
            continue;
        }
        use RmapEvent as R;
        let Some(ev) = e.rmap() else { continue };
        match ev {
            R::WaiterArmed { map, rev, parked } => {
                maps.entry((node.clone(), plain(map))).or_default().armed = (!parked).then_some(*rev);
            }
            R::WaiterWoken { map, rev, .. } => {
                let m = maps.entry((node.clone(), plain(map))).or_default();
                if m.armed.take() != Some(*rev) {
                    m.woken += 1;
                }
            }
            R::WaiterRegistered { .. } | R::WaiterCancelled { .. } | R::WaitReturned { .. } => {}
            R::Resynced { map, woken, reason, .. } => {
                let seen = maps.remove(&(node.clone(), plain(map))).unwrap_or_default().woken;
                if seen != *woken && v.len() < 20 {
                    v.push(Violation::new(
                        "R25",
                        e.t_us(),
                        format!(
                            "{node}: map {map}: a resync ({reason}) reported {woken} waiters woken, but it woke {seen}",
                            map = plain(map),
                            reason = reason.as_str()
                        ),
                    ));
                }
            }
            _ => {
                if let Some(map) = crate::apply_loop_map(ev) {
                    maps.remove(&(node.clone(), map));
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::{Event, ResyncReason};

    use super::*;
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    fn woken(t_ms: u64, rev: u64) -> Ev {
        at(t_ms, RmapEvent::WaiterWoken { map: "m".into(), rev, lost: true })
    }

    fn resynced(t_ms: u64, woken: usize) -> Ev {
        let (map, reason) = ("m".into(), ResyncReason::Gap);
        at(
            t_ms,
            RmapEvent::Resynced { map, reason, rev: 9, old_rev: 7, changed: 1, woken, took_us: 1, restarted: false },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        at_ms(&rmap_resyncs_count_their_woken(h))
    }

    #[test]
    fn a_resync_counts_the_waiters_its_load_woke() {
        let gap = at(5, RmapEvent::Gap { map: "m".into(), rev: 7 });
        assert!(judge(&[woken(1, 3), gap.clone(), woken(10, 8), woken(10, 9), resynced(10, 2)]).is_empty());
        assert!(judge(&[gap.clone(), resynced(10, 0)]).is_empty());
        // A caller's own arm of a lost write is its own.
        let armed = at(8, RmapEvent::WaiterArmed { map: "m".into(), rev: 4, parked: false });
        assert!(judge(&[gap.clone(), armed, woken(8, 4), woken(10, 8), resynced(10, 1)]).is_empty());
        assert_eq!(judge(&[gap.clone(), woken(10, 8), resynced(10, 0)]), [("R25", 10)]);
        assert_eq!(judge(&[gap, resynced(10, 3)]), [("R25", 10)]);
    }
}
