//! W4: the store's reply faults act inside their windows only (round 39 A #18).
//!
//! The plan's `ReplyLoss` and `ReplyDelay` windows are switches the world turns on at a window's
//! start and off at its end. A window whose end turns off the wrong switch (a copy-paste slip in
//! the world: the delay's end clearing the loss) leaves a reply delay in force until the heal and
//! ends a loss window early, while the plan, the timeline and every goal read the windows as
//! recorded: rules that excuse a slow or lost reply by its window then judge a run that never had
//! it. Judged from what the store node did, at the instant it did it: every reply it dropped lies
//! inside a `reply_loss` window, every reply it held for a reply delay (`held`'s `delay_ms`) inside
//! a `reply_delay` window of that same delay.

use crate::check::Violation;
use crate::history::{Event, ServerEv, WorldEv};

/// One window of a reply fault: its start and end (µs, both inclusive: the world's end and a
/// reply at the same instant may run in either order) and its amount (a delay's milliseconds).
struct Window {
    from_us: u64,
    to_us: u64,
    amount: u64,
}

impl Window {
    fn covers(&self, t_us: u64) -> bool {
        (self.from_us..=self.to_us).contains(&t_us)
    }
}

/// W4 over one run's events: the first 20 violations; every scenario, built-in or a user's.
pub(crate) fn reply_faults_inside_their_windows(events: &[Event]) -> Vec<Violation> {
    let window = |t_us: u64, ms: u64, amount: u64| Window { from_us: t_us, to_us: t_us + ms * 1000, amount };
    let mut losses: Vec<Window> = Vec::new();
    let mut delays: Vec<Window> = Vec::new();
    let mut v = Vec::new();
    for e in events {
        if v.len() >= 20 {
            break;
        }
        match (e.world(), e.server()) {
            (Some(WorldEv::ReplyLoss { ms, .. }), _) => losses.push(window(e.t_us, *ms, 0)),
            (Some(WorldEv::ReplyDelay { ms, delay_ms }), _) => delays.push(window(e.t_us, *ms, *delay_ms)),
            (_, Some(ServerEv::ReplyDropped { to, .. })) if !losses.iter().any(|w| w.covers(e.t_us)) => {
                v.push(Violation::new(
                    "W4",
                    e.t_us,
                    format!("the store dropped {to}'s reply outside every reply-loss window"),
                ));
            }
            (_, Some(ServerEv::Held { to, delay_ms, .. }))
                if *delay_ms > 0 && !delays.iter().any(|w| w.covers(e.t_us) && w.amount == *delay_ms) =>
            {
                v.push(Violation::new(
                    "W4",
                    e.t_us,
                    format!("the store held {to}'s reply {delay_ms} ms outside every reply-delay window of that delay"),
                ));
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, Who};

    fn at(t_us: u64, ev: Ev) -> Event {
        Event { t_us, node: Who::Store, ev }
    }

    fn held(t_us: u64, delay_ms: u64) -> Event {
        let to = Who::node(1);
        at(t_us, Ev::Server(ServerEv::Held { to, before_ms: 0, after_ms: 0, delay_ms, applied: true }))
    }

    fn dropped(t_us: u64) -> Event {
        at(t_us, Ev::Server(ServerEv::ReplyDropped { to: Who::node(1), applied: true }))
    }

    #[test]
    fn a_reply_held_or_dropped_inside_its_window_passes_up_to_its_end_instant() {
        let events = [
            at(1_000, Ev::World(WorldEv::ReplyDelay { ms: 10, delay_ms: 30 })),
            held(1_000, 30),
            held(11_000, 30),
            at(20_000, Ev::World(WorldEv::ReplyLoss { ms: 5, pct: 50 })),
            dropped(25_000),
            // A node's latency alone holds a reply with no reply delay: not this rule's.
            held(40_000, 0),
        ];
        assert!(reply_faults_inside_their_windows(&events).is_empty());
    }

    #[test]
    fn a_delay_past_its_window_or_of_another_amount_and_a_drop_outside_a_loss_window_fire() {
        let events = [
            at(1_000, Ev::World(WorldEv::ReplyDelay { ms: 10, delay_ms: 30 })),
            held(11_001, 30),
            held(5_000, 31),
            at(20_000, Ev::World(WorldEv::ReplyLoss { ms: 5, pct: 50 })),
            dropped(25_001),
            dropped(19_999),
        ];
        let v = reply_faults_inside_their_windows(&events);
        let at_us: Vec<u64> = v.iter().map(|v| v.t_us).collect();
        assert_eq!(at_us, [11_001, 5_000, 25_001, 19_999]);
        assert!(v.iter().all(|v| v.invariant == "W4"));
    }
}
