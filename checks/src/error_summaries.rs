//! E3: a lease owner's store-error summaries count exactly and keep their pace, judged at each
//! error, summary and recovery.
//!
//! Every failed store call of an owner is an event (`acquire_failed`, `renew_failed`,
//! `time_failed`), and the owner summarises them at warn level in the same step, rate-limited
//! (`store_errors`: `count` since the last summary, `total` since the last recovery): the first
//! error after a recovery (or the owner's start) always, then the first error at least its
//! `error_log_interval` (announced by `owner_started` as `error_log_us`; before any announcement,
//! [`keel::lease::DEFAULT_ERROR_LOG_INTERVAL`]) of its clock after the last summary. So, at the
//! instant:
//!
//! - a summary's `count` and `total` are the errors since the last summary and since the last
//!   recovery (a count never reset by a summary makes every line after the first over-count:
//!   round 15 #17, MC125);
//! - a summary within the interval of the last one is a warn line per error, the rate limit gone
//!   (a warn time never recorded: round 15 #18, MC126);
//! - an error the step does not summarise when it had to (the first after a recovery, or one
//!   past the interval) is an outage an operator hears of late or never;
//! - a recovery (`store_recovered`) counts exactly the errors since the last one (E2 judges that
//!   it follows errors at all).
//!
//! The interval is a local wait: judged at the clock rates the history allows, frozen time not
//! counted, a chain whose node's clock jumped excused. An owner that starts or crashes, and a
//! node's crash or restart, start the count over.

use std::collections::BTreeMap;
use std::time::Duration;

use keel::observe::LeaseEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// One owner's count since its last recovery, and its interval.
#[derive(Default)]
struct Owner {
    interval_us: Option<u64>,
    since_recovery: u64,
    since_summary: u64,
    /// The last summary's instant since the last recovery.
    summary_at: Option<u64>,
    /// An error whose step has not summarised it yet.
    open: Option<u64>,
}

/// E3 over keel's lease events: see the module's doc; `clocks` as for
/// [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn lease_error_summaries_keep_count<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let default_us = micros(keel::lease::DEFAULT_ERROR_LOG_INTERVAL);
    let mut owners: BTreeMap<(E::Node, &str, &str), Owner> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            owners.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        use LeaseEvent as L;
        let (lease, owner) = match ev {
            L::StoreErrors { lease, owner, .. }
            | L::StoreRecovered { lease, owner, .. }
            | L::AcquireFailed { lease, owner, .. }
            | L::RenewFailed { lease, owner, .. }
            | L::TimeFailed { lease, owner, .. }
            | L::OwnerStarted { lease, owner, .. }
            | L::Crashed { lease, owner, .. }
            | L::Granted { lease, owner, .. }
            | L::Renewed { lease, owner, .. }
            | L::AcquireRefused { lease, owner, .. }
            | L::Quarantined { lease, owner, .. }
            | L::RenewRefused { lease, owner, .. } => (plain(lease), plain(owner)),
            _ => continue,
        };
        let key = (node.clone(), lease, owner);
        let o = owners.entry(key).or_default();
        let interval_us = o.interval_us.unwrap_or(default_us);
        let who = || format!("{node}: lease {lease} owner {owner}");
        if !matches!(ev, L::StoreErrors { .. })
            && let Some(at) = o.open.take()
        {
            // The error's step ended without a summary: was one due?
            let due = o.summary_at.map(|s| Due {
                after: "",
                latest: s,
                wait_max_us: interval_us,
                earliest: s,
                wait_min_us: 0,
            });
            match due {
                None => verdicts.v.push(Violation::new(
                    "E3",
                    at,
                    format!("{}: the first store error since its last recovery was not summarised", who()),
                )),
                Some(d) => {
                    let holes = verdicts.holes(node).to_vec();
                    if verdicts.pace.judge(&d, at, 0, &holes).late.is_some() {
                        verdicts.overdue("E3", node, &d, at, || {
                            format!(
                                "{}: a store error {} µs after its last summary (at {:.3}s) was not summarised: a summary is due every {interval_us} µs while errors go on",
                                who(),
                                at - d.latest,
                                d.latest as f64 / 1e6
                            )
                        });
                    }
                }
            }
        }
        match ev {
            L::OwnerStarted { error_log_us, .. } => *o = Owner { interval_us: Some(*error_log_us), ..Owner::default() },
            L::Crashed { .. } => *o = Owner { interval_us: o.interval_us, ..Owner::default() },
            L::AcquireFailed { .. } | L::RenewFailed { .. } | L::TimeFailed { .. } => {
                o.since_recovery += 1;
                o.since_summary += 1;
                o.open = Some(t);
            }
            L::StoreErrors { count, total, .. } => {
                if o.open.take().is_none() {
                    verdicts.v.push(Violation::new(
                        "E3",
                        t,
                        format!("{}: a summary with no store error in its step", who()),
                    ));
                }
                if (*count, *total) != (o.since_summary, o.since_recovery) {
                    verdicts.v.push(Violation::new(
                        "E3",
                        t,
                        format!(
                            "{}: summarised {count} errors since its last summary and {total} since its last recovery; there were {} and {}",
                            who(),
                            o.since_summary,
                            o.since_recovery
                        ),
                    ));
                }
                if let Some(s) = o.summary_at {
                    let d = Due { after: "", latest: s, wait_max_us: 0, earliest: s, wait_min_us: interval_us };
                    let holes = verdicts.holes(node).to_vec();
                    if verdicts.pace.judge(&d, t, 0, &holes).early.is_some() {
                        verdicts.overdue("E3", node, &d, t, || {
                            format!(
                                "{}: summarised store errors again {} µs after its last summary (at {:.3}s): at most one summary per {interval_us} µs",
                                who(),
                                t - s,
                                s as f64 / 1e6
                            )
                        });
                    }
                }
                o.since_summary = 0;
                o.summary_at = Some(t);
            }
            L::StoreRecovered { errors, .. } => {
                if *errors != o.since_recovery {
                    verdicts.v.push(Violation::new(
                        "E3",
                        t,
                        format!(
                            "{}: reported a recovery from {errors} store errors; there were {}",
                            who(),
                            o.since_recovery
                        ),
                    ));
                }
                *o = Owner { interval_us: o.interval_us, ..Owner::default() };
            }
            _ => {}
        }
    }
    verdicts.v.truncate(20);
    verdicts.v
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn failed(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::RenewFailed { lease: "L".into(), owner: "a".into(), error: "timeout".into(), took_us: 0 })
    }

    fn summary(t_ms: u64, count: u64, total: u64) -> Ev {
        let (op, error) = ("lease_renew".into(), "timeout".into());
        let (lease, owner) = ("L".into(), "a".into());
        at(t_ms, LeaseEvent::StoreErrors { lease, owner, op, count, total, permanent: false, error })
    }

    fn recovered(t_ms: u64, errors: u64) -> Ev {
        at(t_ms, LeaseEvent::StoreRecovered { lease: "L".into(), owner: "a".into(), errors })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&lease_error_summaries_keep_count(h, crate::steady_clocks(2_000)))
    }

    /// The first error summarised, the next ones counted into the summary 10 s later, a
    /// recovery counting them all: no violation.
    #[test]
    fn summaries_at_the_first_error_then_per_interval_pass() {
        let h = [
            failed(0),
            summary(0, 1, 1),
            failed(4_000),
            failed(8_000),
            failed(12_000),
            summary(12_000, 3, 4),
            failed(13_000),
            recovered(14_000, 5),
            failed(15_000),
            summary(15_000, 1, 1),
        ];
        assert_eq!(judge(&h), []);
    }

    /// A count never reset by a summary (MC125), a summary per error (MC126), an error past the
    /// interval not summarised, and a recovery that miscounts are E3 at the instant.
    #[test]
    fn miscounts_and_broken_pace_fire_e3() {
        let h = [failed(0), summary(0, 1, 1), failed(12_000), summary(12_000, 2, 2)];
        assert_eq!(judge(&h), [("E3", 12_000)]);
        let h = [failed(0), summary(0, 1, 1), failed(1_000), summary(1_000, 1, 2)];
        assert_eq!(judge(&h), [("E3", 1_000)]);
        let h = [failed(0), summary(0, 1, 1), failed(12_000), failed(13_000)];
        assert_eq!(judge(&h), [("E3", 12_000)]);
        assert_eq!(judge(&[failed(0), recovered(1, 1)]), [("E3", 0)]);
        assert_eq!(judge(&[failed(0), summary(0, 1, 1), failed(1), recovered(2, 1)]), [("E3", 2)]);
        // The interval an owner announces is the one judged.
        let started = at(
            0,
            LeaseEvent::OwnerStarted {
                lease: "L".into(),
                owner: "a".into(),
                renew_us: 1,
                poll_us: 1,
                retry_min_us: 1,
                retry_max_us: 1,
                ttl_us: 1,
                drift_margin_us: 0,
                error_log_us: 1_000_000,
                work_restart_min_us: 100_000,
                work_restart_max_us: 10_000_000,
                op_timeout_us: 250_000,
                work_stop_timeout_us: 1_000_000,
                permanent_attempts: 3,
            },
        );
        let h = [started.clone(), failed(0), summary(0, 1, 1), failed(1_500), summary(1_500, 1, 2)];
        assert_eq!(judge(&h), []);
        assert_eq!(judge(&[started, failed(0), summary(0, 1, 1), failed(1_500), failed(1_600)]), [("E3", 1_500)]);
        // An owner that starts again, or a node that crashes, starts the count over.
        let crash = Ev(5_000_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[failed(0), summary(0, 1, 1), crash, failed(6_000), summary(6_000, 1, 1)]), []);
    }
}
