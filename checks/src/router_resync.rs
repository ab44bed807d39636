//! P29: a pool router retries a failed resync of its table after its sweep interval, neither
//! sooner nor later, judged at each retry.
//!
//! A router whose feed broke (a gap, a hole) reads a snapshot of the job map itself and reads
//! nothing of its feed until one succeeds. Each failed read says how long it took and when the
//! next comes (`router_resync_failed`: `took_us`, `retry_us`, the pool's sweep interval), and the
//! read that succeeds says how long it took (`router_resynced`), so each retry's start is known to
//! within the clock's rate. One that starts before its wait asks a failing store for the whole job
//! map at network speed (MC113: a retry at once); one that starts after it leaves the node's jobs
//! unrouted longer than its sweep interval. The wait announced is the node's sweep interval as
//! `node_started` announced it: a retry that waits and announces another wait is P29 at the
//! failure. The node's stop, crash or restart ends the judging.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// P29 over keel's pool events: see the module's doc; `clocks` as for
/// [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn router_resyncs_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut due: BTreeMap<(E::Node, &str), Due> = BTreeMap::new();
    // (node, pool) → the sweep interval its pool node announced
    let mut interval: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            due.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(keel::observe::Event::Pool(p)) = e.keel() else { continue };
        let (pool, took_us, retry_us) = match p {
            PoolEvent::NodeStopped { .. } => {
                due.retain(|k, _| &k.0 != node);
                continue;
            }
            PoolEvent::NodeStarted { pool, sweep_interval_us, .. } => {
                interval.insert((node.clone(), plain(pool)), *sweep_interval_us);
                continue;
            }
            PoolEvent::RouterResyncFailed { pool, took_us, retry_us, .. } => (plain(pool), *took_us, Some(*retry_us)),
            PoolEvent::RouterResynced { pool, took_us } => (plain(pool), *took_us, None),
            _ => continue,
        };
        let key = (node.clone(), pool);
        if let Some(d) = due.remove(&key) {
            verdicts.judge(("P29", "P29"), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: pool {pool}: after a failed resync of its table at {:.3}s its retry was due {} µs later, and it started at {:.3}s, {by} µs {how}",
                    d.earliest as f64 / 1e6,
                    d.wait_max_us,
                    at as f64 / 1e6,
                )
            });
        }
        if let Some(wait) = retry_us
            && let Some(&sweep) = interval.get(&key)
            && wait != sweep
        {
            verdicts.v.push(Violation::new(
                "P29",
                t,
                format!("{node}: pool {pool}: a failed resync of its table retries {wait} µs later, not its sweep interval ({sweep} µs)"),
            ));
        }
        if let Some(wait) = retry_us {
            due.insert(
                key,
                Due { after: "a failed resync", latest: t, wait_max_us: wait, earliest: t, wait_min_us: wait },
            );
        }
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    /// A sweep interval of 100 ms.
    fn failed(t_ms: u64, took_ms: u64) -> Ev {
        let (pool, error) = ("p".into(), "timeout".into());
        at(t_ms, PoolEvent::RouterResyncFailed { pool, took_us: took_ms * 1000, retry_us: 100_000, error })
    }

    fn resynced(t_ms: u64, took_ms: u64) -> Ev {
        at(t_ms, PoolEvent::RouterResynced { pool: "p".into(), took_us: took_ms * 1000 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&router_resyncs_retry_on_time(h, crate::steady_clocks(2_000)))
    }

    /// Retries a sweep interval after each failure pass; one at once (MC113) or one late is P29
    /// at the retry; a resync with no failure before it, a stop or a crash is not judged.
    #[test]
    fn resync_retries_a_sweep_interval_apart_pass_and_others_fire_p29() {
        assert_eq!(judge(&[resynced(5, 5), failed(20, 10), failed(130, 10), resynced(240, 10)]), []);
        assert_eq!(judge(&[failed(20, 10), failed(31, 10)]), [("P29", 31)]);
        assert_eq!(judge(&[failed(20, 10), resynced(200, 10)]), [("P29", 200)]);
        // A wait other than the sweep interval the node announced (100 ms) is P29 at the failure.
        let started = at(
            1,
            PoolEvent::NodeStarted { pool: "p".into(), node: "n1".into(), ack_grace_us: 1, sweep_interval_us: 100_000 },
        );
        assert_eq!(judge(&[started.clone(), failed(20, 10), failed(130, 10)]), []);
        let (pool, error) = ("p".into(), "timeout".into());
        let short = at(20, PoolEvent::RouterResyncFailed { pool, took_us: 10_000, retry_us: 20_000, error });
        assert_eq!(judge(&[started, short, failed(50, 10)]), [("P29", 20)]);
        let stopped = at(50, PoolEvent::NodeStopped { node: "n1".into() });
        assert_eq!(judge(&[failed(20, 10), stopped, failed(60, 1)]), []);
        assert_eq!(judge(&[failed(20, 10), Ev(50_000, "n1", None, Some(Fact::NodeCrash)), resynced(60, 1)]), []);
    }
}
