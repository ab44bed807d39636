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
//! failure. A hole the router finds in its feed (`feed_hole`) is read again at once: the next
//! read starts at the hole's instant (a router that tries once and goes back to its feed, with
//! the table out of sync, leaves the hole to whatever change comes next: round 15 #26). The
//! node's stop, crash or restart ends the judging.
//!
//! P33, in the same pass: once a node's stop is asked (`node_stopping`), its router starts no
//! new read of the job map. A try that began after it (its end less its `took_us`, stretched by
//! the slowest clock, frozen time not counted, 2 ms of running time allowed) keeps asking a
//! store for the whole job map on behalf of a node that is going away, and holds the node's
//! stop until a read succeeds: under a partition, for as long as the partition lasts. Until the
//! node starts again, or crashes or restarts.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// P29 and P33 over keel's pool events: see the module's doc; `clocks` as for
/// [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn router_resyncs_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut due: BTreeMap<(E::Node, &str), Due> = BTreeMap::new();
    // (node, pool) → the sweep interval its pool node announced
    let mut interval: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    // (node, pool) → when its stop was asked
    let mut stopping: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            due.retain(|k, _| &k.0 != node);
            stopping.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(keel::observe::Event::Pool(p)) = e.keel() else { continue };
        let (pool, took_us, retry_us) = match p {
            PoolEvent::FeedHole { pool, .. } => {
                // The router reads a snapshot at once: its next read starts at the hole.
                let hole = Due { after: "a hole in its feed", latest: t, wait_max_us: 0, earliest: t, wait_min_us: 0 };
                due.insert((node.clone(), plain(pool)), hole);
                continue;
            }
            PoolEvent::NodeStopped { .. } => {
                due.retain(|k, _| &k.0 != node);
                continue;
            }
            PoolEvent::NodeStarted { pool, sweep_interval_us, .. } => {
                interval.insert((node.clone(), plain(pool)), *sweep_interval_us);
                stopping.remove(&(node.clone(), plain(pool)));
                continue;
            }
            PoolEvent::NodeStopping { pool, .. } => {
                stopping.insert((node.clone(), plain(pool)), t);
                continue;
            }
            PoolEvent::RouterResyncFailed { pool, took_us, retry_us, .. } => (plain(pool), *took_us, Some(*retry_us)),
            PoolEvent::RouterResynced { pool, took_us } => (plain(pool), *took_us, None),
            _ => continue,
        };
        let key = (node.clone(), pool);
        if let Some(&asked) = stopping.get(&key) {
            let d = Due { after: "its stop", latest: asked, wait_max_us: 0, earliest: asked, wait_min_us: 0 };
            verdicts.judge(("P33", "P33"), node, (&d, t, took_us), true, |at, by, _| {
                format!(
                    "{node}: pool {pool}: its stop was asked at {:.3}s, and its router began a read of the job map at {:.3}s, {by} µs after: a stopping node's router keeps reading the store",
                    asked as f64 / 1e6,
                    at as f64 / 1e6,
                )
            });
        }
        if let Some(d) = due.remove(&key) {
            verdicts.judge(("P29", "P29"), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: pool {pool}: after {} at {:.3}s its next read of the job map was due {} µs later, and it started at {:.3}s, {by} µs {how}",
                    d.after,
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
        let started = node_started(1);
        assert_eq!(judge(&[started.clone(), failed(20, 10), failed(130, 10)]), []);
        let (pool, error) = ("p".into(), "timeout".into());
        let short = at(20, PoolEvent::RouterResyncFailed { pool, took_us: 10_000, retry_us: 20_000, error });
        assert_eq!(judge(&[started, short, failed(50, 10)]), [("P29", 20)]);
        let stopped = at(50, PoolEvent::NodeStopped { node: "n1".into() });
        assert_eq!(judge(&[failed(20, 10), stopped, failed(60, 1)]), []);
        assert_eq!(judge(&[failed(20, 10), Ev(50_000, "n1", None, Some(Fact::NodeCrash)), resynced(60, 1)]), []);
    }

    /// The node announcing a sweep interval of 100 ms.
    fn node_started(t_ms: u64) -> Ev {
        let (pool, node) = ("p".into(), "n1".into());
        let e = PoolEvent::NodeStarted {
            pool,
            node,
            ack_grace_us: 1,
            sweep_interval_us: 100_000,
            cleanup_lock_ttl_us: 1,
            op_timeout_us: 1,
            dedup_window_us: 1,
            drift_margin_us: 150_000,
        };
        at(t_ms, e)
    }

    /// A hole is read again at once: a read that starts later (or none before the next hole's
    /// read) is P29.
    #[test]
    fn a_hole_is_read_again_at_once() {
        let hole = |t| at(t, PoolEvent::FeedHole { pool: "p".into(), expected: 5, rev: 7, feed_gaps: 1 });
        assert_eq!(judge(&[hole(20), resynced(30, 10)]), []);
        assert_eq!(judge(&[hole(20), failed(30, 10), resynced(140, 10)]), []);
        assert_eq!(judge(&[hole(20), resynced(90, 10)]), [("P29", 90)]);
    }

    /// A read that began before the stop was asked may end after it; one that began after it
    /// (a retry that did not watch the stop, round 15 #5) is P33 at its end, until the node
    /// starts again or crashes.
    #[test]
    fn a_read_begun_after_the_stop_fires_p33() {
        let stopping = || at(50, PoolEvent::NodeStopping { pool: "p".into(), node: "n1".into() });
        assert_eq!(judge(&[resynced(5, 5), stopping(), resynced(60, 15)]), []);
        assert_eq!(judge(&[failed(20, 10), stopping(), failed(130, 10)]), [("P33", 130)]);
        let started = node_started(200);
        assert_eq!(judge(&[stopping(), started, resynced(260, 10)]), []);
        let crash = Ev(100_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[stopping(), crash, resynced(260, 10)]), []);
    }
}
