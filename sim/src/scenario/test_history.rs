//! Histories written by hand for the rules' unit tests: one event at a time, judged on a calm
//! plan, so each test reads as the instants it is about.

use keel::observe::PoolEvent;

use super::RunView;
use crate::history::{Ev, Event, Who};
use crate::plan::{FaultPlan, Profile};
use crate::timeline::Timeline;

/// `ev` on `node` at `t_ms`.
pub fn at(t_ms: u64, node: Who, ev: impl Into<Ev>) -> Event {
    Event { t_us: t_ms * 1000, node, ev: ev.into() }
}

/// Pool event `e` on node 0 at `t_ms`.
pub fn pool(t_ms: u64, e: PoolEvent<'_>) -> Event {
    at(t_ms, Who::Node(0), Ev::Core(keel::observe::Event::Pool(e.to_static())))
}

/// `rule` on `events` as a run of a calm plan healed at `heal_us` that ended at `end_us`.
pub fn judge<T>(events: &[Event], heal_us: u64, end_us: u64, rule: impl FnOnce(&RunView<'_>) -> T) -> T {
    let plan =
        FaultPlan { seed: 0, profile: Profile::Calm, enabled: vec![], heal_at_ms: heal_us / 1000, events: vec![] };
    let timeline = Timeline::derive(events, end_us);
    rule(&RunView { plan: &plan, events, timeline: &timeline, heal_us, end_us })
}

/// Worker w of node 0 runs j#1 from 100 ms and is asked to stop at 1 000 ms: a 750 ms drain,
/// beats of at most 500 ms.
pub fn worker_draining() -> Vec<Event> {
    vec![
        at(0, Who::Node(0), crate::history::WorldEv::NodeStart {}),
        pool(100, PoolEvent::Started { job: "j".into(), worker: "w".into(), attempt: 1 }),
        pool(1_000, PoolEvent::WorkerStopping { worker: "w".into(), running: 1, drain_ms: 750, beat_bound_ms: 500 }),
    ]
}

/// j#1 of worker w returned at `t_ms` (`completed`: it said so; `stopped`: it was asked to).
pub fn handler_returned(t_ms: u64, completed: bool, stopped: bool) -> Event {
    pool(t_ms, PoolEvent::HandlerReturned { job: "j".into(), worker: "w".into(), attempt: 1, completed, stopped })
}
