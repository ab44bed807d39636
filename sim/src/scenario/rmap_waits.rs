//! **R20**: a map's stop ends every `set_and_wait` still waiting on it. keel's contract
//! (docs/rmap.md): a call in flight when its map stops returns `Closed`, so an application
//! waiting on its write is never left hanging on a map that can no longer wake it. When a node's
//! map stops (`stopped`), each of the node's calls begun and not returned (`saw_start` with no
//! `saw_done`, `saw_err` or `saw_cancelled` yet) must return within the map's op timeout (a call
//! still writing waits out its write) plus 2 ms of running time, frozen time not counted. Judged
//! at the call's return, at a crash or restart past the limit, or at the end of the run
//! (blind-spot hunt, round 22, #48: a stop that marks its waiters' registry closed without
//! completing the waiters registered; R3 stops judging a call at its node's stop).

use std::collections::BTreeMap;

use keel::observe::RmapEvent;

use super::RunView;
use super::rmap::{Rec, rec};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

/// Running time past the op timeout a call has to return once its map stopped.
const STOP_RETURN_SLACK_US: u64 = 2_000;

/// R20 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>, op_timeout_us: u64) -> Vec<Violation> {
    // (node, call) → begun, and once the map stopped, the limit for its return
    let mut calls: BTreeMap<(Who, &str), Option<(u64, u64)>> = BTreeMap::new();
    let mut v = Vec::new();
    let late = |n: Who, id: &str, (stopped, due): (u64, u64)| {
        Violation::new(
            "R20",
            due,
            format!(
                "{n}: the map stopped at {:.3}s and set_and_wait {id} had not returned {} µs later: a stop that leaves a call waiting",
                stopped as f64 / 1e6,
                due - stopped
            ),
        )
    };
    for e in run.events {
        let n = e.node;
        match (e.world(), e.rmap(), rec(e)) {
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), ..) => {
                calls.retain(|(node, id), limit| {
                    if *node != n {
                        return true;
                    }
                    if let Some(l) = limit.filter(|l| e.t_us > l.1) {
                        v.push(late(n, id, l));
                    }
                    false
                });
            }
            (_, Some(RmapEvent::Stopped { .. }), _) => {
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                let due = keel_checks::reach(e.t_us, op_timeout_us + STOP_RETURN_SLACK_US, &frozen);
                for (_, limit) in calls.iter_mut().filter(|((node, _), l)| *node == n && l.is_none()) {
                    *limit = Some((e.t_us, due));
                }
            }
            (.., Some(Rec::SawStart { id })) => {
                calls.insert((n, id.as_str()), None);
            }
            (.., Some(Rec::SawDone { id, .. } | Rec::SawErr { id, .. } | Rec::SawCancelled { id })) => {
                if let Some(Some(l)) = calls.remove(&(n, id.as_str()))
                    && e.t_us > l.1
                {
                    v.push(late(n, id, l));
                }
            }
            _ => {}
        }
    }
    for ((n, id), limit) in calls {
        if let Some(l) = limit.filter(|l| l.1 < run.end_us) {
            v.push(late(n, id, l));
        }
    }
    v.truncate(20);
    v
}
