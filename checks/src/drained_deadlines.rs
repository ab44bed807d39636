//! V44: a completer's stop reports its bound reached only with something left to wait for,
//! judged at the instant it says so.
//!
//! A run's drain ends as soon as nothing is queued and no producer is registered (V17 judges
//! that it ends at once); it reports its stop bound reached (`stop_deadline`) only when the
//! bound ran out first, and says then what held it: the completions still queued (`pending`)
//! and the producers still registered (`producers`), both read in the same poll as the run's
//! own drained test. A `stop_deadline` with neither is a drain that was complete and did not
//! see it: it waited out its whole bound for nothing, on every stop. V17 leaves a run that
//! reported its bound to V4, and V4 only asks that the bound was not cut short, so the
//! cargo-mutants sweep of round 45 (hunt 45 A) saw `Intake::drained` answering `false` hold
//! every stop of every completer to its bound under every rule (MC418).

use keel::observe::CompleterEvent;

use crate::{Entry, Violation, plain};

/// V44 over keel's completer events: see the module's doc. The first 20 violations.
pub fn completer_deadlines_name_what_is_left<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        if let Some(CompleterEvent::StopDeadline { completer, run, producers: 0, pending: 0 }) = e.completer()
            && v.len() < 20
        {
            v.push(Violation::new(
                "V44",
                e.t_us(),
                format!(
                    "{}: completer {} run {run}: the stop reported its bound reached with nothing queued and no producer registered: a drained run waited out its bound",
                    e.node(),
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
    use crate::test_entry::completer_at as at;

    fn deadline(t_ms: u64, producers: usize, pending: usize) -> crate::test_entry::E {
        at(t_ms, CompleterEvent::StopDeadline { completer: "c".into(), run: 1, producers, pending })
    }

    #[test]
    fn a_bound_reached_with_nothing_left_fires_v44() {
        let judge = |h: &[crate::test_entry::E]| {
            completer_deadlines_name_what_is_left(h).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        // A producer still registered, or completions still queued: the bound held something.
        assert_eq!(judge(&[deadline(600, 1, 0)]), []);
        assert_eq!(judge(&[deadline(600, 0, 3)]), []);
        // Neither: the drain was complete (MC418).
        assert_eq!(judge(&[deadline(600, 0, 0)]), [("V44", 600_000)]);
    }
}
