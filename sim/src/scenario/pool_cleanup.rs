//! **P18**: a cleanup requeues every job its dead worker held when it was fenced, judged at the
//! store when the cleanup deletes the worker's keep-alive.
//!
//! A cleanup fences worker w (its keep-alive becomes the dead marker), reads the jobs naming w,
//! requeues them, reads again until none is left, and only then deletes w's keep-alive. A record
//! naming w that the store held at the fence is seen by every read after it, so by the delete it
//! has been moved (or completed, or handed back): its value has changed. Records naming w written
//! after the fence (a dispatch from a view that still called w live) are the orphan scan's, and
//! not judged. A cleanup that takes w's jobs from the sweep's older view (MC56, blind-spot hunt,
//! round 6, #12) misses those given to w between that view and the fence: they stay on a dead
//! worker until the orphan scan, and P1 sees nothing when the scan comes in time.
//!
//! The store node remembers, at each fence it applies, the records naming the worker; at the
//! delete of the dead marker it records those still there unchanged (`cleanup_left_jobs`).
//! Forgotten at every boot (a restart may roll values back).

use std::collections::BTreeMap;
use std::sync::Mutex;

use keel::MemoryStore;
use keel::pool::decode::DEAD_MARKER as DEAD;
use keel::store::{MapWrite, Store};

use super::pool_owners::record_owner;
use crate::check::Violation;
use crate::history::{Event, History, ServerEv, Who};

/// The store node's memory of fences: (keep-alive map, worker) → the job records naming the
/// worker when its fence applied, as (key, value).
#[derive(Default)]
pub struct Fences(Mutex<Held>);

/// (keep-alive map, worker) → the job records naming the worker at its fence, as (key, value).
type Held = BTreeMap<(String, String), Vec<(String, String)>>;

impl Fences {
    /// Forget every fence (the store booted).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write to keep-alive map `map` of `worker` applied, changing it from `before` to
    /// `value` (`None`: absent). At a fence, remember the records naming the worker; at the
    /// delete of the dead marker, record those still held unchanged.
    pub async fn keepalive_written(
        &self,
        store: &MemoryStore,
        (map, worker): (&str, &str),
        (before, value): (Option<&str>, Option<&str>),
        history: &History,
        by: Who,
    ) {
        let Some(jobs) = map.strip_suffix(":keepalive").map(|p| format!("{p}:jobs")) else { return };
        let id = (map.to_owned(), worker.to_owned());
        match (before, value) {
            (Some(b), Some(DEAD)) if b != DEAD => {
                // In place and at once: nothing runs between the fence's apply and this read.
                let Ok(snap) = store.map_snapshot(&jobs).await else { return };
                let named: Vec<(String, String)> =
                    snap.entries.into_iter().filter(|(k, v)| k.starts_with("j/") && names(v, worker)).collect();
                self.lock().insert(id, named);
            }
            (Some(DEAD), None) => {
                let Some(named) = self.lock().remove(&id) else { return };
                let mut left = Vec::new();
                for (key, value) in named {
                    if let Ok((Some(now), _)) = store.map_get(&jobs, &key).await
                        && now == value
                    {
                        left.push(key.trim_start_matches("j/").to_owned());
                    }
                }
                if !left.is_empty() {
                    history.record(Who::Store, ServerEv::CleanupLeftJobs { worker: worker.to_owned(), jobs: left, by });
                }
            }
            _ => {}
        }
    }
}

/// Whether keep-alive write `w` may be a fence (it writes the dead marker) or a delete: the
/// writes whose value before the store node reads (a beat's is not needed).
pub fn may_fence_or_delete(w: &MapWrite) -> bool {
    match w {
        MapWrite::Set(v) | MapWrite::SetIfAbsent(v) | MapWrite::CompareAndSet { new: v, .. } => v == DEAD,
        MapWrite::CompareAndDelete(_) | MapWrite::Delete => true,
        MapWrite::Append(_) | MapWrite::Remove(_) => false,
    }
}

/// Whether job record `v` names `worker`.
fn names(v: &str, worker: &str) -> bool {
    record_owner(v).is_some_and(|(_, owner)| owner == worker)
}

/// P41: keel deletes a keep-alive only as the value its deleter expects: a worker's own
/// deregistration compares with its last beat, a cleanup with its dead marker. A delete that does
/// not compare (blind-spot hunt, round 18, B #4: a drained worker's deregistration by plain
/// delete) can remove a cleaner's dead marker mid-cleanup, and a late registration then revives
/// the worker while its jobs are being moved. Judged at the store as the delete applies
/// (`keepalive_deleted_blind`).
pub fn keepalives_deleted_as_expected(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::KeepaliveDeletedBlind { worker, value, by }) = e.server() else { continue };
        v.push(Violation::new(
            "P41",
            e.t_us,
            format!(
                "{by} deleted worker {worker}'s keep-alive ({}) without comparing it: a dead marker or another's beat may go with it",
                value.as_deref().unwrap_or("absent")
            ),
        ));
    }
    v.truncate(20);
    v
}

/// P44: a completer-map entry (the payload a completion feed and a `wait` read) is deleted only
/// once its job has no record and its tombstone is gone or older than the completer retention
/// (`retention_ms`: the scenario's `done_retention` and 10 worker TTLs, the smaller), judged at
/// the store as the delete applies (`completion_entry_deleted`). A sweep that deletes entries at
/// the next slice, whatever their age (blind-spot hunt, round 18, B #35), takes the payloads of
/// jobs completed a moment ago from every late reader.
///
/// And at the decision's instant: a sweep reports each drop it decides on
/// (`completer_entries_dropping`: the store time of its view, the newest tombstone among the
/// entries), and that tombstone must be past its retention at that time, strictly. The store's
/// delete applies a round trip or more later, so a decision at the boundary instant (blind-spot
/// hunt, round 25, A #20, MC238: an entry exactly at its retention taken for old) always lands
/// "old enough" there.
pub fn completion_entries_kept(events: &[Event], retention_ms: u64) -> Vec<Violation> {
    let mut v = Vec::new();
    // Keys the store made free (their tombstone deleted): a later life's record may stand
    // beside the entry of an earlier life's completion, which is then as old as that life.
    let mut freed: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for e in events {
        if let Some(ServerEv::TombstoneDeleted { job, .. }) = e.server() {
            freed.insert(job.as_str());
            continue;
        }
        if let Some(keel::observe::PoolEvent::CompleterEntriesDropping {
            n, newest_done_ms: Some(done), now_ms, ..
        }) = e.pool()
            && done.saturating_add(retention_ms) >= *now_ms
        {
            v.push(Violation::new(
                "P44",
                e.t_us,
                format!(
                    "{}: a sweep dropped {n} completer-map entries on a view at store time {now_ms}, the newest completed {} ms before, within the retention of {retention_ms} ms",
                    e.node,
                    now_ms.saturating_sub(*done)
                ),
            ));
        }
        let Some(ServerEv::CompletionEntryDeleted { job, record, tomb_ms, now_ms, by }) = e.server() else { continue };
        let young = tomb_ms.is_some_and(|t| t.saturating_add(retention_ms) >= *now_ms);
        let record = *record && !freed.contains(job.as_str());
        if record || young {
            let why = if record {
                "its job still has a record".to_owned()
            } else {
                format!(
                    "its job completed {} ms before, within the retention of {retention_ms} ms",
                    now_ms.saturating_sub(tomb_ms.unwrap_or(0))
                )
            };
            v.push(Violation::new("P44", e.t_us, format!("{by} deleted {job}'s completer-map entry while {why}")));
        }
    }
    v.truncate(20);
    v
}

/// **P101**: a sweep announces the completer-map entries it drops, before it drops them, judged
/// at each announcement and at each deletion at the store. A node announces a drop
/// (`completer_entries_dropping`, what P44 judges the decision by) when its sweep decided to
/// delete `n` entries, and only then: an announcement of none is a false one, and each entry the
/// store deletes for a node (`completion_entry_deleted`, `by`) draws on what that node announced
/// (a delete refused by its guard draws nothing; a crash keeps the announced count, a delete sent
/// before it may still apply). The test turned round (hunt 47 A's survivor 1026: the `!` of
/// `!gone.is_empty()` deleted, MC450) announced an empty drop at every sweep and no real one, so
/// P44's decision side judged nothing and an operator reading the events saw drops that never
/// came and none of those that did. A delete the store cannot name its node of (`world`: sent
/// on a connection whose greeting it has not read yet) draws on any node's announcements. The
/// first 20 violations.
pub fn completer_drops_are_announced(events: &[Event]) -> Vec<Violation> {
    let mut announced: std::collections::BTreeMap<Who, u64> = std::collections::BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(keel::observe::PoolEvent::CompleterEntriesDropping { n, .. }) = e.pool() {
            if *n == 0 {
                v.push(Violation::new(
                    "P101",
                    e.t_us,
                    format!("{}: a sweep announced a drop of no completer-map entry", e.node),
                ));
            }
            *announced.entry(e.node).or_default() += *n as u64;
            continue;
        }
        let Some(ServerEv::CompletionEntryDeleted { job, by, .. }) = e.server() else { continue };
        // A connection the store has not heard its node's name on yet (a new one after a kill)
        // is `world`'s: its delete draws on any node's announcements.
        let left = match by {
            Who::Node(_) => announced.entry(*by).or_default(),
            _ => match announced.values_mut().find(|n| **n > 0) {
                Some(n) => n,
                None => announced.entry(*by).or_default(),
            },
        };
        if *left == 0 {
            v.push(Violation::new(
                "P101",
                e.t_us,
                format!("{by} deleted {job}'s completer-map entry with no drop announced (`completer_entries_dropping`) for it"),
            ));
        } else {
            *left -= 1;
        }
    }
    v.truncate(20);
    v
}

/// P84: a completion tombstone is deleted only after its dedup window (`window_ms`, the one the
/// service configured, not one a node announces): at the store's time of the deletion its
/// completion lies more than the window back, strictly. Inside the window a key's tombstone is
/// what refuses a second dispatch of it and what lets a retried completion recognise its own;
/// deleted early, the job runs twice and a lost completion reply is taken for a stale one. The
/// store node records each deletion with its own time (`tombstone_deleted`), so neither a
/// node's clock nor its word on the window comes into it.
pub fn tombstones_kept_their_window(events: &[Event], window_ms: u64) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::TombstoneDeleted { job, completed_ms, now_ms, by }) = e.server() else { continue };
        if completed_ms.saturating_add(window_ms) >= *now_ms {
            v.push(Violation::new(
                "P84",
                e.t_us,
                format!(
                    "{by} deleted {job}'s completion tombstone at store time {now_ms}, {} ms after its completion, inside the dedup window of {window_ms} ms: the key is free again too early",
                    now_ms.saturating_sub(*completed_ms)
                ),
            ));
        }
        if v.len() >= 20 {
            break;
        }
    }
    v
}

/// P84 where the service's configuration is not known (the harness, on a user's service): a
/// tombstone is deleted only past the dedup window its deleting node announced
/// (`node_started`'s `dedup_window_us`; the shortest of the node's pools, as the events of a
/// deletion do not name its pool). P80 judges the announcement against the configuration where
/// it is known; this judges the deletions against the announcement.
pub fn tombstones_kept_their_announced_window(events: &[Event]) -> Vec<Violation> {
    let mut windows: BTreeMap<Who, u64> = BTreeMap::new();
    let mut deletions = Vec::new();
    for e in events {
        match (e.pool(), e.server()) {
            (Some(keel::observe::PoolEvent::NodeStarted { dedup_window_us, .. }), _) => {
                let ms = dedup_window_us / 1000;
                windows.entry(e.node).and_modify(|w| *w = (*w).min(ms)).or_insert(ms);
            }
            (_, Some(ServerEv::TombstoneDeleted { by, .. })) => {
                if let Some(&window_ms) = windows.get(by) {
                    deletions.extend(tombstones_kept_their_window(std::slice::from_ref(e), window_ms));
                }
            }
            _ => {}
        }
        if deletions.len() >= 20 {
            break;
        }
    }
    deletions
}

/// P18: the store's record of each cleanup that deleted its worker's keep-alive while jobs the
/// worker held at its fence were still on it.
pub fn cleanups_requeue_fenced_jobs(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::CleanupLeftJobs { worker, jobs, by }) = e.server() else { continue };
        v.push(Violation::new(
            "P18",
            e.t_us,
            format!(
                "{by} deleted dead worker {worker}'s keep-alive while {} job(s) it held at its fence were still on it unchanged ({}): they wait for the orphan scan",
                jobs.len(),
                jobs.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    v.truncate(20);
    v
}

/// **P20**: a cleanup moves a worker's jobs only once that worker is fenced, judged at each move.
/// A cleaner (or the orphan scan) that moves a job off worker w (`moved` with `cleaned` = w) has
/// first made w's keep-alive the dead marker (or found it gone): from then on a late beat cannot
/// revive w, so w stops its runs before the job runs elsewhere. At the move, the last keep-alive
/// the store wrote for w must be the dead marker or a delete. A cleanup that takes a refused
/// fence (w beat again in between) for a fenced worker (blind-spot hunt, round 8, #1) moves the
/// jobs of a live worker: they are stopped and run again, and two cleaners may take each other's
/// live workers. Values a store restart may have rolled back are not judged (the store node
/// records writes, not restores): each boot forgets what it knew.
pub fn cleanups_move_only_fenced_workers(events: &[Event]) -> Vec<Violation> {
    use keel::observe::{MoveKind, PoolEvent};
    let mut last: BTreeMap<&str, Option<&str>> = BTreeMap::new(); // worker → its last keep-alive value
    let mut v = Vec::new();
    for e in events {
        match (e.server(), e.pool()) {
            (Some(ServerEv::StoreUp { .. }), _) => last.clear(),
            (Some(ServerEv::KeepaliveWritten { worker, value, .. }), _) => {
                last.insert(worker.as_str(), value.as_deref());
            }
            (_, Some(PoolEvent::Moved { kind: MoveKind::Requeued | MoveKind::OrphanRequeued, job, cleaned, .. })) => {
                let w = keel_checks::plain(cleaned);
                let Some(Some(value)) = last.get(w) else { continue };
                if *value != DEAD && v.len() < 20 {
                    v.push(Violation::new(
                        "P20",
                        e.t_us,
                        format!(
                            "{}: job {job} moved off worker {w} by its cleanup while its keep-alive at the store was {value}, not fenced: a live worker's job runs again",
                            e.node
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// **P89**: a cleanup whose fence the store applied never ends `alive`, judged at each
/// `cleanup_ended`. A cleanup that fenced worker w (`cleanup_fenced`: its dead marker applied
/// over the value it judged stale) has made w dead for good: w's next beat is refused and w
/// stops, so the cleanup must move w's jobs (`cleaned`, or a lock-lifetime stop or an error
/// that leaves them to the next cleanup). Ended `alive` after its own fence (hunt 46 A: the
/// sweep's mutation of the refused-fence test to `true` survived, MC437), it releases the lock
/// and leaves w's jobs on a worker that can never run them until the next sweep's cleanup finds
/// the marker; the operator's log says the worker lives. Judged per node and worker from the
/// fence to the cleanup's end; a node's next lock of w begins afresh (a cleanup cut short by a
/// crash emits no end).
pub fn fenced_cleanups_never_end_alive(events: &[Event]) -> Vec<Violation> {
    use keel::observe::PoolEvent;
    let mut fenced: BTreeMap<(Who, &str), u64> = BTreeMap::new(); // (node, worker) → fence's µs
    let mut v = Vec::new();
    for e in events {
        match e.pool() {
            Some(PoolEvent::CleanupLocked { worker, .. } | PoolEvent::CleanupTakeover { worker, .. }) => {
                fenced.remove(&(e.node, keel_checks::plain(worker)));
            }
            Some(PoolEvent::CleanupFenced { worker, .. }) => {
                fenced.insert((e.node, keel_checks::plain(worker)), e.t_us);
            }
            Some(PoolEvent::CleanupEnded { worker, outcome, .. }) => {
                let w = keel_checks::plain(worker);
                let Some(at) = fenced.remove(&(e.node, w)) else { continue };
                if keel_checks::plain(outcome) == "alive" && v.len() < 20 {
                    v.push(Violation::new(
                        "P89",
                        e.t_us,
                        format!(
                            "{}: its cleanup of worker {w} ended alive after its own fence applied at {:.6}s (the dead marker is the worker's end: its jobs stay on a worker that can never run them)",
                            e.node,
                            at as f64 / 1e6
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// **P55**: a cleanup decides its moves on a read made after its fence, judged at each move.
/// A cleanup fences worker w after re-judging it on a read of the store's time (`cleanup_fenced`
/// carries that time), then reads the jobs naming w, the keep-alives and the store's time again,
/// and picks each requeue's target from that read: the store time of every `requeued` (or
/// `orphan_requeued`) move off w by that node (`now_ms`) is at least its fence's. A cleanup that
/// reads only the jobs afresh (blind-spot hunt, round 25, A #8, MC235) judges the targets by the
/// sweep's older view, and may hand w's jobs to a worker that died since; P3 judges the target
/// at the move's own (stale) time and rarely sees it.
///
/// **P56**: a cleanup calls w's jobs orphans only if w had no keep-alive in the view it was
/// started on (`cleanup_locked`/`cleanup_takeover` carry it): an orphan's owner has neither a
/// keep-alive nor a registration. Operators read `orphan_requeued` (and `worker_cleaned`'s
/// `orphan`) as "the owner vanished without a trace"; a test of either half alone (round 25,
/// A #27, MC237) calls a half-deregistered or fenced worker's jobs orphans.
///
/// A store boot in between, or the node's crash or restart, ends the judging.
pub fn cleanup_moves(events: &[Event]) -> Vec<Violation> {
    use keel::observe::{MoveKind, PoolEvent};
    // (node, worker) → the store time its last fence of the worker was judged at
    let mut fenced: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    // (node, worker) → whether the view its cleanup of the worker started on held a keep-alive
    let mut had_keepalive: BTreeMap<(Who, &str), bool> = BTreeMap::new();
    let mut v = Vec::new();
    let say = |v: &mut Vec<Violation>, id, t, why: String| {
        if v.len() < 20 {
            v.push(Violation::new(id, t, why));
        }
    };
    for e in events {
        if matches!(e.server(), Some(ServerEv::StoreUp { .. })) {
            fenced.clear();
        }
        if let Some(crate::history::WorldEv::NodeCrash {} | crate::history::WorldEv::NodeStart {}) = e.world() {
            fenced.retain(|k, _| k.0 != e.node);
            had_keepalive.retain(|k, _| k.0 != e.node);
        }
        match e.pool() {
            Some(
                PoolEvent::CleanupLocked { worker, keepalive, .. }
                | PoolEvent::CleanupTakeover { worker, keepalive, .. },
            ) => {
                had_keepalive.insert((e.node, keel_checks::plain(worker)), keepalive.is_some());
            }
            Some(PoolEvent::CleanupFenced { worker, now_ms, .. }) => {
                fenced.insert((e.node, keel_checks::plain(worker)), *now_ms);
            }
            Some(PoolEvent::Moved {
                kind: kind @ (MoveKind::Requeued | MoveKind::OrphanRequeued),
                job,
                cleaned,
                now_ms,
                ..
            }) => {
                let w = keel_checks::plain(cleaned);
                if let Some(&at) = fenced.get(&(e.node, w))
                    && *now_ms < at
                {
                    say(
                        &mut v,
                        "P55",
                        e.t_us,
                        format!(
                            "{}: job {job} moved off worker {w} by its cleanup on a view of store time {now_ms}, older than the fence's re-judge at {at}: the target was picked on a read from before the fence",
                            e.node
                        ),
                    );
                }
                if *kind == MoveKind::OrphanRequeued && had_keepalive.get(&(e.node, w)) == Some(&true) {
                    say(
                        &mut v,
                        "P56",
                        e.t_us,
                        format!(
                            "{}: job {job} requeued as an orphan off worker {w}, whose keep-alive the cleanup's view held",
                            e.node
                        ),
                    );
                }
            }
            _ => {}
        }
    }
    v
}

/// **P52**: a cleanup sends its writes to its worker's keep-alive only while its own lock lives,
/// judged at the store as each write applies. A cleaner locks worker w (`cleanup_locked` or
/// `cleanup_takeover`: `{node}.{incarnation}|{expires_ms}`, timed from its view's store time),
/// then fences w (the dead marker), requeues its jobs and removes the marker, and keel budgets
/// those writes so that each is sent well before the lock expires (the lock's TTL less two op
/// timeouts from the view's read, on the cleaner's clock). So as the store applies a fence or
/// a marker's removal (`cleanup_write`, with the instant its writer sent it), the writer must
/// have locked w, and sent the write before that lock's expiry (the store's time, less the time
/// since the send); a write sent under an expired lock is one a second cleaner may be
/// duplicating. A write sent in time may land later (the network held it: poolloss seed 71, a
/// removal sent before its lock's expiry landed 1.8 s after its cleanup gave up), which keel
/// cannot prevent and the guards make harmless. A budget counted from the cleanup's own start
/// (blind-spot hunt, round 23, A #13, MC218) writes past the lock whenever the sweep that found
/// w was slow. Runs whose clocks left the drift bound or jumped are not judged (the budget runs
/// on the cleaner's clock). The first 20 violations.
pub fn cleanups_write_under_their_lock(events: &[Event]) -> Vec<Violation> {
    use keel::observe::PoolEvent;
    // (node, worker) → the expiry (store ms) of the last lock that node took on the worker
    let mut locks: BTreeMap<(Who, String), u64> = BTreeMap::new();
    let expiry = |lock: &str| lock.split_once('|').and_then(|(_, ms)| ms.parse::<u64>().ok());
    let mut v = Vec::new();
    for e in events {
        if let Some(PoolEvent::CleanupLocked { worker, lock, .. } | PoolEvent::CleanupTakeover { worker, lock, .. }) =
            e.pool()
        {
            if let Some(ms) = expiry(keel_checks::plain(lock)) {
                locks.insert((e.node, worker.to_string()), ms);
            }
            continue;
        }
        let Some(ServerEv::CleanupWrite { worker, what, now_ms, sent_us, by, .. }) = e.server() else { continue };
        if *by == Who::World {
            continue; // handled before its connection said whose it is: the writer is unknown
        }
        // The store's time at the send: its time now, less the time since.
        let sent_ms = now_ms.saturating_sub(e.t_us.saturating_sub(*sent_us) / 1000);
        let why = match locks.get(&(*by, worker.clone())) {
            Some(&expires) if sent_ms < expires => continue,
            Some(&expires) => format!("its lock expired at {expires} ({} ms before)", sent_ms - expires),
            None => "it never locked the worker".to_owned(),
        };
        if v.len() < 20 {
            v.push(Violation::new(
                "P52",
                e.t_us,
                format!(
                    "{by}'s cleanup of {worker} sent a write to its keep-alive ({what}) at store time {sent_ms} (applied at {now_ms}), and {why}: a cleanup writes only under its own live lock"
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::at;

    /// A deletion judged by the window its deleting node announced: past it passes, inside it
    /// is P84; a node that announced nothing is not judged.
    #[test]
    fn a_tombstone_deleted_inside_the_announced_window_fires_p84() {
        let started = |node| {
            let e = keel::observe::PoolEvent::NodeStarted {
                pool: "p".into(),
                node: "n".into(),
                ack_grace_us: 1,
                sweep_interval_us: 1,
                cleanup_lock_ttl_us: 1,
                op_timeout_us: 1,
                dedup_window_us: 3_000_000,
                drift_margin_us: 150_000,
            };
            at(0, Who::Node(node), crate::history::Ev::Core(keel::observe::Event::Pool(e.to_static())))
        };
        let deleted = |t_ms, now_ms, by| {
            at(t_ms, Who::Store, ServerEv::TombstoneDeleted { job: "j".into(), completed_ms: 1_000, now_ms, by })
        };
        let judge = |h: &[Event]| {
            tombstones_kept_their_announced_window(h).iter().map(|v| (v.invariant, v.t_us / 1000)).collect::<Vec<_>>()
        };
        assert_eq!(judge(&[started(0), deleted(5, 4_001, Who::Node(0))]), []);
        assert_eq!(judge(&[started(0), deleted(5, 3_500, Who::Node(0))]), [("P84", 5)]);
        assert_eq!(judge(&[started(0), deleted(5, 3_500, Who::Node(1))]), []);
    }

    /// A node's deletes of completer-map entries draw on the drops it announced; an empty
    /// announcement, or a delete beyond what its node announced, is P101.
    #[test]
    fn a_completer_drop_unannounced_or_empty_fires_p101() {
        let dropping = |t_ms, n| {
            crate::scenario::test_history::pool(
                t_ms,
                keel::observe::PoolEvent::CompleterEntriesDropping {
                    n,
                    newest_done_ms: None,
                    now_ms: 1,
                    retention_ms: 1,
                },
            )
        };
        let deleted = |t_ms, by| {
            at(
                t_ms,
                Who::Store,
                ServerEv::CompletionEntryDeleted { job: "j".into(), record: false, tomb_ms: None, now_ms: 1, by },
            )
        };
        let judge = |h: &[Event]| {
            completer_drops_are_announced(h).iter().map(|v| (v.invariant, v.t_us / 1000)).collect::<Vec<_>>()
        };
        assert_eq!(judge(&[dropping(5, 2), deleted(6, Who::Node(0)), deleted(7, Who::Node(0))]), []);
        assert_eq!(judge(&[dropping(5, 1), deleted(6, Who::Node(0)), deleted(7, Who::Node(0))]), [("P101", 7)]);
        assert_eq!(judge(&[dropping(5, 1), deleted(6, Who::Node(1))]), [("P101", 6)]);
        assert_eq!(judge(&[dropping(5, 0)]), [("P101", 5)]);
    }

    /// A fence remembers the records naming its worker; the delete of the dead marker reports
    /// those unchanged since, and no other.
    #[test]
    fn a_keepalive_deleted_with_fenced_jobs_left_fires_p18() {
        madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default()).block_on(async {
            let store = MemoryStore::new();
            let (ka, jobs) = ("keel:pool:sim:keepalive", "keel:pool:sim:jobs");
            let set = |k: &'static str, v: &'static str| {
                let store = store.clone();
                async move { store.map_write(jobs, k, MapWrite::Set(v.to_owned())).await.expect("memory store") }
            };
            set("j/a", "1|w|x").await;
            set("j/b", "2|w|y").await;
            set("j/c", "1|v|z").await;
            let history = History::default();
            let fences = Fences::default();
            fences.keepalive_written(&store, (ka, "w"), (Some("beat"), Some(DEAD)), &history, Who::Node(1)).await;
            set("j/a", "2|u|x").await; // moved off w: requeued
            set("j/d", "1|w|q").await; // given to w after the fence: the orphan scan's
            fences.keepalive_written(&store, (ka, "w"), (Some(DEAD), None), &history, Who::Node(1)).await;
            let v = cleanups_requeue_fenced_jobs(&history.take());
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].invariant, "P18");
            assert!(v[0].detail.contains("1 job(s)") && v[0].detail.contains("(b)"), "{}", v[0].detail);
            // Without a fence (an orphan's cleanup, or a fence before the store's boot): nothing.
            let quiet = History::default();
            fences.keepalive_written(&store, (ka, "w"), (Some(DEAD), None), &quiet, Who::Node(1)).await;
            assert!(cleanups_requeue_fenced_jobs(&quiet.take()).is_empty());
        });
    }

    /// P89: a cleanup that ends alive after its own fence fires at its end; one that ends alive
    /// without a fence, ends cleaned after it, or whose fence was another node's or an earlier
    /// cleanup's (a new lock since), does not.
    #[test]
    fn a_cleanup_ended_alive_after_its_fence_fires_p89() {
        use keel::observe::PoolEvent;

        use crate::history::Ev;
        let ev = |t: u64, node: u8, p: PoolEvent<'static>| Event {
            t_us: t,
            node: Who::Node(node),
            ev: Ev::Core(keel::observe::Event::Pool(p)),
        };
        let locked = |t, n| {
            let p = PoolEvent::CleanupLocked { worker: "w".into(), lock: "l".into(), keepalive: None, now_ms: t };
            ev(t, n, p)
        };
        let fenced = |t, n| ev(t, n, PoolEvent::CleanupFenced { worker: "w".into(), keepalive: None, now_ms: t });
        let ended = |t, n, outcome: &'static str| {
            let p =
                PoolEvent::CleanupEnded { worker: "w".into(), lock: "l".into(), outcome: outcome.into(), locked: true };
            ev(t, n, p)
        };
        let judge =
            |h: &[Event]| fenced_cleanups_never_end_alive(h).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>();
        assert_eq!(judge(&[locked(1, 0), fenced(2, 0), ended(3, 0, "alive")]), [("P89", 3)]);
        assert_eq!(judge(&[locked(1, 0), ended(3, 0, "alive")]), []);
        assert_eq!(judge(&[locked(1, 0), fenced(2, 0), ended(3, 0, "cleaned")]), []);
        assert_eq!(judge(&[locked(1, 0), fenced(2, 1), ended(3, 0, "alive")]), [], "another node's fence");
        assert_eq!(judge(&[fenced(2, 0), locked(4, 0), ended(5, 0, "alive")]), [], "a cleanup cut short before");
    }

    /// P20: a move off w by its cleanup while w's last keep-alive at the store is a beat fires;
    /// after the fence (the dead marker), after a delete, or with nothing known since a boot, not.
    #[test]
    fn a_cleanup_move_off_a_live_worker_fires_p20() {
        use keel::observe::{MoveKind, PoolEvent};

        use crate::history::Ev;
        let ka = |t: u64, value: Option<&str>| Event {
            t_us: t,
            node: Who::Store,
            ev: ServerEv::KeepaliveWritten { worker: "w".into(), value: value.map(str::to_owned), now_ms: t }.into(),
        };
        let moved = |t: u64| {
            let m = PoolEvent::Moved {
                kind: MoveKind::Requeued,
                job: "j".into(),
                from: "w".into(),
                worker: "v".into(),
                attempt: 2,
                now_ms: t,
                cleaned: "w".into(),
            };
            Event { t_us: t, node: Who::Node(0), ev: Ev::Core(keel::observe::Event::Pool(m.to_static())) }
        };
        let boot = Event { t_us: 4, node: Who::Store, ev: ServerEv::StoreUp { now_ms: 4 }.into() };
        assert!(cleanups_move_only_fenced_workers(&[ka(1, Some("9|1500")), ka(2, Some(DEAD)), moved(3)]).is_empty());
        assert!(cleanups_move_only_fenced_workers(&[ka(1, Some("9|1500")), ka(2, None), moved(3)]).is_empty());
        assert!(cleanups_move_only_fenced_workers(&[ka(1, Some("9|1500")), boot, moved(5)]).is_empty());
        let v = cleanups_move_only_fenced_workers(&[ka(1, Some(DEAD)), ka(2, Some("9|1500")), moved(3)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P20", 3)], "{v:?}");
    }
}
