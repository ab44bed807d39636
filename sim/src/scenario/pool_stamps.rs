//! **P48**: a pool node stamps no decision with a store time the store has not reached, judged
//! where the node reports the decision.
//!
//! A node decides dispatches, moves and pending deadlines on its estimate of the store's time:
//! the last time it read (`TIME`, or a keep-alive the store wrote), aged by its own clock since
//! the read's *reply*. The estimate may lag the store (by the read's age and latency: P28 and P5
//! allow for it), never lead it: whatever the store's time was when the read was applied, it
//! was no later when the reply arrived, and a clock at real rate ages it no faster than the
//! store's. So each `now_ms` a node reports (`dispatched`, `pending_written`, `moved`) is a
//! store time the store reached by the report's instant, converted with the store's own clock
//! (it runs at the rate of global time from its first `store_up`), within 1 ms. An estimate
//! aged from the read's *send* (blind-spot hunt, round 21, #3: MC194) leads the store by the
//! read's latency: pending deadlines and completion stamps in the store's future, an ack grace
//! and a retention longer than configured. A node whose clock ran fast or jumped forward before
//! the report is excused from then on (its estimate ages by that clock).

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::PoolEvent;
use keel_checks::plain;

use super::{RunView, StoreClock};
use crate::check::Violation;
use crate::history::{ServerEv, Who, WorldEv};

/// How far past the store's time a stamp may be: the µs of the conversion.
const SLACK_US: u64 = 1_000;

/// P48 over a pool run's events. The first 20 violations.
pub fn stamps_never_lead_the_store(run: &RunView<'_>) -> Vec<Violation> {
    let Some(store) = StoreClock::of(run.events) else { return Vec::new() };
    let mut fast: BTreeSet<Who> = BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        match e.world() {
            Some(WorldEv::ClockRate { rate_ppm, .. }) if *rate_ppm > 1_000_000 => {
                fast.insert(e.node);
            }
            Some(WorldEv::ClockJump { delta_ms }) if *delta_ms > 0 => {
                fast.insert(e.node);
            }
            _ => {}
        }
        let (what, now_ms) = match e.pool() {
            Some(PoolEvent::Dispatched { job, now_ms, .. }) => (format!("dispatched {job}"), *now_ms),
            Some(PoolEvent::PendingWritten { job, now_ms, .. }) => (format!("wrote {job}'s pending entry"), *now_ms),
            Some(PoolEvent::Moved { job, now_ms, kind, .. }) => (format!("moved {job} ({})", kind.as_str()), *now_ms),
            _ => continue,
        };
        if fast.contains(&e.node) {
            continue;
        }
        let reached_us = store.global_us(now_ms);
        if reached_us > e.t_us + SLACK_US && v.len() < 20 {
            v.push(Violation::new(
                "P48",
                e.t_us,
                format!(
                    "{}: {what} at store time {now_ms} ms, which the store reached only {} µs later",
                    e.node,
                    reached_us - e.t_us
                ),
            ));
        }
    }
    v
}

/// How far a pending entry's store time may lag the store at its `pending_written`, in op
/// timeouts of the node: the estimate's read (its reply's leg) and the write's own round trip.
const PENDING_LAG_OP_TIMEOUTS: u64 = 2;

/// **P76**: a move's pending entry counts its ack grace from a store time the store had shortly
/// before, judged at each `pending_written` of a move (attempt 2 on). Its `now_ms` (the newest
/// store time the node knew when it wrote) converted with the store's clock lies at most
/// `PENDING_LAG_OP_TIMEOUTS` op timeouts (the node's `node_started`) before the event's instant,
/// plus 5 ms: an estimate lags the store by its read's reply leg, and the entry is reported once
/// its write replied. A view read long before the write (a cleanup's requeues after their
/// backoff, a drain's hand-backs) writes a deadline already spent, and a sweep re-dispatches the
/// job inside its worker's ack grace (round 15's bug, re-injected by MC386): P48 judges stamps
/// that lead, P5 and P28 judge the entry against its own `now_ms`, so a stale one passed both. A
/// node frozen in the window, or whose clock ran slow or jumped back, is excused from then on.
pub fn pending_entries_count_from_the_store_now(run: &RunView<'_>) -> Vec<Violation> {
    let Some(store) = StoreClock::of(run.events) else { return Vec::new() };
    let mut slow: BTreeSet<Who> = BTreeSet::new();
    let mut op_us: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match e.world() {
            Some(WorldEv::ClockRate { rate_ppm, .. }) if *rate_ppm < 1_000_000 => {
                slow.insert(e.node);
            }
            Some(WorldEv::ClockJump { delta_ms }) if *delta_ms < 0 => {
                slow.insert(e.node);
            }
            _ => {}
        }
        let (job, now_ms) = match e.pool() {
            Some(PoolEvent::NodeStarted { op_timeout_us, .. }) => {
                op_us.insert(e.node, *op_timeout_us);
                continue;
            }
            // A move's entry (attempt 2 on; a dispatch's is attempt 1): its store time is the
            // node's estimate, read from `TIME` alone. A dispatch's may be a keep-alive's own
            // stamp raised to (`NodeCache::raised`), older by the beat's write and its feed.
            Some(PoolEvent::PendingWritten { job, now_ms, attempt, .. }) if *attempt > 1 => (job, *now_ms),
            _ => continue,
        };
        let Some(&op) = op_us.get(&e.node) else { continue };
        let since_us = store.global_us(now_ms);
        if slow.contains(&e.node) || run.timeline.frozen(e.node).any(|p| p.start < e.t_us && p.end > since_us) {
            continue;
        }
        let lag_us = e.t_us.saturating_sub(since_us);
        if lag_us > PENDING_LAG_OP_TIMEOUTS * op + 5_000 && v.len() < 20 {
            v.push(Violation::new(
                "P76",
                e.t_us,
                format!(
                    "{}: wrote {job}'s pending entry counted from store time {now_ms} ms, {lag_us} µs before the write replied (at most {} µs: the estimate's read and the write)",
                    e.node,
                    PENDING_LAG_OP_TIMEOUTS * op + 5_000
                ),
            ));
        }
    }
    v
}

/// **P93**: a completion's tombstone names a store time the store had between its handler's
/// return and its landing, judged at each `completion_landed` (the store node's, so a landing
/// whose reply was lost counts too). The stamp is the node's estimate of the store's time,
/// read after the handler returned (`handler_returned`, completed): it lags the store by at
/// most its read's reply leg, one op timeout of the node (a reply any later is abandoned), and
/// never leads it (P48's argument), so it may not lie past the landing's instant (1 ms of
/// conversion) nor more than an op timeout and 5 ms before the handler's return. The dedup
/// window and the completion feed's horizon count from it: P84 and P85 judge the window by
/// the stamp itself, so a stamp taken when the run began (MC432) deleted its tombstone a
/// handler's run early, and the key was free again inside its window, with every rule clean.
/// A node whose clock ran fast or jumped forward is excused the upper bound, one whose clock
/// ran slow, jumped back, or froze in between the lower one (its estimate ages by that clock).
pub fn completions_stamp_their_store_time(run: &RunView<'_>) -> Vec<Violation> {
    let Some(store) = StoreClock::of(run.events) else { return Vec::new() };
    let (mut slow, mut fast): (BTreeSet<Who>, BTreeSet<Who>) = (BTreeSet::new(), BTreeSet::new());
    let mut op_us: BTreeMap<Who, u64> = BTreeMap::new();
    // (job, worker, attempt) → the node its handler first returned completed on, and when.
    let mut returned: BTreeMap<(&str, &str, u64), (Who, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match (e.world(), e.pool(), e.server()) {
            (Some(WorldEv::ClockRate { rate_ppm, .. }), ..) if *rate_ppm < 1_000_000 => {
                slow.insert(e.node);
            }
            (Some(WorldEv::ClockRate { rate_ppm, .. }), ..) if *rate_ppm > 1_000_000 => {
                fast.insert(e.node);
            }
            (Some(WorldEv::ClockJump { delta_ms }), ..) => {
                if *delta_ms < 0 {
                    slow.insert(e.node)
                } else {
                    fast.insert(e.node)
                };
            }
            (_, Some(PoolEvent::NodeStarted { op_timeout_us, .. }), _) => {
                op_us.insert(e.node, *op_timeout_us);
            }
            (_, Some(PoolEvent::HandlerReturned { job, worker, attempt, completed: true, stopped: false }), _) => {
                // The first return: a re-delivered attempt runs again, and the first run's
                // completion may land after the second returned (held in the network).
                returned.entry((plain(job), plain(worker), *attempt)).or_insert((e.node, e.t_us));
            }
            (_, _, Some(ServerEv::TombstoneDeleted { job, .. })) => {
                // The key is free: its next life's attempts start again at 1.
                returned.retain(|(j, _, _), _| j != job);
            }
            (_, _, Some(ServerEv::CompletionLanded { job, attempt, worker, completed_ms, .. })) => {
                // The stamping node is the handler's (a connection may not have named its node).
                let Some(&(node, ended_us)) = returned.get(&(job.as_str(), worker.as_str(), *attempt)) else {
                    continue;
                };
                let stamp_us = store.global_us(*completed_ms);
                if !fast.contains(&node) && stamp_us > e.t_us + SLACK_US && v.len() < 20 {
                    v.push(Violation::new(
                        "P93",
                        e.t_us,
                        format!(
                            "{job}'s tombstone (attempt {attempt}, stamped by {node}) names store time {completed_ms} ms, which the store reached only {} µs after it landed: its dedup window ends late",
                            stamp_us - e.t_us
                        ),
                    ));
                }
                let Some(&op) = op_us.get(&node) else { continue };
                let frozen = run.timeline.frozen(node).any(|p| p.start < e.t_us && p.end > stamp_us);
                let bound_us = op + 5_000;
                if !slow.contains(&node) && !frozen && stamp_us + bound_us < ended_us && v.len() < 20 {
                    v.push(Violation::new(
                        "P93",
                        e.t_us,
                        format!(
                            "{job}'s tombstone (attempt {attempt}, stamped by {node}) names store time {completed_ms} ms, {} µs before its handler returned (at most {bound_us} µs: the estimate's read): its dedup window ends early",
                            ended_us - stamp_us
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
    use super::*;
    use crate::scenario::test_history::{at, judge, pool};

    fn dispatched(t_ms: u64, now_ms: u64) -> crate::history::Event {
        pool(t_ms, PoolEvent::Dispatched { job: "j".into(), worker: "w".into(), attempt: 1, now_ms })
    }

    /// The store came up at 10 ms reading 5 000: at 110 ms it reads 5 100. A dispatch stamped
    /// 5 100 at 110 ms is clean; stamped 5 103 (an estimate aged from its read's send, MC194) it
    /// leads the store by 3 ms: P48. A node whose clock jumped forward before is excused.
    #[test]
    fn a_stamp_ahead_of_the_store_fires_p48() {
        let up = at(10, Who::Store, ServerEv::StoreUp { now_ms: 5_000 });
        let p48 = |h: &[crate::history::Event]| judge(h, 1_000_000, 1_000_000, stamps_never_lead_the_store);
        assert!(p48(&[up.clone(), dispatched(110, 5_100)]).is_empty());
        let v = p48(&[up.clone(), dispatched(110, 5_103)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("reached only 3000 µs later"), "{}", v[0].detail);
        let jump = at(50, Who::Node(0), WorldEv::ClockJump { delta_ms: 40 });
        assert!(p48(&[up, jump, dispatched(110, 5_103)]).is_empty());
    }

    fn started(t_ms: u64) -> crate::history::Event {
        let (pool_name, node) = ("p".into(), "n0".into());
        let (ack_grace_us, sweep_interval_us, cleanup_lock_ttl_us) = (300_000, 150_000, 3_000_000);
        pool(
            t_ms,
            PoolEvent::NodeStarted {
                pool: pool_name,
                node,
                ack_grace_us,
                sweep_interval_us,
                cleanup_lock_ttl_us,
                op_timeout_us: 250_000,
                dedup_window_us: 600_000_000,
                drift_margin_us: 150_000,
            },
        )
    }

    fn pending(t_ms: u64, now_ms: u64) -> crate::history::Event {
        pending_of(t_ms, now_ms, 2)
    }

    fn pending_of(t_ms: u64, now_ms: u64, attempt: u64) -> crate::history::Event {
        let (job, worker) = ("j".into(), "w".into());
        pool(t_ms, PoolEvent::PendingWritten { job, attempt, worker, now_ms, deadline_ms: now_ms + 300 })
    }

    /// The store came up at 10 ms reading 5 000; the node's op timeout is 250 ms, so an entry
    /// may count from a store time up to 505 ms before its `pending_written`. At 1 010 ms (store
    /// time 6 000) a move's entry counted from 5 495 is clean, one from 5 494 (a view read long before
    /// the move, MC386) fires P76; a dispatch's entry, and a node frozen in between or whose clock
    /// ran slow, are not judged.
    #[test]
    fn a_pending_entry_counted_from_an_old_store_time_fires_p76() {
        let up = at(10, Who::Store, ServerEv::StoreUp { now_ms: 5_000 });
        let p76 =
            |h: &[crate::history::Event]| judge(h, 1_000_000, 2_000_000, pending_entries_count_from_the_store_now);
        assert!(p76(&[up.clone(), started(20), pending(1_010, 5_495)]).is_empty());
        let v = p76(&[up.clone(), started(20), pending(1_010, 5_494)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("506000 µs before the write replied"), "{}", v[0].detail);
        assert!(p76(&[up.clone(), pending(1_010, 5_000)]).is_empty(), "a node that never said its op timeout");
        assert!(p76(&[up.clone(), started(20), pending_of(1_010, 5_000, 1)]).is_empty(), "a dispatch's entry");
        let slow = at(50, Who::Node(0), WorldEv::ClockRate { rate_ppm: 990_000, beyond: false });
        assert!(p76(&[up.clone(), started(20), slow, pending(1_010, 5_000)]).is_empty());
        let (start, pause, resume) = (
            at(0, Who::Node(0), WorldEv::NodeStart {}),
            at(600, Who::Node(0), WorldEv::NodePause {}),
            at(900, Who::Node(0), WorldEv::NodeResume {}),
        );
        assert!(
            p76(&[start.clone(), up.clone(), started(20), pause.clone(), resume.clone(), pending(1_010, 5_000)])
                .is_empty()
        );
        let v = p76(&[start, up, started(20), pause, resume, pending(2_010, 5_950)]);
        assert_eq!(v.len(), 1, "a freeze before the entry's store time excuses nothing: {v:?}");
    }

    fn returned(t_ms: u64) -> crate::history::Event {
        let (job, worker) = ("j".into(), "w".into());
        pool(t_ms, PoolEvent::HandlerReturned { job, worker, attempt: 1, completed: true, stopped: false })
    }

    fn landed(t_ms: u64, completed_ms: u64) -> crate::history::Event {
        let (job, worker, by) = ("j".into(), "w".into(), Who::World);
        at(t_ms, Who::Store, ServerEv::CompletionLanded { job, attempt: 1, worker, completed_ms, by })
    }

    /// The store came up at 10 ms reading 5 000; the node's op timeout is 250 ms. The handler
    /// returned at 1 000 ms (store time 5 990) and its tombstone landed at 1 050 ms (6 040): a
    /// stamp from 5 735 to 6 041 is clean; 5 734 (a stamp read as the run began, MC432) or
    /// 6 042 (the store's future) fires P93. A slow clock excuses an early stamp, a fast one a
    /// late stamp; a re-delivered run of the same attempt is judged from its first return.
    #[test]
    fn a_tombstone_stamped_off_the_store_time_fires_p93() {
        let up = at(10, Who::Store, ServerEv::StoreUp { now_ms: 5_000 });
        let p93 = |h: &[crate::history::Event]| judge(h, 1_000_000, 2_000_000, completions_stamp_their_store_time);
        let run = |stamp: u64| vec![up.clone(), started(20), returned(1_000), landed(1_050, stamp)];
        assert!(p93(&run(5_735)).is_empty());
        assert!(p93(&run(6_041)).is_empty());
        let v = p93(&run(5_734));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("256000 µs before its handler returned"), "{}", v[0].detail);
        let v = p93(&run(6_042));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("reached only 2000 µs after it landed"), "{}", v[0].detail);
        let slow = at(50, Who::Node(0), WorldEv::ClockRate { rate_ppm: 990_000, beyond: false });
        let fast = at(50, Who::Node(0), WorldEv::ClockRate { rate_ppm: 1_010_000, beyond: false });
        let with = |clock: &crate::history::Event, stamp: u64| {
            vec![up.clone(), started(20), clock.clone(), returned(1_000), landed(1_050, stamp)]
        };
        assert!(p93(&with(&slow, 5_000)).is_empty());
        assert_eq!(p93(&with(&slow, 6_100)).len(), 1, "a slow clock excuses only an early stamp");
        assert!(p93(&with(&fast, 6_100)).is_empty());
        assert_eq!(p93(&with(&fast, 5_000)).len(), 1, "a fast clock excuses only a late stamp");
        let again = vec![up.clone(), started(20), returned(1_000), returned(2_000), landed(2_050, 5_990)];
        assert!(p93(&again).is_empty(), "the first run's completion, landing late");
        assert!(p93(&[up, returned(1_000), landed(1_050, 5_000)]).is_empty(), "a node that never said its op timeout");
    }
}
