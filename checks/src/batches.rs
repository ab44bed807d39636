//! V14's other side: a full batch is written at once, judged at its write.
//!
//! A completer run writes as soon as `batch_size` completions are queued (`completer_started`
//! carries the figure); only a partial batch waits for the flush tick (V14). Each `accepted`
//! says how many completions wait for a write (`queued`) and how many are accepted in all
//! (`backlog`: queued plus a batch in flight, which holds its room until it is written and its
//! events handed on). So once an acceptance leaves a full batch queued with nothing in flight
//! (`backlog` = `queued`), the run is idle between writes and its next write must start within
//! the slack; that write's outcome (`batch_flushed`, whose `took_us` runs from its first
//! attempt, or `flush_failed`) less its duration at the slowest clock is the earliest it can
//! have started. One that holds a full batch to the tick (MC86: `>` for `>=`) adds a flush
//! interval of latency to every full batch. Not judged from a stop request on (the drain writes
//! at once: V13); a node's crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// V14 (full batches) over keel's completer events: see the module's doc. `slowest` is the
/// slowest rate of a node's clock the history allows, `slack_us` of running time is allowed,
/// `frozen` gives a node's frozen spans. The first 20 violations.
pub fn completer_full_batches_write_at_once<E: Entry>(
    events: &[E],
    slowest: f64,
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    let stretch = |us: u64| (us as f64 / slowest.clamp(0.01, 1.0)) as u64;
    let mut runs: BTreeMap<(E::Node, &str, u64), Run> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        match e.completer() {
            Some(C::CompleterStarted { completer, run, batch_size, .. }) => {
                runs.insert(
                    (node.clone(), plain(completer), *run),
                    Run { batch_size: *batch_size, stopping: false, full_at: None },
                );
            }
            Some(C::StopRequested { completer, run, .. } | C::DrainStarted { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    (r.stopping, r.full_at) = (true, None);
                }
            }
            Some(C::Accepted { completer, run, backlog, queued }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run))
                    && !r.stopping
                    && r.full_at.is_none()
                    && *queued >= r.batch_size
                    && backlog == queued
                {
                    r.full_at = Some(t);
                }
            }
            Some(C::BatchFlushed { completer, run, took_us, .. } | C::FlushFailed { completer, run, took_us, .. }) => {
                let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) else { continue };
                let Some(full_at) = r.full_at.take() else { continue };
                let start = t.saturating_sub(stretch(*took_us));
                let deadline = reach(full_at, slack_us, &frozen(node));
                if start > deadline && v.len() < 20 {
                    v.push(Violation::new(
                        "V14",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a full batch ({} queued, nothing in flight) at {:.3}s was written from {:.3}s at the earliest, {} µs late",
                            plain(completer),
                            r.batch_size,
                            full_at as f64 / 1e6,
                            start as f64 / 1e6,
                            start - deadline
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// One run: its batch size, whether a stop was requested, and the instant an acceptance left a
/// full batch queued with nothing in flight (until the run's next write ends).
struct Run {
    batch_size: usize,
    stopping: bool,
    full_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: CompleterEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Completer(e.to_static())), None)
    }

    fn started() -> Ev {
        let e = CompleterEvent::CompleterStarted {
            completer: "c".into(),
            run: 1,
            batch_size: 4,
            flush_interval_us: 100_000,
            retry_min_us: 10_000,
            retry_max_us: 100_000,
            retry_budget: 8,
        };
        at(0, e)
    }

    fn accepted(t_ms: u64, backlog: usize, queued: usize) -> Ev {
        at(t_ms, CompleterEvent::Accepted { completer: "c".into(), run: 1, backlog, queued })
    }

    fn flushed(t_ms: u64, took_ms: u64) -> Ev {
        let (took_us, attempt_us) = (took_ms * 1000, took_ms * 1000);
        at(
            t_ms,
            CompleterEvent::BatchFlushed {
                completer: "c".into(),
                run: 1,
                n: 4,
                rev: 1,
                retried: false,
                took_us,
                attempt_us,
            },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&completer_full_batches_write_at_once(h, 1.0, 2_000, |_| Vec::new()))
    }

    #[test]
    fn a_full_batch_waiting_for_the_tick_fires_v14() {
        // Written at once (a 5 ms write begun at the fourth acceptance).
        assert_eq!(judge(&[started(), accepted(10, 3, 3), accepted(20, 4, 4), flushed(25, 5)]), []);
        // Held to the tick, 100 ms later (MC86).
        assert_eq!(judge(&[started(), accepted(20, 4, 4), flushed(125, 5)]), [("V14", 125)]);
        // A batch in flight: the run is busy, not judged.
        assert_eq!(judge(&[started(), accepted(20, 8, 4), flushed(125, 5)]), []);
        // A stop request: the drain's to judge (V13).
        let stop = at(21, CompleterEvent::StopRequested { completer: "c".into(), run: 1, bound_ms: 1_000 });
        assert_eq!(judge(&[started(), accepted(20, 4, 4), stop, flushed(125, 5)]), []);
    }
}
