//! R28 and R29: a replica that loaded a snapshot the store took after a restart, before the map's next
//! commit, applies no change from its feed until its next load; judged at each `applied`.
//!
//! Such a snapshot (`joined` or `resynced` with `restarted`, the store's
//! `MapSnapshot::restarted_since_commit`, whose truth the store node judges itself: L3) says the
//! store has committed nothing to the map since it came back. Any commit of the restarted store
//! re-seeds the map's revisions from store time, a jump on the feed. So the next revision, the
//! only change the replica could apply, can only come from a feed opened before the restart: a
//! change of a history a roll-back lost, numbered on from the revision the store went back to.
//! Applied, it puts a write the store no longer holds in the replica (and its readers, its
//! subscribers, a waiter that returns on it) until the old feed's gap, and no later comparison
//! sees it once the gap's resync repaired it (MC45, keel's own until 2026-12-02).
//!
//! R29, its twin, judged at each `after_restart`: a change held back as possibly lost in a
//! restart is exactly the next revision after such a load. A stale change (in the snapshot,
//! still in the old feed) held back resyncs for nothing, a whole-map read per change of the
//! feed's backlog (MC382; R10 excuses it, the replica being below the boot's seed floor), and
//! one held back after a load that did not say `restarted` resyncs for nothing too (MC81). The
//! map's start, stop, a crash or a restart of its node ends the judging.

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use crate::{Entry, Fact, Violation, plain};

/// R28 and R29 over keel's rmap events: see the module's doc. The first 20 violations.
pub fn rmap_restarted_loads_hold_the_feed<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, map) → the revision of its last load, if that load's snapshot said `restarted`.
    let mut held: BTreeMap<(E::Node, &str), Option<u64>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            held.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.rmap() {
            Some(RmapEvent::Started { map, .. } | RmapEvent::Stopped { map, .. }) => {
                held.remove(&(node.clone(), plain(map)));
            }
            Some(RmapEvent::Joined { map, rev, restarted, .. } | RmapEvent::Resynced { map, rev, restarted, .. }) => {
                held.insert((node.clone(), plain(map)), restarted.then_some(*rev));
            }
            Some(RmapEvent::AfterRestart { map, rev }) => {
                let loaded = held.get(&(node.clone(), plain(map))).copied().flatten();
                if loaded.is_none_or(|l| *rev != l + 1) && v.len() < 20 {
                    let last = loaded.map_or("no snapshot taken since a restart".to_owned(), |l| {
                        format!("a snapshot at {l} taken since a restart")
                    });
                    v.push(Violation::new(
                        "R29",
                        e.t_us(),
                        format!(
                            "{node}: map {} held change {rev} back as possibly lost in a store restart after loading {last}: only the next revision can be one the restart lost (a stale change is in the snapshot; a resync for it reads the whole map for nothing)",
                            plain(map)
                        ),
                    ));
                }
            }
            Some(RmapEvent::Applied { map, rev }) => {
                if let Some(Some(loaded)) = held.get(&(node.clone(), plain(map)))
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "R28",
                        e.t_us(),
                        format!(
                            "{node}: map {} applied change {rev} from its feed after loading a snapshot at {loaded} the store took after a restart, before the map's next commit: a change of a history the restart lost (the store holds nothing past {loaded} in this boot)",
                            plain(map)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::{Event, ResyncReason};

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    fn resynced(t_ms: u64, rev: u64, restarted: bool) -> Ev {
        let (map, reason) = ("m".into(), ResyncReason::Gap);
        at(t_ms, RmapEvent::Resynced { map, reason, rev, old_rev: 1, changed: 0, woken: 0, took_us: 1, restarted })
    }

    fn applied(t_ms: u64, rev: u64) -> Ev {
        at(t_ms, RmapEvent::Applied { map: "m".into(), rev })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&rmap_restarted_loads_hold_the_feed(h))
    }

    /// A change applied after a load that said `restarted` is R28 (MC45); one after a load that
    /// did not, or after the next load, is not; a node's restart ends the judging.
    #[test]
    fn a_change_applied_after_a_restarted_load_fires_r28() {
        let joined = |restarted| at(1, RmapEvent::Joined { map: "m".into(), rev: 5, keys: 0, restarted });
        assert_eq!(judge(&[joined(false), applied(2, 6)]), []);
        assert_eq!(judge(&[joined(true), applied(2, 6)]), [("R28", 2)]);
        assert_eq!(judge(&[joined(false), resynced(2, 5, true), applied(3, 6)]), [("R28", 3)]);
        assert_eq!(judge(&[joined(true), resynced(2, 9_000, false), applied(3, 9_001)]), []);
        let start = Ev(2_000, "n1", None, Some(Fact::NodeStart));
        assert_eq!(judge(&[joined(true), start, applied(3, 6)]), []);
    }

    /// A change held back after a restarted load is its next revision (keel); a stale one
    /// (MC382) or one after a load that did not say `restarted` (MC81) is R29.
    #[test]
    fn only_the_next_revision_after_a_restarted_load_is_held_back_or_r29() {
        let held = |t_ms, rev| at(t_ms, RmapEvent::AfterRestart { map: "m".into(), rev });
        assert_eq!(judge(&[resynced(1, 5, true), held(2, 6)]), []);
        assert_eq!(judge(&[resynced(1, 5, true), held(2, 4)]), [("R29", 2)]);
        assert_eq!(judge(&[resynced(1, 5, false), held(2, 6)]), [("R29", 2)]);
        assert_eq!(judge(&[held(2, 6)]), [("R29", 2)]);
    }
}
