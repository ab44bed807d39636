//! V21: what a completer's `stop()` returns agrees with the report of the run it stopped, judged
//! at the instant the stop returns.
//!
//! A run ends by closing its event channel with its stop report (`events_closed`: completions
//! unflushed, events undelivered, producers still registered). `Completer::stop` waits for the
//! run to exit and returns that report: `Ok` when nothing was lost, else the error listing it
//! (`StopError`, the only error a stop returns: a bound that ran out and a store that failed
//! both end up as its counts). Its return is `stop_returned`, naming the run it ended or waited
//! for (the last run's, when none was running). At that instant the run's `events_closed` must
//! already be there, and the return must say what it says: an error when a count is above
//! zero, with the same counts, and `Ok` only when all are zero. A stop that reads the report
//! before the run exits (blind-spot hunt round 16, #14, MC136) returns `Ok`, or the previous
//! run's losses, while its run reports completions lost: a caller told the drain was clean
//! re-submits nothing. V1/V3 judge the run's own report, V9 only stops that failed: none of them
//! asks what the caller was told. A node's start or crash forgets its runs.
//!
//! And what the operator is told: a run whose report lists completions unflushed warns
//! (`unflushed`, the line an alert watches) with the same count at the same instant, and a run
//! that lost none does not. Round 28 B #6 emitted the warning before the queue left at the bound
//! was added to the report: it counted only batches given up after retries, and a stop that left
//! 16 completions queued warned of nothing.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, Violation, plain};

/// What a run's report says was lost: (unflushed, undelivered, producers left).
type Lost = (usize, usize, usize);

/// V21 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_stops_return_their_report<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → what its `events_closed` said was lost
    let mut closed: BTreeMap<(E::Node, String, u64), Lost> = BTreeMap::new();
    // (node, completer, run) → (unflushed, when): the warning its `events_closed` owes
    let mut owed: BTreeMap<(E::Node, String, u64), (usize, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    let unwarned = |v: &mut Vec<Violation>, (node, name, run): (E::Node, String, u64), (n, at): (usize, u64)| {
        let what = format!(
            "{node}: completer {name}: run {run} closed with {n} completions unflushed and warned of none (no `unflushed` at its close)"
        );
        v.push(Violation::new("V21", at, what));
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        while let Some(entry) = owed.first_entry().filter(|o| o.get().1 < t) {
            let (k, due) = entry.remove_entry();
            unwarned(&mut v, k, due);
        }
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            closed.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.completer() {
            Some(CompleterEvent::EventsClosed { completer, run, unflushed, undelivered, producers_left }) => {
                let key = (node.clone(), plain(completer).to_owned(), *run);
                if *unflushed > 0 {
                    owed.insert(key.clone(), (*unflushed, t));
                }
                closed.insert(key, (*unflushed, *undelivered, *producers_left));
            }
            Some(CompleterEvent::Unflushed { completer, run, unflushed }) => {
                let name = plain(completer);
                let wrong = match owed.remove(&(node.clone(), name.to_owned(), *run)) {
                    Some((n, _)) if n == *unflushed => None,
                    Some((n, _)) => Some(format!("warned of {unflushed} completions unflushed; its report lists {n}")),
                    None => {
                        Some(format!("warned of {unflushed} completions unflushed, but not at a close that lost any"))
                    }
                };
                if let Some(w) = wrong {
                    v.push(Violation::new("V21", t, format!("{node}: completer {name}: run {run} {w}")));
                }
            }
            Some(CompleterEvent::StopReturned { completer, run, ok, unflushed, undelivered, producers_left }) => {
                let name = plain(completer);
                let said: Lost = (*unflushed, *undelivered, *producers_left);
                let told = if *ok {
                    "Ok".to_owned()
                } else {
                    format!("an error listing {} unflushed, {} undelivered, {} producers left", said.0, said.1, said.2)
                };
                let wrong = match closed.get(&(node.clone(), name.to_owned(), *run)) {
                    None => Some(format!(
                        "before the run closed its event channel (no events_closed): it returned {told} without the run's report"
                    )),
                    Some(&lost) if *ok && lost != (0, 0, 0) => Some(format!(
                        "Ok while the run's report (events_closed) lists {} unflushed, {} undelivered, {} producers left: a stop that loses completions returns them",
                        lost.0, lost.1, lost.2
                    )),
                    // An error that lists nothing while the report lists nothing (round 45,
                    // hunt 45 A's sweep: a clean test that never answers yes, MC420): a caller
                    // told its clean stop failed.
                    Some(&(0, 0, 0)) if !*ok => Some(format!(
                        "{told} while the run's report (events_closed) lists nothing lost: a clean stop returns Ok"
                    )),
                    Some(&lost) if !*ok && said != lost => Some(format!(
                        "{told} while the run's report (events_closed) lists {} unflushed, {} undelivered, {} producers left: a stop returns its own run's report",
                        lost.0, lost.1, lost.2
                    )),
                    Some(_) => None,
                };
                if let Some(w) = wrong {
                    v.push(Violation::new(
                        "V21",
                        t,
                        format!("{node}: completer {name}: the stop of run {run} returned {w}"),
                    ));
                }
            }
            _ => {}
        }
    }
    while let Some((k, due)) = owed.pop_first() {
        unwarned(&mut v, k, due);
    }
    v.sort_by_key(|x| x.t_us);
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn closed(t_ms: u64, run: u64, lost: Lost) -> Ev {
        let (unflushed, undelivered, producers_left) = lost;
        at(t_ms, CompleterEvent::EventsClosed { completer: "c".into(), run, unflushed, undelivered, producers_left })
    }

    fn warned(t_ms: u64, run: u64, unflushed: usize) -> Ev {
        at(t_ms, CompleterEvent::Unflushed { completer: "c".into(), run, unflushed })
    }

    fn returned(t_ms: u64, run: u64, ok: bool, lost: Lost) -> Ev {
        let (unflushed, undelivered, producers_left) = lost;
        let c = "c".into();
        at(t_ms, CompleterEvent::StopReturned { completer: c, run, ok, unflushed, undelivered, producers_left })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&completer_stops_return_their_report(h))
    }

    /// A stop that returns its run's report passes: `Ok` for a clean one, the error with the
    /// same counts otherwise, again on a repeated stop.
    #[test]
    fn a_stop_returning_its_runs_report_passes() {
        assert_eq!(judge(&[closed(10, 1, (0, 0, 0)), returned(10, 1, true, (0, 0, 0))]), []);
        assert_eq!(judge(&[closed(10, 1, (2, 0, 1)), warned(10, 1, 2), returned(11, 1, false, (2, 0, 1))]), []);
        assert_eq!(
            judge(&[closed(10, 1, (0, 3, 0)), returned(11, 1, false, (0, 3, 0)), returned(20, 1, false, (0, 3, 0))]),
            []
        );
        // A later run's clean stop after a lossy one.
        assert_eq!(
            judge(&[
                closed(10, 1, (1, 0, 0)),
                warned(10, 1, 1),
                returned(10, 1, false, (1, 0, 0)),
                closed(30, 2, (0, 0, 0)),
                returned(30, 2, true, (0, 0, 0))
            ]),
            []
        );
    }

    /// MC136: the report read before the run exits: `Ok` for a lossy run, or the previous run's
    /// losses for a clean one (or another lossy one); and a return before the run's report.
    #[test]
    fn a_stop_not_returning_its_runs_report_fires_v21() {
        assert_eq!(
            judge(&[closed(10, 1, (2, 0, 0)), warned(10, 1, 2), returned(10, 1, true, (0, 0, 0))]),
            [("V21", 10)]
        );
        assert_eq!(judge(&[closed(10, 1, (0, 1, 0)), returned(12, 1, true, (0, 0, 0))]), [("V21", 12)]);
        assert_eq!(judge(&[closed(10, 1, (0, 0, 1)), returned(12, 1, true, (0, 0, 0))]), [("V21", 12)]);
        assert_eq!(
            judge(&[
                closed(10, 1, (1, 0, 0)),
                warned(10, 1, 1),
                returned(10, 1, false, (1, 0, 0)),
                closed(30, 2, (0, 0, 0)),
                returned(30, 2, false, (1, 0, 0))
            ]),
            [("V21", 30)]
        );
        assert_eq!(
            judge(&[
                closed(10, 1, (1, 0, 0)),
                warned(10, 1, 1),
                returned(10, 1, false, (1, 0, 0)),
                closed(30, 2, (4, 0, 0)),
                warned(30, 2, 4),
                returned(30, 2, false, (1, 0, 0))
            ]),
            [("V21", 30)]
        );
        assert_eq!(judge(&[returned(5, 1, true, (0, 0, 0)), closed(10, 1, (0, 0, 0))]), [("V21", 5)]);
        // MC420 (round 45): an error listing nothing for a run whose report lists nothing.
        assert_eq!(judge(&[closed(10, 1, (0, 0, 0)), returned(12, 1, false, (0, 0, 0))]), [("V21", 12)]);
        // Another completer's, or another node's, report is not this run's.
        let other = Ev(10_000, "n2", closed(10, 1, (0, 0, 0)).2, None);
        assert_eq!(judge(&[other, returned(12, 1, true, (0, 0, 0))]), [("V21", 12)]);
        // A crash forgets the node's runs.
        let crash = Ev(11_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[closed(10, 1, (0, 0, 0)), crash, returned(12, 1, true, (0, 0, 0))]), [("V21", 12)]);
    }

    /// A run that lost completions warns of them at its close with the same count (round 28
    /// B #6: the warning counted before the queue left at the bound was added); one that lost
    /// none does not.
    #[test]
    fn a_close_that_loses_completions_warns_of_them() {
        assert_eq!(judge(&[closed(10, 1, (3, 0, 0)), warned(10, 1, 3)]), []);
        assert_eq!(judge(&[closed(10, 1, (3, 0, 0)), warned(10, 1, 1)]), [("V21", 10)]);
        assert_eq!(judge(&[closed(10, 1, (3, 0, 0)), closed(12, 2, (0, 0, 0))]), [("V21", 10)]);
        assert_eq!(judge(&[closed(10, 1, (3, 0, 0))]), [("V21", 10)]);
        assert_eq!(judge(&[closed(10, 1, (0, 0, 0)), warned(10, 1, 2)]), [("V21", 10)]);
    }
}
