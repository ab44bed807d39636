//! V16: a completer retries a failed write when its backoff says, neither sooner nor later,
//! judged at each retry.
//!
//! A run announces its retry timing when it starts (`completer_started`: `retry_min_us`,
//! `retry_max_us`, `retry_budget`). After the n-th failed write of a batch in a row
//! (`flush_failed`, emitted as the wait begins, with the failed attempt's own `took_us`), keel
//! waits its backoff, `retry_min`·2^n capped at `retry_max` and jittered down to half, before the
//! next attempt; after `retry_budget` failures in a row it cools down for exactly `retry_max` and
//! starts the count over; a written batch starts it over too. The next attempt's start is its
//! outcome (`flush_failed` or `batch_flushed` with `attempt_us`) less its own duration, so it is
//! known to within the clock's rate. One that starts before half the backoff is a retry storm on
//! a failing store (MC83: a jitter without its floor); one that starts after the whole backoff
//! waits past the configured most (MC84: a doubling without its cap, which V12 saw only when a
//! drain gave a batch up). A stop request or a drain cuts the wait short and ends V16's judging
//! of the run; a node's crash or restart ends its runs.
//!
//! V33 judges the drain's retries the same way: once a run's drain began (`drain_started`), a
//! batch whose write fails is retried after the backoff the failure drew (the count of failures
//! in a row goes on from before the drain), not at once: a drain that retries a failing store
//! back to back is a retry storm at every shutdown (blind-spot hunt, round 36, B #4, MC310). A
//! drain that gives the batch up instead (its next attempt could not start inside the stop's
//! bound, V12) releases it (`room_made` at the failure's instant), and the run's next write, of
//! another batch, owes no wait.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// One run's retry timing and its failures in a row.
struct Run {
    min_us: u64,
    max_us: u64,
    budget: u32,
    failures: u32,
    due: Option<Due>,
    stopping: bool,
    /// The drain began: failures owe their backoff again (V33).
    draining: bool,
    /// A `retry_budget_exhausted` came, for the failure that follows it at the same instant.
    exhausted: bool,
}

impl Run {
    /// The next attempt's wait after one more failure, as keel's backoff draws it: (floor, most).
    fn failed(&mut self) -> (u64, u64) {
        self.failures += 1;
        if self.failures >= self.budget {
            self.failures = 0;
            return (self.max_us, self.max_us);
        }
        let exp = self.min_us.saturating_mul(1u64 << self.failures.min(16)).min(self.max_us);
        (exp / 2, exp)
    }
}

/// V16 over keel's completer events: see the module's doc. `slowest`, `fastest`, the slacks,
/// `frozen` and `jumped` as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn completer_retries_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut runs: BTreeMap<(E::Node, &str, u64), Run> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        let (completer, run, took_us, failed) = match e.completer() {
            Some(C::CompleterStarted { completer, run, retry_min_us, retry_max_us, retry_budget, .. }) => {
                let r = Run {
                    min_us: *retry_min_us,
                    max_us: *retry_max_us,
                    budget: *retry_budget,
                    failures: 0,
                    due: None,
                    stopping: false,
                    draining: false,
                    exhausted: false,
                };
                runs.insert((node.clone(), plain(completer), *run), r);
                continue;
            }
            Some(C::StopRequested { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    (r.stopping, r.due) = (true, None);
                }
                continue;
            }
            // The drain's first write starts at once (V13); its failures owe their backoff (V33).
            Some(C::DrainStarted { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    (r.stopping, r.draining, r.due) = (true, true, None);
                }
                continue;
            }
            // A batch given up in the drain: the next write is another batch's first.
            Some(C::RoomMade { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run))
                    && r.draining
                {
                    r.due = None;
                }
                continue;
            }
            Some(C::RetryBudgetExhausted { completer, run }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    r.exhausted = true;
                }
                continue;
            }
            Some(C::FlushFailed { completer, run, took_us, .. }) => (plain(completer), *run, *took_us, true),
            Some(C::BatchFlushed { completer, run, attempt_us, .. }) => (plain(completer), *run, *attempt_us, false),
            _ => continue,
        };
        let Some(r) = runs.get_mut(&(node.clone(), completer, run)) else { continue };
        if let Some(d) = r.due.take() {
            let id = if r.draining { "V33" } else { "V16" };
            verdicts.judge((id, id), node, (&d, t, took_us), false, |at, by, how| {
                let (what, wait_us) =
                    if how == "late" { ("no later than", d.wait_max_us) } else { ("no sooner than", d.wait_min_us) };
                format!(
                    "{node}: completer {completer} run {run}: after {} at {:.3}s its retry was due {what} {wait_us} µs, and started at {:.3}s, {by} µs {how}",
                    d.after,
                    d.earliest as f64 / 1e6,
                    at as f64 / 1e6,
                )
            });
        }
        if !failed {
            r.failures = 0;
            continue;
        }
        let (floor, most) = r.failed();
        // The warning operators alert on: exactly at the failure that uses the budget up.
        let used_up = floor == most && r.failures == 0;
        if used_up != std::mem::take(&mut r.exhausted) {
            let (what, budget) = (if used_up { "without" } else { "with" }, r.budget);
            verdicts.v.push(Violation::new(
                "V16",
                t,
                format!(
                    "{node}: completer {completer} run {run}: a failed write {what} retry_budget_exhausted, where a budget of {budget} failures in a row is {}",
                    if used_up { "used up" } else { "not" }
                ),
            ));
        }
        if !r.stopping || r.draining {
            let after = match (floor == most, r.draining) {
                (true, false) => "a failed write that used its retry budget up",
                (false, false) => "a failed write",
                (true, true) => "a failed write of the drain that used its retry budget up",
                (false, true) => "a failed write of the drain",
            };
            r.due = Some(Due { after, latest: t, wait_max_us: most, earliest: t, wait_min_us: floor });
        }
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::Outcome;

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn started(t_ms: u64) -> Ev {
        let (retry_min_us, retry_max_us, retry_budget) = (10_000, 100_000, 4);
        let e = CompleterEvent::CompleterStarted {
            completer: "c".into(),
            run: 1,
            batch_size: 10,
            flush_interval_us: 50_000,
            retry_min_us,
            retry_max_us,
            retry_budget,
            op_timeout_us: 200_000,
            backlog: 4096,
        };
        at(t_ms, e)
    }

    fn failed(t_ms: u64, took_ms: u64) -> Ev {
        let (error, outcome, took_us) = ("x".into(), Outcome::Unknown, took_ms * 1000);
        at(t_ms, CompleterEvent::FlushFailed { completer: "c".into(), run: 1, n: 3, error, outcome, took_us })
    }

    fn flushed(t_ms: u64, attempt_ms: u64) -> Ev {
        let (took_us, attempt_us) = (attempt_ms * 1000, attempt_ms * 1000);
        let e = CompleterEvent::BatchFlushed {
            completer: "c".into(),
            run: 1,
            n: 3,
            rev: 1,
            retried: true,
            took_us,
            attempt_us,
        };
        at(t_ms, e)
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&completer_retries_on_time(h, crate::steady_clocks(2_000)))
    }

    /// retry_min 10 ms, retry_max 100 ms, budget 4: after the first failure the wait is 10–20 ms,
    /// after the second 20–40 ms, after the third 40–80 ms, after the fourth exactly 100 ms.
    #[test]
    fn retries_inside_their_backoff_pass_and_outside_fire_v16() {
        let on_time = [started(0), failed(100, 5), failed(125, 5), flushed(160, 5)];
        assert_eq!(judge(&on_time), []);
        // The first retry 3 ms after the failure (a floor of nothing, MC83).
        assert_eq!(judge(&[started(0), failed(100, 5), failed(108, 5)]), [("V16", 108)]);
        // The third retry 150 ms after its failure (a wait past its cap, MC84).
        let late = [started(0), failed(100, 1), failed(116, 1), failed(146, 1), flushed(300, 1)];
        assert_eq!(judge(&late), [("V16", 300)]);
        // The budget used up: exactly retry_max, then the count starts over.
        let exhausted = |t_ms| at(t_ms, CompleterEvent::RetryBudgetExhausted { completer: "c".into(), run: 1 });
        let cooled = [
            started(0),
            failed(10, 1),
            failed(26, 1),
            failed(56, 1),
            exhausted(116),
            failed(116, 1),
            failed(217, 1),
            failed(233, 1),
        ];
        assert_eq!(judge(&cooled), []);
        // The warning missing at the budget-th failure (MC250), or given at another one.
        let silent = [started(0), failed(10, 1), failed(26, 1), failed(56, 1), failed(116, 1)];
        assert_eq!(judge(&silent), [("V16", 116)]);
        let early = [started(0), failed(10, 1), exhausted(26), failed(26, 1)];
        assert_eq!(judge(&early), [("V16", 26)]);
    }

    #[test]
    fn a_stop_or_a_crash_ends_the_judging() {
        let stop = at(105, CompleterEvent::StopRequested { completer: "c".into(), run: 1, bound_ms: 1000 });
        assert_eq!(judge(&[started(0), failed(100, 5), stop, failed(108, 5)]), []);
        let crash = Ev(105_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[started(0), failed(100, 5), crash, failed(108, 5)]), []);
    }

    fn drain(t_ms: u64) -> Ev {
        let e = CompleterEvent::DrainStarted {
            completer: "c".into(),
            run: 1,
            pending: 5,
            producers: 0,
            bound_ms: 1000,
            retry_max_ms: 100,
        };
        at(t_ms, e)
    }

    /// V33: the drain's first write starts at once, and its failures owe their backoff; the
    /// count of failures in a row goes on from before the drain (MC310: back to back).
    #[test]
    fn a_drains_retries_keep_their_backoff() {
        let stop = at(105, CompleterEvent::StopRequested { completer: "c".into(), run: 1, bound_ms: 1000 });
        // Failed at 100 (the first), the stop heard at 105, the drain's write at once and failed
        // (the second: 20–40 ms), retried 30 ms later.
        let on_time = [started(0), failed(100, 5), stop.clone(), drain(105), failed(106, 5), flushed(137, 5)];
        assert_eq!(judge(&on_time), []);
        let storm = [started(0), failed(100, 5), stop.clone(), drain(105), failed(106, 5), failed(108, 5)];
        assert_eq!(judge(&storm), [("V33", 108)]);
        let late = [started(0), failed(100, 5), stop, drain(105), failed(106, 5), flushed(200, 5)];
        assert_eq!(judge(&late), [("V33", 200)]);
        // A batch given up (its room made at the failure) owes nothing: the next write is
        // another batch's first.
        let room = at(106, CompleterEvent::RoomMade { completer: "c".into(), run: 1, n: 5, backlog: 3, room: 13 });
        assert_eq!(judge(&[started(0), drain(100), failed(106, 5), room, failed(107, 3)]), []);
    }
}
