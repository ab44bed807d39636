//! V29: completers of one name on different nodes do not retry a failing store in lockstep,
//! judged at each failed write.
//!
//! A completer's retry backoff is jittered so that many nodes retrying one failing store spread
//! their attempts. The jitter's seed must differ between processes: seeded by the completer's
//! name and run alone (keel as it was: blind-spot hunt, round 27, B K1), every node's completer
//! of one name (a pool's, on every node) draws the same waits, and after an outage they all
//! retry together, each attempt a fixed offset from the others'. Seen from the history: the
//! waits a run's failed writes were followed by (from a `flush_failed` to the next attempt's
//! start, its `flush_failed` less its own `took_us`, as V16 reads them), in one streak (no write
//! succeeded and no cool-down came between), repeat on another node's run of the same name, to
//! within the clocks' rates. [`STREAK`] such waits in a row cannot repeat by chance with
//! different seeds (each is drawn to the nanosecond from a range of milliseconds); gaps between
//! the failures themselves can (attempts held until one store restart fail together). A
//! cool-down's wait is fixed (`retry_max`), so a `retry_budget_exhausted` ends the streak; a stop
//! request or a drain ends the judging of the run (it cuts waits short: completer seeds 113,
//! 701); a node's crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// How many consecutive waits between failed writes two nodes must share to be in lockstep.
pub const STREAK: usize = 3;

/// The shortest wait that is a jittered draw: a retry at once (a wait of zero, as a clock run
/// far beyond its bound can make a backoff last) says nothing about how the jitter was seeded,
/// and two nodes' zeros are equal whatever their seeds (hunt 32 A #10: V29 called
/// `[0, 0, 0]` on two nodes lockstep).
pub const DRAWN_WAIT_MIN_US: u64 = 1_000;

/// How far apart two waits may be and still be the same draw: clocks of different rates stretch
/// one wait differently, and a wait is read to the microsecond at both of its ends.
fn same_draw(a: u64, b: u64) -> bool {
    a.abs_diff(b) <= 3 + a.max(b) / 1000
}

/// A run's streak of failed writes: its last failure's instant and the waits before it.
type Streak = (u64, Vec<u64>);

/// The wait sequences drawn by one completer name, each with its node.
type Drawn<N> = Vec<(N, Vec<u64>)>;

/// V29 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_retries_do_not_align<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → the streak's last failure instant and its last waits
    let mut streaks: BTreeMap<(E::Node, &str, u64), Streak> = BTreeMap::new();
    // completer → the wait sequences drawn, with their node (the last 64)
    let mut drawn: BTreeMap<&str, Drawn<E::Node>> = BTreeMap::new();
    // the runs whose stop was requested
    let mut stopping: Vec<(E::Node, &str, u64)> = Vec::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            streaks.retain(|k, _| &k.0 != node);
            stopping.retain(|k| &k.0 != node);
            continue;
        }
        let (completer, run, took_us) = match e.completer() {
            Some(
                CompleterEvent::BatchFlushed { completer, run, .. }
                | CompleterEvent::RetryBudgetExhausted { completer, run },
            ) => {
                streaks.remove(&(node.clone(), plain(completer), *run));
                continue;
            }
            // A stop cuts a wait short, and a drain retries at once: not drawn waits.
            Some(
                CompleterEvent::StopRequested { completer, run, .. }
                | CompleterEvent::DrainStarted { completer, run, .. },
            ) => {
                stopping.push((node.clone(), plain(completer), *run));
                continue;
            }
            Some(CompleterEvent::FlushFailed { completer, run, took_us, .. }) => (plain(completer), *run, *took_us),
            _ => continue,
        };
        if stopping.contains(&(node.clone(), completer, run)) {
            continue;
        }
        let (last, waits) = streaks.entry((node.clone(), completer, run)).or_insert((u64::MAX, Vec::new()));
        // The wait: from the previous failure to this attempt's start (its end less its own
        // duration), as V16 reads it.
        if *last != u64::MAX {
            waits.push(t.saturating_sub(took_us).saturating_sub(*last));
            if waits.len() > STREAK {
                waits.remove(0);
            }
        }
        *last = t;
        if waits.len() < STREAK || waits.iter().any(|w| *w < DRAWN_WAIT_MIN_US) {
            continue;
        }
        let seen = drawn.entry(completer).or_default();
        let twin = seen.iter().find(|(n, w)| n != node && w.iter().zip(waits.iter()).all(|(a, b)| same_draw(*a, *b)));
        if let Some((first, _)) = twin
            && v.len() < 20
        {
            v.push(Violation::new(
                "V29",
                t,
                format!(
                    "{node}: completer {completer} run {run} waited {waits:?} µs between its failed writes, the very waits {first}'s completer of that name drew: their jitter is not seeded apart, and they retry the store in lockstep"
                ),
            ));
        }
        seen.push((node.clone(), waits.clone()));
        if seen.len() > 64 {
            seen.remove(0);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::Outcome;
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn failed(t_us: u64, node: &'static str) -> Ev {
        let (error, outcome) = ("x".into(), Outcome::Unknown);
        let e = CompleterEvent::FlushFailed { completer: "c".into(), run: 1, n: 3, error, outcome, took_us: 100 };
        Ev(t_us, node, Some(Event::Completer(e.to_static())), None)
    }

    #[test]
    fn two_nodes_with_the_same_waits_break_v29_and_different_ones_do_not() {
        let same: Vec<Ev> = [0, 10_000, 30_000, 70_000]
            .iter()
            .flat_map(|t| [failed(1_000_000 + t, "n1"), failed(1_000_601 + t, "n2")])
            .collect();
        let v = completer_retries_do_not_align(&same);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "V29");
        let apart: Vec<Ev> = [(0, 0), (10_000, 12_345), (30_000, 27_001), (70_000, 66_666)]
            .iter()
            .flat_map(|(a, b)| [failed(1_000_000 + a, "n1"), failed(1_000_601 + b, "n2")])
            .collect();
        assert!(completer_retries_do_not_align(&apart).is_empty());
        // Retries at once on both nodes: waits of zero, equal whatever the seeds.
        let at_once: Vec<Ev> = [0, 100, 200, 300]
            .iter()
            .flat_map(|t| [failed(1_000_000 + t, "n1"), failed(1_000_000 + t, "n2")])
            .collect();
        assert!(completer_retries_do_not_align(&at_once).is_empty());
    }
}
