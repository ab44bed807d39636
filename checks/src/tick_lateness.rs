//! V41: a completer takes a partial batch at its flush tick, on its own clock, judged at each
//! `tick_taken`.
//!
//! A run idle with completions queued sleeps to its next tick on the clock it was given, and a
//! partial batch taken at the tick reports how far past it the run's clock was (`late_us`). That
//! is 0 (a microsecond of rounding) unless the node was frozen (a pause: its clock ran on while
//! its timers waited) or its clock jumped meanwhile. A tick slept on the runtime's timer instead
//! of the run's clock (MC290) wakes late on a clock running fast, by the drift over the interval;
//! V26 reads that lateness on global time at the plan's extreme rates, so it sees it only where
//! its slack is thin (1 seed in 600 once the schedules moved in round 37). Read on the run's own
//! clock, every late tick shows.

use keel::observe::CompleterEvent;

use crate::{Entry, Span, Violation, plain};

/// V41 over keel's completer events: a `tick_taken` later than `slack_us` past its tick, unless
/// `frozen(node)` overlaps the lateness or `jumped(node, from, to)` says the clock jumped within
/// it (a second of margin before). The first 20 violations.
pub fn completer_ticks_on_time<E: Entry>(
    events: &[E],
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(CompleterEvent::TickTaken { completer, run, queued, late_us }) = e.completer() else { continue };
        if *late_us <= slack_us {
            continue;
        }
        let (node, t) = (e.node(), e.t_us());
        let from = t.saturating_sub(*late_us);
        if frozen(node).iter().any(|s| s.start <= t && s.end >= from) || jumped(node, from.saturating_sub(1_000_000), t)
        {
            continue;
        }
        if v.len() < 20 {
            v.push(Violation::new(
                "V41",
                t,
                format!(
                    "{node}: completer {} run {run} took a partial batch of {queued} {late_us} µs past its flush tick on its own clock: its idle wait woke late",
                    plain(completer)
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    fn taken(t_ms: u64, late_us: u64) -> Ev {
        let e = CompleterEvent::TickTaken { completer: "c".into(), run: 1, queued: 3, late_us };
        crate::test_entry::completer_at(t_ms, e)
    }

    #[test]
    fn a_late_tick_is_a_violation_unless_frozen_or_jumped() {
        let judge = |late_us, frozen: Vec<Span>, jumped: bool| {
            completer_ticks_on_time(&[taken(100, late_us)], 50, |_| frozen.clone(), |_, _, _| jumped).len()
        };
        assert_eq!(judge(1, vec![], false), 0, "a microsecond of rounding");
        assert_eq!(judge(800, vec![], false), 1, "a tick slept on another clock");
        assert_eq!(judge(800, vec![Span { start: 99_000, end: 99_900 }], false), 0, "a pause");
        assert_eq!(judge(800, vec![Span { start: 10_000, end: 20_000 }], false), 1, "a pause long before");
        assert_eq!(judge(800, vec![], true), 0, "a jump");
    }
}
