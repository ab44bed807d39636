//! P24: a worker retries a failed registration when its backoff says, neither sooner nor
//! later, judged at each retry.
//!
//! keel's registration backoff has no jitter: after the n-th failed attempt in a row (n from 0;
//! `register_failed`, which announces the timing, `retry_min_us` and `retry_max_us`, and carries
//! the attempt's own `took_us`) a worker waits `retry_min`·2ⁿ, at most `retry_max` (its
//! keep-alive interval), then tries again. The retry's start is its outcome
//! (`register_failed`, or `worker_registered` with its `took_us`) less its own duration. One that
//! starts before its wait is a registration storm on a failing store (MC95: retried at once);
//! one that starts after it leaves the worker's slot idle longer than configured (MC94: a
//! doubling without its cap). The worker's stop or death, and the node's crash or restart, end
//! the judging.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::{Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// A worker's failed registrations in a row, and what the last one allows the next attempt.
type Retries = (u32, Option<Due>);

/// P24 over keel's pool events: see the module's doc. `slowest`, `fastest`, the slacks,
/// `frozen` and `jumped` as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn worker_registrations_retry_on_time<E: Entry>(
    events: &[E],
    rates: (f64, f64),
    slacks: (u64, u64),
    frozen: impl Fn(&E::Node) -> Vec<Span>,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(rates, slacks, frozen, jumped);
    let mut workers: BTreeMap<(E::Node, &str), Retries> = BTreeMap::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            workers.retain(|k, _| &k.0 != node);
            continue;
        }
        let (worker, took_us, failed) = match e.pool() {
            Some(PoolEvent::RegisterFailed { worker, took_us, retry_min_us, retry_max_us }) => {
                (plain(worker), *took_us, Some((*retry_min_us, *retry_max_us)))
            }
            Some(PoolEvent::WorkerRegistered { worker, took_us, .. }) => (plain(worker), *took_us, None),
            Some(
                PoolEvent::WorkerStopped { worker }
                | PoolEvent::WorkerDead { worker }
                | PoolEvent::WorkerDied { worker, .. }
                | PoolEvent::SlotEnded { worker, .. },
            ) => {
                workers.remove(&(node.clone(), plain(worker)));
                continue;
            }
            _ => continue,
        };
        let (failures, due) = workers.entry((node.clone(), worker)).or_insert((0, None));
        if let Some(d) = due.take() {
            let n = *failures;
            verdicts.judge(("P24", "P24"), node, (&d, t, took_us), false, |at, by, how| {
                format!(
                    "{node}: worker {worker}: after its {} failed registration in a row at {:.3}s its retry was due {} µs later, and started at {:.3}s, {by} µs {how}",
                    ordinal(n),
                    d.earliest as f64 / 1e6,
                    d.wait_max_us,
                    at as f64 / 1e6,
                )
            });
        }
        let Some((min_us, max_us)) = failed else {
            workers.remove(&(node.clone(), worker));
            continue;
        };
        let wait_us = min_us.saturating_mul(1u64 << (*failures).min(32)).min(max_us);
        *failures += 1;
        *due = Some(Due {
            after: "a failed registration",
            latest: t,
            wait_max_us: wait_us,
            earliest: t,
            wait_min_us: wait_us,
        });
    }
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
            PoolEvent::WorkerRegistered { worker: "w".into(), keepalive_interval_us: 300_000, took_us: took_ms * 1000 },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&worker_registrations_retry_on_time(
            h,
            (1.0, 1.0),
            (2_000, 2_000),
            |_| Vec::new(),
            |_, _, _| false,
        ))
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
}
