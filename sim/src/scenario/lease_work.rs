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

use std::collections::BTreeSet;

use keel::observe::LeaseEvent;

use super::RunView;
use super::lease::{Rec, rec};
use crate::check::Violation;

/// S15 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (node, fence) of every guarded work that returned
    let mut returned = BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        if let Some(Rec::WorkReturned { fence }) = rec(e) {
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
