//! **E7**: a dispatch that fails with an error whose [`StoreError::outcome`] is `NotApplied`
//! applied nothing. A user who trusts it treats the job as never added: gives it up, or reads the
//! retry's `Duplicate` as somebody else's job. Judged on the pool scenarios' dispatcher, which
//! retries a failed dispatch of its own job (job keys are unique to a node's dispatcher):
//!
//! - at a retry's `Duplicate`: some earlier call of that job applied, so not all of them may
//!   have said `NotApplied`;
//! - at a worker's start of a job whose dispatcher gave it up: some call applied, so likewise.
//!
//! Round 30's hunt (A #2): a group commit cut at its op timeout was answered `Unavailable`
//! (not applied) instead of `Timeout` (unknown), and nothing read the class of an error.
//!
//! [`StoreError::outcome`]: keel::StoreError::outcome

use std::collections::BTreeMap;

use keel::pool::PoolError;

use super::pool::{Rec, rec};
use crate::check::Violation;
use crate::history::Event;
use crate::world::NodeCtx;

/// Record a failed dispatch call of `job` (its error, and whether the error says it applied nothing).
pub fn failed(ctx: &NodeCtx, job: &str, e: &PoolError) {
    let not_applied = match e {
        PoolError::Store(s) => s.outcome() == keel::Outcome::NotApplied,
        PoolError::InvalidJob { .. } | PoolError::TooManyWaiters => true,
        // A duplicate is the key's own answer; a stop may come after the write went out.
        PoolError::Duplicate { .. } | PoolError::Stopped | PoolError::StartTimeout { .. } => false,
    };
    let duplicate = matches!(e, PoolError::Duplicate { .. });
    ctx.record(Rec::DispatchFailed { job: job.to_owned(), error: e.to_string(), not_applied, duplicate });
}

/// What the calls of one job said so far.
#[derive(Default)]
struct Calls<'a> {
    /// Failed calls that said they applied nothing, and the first of their errors.
    not_applied: u32,
    first: Option<&'a str>,
    /// A call that succeeded or may have applied.
    maybe_applied: bool,
    gave_up: bool,
}

impl Calls<'_> {
    /// Every call so far said it applied nothing (and there was at least one).
    fn all_said_not_applied(&self) -> bool {
        self.not_applied > 0 && !self.maybe_applied
    }
}

/// **P92**: a pool run adds jobs: its dispatchers' calls do not all fail, judged at the run's
/// end. The dispatchers send a job every few hundred milliseconds for the whole run, retrying
/// each failed call up to 20 times; every fault plan leaves the store reachable for most of the
/// run. A pool whose group commit never sends a transaction (hunt 46 A: the sweep's flusher
/// replaced by a no-op survived, MC441) fails every dispatch, adds nothing, and so loses
/// nothing: every rule about jobs is clean, and only the coverage goals of a 100-seed unmutated
/// sweep noticed. The first 1 violation, at the last failed call.
pub fn runs_add_jobs(events: &[Event]) -> Vec<Violation> {
    let mut failed: Option<(u64, &str, usize)> = None; // last failure's µs, first error, calls
    for e in events {
        match rec(e) {
            Some(Rec::JobAdded { .. } | Rec::JobAddedAgain { .. }) => return Vec::new(),
            Some(Rec::DispatchFailed { error, .. }) => {
                let (_, first, n) = failed.unwrap_or((0, error.as_str(), 0));
                failed = Some((e.t_us, first, n + 1));
            }
            _ => {}
        }
    }
    let Some((at, first, n)) = failed else { return Vec::new() };
    vec![Violation::new(
        "P92",
        at,
        format!("no dispatch of the run added a job: all {n} calls failed (the first with: {first})"),
    )]
}

/// E7 over a run's events (see the module's doc).
pub fn check(events: &[Event]) -> Vec<Violation> {
    let mut jobs: BTreeMap<&str, Calls<'_>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let Some(r) = rec(e) else { continue };
        match r {
            Rec::DispatchFailed { job, error, not_applied, duplicate } => {
                let c = jobs.entry(job.as_str()).or_default();
                if *duplicate && c.all_said_not_applied() {
                    v.push(Violation::new(
                        "E7",
                        e.t_us,
                        format!(
                            "{}: a retry of {job} found it added already, but each of its {} earlier calls failed saying it applied nothing (first: {})",
                            e.node,
                            c.not_applied,
                            c.first.unwrap_or("?")
                        ),
                    ));
                }
                if *not_applied {
                    c.not_applied += 1;
                    c.first.get_or_insert(error.as_str());
                } else {
                    c.maybe_applied = true;
                }
            }
            Rec::JobAdded { job, .. } | Rec::JobAddedAgain { job, .. } | Rec::DispatchAgain { job } => {
                jobs.entry(job.as_str()).or_default().maybe_applied = true;
            }
            Rec::DispatchGaveUp { job } => jobs.entry(job.as_str()).or_default().gave_up = true,
            Rec::RunStart { job, attempt, worker } => {
                if let Some(c) = jobs.get_mut(job.as_str())
                    && c.gave_up
                    && c.all_said_not_applied()
                {
                    v.push(Violation::new(
                        "E7",
                        e.t_us,
                        format!(
                            "{worker} started {job} attempt {attempt}, but each of the {} calls that dispatched it failed saying it applied nothing (first: {})",
                            c.not_applied,
                            c.first.unwrap_or("?")
                        ),
                    ));
                    c.maybe_applied = true; // one report per job
                }
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
    use crate::scenario::AppEv;
    use crate::scenario::test_history::at;

    fn app(t_ms: u64, r: Rec) -> Event {
        at(t_ms, Who::Node(0), Ev::App(AppEv::Pool(r)))
    }

    fn failed(t_ms: u64) -> Event {
        let error = "the pool's group commit has stopped".into();
        app(t_ms, Rec::DispatchFailed { job: "j".into(), error, not_applied: true, duplicate: false })
    }

    /// P92: a run whose every dispatch call failed fires once, at its last failure; one job
    /// added, or no call at all, does not.
    #[test]
    fn a_run_that_adds_no_job_fires_p92() {
        let v = runs_add_jobs(&[failed(10), failed(20)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P92", 20_000)]);
        assert!(v[0].detail.contains("all 2 calls") && v[0].detail.contains("group commit"), "{}", v[0].detail);
        let added = app(15, Rec::JobAdded { job: "k".into(), payload: "1".into() });
        assert!(runs_add_jobs(&[failed(10), added, failed(20)]).is_empty());
        assert!(runs_add_jobs(&[]).is_empty());
    }
}
