//! P23: a worker beats at its keep-alive interval, judged at each beat.
//!
//! A worker announces its interval when it registers (`worker_registered`:
//! `keepalive_interval_us`) and beats (a read of store time, then its keep-alive's
//! compare-and-set) that long after registering and that long after each beat ended, whatever
//! the beat's answer; each `beat_ended` carries the beat's own duration (`took_us`), so its start
//! is known to within the clock's rate. A beat that starts later than the interval allows lets
//! the worker's own fence deadline pass with nothing wrong at the store (MC85: the first beat a
//! worker TTL after registering, so every new worker stops its runs and unfences a beat later);
//! one that starts sooner is a beat storm on the store.
//!
//! A fence, a stop, or a worker found dead or stopped may hold the worker's loop (it stops its
//! runs) or ask for a beat at once (a stop's stopping mark), so from such an event the next beat
//! is judged only if it was already late then: its deadline had passed, and it is judged at its
//! end for lateness alone (a beat in flight since before its deadline is on time). After a fence
//! the worker beats on, and its chain starts again at that beat's end; after a stop, a death or a
//! deregistration the chain ends. A node's crash or restart forgets its workers.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::cadence::{Clocks, Due, Verdicts};
use crate::{Entry, Fact, Span, Violation, plain};

/// P23 over keel's pool events: see the module's doc. `slowest`, `fastest`, the slacks,
/// `frozen` and `jumped` as for [`crate::lease_attempts_on_time`]. The first 20 violations.
pub fn worker_beats_on_time<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut verdicts = Verdicts::new(clocks);
    let mut workers: BTreeMap<(E::Node, &str), Chain> = BTreeMap::new();
    let due = |after, t, interval_us| Due {
        after,
        latest: t,
        wait_max_us: interval_us,
        earliest: t,
        wait_min_us: interval_us,
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            workers.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::WorkerRegistered { worker, keepalive_interval_us, .. }) => {
                let chain = Chain {
                    interval_us: *keepalive_interval_us,
                    due: Some(due("its registration", t, *keepalive_interval_us)),
                    late_only: false,
                    rearm: true,
                };
                workers.insert((node.clone(), plain(worker)), chain);
            }
            Some(
                PoolEvent::Fenced { worker, .. }
                | PoolEvent::WorkerStopping { worker, .. }
                | PoolEvent::WorkerDead { worker }
                | PoolEvent::WorkerStopped { worker },
            ) => {
                let Some(c) = workers.get_mut(&(node.clone(), plain(worker))) else { continue };
                c.rearm &= matches!(e.pool(), Some(PoolEvent::Fenced { .. }));
                // Already late: judged at the beat's end, for lateness alone; otherwise not judged.
                let pace = verdicts.pace;
                c.due = c.due.filter(|d| pace.deadline(d, verdicts.holes(node)) < t);
                c.late_only = true;
            }
            Some(PoolEvent::BeatEnded { worker, took_us, .. }) => {
                let Some(c) = workers.get_mut(&(node.clone(), plain(worker))) else { continue };
                if let Some(d) = c.due.take() {
                    verdicts.judge(("P23", "P23"), node, (&d, t, *took_us), c.late_only, |at, by, how| {
                        format!(
                            "{node}: worker {}: its beat was due a keep-alive interval ({} µs) after {} at {:.3}s, and started at {:.3}s, {by} µs {how}",
                            plain(worker),
                            d.wait_max_us,
                            d.after,
                            d.earliest as f64 / 1e6,
                            at as f64 / 1e6,
                        )
                    });
                }
                c.late_only = false;
                c.due = c.rearm.then(|| due("its last beat's end", t, c.interval_us));
            }
            _ => {}
        }
    }
    verdicts.v
}

/// One worker's beats: its interval, what its last registration or beat allows the next, whether
/// that is judged for lateness alone (since a fence or a stop), and whether a beat's end starts
/// the chain again (not after a stop, a death or a deregistration).
struct Chain {
    interval_us: u64,
    due: Option<Due>,
    late_only: bool,
    rearm: bool,
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn registered(t_ms: u64) -> Ev {
        at(
            t_ms,
            PoolEvent::WorkerRegistered {
                worker: "w".into(),
                keepalive_interval_us: 500_000,
                shutdown_deadline_us: 750_000,
                took_us: 0,
            },
        )
    }

    fn beat(t_ms: u64, took_ms: u64) -> Ev {
        at(t_ms, PoolEvent::BeatEnded { worker: "w".into(), took_us: took_ms * 1000, confirmed: true })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&worker_beats_on_time(h, crate::steady_clocks(2_000)))
    }

    #[test]
    fn beats_a_keep_alive_interval_apart_pass_and_others_fire_p23() {
        assert_eq!(judge(&[registered(0), beat(505, 5), beat(1010, 5)]), []);
        // The first beat a TTL (1.5 s) after registering (MC85).
        assert_eq!(judge(&[registered(0), beat(1505, 5)]), [("P23", 1505)]);
        // A beat 100 ms after the last one ended: a storm.
        assert_eq!(judge(&[registered(0), beat(505, 5), beat(610, 5)]), [("P23", 610)]);
        // A fence before the beat was due ends the judging; the next beat's end starts it again.
        let fenced = |t| at(t, PoolEvent::Fenced { worker: "w".into(), running: 1 });
        assert_eq!(judge(&[registered(0), beat(505, 5), fenced(700), beat(1500, 5), beat(2005, 5)]), []);
        // A fence after the beat was due: the beat is judged at its end (MC85's shape).
        assert_eq!(judge(&[registered(0), fenced(1370), beat(1505, 5)]), [("P23", 1505)]);
        // ... unless it was in flight since before its deadline.
        assert_eq!(judge(&[registered(0), fenced(1370), beat(1505, 1005)]), []);
        // A stop asks for its stopping beat at once: not early, and the chain ends.
        let stop =
            at(600, PoolEvent::WorkerStopping { worker: "w".into(), running: 1, drain_ms: 1000, beat_bound_ms: 100 });
        assert_eq!(judge(&[registered(0), beat(505, 5), stop, beat(610, 5), beat(650, 5)]), []);
        // A crash forgets the worker.
        let crash = Ev(600_000, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[registered(0), crash, beat(1505, 5)]), []);
    }
}
