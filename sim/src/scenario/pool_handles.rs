//! **P47**: a worker handle tells how its worker ended, judged where the handle answers.
//!
//! A worker slot ends with its last incarnation's exit (`slot_ended`: stopped, dead or
//! panicked), and `WorkerHandle::join` and `WorkerHandle::stop` return that exit. The pool
//! scenario joins every worker it adds and records what `join` returned (`worker_exit`, the
//! scenario's own event). So each `worker_exit` names a slot that ended before it on that node,
//! with the same exit. A handle that misses the slot's last word (MC193: a watch's `wait_for`
//! that looks at the close before the value, the blind-spot hunt's round 21 #41) says
//! `Panicked` for a worker that stopped: a supervisor restarts a service that did nothing
//! wrong, or pages for a panic that never was. A node's crash or restart forgets its slots.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;
use keel_checks::plain;

use super::pool::{Rec, rec};
use crate::check::Violation;
use crate::history::{Event, Who, WorldEv};

/// P47 over a pool run's events. The first 20 violations.
pub fn handles_report_their_slot_exit(events: &[Event]) -> Vec<Violation> {
    let mut ended: BTreeMap<(Who, &str), &str> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            ended.retain(|(n, _), _| *n != e.node);
            continue;
        }
        if let Some(PoolEvent::SlotEnded { worker, exit }) = e.pool() {
            ended.insert((e.node, plain(worker)), plain(exit));
            continue;
        }
        let Some(Rec::WorkerExit { worker, exit }) = rec(e) else { continue };
        let what = match ended.get(&(e.node, worker.as_str())) {
            Some(slot) if *slot == exit.as_str() => continue,
            Some(slot) => format!("its handle's join returned {exit}, where the slot ended {slot}"),
            None => format!("its handle's join returned {exit} before the slot ended"),
        };
        if v.len() < 20 {
            v.push(Violation::new("P47", e.t_us, format!("{}: worker {worker}: {what}", e.node)));
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
        let r = Rec::WorkerExit { worker: "w".into(), exit: exit.into() };
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
}
