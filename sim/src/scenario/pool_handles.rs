//! **P47**: a worker handle tells how its worker ended, judged where the handle answers.
//!
//! A worker slot ends with its last incarnation's exit (`slot_ended`: stopped, dead or
//! panicked), and `WorkerHandle::join` and `WorkerHandle::stop` return that exit. The pool
//! scenario joins every worker it adds and records what `join` returned (`worker_exit`, the
//! scenario's own event). So each `worker_exit` names a slot that ended before it on that node,
//! with the same exit, and the handle's `incarnations()` counts the slot's first incarnation and
//! each replacement (`slot_started`, then `worker_replaced` naming the incarnation it replaces):
//! round 27 A #14 left it at 1 whatever the deaths, so a supervisor reading it believed no
//! worker of the slot had ever died. A handle that misses the slot's last word (MC193: a watch's `wait_for`
//! that looks at the close before the value, the blind-spot hunt's round 21 #41) says
//! `Panicked` for a worker that stopped: a supervisor restarts a service that did nothing
//! wrong, or pages for a panic that never was. A node's crash or restart forgets its slots.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;
use keel_checks::{plain, reach};

use super::pool::{Rec, rec};
use crate::check::Violation;
use crate::history::{Event, Who, WorldEv};

/// P47 over a pool run's events. The first 20 violations.
pub fn handles_report_their_slot_exit(events: &[Event]) -> Vec<Violation> {
    let mut ended: BTreeMap<(Who, &str), &str> = BTreeMap::new();
    // The slot's current incarnation → incarnations it has had.
    let mut started: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            ended.retain(|(n, _), _| *n != e.node);
            started.retain(|(n, _), _| *n != e.node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::SlotEnded { worker, exit }) => {
                ended.insert((e.node, plain(worker)), plain(exit));
                continue;
            }
            Some(PoolEvent::SlotStarted { worker, .. }) => {
                started.insert((e.node, plain(worker)), 1);
                continue;
            }
            Some(PoolEvent::WorkerReplaced { worker, replaces, .. }) => {
                let before = started.remove(&(e.node, plain(replaces))).unwrap_or(1);
                started.insert((e.node, plain(worker)), before + 1);
                continue;
            }
            _ => {}
        }
        let Some(Rec::WorkerExit { worker, exit, incarnations }) = rec(e) else { continue };
        let key = (e.node, worker.as_str());
        let what = match (ended.get(&key), started.get(&key)) {
            (Some(slot), Some(n)) if *slot == exit.as_str() && n == incarnations => continue,
            (Some(slot), _) if *slot != exit.as_str() => {
                format!("its handle's join returned {exit}, where the slot ended {slot}")
            }
            (Some(_), Some(n)) => format!("its handle counts {incarnations} incarnation(s); the slot had {n}"),
            (Some(_), None) => continue, // its start is not in the history (judged from its end only)
            (None, _) => format!("its handle's join returned {exit} before the slot ended"),
        };
        if v.len() < 20 {
            v.push(Violation::new("P47", e.t_us, format!("{}: worker {worker}: {what}", e.node)));
        }
    }
    v
}

/// Running time a slot waiting to replace a dead worker has to end once its node stops (P78).
const SLOT_ENDS_AT_STOP_US: u64 = 2_000;

/// **P78**: a worker slot waiting to replace a dead worker ends at once when its node stops,
/// judged at the slot's end: a slot whose worker died (`worker_died`) and that has neither
/// replaced it (`worker_replaced`) nor ended (`slot_ended`) when its node's stop begins (the
/// world's `node_stop`, which cancels the pool's token, the slots' parent; or the pool's own
/// `node_stopping`), or whose worker dies during the stop, ends within 2 ms of running time of the later of the two, frozen time not counted. Its
/// restart backoff waits up to `restart_max`, and the node's stop waits for every slot; a
/// backoff deaf to the stop (MC400) holds the stop for it, and P22 sees nothing late, the slot
/// ending before its replacement was due (blind-spot hunt, round 42, A #21). Judged at the
/// `slot_ended` (or a replacement after the stop), and at the run's end; a crash or restart
/// forgets the node's slots. The first 20 violations.
pub fn slots_end_at_their_stop(run: &super::RunView<'_>) -> Vec<Violation> {
    // (node, worker) → when it died, for a dead worker not yet replaced
    let mut dead: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    let mut stopping: BTreeMap<Who, u64> = BTreeMap::new();
    let mut v = Vec::new();
    let due = |n: Who, died: u64, stop: u64| {
        reach(died.max(stop), SLOT_ENDS_AT_STOP_US, &run.timeline.frozen(n).collect::<Vec<_>>())
    };
    let late = |n: Who, worker: &str, stop: u64, by: u64| {
        Violation::new(
            "P78",
            by,
            format!(
                "{n}: the node began stopping at {:.3}s, and the slot of dead worker {worker} had not ended {SLOT_ENDS_AT_STOP_US} µs later: its restart backoff did not hear the stop",
                stop as f64 / 1e6
            ),
        )
    };
    for e in run.events {
        let n = e.node;
        match e.world() {
            Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) => {
                dead.retain(|(node, _), _| *node != n);
                stopping.remove(&n);
                continue;
            }
            // The node's graceful stop cancels its pool's token, the slots' parent.
            Some(WorldEv::NodeStop {}) => {
                stopping.entry(n).or_insert(e.t_us);
            }
            _ => {}
        }
        match e.pool() {
            Some(PoolEvent::NodeStopping { .. }) => {
                stopping.entry(n).or_insert(e.t_us);
            }
            Some(PoolEvent::WorkerDied { worker, .. }) => {
                dead.insert((n, plain(worker)), e.t_us);
            }
            Some(PoolEvent::SlotEnded { worker, .. } | PoolEvent::WorkerReplaced { replaces: worker, .. }) => {
                if let Some(died) = dead.remove(&(n, plain(worker)))
                    && let Some(&stop) = stopping.get(&n)
                {
                    let by = due(n, died, stop);
                    if e.t_us > by && v.len() < 20 {
                        v.push(late(n, plain(worker), stop, by));
                    }
                }
            }
            _ => {}
        }
    }
    for ((n, worker), died) in dead {
        if let Some(&stop) = stopping.get(&n) {
            let by = due(n, died, stop);
            if by < run.end_us && v.len() < 20 {
                v.push(late(n, worker, stop, by));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Ev;
    use crate::scenario::AppEv;
    use crate::scenario::test_history::{at, pool};

    fn slot_ended(t_ms: u64, exit: &str) -> Event {
        pool(t_ms, PoolEvent::SlotEnded { worker: "w".into(), exit: exit.into() })
    }

    fn joined(t_ms: u64, exit: &str) -> Event {
        joined_after(t_ms, exit, 1)
    }

    fn joined_after(t_ms: u64, exit: &str, incarnations: u64) -> Event {
        let r = Rec::WorkerExit { worker: "w".into(), exit: exit.into(), incarnations };
        at(t_ms, Who::Node(0), Ev::App(AppEv::Pool(r)))
    }

    /// The handle says what the slot ended with: clean. `Panicked` for a slot that stopped
    /// (MC193), or a join before the slot ended, is P47 at the join.
    #[test]
    fn a_handle_that_misreads_its_slot_fires_p47() {
        assert!(handles_report_their_slot_exit(&[slot_ended(10, "Stopped"), joined(11, "Stopped")]).is_empty());
        let v = handles_report_their_slot_exit(&[slot_ended(10, "Stopped"), joined(11, "Panicked")]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("returned Panicked, where the slot ended Stopped"), "{}", v[0].detail);
        assert_eq!(handles_report_their_slot_exit(&[joined(11, "Dead")]).len(), 1);
    }

    fn slot_started(t_ms: u64, worker: &str) -> Event {
        let e =
            PoolEvent::SlotStarted { worker: worker.into(), restart_min_ms: 1, restart_max_ms: 2, reset_after_ms: 3 };
        pool(t_ms, e)
    }

    /// A slot whose first incarnation `w0` was replaced by `w`: its handle counts 2.
    /// A count left at 1 (round 27 A #14) is P47 at the join.
    #[test]
    fn a_handle_that_miscounts_incarnations_fires_p47() {
        let replaced = pool(5, PoolEvent::WorkerReplaced { worker: "w".into(), replaces: "w0".into(), after_ms: 1 });
        let run = |n| {
            let events =
                [slot_started(1, "w0"), replaced.clone(), slot_ended(10, "Stopped"), joined_after(11, "Stopped", n)];
            handles_report_their_slot_exit(&events)
        };
        assert!(run(2).is_empty());
        let v = run(1);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("counts 1 incarnation(s); the slot had 2"), "{}", v[0].detail);
    }
}
