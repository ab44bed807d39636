//! S12 and S13: a lease owner's store attempts come when its timing says, neither later than
//! its waits allow (S12) nor earlier (S13), judged at each attempt.
//!
//! Every outcome of an attempt (`Granted`, `AcquireRefused`, `Quarantined`, `AcquireFailed`,
//! `Renewed`, `RenewRefused`, `RenewFailed`) says how long the attempt took on the owner's clock,
//! so its start is known to within the clock's rate. The owner announces its timing when it starts
//! (`OwnerStarted`). From each outcome, the next attempt is due within a wait its timing bounds:
//!
//! | outcome | the next attempt starts at the latest | why |
//! |---|---|---|
//! | refused, quarantined | `poll` after the outcome | a held lease is polled; a release is seen within a poll |
//! | granted, renewed | `renew` after the attempt's send | renewal keeps the grant alive |
//! | a renewal failed, the n-th store error in a row | `retry_min`·2^(n−1), at most `retry_max`, after it | retries race the grant's deadline |
//! | an acquisition failed, the n-th store error in a row | the same backoff, at most `poll`; a whole `poll` past a row of permanent errors | a blip must not slow a takeover by a poll |
//! | a read of the store's time at start failed, the n-th error in a row | the same backoff, at most `poll`; a whole `poll` past a row of permanent errors | a blip must not slow a start by a poll |
//!
//! A streak of errors is counted since the owner's last answer that was not an error (a refusal,
//! a grant, a renewal); keel may count fewer (a successful read of the store's time resets it and
//! reports nothing), which only lengthens the wait allowed. A step-down or a stop (`Lost`,
//! `Stopping`, `Released`, `Crashed`), a failed read of the store's time at start, and the node's
//! crash or restart end the chain: the next attempt is not judged against a wait. An attempt that
//! starts later than allowed, by more than the slack of running time (frozen time not counted,
//! the wait and the attempt's own duration stretched by the slowest clock allowed), breaks S12:
//! a contender that waits out the holder's whole TTL sees a release a TTL late (MC63), a renewal
//! that keeps the error count backs off longer than its streak and spends the deadline (MC64), a
//! renewal period counted from the reply slips by the round trip (MC65).
//!
//! S13 is the floor of the same waits: keel jitters a refusal's wait (min(poll, max(remaining,
//! retry_min))) and a backoff down to half, never below, and renews a period after the send. An
//! attempt that starts before the floor, by more than the slack, is a retry storm: a store
//! outage answered by every owner retrying at network speed (MC66). The floor after an error
//! needs keel's exact count of errors in a row, so after a failed read of the store's time it is
//! not judged until the next answer that is not an error.

use std::collections::BTreeMap;

use keel::lease::LostReason;
use keel::observe::LeaseEvent;

use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// The timing an owner announced.
#[derive(Clone, Copy, Debug)]
struct Timing {
    renew_us: u64,
    poll_us: u64,
    retry_min_us: u64,
    retry_max_us: u64,
}

/// Most errors in a row whose backoff doubles (keel's `MAX_BACKOFF_EXPONENT`); beyond it the
/// wait is `retry_max` anyway.
const MAX_DOUBLINGS: u32 = 16;

impl Timing {
    /// The backoff after the `n`-th store error in a row (keel jitters it down to half).
    fn retry_us(&self, n: u32) -> u64 {
        let exp = n.saturating_sub(1).min(MAX_DOUBLINGS);
        self.retry_min_us.saturating_mul(1u64 << exp).min(self.retry_max_us)
    }
}

/// How the cadence rules (S12/S13, V16, P22, P23, P24, P26, R11, R12) read a history's clocks: a
/// local wait of d takes from d / `rates.1` (the fastest in-bound clock) to d / `rates.0` (the
/// slowest) of the history's time; `slacks.0` of running time is allowed past each deadline,
/// `slacks.1` before each floor; `frozen` gives a node's frozen spans (not counted); `jumped(node,
/// from, to)` excuses a chain whose node's clock jumped meanwhile.
pub struct Clocks<F, J> {
    /// (slowest, fastest) rate of a node's clock the history allows.
    pub rates: (f64, f64),
    /// (late, early) slack of running time, in µs.
    pub slacks: (u64, u64),
    /// A node's frozen spans.
    pub frozen: F,
    /// Whether a node's clock jumped between two instants.
    pub jumped: J,
}

impl<F, J> Clocks<F, J> {
    /// The longest a node's clock can measure over the history's `from..to`: at the fastest
    /// in-bound rate, with the early slack. `None` when its clock jumped meanwhile (a jump may
    /// measure anything).
    pub fn longest_local<N>(&self, node: &N, from: u64, to: u64) -> Option<u64>
    where
        J: Fn(&N, u64, u64) -> bool,
    {
        let running = to.saturating_sub(from);
        (!(self.jumped)(node, from, to)).then(|| (running as f64 * self.rates.1) as u64 + self.slacks.1)
    }
}

/// [`Clocks`] that are plain functions: [`steady_clocks`], and any of its fields set to another.
pub type SteadyClocks<N> = Clocks<fn(&N) -> Vec<Span>, fn(&N, u64, u64) -> bool>;

/// Real-time clocks, never frozen, never jumping, with `slack_us` either side: what a history
/// from one machine's processes (the chaos lane), or a rule's unit test, is judged by.
pub fn steady_clocks<N>(slack_us: u64) -> SteadyClocks<N> {
    Clocks { rates: (1.0, 1.0), slacks: (slack_us, slack_us), frozen: |_| Vec::new(), jumped: |_, _, _| false }
}

/// What an outcome allows the next attempt: no later than `wait_max_us` after `latest` (S12),
/// no earlier than `wait_min_us` after `earliest` (S13), both local waits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Due {
    pub after: &'static str,
    pub latest: u64,
    pub wait_max_us: u64,
    pub earliest: u64,
    pub wait_min_us: u64,
}

/// How a node's local waits and durations map onto the history's time: a local wait of d takes
/// from d / `fastest` to d / `slowest`; `late_slack_us` of running time is allowed past every
/// deadline, `early_slack_us` before every floor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    pub slowest: f64,
    pub fastest: f64,
    pub late_slack_us: u64,
    pub early_slack_us: u64,
}

/// An attempt judged against its [`Due`]: how far it started past its deadline (`late`, with its
/// earliest possible start), or before its floor (`early`, with its latest possible start).
pub(crate) struct Judged {
    pub late: Option<(u64, u64)>,
    pub early: Option<(u64, u64)>,
}

impl Pace {
    /// The longest a local `us` can take.
    pub fn stretch(&self, us: u64) -> u64 {
        (us as f64 / self.slowest.clamp(0.01, 1.0)) as u64
    }

    /// The shortest a local `us` can take.
    pub fn shrink(&self, us: u64) -> u64 {
        (us as f64 / self.fastest.max(1.0)) as u64
    }

    /// The latest an attempt due by `d` may start, slack included; `holes` are its node's frozen
    /// spans (frozen time does not count towards a deadline).
    pub fn deadline(&self, d: &Due, holes: &[Span]) -> u64 {
        reach(d.latest, self.stretch(d.wait_max_us).saturating_add(self.late_slack_us), holes)
    }

    /// The attempt that ended at `t` after `took_us` of local time, against `d`; `holes` as for
    /// [`deadline`](Self::deadline).
    pub fn judge(&self, d: &Due, t: u64, took_us: u64, holes: &[Span]) -> Judged {
        let start = t.saturating_sub(self.stretch(took_us));
        let sent = t.saturating_sub(self.shrink(took_us));
        let due = self.deadline(d, holes);
        let floor = d.earliest.saturating_add(self.shrink(d.wait_min_us)).saturating_sub(self.early_slack_us);
        Judged {
            late: (start > due).then(|| (start, start - due)),
            early: (sent < floor).then(|| (sent, floor - sent)),
        }
    }
}

/// One cadence rule's judging: its [`Pace`], each node's frozen spans (read once), the clock
/// jumps that excuse a chain, and the first 20 violations. Every rule of this family (S12/S13,
/// V16, P23, P24, R11) judges an attempt the same way and differs only in its chains.
pub(crate) struct Verdicts<N, F, J> {
    pub pace: Pace,
    frozen: F,
    jumped: J,
    holes: BTreeMap<N, Vec<Span>>,
    pub v: Vec<Violation>,
}

impl<N: Ord + Clone, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool> Verdicts<N, F, J> {
    /// The judging of `clocks`.
    pub fn new(clocks: Clocks<F, J>) -> Self {
        let Clocks { rates: (slowest, fastest), slacks: (late_slack_us, early_slack_us), frozen, jumped } = clocks;
        let pace = Pace { slowest, fastest, late_slack_us, early_slack_us };
        Verdicts { pace, frozen, jumped, holes: BTreeMap::new(), v: Vec::new() }
    }

    /// `node`'s frozen spans.
    pub fn holes(&mut self, node: &N) -> &[Span] {
        self.holes.entry(node.clone()).or_insert_with(|| (self.frozen)(node))
    }

    /// The attempt that ended at `t` on `node` after `took_us`, against `d`: each side it breaks
    /// (late as `ids.0`; early as `ids.1`, unless `late_only`) is a violation at `t` worded by
    /// `say(at, by, how)` (its possible start, how far off, "late" or "early"), unless the node's
    /// clock jumped since `d.earliest`.
    pub fn judge(
        &mut self,
        ids: (&'static str, &'static str),
        node: &N,
        (d, t, took_us): (&Due, u64, u64),
        late_only: bool,
        say: impl Fn(u64, u64, &'static str) -> String,
    ) {
        let pace = self.pace;
        let j = pace.judge(d, t, took_us, self.holes(node));
        let early = j.early.filter(|_| !late_only);
        for (id, off, how) in [(ids.0, j.late, "late"), (ids.1, early, "early")] {
            let Some((at, by)) = off else { continue };
            if !(self.jumped)(node, d.earliest, t) && self.v.len() < 20 {
                self.v.push(Violation::new(id, t, say(at, by, how)));
            }
        }
    }
}

impl<N: Ord + Clone, F: Fn(&N) -> Vec<Span>, J: Fn(&N, u64, u64) -> bool> Verdicts<N, F, J> {
    /// An attempt due by `d` on `node` that none started by its deadline `at`: a violation `id`
    /// there worded by `say()`, unless the node's clock jumped since `d.earliest`.
    pub fn overdue(&mut self, id: &'static str, node: &N, d: &Due, at: u64, say: impl Fn() -> String) {
        if !(self.jumped)(node, d.earliest, at) && self.v.len() < 20 {
            self.v.push(Violation::new(id, at, say()));
        }
    }
}

/// One owner's chain: its timing, its errors in a row (`exact` while keel's count is known to be
/// the same: a successful read of the store's time resets keel's without an event), and what
/// the last outcome allows the next attempt.
#[derive(Default)]
struct Chain {
    timing: Option<Timing>,
    errors: u32,
    exact: bool,
    due: Option<Due>,
    /// Permanent store errors in a row (None while unknown), and how many make keel's row
    /// (`permanent_attempts`): past it, each failed acquisition waits a whole poll.
    permanent: Option<u32>,
    row: u32,
}

impl Chain {
    /// Count a store error into the row of permanent ones: whether the row is now complete.
    fn count_error(&mut self, error: &str) -> bool {
        self.permanent = if crate::is_permanent(error) { self.permanent.map(|n| n.saturating_add(1)) } else { Some(0) };
        self.permanent.is_some_and(|n| self.row > 0 && n >= self.row)
    }
}

/// What a [`Due`] set by a failed read of the store's time says it followed.
const AFTER_TIME_FAILED: &str = "a failed read of the store's time";

/// An attempt of `lease`'s `owner` that started `by` µs `how` ("late" or "early") at `at`,
/// against `d`, in words.
fn attempt_off(
    node: &impl std::fmt::Display,
    (lease, owner): (&str, &str),
    d: &Due,
    (at, by, how): (u64, u64, &str),
) -> String {
    let (what, from, wait_us) = if how == "late" {
        ("was due within", d.latest, d.wait_max_us)
    } else {
        ("was to wait at least", d.earliest, d.wait_min_us)
    };
    format!(
        "{node}: lease {lease} owner {owner}: after {} at {:.3}s its next attempt {what} {wait_us} µs, and started at {:.3}s, {by} µs {how}",
        d.after,
        from as f64 / 1e6,
        at as f64 / 1e6,
    )
}

/// S12 and S13 over keel's lease events: see the module's doc. `slowest` and `fastest` are the slowest
/// and fastest rates of a node's clock the history allows (a local wait of d takes from
/// d / fastest to d / slowest of simulated time); `late_slack_us` of running time is allowed
/// past every deadline, `early_slack_us` before every floor; `frozen` gives a node's frozen spans; `jumped(node, from,
/// to)` excuses a chain whose node's clock jumped meanwhile. The first 20 violations.
pub fn lease_attempts_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let pace = verdicts.pace;
    let mut chains: BTreeMap<(E::Node, &str, &str), Chain> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            chains.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        use LeaseEvent as L;
        let (lease, owner, took_us) = match ev {
            L::OwnerStarted {
                lease, owner, renew_us, poll_us, retry_min_us, retry_max_us, permanent_attempts, ..
            } => {
                let timing = Timing {
                    renew_us: *renew_us,
                    poll_us: *poll_us,
                    retry_min_us: *retry_min_us,
                    retry_max_us: *retry_max_us,
                };
                chains.insert(
                    (node.clone(), plain(lease), plain(owner)),
                    Chain {
                        timing: Some(timing),
                        exact: true,
                        permanent: Some(0),
                        row: *permanent_attempts,
                        ..Chain::default()
                    },
                );
                continue;
            }
            // A step-down: the owner releases what it may still hold and competes again at once,
            // or (its work ended: it hands the lease over) one poll later.
            L::Lost { lease, owner, reason, .. } => {
                if let Some(c) = chains.get_mut(&(node.clone(), plain(lease), plain(owner)))
                    && let Some(timing) = c.timing
                {
                    let wait_us = if *reason == LostReason::WorkEnded { timing.poll_us } else { 0 };
                    c.due = Some(Due {
                        after: "its step-down and the releases after it",
                        latest: t,
                        wait_max_us: wait_us,
                        earliest: t,
                        wait_min_us: wait_us,
                    });
                }
                continue;
            }
            // A step-down judges an attempt that fell due before it and never started: a renewal
            // skipped near the deadline lets the grant lapse where a retry would have kept it
            // (blind-spot hunt, round 18, A #39).
            L::SteppingDown { lease, owner, .. } => {
                if let Some(c) = chains.get_mut(&(node.clone(), plain(lease), plain(owner)))
                    && let Some(d) = c.due.take()
                    && pace.deadline(&d, verdicts.holes(node)) < t
                {
                    verdicts.overdue("S12", node, &d, t, || {
                        format!(
                            "{node}: lease {lease} owner {owner}: after {} at {:.3}s its next attempt was due within {} µs; none started before its step-down at {:.3}s",
                            d.after,
                            d.latest as f64 / 1e6,
                            d.wait_max_us,
                            t as f64 / 1e6
                        )
                    });
                }
                continue;
            }
            // The releases after a step-down come before the next attempt.
            L::ReleaseEnded { lease, owner, .. } => {
                if let Some(d) =
                    chains.get_mut(&(node.clone(), plain(lease), plain(owner))).and_then(|c| c.due.as_mut())
                    && d.after.starts_with("its step-down")
                {
                    d.latest = t;
                }
                continue;
            }
            L::Stopping { lease, owner } | L::Released { lease, owner } | L::Crashed { lease, owner, .. } => {
                if let Some(c) = chains.get_mut(&(node.clone(), plain(lease), plain(owner))) {
                    c.due = None;
                }
                continue;
            }
            // A read of the store's time at start. After a failed one keel waits its backoff
            // (its count of errors is at least 1: at least `retry_min`/2, at most a poll) before
            // reading again (blind-spot hunt, round 34, A #5: the wait counted from the read's
            // send, so a read that timed out was tried again at once).
            L::TimeRead { lease, owner, took_us } | L::TimeFailed { lease, owner, took_us, .. } => {
                let Some(c) = chains.get_mut(&(node.clone(), plain(lease), plain(owner))) else { continue };
                if let Some(d) = c.due.take().filter(|d| d.after == AFTER_TIME_FAILED) {
                    verdicts.judge(("S12", "S13"), node, (&d, t, *took_us), false, |at, by, how| {
                        attempt_off(node, (plain(lease), plain(owner)), &d, (at, by, how))
                    });
                }
                match ev {
                    // keel's count of errors starts over, and the first acquisition goes at once.
                    L::TimeRead { .. } => {
                        c.errors = 0;
                        c.exact = true;
                        c.permanent = Some(0);
                        let after = "its read of the store's time";
                        c.due = Some(Due { after, latest: t, wait_max_us: 0, earliest: t, wait_min_us: 0 });
                    }
                    // The read that succeeds next reports nothing and resets keel's count: the
                    // acquisition after it is not judged against this wait, and the count is
                    // only an upper bound until the next answer that is not an error.
                    L::TimeFailed { error, .. } => {
                        c.errors = c.errors.saturating_add(1);
                        c.exact = false;
                        let past_row = c.count_error(plain(error));
                        // keel backs off by its count of errors, at most a poll, and waits a
                        // whole poll past a row of permanent errors (round 36 A #34: a read
                        // retried a whole poll after one blip went unseen); `c.errors` is at
                        // least keel's count, so its backoff is at least keel's.
                        let errors = c.errors;
                        c.due = c.timing.map(|timing| Due {
                            after: AFTER_TIME_FAILED,
                            latest: t,
                            wait_max_us: if past_row {
                                timing.poll_us
                            } else {
                                timing.retry_us(errors).min(timing.poll_us)
                            },
                            earliest: t,
                            wait_min_us: (timing.retry_min_us / 2).min(timing.poll_us),
                        });
                    }
                    _ => {}
                }
                continue;
            }
            L::Granted { lease, owner, took_us, .. }
            | L::AcquireRefused { lease, owner, took_us, .. }
            | L::Quarantined { lease, owner, took_us, .. }
            | L::AcquireFailed { lease, owner, took_us, .. }
            | L::Renewed { lease, owner, took_us, .. }
            | L::RenewRefused { lease, owner, took_us }
            | L::RenewFailed { lease, owner, took_us, .. } => (plain(lease), plain(owner), *took_us),
            _ => continue,
        };
        let Some(c) = chains.get_mut(&(node.clone(), lease, owner)) else { continue };
        let Some(timing) = c.timing else { continue };
        // The latest instant the attempt can have started (its local duration at the fastest
        // rate): a renewal period counts from it.
        let sent = t.saturating_sub(pace.shrink(took_us));
        // An acquisition never follows a failed time read without a successful one (reported)
        // between: a history that has one is not judged against that read's wait.
        if let Some(d) = c.due.filter(|d| d.after != AFTER_TIME_FAILED) {
            verdicts.judge(("S12", "S13"), node, (&d, t, took_us), false, |at, by, how| {
                attempt_off(node, (lease, owner), &d, (at, by, how))
            });
        }
        let first = t.saturating_sub(pace.stretch(took_us)); // the earliest send of this attempt
        let at_outcome =
            |after, wait_max_us, wait_min_us| Due { after, latest: t, wait_max_us, earliest: t, wait_min_us };
        c.due = match ev {
            L::AcquireRefused { remaining_ms, .. } | L::Quarantined { remaining_ms, .. } => {
                (c.errors, c.exact, c.permanent) = (0, true, Some(0));
                // keel waits min(poll, max(remaining, retry_min)), a refusal's jittered down to
                // half, a quarantine's exactly (since round 18: a wait of a whole poll while the
                // lease or its quarantine frees sooner was not seen, A #1).
                let until_free = remaining_ms.saturating_mul(1000).max(timing.retry_min_us).min(timing.poll_us);
                match ev {
                    L::Quarantined { .. } => Some(at_outcome("a quarantine refusal", until_free, until_free)),
                    _ => Some(at_outcome("a refusal", until_free, until_free / 2)),
                }
            }
            // Past a row of permanent errors keel waits a whole poll between tries (its
            // `Failed` says an operator must act; round 25 B #2: a row that went on at the
            // backoff's pace hammered a store that had denied it for good).
            L::AcquireFailed { error, .. } => {
                c.errors = c.errors.saturating_add(1);
                if c.count_error(plain(error)) {
                    Some(at_outcome(
                        "a failed acquisition past a row of permanent errors",
                        timing.poll_us,
                        timing.poll_us,
                    ))
                } else {
                    // keel backs off as after a failed renewal, never past a poll (round 36 A: an
                    // acquisition retried a whole poll after one timeout was judged only by the
                    // poll, so a takeover slowed by every blip went unseen). `c.errors` is at
                    // least keel's count (a read of the store's time may reset keel's alone),
                    // and a larger count only allows a longer wait.
                    let floor = if c.exact { (timing.retry_us(c.errors) / 2).min(timing.poll_us) } else { 0 };
                    Some(at_outcome("a failed acquisition", timing.retry_us(c.errors).min(timing.poll_us), floor))
                }
            }
            // keel counts the renewal period from the send: the store extended the grant after it.
            L::Granted { .. } | L::Renewed { .. } => {
                (c.errors, c.exact, c.permanent) = (0, true, Some(0));
                let after = if matches!(ev, L::Granted { .. }) {
                    "the send of a granted acquisition"
                } else {
                    "the send of a renewal"
                };
                Some(Due {
                    after,
                    latest: sent,
                    wait_max_us: timing.renew_us,
                    earliest: first,
                    wait_min_us: timing.renew_us,
                })
            }
            // A renewal races its grant's deadline: it backs off, permanent errors or not (the
            // row still counts them).
            L::RenewFailed { error, .. } => {
                c.errors = c.errors.saturating_add(1);
                c.count_error(plain(error));
                let floor = if c.exact { timing.retry_us(c.errors) / 2 } else { 0 };
                Some(at_outcome("a failed renewal", timing.retry_us(c.errors), floor))
            }
            L::RenewRefused { .. } => {
                // A refused renewal steps down (no wait to judge), and ends keel's row of errors:
                // the store answered.
                (c.errors, c.exact, c.permanent) = (0, true, Some(0));
                None
            }
            _ => None,
        };
    }
    verdicts.v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    fn fact(t_ms: u64, f: Fact) -> Ev {
        Ev(t_ms * 1000, "n1", None, Some(f))
    }

    /// A read of the store's time by owner `a` of `l` that ended at `t_ms` after 1 ms, `ok` or
    /// failed.
    fn time(t_ms: u64, ok: bool) -> Ev {
        let (lease, owner, took_us) = ("l".into(), "a".into(), 1_000);
        if ok {
            at(t_ms, LeaseEvent::TimeRead { lease, owner, took_us })
        } else {
            at(t_ms, LeaseEvent::TimeFailed { lease, owner, error: "x".into(), took_us })
        }
    }

    fn started(t_ms: u64) -> Ev {
        at(
            t_ms,
            LeaseEvent::OwnerStarted {
                lease: "l".into(),
                owner: "a".into(),
                renew_us: 333_000,
                poll_us: 333_000,
                retry_min_us: 20_000,
                retry_max_us: 83_000,
                ttl_us: 1_000_000,
                drift_margin_us: 90_000,
                error_log_us: 10_000_000,
                work_restart_min_us: 100_000,
                work_restart_max_us: 10_000_000,
                op_timeout_us: 250_000,
                work_stop_timeout_us: 1_000_000,
                permanent_attempts: 3,
            },
        )
    }

    fn refused(t_ms: u64, took_ms: u64) -> Ev {
        at(
            t_ms,
            LeaseEvent::AcquireRefused {
                lease: "l".into(),
                owner: "a".into(),
                remaining_ms: 900,
                took_us: took_ms * 1000,
            },
        )
    }

    fn renewed(t_ms: u64, took_ms: u64) -> Ev {
        let (lease, owner, took_us) = ("l".into(), "a".into(), took_ms * 1000);
        at(t_ms, LeaseEvent::Renewed { lease, owner, fence: 1, took_us, belief_us: 900_000 })
    }

    fn renew_failed(t_ms: u64, took_ms: u64) -> Ev {
        at(
            t_ms,
            LeaseEvent::RenewFailed {
                lease: "l".into(),
                owner: "a".into(),
                error: "timeout".into(),
                took_us: took_ms * 1000,
            },
        )
    }

    fn judge(h: &[Ev]) -> Vec<Violation> {
        lease_attempts_on_time(h, crate::steady_clocks(2_000))
    }

    fn acquire_denied(t_ms: u64, error: &'static str) -> Ev {
        let (lease, owner, error) = ("l".into(), "a".into(), error.into());
        at(t_ms, LeaseEvent::AcquireFailed { lease, owner, error, took_us: 5_000 })
    }

    /// Past a row of `permanent_attempts` permanent errors, an acquisition waits a whole poll:
    /// one at the backoff's pace is S13 (round 25 B #2); a transient error breaks the row.
    #[test]
    fn past_a_row_of_permanent_errors_an_acquisition_waits_a_poll() {
        let denied = "NOPERM this user has no permissions";
        let row = |next_ms: u64| {
            judge(&[
                started(0),
                acquire_denied(10, denied),
                acquire_denied(35, denied),
                acquire_denied(80, denied),
                acquire_denied(next_ms, denied),
            ])
        };
        assert!(row(80 + 333 + 5).is_empty(), "{:?}", row(80 + 333 + 5));
        let v = row(80 + 160);
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["S13"], "{v:?}");
        assert!(v[0].detail.contains("past a row of permanent errors"), "{}", v[0].detail);
        // A transient error in the row: the backoff's pace is right.
        let broken = [
            started(0),
            acquire_denied(10, denied),
            acquire_denied(35, "timed out"),
            acquire_denied(80, denied),
            acquire_denied(165, denied),
        ];
        assert!(judge(&broken).is_empty(), "{:?}", judge(&broken));
    }

    /// A refusal allows a poll: the next attempt started 333 ms after it is on time, one started
    /// 500 ms after (MC63 waits out the holder's TTL) is late, judged at that attempt's outcome.
    #[test]
    fn a_refusal_is_polled_again_within_a_poll() {
        assert!(judge(&[started(0), refused(10, 5), refused(348, 5)]).is_empty());
        let v = judge(&[started(0), refused(10, 5), refused(515, 5)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("S12", 515_000));
        assert!(v[0].detail.contains("after a refusal"), "{}", v[0].detail);
        // The slowest clock allowed stretches the wait: at rate 0.6 the 500 ms wait is allowed.
        let h = [started(0), refused(10, 5), refused(515, 5)];
        assert!(lease_attempts_on_time(&h, Clocks { rates: (0.6, 1.0), ..crate::steady_clocks(2_000) }).is_empty());
        // Frozen time is not counted, and a jump of the node's clock excuses the chain.
        let mut frozen = crate::steady_clocks(2_000);
        frozen.frozen = |_| vec![Span { start: 100_000, end: 400_000 }];
        assert!(lease_attempts_on_time(&h, frozen).is_empty());
        assert!(
            lease_attempts_on_time(&h, {
                let mut jumping = crate::steady_clocks(2_000);
                jumping.jumped = |_, _, _| true;
                jumping
            })
            .is_empty()
        );
    }

    /// A renewal ends a streak of errors: the first failure after it allows `retry_min` (20 ms),
    /// not the streak's next backoff (MC64: 80 ms after three failures).
    #[test]
    fn a_renewal_starts_the_error_streak_over() {
        let streak = [started(0), renewed(10, 5), renew_failed(343, 5), renew_failed(365, 5), renew_failed(405, 5)];
        // The third failure in a row allows 80 ms: an attempt 75 ms after it is on time.
        let mut h = streak.to_vec();
        h.push(renewed(485, 5));
        assert!(judge(&h).is_empty(), "{:?}", judge(&h));
        // After the renewal, the first failure allows 20 ms: an attempt 60 ms after it is late.
        h.extend([renew_failed(820, 5), renewed(885, 5)]);
        let v = judge(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("S12", 885_000));
        assert!(v[0].detail.contains("after a failed renewal"), "{}", v[0].detail);
    }

    fn acquire_failed(t_ms: u64, took_ms: u64) -> Ev {
        at(
            t_ms,
            LeaseEvent::AcquireFailed {
                lease: "l".into(),
                owner: "a".into(),
                error: "unavailable".into(),
                took_us: took_ms * 1000,
            },
        )
    }

    /// S12 after a failed acquisition: the next attempt within the streak's backoff (20 ms for
    /// the first error, 40 ms for the second), never more than a poll; a refusal ends the streak.
    /// Retried a whole poll later, as after a refusal (MC300), or with the count of errors
    /// kept across a refusal (MC301), the attempt is late (round 36 A #3, #4).
    #[test]
    fn an_acquisition_retried_past_its_backoff_fires_s12() {
        assert!(judge(&[started(0), acquire_failed(10, 5), acquire_failed(34, 5), acquire_failed(78, 5)]).is_empty());
        let v = judge(&[started(0), acquire_failed(10, 5), acquire_failed(340, 5)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 340_000)], "{v:?}");
        // Two errors, a refusal, then one error: its retry is due within 20 ms, not 80.
        let h = [started(0), acquire_failed(10, 5), acquire_failed(34, 5), refused(60, 5)];
        let mut late = h.to_vec();
        late.extend([acquire_failed(390, 5), acquire_failed(450, 5)]);
        let v = judge(&late);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 450_000)], "{v:?}");
        let mut on_time = h.to_vec();
        on_time.extend([acquire_failed(390, 5), acquire_failed(410, 5)]);
        assert!(judge(&on_time).is_empty());
        // A failed read of the store's time at start: the next read within the backoff too
        // (MC304 reads again a whole poll later; round 36 A #34).
        assert!(judge(&[started(0), time(5, false), time(25, true)]).is_empty());
        let v = judge(&[started(0), time(5, false), time(340, true)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 340_000)], "{v:?}");
        // Past a row of permanent errors keel reads again a whole poll later, as it acquires.
        let denied = |t_ms: u64| {
            let (lease, owner, error) = ("l".into(), "a".into(), "NOPERM this user has no permissions".into());
            at(t_ms, LeaseEvent::TimeFailed { lease, owner, error, took_us: 1_000 })
        };
        assert!(judge(&[started(0), denied(5), denied(25), denied(60), time(393, true)]).is_empty());
    }

    /// S13: no attempt comes before the wait's floor. A refusal of a lease with 900 ms left
    /// waits at least half a poll; a failed acquisition half its streak's backoff (10 ms for the
    /// first); a renewal a period after the last one's send. Retried at once (a retry loop
    /// without its wait), each is early, judged at the early attempt's outcome.
    #[test]
    fn an_attempt_before_its_wait_s_floor_fires_s13() {
        assert!(judge(&[started(0), refused(10, 5), refused(200, 5)]).is_empty());
        let v = judge(&[started(0), refused(10, 5), refused(20, 5)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S13", 20_000)], "{v:?}");
        assert!(judge(&[started(0), acquire_failed(10, 5), acquire_failed(25, 5)]).is_empty());
        let v = judge(&[started(0), acquire_failed(10, 5), acquire_failed(12, 1)]);
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["S13"], "{v:?}");
        let v = judge(&[started(0), renewed(10, 5), renewed(20, 5)]);
        assert_eq!(v.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["S13"], "{v:?}");
        // After a failed read of the store's time, keel's count may have started over unseen:
        // a failed acquisition's floor is not judged until the next answer that is not an error.
        let time_failed =
            at(5, LeaseEvent::TimeFailed { lease: "l".into(), owner: "a".into(), error: "x".into(), took_us: 1_000 });
        assert!(judge(&[started(0), time_failed.clone(), acquire_failed(10, 5), acquire_failed(12, 1)]).is_empty());
        // The next read of the store's time waits at least half the first backoff (10 ms here):
        // one sent at once is early (round 34 A #5: the wait counted from the failed read's send).
        assert!(judge(&[started(0), time_failed.clone(), time(17, false), time(40, true)]).is_empty());
        let v = judge(&[started(0), time_failed, time(7, false), time(9, true)]);
        assert_eq!(
            v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(),
            [("S13", 7_000), ("S13", 9_000)],
            "{v:?}"
        );
        assert!(v[0].detail.contains("after a failed read of the store's time"), "{}", v[0].detail);
    }

    /// A renewal is due `renew` after the last one; a step-down, a stop, a crash or a failed read
    /// of the store's time at start ends the chain, and an owner that never announced its timing
    /// is not judged.
    #[test]
    fn chains_end_at_step_downs_stops_and_crashes() {
        let late = judge(&[started(0), renewed(10, 5), renewed(400, 5)]);
        assert_eq!(late.len(), 1, "{late:?}");
        // Counted from the send: after a renewal that took 20 ms, the next one a period after its
        // reply is late by the 20 ms (16 ms of simulated time if the clock may run at 1.25).
        assert!(judge(&[started(0), renewed(100, 20), renewed(417, 2)]).is_empty());
        let late = judge(&[started(0), renewed(100, 20), renewed(435, 2)]);
        assert_eq!(late.len(), 1, "{late:?}");
        let h = [started(0), renewed(100, 20), renewed(435, 2)];
        assert!(lease_attempts_on_time(&h, Clocks { rates: (1.0, 1.25), ..crate::steady_clocks(2_000) }).len() == 1);
        let h = [started(0), renewed(100, 20), renewed(421, 2)];
        assert!(lease_attempts_on_time(&h, Clocks { rates: (1.0, 1.25), ..crate::steady_clocks(2_000) }).is_empty());
        let lost = at(
            200,
            LeaseEvent::Lost {
                lease: "l".into(),
                owner: "a".into(),
                fence: 1,
                reason: keel::lease::LostReason::Deadline,
            },
        );
        // A step-down at its deadline competes again at once (after its releases): an attempt a
        // TTL later is late (blind-spot hunt, round 18, A #25), one at once is not.
        assert_eq!(judge(&[started(0), renewed(10, 5), lost.clone(), refused(900, 5)]).len(), 1);
        assert!(judge(&[started(0), renewed(10, 5), lost.clone(), refused(205, 4)]).is_empty());
        let released = at(
            600,
            LeaseEvent::ReleaseEnded {
                lease: "l".into(),
                owner: "a".into(),
                token: "t".into(),
                released: false,
                took_us: 1000,
                error: None,
            },
        );
        assert!(judge(&[started(0), renewed(10, 5), lost, released, refused(605, 4)]).is_empty());
        let stopping = at(200, LeaseEvent::Stopping { lease: "l".into(), owner: "a".into() });
        assert!(judge(&[started(0), refused(10, 5), stopping, refused(900, 5)]).is_empty());
        assert!(judge(&[started(0), refused(10, 5), fact(200, Fact::NodeCrash), refused(900, 5)]).is_empty());
        assert!(judge(&[refused(10, 5), refused(900, 5)]).is_empty());
    }

    /// The longest a node's clock measures over `from..to`: the running time at the fastest
    /// in-bound rate, plus the early slack; nothing when its clock jumped meanwhile.
    #[test]
    fn the_longest_local_measure_is_the_fastest_rate_plus_the_early_slack() {
        let clocks: SteadyClocks<&str> =
            Clocks { rates: (0.8, 1.25), slacks: (7_000, 2_000), ..crate::steady_clocks(0) };
        assert_eq!(clocks.longest_local(&"n1", 100_000, 300_000), Some(252_000));
        assert_eq!(clocks.longest_local(&"n1", 300_000, 100_000), Some(2_000), "no running time");
        let jumping: SteadyClocks<&str> = Clocks { jumped: |_, _, _| true, ..clocks };
        assert_eq!(jumping.longest_local(&"n1", 100_000, 300_000), None);
    }

    /// A violation says which wait the attempt broke, from when, where it started and by how
    /// much: a late one the wait's ceiling, an early one its floor.
    #[test]
    fn a_violation_names_its_wait_and_how_far_off_the_attempt_was() {
        // After a refusal at 10 ms: due within a poll (333 ms; deadline 345 ms with the slack),
        // started at 510 ms (the outcome at 515 ms less 5 ms): 165 ms late.
        let v = judge(&[started(0), refused(10, 5), refused(515, 5)]);
        assert_eq!(v.len(), 1, "{v:?}");
        let d = &v[0].detail;
        assert!(d.contains("after a refusal at 0.010s"), "{d}");
        assert!(d.contains("its next attempt was due within 333000 µs"), "{d}");
        assert!(d.contains("started at 0.510s, 165000 µs late"), "{d}");
        // At least half of it (166.5 ms, floor 174.5 ms with the slack), sent at 15 ms: 159.5 ms early.
        let v = judge(&[started(0), refused(10, 5), refused(20, 5)]);
        assert_eq!(v.len(), 1, "{v:?}");
        let d = &v[0].detail;
        assert!(d.contains("after a refusal at 0.010s"), "{d}");
        assert!(d.contains("its next attempt was to wait at least 166500 µs"), "{d}");
        assert!(d.contains("started at 0.015s, 159500 µs early"), "{d}");
    }

    /// Both bounds hold at their exact instant: a renewal sent 5 ms into a 5 ms try at 10 ms
    /// allows the next one no sooner than 336 ms (333 ms after the send, less the 2 ms slack) and
    /// no later than 340 ms (plus the slack); one ms past either side breaks it.
    #[test]
    fn a_renewal_at_its_floor_or_its_deadline_is_on_time() {
        let after = |t_ms: u64, took_ms: u64| judge(&[started(0), renewed(10, 5), renewed(t_ms, took_ms)]);
        assert!(after(340, 4).is_empty(), "sent at the floor: {:?}", after(340, 4));
        let v = after(339, 4);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S13", 339_000)], "{v:?}");
        assert!(v[0].detail.contains("1000 µs early"), "{}", v[0].detail);
        assert!(after(342, 2).is_empty(), "started at the deadline: {:?}", after(342, 2));
        let v = after(343, 2);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 343_000)], "{v:?}");
        assert!(v[0].detail.contains("1000 µs late"), "{}", v[0].detail);
    }

    fn stepping_down(t_ms: u64) -> Ev {
        at(t_ms, LeaseEvent::SteppingDown { lease: "l".into(), owner: "a".into(), fence: 1 })
    }

    /// A step-down judges the attempt that fell due before it and never started (S12 at the
    /// step-down), unless the node's clock jumped meanwhile; one within the wait is not judged.
    #[test]
    fn a_step_down_past_a_due_attempt_that_never_started_fires_s12() {
        // The renewal sent at 5 ms is due again by 340 ms (333 ms and the 2 ms slack).
        assert!(judge(&[started(0), renewed(10, 5), stepping_down(340)]).is_empty());
        let v = judge(&[started(0), renewed(10, 5), stepping_down(341)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 341_000)], "{v:?}");
        assert!(v[0].detail.contains("none started before its step-down"), "{}", v[0].detail);
        let mut jumping = crate::steady_clocks(2_000);
        jumping.jumped = |_, _, _| true;
        assert!(lease_attempts_on_time(&[started(0), renewed(10, 5), stepping_down(400)], jumping).is_empty());
    }

    /// The first 20 violations are reported, whichever arm finds the next: a retry storm of 24
    /// early refusals reports the first 20, and a step-down past its due attempt after them none.
    #[test]
    fn the_first_20_violations_are_reported() {
        let mut h = vec![started(0)];
        h.extend((1..=25).map(|i| refused(10 * i, 5)));
        let v = judge(&h);
        assert_eq!(v.len(), 20, "{v:?}");
        assert!(v.iter().all(|v| v.invariant == "S13"), "{v:?}");
        assert_eq!((v[0].t_us, v[19].t_us), (20_000, 210_000));
        // The last refusal at 250 ms is due again within 333 ms: a step-down at 700 ms finds it
        // overdue, past the cap.
        h.push(stepping_down(700));
        assert_eq!(judge(&h).len(), 20);
        assert_eq!(judge(&[started(0), refused(250, 5), stepping_down(700)]).len(), 1);
    }

    /// A quarantine's wait is exact, not jittered: its next attempt waits until the lease frees
    /// (100 ms here), where a refusal's may come at half of it.
    #[test]
    fn a_quarantine_waits_until_the_lease_frees_not_half_of_it() {
        let quarantined = |t_ms: u64| {
            let (lease, owner) = ("l".into(), "a".into());
            at(t_ms, LeaseEvent::Quarantined { lease, owner, remaining_ms: 100, took_us: 5_000 })
        };
        // Floor 108 ms (10 + 100 − the 2 ms slack), deadline 112 ms.
        assert!(judge(&[started(0), quarantined(10), refused(115, 5)]).is_empty());
        let v = judge(&[started(0), quarantined(10), refused(70, 5)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S13", 70_000)], "{v:?}");
        assert!(v[0].detail.contains("after a quarantine refusal"), "{}", v[0].detail);
        let v = judge(&[started(0), quarantined(10), refused(120, 5)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 120_000)], "{v:?}");
    }

    /// A failed renewal's retry waits at least half its backoff (10 ms after the first error):
    /// one sent at once is S13.
    #[test]
    fn a_failed_renewal_s_retry_waits_half_its_backoff() {
        // Floor 353 ms (345 + 10 − the 2 ms slack).
        let h = [started(0), renewed(10, 5), renew_failed(345, 5)];
        assert!(judge(&[h.as_slice(), &[renewed(354, 1)]].concat()).is_empty());
        let v = judge(&[h.as_slice(), &[renewed(350, 1)]].concat());
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S13", 350_000)], "{v:?}");
        assert!(v[0].detail.contains("after a failed renewal"), "{}", v[0].detail);
    }

    /// A refused renewal is an answer of the store: it ends the streak of errors, so the first
    /// failed acquisition after the step-down waits `retry_min` (20 ms, at least 10), not the
    /// streak's next backoff (160 ms, at least 80).
    #[test]
    fn a_refused_renewal_starts_the_error_streak_over() {
        let renew_refused =
            |t_ms: u64| at(t_ms, LeaseEvent::RenewRefused { lease: "l".into(), owner: "a".into(), took_us: 2_000 });
        let lost =
            at(126, LeaseEvent::Lost { lease: "l".into(), owner: "a".into(), fence: 1, reason: LostReason::Taken });
        // Three failed renewals (backoffs of 20, 40 and 80 ms), refused 40 ms after the third.
        let h = [
            started(0),
            renew_failed(10, 5),
            renew_failed(35, 5),
            renew_failed(80, 5),
            renew_refused(122),
            lost,
            acquire_failed(132, 5),
            acquire_failed(147, 5),
        ];
        assert!(judge(&h).is_empty(), "{:?}", judge(&h));
    }

    /// A successful read of the store's time starts keel's count of errors over (its floor is
    /// judged again) and lets the first acquisition go at once: one that waits is late.
    #[test]
    fn a_read_of_the_store_s_time_starts_the_count_over_and_acquires_at_once() {
        let reads = [started(0), time(5, false), time(20, false), time(40, true)];
        // The first error after the read allows 20 ms, at least 10: a retry sent 2 ms after it is early.
        let mut h = reads.to_vec();
        h.extend([acquire_failed(42, 1), acquire_failed(45, 1)]);
        let v = judge(&h);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S13", 45_000)], "{v:?}");
        // The acquisition after the read is due at once (the 2 ms slack): one 300 ms later is late.
        let mut h = reads.to_vec();
        h.push(refused(345, 5));
        let v = judge(&h);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S12", 345_000)], "{v:?}");
        assert!(v[0].detail.contains("after its read of the store's time"), "{}", v[0].detail);
    }
}
