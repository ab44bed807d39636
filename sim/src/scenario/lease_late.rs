//! **S28**: a finished owner's handle says so, at once.
//!
//! An application keeps its `LeaseHandle` after the owner ended (a health endpoint, a leader-only
//! route, a task that awaits `held()` again): each read must answer at its first poll and tell
//! the truth. After the scenario's `join()` returned, each node reads its handle once more
//! (`late_read`, no I/O, so no schedule moves):
//!
//! - a receiver of `subscribe()` that saw the last value finds the channel closed: the owner's
//!   sender went with it (round 24 B #12: a watch whose last sender was dropped stayed open, so
//!   every `changed()` of it waited forever; MC229);
//! - `held()` completes at its first poll with an error, and the owner reads finished;
//! - after a graceful exit (`owner_exit`) the handle reads `Released`, and `held()` fails
//!   `Stopped`: the documented end, whatever the owner was doing when its stop came (MC230: a
//!   stop heard while the owner still judged its first attempt leaves the handle `Awaiting`).
//!
//! A node's crash takes its handle with it: nothing to judge.

use std::collections::BTreeMap;

use futures::FutureExt;
use keel::lease::{LeaseError, LeaseHandle, LeaseState};

use super::RunView;
use super::lease::{Rec, rec};
use crate::check::Violation;
use crate::history::{Event, Who};
use crate::world::NodeCtx;

/// Read `handle` once more after its owner ended, and record what it said.
pub(super) fn read(ctx: &NodeCtx, handle: &LeaseHandle) {
    let state = match handle.state() {
        LeaseState::Awaiting => "awaiting",
        LeaseState::Held { .. } => "held",
        LeaseState::Failed { .. } => "failed",
        LeaseState::Lost { .. } => "lost",
        LeaseState::Released => "released",
    };
    let held = match handle.held().now_or_never() {
        None => "waits",
        Some(Ok(_)) => "ok",
        Some(Err(LeaseError::Stopped)) => "stopped",
        Some(Err(LeaseError::Store(_))) => "store",
        Some(Err(_)) => "other",
    };
    let mut rx = handle.subscribe();
    drop(rx.borrow_and_update());
    let closed = matches!(rx.changed().now_or_never(), Some(Err(_)));
    ctx.record(Rec::LateRead {
        state: state.to_owned(),
        held: held.to_owned(),
        closed,
        finished: handle.is_finished(),
    });
}

/// S28 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    judge(run.events)
}

fn judge(events: &[Event]) -> Vec<Violation> {
    // node → whether its owner's last end was graceful (`owner_exit`)
    let mut ended: BTreeMap<Who, bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        match rec(e) {
            Some(Rec::OwnerExit {}) => {
                ended.insert(e.node, true);
            }
            Some(Rec::OwnerCrashed { .. }) => {
                ended.insert(e.node, false);
            }
            Some(Rec::LateRead { state, held, closed, finished }) => {
                let graceful = ended.remove(&e.node).unwrap_or(false);
                let mut wrong = Vec::new();
                if !closed {
                    wrong.push("its state channel is still open".to_owned());
                }
                if !finished {
                    wrong.push("the owner reads unfinished".to_owned());
                }
                if held == "waits" {
                    wrong.push("held() waits".to_owned());
                }
                if graceful && (state != "released" || held != "stopped") {
                    wrong.push(format!("it reads {state} and held() answers {held}, not released and stopped"));
                }
                if !wrong.is_empty() && v.len() < 20 {
                    let how = if graceful { "returned" } else { "failed" };
                    v.push(Violation::new(
                        "S28",
                        e.t_us,
                        format!("{}: the lease owner {how}, and its handle misleads: {}", e.node, wrong.join("; ")),
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
    use crate::history::Ev;
    use crate::scenario::AppEv;

    fn at(t_ms: u64, r: Rec) -> Event {
        Event { t_us: t_ms * 1000, node: Who::Node(0), ev: Ev::App(AppEv::Lease(r)) }
    }

    fn late(state: &str, held: &str, closed: bool) -> Rec {
        Rec::LateRead { state: state.into(), held: held.into(), closed, finished: true }
    }

    /// After a graceful exit only `Released`, `Stopped` and a closed channel are right; after a
    /// failure any end but a wait.
    #[test]
    fn a_finished_owner_reads_released_and_closed() {
        let exit = at(100, Rec::OwnerExit {});
        assert!(judge(&[exit.clone(), at(100, late("released", "stopped", true))]).is_empty());
        assert_eq!(judge(&[exit.clone(), at(100, late("awaiting", "stopped", true))]).len(), 1, "MC230's end");
        assert_eq!(judge(&[exit, at(100, late("released", "stopped", false))]).len(), 1, "MC229's open channel");
        let failed = at(100, Rec::OwnerCrashed { error: "e".into() });
        assert!(judge(&[failed.clone(), at(100, late("failed", "store", true))]).is_empty());
        assert_eq!(judge(&[failed, at(100, late("failed", "waits", true))]).len(), 1);
    }
}
