//! **S15**: `work_stopped` comes only once the guarded work has stopped.
//!
//! The driver's `work_stopped` (and the owner going on to release, re-acquire or exit after it)
//! tells the caller and the logs that nothing of the grant's work still runs. One emitted when
//! the work was told to stop rather than when it ended (blind-spot hunt, round 9, #8) lets the
//! next holder's work overlap this one's tail with nothing in the logs to say so.
//!
//! Judged at each `work_stopped`: the scenario's guarded work records its own end
//! (`work_returned`, from a drop guard, so a task aborted after `work_stop_timeout` records it
//! too), and the work of that fence on that node must have recorded it first. The scenario's work
//! heeds every stop within one poll, so even an aborted one (it ignored its stop for the whole
//! `work_stop_timeout`) is reported: nothing in this workload should ever need the abort.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::LeaseEvent;

use super::RunView;
use super::lease::{Rec, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// How soon an owner leaves its belief once its guard reads lost, in running time: keel's
/// driver wakes at the deadline the guard reads, or has already stepped down or stopped.
const BELIEF_ENDS_SLACK_US: u64 = 2_000;

/// **S16**: a guard reads lost only as its owner stops believing in the grant. keel's guard
/// compares the grant's local deadline (which the driver extends at every renewal) with the
/// clock itself, so the work stops at the deadline even before the driver runs; the owner's
/// driver steps down at the same deadline. So once the scenario's work sees its guard lost
/// (`lost_signal` with `lost`), the owner of that node leaves `held` for that fence (`lost`,
/// `released`, `stopping`, `crashed`, the node's crash or restart) within
/// [`BELIEF_ENDS_SLACK_US`] of running time, frozen time not counted, or was no longer holding
/// it. A graceful stop of the node (`node_stop`) stops the work at once and the owner once a
/// renewal in flight ended (up to its op timeout), so it ends the judging too. A guard whose deadline is not extended at a renewal (blind-spot hunt, round 12, #1) stops
/// the work of a grant the owner goes on renewing, and the owner restarts the work against the
/// same stale guard again and again. Judged where the limit passes.
pub fn guards_lost_with_their_grant(run: &RunView<'_>) -> Vec<Violation> {
    let mut held: BTreeMap<Who, u64> = BTreeMap::new();
    // node → (fence, guard read lost at, limit)
    let mut waiting: BTreeMap<Who, (u64, u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    let late = |n: Who, (fence, at, due): (u64, u64, u64)| {
        Violation::new(
            "S16",
            due,
            format!(
                "{n}: the guard of fence {fence} read lost at {:.3}s, and its owner still held fence {fence} {BELIEF_ENDS_SLACK_US} µs later: the work stopped under a grant its owner goes on renewing",
                at as f64 / 1e6
            ),
        )
    };
    for e in run.events {
        let n = e.node;
        if let Some(w) = waiting.get(&n).copied()
            && e.t_us > w.2
        {
            waiting.remove(&n);
            v.push(late(n, w));
        }
        let ends = match (e.lease(), e.world(), rec(e)) {
            (Some(LeaseEvent::Held { fence, .. }), ..) => {
                held.insert(n, *fence);
                false
            }
            (
                Some(
                    LeaseEvent::Lost { .. }
                    | LeaseEvent::Released { .. }
                    | LeaseEvent::Stopping { .. }
                    | LeaseEvent::Crashed { .. },
                ),
                ..,
            )
            | (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => true,
            _ if super::lease::stop_asked(e) => true,
            (.., Some(Rec::LostSignal { fence, lost: true })) if held.get(&n) == Some(fence) => {
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                let due = keel_checks::reach(e.t_us, BELIEF_ENDS_SLACK_US, &frozen);
                waiting.entry(n).or_insert((*fence, e.t_us, due));
                false
            }
            _ => false,
        };
        if ends {
            held.remove(&n);
            waiting.remove(&n);
        }
    }
    v.extend(waiting.into_iter().filter(|(_, w)| run.end_us > w.2).map(|(n, w)| late(n, w)));
    v.truncate(20);
    v
}

/// **S26**: a guarded work hears its node's graceful stop at once. The owner runs under the
/// node's shutdown token and hands each work a child of its own, so a stop (`node_stop`)
/// cancels the work's token in the same instant, whatever the owner is doing (a renewal in
/// flight is not cut, so the owner itself steps down only once it ends: S10): `Guard::lost()`
/// completes and `is_lost()` reads true. The scenario's work checks its guard before each write
/// to the fenced resource, so no `resource_write` of that node comes later than
/// [`BELIEF_ENDS_SLACK_US`] of running time after the stop (frozen time not counted), until its
/// next start; a yield (`LeaseHandle::stop()`) is judged the same way, and at its instant too:
/// the latest work's guard, read right after the call, reads lost (`guard_at_yield`). A work
/// token made apart from the owner's (blind-spot hunt, round 23, B #2) hears
/// the stop only at the owner's step-down: lease seed 11, a write 17 ms after the stop. The
/// first 20 violations.
pub fn works_hear_their_node_stop(run: &RunView<'_>) -> Vec<Violation> {
    // node → (the stop's instant, the last instant a write may come)
    let mut stopped: BTreeMap<Who, (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.world(), rec(e)) {
            _ if super::lease::stop_asked(e) => {
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                stopped.entry(n).or_insert((e.t_us, keel_checks::reach(e.t_us, BELIEF_ENDS_SLACK_US, &frozen)));
            }
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), _) => {
                stopped.remove(&n);
            }
            (_, Some(Rec::ResourceWrite { fence, .. })) => {
                if let Some(&(at, by)) = stopped.get(&n)
                    && e.t_us > by
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "S26",
                        e.t_us,
                        format!(
                            "{n}: the guarded work wrote with fence {fence} {} µs after its node's stop at {:.3}s: the stop cancels the work's token at once",
                            e.t_us - at,
                            at as f64 / 1e6
                        ),
                    ));
                }
            }
            // A yield reads its latest work's guard right after calling `stop()`: the same
            // instant, so it must read lost already (MC345: a work token under the owner's
            // parent hears the handle's stop only at the owner's step-down).
            (_, Some(Rec::GuardAtYield { fence, lost: false })) if v.len() < 20 => {
                v.push(Violation::new(
                    "S26",
                    e.t_us,
                    format!("{n}: right after LeaseHandle::stop() was called, the guard of fence {fence} still read valid: the stop cancels the work's token at once"),
                ));
            }
            _ => {}
        }
    }
    v
}

/// **S30**: a guarded work waiting on `Guard::lost()` hears its owner's step-down at once. The
/// owner cancels its work's token as it steps down (`stepping_down`), so `lost()` completes in the
/// same instant: the work's `lost_signal` for that fence comes within [`BELIEF_ENDS_SLACK_US`] of
/// running time (frozen time not counted). The scenario's works all wait on `lost()` between
/// writes but `polling` (the node whose work reads its guard only before each write); a work
/// that returned or quit before the step-down is not judged. A step-down that leaves the token
/// alone (blind-spot hunt, round 34, A #6) wakes `lost()` only at the old deadline: sub-tasks
/// that watch `guard.shutdown()`, as the docs tell them to, run on for up to a TTL. The first 20
/// violations.
pub fn works_hear_their_step_down(run: &RunView<'_>, polling: Who) -> Vec<Violation> {
    // (node, fence) of a running work
    let mut running: BTreeSet<(Who, u64)> = BTreeSet::new();
    // (node, fence) → (the step-down's instant, the last instant its work may hear it)
    let mut told: BTreeMap<(Who, u64), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    let late = |v: &mut Vec<Violation>, n: Who, fence: u64, at: u64, t: u64, what: &str| {
        if v.len() < 20 {
            v.push(Violation::new(
                "S30",
                t,
                format!("{n}: the owner stepped down from fence {fence} at {:.3}s, and its work {what}: the step-down cancels the work's token at once", at as f64 / 1e6),
            ));
        }
    };
    for e in run.events {
        let n = e.node;
        match (e.lease(), e.world(), rec(e)) {
            (Some(LeaseEvent::WorkStarted { fence, .. }), ..) if n != polling => {
                running.insert((n, *fence));
            }
            (Some(LeaseEvent::SteppingDown { fence, .. }), ..) if running.contains(&(n, *fence)) => {
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                told.entry((n, *fence)).or_insert((e.t_us, keel_checks::reach(e.t_us, BELIEF_ENDS_SLACK_US, &frozen)));
            }
            (
                ..,
                Some(Rec::LostSignal { fence, .. } | Rec::WorkReturned { fence, .. } | Rec::WorkQuits { fence, .. }),
            ) => {
                running.remove(&(n, *fence));
                if let Some((at, by)) = told.remove(&(n, *fence))
                    && e.t_us > by
                {
                    late(&mut v, n, *fence, at, e.t_us, &format!("heard it only {} µs later", e.t_us - at));
                }
            }
            (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => {
                running.retain(|(m, _)| *m != n);
                told.retain(|(m, _), _| *m != n);
            }
            _ => {}
        }
    }
    for ((n, fence), (at, by)) in told {
        if run.end_us > by && run.timeline.running_at(n, run.end_us.saturating_sub(1)) {
            late(&mut v, n, fence, at, run.end_us, "never heard it");
        }
    }
    v
}

/// S15 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (node, fence) of every guarded work that returned
    let mut returned = BTreeSet::new();
    // (node, fence) → whether the work that quit by itself panicked, until its `work_ended`
    let mut quit: BTreeMap<(Who, u64), bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if let Some(Rec::WorkQuits { fence, panic }) = rec(e) {
            quit.insert((e.node, *fence), *panic);
        } else if let Some(LeaseEvent::WorkEnded { lease, fence, panic, .. }) = e.lease()
            && let Some(panicked) = quit.remove(&(e.node, *fence))
            && panicked != panic.is_some()
            && v.len() < 20
        {
            // S20's input: the owner acts on how its work ended (a restart's `panicked`, the
            // logs), so it must report what the work did (blind-spot hunt, round 26, B #29: a
            // panic reported as a clean return on most seeds, caught by nothing).
            v.push(Violation::new(
                "S20",
                e.t_us,
                format!(
                    "{}: lease {}: the guarded work of fence {fence} {}, and the owner reported work_ended with panic {}",
                    e.node,
                    keel_checks::plain(lease),
                    if panicked { "panicked" } else { "returned" },
                    if panic.is_some() { "set" } else { "unset" }
                ),
            ));
        }
        if let Some(Rec::WorkReturned { fence, .. }) = rec(e) {
            returned.insert((e.node, *fence));
        } else if let Some(LeaseEvent::WorkStopped { lease, fence, .. }) = e.lease()
            && !returned.contains(&(e.node, *fence))
            && v.len() < 20
        {
            v.push(Violation::new(
                "S15",
                e.t_us,
                format!(
                    "{}: lease {}: work_stopped for fence {fence} while its guarded work had not returned",
                    e.node,
                    keel_checks::plain(lease)
                ),
            ));
        }
    }
    v
}

/// **S33**: a guarded work is aborted no sooner than `work_stop_timeout` on its owner's own
/// clock: the owner reports each stop's wait as it measured it (`work_stopped`'s `waited_us`,
/// from the instant it told the work, and `aborted`), and an abort's wait is at least the
/// timeout `owner_started` announced, exactly: keel arms the abort on the clock it was given,
/// which wakes only once that clock reached the deadline. Judged at each `work_stopped`. S24
/// judges the same abort in global time with the drift bound's slack, so an abort armed on the
/// runtime's timer, which is a few per cent early on a slow clock, passed it. MC351 (blind-spot
/// hunt, round 38, A #11).
pub fn aborts_wait_on_their_own_clock(run: &RunView<'_>) -> Vec<Violation> {
    // node → work_stop_timeout_us
    let mut timeout: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match e.lease() {
            Some(LeaseEvent::OwnerStarted { work_stop_timeout_us, .. }) => {
                timeout.insert(e.node, *work_stop_timeout_us);
            }
            Some(LeaseEvent::WorkStopped { fence, waited_us, aborted: true, .. })
                if timeout.get(&e.node).is_some_and(|wst| waited_us < wst) && v.len() < 20 =>
            {
                v.push(Violation::new(
                    "S33",
                    e.t_us,
                    format!(
                        "{}: the guarded work of fence {fence} was aborted {:.6}s after it was told to stop on its owner's clock, before its work_stop_timeout ({:.6}s)",
                        e.node,
                        *waited_us as f64 / 1e6,
                        timeout.get(&e.node).copied().unwrap_or(0) as f64 / 1e6
                    ),
                ));
            }
            _ => {}
        }
    }
    v
}

/// **S24**: a guarded work told to stop is aborted no sooner than `work_stop_timeout` after.
///
/// The owner tells its work to stop at a step-down or a stop (`stepping_down`, `stopping`) and
/// aborts it only if it has not returned `work_stop_timeout` later (`owner_started` announces
/// it): a work that needs its graceful window (a batch to finish, a buffer to flush) gets all
/// of it. The scenario's work records its own end, and whether it returned or its task was
/// dropped (`work_returned`, `aborted`). Judged at each abort, in global time: a clock within
/// its drift bound runs at most `1 + bound` times real time, so the abort comes at least
/// `work_stop_timeout / (1 + bound)` after the ask, less 1 ms of rounding. A node whose clock
/// was out of its bound or jumped forward meanwhile is excused, and so is a drop by the node's
/// own crash. MC177
/// aborts at the op timeout (blind-spot hunt, round 19, #41).
pub fn aborts_wait_for_their_timeout(
    run: &RunView<'_>,
    bound: f64,
    excused: &BTreeMap<Who, Vec<crate::check::Span>>,
) -> Vec<Violation> {
    // node → work_stop_timeout_us
    let mut timeout: BTreeMap<Who, u64> = BTreeMap::new();
    // node → when the running work was first told to stop
    let mut asked: BTreeMap<Who, u64> = BTreeMap::new();
    // node → the last forward jump of its clock (it brings the abort's timer nearer)
    let mut jumped: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.lease(), e.world(), rec(e)) {
            (_, Some(WorldEv::ClockJump { delta_ms }), _) if *delta_ms > 0 => {
                jumped.insert(n, e.t_us);
            }
            (Some(LeaseEvent::OwnerStarted { work_stop_timeout_us, .. }), ..) => {
                timeout.insert(n, *work_stop_timeout_us);
            }
            (Some(LeaseEvent::WorkStarted { .. }), ..)
            | (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => {
                asked.remove(&n);
            }
            (Some(LeaseEvent::SteppingDown { .. } | LeaseEvent::Stopping { .. }), ..) => {
                asked.entry(n).or_insert(e.t_us);
            }
            (.., Some(Rec::WorkReturned { fence, aborted })) => {
                let (Some(&t0), Some(&wst)) = (asked.get(&n), timeout.get(&n)) else { continue };
                // S29, the other side: the work ended by the timeout at the slowest clock the
                // bound allows, frozen time not counted (blind-spot hunt, round 34, A #32: with
                // the abort gone, the stubborn work of a polling node held its owner's
                // step-down 1.5 TTL, and only the mutant gate noticed, through MC177).
                let latest = (wst as f64 / (1.0 - bound).max(0.01)) as u64 + BELIEF_ENDS_SLACK_US;
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                let by = keel_checks::reach(t0, latest, &frozen);
                let out = excused.get(&n).is_some_and(|s| s.iter().any(|s| s.start <= e.t_us && t0 <= s.end));
                if e.t_us > by && !out && v.len() < 20 {
                    v.push(Violation::new(
                        "S29",
                        e.t_us,
                        format!(
                            "{n}: the guarded work of fence {fence} ended {:.3}s after it was told to stop, past its work_stop_timeout ({:.3}s): the owner did not abort it",
                            (e.t_us - t0) as f64 / 1e6,
                            wst as f64 / 1e6
                        ),
                    ));
                }
                if !aborted {
                    continue;
                }
                let min_us = ((wst as f64 / (1.0 + bound)) as u64).saturating_sub(1_000);
                let waited = e.t_us - t0;
                let crashed = run
                    .timeline
                    .life_at(n, e.t_us)
                    .is_none_or(|l| l.end <= e.t_us && l.how == crate::timeline::End::Crashed);
                let out = excused.get(&n).is_some_and(|s| s.iter().any(|s| s.start <= e.t_us && t0 <= s.end))
                    || jumped.get(&n).is_some_and(|j| *j >= t0);
                if waited < min_us && !crashed && !out && v.len() < 20 {
                    v.push(Violation::new(
                        "S24",
                        e.t_us,
                        format!(
                            "{n}: the guarded work of fence {fence} was aborted {:.3}s after it was told to stop, before its work_stop_timeout ({:.3}s)",
                            waited as f64 / 1e6,
                            wst as f64 / 1e6
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
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::AppEv;
    use crate::scenario::test_history::{at, judge};

    fn lease(t_ms: u64, e: LeaseEvent<'_>) -> Event {
        at(t_ms, Who::Node(3), Ev::Core(CoreEvent::Lease(e.to_static())))
    }

    /// Owner n3 (work stop timeout 1 s) steps down from fence 7 at 1 000 ms; its work's task is
    /// dropped unreturned at `abort_ms`.
    fn aborted_at(abort_ms: u64) -> Vec<Event> {
        let started = LeaseEvent::OwnerStarted {
            lease: "l".into(),
            owner: "n3".into(),
            renew_us: 1,
            poll_us: 1,
            retry_min_us: 1,
            retry_max_us: 1,
            ttl_us: 1_000_000,
            drift_margin_us: 100_000,
            error_log_us: 1,
            work_restart_min_us: 0,
            work_restart_max_us: 0,
            op_timeout_us: 250_000,
            work_stop_timeout_us: 1_000_000,
            permanent_attempts: 3,
        };
        vec![
            at(0, Who::Node(3), WorldEv::NodeStart {}),
            lease(10, started),
            lease(100, LeaseEvent::WorkStarted { lease: "l".into(), owner: "n3".into(), fence: 7 }),
            lease(1_000, LeaseEvent::SteppingDown { lease: "l".into(), owner: "n3".into(), fence: 7 }),
            at(abort_ms, Who::Node(3), Ev::App(AppEv::Lease(Rec::WorkReturned { fence: 7, aborted: true }))),
        ]
    }

    /// An abort a whole `work_stop_timeout` after the step-down (less the drift bound's
    /// stretch): on time. One at the op timeout (MC177): S24 at the abort. A clock that jumped
    /// forward meanwhile brings the timer nearer: excused.
    #[test]
    fn an_abort_before_the_work_stop_timeout_fires_s24() {
        let s24 = |h: &[Event]| judge(h, 0, 5_000_000, |run| aborts_wait_for_their_timeout(run, 0.1, &BTreeMap::new()));
        assert_eq!(s24(&aborted_at(2_000)), []);
        assert_eq!(s24(&aborted_at(1_910)), []);
        let v = s24(&aborted_at(1_250));
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S24", 1_250_000)], "{v:?}");
        let mut jumped = aborted_at(1_250);
        jumped.insert(4, at(1_100, Who::Node(3), WorldEv::ClockJump { delta_ms: 800 }));
        assert_eq!(s24(&jumped), []);
    }

    /// The owner's own measure of an abort's wait: the whole `work_stop_timeout` (or more) is on
    /// time, a microsecond short is S33 (MC351: the abort on the runtime's timer, 0.64 s into the
    /// window of a node whose clock jumped back); a work that returned is not judged.
    #[test]
    fn an_abort_short_of_the_timeout_on_the_owners_clock_fires_s33() {
        let s33 = |h: &[Event]| judge(h, 0, 5_000_000, aborts_wait_on_their_own_clock);
        let stopped = |waited_us, aborted| {
            let mut h = aborted_at(2_000);
            h.push(lease(
                2_000,
                LeaseEvent::WorkStopped { lease: "l".into(), owner: "n3".into(), fence: 7, waited_us, aborted },
            ));
            h
        };
        assert_eq!(s33(&stopped(1_000_000, true)), []);
        assert_eq!(s33(&stopped(1_000_700, true)), []);
        assert_eq!(s33(&stopped(640_000, false)), []);
        let v = s33(&stopped(999_999, true));
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S33", 2_000_000)], "{v:?}");
    }
}
