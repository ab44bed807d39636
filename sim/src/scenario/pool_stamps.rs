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

use std::collections::BTreeSet;

use keel::observe::PoolEvent;

use super::{RunView, StoreClock};
use crate::check::Violation;
use crate::history::{Who, WorldEv};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ServerEv;
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
}
