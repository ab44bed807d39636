//! Cleaning up a dead worker, as a pure machine: `(state, reply) -> command`.
//!
//! No I/O, no clock, no runtime. The driver (`PoolCore::cleanup`) performs each [`Command`] on the
//! store and feeds the reply back with the time elapsed since its sweep read the view the cleanup
//! started from (the lock it writes expires a lock TTL after that view's store time); a store error
//! ends the cleanup in the driver (the lock is left to expire, the next sweep finishes the job:
//! every step is idempotent). The same machine is driven by the exhaustive model of the cleanup
//! protocol (`models/src/cleanup.rs`), so what the model proves is what runs.
//!
//! ```text
//! lock ─▶ re-judge (keep-alive, store time) ─▶ fence (keep-alive := dead)
//!   └ busy / lost: done       └ alive: release      └ beat again: release
//!        ─▶ requeue rounds (read owned jobs, move each) ─▶ delete keep-alive ─▶ delete worker ─▶ release
//! ```
//!
//! The pool's cleanup mutants are branches of this machine: MP4 (pulse before PR #51: the
//! keep-alive moved to last-seen + ttl serves as the lock) and MP9 (stale-lock takeover by
//! delete-then-set). MP10 (pulse #61) is on the graceful stop path (`Worker::remove_from_maps`),
//! where pulse had it, not here.

use std::time::Duration;

use super::state::{self, CleanupLock, DEAD, KeepAlive, LockStep};
use crate::mutants::{self, Mutant};
use crate::store::MapWrite;

/// Requeue rounds before the cleaner gives up on a worker that keeps receiving jobs (a dispatch
/// may land between the read of its jobs and their moves).
pub const REQUEUE_ROUNDS_MAX: u32 = 4;

/// Which map a write goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMap {
    Cleanup,
    Keepalive,
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Write the worker's entry in `map` (taking the lock, or MP9's delete before it); reply
    /// [`Reply::Written`].
    Lock { map: LockMap, write: MapWrite },
    /// Read the worker's keep-alive; reply [`Reply::Keepalive`].
    ReadKeepalive,
    /// Read the store's time; reply [`Reply::Time`].
    ReadTime,
    /// Replace the stale keep-alive (exactly `expected`; `None`: none) by the dead marker
    /// ([`fence_write`]); reply [`Reply::Written`].
    Fence { expected: Option<String> },
    /// Read a fresh view of the jobs (and the workers to move them to); reply [`Reply::Owned`]
    /// with the jobs the worker owns, as (job, raw record).
    ReadOwned,
    /// Move `job` (record `raw`) off the worker under its next attempt (with retries; done when
    /// it moved or the worker no longer owns it); reply [`Reply::Done`].
    Requeue { job: String, raw: String },
    /// Delete the worker's keep-alive if it is exactly `expected` (the dead marker, or MP4's
    /// claim); reply [`Reply::Written`].
    DeleteKeepalive { expected: String },
    /// Delete the worker's registration; reply [`Reply::Written`].
    DeleteWorker,
    /// Best effort: delete the lock `lock` if it is still ours (errors ignored); reply
    /// [`Reply::Done`].
    Release { lock: String },
    /// The cleanup is over.
    Finish(Outcome),
}

impl Command {
    /// Whether it writes the worker's state or its jobs (what a lock that expired must not see).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Command::Fence { .. } | Command::Requeue { .. } | Command::DeleteKeepalive { .. } | Command::DeleteWorker
        )
    }
}

/// The write of [`Command::Fence`]: the keep-alive, exactly `expected` (`None`: absent),
/// replaced by the dead marker.
pub fn fence_write(expected: Option<&str>) -> MapWrite {
    match expected {
        Some(v) => MapWrite::CompareAndSet { expected: v.to_owned(), new: DEAD.to_owned() },
        None => MapWrite::SetIfAbsent(DEAD.to_owned()),
    }
}

/// A store reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reply {
    /// A conditional write: applied, and the value the key holds now.
    Written { applied: bool, value: Option<String> },
    /// The keep-alive's value.
    Keepalive(Option<String>),
    /// Store time, ms.
    Time(u64),
    /// The jobs the worker owns, as (job, raw record).
    Owned(Vec<(String, String)>),
    /// The command is done.
    Done,
}

/// How a cleanup ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Someone else holds the lock, or we lost the race for it: nothing touched.
    NotOurs,
    /// The worker is alive on a fresh read (or beat again before its fence): left alone.
    Alive,
    /// Every job moved, the worker's state deleted, the lock released.
    Cleaned,
    /// The lock could have expired before the next write: stopped without releasing, so no
    /// write happens under a lock another cleaner may already hold.
    LockLifetime,
    /// A reply that does not fit the step (a driver bug): stopped where it was.
    Confused,
}

/// How the lock is being taken (for the driver's event once it is).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// A free lock, by set-if-absent.
    Take,
    /// A stale lock, from exactly this value.
    TakeOver(String),
    /// MP4: the keep-alive as the lock (no lock event).
    Keepalive,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// MP9: the stale lock was deleted; the set-if-absent follows.
    Mp9Deleted {
        observed: String,
    },
    Locking(Attempt),
    ReadingKeepalive,
    ReadingTime {
        keepalive: Option<String>,
    },
    Fencing,
    ReadingOwned,
    Requeueing {
        rest: Vec<(String, String)>,
    },
    DeletingKeepalive,
    DeletingWorker,
    Releasing {
        outcome: Outcome,
    },
    Finished,
}

/// One cleaner's cleanup of one worker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cleanup {
    /// The lock value this cleaner writes (and, once taken, holds).
    pub lock: String,
    ttl_ms: u64,
    /// How long after the view was read a write may still start: the lock's TTL (counted from
    /// the view's store time) less two operation timeouts, so the write lands before the lock can
    /// expire and another cleaner take it over.
    lock_budget: Duration,
    rounds: u32,
    phase: Phase,
    /// The lock was taken (the steps under it may run).
    pub locked: bool,
}

/// What a cleaner knows when it starts: what its sweep's view showed of the worker.
#[derive(Clone, Debug)]
pub struct Start<'a> {
    /// Store time of the view, ms.
    pub now_ms: u64,
    /// The worker's keep-alive in the view.
    pub keepalive: Option<&'a str>,
    /// The worker's cleanup lock in the view.
    pub lock: Option<&'a str>,
    /// This cleaner's identity (node and incarnation).
    pub holder: String,
    /// The reader's worker TTL (for keep-alives that carry none).
    pub ttl_ms: u64,
    /// The cleanup lock's TTL.
    pub lock_ttl: Duration,
    /// The store operation timeout.
    pub op_timeout: Duration,
    /// Time since the sweep read the view (local clock): a sweep cleans its stale workers one
    /// after another from one view, and a slow sweep (each call timing out behind a partition)
    /// may reach a worker long after.
    pub since_view: Duration,
}

impl Cleanup {
    /// A cleanup of `start.worker` and its first command.
    pub fn start(s: &Start<'_>) -> (Cleanup, Command) {
        let now = s.now_ms;
        let mut c = Cleanup {
            lock: String::new(),
            ttl_ms: s.ttl_ms,
            lock_budget: s.lock_ttl.saturating_sub(s.op_timeout * 2),
            rounds: 0,
            phase: Phase::Locking(Attempt::Take),
            locked: false,
        };
        if mutants::active(Mutant::MP4) {
            // MP4 (pulse before PR #51): the keep-alive itself serves as the lock. The cleaner
            // moves it from the stale value it read to last-seen + ttl ("in the future so that
            // another node does not also requeue the jobs"), which the dead worker looks alive
            // by, and which is itself stale a TTL later: at last-seen + 2·ttl, already past if
            // the worker was found late. Every sweep from then on claims it again from the value
            // it reads (last-seen + 2·ttl, ...) and cleans too, while the first cleaner, whose
            // lock budget is counted for a cleanup lock it never took, is still moving jobs.
            let last_seen = s.keepalive.and_then(KeepAlive::parse).map_or(now.saturating_sub(s.ttl_ms), |k| k.ms);
            c.lock = KeepAlive { ms: last_seen.saturating_add(s.ttl_ms), ttl_ms: None, stopping: false }.encode();
            let write = match s.keepalive {
                Some(old) => MapWrite::CompareAndSet { expected: old.to_owned(), new: c.lock.clone() },
                None => MapWrite::SetIfAbsent(c.lock.clone()),
            };
            c.phase = Phase::Locking(Attempt::Keepalive);
            return (c, Command::Lock { map: LockMap::Keepalive, write });
        }
        if s.since_view >= c.lock_budget {
            // The rule of `on` from the first write: a lock taken from a view this old would
            // expire (store time) before it is written, and be left behind for a worker another
            // cleaner may have finished meanwhile (pool seed 784: written 17 s late, after the
            // heal). The next sweep reads afresh.
            let cmd = c.finish(Outcome::LockLifetime);
            return (c, cmd);
        }
        // MC147: the lock written to live a worker TTL, while the write budget counts the lock's.
        let lifetime = if mutants::active(Mutant::MC147) { s.ttl_ms } else { ms(s.lock_ttl) };
        c.lock = CleanupLock { holder: s.holder.clone(), expires_ms: now.saturating_add(lifetime) }.encode();
        let cmd = match state::lock_step(s.lock, now) {
            LockStep::Busy => c.finish(Outcome::NotOurs),
            LockStep::Take => Command::Lock { map: LockMap::Cleanup, write: MapWrite::SetIfAbsent(c.lock.clone()) },
            LockStep::TakeOver { observed } => {
                if mutants::active(Mutant::MP9) {
                    // MP9: delete-then-set. A second cleaner that observed the same stale lock
                    // deletes the first one's fresh lock and sets its own: both clean.
                    c.phase = Phase::Mp9Deleted { observed };
                    Command::Lock { map: LockMap::Cleanup, write: MapWrite::Delete }
                } else {
                    let write = MapWrite::CompareAndSet { expected: observed.clone(), new: c.lock.clone() };
                    c.phase = Phase::Locking(Attempt::TakeOver(observed));
                    Command::Lock { map: LockMap::Cleanup, write }
                }
            }
        };
        (c, cmd)
    }

    /// While the lock's write is out: how it is being taken (the driver reports the lock
    /// taken once the write applied).
    pub fn attempt(&self) -> Option<&Attempt> {
        match &self.phase {
            Phase::Locking(a) => Some(a),
            _ => None,
        }
    }

    /// The next command, given the reply to the last one and the time since the view was read.
    pub fn on(&mut self, reply: Reply, since_view: Duration) -> Command {
        let cmd = self.step(reply);
        if cmd.writes() && since_view >= self.lock_budget {
            // A cleaner never writes once its lock could have expired: another may hold it.
            return self.finish(Outcome::LockLifetime);
        }
        cmd
    }

    fn step(&mut self, reply: Reply) -> Command {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        match (phase, reply) {
            (Phase::Mp9Deleted { observed }, Reply::Written { .. }) => {
                self.phase = Phase::Locking(Attempt::TakeOver(observed));
                Command::Lock { map: LockMap::Cleanup, write: MapWrite::SetIfAbsent(self.lock.clone()) }
            }
            (Phase::Locking(_), Reply::Written { applied, .. }) => {
                if !applied {
                    return self.finish(Outcome::NotOurs);
                }
                self.locked = true;
                if mutants::active(Mutant::MP4) {
                    return self.read_owned(); // the claim was the judgement: no re-judge, no fence
                }
                // Re-judge on a fresh read (keep-alive, then store time) before touching
                // anything: the view's maps were read one after another, so a worker that
                // registered, or was given a job, after the view's keep-alive read looks stale in
                // a later map (seed 191: a live, draining worker's running job was requeued).
                self.phase = Phase::ReadingKeepalive;
                Command::ReadKeepalive
            }
            (Phase::ReadingKeepalive, Reply::Keepalive(keepalive)) => {
                self.phase = Phase::ReadingTime { keepalive };
                Command::ReadTime
            }
            (Phase::ReadingTime { keepalive }, Reply::Time(now_ms)) => {
                let Some(current) = keepalive else {
                    if mutants::active(Mutant::MC100) {
                        return self.read_owned(); // MC100: no keep-alive taken for a fence
                    }
                    // No keep-alive: the worker was cleaned already, or has not registered yet.
                    // Its absence is no fence: a registration can write one at any time, and the
                    // jobs dispatched to it from then on would be moved off a live worker. Fence
                    // the absence itself, as a stale value is.
                    self.phase = Phase::Fencing;
                    return Command::Fence { expected: None };
                };
                if !state::stale_keepalive(&current, now_ms, self.ttl_ms) {
                    if mutants::active(Mutant::MC135) {
                        return self.finish(Outcome::Alive); // MC135: the lock left held
                    }
                    return self.release(Outcome::Alive);
                }
                if current == DEAD {
                    return self.read_owned();
                }
                // Fence the worker first: replace its stale keep-alive (exactly the value judged
                // stale) by the dead marker, so a late beat cannot resurrect it while its jobs
                // move.
                self.phase = Phase::Fencing;
                Command::Fence { expected: Some(current) }
            }
            (Phase::Fencing, Reply::Written { applied, value }) => {
                // MC68: a refused fence taken as done: the live worker's jobs are moved.
                // MC437: every fence taken as refused: the fenced worker released as alive.
                let refused =
                    (!applied && value.as_deref().is_some_and(|v| v != DEAD)) || mutants::active(Mutant::MC437);
                if refused && !mutants::active(Mutant::MC68) {
                    return self.release(Outcome::Alive); // it beat again before its cleanup
                }
                self.read_owned()
            }
            (Phase::ReadingOwned, Reply::Owned(owned)) => {
                self.rounds += 1;
                if owned.is_empty() || self.rounds > REQUEUE_ROUNDS_MAX {
                    return self.delete_keepalive();
                }
                self.requeue_next(owned)
            }
            (Phase::Requeueing { rest }, Reply::Done) => {
                if rest.is_empty() {
                    return self.read_owned_again();
                }
                self.requeue_next(rest)
            }
            (Phase::DeletingKeepalive, Reply::Written { .. }) => {
                self.phase = Phase::DeletingWorker;
                Command::DeleteWorker
            }
            (Phase::DeletingWorker, Reply::Written { .. }) => self.release(Outcome::Cleaned),
            (Phase::Releasing { outcome }, Reply::Done) => self.finish(outcome),
            (phase, reply) => {
                crate::keel_assert!(false, "cleanup: reply {reply:?} does not fit phase {phase:?}");
                self.finish(Outcome::Confused)
            }
        }
    }

    fn read_owned(&mut self) -> Command {
        self.phase = Phase::ReadingOwned;
        Command::ReadOwned
    }

    /// After a round: read again, the loop ends when a fresh read shows no job owned.
    fn read_owned_again(&mut self) -> Command {
        if self.rounds >= REQUEUE_ROUNDS_MAX {
            return self.delete_keepalive();
        }
        self.read_owned()
    }

    fn requeue_next(&mut self, mut owned: Vec<(String, String)>) -> Command {
        let (job, raw) = owned.remove(0);
        self.phase = Phase::Requeueing { rest: owned };
        Command::Requeue { job, raw }
    }

    /// Every job is requeued: now (and only now) delete the worker's state. Only our own marker
    /// goes: a worker that re-registered under this id meanwhile stays.
    fn delete_keepalive(&mut self) -> Command {
        let expected = if mutants::active(Mutant::MP4) { self.lock.clone() } else { DEAD.to_owned() };
        self.phase = Phase::DeletingKeepalive;
        Command::DeleteKeepalive { expected }
    }

    fn release(&mut self, outcome: Outcome) -> Command {
        if mutants::active(Mutant::MP4) {
            return self.finish(outcome); // the "lock" was the keep-alive, deleted with the worker
        }
        self.phase = Phase::Releasing { outcome };
        Command::Release { lock: self.lock.clone() }
    }

    fn finish(&mut self, outcome: Outcome) -> Command {
        self.phase = Phase::Finished;
        Command::Finish(outcome)
    }
}

#[cfg(feature = "model")]
/// Whether a worker whose keep-alive reads `keepalive` is stale at store time `now_ms` (the
/// sweep's judgement, for the model).
pub fn keepalive_stale(keepalive: &str, now_ms: u64, ttl_ms: u64) -> bool {
    state::stale_keepalive(keepalive, now_ms, ttl_ms)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 1000;
    const NOW: u64 = 50_000;
    /// A keep-alive last written long before `NOW`.
    const OLD: &str = "1000|1000";

    fn start(lock: Option<&str>) -> (Cleanup, Command) {
        start_from(Duration::ZERO, lock)
    }

    /// A cleanup started `since_view` after its sweep read the view.
    fn start_from(since_view: Duration, lock: Option<&str>) -> (Cleanup, Command) {
        Cleanup::start(&Start {
            now_ms: NOW,
            keepalive: Some(OLD),
            lock,
            holder: "n1.1".into(),
            ttl_ms: TTL,
            lock_ttl: Duration::from_millis(3000),
            op_timeout: Duration::from_millis(500),
            since_view,
        })
    }

    fn written(applied: bool, value: Option<&str>) -> Reply {
        Reply::Written { applied, value: value.map(str::to_owned) }
    }

    fn owned(jobs: &[&str]) -> Reply {
        Reply::Owned(jobs.iter().map(|j| ((*j).to_owned(), format!("{j}-rec"))).collect())
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn a_dead_worker_is_locked_rejudged_fenced_emptied_deleted_and_released_in_that_order() {
        let (mut c, cmd) = start(None);
        assert_eq!(cmd, Command::Lock { map: LockMap::Cleanup, write: MapWrite::SetIfAbsent(c.lock.clone()) });
        assert_eq!(c.lock, "n1.1|53000", "the lock names its holder and expires a lock TTL after the view");
        assert_eq!(c.attempt(), Some(&Attempt::Take));
        assert_eq!(c.on(written(true, None), T0), Command::ReadKeepalive);
        assert!(c.locked);
        assert_eq!(c.on(Reply::Keepalive(Some(OLD.into())), T0), Command::ReadTime);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::Fence { expected: Some(OLD.into()) });
        assert_eq!(c.on(written(true, Some(DEAD)), T0), Command::ReadOwned);
        assert_eq!(c.on(owned(&["a", "b"]), T0), Command::Requeue { job: "a".into(), raw: "a-rec".into() });
        assert_eq!(c.on(Reply::Done, T0), Command::Requeue { job: "b".into(), raw: "b-rec".into() });
        assert_eq!(c.on(Reply::Done, T0), Command::ReadOwned, "a dispatch may have landed meanwhile");
        assert_eq!(c.on(owned(&[]), T0), Command::DeleteKeepalive { expected: DEAD.into() });
        assert_eq!(c.on(written(true, None), T0), Command::DeleteWorker);
        assert_eq!(c.on(written(true, None), T0), Command::Release { lock: c.lock.clone() });
        assert_eq!(c.on(Reply::Done, T0), Command::Finish(Outcome::Cleaned));
    }

    #[test]
    fn a_live_lock_or_a_lost_race_touches_nothing() {
        let (_, cmd) = start(Some("n2.1|60000"));
        assert_eq!(cmd, Command::Finish(Outcome::NotOurs));
        let (mut c, _) = start(None);
        assert_eq!(c.on(written(false, Some("n2.1|53000")), T0), Command::Finish(Outcome::NotOurs));
        assert!(!c.locked);
    }

    #[test]
    fn a_stale_lock_is_taken_over_from_exactly_the_value_seen() {
        let (c, cmd) = start(Some("n2.1|40000"));
        let write = MapWrite::CompareAndSet { expected: "n2.1|40000".into(), new: c.lock.clone() };
        assert_eq!(cmd, Command::Lock { map: LockMap::Cleanup, write });
        assert_eq!(c.attempt(), Some(&Attempt::TakeOver("n2.1|40000".into())));
    }

    #[test]
    fn a_worker_alive_on_the_fresh_read_or_beating_before_its_fence_is_left_alone_and_the_lock_released() {
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(format!("{NOW}|1000"))), T0);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::Release { lock: c.lock.clone() });
        assert_eq!(c.on(Reply::Done, T0), Command::Finish(Outcome::Alive));
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(OLD.into())), T0);
        c.on(Reply::Time(NOW), T0);
        assert_eq!(c.on(written(false, Some("50001|1000")), T0), Command::Release { lock: c.lock.clone() });
        // Fenced meanwhile by another cleaner (the compare-and-set finds the dead marker): go on.
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(OLD.into())), T0);
        c.on(Reply::Time(NOW), T0);
        assert_eq!(c.on(written(false, Some(DEAD)), T0), Command::ReadOwned);
        // Already fenced by an earlier cleaner that crashed: go on.
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(DEAD.into())), T0);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::ReadOwned, "the dead marker is not fenced again");
    }

    /// A fence refused because the keep-alive vanished since the re-judge (the worker
    /// deregistered, or a cleaner finished it) is no beat: the jobs still naming the worker move
    /// (blind-spot hunt, round 37, B #3: taken for a live worker, they stayed on a worker gone for
    /// good until a later sweep found them orphaned).
    #[test]
    fn a_fence_refused_over_a_vanished_keep_alive_goes_on() {
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(OLD.into())), T0);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::Fence { expected: Some(OLD.into()) });
        assert_eq!(c.on(written(false, None), T0), Command::ReadOwned);
    }

    /// A worker with no keep-alive (cleaned already, or not registered yet) is fenced all the
    /// same: its registration may land at any time (poolfeed seed 1463, MC100).
    #[test]
    fn a_missing_keep_alive_is_fenced_and_a_registration_that_lands_first_wins() {
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::Fence { expected: None });
        assert_eq!(fence_write(None), MapWrite::SetIfAbsent(DEAD.into()), "the marker set where none is");
        assert_eq!(c.on(written(true, Some(DEAD)), T0), Command::ReadOwned);
        // The worker registered between the read and the fence: it is alive.
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        c.on(Reply::Time(NOW), T0);
        assert_eq!(c.on(written(false, Some("53100|1500")), T0), Command::Release { lock: c.lock.clone() });
    }

    #[test]
    fn no_write_starts_once_the_lock_could_expire_before_it_lands() {
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        c.on(Reply::Time(NOW), T0);
        c.on(written(true, Some(DEAD)), T0);
        let budget = Duration::from_millis(3000 - 2 * 500);
        assert_eq!(
            c.on(owned(&["a"]), budget - Duration::from_millis(1)),
            Command::Requeue { job: "a".into(), raw: "a-rec".into() }
        );
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        c.on(Reply::Time(NOW), T0);
        c.on(written(true, Some(DEAD)), T0);
        assert_eq!(c.on(owned(&["a"]), budget), Command::Finish(Outcome::LockLifetime), "and no release");
        // Not only moves: the fence and the deletes too (found by the cleanup model: a cleaner
        // stalled before its fence wrote it after its lock could have been taken over).
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(Some(OLD.into())), T0);
        assert_eq!(c.on(Reply::Time(NOW), budget), Command::Finish(Outcome::LockLifetime));
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        c.on(Reply::Time(NOW), T0);
        c.on(written(true, Some(DEAD)), T0);
        assert_eq!(c.on(owned(&[]), budget), Command::Finish(Outcome::LockLifetime));
        // The first write too: a cleanup started from a view read a lock budget ago takes no
        // lock (pool seed 784: a sweep slowed by a partition wrote one, already expired, 17 s
        // after its view, for a worker another node had cleaned meanwhile). Just inside, it does.
        let from_view = |since_view, lock: Option<&str>| start_from(since_view, lock).1;
        assert_eq!(from_view(budget, None), Command::Finish(Outcome::LockLifetime));
        assert_eq!(from_view(budget, Some("n2.1|1")), Command::Finish(Outcome::LockLifetime), "nor a takeover");
        assert!(matches!(from_view(budget - Duration::from_millis(1), None), Command::Lock { .. }));
        // Reads go on past the budget: only writes could land under someone else's lock.
        let (mut c, _) = start(None);
        assert_eq!(c.on(written(true, None), budget), Command::ReadKeepalive);
    }

    #[test]
    fn a_worker_that_keeps_receiving_jobs_is_read_four_times_at_most() {
        let (mut c, _) = start(None);
        c.on(written(true, None), T0);
        c.on(Reply::Keepalive(None), T0);
        assert_eq!(c.on(Reply::Time(NOW), T0), Command::Fence { expected: None });
        let mut cmd = c.on(written(true, Some(DEAD)), T0);
        let mut reads = 0;
        while cmd == Command::ReadOwned {
            reads += 1;
            assert!(matches!(c.on(owned(&["a"]), T0), Command::Requeue { .. }));
            cmd = c.on(Reply::Done, T0);
        }
        assert_eq!((reads, cmd), (REQUEUE_ROUNDS_MAX, Command::DeleteKeepalive { expected: DEAD.into() }));
    }

    #[cfg(feature = "mutants")]
    fn with<T>(m: Mutant, f: impl FnOnce() -> T) -> T {
        let prev = mutants::set(Some(m));
        let out = f();
        mutants::set(prev);
        out
    }

    #[cfg(feature = "mutants")]
    #[test]
    fn the_mutants_are_branches_of_the_machine() {
        // MP9: the stale lock deleted, then set if absent: a cleaner that took it over meanwhile
        // loses its lock to us.
        with(Mutant::MP9, || {
            let (mut c, cmd) = start(Some("n2.1|40000"));
            assert_eq!(cmd, Command::Lock { map: LockMap::Cleanup, write: MapWrite::Delete });
            let set = Command::Lock { map: LockMap::Cleanup, write: MapWrite::SetIfAbsent(c.lock.clone()) };
            assert_eq!(c.on(written(true, None), T0), set);
        });
        // MP4 (pulse before PR #51): the stale keep-alive moved to last-seen + ttl is the claim;
        // no re-judge, no fence, nothing to release.
        with(Mutant::MP4, || {
            let (mut c, cmd) = start(None);
            let claim = format!("{}", 1000 + TTL);
            let write = MapWrite::CompareAndSet { expected: OLD.into(), new: claim.clone() };
            assert_eq!(cmd, Command::Lock { map: LockMap::Keepalive, write });
            assert_eq!(c.attempt(), Some(&Attempt::Keepalive));
            assert_eq!(c.on(written(true, None), T0), Command::ReadOwned, "no re-judge, no fence");
            assert_eq!(c.on(owned(&[]), T0), Command::DeleteKeepalive { expected: claim });
            assert_eq!(c.on(written(true, None), T0), Command::DeleteWorker);
            assert_eq!(c.on(written(true, None), T0), Command::Finish(Outcome::Cleaned), "no release");
        });
        // MC135: a worker alive on the fresh re-read is left alone, its lock held.
        with(Mutant::MC135, || {
            let (mut c, _) = start(None);
            c.on(written(true, None), T0);
            c.on(Reply::Keepalive(Some(format!("{NOW}|1000"))), T0);
            assert_eq!(c.on(Reply::Time(NOW), T0), Command::Finish(Outcome::Alive), "no release");
        });
    }

    /// MP4's claim (last-seen + ttl) is itself stale at last-seen + 2·ttl: a worker found late
    /// (here 49 s after its last beat) is claimed by a value already stale, so a second cleaner's
    /// sweep claims it again while the first one is still moving its jobs, and both act.
    #[cfg(feature = "mutants")]
    #[test]
    fn mp4_a_second_cleaner_takes_the_claim_over_mid_cleanup_and_both_act() {
        with(Mutant::MP4, || {
            let (mut first, _) = start(None);
            assert_eq!(first.on(written(true, None), T0), Command::ReadOwned);
            assert_eq!(first.on(owned(&["a", "b"]), T0), Command::Requeue { job: "a".into(), raw: "a-rec".into() });
            // The claim (last-seen 1000 + ttl) is itself older than the TTL at the same sweep time.
            assert!(state::stale_keepalive(&first.lock, NOW, TTL), "the claim is stale at once");
            let (mut second, cmd) = Cleanup::start(&Start {
                now_ms: NOW,
                keepalive: Some(&first.lock),
                lock: None,
                holder: "n2.1".into(),
                ttl_ms: TTL,
                lock_ttl: Duration::from_millis(3000),
                op_timeout: Duration::from_millis(500),
                since_view: Duration::ZERO,
            });
            let write = MapWrite::CompareAndSet { expected: first.lock.clone(), new: format!("{}", 1000 + 2 * TTL) };
            assert_eq!(cmd, Command::Lock { map: LockMap::Keepalive, write });
            assert_eq!(second.on(written(true, None), T0), Command::ReadOwned);
            assert_eq!(second.on(owned(&["b"]), T0), Command::Requeue { job: "b".into(), raw: "b-rec".into() });
            // The first cleaner goes on moving under a claim it no longer holds.
            assert_eq!(first.on(Reply::Done, T0), Command::Requeue { job: "b".into(), raw: "b-rec".into() });
        });
        // The fixed machine: the second cleaner finds the first one's lock live and touches nothing.
        let (mut first, _) = start(None);
        first.on(written(true, None), T0);
        let (_, cmd) = start(Some(&first.lock));
        assert_eq!(cmd, Command::Finish(Outcome::NotOurs));
    }
}
