//! Who may run a pool job and who may take one, judged at the decision from keel's own events:
//!
//! - **P2 at the start**: an attempt of a job is started by one worker only;
//! - **P2 of cleaners**: a stale cleanup-lock value is taken over once;
//! - **P3 of assignments**: no job is given to a worker whose last keep-alive is older than its
//!   TTL at the decision's store time.
//!
//! They read nothing a scenario records, so they are among the pool rules every run with a keel
//! pool gets ([`crate::keel_rules::pool_rules`]).

use std::collections::BTreeMap;

use keel::observe::{PoolEvent, Text};

use crate::check::Violation;
use crate::history::{Event, ServerEv, Who, plain};

/// An assignment decision of the core: (job, worker, attempt, store time).
pub(crate) fn assignment(e: &Event) -> Option<(&Text<'static>, &Text<'static>, u64, u64)> {
    match e.pool()? {
        PoolEvent::Dispatched { job, worker, attempt, now_ms } => Some((job, worker, *attempt, *now_ms)),
        PoolEvent::Moved { job, worker, attempt, now_ms, .. } => Some((job, worker, *attempt, *now_ms)),
        _ => None,
    }
}

/// P2, at the instant: an attempt of a job is started by one worker only. Every move of a job
/// (requeue, hand-back, re-dispatch) raises its attempt, so a second worker starting the same
/// attempt means the job's record was written over while it ran (MP15: a retried dispatch
/// admitted again by a stale view), seen here at the second start, whether or not the two
/// runs then overlap or both complete. A key dispatched again after its completion starts its
/// attempts anew.
pub fn one_runner_per_attempt(events: &[Event]) -> Vec<Violation> {
    let mut runner: BTreeMap<&str, BTreeMap<u64, &str>> = BTreeMap::new();
    let mut completed: BTreeMap<&str, bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        // A completion the store applied ends the key's attempts though its worker never
        // learnt it (every reply lost).
        if let Some(ServerEv::CompletionLanded { job, .. }) = e.server() {
            completed.insert(job.as_str(), true);
            continue;
        }
        // The store deleted the key's tombstone: its dedup window passed and a dispatch may add
        // it anew, attempts from 1, before that dispatch's own event comes home.
        if let Some(ServerEv::TombstoneDeleted { job, .. }) = e.server() {
            runner.remove(job.as_str());
            completed.remove(job.as_str());
            continue;
        }
        match e.pool() {
            Some(PoolEvent::Completed { job, .. }) => {
                completed.insert(plain(job), true);
            }
            Some(PoolEvent::Dispatched { job, .. }) if completed.remove(plain(job)).is_some() => {
                runner.remove(plain(job));
            }
            Some(PoolEvent::Started { job, worker, attempt }) => {
                let first = *runner.entry(plain(job)).or_default().entry(*attempt).or_insert(plain(worker));
                if first != plain(worker) {
                    v.push(Violation::new(
                        "P2",
                        e.t_us,
                        format!("{job}: attempt {attempt} started by {worker} after {first} started it"),
                    ));
                }
            }
            _ => {}
        }
    }
    v.truncate(20);
    v
}

/// P15: a cleaner releases only its own cleanup lock. The store node records a removal of a lock
/// value another node wrote (`foreign_lock_removed`): a release that does not compare (a plain
/// delete) removes the lock of the cleaner that took over after ours expired, and a third cleaner
/// can then lock the worker while the second still cleans it; a takeover by delete then
/// set-if-absent (pulse's, MP9) removes the stale lock another node wrote, and two cleaners race
/// for it. keel releases by compare-and-delete and takes a stale lock over by compare-and-set.
/// Judged at the removal: MP9 fires it at pool seed 1, before P2 sees two takeovers (seed 6). A
/// plain-delete release (blind-spot hunt, round 5, pool #5) reaches it only when the cleaner
/// pauses between its lock-lifetime check and its release: not in 300 seeds, so no mutant of
/// its own.
pub fn cleaners_release_their_own_lock(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::ForeignLockRemoved { worker, lock, writer, by }) = e.server() {
            v.push(Violation::new(
                "P15",
                e.t_us,
                format!("{by} removed worker {worker}'s cleanup lock {lock:?}, which {writer} holds"),
            ));
        }
    }
    v.truncate(20);
    v
}

/// P71: a cleanup lock is removed only by compare-and-delete, at the store as the delete
/// applies (`cleanup_lock_deleted_blind`). P15 sees a blind release only once it removes another
/// node's lock, which takes a cleaner whose lock expired and was taken over between its last
/// write and its release: not in 300 seeds (round 5), nor in 600 of round 37 (B #13). The
/// delete itself is the bug, judged every time it runs (blind-spot hunt, round 37, B #13, MC341;
/// MP9's takeover by delete fires it too).
pub fn cleanup_locks_deleted_as_expected(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::CleanupLockDeletedBlind { worker, lock, by }) = e.server() {
            v.push(Violation::new(
                "P71",
                e.t_us,
                format!(
                    "{by} deleted worker {worker}'s cleanup lock ({}) without comparing it: another cleaner's lock may go with it",
                    lock.as_deref().unwrap_or("absent")
                ),
            ));
        }
    }
    v.truncate(20);
    v
}

/// P2 of cleaners: the cleanup lock admits one cleaner, so no stale lock value is taken over
/// twice.
pub fn one_cleaner_per_lock(events: &[Event]) -> Vec<Violation> {
    let mut seen: BTreeMap<(&str, &str), Who> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::CleanupTakeover { worker, from, .. }) = e.pool() else { continue };
        if let Some(first) = seen.insert((plain(worker), plain(from)), e.node) {
            v.push(Violation::new(
                "P2",
                e.t_us,
                format!(
                    "cleanup lock of {worker} taken over from the same stale value by {first} and {}: two cleaners",
                    e.node
                ),
            ));
        }
    }
    v
}

/// **P60**: a move takes a job somewhere: no `moved` both off the queue and back into it (`from`
/// and `worker` empty). Such a move rewrites a queued job under a new attempt for nothing, and
/// its pending bookkeeping with it; a sweep that assigns its queued jobs without first asking
/// for a live worker (blind-spot hunt, round 27, A #12: reached 3 140 times per 300 seeds)
/// makes one per queued job per sweep while no worker lives. Judged at each `moved`.
pub fn moves_go_somewhere(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::Moved { kind, job, from, worker, attempt, .. }) = e.pool() else { continue };
        if plain(from).is_empty() && plain(worker).is_empty() && v.len() < 20 {
            v.push(Violation::new(
                "P60",
                e.t_us,
                format!(
                    "{}: {job} moved ({}) from the queue back into it, as attempt {attempt}",
                    e.node,
                    kind.as_str()
                ),
            ));
        }
    }
    v
}

/// P3: no job is assigned to a worker whose own last keep-alive (store time) is older than its
/// TTL (the `ttl_ms` that keep-alive was written with) at the store time of the decision.
pub fn assignments_to_live_workers(events: &[Event]) -> Vec<Violation> {
    // worker → its keep-alives: (store ms, TTL ms), by store ms.
    let mut beats: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for e in events {
        if let Some(PoolEvent::Keepalive { worker, ms, ttl_ms, .. }) = e.pool() {
            beats.entry(plain(worker)).or_default().push((*ms, *ttl_ms));
        }
    }
    for b in beats.values_mut() {
        b.sort_unstable();
    }
    let mut v = Vec::new();
    for e in events {
        let Some((job, w, _, now)) = assignment(e) else { continue };
        let w: &str = plain(w);
        if w.is_empty() {
            continue; // queued
        }
        let last = beats.get(w).and_then(|b| b.iter().rev().find(|&&(ms, _)| ms <= now).copied());
        if last.is_none_or(|(ms, ttl)| now - ms > ttl) {
            v.push(Violation::new(
                "P3",
                e.t_us,
                format!(
                    "{job} assigned to {w}, whose last keep-alive was {} at store time {now}",
                    last.map_or("never".to_owned(), |(ms, ttl)| format!("{} ms old (TTL {ttl} ms)", now - ms))
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::pool;

    fn started(t_ms: u64, worker: &str, attempt: u64) -> Event {
        pool(t_ms, PoolEvent::Started { job: "j".into(), worker: worker.into(), attempt })
    }

    #[test]
    fn a_second_worker_starting_the_same_attempt_fires_p2_unless_the_key_was_dispatched_anew() {
        let twice = vec![started(1, "a", 1), started(2, "b", 2), started(3, "c", 2)];
        let v = one_runner_per_attempt(&twice);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P2", 3_000));
        // The same worker again (a retried start) is no second runner.
        assert!(one_runner_per_attempt(&[started(1, "a", 1), started(2, "a", 1)]).is_empty());
        // Completed, then the key dispatched again: its attempts start anew.
        let done = PoolEvent::Completed { job: "j".into(), worker: "a".into(), attempt: 1 };
        let again = PoolEvent::Dispatched { job: "j".into(), worker: "b".into(), attempt: 1, now_ms: 5 };
        let anew = vec![started(1, "a", 1), pool(2, done), pool(3, again.clone()), started(4, "b", 1)];
        assert!(one_runner_per_attempt(&anew).is_empty(), "a new life of the key");
        // A dispatch of a key never completed forgets nothing.
        let live = vec![started(1, "a", 1), pool(3, again), started(4, "b", 1)];
        assert_eq!(one_runner_per_attempt(&live).len(), 1);
    }

    #[test]
    fn a_cleanup_lock_deleted_without_comparing_fires_p71() {
        use crate::scenario::test_history::at;
        let blind = |lock: Option<&str>| {
            let (worker, lock) = ("w".into(), lock.map(str::to_owned));
            at(5, Who::Store, ServerEv::CleanupLockDeletedBlind { worker, lock, by: Who::Node(1) })
        };
        let v = cleanup_locks_deleted_as_expected(&[blind(Some("n1.1|9000"))]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P71", 5_000)]);
        assert_eq!(cleanup_locks_deleted_as_expected(&[blind(None)]).len(), 1, "even with none held");
        assert!(cleanup_locks_deleted_as_expected(&[]).is_empty());
    }

    #[test]
    fn an_assignment_to_a_worker_past_its_own_ttl_fires_p3() {
        let beat = |t_ms: u64, ttl_ms: u64| {
            pool(t_ms, PoolEvent::Keepalive { worker: "w".into(), ms: t_ms, ttl_ms, stopping: false })
        };
        let given = |now_ms: u64| {
            pool(now_ms, PoolEvent::Dispatched { job: "j".into(), worker: "w".into(), attempt: 1, now_ms })
        };
        assert!(assignments_to_live_workers(&[beat(1_000, 1_500), given(2_500)]).is_empty(), "live to its TTL");
        let v = assignments_to_live_workers(&[beat(1_000, 1_500), given(2_501)]);
        assert_eq!((v.len(), v[0].invariant), (1, "P3"), "{v:?}");
        // Each worker's own TTL: a longer one keeps it live.
        assert!(assignments_to_live_workers(&[beat(1_000, 3_000), given(2_501)]).is_empty());
        // Never beaten; queued jobs are not judged.
        assert_eq!(assignments_to_live_workers(&[given(10)]).len(), 1);
        let queued = PoolEvent::Dispatched { job: "j".into(), worker: "".into(), attempt: 1, now_ms: 9 };
        assert!(assignments_to_live_workers(&[pool(9, queued)]).is_empty());
    }
}
