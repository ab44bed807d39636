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
            },
        )
    }

    #[test]
    fn the_documented_default_passes() {
        assert!(nodes_run_as_configured(&[started(3_000_000)], WANT).is_empty());
    }

    #[test]
    fn a_changed_default_is_seen_at_the_start() {
        let v = nodes_run_as_configured(&[started(1_500_000)], WANT);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "P62");
        assert_eq!(v[0].t_us, 5000);
    }
}
