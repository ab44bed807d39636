//! W4: the store's windowed faults act inside their windows only (round 39 A #18, round 40).
//!
//! The plan's store faults with a duration (a refusal window, a latency spike, a node's latency,
//! an access denial, reply loss, reply delay) are switches the world turns on at a window's start
//! and off at its end. A window whose end turns off the wrong switch, or none (a copy-paste slip
//! in the world: the reply delay's end clearing the loss, a spike's end forgotten), leaves a fault
//! in force until the heal while the plan, the timeline and every goal read the windows as
//! recorded: rules that excuse a slow, refused or lost reply by its window then judge a run that
//! never had it, and the run tests less than its plan says. Judged from what the store node did,
//! at the instant it read its faults: every reply it dropped lies inside a `reply_loss` window,
//! every reply held for a reply delay (`held`'s `delay_ms`) inside a `reply_delay` window of that
//! delay, every request slowed (`slowed`) inside a `latency_spike` of its extra latency and a
//! `node_latency` window of its node's latency each way, and every refusal (`fault_refused`)
//! inside a `store_refusing` window or an `access_denied` window of its node. The network's
//! slowdowns nest: as each `network_latency` window ends, the slowdown madsim draws from
//! (`network_latency_ended`, read back from madsim) is the largest of the windows still open.

use crate::check::Violation;
use crate::history::{Event, ServerEv, Who, WorldEv};

/// One window of a windowed fault: its start and end (µs, both inclusive: the world's end and a
/// request at the same instant may run in either order), the node it is on (`None`: the whole
/// store) and its amounts (a delay's or a latency's milliseconds).
struct Window {
    kind: &'static str,
    from_us: u64,
    to_us: u64,
    node: Option<Who>,
    amounts: (u64, u64),
}

/// W4 over one run's events: the first 20 violations; every scenario, built-in or a user's.
pub(crate) fn store_faults_inside_their_windows(events: &[Event]) -> Vec<Violation> {
    let mut windows: Vec<Window> = Vec::new();
    // The network slowdowns open: each one's end (µs) and extra latency.
    let mut slowdowns: Vec<(u64, u64)> = Vec::new();
    let mut v = Vec::new();
    for e in events {
        if v.len() >= 20 {
            break;
        }
        match e.world() {
            Some(WorldEv::NetworkLatency { ms, extra_ms }) => slowdowns.push((e.t_us + ms * 1000, *extra_ms)),
            Some(WorldEv::Heal {}) => slowdowns.clear(),
            Some(WorldEv::NetworkLatencyEnded { extra_ms }) => {
                if let Some(i) = slowdowns.iter().position(|&(end_us, _)| end_us == e.t_us) {
                    slowdowns.swap_remove(i);
                }
                let open = slowdowns.iter().map(|&(_, extra)| extra).max().unwrap_or(0);
                if *extra_ms != open {
                    let what = format!("the network draws up to {extra_ms} ms extra once a slowdown ended");
                    v.push(Violation::new("W4", e.t_us, format!("{what}; the windows still open add {open} ms")));
                }
            }
            _ => {}
        }
        let opened =
            |kind, ms: u64, node, amounts| Window { kind, from_us: e.t_us, to_us: e.t_us + ms * 1000, node, amounts };
        if let Some(w) = e.world() {
            windows.extend(match *w {
                WorldEv::ReplyLoss { ms, .. } => Some(opened("reply_loss", ms, None, (0, 0))),
                WorldEv::ReplyDelay { ms, delay_ms } => Some(opened("reply_delay", ms, None, (delay_ms, 0))),
                WorldEv::StoreRefusing { ms } => Some(opened("store_refusing", ms, None, (0, 0))),
                WorldEv::LatencySpike { ms, extra_ms } => Some(opened("latency_spike", ms, None, (extra_ms, 0))),
                WorldEv::NodeLatency { node, ms, to_ms, from_ms } => {
                    Some(opened("node_latency", ms, Some(node), (to_ms, from_ms)))
                }
                WorldEv::AccessDenied { node, ms } => Some(opened("access_denied", ms, Some(node), (0, 0))),
                _ => None,
            });
            continue;
        }
        let in_force = |kind: &str, node: Option<Who>, amounts: (u64, u64)| {
            windows.iter().any(|w| {
                w.kind == kind
                    && (w.from_us..=w.to_us).contains(&e.t_us)
                    && (w.node.is_none() || w.node == node)
                    && w.amounts == amounts
            })
        };
        let mut judge = |kind: &str, node: Option<Who>, amounts: (u64, u64), what: String| {
            if !in_force(kind, node, amounts) {
                v.push(Violation::new("W4", e.t_us, format!("{what} outside every {kind} window of it")));
            }
        };
        match e.server() {
            Some(ServerEv::ReplyDropped { to, .. }) => {
                judge("reply_loss", None, (0, 0), format!("the store dropped {to}'s reply"));
            }
            Some(ServerEv::Held { to, delay_ms, .. }) if *delay_ms > 0 => {
                judge("reply_delay", None, (*delay_ms, 0), format!("the store held {to}'s reply {delay_ms} ms"));
            }
            Some(ServerEv::Slowed { to, extra_ms, to_ms, from_ms }) => {
                if *extra_ms > 0 {
                    judge(
                        "latency_spike",
                        None,
                        (*extra_ms, 0),
                        format!("the store slowed {to}'s request {extra_ms} ms"),
                    );
                }
                if *to_ms > 0 || *from_ms > 0 {
                    let what = format!("the store held {to}'s call {to_ms} ms before and {from_ms} ms after");
                    judge("node_latency", Some(*to), (*to_ms, *from_ms), what);
                }
            }
            Some(ServerEv::FaultRefused { to, denied }) => {
                let (kind, node) = if *denied { ("access_denied", Some(*to)) } else { ("store_refusing", None) };
                judge(kind, node, (0, 0), format!("the store refused {to}"));
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
        assert!(store_faults_inside_their_windows(&events).is_empty());
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
        let v = store_faults_inside_their_windows(&events);
        let at_us: Vec<u64> = v.iter().map(|v| v.t_us).collect();
        assert_eq!(at_us, [11_001, 5_000, 25_001, 19_999]);
        assert!(v.iter().all(|v| v.invariant == "W4"));
    }

    #[test]
    fn slowed_and_refused_requests_are_judged_against_their_own_kind_node_and_amounts() {
        let (n1, n2) = (Who::node(1), Who::node(2));
        let slowed = |t_us, to, extra_ms, to_ms, from_ms| {
            at(t_us, Ev::Server(ServerEv::Slowed { to, extra_ms, to_ms, from_ms }))
        };
        let refused = |t_us, to, denied| at(t_us, Ev::Server(ServerEv::FaultRefused { to, denied }));
        let events = [
            at(0, Ev::World(WorldEv::LatencySpike { ms: 10, extra_ms: 300 })),
            at(0, Ev::World(WorldEv::NodeLatency { node: n1, ms: 10, to_ms: 5, from_ms: 7 })),
            at(0, Ev::World(WorldEv::StoreRefusing { ms: 10 })),
            at(0, Ev::World(WorldEv::AccessDenied { node: n1, ms: 10 })),
            slowed(10_000, n1, 300, 5, 7),
            refused(10_000, n1, false),
            refused(10_000, n1, true),
            // Past every window, on another node, or of another amount: each fires once.
            slowed(10_001, n2, 300, 0, 0),
            slowed(5_000, n2, 0, 5, 7),
            slowed(5_000, n1, 0, 5, 8),
            refused(10_001, n1, false),
            refused(5_000, n2, true),
        ];
        let v = store_faults_inside_their_windows(&events);
        let at_us: Vec<u64> = v.iter().map(|v| v.t_us).collect();
        assert_eq!(at_us, [10_001, 5_000, 5_000, 10_001, 5_000], "{v:?}");
    }
}
