//! P34: a cleanup that took its cleanup lock releases it before it ends; P39: the lock it takes
//! lives exactly `cleanup_lock_ttl` from the view it was taken on.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// P34: every cleanup that took a dead worker's cleanup lock (`cleanup_locked`, or
/// `cleanup_takeover` of a stale one) releases it before it ends, whatever it found: a
/// `cleanup_released` of exactly the lock it wrote (keel's compare-and-delete; the store may
/// refuse it, or fail, and the lock then expires) comes before its `cleanup_ended`. Judged at the
/// `cleanup_ended`. The exceptions are those keel's cleanup machine leaves the lock to expire
/// by: the outcome `lock_lifetime` (no write once the lock could have expired: another cleaner
/// may hold it), `store_error` (a store call failed: the next sweep finishes the cleanup) and
/// `confused` (a driver bug, asserted elsewhere). The node's crash or restart ends a cleanup
/// unjudged (it emits no end). A cleanup that ends holding its lock leaves the worker unclean-able
/// for the lock's lifetime: a worker found alive whose lock is kept (MC135) that then dies keeps
/// its jobs on a dead worker until the lock expires. The first 20 violations.
pub fn cleanups_release_their_lock<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, worker, lock) → whether its release was tried
    let mut open: BTreeMap<(E::Node, &str, &str), bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            open.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::CleanupLocked { worker, lock, .. } | PoolEvent::CleanupTakeover { worker, lock, .. }) => {
                open.insert((node.clone(), plain(worker), plain(lock)), false);
            }
            Some(PoolEvent::CleanupReleased { worker, lock, .. }) => {
                if let Some(tried) = open.get_mut(&(node.clone(), plain(worker), plain(lock))) {
                    *tried = true;
                }
            }
            Some(PoolEvent::CleanupEnded { worker, lock, outcome, .. }) => {
                let Some(released) = open.remove(&(node.clone(), plain(worker), plain(lock))) else { continue };
                let excused = matches!(plain(outcome), "lock_lifetime" | "store_error" | "confused");
                if !released && !excused {
                    v.push(Violation::new(
                        "P34",
                        e.t_us(),
                        format!(
                            "{node}: the cleanup of worker {worker} ended ({outcome}) holding its cleanup lock {lock:?}: it took it and never released it"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v.truncate(20);
    v
}

/// P39: each cleanup lock a cleaner takes (`cleanup_locked`, or `cleanup_takeover` of a stale
/// one) expires exactly the pool's `cleanup_lock_ttl` (announced in `node_started`) after the
/// store time of the view the cleanup was started on (the event's `now_ms`), judged at the
/// take, read with keel's own decoder. The cleaner's write budget counts from that lifetime: a
/// lock that expires sooner leaves the cleanup writing after another cleaner may have taken the
/// worker over (MC147: a worker TTL for the lock's; the blind-spot hunt's round 17 B #6). Not
/// judged before the node's `node_started`. And P2 at the takeover: a cleaner takes over only a
/// lock that expired before its view (`from`'s expiry below `now_ms`); one taken over at its last
/// live millisecond is still its holder's, who may be writing within its budget (MC275, the
/// mirror of MC21 for locks; blind-spot hunt, round 30, A #5). The first 20 violations.
pub fn cleanup_locks_keep_their_ttl<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut ttl_ms: BTreeMap<E::Node, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        match e.pool() {
            Some(PoolEvent::NodeStarted { cleanup_lock_ttl_us, .. }) => {
                ttl_ms.insert(node.clone(), cleanup_lock_ttl_us / 1000);
            }
            Some(
                PoolEvent::CleanupLocked { worker, lock, now_ms, .. }
                | PoolEvent::CleanupTakeover { worker, lock, now_ms, .. },
            ) => {
                if let Some(PoolEvent::CleanupTakeover { from, .. }) = e.pool()
                    && let Some((holder, expires_ms)) = keel::pool::decode::cleanup_lock(plain(from))
                    && expires_ms >= *now_ms
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "P2",
                        e.t_us(),
                        format!(
                            "{node}: took over the cleanup lock of worker {worker} from {holder} on a view at {now_ms} ms, but that lock lived until {expires_ms} ms: two cleaners"
                        ),
                    ));
                }
                let Some(&ttl) = ttl_ms.get(node) else { continue };
                let expires = keel::pool::decode::cleanup_lock(plain(lock)).map(|(_, ms)| ms);
                if expires != Some(now_ms + ttl) && v.len() < 20 {
                    v.push(Violation::new(
                        "P39",
                        e.t_us(),
                        format!(
                            "{node}: the cleanup lock of worker {worker} taken on a view at {now_ms} ms is {lock:?}: it must expire at {} ms, the pool's cleanup_lock_ttl ({ttl} ms) later",
                            now_ms + ttl
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
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn locked(t_ms: u64) -> Ev {
        let (worker, lock) = ("w".into(), "n1.1|9000".into());
        at(t_ms, PoolEvent::CleanupLocked { worker, lock, keepalive: None, now_ms: 1 })
    }

    fn released(t_ms: u64, lock: &'static str) -> Ev {
        at(t_ms, PoolEvent::CleanupReleased { worker: "w".into(), lock: lock.into(), released: true })
    }

    fn ended(t_ms: u64, outcome: &'static str) -> Ev {
        let (worker, lock, outcome) = ("w".into(), "n1.1|9000".into(), outcome.into());
        at(t_ms, PoolEvent::CleanupEnded { worker, lock, outcome, locked: true })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&cleanups_release_their_lock(h))
    }

    #[test]
    fn a_cleanup_that_took_its_lock_releases_it_or_p34_fires_at_its_end() {
        // Cleaned, or found alive: released before the end (refused or failed counts: it was tried).
        assert_eq!(judge(&[locked(10), released(20, "n1.1|9000"), ended(21, "cleaned")]), []);
        let refused =
            at(20, PoolEvent::CleanupReleased { worker: "w".into(), lock: "n1.1|9000".into(), released: false });
        assert_eq!(judge(&[locked(10), refused, ended(21, "alive")]), []);
        // Found alive and ended holding the lock (MC135).
        assert_eq!(judge(&[locked(10), ended(21, "alive")]), [("P34", 21)]);
        assert_eq!(judge(&[locked(10), ended(21, "cleaned")]), [("P34", 21)]);
        // A takeover's lock too; and a release of another value is not ours.
        let (worker, from, lock) = ("w".into(), "n2.1|1".into(), "n1.1|9000".into());
        let takeover = at(10, PoolEvent::CleanupTakeover { worker, from, lock, keepalive: None, now_ms: 1 });
        assert_eq!(judge(&[takeover.clone(), released(20, "n1.1|9000"), ended(21, "cleaned")]), []);
        assert_eq!(judge(&[takeover, released(20, "n2.1|1"), ended(21, "cleaned")]), [("P34", 21)]);
    }

    /// A lock expiring the pool's lock TTL after its view passes; one a worker TTL after (MC147)
    /// is P39 at the take.
    #[test]
    fn a_cleanup_lock_lives_exactly_its_ttl_from_the_view() {
        let started = at(
            0,
            PoolEvent::NodeStarted {
                pool: "p".into(),
                node: "n1".into(),
                ack_grace_us: 1,
                sweep_interval_us: 1,
                cleanup_lock_ttl_us: 8_999_000,
                op_timeout_us: 1,
                dedup_window_us: 600_000_000,
                drift_margin_us: 150_000,
            },
        );
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&cleanup_locks_keep_their_ttl(h));
        assert_eq!(judge(&[started.clone(), locked(10)]), []); // "n1.1|9000", view at 1 ms
        let short = at(
            10,
            PoolEvent::CleanupLocked { worker: "w".into(), lock: "n1.1|1501".into(), keepalive: None, now_ms: 1 },
        );
        assert_eq!(judge(&[started, short.clone()]), [("P39", 10)]);
        assert_eq!(judge(&[short]), [], "not judged before the node's start");
    }

    /// A lock taken over once it expired passes; one taken over at its last live millisecond is
    /// two cleaners (MC275), judged at the takeover, before the node's start too.
    #[test]
    fn a_lock_is_taken_over_only_once_it_expired() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&cleanup_locks_keep_their_ttl(h));
        let takeover = |t_ms, from: &'static str| {
            let (worker, from, lock) = ("w".into(), from.into(), "n1.1|9001".into());
            at(t_ms, PoolEvent::CleanupTakeover { worker, from, lock, keepalive: None, now_ms: 2 })
        };
        assert_eq!(judge(&[takeover(10, "n2.1|1")]), []);
        assert_eq!(judge(&[takeover(10, "n2.1|2")]), [("P2", 10)]);
    }

    #[test]
    fn the_lock_is_left_to_expire_only_by_its_lifetime_a_store_error_or_a_crash() {
        for outcome in ["lock_lifetime", "store_error", "confused"] {
            assert_eq!(judge(&[locked(10), ended(21, outcome)]), [], "{outcome}");
        }
        // A crash or a restart ends the cleanup unjudged.
        let crash = Ev(15_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[locked(10), crash, ended(21, "alive")]), []);
        // A cleanup that never took the lock has none to release.
        let (worker, lock, outcome) = ("w".into(), "n1.1|9000".into(), "not_ours".into());
        assert_eq!(judge(&[at(21, PoolEvent::CleanupEnded { worker, lock, outcome, locked: false })]), []);
        // Another node's cleanup of the same worker is its own.
        let other = Ev(20_000, "n2", locked(0).2, None);
        assert_eq!(judge(&[other, locked(10), released(20, "n1.1|9000"), ended(21, "cleaned")]), []);
    }
}
