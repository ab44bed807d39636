//! **S21**: a lease's handle tells the application what its owner believes, never more, and
//! tells it at once.
//!
//! An application learns that it leads from its `LeaseHandle`: `held()` waits for a grant and
//! returns its fence, `state()` reads `Held` while the owner believes in its grant. The owner's
//! belief is what its events say: from its `held` of a fence until its step-down begins
//! (`stepping_down`), it loses, releases, stops or crashes, or its node crashes or restarts. The
//! scenario's nodes read their handles (`held_awaited`, `held_returned`, `state_read`), judged at
//! the instant:
//! - a `held()` that returns a fence, or a `state()` that reads `Held`, names the fence the owner
//!   believes in at that instant: a handle ahead of (or behind) its owner makes an application
//!   lead without a grant, the split brain the lease exists to prevent;
//! - a `held()` that fails (the owner ended) does so while the owner believes in no grant;
//! - a `held()` awaited when its owner publishes `Failed` (the store keeps answering with a
//!   permanent error) returns that error within 2 ms of running time: a permanent error reaches
//!   the caller within a bound, never waits on the operator (round 25 B #3, MC231);
//! - a `held()` awaited while the owner believes, or when it comes to believe, returns within
//!   2 ms of running time (frozen time not counted), unless the belief ends first: a handle that
//!   misses its owner's grant leaves the application waiting while the lease sits held.
//!
//! - a `state()` that reads `Lost` of a fence names the reason the owner steps down from it for
//!   (its `lost` event, before or after the read: the handle reads `Lost` while the work stops):
//!   an application that reads `Deadline` for a grant taken away restarts against the wrong
//!   cause (the blind-spot hunt's round 21 #19, MC195).
//!
//! - a `state()` that reads `Held`, or a `held()` that returns, in the instant its node resumes
//!   from a freeze or its clock jumps ahead, names no grant whose deadline passed meanwhile: the
//!   owner's `lost` of that fence for `Deadline` in that same instant, after the read, says the
//!   deadline had passed while the driver had not yet had its turn. The handle judges the grant
//!   on the local clock itself, not by whether the driver has ended it (round 24: a handle read
//!   right after a resume said `Held` for a grant seconds past its deadline). A read in the
//!   instant the deadline passes without a freeze or a jump is not judged: the history's
//!   microseconds cannot order it against the deadline's nanosecond.
//!
//! A node's crash or restart ends its judging; a graceful stop ends the judging of `held()`
//! awaits only: the application reads `state()` on through the stop while it says held, and the
//! owner's own `stopping` and `stepping_down` end its belief (MC178: a handle that reads `Held`
//! while a slow work stops).

use std::collections::BTreeMap;

use keel::lease::LostReason;
use keel::observe::LeaseEvent;
use keel_checks::reach;

use super::RunView;
use super::lease::{Rec, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// Running time a `held()` has to return once its owner believes.
const HELD_RETURNS_US: u64 = 2_000;

/// S21 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    let mut belief: BTreeMap<Who, u64> = BTreeMap::new();
    // node → since when a `held()` is awaited
    let mut awaiting: BTreeMap<Who, u64> = BTreeMap::new();
    // node → (fence believed, due by) while a `held()` is awaited and its owner believes
    let mut due: BTreeMap<Who, (u64, u64)> = BTreeMap::new();
    // node → when a `held()` awaited as its owner published `Failed` must have returned by
    let mut failed_due: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    let mut say = |t: u64, why: String| {
        if v.len() < 20 {
            v.push(Violation::new("S21", t, why));
        }
    };
    let deadline = |n: Who, t: u64| reach(t, HELD_RETURNS_US, &run.timeline.frozen(n).collect::<Vec<_>>());
    // (node, fence) → the reason its owner's `lost` gave, and → a `Lost` read before it: (when, reason read)
    let mut lost: BTreeMap<(Who, u64), String> = BTreeMap::new();
    let mut lost_read: BTreeMap<(Who, u64), (u64, String)> = BTreeMap::new();
    // Reads saying `Held` in the instant their node resumed or its clock jumped ahead:
    // (node, fence, when, what read it), judged by a `lost` for `Deadline` in the same instant.
    let mut woken_reads: Vec<(Who, u64, u64, &str)> = Vec::new();
    let woke_at = |n: Who, t: u64, jumps: &BTreeMap<Who, u64>| {
        jumps.get(&n) == Some(&t) || run.timeline.frozen(n).any(|s| s.end == t && s.start < t)
    };
    // node → the latest instant its clock jumped ahead
    let mut jumped: BTreeMap<Who, u64> = BTreeMap::new();
    for e in run.events {
        let n = e.node;
        woken_reads.retain(|r| r.2 == e.t_us);
        if let Some(WorldEv::ClockJump { delta_ms }) = e.world()
            && *delta_ms > 0
        {
            jumped.insert(n, e.t_us);
        }
        if let Some(LeaseEvent::Lost { fence, reason: LostReason::Deadline, .. }) = e.lease() {
            for &(_, f, t, what) in woken_reads.iter().filter(|r| r.0 == n && r.1 == *fence) {
                say(
                    t,
                    format!(
                        "{n}: {what} said Held of fence {f} as the node woke, and the owner lost it for its deadline in that same instant: the deadline had passed while the node was frozen or its clock jumped, and the handle did not judge it"
                    ),
                );
            }
        }
        let read_held = match rec(e) {
            Some(Rec::StateRead { held: true, fence, .. }) => Some((*fence, "state()")),
            Some(Rec::StateRead { handle_fence, .. }) if *handle_fence != 0 => Some((*handle_fence, "fence()")),
            Some(Rec::HeldReturned { fence }) if *fence != 0 => Some((*fence, "held()")),
            _ => None,
        };
        if let Some((fence, what)) = read_held
            && woke_at(n, e.t_us, &jumped)
        {
            woken_reads.push((n, fence, e.t_us, what));
        }
        if let Some(&by) = failed_due.get(&n)
            && e.t_us > by
        {
            failed_due.remove(&n);
            say(
                by,
                format!(
                    "{n}: its owner published Failed (a permanent store error), and the application's held() has not returned the error {HELD_RETURNS_US} µs later"
                ),
            );
        }
        if let Some(&(fence, by)) = due.get(&n)
            && e.t_us > by
        {
            due.remove(&n);
            awaiting.remove(&n);
            say(
                by,
                format!(
                    "{n}: its owner believes in fence {fence}, and the application's held() has not returned {HELD_RETURNS_US} µs later"
                ),
            );
        }
        if let Some(LeaseEvent::Lost { fence, reason, .. }) = e.lease() {
            let reason = format!("{reason:?}");
            if let Some((t, read)) = lost_read.remove(&(n, *fence))
                && read != reason
            {
                say(
                    t,
                    format!("{n}: state() read Lost of fence {fence} for {read}, and the owner lost it for {reason}"),
                );
            }
            lost.insert((n, *fence), reason);
        }
        if let Some(Rec::StateRead { lost_fence, lost_reason, .. }) = rec(e)
            && *lost_fence != 0
        {
            match lost.get(&(n, *lost_fence)) {
                Some(reason) if reason != lost_reason => say(
                    e.t_us,
                    format!(
                        "{n}: state() read Lost of fence {lost_fence} for {lost_reason}, and the owner lost it for {reason}"
                    ),
                ),
                Some(_) => {}
                None => {
                    lost_read.insert((n, *lost_fence), (e.t_us, lost_reason.clone()));
                }
            }
        }
        match (e.lease(), e.world(), rec(e)) {
            // A permanent error surfaces to the caller: the owner goes on trying, and `held()`
            // returns it (round 25 B #3: a `held()` deaf to `Failed` waited until the store
            // let the owner in, however long the operator took).
            (Some(LeaseEvent::Failed { .. }), ..) if awaiting.contains_key(&n) => {
                failed_due.entry(n).or_insert(deadline(n, e.t_us));
            }
            (Some(LeaseEvent::Held { fence, .. }), ..) => {
                belief.insert(n, *fence);
                if awaiting.contains_key(&n) {
                    due.insert(n, (*fence, deadline(n, e.t_us)));
                }
            }
            (
                Some(
                    LeaseEvent::SteppingDown { .. }
                    | LeaseEvent::Lost { .. }
                    | LeaseEvent::Released { .. }
                    | LeaseEvent::Stopping { .. }
                    | LeaseEvent::Crashed { .. },
                ),
                ..,
            ) => {
                belief.remove(&n);
                due.remove(&n);
            }
            (_, Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}), _) => {
                lost_read.retain(|k, _| k.0 != n);
                belief.remove(&n);
                awaiting.remove(&n);
                due.remove(&n);
                failed_due.remove(&n);
            }
            _ if super::lease::stop_asked(e) => {
                awaiting.remove(&n);
                due.remove(&n);
                failed_due.remove(&n);
            }
            (.., Some(Rec::HeldAwaited {})) => {
                awaiting.insert(n, e.t_us);
                if let Some(&fence) = belief.get(&n) {
                    due.insert(n, (fence, deadline(n, e.t_us)));
                }
            }
            (.., Some(Rec::HeldReturned { fence })) => {
                awaiting.remove(&n);
                due.remove(&n);
                failed_due.remove(&n);
                match (belief.get(&n), *fence) {
                    (Some(b), 0) => say(
                        e.t_us,
                        format!("{n}: held() failed (the owner ended) while its owner believes in fence {b}"),
                    ),
                    (b, f) if f != 0 && b != Some(&f) => say(
                        e.t_us,
                        format!("{n}: held() returned fence {f} while its owner believes in {}", believed(b)),
                    ),
                    _ => {}
                }
            }
            (.., Some(Rec::StateRead { handle_fence, .. }))
                if *handle_fence != 0 && belief.get(&n) != Some(handle_fence) =>
            {
                say(
                    e.t_us,
                    format!(
                        "{n}: fence() named fence {handle_fence} while its owner believes in {}",
                        believed(belief.get(&n))
                    ),
                )
            }
            (.., Some(Rec::StateRead { held: true, fence, .. })) if belief.get(&n) != Some(fence) => say(
                e.t_us,
                format!(
                    "{n}: state() read Held of fence {fence} while its owner believes in {}",
                    believed(belief.get(&n))
                ),
            ),
            _ => {}
        }
    }
    for (n, by) in failed_due {
        if by < run.end_us {
            say(
                by,
                format!(
                    "{n}: its owner published Failed, and the application's held() had not returned the error {HELD_RETURNS_US} µs later"
                ),
            );
        }
    }
    for (n, (fence, by)) in due {
        if by < run.end_us {
            say(
                by,
                format!(
                    "{n}: its owner believes in fence {fence}, and the application's held() had not returned {HELD_RETURNS_US} µs later"
                ),
            );
        }
    }
    v
}

/// S35: a handle's `fence()` and `state()`, read in the same instant (both judge the published
/// state against the local deadline at that instant), agree: `fence()` names the fence of a
/// `Held` state, and nothing otherwise. S21 judges a named fence against the owner's belief,
/// but the scenario records `None` as 0, so a `fence()` that answered nothing while the state
/// said held passed it (hunt 45 A, the cargo-mutants sweep: `fence() -> None` and `Some(0)`
/// survived every rule). A guarded writer that reads `fence()` before a write is told to stop,
/// or handed fence 0, which every resource accepts below the highest it has seen.
pub fn fence_reads_agree(events: &[crate::history::Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        if let Some(Rec::StateRead { held, fence, handle_fence, .. }) = rec(e)
            && (if *held { handle_fence != fence } else { *handle_fence != 0 })
            && v.len() < 20
        {
            v.push(Violation::new(
                "S35",
                e.t_us,
                format!(
                    "{}: fence() answered {} in the instant state() read {}",
                    e.node,
                    if *handle_fence == 0 { "nothing (or 0)".to_owned() } else { format!("fence {handle_fence}") },
                    if *held { format!("Held of fence {fence}") } else { "not held".to_owned() }
                ),
            ));
        }
    }
    v
}

fn believed(fence: Option<&u64>) -> String {
    fence.map_or_else(|| "no grant".to_owned(), |f| format!("fence {f}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, Event};

    #[test]
    fn a_fence_read_that_disagrees_with_the_state_fires_s35() {
        let read = |t_ms: u64, held: bool, fence: u64, handle_fence: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Node(1),
            ev: Ev::from(Rec::StateRead { held, fence, lost_fence: 0, lost_reason: String::new(), handle_fence }),
        };
        let judge = |h: &[Event]| fence_reads_agree(h).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>();
        // Held of fence 7 and fence() 7; not held and fence() nothing: agreed.
        assert_eq!(judge(&[read(1, true, 7, 7), read(2, false, 0, 0)]), []);
        // Held and fence() nothing (MC419), or another fence; not held and fence() named one.
        assert_eq!(judge(&[read(1, true, 7, 0)]), [("S35", 1_000)]);
        assert_eq!(judge(&[read(1, true, 7, 8)]), [("S35", 1_000)]);
        assert_eq!(judge(&[read(3, false, 0, 7)]), [("S35", 3_000)]);
    }
}
