//! P3 at the instant, both ways round a keep-alive (blind-spot hunt of the pool, 2026-12-01,
//! gaps 9 and 1):
//!
//! - **the pick**: no job is moved to a worker whose keep-alive the store held, at the move's
//!   store time, is marked `stopping` (a draining worker starts nothing new: the job would wait
//!   out its ack grace or the hand-back). Judged where the decision's view read keep-alives and
//!   store time in one batch (`PoolCore::view`: a hand-back, a cleanup's requeue), so exactly.
//!   Not judged: a sweep's re-dispatch and assignment, decided on the sweep's view, whose
//!   keep-alives are read a batch before its store time (unmutated pool seed 762: a stopping
//!   beat landed 86 ms between the two); and a dispatch, which picks from the node's cached
//!   keep-alives, a hint as new as the keep-alive feed (`pool/cache.rs`). Either costs a
//!   hand-back when the worker began to drain since, by design. Judged, dispatches failed
//!   unmutated seeds 0..300 4 times (8, 19, 83, 292: the stopping beat had landed 1 to 33 ms
//!   before the dispatch's store time), and judged one keep-alive interval earlier (the snapshot
//!   hint's age bound), still once (seed 241: a followed hint 872 ms behind);
//! - **the mirror**: no cleaner acts on a worker whose keep-alive is live: judged on the values
//!   each decision used (the view a cleanup was started on, `CleanupLocked`/`CleanupTakeover`;
//!   the re-judge's fresh read before the fence, `CleanupFenced`) and on the store's history
//!   (the dead marker applied over a keep-alive still live at that store time: a fence whose
//!   reply was lost emits no event).
//!
//! The pick and the fence at the store judge what the store *applied*: its writes to the
//! keep-alive map, each with the store time it was applied at (`ServerEv::KeepaliveWritten`).
//! A fence at the store lands at least two message latencies after the re-judge's read of store
//! time, so a judgement 1 ms early (MC21) is seen only at the judgement's own store time, in the
//! typed events; the store's history sees a fence that skipped the judgement. A worker's
//! `Keepalive` event comes
//! before its write, which may land later or lose (a beat's compare-and-set against the dead
//! marker): judged from those, a stopping beat still in flight would condemn a pick made before
//! it landed, and a beat that lost would make a fenced worker look live. Values are read with
//! keel's own decoder (`keel::pool::decode::keepalive`), not restated here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use keel::observe::{MoveKind, PoolEvent};
use keel::pool::decode;
use keel::store::MapWrite;

use crate::check::{Span, Violation};
use crate::history::{Event, History, ServerEv, Who, plain};
use crate::timeline::Timeline;

/// A keep-alive's last applied write of a keep-alive value: what it expected (None: no compare)
/// and the value it wrote.
type LastWrite = (Option<String>, String);

/// The store node's memory of beats: (keep-alive map, worker) → the keep-alive's last applied
/// write of a keep-alive value (a beat's compare-and-set, or the registration's first write: only
/// the worker itself writes one).
#[derive(Default)]
pub struct Beats(Mutex<BTreeMap<(String, String), LastWrite>>);

impl Beats {
    /// Forget every beat (the store booted: a restart may roll values back).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A write by `by` to keep-alive `key` of `map` was handled: `out` is (applied, the value
    /// after it, or the value held when refused). An applied beat or registration write is
    /// remembered (any other applied write forgets); a refused beat is recorded with what the
    /// store held, whether that is what the worker's last applied beat wrote over the value it
    /// expects again (P35: a worker that forgot its own landed beat), and whether it is what that
    /// write put there at all (P70: a worker that expects a value whose write never landed). The
    /// worker is the key, not `by`: a request handled before its connection said whose it is
    /// comes from `Who::World`.
    pub fn written(
        &self,
        (map, key): (&str, &str),
        write: &MapWrite,
        out: (bool, Option<&str>),
        history: &History,
        by: Who,
    ) {
        let mut beats = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let at = (map.to_owned(), key.to_owned());
        let beat = |new: &str| decode::keepalive(new).is_some();
        if let MapWrite::CompareAndSet { expected, new } = write
            && beat(new)
            && expected == decode::DEAD_MARKER
        {
            let (worker, applied) = (key.to_owned(), out.0);
            history.record(Who::Store, ServerEv::BeatOverDead { worker, applied, by });
        }
        match (write, out) {
            (MapWrite::CompareAndSet { expected, new }, (true, _)) if beat(new) => {
                beats.insert(at, (Some(expected.clone()), new.clone()));
            }
            (MapWrite::SetIfAbsent(new) | MapWrite::Set(new), (true, _)) if beat(new) => {
                beats.insert(at, (None, new.clone()));
            }
            (MapWrite::CompareAndSet { expected, new }, (false, held)) if beat(new) => {
                let last = beats.get(&at);
                let landed = last.is_some_and(|(_, n)| Some(n.as_str()) == held);
                let own = landed && last.is_some_and(|(e, _)| e.as_ref() == Some(expected));
                let (worker, expected, held) = (key.to_owned(), expected.clone(), held.map(str::to_owned));
                history.record(Who::Store, ServerEv::KeepaliveRefused { worker, expected, held, own, landed, by });
            }
            (_, (true, _)) => {
                beats.remove(&at);
            }
            _ => {}
        }
    }
}

/// A write the store applied to a worker's keep-alive: store ms, the value after it (None:
/// deleted), and when it was recorded (µs).
type Write<'a> = (u64, Option<&'a str>, u64);

/// The store's keep-alive of each worker over time, in the order the store applied the writes
/// (store time never goes back).
type Held<'a> = BTreeMap<&'a str, Vec<Write<'a>>>;

fn held(events: &[Event]) -> Held<'_> {
    let mut held: Held<'_> = BTreeMap::new();
    for e in events {
        if let Some(ServerEv::KeepaliveWritten { worker, value, now_ms, .. }) = e.server() {
            held.entry(worker.as_str()).or_default().push((*now_ms, value.as_deref(), e.t_us));
        }
    }
    held
}

/// The value the store held for `w` before store time `ms`. Writes applied at `ms` itself are
/// left out: store time is whole milliseconds, and a read at `ms` may have come before them.
fn held_before<'a>(held: &Held<'a>, w: &str, ms: u64) -> Option<(u64, &'a str)> {
    let writes = held.get(w)?;
    let (at, value, _) = writes.iter().rev().find(|(at, _, _)| *at < ms)?;
    value.map(|v| (*at, v))
}

/// When a keep-alive value stops being live: `ms + ttl` (the reader's TTL `ttl_ms` if it
/// carries none). None for a value no worker wrote (the dead marker).
fn live_until(value: &str, ttl_ms: u64) -> Option<u64> {
    decode::keepalive(value).map(|(ms, ttl, _)| ms.saturating_add(ttl.unwrap_or(ttl_ms)))
}

/// Both halves, for a pool whose workers' TTL is `ttl_ms` (the TTL of a keep-alive written
/// without one).
pub fn keepalive_rules(events: &[Event], ttl_ms: u64) -> Vec<Violation> {
    let held = held(events);
    let mut v = draining_picks(events, &held);
    v.truncate(20);
    let mut fences = early_fences(events, &held, ttl_ms);
    fences.truncate(20);
    v.extend(fences);
    let mut moves = redispatches_move_on(events, &held, ttl_ms);
    moves.truncate(20);
    v.extend(moves);
    v.extend(moves_leave_their_worker(events));
    v.extend(deaths_not_over_own_beats(events));
    v.extend(beats_over_dead(events));
    v.extend(registrations_die_only_over_the_marker(events));
    v.extend(beats_follow_their_registration(events));
    v
}

/// **P91**: a worker's beat ends only after its node published the worker's registration,
/// judged at each `beat_ended`. A worker beats once registered, and its driver publishes the
/// machine's state changes (`worker_registered`, `fenced`, `unfenced`, `worker_stopping`,
/// `worker_dead`, `worker_stopped`) as it performs them, the registration before its first
/// beat. A driver that publishes none of them (hunt 46 A: the sweep's `report` replaced by a
/// no-op survived, MC440) leaves the operator blind to every worker's state, and every rule
/// keyed on those events (P23's cadence from the registration, P35's deaths, P37's and the
/// drain rules' ends of judging) silently judges nothing.
fn beats_follow_their_registration(events: &[Event]) -> Vec<Violation> {
    let mut registered: std::collections::BTreeSet<(Who, &str)> = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        match e.pool() {
            Some(PoolEvent::WorkerRegistered { worker, .. }) => {
                registered.insert((e.node, plain(worker)));
            }
            Some(PoolEvent::BeatEnded { worker, .. }) if !registered.contains(&(e.node, plain(worker))) => {
                if v.len() < 20 {
                    v.push(Violation::new(
                        "P91",
                        e.t_us,
                        format!(
                            "{}: worker {} ended a beat it never published the registration of",
                            e.node,
                            plain(worker)
                        ),
                    ));
                }
                registered.insert((e.node, plain(worker)));
            }
            _ => {}
        }
    }
    v
}

/// **P90**: a worker that dies before it registered dies over the dead marker, judged at its
/// `worker_dead`. A registration that finds the marker on its keep-alive (a cleaner fenced the
/// worker while its attempts kept failing) cannot succeed, and the worker dies (round 38,
/// MC349); any other failure (a timeout, the store down or loading) is retried. So the store
/// must have applied the marker to that worker's keep-alive at some time before (a store
/// restart may lose a marker, never make one). A worker that takes every failed attempt for
/// the marker's refusal (hunt 46 A: the sweep's guard replaced by `true` survived, MC439) dies
/// at its first failure, and its slot starts a fresh worker: a needless death and a new id per
/// failure, P35 judging only deaths after a refused beat.
fn registrations_die_only_over_the_marker(events: &[Event]) -> Vec<Violation> {
    let mut registered: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut marked: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::KeepaliveWritten { worker, value: Some(value), .. }) = e.server()
            && value == decode::DEAD_MARKER
        {
            marked.insert(worker.as_str());
            continue;
        }
        match e.pool() {
            Some(PoolEvent::WorkerRegistered { worker, .. }) => {
                registered.insert(plain(worker));
            }
            Some(PoolEvent::WorkerDead { worker }) => {
                let w = plain(worker);
                if !registered.contains(w) && !marked.contains(w) && v.len() < 20 {
                    v.push(Violation::new(
                        "P90",
                        e.t_us,
                        format!(
                            "{}: worker {w} declared itself dead before it registered, and the store never held the dead marker for it (a failed registration is retried, only the marker ends it)",
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

/// **P88**: no worker beats over the dead marker, judged at the store as each beat (a
/// compare-and-set writing a keep-alive value) is handled, applied or not. A worker expects the
/// last value it knows landed, or adopts one of its own in-doubt writes when a refusal shows
/// it; the dead marker is a cleaner's fence, never a worker's value. A worker that adopts
/// whatever a refusal shows (hunt 46 A: the sweep's mutation of the in-doubt guard to `true`,
/// MC436) takes the fence for its own beat: it does not declare itself dead, beats again over
/// the fence, and, applied while its cleanup still moves its jobs, comes back to life beside
/// the requeued runs (P35 judges a death's cause, nothing judged a death that never came).
fn beats_over_dead(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(ServerEv::BeatOverDead { worker, applied, by }) = e.server() else { continue };
        if v.len() >= 20 {
            break;
        }
        let outcome = if *applied { "applied: the fenced worker is live again" } else { "refused" };
        v.push(Violation::new(
            "P88",
            e.t_us,
            format!(
                "{by}: a beat of worker {worker} expected its keep-alive to hold the dead marker (a cleaner's fence, never a worker's own value; {outcome})"
            ),
        ));
    }
    v
}

/// P35: a worker declares itself dead (`worker_dead`) only when the store refused its beat for a
/// keep-alive it no longer holds: the dead marker, none, or a value it did not write over the
/// one its beat expected. Judged at the death, against the store's record of the refusal of the
/// worker's last beat (`ServerEv::KeepaliveRefused`, as the store applied it): a refusal over
/// the worker's own last landed beat (an in-doubt beat adopted but not stored as its last,
/// blind-spot hunt round 16, #7, MC137) kills a live worker needlessly: a replacement, a cleanup
/// and a requeue of its jobs follow. A store rolled back to an older keep-alive is no such
/// refusal (the store's memory of beats is forgotten at its boot).
///
/// P70, the same at the death for any value of the worker's own: the store held the keep-alive
/// value the worker's last landed write put there, whatever that write expected and whatever
/// this beat expected. A worker expects the last value it knows landed; a write whose reply was
/// lost stays in doubt, and a refusal over it adopts it. A worker that takes a beat whose outcome
/// is unknown for landed (blind-spot hunt, round 37, B #17, MC340) expects a value the store
/// never held when that write was lost, is refused over its own older beat, and dies while
/// alive: a replacement, a cleanup and a requeue of its jobs follow.
fn deaths_not_over_own_beats(events: &[Event]) -> Vec<Violation> {
    // worker → the store's last refusal of its beat
    let mut refused: BTreeMap<&str, (&str, Option<&str>, bool, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::KeepaliveRefused { worker, expected, held, own, landed, .. }) = e.server() {
            refused.insert(worker.as_str(), (expected.as_str(), held.as_deref(), *own, *landed));
            continue;
        }
        let Some(PoolEvent::WorkerDead { worker }) = e.pool() else { continue };
        let w = plain(worker);
        let Some(&(expected, held, own, landed)) = refused.get(w) else { continue };
        if v.len() >= 20 {
            continue;
        }
        if own {
            v.push(Violation::new(
                "P35",
                e.t_us,
                format!(
                    "{w} declared itself dead after the store refused its beat expecting {expected:?}: the store held {held:?}, the value its own last landed beat wrote over {expected:?} (a beat it must know it wrote)"
                ),
            ));
        } else if landed {
            v.push(Violation::new(
                "P70",
                e.t_us,
                format!(
                    "{w} declared itself dead after the store refused its beat expecting {expected:?}: the store held {held:?}, which its own last landed write put there (it expected a value that never landed)"
                ),
            ));
        }
    }
    v
}

/// P27: a hand-back and a cleanup's requeue move a job off a worker, never back to it: the pick
/// excludes the worker handing back or being cleaned (with no other live worker the job is left
/// unowned for the sweeps). A draining worker that takes its own job back keeps it through its
/// drain, and the job waits for the drain's end and a cleanup (MC102); a job requeued to the dead
/// worker waits for the next cleanup. Judged at the move.
fn moves_leave_their_worker(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::Moved { kind, job, from, worker, attempt, cleaned, .. }) = e.pool() else { continue };
        let off = match kind {
            MoveKind::HandedBack => plain(from),
            MoveKind::Requeued | MoveKind::OrphanRequeued => plain(cleaned),
            _ => continue,
        };
        if !off.is_empty() && plain(worker) == off && v.len() < 20 {
            v.push(Violation::new(
                "P27",
                e.t_us,
                format!("{job} (attempt {attempt}) {} back to {off}, the worker it was moved off", kind.as_str()),
            ));
        }
    }
    v
}

/// P16: a job its worker did not acknowledge in time is re-dispatched to another worker when
/// another is live: keel excludes the worker that let the pending deadline pass and gives the
/// job back to it only when no other live, non-stopping worker is in its view. A sweep reads
/// keep-alives and store time in two batches, so another worker counts as live only if every
/// value the store held for it from half a TTL before the decision's store time up to it is a
/// non-stopping keep-alive live at that time (the sweep's keep-alive read is then any of them).
/// The half TTL is of the deciding node's running time (its calls' bounds keep the batches that
/// close): time it spent frozen in it widens the window by as much, since a pause between the
/// batches ages the keep-alives the sweep read by its length (unmutated pool seed 751: read
/// before a 1.1 s pause, judged at a store time read after it). A re-dispatch back to the worker
/// that did not ack, with such a worker there, fires at the move: the job goes back to an
/// unresponsive worker, again and again until it dies (blind-spot hunt, round 6, #9).
fn redispatches_move_on(events: &[Event], held: &Held<'_>, ttl_ms: u64) -> Vec<Violation> {
    let timeline = Timeline::derive(events, events.last().map_or(0, |e| e.t_us));
    let live_at = |v: &str, now: u64| {
        decode::keepalive(v)
            .is_some_and(|(ms, ttl, stopping)| !stopping && ms <= now && now - ms <= ttl.unwrap_or(ttl_ms))
    };
    let live_through = |writes: &[Write<'_>], since: u64, now: u64| {
        let Some(start) = writes.iter().rposition(|(at, _, _)| *at < since) else { return false };
        writes[start..].iter().take_while(|(at, _, _)| *at < now).all(|(_, v, _)| v.is_some_and(|v| live_at(v, now)))
    };
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::Moved { kind: MoveKind::Redispatched, job, from, worker, attempt, now_ms, .. }) = e.pool()
        else {
            continue;
        };
        let (w, now) = (plain(worker), *now_ms);
        if w.is_empty() || w != plain(from) {
            continue;
        }
        let frozen_ms = frozen_within(&timeline, e.node, e.t_us, ttl_ms / 2 * 1000).div_ceil(1000);
        let since = now.saturating_sub(ttl_ms / 2 + frozen_ms);
        if let Some((other, _)) = held.iter().find(|(x, writes)| **x != w && live_through(writes, since, now)) {
            v.push(Violation::new(
                "P16",
                e.t_us,
                format!(
                    "{job} (attempt {attempt}) re-dispatched at store time {now} back to {w}, which did not acknowledge it, while {other} was live"
                ),
            ));
        }
    }
    v
}

/// How long `node` was frozen in the `running_us` of its running time up to `t_us` (µs): the
/// window reaches back past each pause in it by the pause's length.
fn frozen_within(timeline: &Timeline, node: Who, t_us: u64, running_us: u64) -> u64 {
    let mut pauses: Vec<Span> = timeline.frozen(node).filter(|p| p.start < t_us).collect();
    pauses.sort_by_key(|p| std::cmp::Reverse(p.end));
    let (mut at, mut need, mut frozen) = (t_us, running_us, 0);
    for p in pauses {
        if p.start >= at {
            continue;
        }
        let end = p.end.min(at);
        if at - end >= need {
            break;
        }
        need -= at - end;
        frozen += end.saturating_sub(p.start);
        at = p.start.min(end);
    }
    frozen
}

/// Moves decided on a view read in one batch (keep-alives, then store time): judged exactly.
const ONE_BATCH_VIEW: [MoveKind; 3] = [MoveKind::HandedBack, MoveKind::Requeued, MoveKind::OrphanRequeued];

/// P3, the pick: no move to a worker the store held as stopping at the move's store time.
fn draining_picks(events: &[Event], held: &Held<'_>) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(PoolEvent::Moved { kind, job, worker, attempt, now_ms, .. }) = e.pool() else { continue };
        if !ONE_BATCH_VIEW.contains(kind) {
            continue;
        }
        let (w, now): (&str, u64) = (plain(worker), *now_ms);
        let Some((at, value)) = held_before(held, w, now) else { continue };
        if decode::keepalive(value).is_some_and(|(_, _, stopping)| stopping) {
            v.push(Violation::new(
                "P3",
                e.t_us,
                format!(
                    "{job} (attempt {attempt}) moved ({kind}) to {w} at store time {now}, whose keep-alive {value:?} (applied at {at}) is marked stopping: a draining worker"
                ),
            ));
        }
    }
    v
}

/// What each judgement of the mirror did (act, and the store time it judged by).
const LOCKED: (&str, &str) = ("cleanup locked", "judged dead on a view at store time");
const JUDGED: (&str, &str) = ("cleanup fenced", "judged stale at store time");
const APPLIED: (&str, &str) = ("cleanup fenced", "the dead marker applied at store time");

/// P3, the mirror: no cleanup started on, nor fence of, a keep-alive live at the store time it
/// was judged by (the typed events), nor a fence applied at a store time the keep-alive it
/// replaced was live (the store's history: a fence whose reply was lost emits no event).
fn early_fences(events: &[Event], held: &Held<'_>, ttl_ms: u64) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut fenced = |t_us: u64, w: &str, value: &str, now: u64, (act, when): (&str, &str)| {
        if let Some(until) = live_until(value, ttl_ms)
            && now <= until
        {
            v.push(Violation::new(
                "P3",
                t_us,
                format!("{act} {w} while its keep-alive {value:?} was live until store time {until}: {when} {now}"),
            ));
        }
    };
    for e in events {
        match e.pool() {
            Some(
                PoolEvent::CleanupLocked { worker, keepalive: Some(keepalive), now_ms, .. }
                | PoolEvent::CleanupTakeover { worker, keepalive: Some(keepalive), now_ms, .. },
            ) => fenced(e.t_us, plain(worker), plain(keepalive), *now_ms, LOCKED),
            Some(PoolEvent::CleanupFenced { worker, keepalive: Some(keepalive), now_ms }) => {
                fenced(e.t_us, plain(worker), plain(keepalive), *now_ms, JUDGED)
            }
            _ => {}
        }
    }
    for (w, writes) in held {
        for pair in writes.windows(2) {
            let ((_, before, _), (at, after, t_us)) = (pair[0], pair[1]);
            // The dead marker: a value written over a keep-alive that no worker writes.
            if let (Some(before), Some(after)) = (before, after)
                && decode::keepalive(after).is_none()
            {
                fenced(t_us, w, before, at, APPLIED);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, Who, WorldEv};

    fn at(t_ms: u64, ev: impl Into<Ev>) -> Event {
        Event { t_us: t_ms * 1000, node: Who::Store, ev: ev.into() }
    }

    fn pool(t_ms: u64, e: PoolEvent<'_>) -> Event {
        Event { t_us: t_ms * 1000, node: Who::Node(0), ev: Ev::Core(keel::observe::Event::Pool(e.to_static())) }
    }

    /// The store applied `value` as `w`'s keep-alive at store ms `ms` (global ms = store ms here).
    fn written(ms: u64, w: &str, value: Option<&str>) -> Event {
        at(ms, ServerEv::KeepaliveWritten { worker: w.into(), value: value.map(str::to_owned), now_ms: ms })
    }

    fn moved(t_ms: u64, to: &str, now_ms: u64) -> Event {
        let ev = PoolEvent::Moved {
            kind: MoveKind::HandedBack,
            job: "j".into(),
            from: "a".into(),
            worker: to.into(),
            cleaned: "".into(),
            attempt: 2,
            now_ms,
        };
        pool(t_ms, ev)
    }

    /// P27: a hand-back to the worker handing back (MC102), a requeue to the worker cleaned.
    #[test]
    fn a_move_back_to_the_worker_it_leaves_fires_p27() {
        let moved = |kind: MoveKind, from: &str, cleaned: &str, to: &str| {
            let (job, from, worker, cleaned) = ("j".into(), from.into(), to.into(), cleaned.into());
            pool(2_000, PoolEvent::Moved { kind, job, from, worker, cleaned, attempt: 2, now_ms: 2_000 })
        };
        let v = moves_leave_their_worker(&[moved(MoveKind::HandedBack, "a", "", "a")]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P27", 2_000_000)], "{v:?}");
        assert_eq!(moves_leave_their_worker(&[moved(MoveKind::Requeued, "a", "a", "a")]).len(), 1);
        assert!(moves_leave_their_worker(&[moved(MoveKind::HandedBack, "a", "", "b")]).is_empty());
        assert!(moves_leave_their_worker(&[moved(MoveKind::HandedBack, "a", "", "")]).is_empty(), "left unowned");
        // A re-dispatch back to the same worker is P16's to judge (allowed when it is the only one).
        assert!(moves_leave_their_worker(&[moved(MoveKind::Redispatched, "a", "", "a")]).is_empty());
    }

    /// P16: a re-dispatch back to the worker that did not ack, while another worker's keep-alive
    /// was live through the half TTL before the decision (MC54); none when the other was not.
    /// Job `j` re-dispatched at store time `now_ms` back to `a`, which did not ack it.
    fn back(now_ms: u64) -> Event {
        let ev = PoolEvent::Moved {
            kind: MoveKind::Redispatched,
            job: "j".into(),
            from: "a".into(),
            worker: "a".into(),
            cleaned: "".into(),
            attempt: 2,
            now_ms,
        };
        pool(now_ms, ev)
    }

    #[test]
    fn a_redispatch_back_to_the_unacked_worker_fires_p16() {
        let judge = |h: &[Event]| redispatches_move_on(h, &held(h), 1_500);
        // b beat at 1 000 and 1 400 (TTL 1 500): live through [1 250, 2 000).
        let b = [written(1_000, "b", Some("1000|1500")), written(1_400, "b", Some("1400|1500"))];
        let mut h = b.to_vec();
        h.push(back(2_000));
        let v = judge(&h);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "P16", 2_000_000), "{v:?}");
        // Only a itself was live: the job may go back to it.
        assert!(judge(&[written(1_000, "a", Some("1000|1500")), back(2_000)]).is_empty());
        // b stopping, or fenced dead within the window, or first seen inside it: not counted.
        let stopping = [written(1_000, "b", Some("1000|1500")), written(1_400, "b", Some("1400|1500|stopping"))];
        let mut h = stopping.to_vec();
        h.push(back(2_000));
        assert!(judge(&h).is_empty(), "stopping");
        let fenced = [written(1_000, "b", Some("1000|1500")), written(1_600, "b", Some("dead"))];
        let mut h = fenced.to_vec();
        h.push(back(2_000));
        assert!(judge(&h).is_empty(), "fenced");
        assert!(judge(&[written(1_700, "b", Some("1700|1500")), back(2_000)]).is_empty(), "new in the window");
    }

    /// P16 across a pause of the deciding node (unmutated pool seed 751): the sweep read
    /// keep-alives before it and store time after it, so b's old value, stale by the move, may be
    /// the one it read. A pause of another node, or one before the window, widens nothing.
    #[test]
    fn a_pause_of_the_sweeping_node_widens_p16s_window() {
        let back = back(2_000);
        let world =
            |t_ms: u64, node: u8, w: WorldEv| Event { t_us: t_ms * 1000, node: Who::Node(node), ev: Ev::World(w) };
        let judge = |node: u8, pause: (u64, u64)| {
            let mut h = vec![
                world(0, 0, WorldEv::NodeStart {}),
                world(0, 1, WorldEv::NodeStart {}),
                written(300, "b", Some("300|1500")),
                world(pause.0, node, WorldEv::NodePause {}),
                written(1_000, "b", Some("1000|1500")),
                written(1_400, "b", Some("1400|1500")),
                world(pause.1, node, WorldEv::NodeResume {}),
                back.clone(),
            ];
            h.sort_by_key(|e| e.t_us);
            redispatches_move_on(&h, &held(&h), 1_500)
        };
        // Frozen 600..1 500: 500 ms of running time after it, 250 before: the window reaches
        // back to 350, where b held 300|1500, stale at 2 000.
        assert!(judge(0, (600, 1_500)).is_empty(), "read before the pause");
        assert_eq!(judge(1, (600, 1_500)).len(), 1, "another node's pause");
        assert_eq!(judge(0, (100, 200)).len(), 1, "a pause before the window");
        assert_eq!(frozen_within(&Timeline::derive(&[], 0), Who::Node(0), 2_000_000, 750_000), 0);
    }

    #[test]
    fn a_job_given_to_a_draining_worker_fires_p3() {
        let base = vec![written(1_000, "b", Some("1000|1500")), written(1_400, "b", Some("1400|1500|stopping"))];
        let judge = |extra: Event| {
            let mut ev = base.clone();
            ev.push(extra);
            keepalive_rules(&ev, 1_500)
        };
        let v = judge(moved(1_450, "b", 1_420));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P3", 1_450_000));
        assert!(v[0].detail.contains("marked stopping"), "{}", v[0].detail);
        // A sweep's re-dispatch reads keep-alives a batch before its store time.
        let mut redispatched = moved(1_450, "b", 1_420);
        if let Ev::Core(keel::observe::Event::Pool(PoolEvent::Moved { kind, .. })) = &mut redispatched.ev {
            *kind = MoveKind::Redispatched;
        }
        assert!(judge(redispatched).is_empty());
        // A dispatch picks from a hint, which may not have the stopping beat yet.
        let dispatched = PoolEvent::Dispatched { job: "k".into(), worker: "b".into(), attempt: 1, now_ms: 1_420 };
        assert!(judge(pool(1_450, dispatched)).is_empty());
        // The stopping beat applied at the decision's own millisecond (the read may have come
        // first), or not yet: the worker was live and not draining.
        assert!(judge(moved(1_450, "b", 1_400)).is_empty());
        assert!(judge(moved(1_450, "b", 1_399)).is_empty());
        // Another worker, queued, or a worker whose stopping beat the store never applied.
        assert!(judge(moved(1_450, "c", 1_420)).is_empty());
        assert!(judge(moved(1_450, "", 1_420)).is_empty());
        let lost = vec![
            written(1_000, "b", Some("1000|1500")),
            pool(1_300, PoolEvent::Keepalive { worker: "b".into(), ms: 1_300, ttl_ms: 1_500, stopping: true }),
            moved(1_450, "b", 1_420),
        ];
        assert!(keepalive_rules(&lost, 1_500).is_empty(), "an emitted beat is not a held one");
    }

    /// P35: a worker's death after the store refused its beat over the worker's own last landed
    /// beat (MC137: an in-doubt value adopted but not stored as its last) fires at the death;
    /// a refusal over the dead marker, a deleted keep-alive, another node's write or a rolled
    /// back value does not.
    #[test]
    fn a_death_over_its_own_landed_beat_fires_p35() {
        let refused = |t_ms: u64, held: Option<&str>, own: bool, by: Who| {
            let (worker, expected, held) = ("w".into(), "1000|1500".into(), held.map(str::to_owned));
            at(t_ms, ServerEv::KeepaliveRefused { worker, expected, held, own, landed: own, by })
        };
        let dead = |t_ms: u64, node: Who| Event {
            t_us: t_ms * 1000,
            node,
            ev: Ev::Core(keel::observe::Event::Pool(PoolEvent::WorkerDead { worker: "w".into() })),
        };
        let n0 = Who::Node(0);
        let judge =
            |h: &[Event]| deaths_not_over_own_beats(h).iter().map(|v| (v.invariant, v.t_us / 1000)).collect::<Vec<_>>();
        assert_eq!(judge(&[refused(1_500, Some("1400|1500"), true, n0), dead(1_510, n0)]), [("P35", 1_510)]);
        assert_eq!(judge(&[refused(1_500, Some("dead"), false, n0), dead(1_510, n0)]), []);
        assert_eq!(judge(&[refused(1_500, None, false, n0), dead(1_510, n0)]), []);
        assert_eq!(judge(&[refused(1_500, Some("900|1500"), false, n0), dead(1_510, n0)]), [], "rolled back");
        // A refusal over its own beat that the worker adopted (no death), then a fence: the
        // death follows the later refusal.
        let h = [refused(1_500, Some("1400|1500"), true, n0), refused(2_900, Some("dead"), false, n0), dead(2_910, n0)];
        assert_eq!(judge(&h), []);
        // The store's refusal is the worker's whoever the connection named (a request before
        // its connection said whose it is comes from the world); another worker's is not.
        assert_eq!(judge(&[refused(1_500, Some("1400|1500"), true, Who::World), dead(1_510, n0)]), [("P35", 1_510)]);
        let other = Event {
            t_us: 1_510_000,
            node: n0,
            ev: Ev::Core(keel::observe::Event::Pool(PoolEvent::WorkerDead { worker: "v".into() })),
        };
        assert_eq!(judge(&[refused(1_500, Some("1400|1500"), true, n0), other]), []);
        // P70: refused over the value its own last landed write put there, while it expected
        // another (a beat whose outcome was unknown, taken for landed).
        let landed = |t_ms: u64| {
            let (worker, expected, held) = ("w".into(), "1400|1500".into(), Some("900|1500".into()));
            at(t_ms, ServerEv::KeepaliveRefused { worker, expected, held, own: false, landed: true, by: n0 })
        };
        assert_eq!(judge(&[landed(1_500), dead(1_510, n0)]), [("P70", 1_510)]);
        assert_eq!(judge(&[landed(1_500), refused(2_900, Some("dead"), false, n0), dead(2_910, n0)]), []);
    }

    /// P88: a beat expecting the dead marker fires where the store handles it, applied or
    /// refused; a cleaner's fence (a write of the dead marker) and a beat over the worker's own
    /// value do not.
    #[test]
    fn a_beat_over_the_dead_marker_fires_p88() {
        let history = History::default();
        let beats = Beats::default();
        let cas = |e: &str, n: &str| MapWrite::CompareAndSet { expected: e.into(), new: n.into() };
        let at = ("keel:pool:p:keepalive", "w");
        let (n0, n1) = (Who::Node(0), Who::Node(1));
        let (a, b) = ("1000|1500", "1500|1500");
        beats.written(at, &cas(a, b), (true, Some(b)), &history, n0);
        beats.written(at, &cas(b, "dead"), (true, Some("dead")), &history, n1);
        beats.written(at, &cas(b, "2000|1500"), (false, Some("dead")), &history, n0);
        assert!(keepalive_rules(&history.take(), 1_500).is_empty(), "a fence, and a beat refused by it");
        beats.written(at, &cas("dead", "2000|1500"), (false, None), &history, n0);
        beats.written(at, &cas("dead", "2500|1500"), (true, Some("2500|1500")), &history, n0);
        let v = keepalive_rules(&history.take(), 1_500);
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["P88", "P88"]);
        assert!(v[1].detail.contains("live again"), "{}", v[1].detail);
    }

    /// P90: a worker dead before it registered fires unless the store applied the dead marker
    /// to its keep-alive before; a death after its registration is P35's.
    #[test]
    fn a_death_at_registration_without_the_marker_fires_p90() {
        let dead = |t_ms: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(PoolEvent::WorkerDead { worker: "w".into() })),
        };
        let registered = Event {
            t_us: 1_000,
            node: Who::Node(0),
            ev: Ev::Core(keel::observe::Event::Pool(PoolEvent::WorkerRegistered {
                worker: "w".into(),
                keepalive_interval_us: 500_000,
                shutdown_deadline_us: 1_000_000,
                took_us: 10,
            })),
        };
        let judge = |h: &[Event]| {
            registrations_die_only_over_the_marker(h).iter().map(|v| (v.invariant, v.t_us / 1000)).collect::<Vec<_>>()
        };
        assert_eq!(judge(&[dead(1_510)]), [("P90", 1_510)]);
        assert_eq!(judge(&[written(1_000, "w", Some("dead")), written(1_200, "w", None), dead(1_510)]), []);
        assert_eq!(
            judge(&[written(1_000, "v", Some("dead")), dead(1_510)]),
            [("P90", 1_510)],
            "another worker's marker"
        );
        assert_eq!(judge(&[registered, dead(1_510)]), [], "after its registration");
    }

    /// P91: a beat's end with no registration published before it fires once per worker; after
    /// the registration, or another worker's, judged apart.
    #[test]
    fn a_beat_before_its_registration_fires_p91() {
        let beat =
            |t_ms: u64, w: &str| pool(t_ms, PoolEvent::BeatEnded { worker: w.into(), took_us: 10, confirmed: true });
        let registered = |t_ms: u64, w: &str| {
            let p = PoolEvent::WorkerRegistered {
                worker: w.into(),
                keepalive_interval_us: 500_000,
                shutdown_deadline_us: 1_000_000,
                took_us: 10,
            };
            pool(t_ms, p)
        };
        let judge = |h: &[Event]| {
            beats_follow_their_registration(h).iter().map(|v| (v.invariant, v.t_us / 1000)).collect::<Vec<_>>()
        };
        assert_eq!(judge(&[registered(1_000, "w"), beat(1_500, "w"), beat(2_000, "w")]), []);
        assert_eq!(judge(&[beat(1_500, "w"), beat(2_000, "w")]), [("P91", 1_500)]);
        assert_eq!(judge(&[registered(1_000, "v"), beat(1_500, "w")]), [("P91", 1_500)]);
    }

    /// The store's memory of beats: a refused beat is `own` only over the value the worker's last
    /// applied beat wrote over the value it expects again (whichever connection sent it); a
    /// fence forgets it, and a cleaner's refused fence is no beat.
    #[test]
    fn the_store_remembers_each_workers_last_beat() {
        let history = History::default();
        let beats = Beats::default();
        let cas = |e: &str, n: &str| MapWrite::CompareAndSet { expected: e.into(), new: n.into() };
        let at = ("keel:pool:p:keepalive", "w");
        let (n0, n1) = (Who::Node(0), Who::Node(1));
        let (a, b, c) = ("1000|1500", "1500|1500", "2000|1500");
        beats.written(at, &cas(a, b), (true, Some(b)), &history, n0);
        beats.written(at, &cas(a, c), (false, Some(b)), &history, n0);
        beats.written(at, &cas(a, c), (false, Some(b)), &history, Who::World);
        beats.written(at, &cas(b, c), (false, Some(a)), &history, n0);
        beats.written(at, &cas(b, "dead"), (true, Some("dead")), &history, n1);
        beats.written(at, &cas(a, c), (false, Some("dead")), &history, n0);
        beats.written(at, &cas(a, "dead"), (false, Some("dead")), &history, n1);
        // A registration's first write, then a beat expecting a value that never landed.
        beats.written(at, &MapWrite::SetIfAbsent(a.into()), (true, Some(a)), &history, n0);
        beats.written(at, &cas(b, c), (false, Some(a)), &history, n0);
        // A beat that landed, then one expecting a later value that did not.
        beats.written(at, &cas(a, b), (true, Some(b)), &history, n0);
        beats.written(at, &cas(c, "2500|1500"), (false, Some(b)), &history, n0);
        let own: Vec<(bool, bool)> = history
            .take()
            .iter()
            .filter_map(|e| match e.server() {
                Some(ServerEv::KeepaliveRefused { own, landed, .. }) => Some((*own, *landed)),
                _ => None,
            })
            .collect();
        assert_eq!(own, [(true, true), (true, true), (false, false), (false, false), (false, true), (false, true)]);
    }

    #[test]
    fn a_cleanup_that_fences_a_live_keepalive_fires_p3() {
        let fenced = |now_ms| {
            let ev = PoolEvent::CleanupFenced { worker: "w".into(), keepalive: Some("1000|1500".into()), now_ms };
            vec![written(1_000, "w", Some("1000|1500")), pool(2_510, ev), written(2_510, "w", Some("dead"))]
        };
        // Judged stale at its last live millisecond (1 000 + 1 500).
        let v = keepalive_rules(&fenced(2_500), 1_500);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P3", 2_510_000));
        assert!(v[0].detail.starts_with("cleanup fenced w while its keep-alive"), "{}", v[0].detail);
        assert!(keepalive_rules(&fenced(2_501), 1_500).is_empty(), "stale from 2 501 on");
        // Applied at the store while live (a fence whose reply was lost emits no event).
        let applied = vec![written(1_000, "w", Some("1000|1500")), written(2_500, "w", Some("dead"))];
        let v = keepalive_rules(&applied, 1_500);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.ends_with("applied at store time 2500"), "{}", v[0].detail);
        // A cleanup started on a view that held the keep-alive live (taken or taken over).
        let locked = |now_ms| {
            let (worker, lock, keepalive) = ("w".into(), "n0.1|9000".into(), Some("1000|1500".into()));
            vec![pool(2_520, PoolEvent::CleanupLocked { worker, lock, keepalive, now_ms })]
        };
        let v = keepalive_rules(&locked(2_500), 1_500);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.starts_with("cleanup locked w while"), "{}", v[0].detail);
        assert!(keepalive_rules(&locked(2_501), 1_500).is_empty());
        let takeover = |keepalive| {
            let (worker, from, lock) = ("w".into(), "n1.1|2000".into(), "n0.1|9000".into());
            vec![pool(2_520, PoolEvent::CleanupTakeover { worker, from, lock, keepalive, now_ms: 2_100 })]
        };
        assert_eq!(keepalive_rules(&takeover(Some("1000|1500".into())), 1_500).len(), 1);
        assert!(keepalive_rules(&takeover(None), 1_500).is_empty(), "no keep-alive: nothing live");
        // A keep-alive without a TTL is judged by the reader's.
        let old = vec![written(1_000, "w", Some("1000")), written(2_000, "w", Some("dead"))];
        assert_eq!(keepalive_rules(&old, 1_500).len(), 1);
        assert!(keepalive_rules(&old, 900).is_empty());
        // A beat that lost against the dead marker is not live: the store never held it.
        let lost = vec![
            written(1_000, "w", Some("1000|1500")),
            pool(2_400, PoolEvent::Keepalive { worker: "w".into(), ms: 2_400, ttl_ms: 1_500, stopping: false }),
            written(2_600, "w", Some("dead")),
        ];
        assert!(keepalive_rules(&lost, 1_500).is_empty());
        // Deleting the dead marker (the cleanup's end) is no fence.
        let deleted = vec![written(1_000, "w", Some("dead")), written(1_100, "w", None)];
        assert!(keepalive_rules(&deleted, 1_500).is_empty());
    }
}
