//! R13: a replica's resync names what made it, judged at each `resynced`.
//!
//! A map leaves its feed for a snapshot for one of four reasons, each announced as it happens:
//! the feed reported a gap (`gap`, reason `gap`), a change skipped revisions (`rev_jump`, reason
//! `rev_jump`), a change came after a snapshot taken since a store restart (`after_restart`,
//! reason `restart`), or none of these and the map's anti-entropy period ran out (reason
//! `anti_entropy`, only for a map with a period). The `resynced` that follows must give the
//! reason of the last such event since the map's last load, or `anti_entropy` if there was
//! none. Operators count gaps and restarts by these reasons: an anti-entropy check reported as a
//! gap (MC120) makes a healthy feed look like a lossy one. The map's start, stop, a crash or a
//! restart of its node ends the judging.

use std::collections::BTreeMap;

use keel::observe::{ResyncReason, RmapEvent};

use crate::{Entry, Fact, Violation, plain};

/// What a map has seen since its last load.
#[derive(Default)]
struct Map {
    /// Its anti-entropy period, µs (0: none).
    anti_entropy_us: u64,
    /// The last event since its last load that calls for a resync.
    cause: Option<ResyncReason>,
}

/// R13 over keel's rmap events: see the module's doc. The first 20 violations.
pub fn rmap_resyncs_name_their_cause<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut maps: BTreeMap<(E::Node, &str), Map> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            maps.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.rmap() else { continue };
        let (map, cause) = match ev {
            RmapEvent::Started { map, anti_entropy_us, .. } => {
                maps.insert((node.clone(), plain(map)), Map { anti_entropy_us: *anti_entropy_us, cause: None });
                continue;
            }
            RmapEvent::Stopped { map, .. } => {
                maps.remove(&(node.clone(), plain(map)));
                continue;
            }
            RmapEvent::Gap { map, .. } => (map, Some(ResyncReason::Gap)),
            RmapEvent::RevJump { map, .. } => (map, Some(ResyncReason::RevJump)),
            RmapEvent::AfterRestart { map, .. } => (map, Some(ResyncReason::Restart)),
            RmapEvent::Joined { map, .. } => (map, None),
            RmapEvent::Resynced { map, reason, .. } => {
                let Some(m) = maps.get_mut(&(node.clone(), plain(map))) else { continue };
                let due = m.cause.take().or((m.anti_entropy_us > 0).then_some(ResyncReason::AntiEntropy));
                if due != Some(*reason) {
                    let what = due
                        .map_or("nothing (no gap, jump or restart, and no anti-entropy period)".to_owned(), |r| {
                            format!("`{}`", r.as_str())
                        });
                    v.push(Violation::new(
                        "R13",
                        e.t_us(),
                        format!("{node}: map {map}: a resync reported as `{}` where its cause since the last load was {what}", reason.as_str()),
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if let Some(m) = maps.get_mut(&(node.clone(), plain(map))) {
            m.cause = cause;
        }
    }
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: RmapEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    fn started(anti_entropy_us: u64) -> Ev {
        at(
            0,
            RmapEvent::Started { map: "m".into(), retry_min_us: 1, retry_max_us: 2, anti_entropy_us, op_timeout_us: 1 },
        )
    }

    fn resynced(t_ms: u64, reason: ResyncReason) -> Ev {
        let map = "m".into();
        at(
            t_ms,
            RmapEvent::Resynced { map, reason, rev: 2, old_rev: 1, changed: 0, woken: 0, took_us: 1, restarted: false },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&rmap_resyncs_name_their_cause(h))
    }

    /// Each resync names the last cause since the load, or the anti-entropy period; a gap called
    /// anti-entropy, an anti-entropy check called a gap (MC120), or an anti-entropy resync of a
    /// map with no period is R13.
    #[test]
    fn resyncs_name_their_cause_and_others_fire_r13() {
        let gap = at(10, RmapEvent::Gap { map: "m".into(), rev: 1 });
        let jump = at(10, RmapEvent::RevJump { map: "m".into(), expected: 2 });
        let joined = at(1, RmapEvent::Joined { map: "m".into(), rev: 1, keys: 0, restarted: false });
        assert_eq!(judge(&[started(0), joined.clone(), gap.clone(), resynced(20, ResyncReason::Gap)]), []);
        assert_eq!(judge(&[started(0), jump.clone(), resynced(20, ResyncReason::RevJump)]), []);
        assert_eq!(judge(&[started(1_000), joined.clone(), resynced(20, ResyncReason::AntiEntropy)]), []);
        assert_eq!(judge(&[started(1_000), resynced(20, ResyncReason::Gap)]), [("R13", 20)]);
        assert_eq!(judge(&[started(1_000), gap.clone(), resynced(20, ResyncReason::AntiEntropy)]), [("R13", 20)]);
        assert_eq!(judge(&[started(0), resynced(20, ResyncReason::AntiEntropy)]), [("R13", 20)]);
        // The cause is used up by its resync: the next one needs its own.
        let twice = [started(0), gap, resynced(20, ResyncReason::Gap), resynced(30, ResyncReason::Gap)];
        assert_eq!(judge(&twice), [("R13", 30)]);
    }
}
