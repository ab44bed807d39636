//! **P62**: a pool node runs with the settings it was given, and with the documented defaults
//! for those it was not.
//!
//! Each node announces its ack grace, sweep period and cleanup lock lifetime at its start
//! (`node_started`), and the rules that use them (P39 the lock's lifetime, the ack grace's
//! redispatch rule) judge keel against what it announced. So a setting keel ignores, or a
//! default it changed, is consistent with itself and passes them all: round 27 A #18 halved the
//! lock's default lifetime (2·worker_ttl), shrinking every cleanup's write budget, and no rule
//! noticed. This judges the announcement against what the scenario set (ack grace, sweep period)
//! and against the documented default it left in force (the lock: 2·worker_ttl).

use keel::observe::PoolEvent;

use crate::check::Violation;
use crate::history::Event;

/// The maps of pool `pool` (docs/pool.md, `pool/state.rs`): its own, and its completer's
/// (`CompleterConfig`'s default map `{name}:completions` of the completer `keel:pool:{pool}`,
/// the one `inspect`, the sweep's retention and an operator read).
fn layout(pool: &str) -> Vec<String> {
    ["keepalive", "workers", "jobs", "cleanup", "meta", "completions", "quarantine"]
        .iter()
        .map(|m| format!("keel:pool:{pool}:{m}"))
        .collect()
}

/// **V43** over a pool run's events: the store's maps after quiescence (the auditor's
/// `store_maps`) are each one of pool `pool`'s documented layout. A part that builds a map's
/// name wrong (a key prefix, a separator, a suffix: round 44 A #15, the completer's default map
/// `{name}:completion`) writes where no reader of the layout looks, and every rule that reads
/// back through the same part agrees with it: `inspect` and the completer map's retention find
/// an empty map, the entries of the misnamed one are never swept. The first 20 violations.
pub fn maps_in_their_layout(events: &[Event], pool: &str) -> Vec<Violation> {
    let layout = layout(pool);
    let mut v = Vec::new();
    for e in events {
        let Some(super::pool::Rec::StoreMaps { maps }) = super::pool::rec(e) else { continue };
        for map in maps.iter().filter(|m| !layout.contains(m)) {
            if v.len() < 20 {
                let msg = format!("the store holds map {map:?}, not one of pool {pool}'s documented maps ({layout:?})");
                v.push(Violation::new("V43", e.t_us, msg));
            }
        }
    }
    v
}

/// What the scenario configured, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Configured {
    pub ack_grace_us: u64,
    pub sweep_interval_us: u64,
    /// The documented default: `PoolConfig::cleanup_lock_ttl`'s, 2·worker_ttl.
    pub cleanup_lock_ttl_us: u64,
}

/// P62 over a pool run's events. The first 20 violations.
pub fn nodes_run_as_configured(events: &[Event], want: Configured) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::NodeStarted { ack_grace_us, sweep_interval_us, cleanup_lock_ttl_us, .. }) = e.pool() else {
            continue;
        };
        let figures = [
            ("ack grace", *ack_grace_us, want.ack_grace_us),
            ("sweep interval", *sweep_interval_us, want.sweep_interval_us),
            ("cleanup lock lifetime (default 2·worker_ttl)", *cleanup_lock_ttl_us, want.cleanup_lock_ttl_us),
        ];
        for (what, announced, configured) in figures {
            if announced != configured && v.len() < 20 {
                let msg =
                    format!("{}: the node announced a {what} of {announced} µs; it was given {configured} µs", e.node);
                v.push(Violation::new("P62", e.t_us, msg));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::pool;

    const WANT: Configured =
        Configured { ack_grace_us: 300_000, sweep_interval_us: 150_000, cleanup_lock_ttl_us: 3_000_000 };

    fn started(lock_us: u64) -> Event {
        pool(
            5,
            PoolEvent::NodeStarted {
                pool: "p".into(),
                node: "n0".into(),
                ack_grace_us: 300_000,
                sweep_interval_us: 150_000,
                cleanup_lock_ttl_us: lock_us,
                op_timeout_us: 1,
                dedup_window_us: 600_000_000,
                drift_margin_us: 150_000,
            },
        )
    }

    #[test]
    fn the_documented_default_passes() {
        assert!(nodes_run_as_configured(&[started(3_000_000)], WANT).is_empty());
    }

    /// The documented maps pass; a completer map with its suffix misspelled is V43 (round 44
    /// A #15, MC412).
    #[test]
    fn a_map_outside_the_layout_fires_v43() {
        use crate::history::{Ev, Who};
        use crate::scenario::AppEv;
        use crate::scenario::pool::Rec;
        let maps = |names: &[&str]| {
            let maps = names.iter().map(|m| (*m).to_owned()).collect();
            crate::scenario::test_history::at(9, Who::Node(0), Ev::App(AppEv::Pool(Rec::StoreMaps { maps })))
        };
        let ok = maps(&["keel:pool:p:jobs", "keel:pool:p:completions", "keel:pool:p:meta"]);
        assert!(maps_in_their_layout(&[ok], "p").is_empty());
        let v = maps_in_their_layout(&[maps(&["keel:pool:p:jobs", "keel:pool:p:completion"])], "p");
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V43", 9000));
    }

    #[test]
    fn a_changed_default_is_seen_at_the_start() {
        let v = nodes_run_as_configured(&[started(1_500_000)], WANT);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "P62");
        assert_eq!(v[0].t_us, 5000);
    }
}
