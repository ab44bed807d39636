//! P24 and P26: a pool worker retries a failed store step when its backoff says, neither
//! sooner nor later, judged at each retry.
//!
//! **P24**, registration: keel's registration backoff has no jitter: after the n-th failed
//! attempt in a row (n from 0; `register_failed`, which announces the timing, `retry_min_us` and
//! `retry_max_us`, and carries the attempt's own `took_us`) a worker waits `retry_min`·2ⁿ, at
//! most `retry_max` (its keep-alive interval), then tries again. The retry's start is its outcome
//! (`register_failed`, or `worker_registered` with its `took_us`) less its own duration. One that
//! starts before its wait is a registration storm on a failing store (MC95: retried at once);
//! one that starts after it leaves the worker's slot idle longer than configured (MC94: a
//! doubling without its cap). The worker's stop or death, and the node's crash or restart, end
//! the judging.
//!
//! **P26**, a run's completion: see [`worker_completions_retry_on_time`].
//!
//! **P31**, a cleaner's requeue of a dead worker's job: see [`cleaner_requeues_retry_on_time`].
//!
//! **P67**, a pool node's start reading the store's time: see [`pool_starts_retry_on_time`].
//!
//! **P68**, a pool node's watches: see [`pool_watches_retry_on_time`].
//!
//! **P69**, a pool node's keep-alive follower: see [`pool_keepalive_resyncs_retry_on_time`].

use std::collections::BTreeMap;

use keel::observe::{PoolEvent, StaleOp};

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// How a rule's failure events count a chain's tries against the number it allows.
#[derive(Clone, Copy)]
enum Tries {
    /// Not counted (P24: a registration retries until it succeeds).
    Unlimited,
    /// A failure is announced only when a try follows it: the n-th in a row, n ≥ the allowed
    /// tries, is followed by one try too many (P31's `requeue_retry`).
    Retried(u32),
    /// Every failed try is announced, the last one too: the n-th, n > the allowed tries, is one
    /// try too many (P26's `complete_retry`).
    Each(u32),
}

/// What one event is to a chain of retries of one store step, keyed by `K` on its node.
enum Step<K> {
    /// A try failed after `took_us`; the next comes `retry_min`·2ⁿ after the n-th failure in a
    /// row, at most `retry_max` (the timing in µs; keel's worker retries have no jitter), and at
    /// most `cap_us` (P67: a start's deadline).
    Failed { key: K, took_us: u64, retry: (u64, u64), cap_us: Option<u64>, tries: Tries },
    /// The chain's last try (it succeeded, or it was given up as its wait ended) after `took_us`.
    /// `gave_up`: a chain given up after its last try, with the failed tries it says it made and
    /// those it was allowed: both are the failures counted in a row (P26's `complete_failed`).
    Last { key: K, took_us: u64, gave_up: Option<(u32, u32)> },
    /// A try succeeded (its timing not judged): the chain ends, and the try must have been one
    /// of those allowed (P26's `completed` and `stale_rejected`).
    Succeeded(K),
    /// The chain ends unjudged.
    End(K),
    /// Every chain of the node ends unjudged (the pool node stopped or started).
    EndAll,
}

/// A chain's failed tries in a row, what the last one allows the next try, and the tries it is
/// allowed (as [`Tries::Each`] announced them).
type Chain = (u32, Option<Due>, Option<u32>);

/// One rule of this file: its id, and how its chains and failures are named in a violation.
struct Rule<K> {
    id: &'static str,
    /// "a failed registration", for the wait's [`Due`].
    after: &'static str,
    /// "failed registration", in "after its 2nd failed registration in a row".
    failure: &'static str,
    /// A chain's name: "worker w", "job j attempt 3".
    subject: fn(&K) -> String,
}

/// Judges each try that follows a failed one against the backoff the failure announced: the
/// try's start (its outcome less its own duration) no sooner and no later than its wait, at the
/// in-bound clock rates least favourable to the verdict (see [`crate::cadence`]). A node's crash
/// or restart ends its chains.
fn judge_retry_chains<'a, E: Entry, K: Ord + Clone>(
    events: &'a [E],
    rule: Rule<K>,
    verdicts: &mut Verdicts<E::Node, impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
    step: impl Fn(&'a E) -> Option<Step<K>>,
) {
    // (node, chain) → failed tries in a row, what the last one allows the next, and the tries
    // the failures announced allowed (P26: those counted against each announcement)
    let mut chains: BTreeMap<(E::Node, K), Chain> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            chains.retain(|k, _| &k.0 != node);
            continue;
        }
        let (key, took_us, retry) = match step(e) {
            Some(Step::Failed { key, took_us, retry, cap_us, tries }) => {
                let failures = chains.get(&(node.clone(), key.clone())).map_or(0, |c| c.0) + 1;
                let subject = (rule.subject)(&key);
                let past = match tries {
                    Tries::Unlimited => None,
                    Tries::Retried(max) => (failures >= max).then(|| {
                        format!(
                            "its {} {} in a row is followed by another try, past its {max} tries",
                            ordinal(failures),
                            rule.failure
                        )
                    }),
                    Tries::Each(max) => (failures > max).then(|| {
                        format!("its {} {} in a row is a try past its {max} tries", ordinal(failures), rule.failure)
                    }),
                };
                if let Some(past) = past {
                    verdicts.v.push(Violation::new(rule.id, t, format!("{node}: {subject}: {past}")));
                }
                if let Tries::Each(max) = tries {
                    chains.entry((node.clone(), key.clone())).or_insert((0, None, None)).2 = Some(max);
                }
                (key, took_us, Some((retry, cap_us)))
            }
            Some(Step::Last { key, took_us, gave_up }) => {
                if let Some((said, max)) = gave_up {
                    let failures = chains.get(&(node.clone(), key.clone())).map_or(0, |c| c.0);
                    if failures != max || said != failures {
                        let subject = (rule.subject)(&key);
                        verdicts.v.push(Violation::new(
                            rule.id,
                            t,
                            format!(
                                "{node}: {subject}: given up after {failures} failed tries in a row (it says {said}), where {max} tries are allowed"
                            ),
                        ));
                    }
                }
                (key, took_us, None)
            }
            Some(Step::Succeeded(key)) => {
                if let Some((failures, _, Some(max))) = chains.remove(&(node.clone(), key.clone()))
                    && failures >= max
                {
                    let subject = (rule.subject)(&key);
                    verdicts.v.push(Violation::new(
                        rule.id,
                        t,
                        format!(
                            "{node}: {subject}: a try after its {} {} in a row succeeded, past its {max} tries",
                            ordinal(failures),
                            rule.failure
                        ),
                    ));
                }
                continue;
            }
            Some(Step::End(key)) => {
                chains.remove(&(node.clone(), key));
                continue;
            }
            Some(Step::EndAll) => {
                chains.retain(|k, _| &k.0 != node);
                continue;
            }
            None => continue,
        };
        let key = (node.clone(), key);
        let (failures, due, _) = chains.entry(key.clone()).or_insert((0, None, None));
        if let Some(d) = due.take() {
            let (n, subject) = (*failures, (rule.subject)(&key.1));
            verdicts.judge((rule.id, rule.id), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: {subject}: after its {} {} in a row at {:.3}s the next try was due {} µs later, and started at {:.3}s, {by} µs {how}",
                    ordinal(n),
                    rule.failure,
                    d.earliest as f64 / 1e6,
                    d.wait_max_us,
                    at as f64 / 1e6,
                )
            });
        }
        let Some(((min_us, max_us), cap_us)) = retry else {
            chains.remove(&key);
            continue;
        };
        let wait_us = min_us.saturating_mul(1u64 << (*failures).min(32)).min(max_us).min(cap_us.unwrap_or(u64::MAX));
        *failures += 1;
        *due = Some(Due { after: rule.after, latest: t, wait_max_us: wait_us, earliest: t, wait_min_us: wait_us });
    }
}

/// P24 over keel's pool events: see the module's doc. `slowest`, `fastest`, the slacks,
/// `frozen` and `jumped` as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn worker_registrations_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P24",
        after: "a failed registration",
        failure: "failed registration",
        subject: |w: &&str| format!("worker {w}"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::RegisterFailed { worker, took_us, retry_min_us, retry_max_us } => Some(Step::Failed {
            key: plain(worker),
            took_us: *took_us,
            retry: (*retry_min_us, *retry_max_us),
            cap_us: None,
            tries: Tries::Unlimited,
        }),
        PoolEvent::WorkerRegistered { worker, took_us, .. } => {
            Some(Step::Last { key: plain(worker), took_us: *took_us, gave_up: None })
        }
        PoolEvent::WorkerStopped { worker }
        | PoolEvent::WorkerDead { worker }
        | PoolEvent::WorkerDied { worker, .. }
        | PoolEvent::SlotEnded { worker, .. } => Some(Step::End(plain(worker))),
        _ => None,
    });
    verdicts.v
}

/// P26: a worker retries a failed completion when its backoff says, judged at each retry.
///
/// Each failed try to record a run's completion is a `complete_retry` (the try's `took_us`,
/// and the timing it retries by: the pool's `cleanup_backoff`, `retry_min_us`·2ⁿ after the n-th
/// failed try, at most `retry_max_us`, no jitter). The next try's start is its own
/// `complete_retry` less its duration; after the last try the completion is given up
/// (`complete_failed`) as the wait ends. A run's end (`handler_returned`) starts the tries
/// afresh: a fence may cut a run's tries short, and the same attempt run again on the node. One
/// that starts before its wait is a retry storm on a failing store (MC97: retried at once); one
/// that starts after it holds the job's completion, and the job, past the configured backoff. A
/// node's crash or restart ends the judging.
///
/// And the number of tries, which needs no clock: each `complete_retry` carries the tries the
/// completion is allowed (`tries_max`, the pool's `cleanup_retries`); no try follows the last
/// of them (a `complete_retry`, `completed` or completion's `stale_rejected` after `tries_max`
/// failed tries in a row: MC134, one try more), and a completion given up (`complete_failed`,
/// with its `tries` and `tries_max`) failed exactly its `tries_max` tries in a row (MC133, one
/// try fewer: a store fault one try longer than the completion's tries leaves the job to run
/// again). In plans with clocks beyond their bound only the tries are counted.
pub fn worker_completions_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P26",
        after: "a failed completion",
        failure: "failed completion try",
        subject: |(job, attempt): &(&str, u64)| format!("job {job} attempt {attempt}"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::CompleteRetry { job, attempt, took_us, retry_min_us, retry_max_us, tries_max, .. } => {
            Some(Step::Failed {
                key: (plain(job), *attempt),
                took_us: *took_us,
                retry: (*retry_min_us, *retry_max_us),
                cap_us: None,
                tries: Tries::Each(*tries_max),
            })
        }
        PoolEvent::CompleteFailed { job, attempt, tries, tries_max, .. } => {
            Some(Step::Last { key: (plain(job), *attempt), took_us: 0, gave_up: Some((*tries, *tries_max)) })
        }
        // A run's end starts its completion's tries afresh (the same attempt may run again on
        // the node after its first run's tries were cut short by a fence); an outcome ends them.
        PoolEvent::HandlerReturned { job, attempt, .. }
        | PoolEvent::StaleRejected { op: StaleOp::Ack, job, attempt, .. } => Some(Step::End((plain(job), *attempt))),
        PoolEvent::Completed { job, attempt, .. }
        | PoolEvent::StaleRejected { op: StaleOp::Complete, job, attempt, .. } => {
            Some(Step::Succeeded((plain(job), *attempt)))
        }
        _ => None,
    });
    verdicts.v
}

/// P31: a cleaner retries a failed requeue of a dead worker's job when its backoff says, judged
/// at each retry.
///
/// Each failed try to move the job (a transient store error, or a record that changed and still
/// names the dead worker) that a retry follows is a `requeue_retry` (the try's `took_us`, and the
/// timing it retries by: the pool's `cleanup_backoff`, `retry_min_us`·2ⁿ after the n-th failed
/// try, at most `retry_max_us`, no jitter). The next try's start is its own `requeue_retry`, or
/// the `requeue_ended` that ends a retried requeue, less its duration. One that starts before
/// its wait asks a failing store again at network speed and gives the cleanup up within
/// milliseconds where its backoff would have outlasted the fault (MC116: retried at once); one
/// that starts after it holds the dead worker's jobs, and its cleanup lock, past the backoff.
/// The pool node's stop or start, and the node's crash or restart, end the judging.
pub fn cleaner_requeues_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P31",
        after: "a failed requeue",
        failure: "failed requeue try",
        subject: |(job, worker): &(&str, &str)| format!("job {job} of dead worker {worker}"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::RequeueRetry { job, worker, took_us, retry_min_us, retry_max_us, tries_max, .. } => {
            Some(Step::Failed {
                key: (plain(job), plain(worker)),
                took_us: *took_us,
                retry: (*retry_min_us, *retry_max_us),
                cap_us: None,
                tries: Tries::Retried(*tries_max),
            })
        }
        PoolEvent::RequeueEnded { job, worker, took_us, .. } => {
            Some(Step::Last { key: (plain(job), plain(worker)), took_us: *took_us, gave_up: None })
        }
        PoolEvent::NodeStarted { .. } | PoolEvent::NodeStopped { .. } => Some(Step::EndAll),
        _ => None,
    });
    verdicts.v
}

/// P67: a pool node's start reads the store's time again when its backoff says, judged at
/// each try.
///
/// `Pool::start` reads the store's time until it answers (the node's incarnation). Each failed
/// read it tries again is a `start_retry` (the read's `took_us`, and the timing: `retry_min_us`
/// ·2ⁿ after the n-th failure in a row, at most `retry_max_us`, no jitter, and no later than the
/// start's deadline, `remaining_us` after the failure). The next read's start is its outcome
/// (`start_retry`, `start_store_reached` or `start_failed`, each with its `took_us`) less its
/// duration. One that starts before its wait is a start hammering a store that is restarting
/// or cut off, every node of a fleet at network speed (MC320: the backoff skipped); one that
/// starts after it leaves the node down while its store is back (MC321: the doubling without its
/// cap). A node's crash or restart ends the judging.
pub fn pool_starts_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P67",
        after: "a failed read of the store's time at start",
        failure: "failed read at start",
        subject: |pool: &&str| format!("pool {pool}'s start"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::StartRetry { pool, took_us, retry_min_us, retry_max_us, remaining_us, .. } => Some(Step::Failed {
            key: plain(pool),
            took_us: *took_us,
            retry: (*retry_min_us, *retry_max_us),
            cap_us: Some(*remaining_us),
            tries: Tries::Unlimited,
        }),
        PoolEvent::StartStoreReached { pool, took_us, .. } | PoolEvent::StartFailed { pool, took_us, .. } => {
            Some(Step::Last { key: plain(pool), took_us: *took_us, gave_up: None })
        }
        _ => None,
    });
    verdicts.v
}

/// P68: a pool node opens its watches again a sweep interval after a failed try, judged at
/// each try.
///
/// The router and the keep-alive follower each open a watch of their map when the node starts,
/// trying again until it opens. Each failed try is a `watch_open_failed` (the try's `took_us`
/// and the wait it announces, `retry_us`: the sweep interval); the next try's start is its own
/// outcome (`watch_open_failed` or `watch_opened`, with its `took_us`) less its duration. One
/// that starts before its wait is a node hammering a store that refuses its watches (MC322:
/// retried at once); one that starts after it leaves the node's feed unread, and its table
/// stale, past the sweep. A node's crash or restart ends the judging.
pub fn pool_watches_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P68",
        after: "a failed watch open",
        failure: "failed watch open",
        subject: |(pool, map): &(&str, &str)| format!("pool {pool}'s watch of {map}"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::WatchOpenFailed { pool, map, took_us, retry_us, .. } => Some(Step::Failed {
            key: (plain(pool), plain(map)),
            took_us: *took_us,
            retry: (*retry_us, *retry_us),
            cap_us: None,
            tries: Tries::Unlimited,
        }),
        PoolEvent::WatchOpened { pool, map, took_us, .. } => {
            Some(Step::Last { key: (plain(pool), plain(map)), took_us: *took_us, gave_up: None })
        }
        _ => None,
    });
    verdicts.v
}

/// P69: a pool node's keep-alive follower snapshots the keep-alive map again a keep-alive
/// interval after a failed try, judged at each try.
///
/// The follower rebuilds its replica from a snapshot at its start and after each gap in its
/// feed. Each failed snapshot is a `keepalive_resync_failed` (its `took_us` and the wait it
/// announces, `retry_us`: the keep-alive interval); the next try's start is its own outcome
/// (`keepalive_resync_failed` or `keepalive_resynced`, with its `took_us`) less its duration.
/// One that starts before its wait is every node snapshotting the whole keep-alive map at
/// network speed on a failing store (MC323: retried at once); one that starts after it leaves
/// dispatch on its slower reads past the interval. A node's crash or restart ends the judging.
pub fn pool_keepalive_resyncs_retry_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P69",
        after: "a failed keep-alive snapshot",
        failure: "failed keep-alive snapshot",
        subject: |pool: &&str| format!("pool {pool}'s keep-alive follower"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::KeepaliveResyncFailed { pool, took_us, retry_us, .. } => Some(Step::Failed {
            key: plain(pool),
            took_us: *took_us,
            retry: (*retry_us, *retry_us),
            cap_us: None,
            tries: Tries::Unlimited,
        }),
        PoolEvent::KeepaliveResynced { pool, took_us, .. } => {
            Some(Step::Last { key: plain(pool), took_us: *took_us, gave_up: None })
        }
        _ => None,
    });
    verdicts.v
}

/// P73: a pool node's keep-alive follower snapshots the keep-alive map at once after a gap in
/// its feed, judged at the snapshot.
///
/// A gap (`keepalive_gap`, new) leaves the replica without what the feed lost meanwhile (a
/// worker registered, beating or deleted): until a snapshot rebuilds it, dispatch must fall
/// back on its own reads, and the follower snapshots at once. The snapshot's start is its
/// outcome (`keepalive_resynced` or `keepalive_resync_failed`, with its `took_us`) less its
/// duration, due at the gap's instant. A follower that does not note the gap (MC360) goes on
/// taking changes into a replica it takes for synced, and snapshots only when a later change
/// skips a revision or another gap comes: that try is late. A node's crash or restart ends the
/// judging; a stop cuts the snapshot with no outcome, and leaves nothing judged.
pub fn pool_keepalive_gaps_resync_at_once<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let rule = Rule {
        id: "P73",
        after: "a gap in its keep-alive feed",
        failure: "keep-alive feed gap",
        subject: |pool: &&str| format!("pool {pool}'s keep-alive follower"),
    };
    judge_retry_chains(events, rule, &mut verdicts, |e| match e.pool()? {
        PoolEvent::KeepaliveGap { pool } => {
            Some(Step::Failed { key: plain(pool), took_us: 0, retry: (0, 0), cap_us: None, tries: Tries::Unlimited })
        }
        PoolEvent::KeepaliveResyncFailed { pool, took_us, .. } | PoolEvent::KeepaliveResynced { pool, took_us, .. } => {
            Some(Step::Last { key: plain(pool), took_us: *took_us, gave_up: None })
        }
        _ => None,
    });
    verdicts.v
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "1st".into(),
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    /// retry_min 100 ms, retry_max 300 ms.
    fn failed(t_ms: u64, took_ms: u64) -> Ev {
        let (retry_min_us, retry_max_us) = (100_000, 300_000);
        at(t_ms, PoolEvent::RegisterFailed { worker: "w".into(), took_us: took_ms * 1000, retry_min_us, retry_max_us })
    }

    fn registered(t_ms: u64, took_ms: u64) -> Ev {
        at(
            t_ms,
            PoolEvent::WorkerRegistered {
                worker: "w".into(),
                keepalive_interval_us: 300_000,
                shutdown_deadline_us: 750_000,
                took_us: took_ms * 1000,
            },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&worker_registrations_retry_on_time(h, crate::steady_clocks(2_000)))
    }

    #[test]
    fn retries_after_their_backoff_pass_and_others_fire_p24() {
        // Waits of 100, 200, 300 (capped) and 300 ms.
        let on_time = [failed(10, 10), failed(120, 10), failed(330, 10), failed(640, 10), registered(950, 10)];
        assert_eq!(judge(&on_time), []);
        // Retried at once (MC95).
        assert_eq!(judge(&[failed(10, 10), failed(25, 10)]), [("P24", 25)]);
        // 400 ms after the third failure: its wait doubled past the cap (MC94).
        assert_eq!(judge(&[failed(10, 10), failed(120, 10), failed(330, 10), registered(740, 10)]), [("P24", 740)]);
        // A stop ends the judging.
        let stopped = at(20, PoolEvent::WorkerStopped { worker: "w".into() });
        assert_eq!(judge(&[failed(10, 10), stopped, registered(30, 5)]), []);
    }

    /// A failed try of job `j`'s attempt 1 that ended at `t_ms` after `took_ms`: backoff 100 ms
    /// doubling to 300 ms, three tries.
    fn complete_retry(t_ms: u64, took_ms: u64) -> Ev {
        let (retry_min_us, retry_max_us, tries_max) = (100_000, 300_000, 3);
        let (job, worker, error, took_us) = ("j".into(), "w".into(), "x".into(), took_ms * 1000);
        let e =
            PoolEvent::CompleteRetry { job, worker, attempt: 1, error, took_us, retry_min_us, retry_max_us, tries_max };
        at(t_ms, e)
    }

    #[test]
    fn completion_tries_after_their_backoff_pass_and_others_fire_p26() {
        let retry = complete_retry;
        let gave_up = |t_ms: u64| {
            at(
                t_ms,
                PoolEvent::CompleteFailed { job: "j".into(), worker: "w".into(), attempt: 1, tries: 3, tries_max: 3 },
            )
        };
        let judge =
            |h: &[Ev]| crate::test_entry::at_ms(&worker_completions_retry_on_time(h, crate::steady_clocks(2_000)));
        // Waits of 100, 200 and 300 (capped) ms; given up as the last wait ends.
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), retry(330, 10), gave_up(630)]), []);
        // Retried at once (MC97), or given up early.
        assert_eq!(judge(&[retry(10, 10), retry(25, 10)]), [("P26", 25)]);
        assert_eq!(
            judge(&[retry(10, 10), gave_up(50)]),
            [("P26", 50), ("P26", 50)],
            "early, and after one try of three"
        );
        // The same attempt run again (its first run's tries cut short) starts its tries afresh.
        let (job, worker) = ("j".into(), "w".into());
        let returned =
            at(2_000, PoolEvent::HandlerReturned { job, worker, attempt: 1, completed: true, stopped: false });
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), returned, retry(2_050, 10), retry(2_160, 10)]), []);
    }

    #[test]
    fn a_completion_makes_exactly_its_tries_or_p26_fires() {
        let retry = |t_ms: u64| complete_retry(t_ms, 10);
        let gave_up = |t_ms: u64, tries: u32| {
            at(t_ms, PoolEvent::CompleteFailed { job: "j".into(), worker: "w".into(), attempt: 1, tries, tries_max: 3 })
        };
        let (job, worker) = ("j", "w");
        let completed =
            |t_ms: u64| at(t_ms, PoolEvent::Completed { job: job.into(), worker: worker.into(), attempt: 1 });
        let stale = |t_ms: u64, op| {
            at(t_ms, PoolEvent::StaleRejected { op, job: job.into(), worker: worker.into(), attempt: 1 })
        };
        let judge =
            |h: &[Ev]| crate::test_entry::at_ms(&worker_completions_retry_on_time(h, crate::steady_clocks(2_000)));
        // Three tries of three, each failed, then given up as the last wait ends.
        let three = [retry(10), retry(120), retry(330)];
        assert_eq!(judge(&[three.as_slice(), &[gave_up(630, 3)]].concat()), []);
        // Given up after two (MC133: one try fewer), or saying a count it did not make.
        assert_eq!(judge(&[retry(10), retry(120), gave_up(320, 2)]), [("P26", 320)]);
        assert_eq!(judge(&[retry(10), retry(120), gave_up(320, 3)]), [("P26", 320)]);
        assert_eq!(judge(&[gave_up(320, 0)]), [("P26", 320)], "given up with no try at all");
        // A fourth try (MC134: one try more), failed or not.
        assert_eq!(judge(&[three.as_slice(), &[retry(640)]].concat()), [("P26", 640)]);
        assert_eq!(judge(&[three.as_slice(), &[completed(640)]].concat()), [("P26", 640)]);
        assert_eq!(judge(&[three.as_slice(), &[stale(640, StaleOp::Complete)]].concat()), [("P26", 640)]);
        // The third try may succeed; a stale ack of the attempt run again starts afresh.
        assert_eq!(judge(&[retry(10), retry(120), completed(330)]), []);
        assert_eq!(judge(&[three.as_slice(), &[stale(5_000, StaleOp::Ack), retry(5_100)]].concat()), []);
        // A crash ends the count.
        let crash = Ev(400_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[retry(10), retry(120), crash, retry(500), retry(610), retry(820)]), []);
    }

    #[test]
    fn requeue_tries_after_their_backoff_pass_and_others_fire_p31() {
        let retry = |t_ms: u64, took_ms: u64| {
            let (retry_min_us, retry_max_us) = (100_000, 300_000);
            let (job, worker, error, took_us) = ("j".into(), "w".into(), "x".into(), took_ms * 1000);
            at(t_ms, PoolEvent::RequeueRetry { job, worker, error, took_us, retry_min_us, retry_max_us, tries_max: 5 })
        };
        let ended = |t_ms: u64, took_ms: u64| {
            let (job, worker) = ("j".into(), "w".into());
            at(t_ms, PoolEvent::RequeueEnded { job, worker, tries: 3, took_us: took_ms * 1000, ok: true })
        };
        let judge =
            |h: &[Ev]| crate::test_entry::at_ms(&cleaner_requeues_retry_on_time(h, crate::steady_clocks(2_000)));
        // Waits of 100, 200 and 300 (capped) ms; the last try ends 10 ms after its start.
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), retry(330, 10), ended(640, 10)]), []);
        // Retried at once (MC116), or late.
        assert_eq!(judge(&[retry(10, 10), retry(25, 10)]), [("P31", 25)]);
        assert_eq!(judge(&[retry(10, 10), ended(200, 10)]), [("P31", 200)]);
        // A pool node's stop or start ends the judging: the next requeue of the job starts afresh.
        let stopped = at(50, PoolEvent::NodeStopped { node: "n1".into() });
        assert_eq!(judge(&[retry(10, 10), stopped, retry(60, 10), retry(170, 10)]), []);
        let started = at(
            50,
            PoolEvent::NodeStarted {
                pool: "p".into(),
                node: "n1".into(),
                ack_grace_us: 1,
                sweep_interval_us: 1,
                cleanup_lock_ttl_us: 1,
                op_timeout_us: 1,
                dedup_window_us: 600_000_000,
                drift_margin_us: 150_000,
            },
        );
        assert_eq!(judge(&[retry(10, 10), started, ended(55, 1)]), []);
        // Five tries in all: a fifth failure followed by a retry is one try too many.
        let four = [retry(10, 10), retry(120, 10), retry(330, 10), retry(640, 10)];
        assert_eq!(judge(&[four.as_slice(), &[ended(950, 10)]].concat()), []);
        assert_eq!(judge(&[four.as_slice(), &[retry(950, 10)]].concat()), [("P31", 950)]);
    }
    #[test]
    fn start_reads_after_their_backoff_pass_and_others_fire_p67() {
        // retry_min 100 ms, retry_max 300 ms; the start's deadline 900 ms after its first try at 0.
        let retry = |t_ms: u64, took_ms: u64| {
            let (pool, node, error) = ("p".into(), "n1".into(), "x".into());
            let (retry_min_us, retry_max_us) = (100_000, 300_000);
            let remaining_us = 900_000u64.saturating_sub(t_ms * 1000);
            let took_us = took_ms * 1000;
            at(
                t_ms,
                PoolEvent::StartRetry {
                    pool,
                    node,
                    attempt: 1,
                    took_us,
                    retry_min_us,
                    retry_max_us,
                    remaining_us,
                    error,
                },
            )
        };
        let reached = |t_ms: u64, took_ms: u64| {
            at(
                t_ms,
                PoolEvent::StartStoreReached {
                    pool: "p".into(),
                    node: "n1".into(),
                    attempts: 2,
                    took_us: took_ms * 1000,
                },
            )
        };
        let failed = |t_ms: u64, took_ms: u64| {
            let (pool, node, error) = ("p".into(), "n1".into(), "x".into());
            at(
                t_ms,
                PoolEvent::StartFailed {
                    pool,
                    node,
                    attempts: 5,
                    waited_ms: t_ms,
                    permanent: false,
                    took_us: took_ms * 1000,
                    error,
                },
            )
        };
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&pool_starts_retry_on_time(h, crate::steady_clocks(2_000)));
        // Waits of 100, 200 and 300 (capped) ms, then one cut to the deadline (at 900 ms).
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), retry(330, 10), reached(640, 10)]), []);
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), retry(330, 10), retry(640, 10), failed(910, 10)]), []);
        // Retried at once (MC320), or past the cap (MC321: 400 ms after the third failure).
        assert_eq!(judge(&[retry(10, 10), retry(25, 10)]), [("P67", 25)]);
        assert_eq!(judge(&[retry(10, 10), retry(120, 10), retry(330, 10), reached(740, 10)]), [("P67", 740)]);
        // The last try waits for the deadline, not a whole backoff past it.
        assert_eq!(
            judge(&[retry(10, 10), retry(120, 10), retry(330, 10), retry(640, 10), failed(1_250, 10)]),
            [("P67", 1_250)]
        );
        // A crash ends the chain: the next start's first failure is not judged.
        let crash = Ev(400_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[retry(10, 10), crash, retry(410, 10), reached(520, 10)]), []);
    }
    #[test]
    fn watch_opens_after_their_wait_pass_and_others_fire_p68() {
        let failed = |t_ms: u64, map: &str| {
            let (pool, map, error) = ("p".into(), map.into(), "x".into());
            at(t_ms, PoolEvent::WatchOpenFailed { pool, map, took_us: 10_000, retry_us: 150_000, error })
        };
        let opened = |t_ms: u64, map: &str| {
            at(t_ms, PoolEvent::WatchOpened { pool: "p".into(), map: map.into(), tries: 2, took_us: 10_000 })
        };
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&pool_watches_retry_on_time(h, crate::steady_clocks(2_000)));
        // A sweep interval (150 ms) between a failure and the next try, each map on its own.
        assert_eq!(judge(&[failed(10, "jobs"), failed(12, "ka"), failed(170, "jobs"), opened(172, "ka")]), []);
        assert_eq!(judge(&[failed(10, "jobs"), opened(170, "jobs")]), []);
        // Retried at once (MC322), or a sweep late.
        assert_eq!(judge(&[failed(10, "jobs"), failed(30, "jobs")]), [("P68", 30)]);
        assert_eq!(judge(&[failed(10, "jobs"), opened(320, "jobs")]), [("P68", 320)]);
    }
    #[test]
    fn keepalive_snapshots_after_their_wait_pass_and_others_fire_p69() {
        let failed = |t_ms: u64| {
            let (pool, error) = ("p".into(), "x".into());
            at(t_ms, PoolEvent::KeepaliveResyncFailed { pool, took_us: 10_000, retry_us: 300_000, error })
        };
        let resynced =
            |t_ms: u64| at(t_ms, PoolEvent::KeepaliveResynced { pool: "p".into(), entries: 3, took_us: 10_000 });
        let judge =
            |h: &[Ev]| crate::test_entry::at_ms(&pool_keepalive_resyncs_retry_on_time(h, crate::steady_clocks(2_000)));
        // A keep-alive interval (300 ms) between a failure and the next try.
        assert_eq!(judge(&[failed(10), failed(320), resynced(630), resynced(5_000)]), []);
        // Retried at once (MC323), or late.
        assert_eq!(judge(&[failed(10), failed(30)]), [("P69", 30)]);
        assert_eq!(judge(&[failed(10), resynced(700)]), [("P69", 700)]);
    }

    #[test]
    fn a_keepalive_gap_snapshots_at_once_or_fires_p73() {
        let gap = |t_ms: u64| at(t_ms, PoolEvent::KeepaliveGap { pool: "p".into() });
        let failed = |t_ms: u64| {
            let (pool, error) = ("p".into(), "x".into());
            at(t_ms, PoolEvent::KeepaliveResyncFailed { pool, took_us: 10_000, retry_us: 300_000, error })
        };
        let resynced =
            |t_ms: u64| at(t_ms, PoolEvent::KeepaliveResynced { pool: "p".into(), entries: 3, took_us: 10_000 });
        let judge =
            |h: &[Ev]| crate::test_entry::at_ms(&pool_keepalive_gaps_resync_at_once(h, crate::steady_clocks(2_000)));
        // The snapshot (10 ms long) starts at the gap; a failed one's retry is P69's.
        assert_eq!(judge(&[resynced(5), gap(100), resynced(110), gap(400), failed(410), resynced(720)]), []);
        // No snapshot until a later gap or hole (MC360): late.
        assert_eq!(judge(&[gap(100), resynced(900)]), [("P73", 900)]);
        assert_eq!(judge(&[gap(100), gap(900)]), [("P73", 900)]);
    }

    /// A violation names the failure in a row it follows ("1st", "2nd", "3rd", "4th"), the wait
    /// and how far off the try started, or the try past the allowed ones.
    #[test]
    fn a_violation_counts_the_failures_in_a_row_in_words() {
        // The 2nd failure at 120 ms waits 200 ms (floor 318 ms with the slack); the retry started
        // at 190 ms, 128 ms early.
        let v = worker_registrations_retry_on_time(
            &[failed(10, 10), failed(120, 10), failed(200, 10)],
            crate::steady_clocks(2_000),
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].detail,
            "n1: worker w: after its 2nd failed registration in a row at 0.120s the next try was due 200000 µs later, and started at 0.190s, 128000 µs early"
        );
        let judge = |h: &[Ev]| worker_completions_retry_on_time(h, crate::steady_clocks(2_000));
        let three = [complete_retry(10, 10), complete_retry(120, 10), complete_retry(330, 10)];
        let v = judge(&[three.as_slice(), &[complete_retry(640, 10)]].concat());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].detail,
            "n1: job j attempt 1: its 4th failed completion try in a row is a try past its 3 tries"
        );
        let completed = at(640, PoolEvent::Completed { job: "j".into(), worker: "w".into(), attempt: 1 });
        let v = judge(&[three.as_slice(), &[completed]].concat());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            v[0].detail,
            "n1: job j attempt 1: a try after its 3rd failed completion try in a row succeeded, past its 3 tries"
        );
        let v = judge(&[complete_retry(10, 10), complete_retry(15, 1)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].detail.contains("after its 1st failed completion try in a row at 0.010s"), "{}", v[0].detail);
    }
}
