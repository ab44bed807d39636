//! P51: a record delivered again after its run ended starts that run again, judged at the job's
//! next delivery to the worker or at the end of the history.
//!
//! A worker tracks one run per job. Once a run's end (`run_ended`) has been sent to the
//! worker's loop, a later delivery of the job's record naming the worker at that same attempt
//! (`record_delivered`, `owner` = the worker: an ack that failed, so the record still names the
//! attempt and a sweep delivers it again) is news: the loop must take the run's end in first
//! and start the attempt again, whose run acks it (`acked`, or `stale_rejected` when the record
//! moved on meanwhile) or ends (`run_ended`). A loop that takes the record in before the end
//! already queued (blind-spot hunt, round 22, #25) takes it for a repeat of the run it still
//! tracks and ignores it; the job then waits out its pending deadline and a sweep's re-dispatch
//! at the next attempt, which P1 and P5 allow within their slack. So: after such a delivery,
//! some run event of that attempt on that worker (`acked`, `stale_rejected`, `run_ended`) comes
//! within [`REDELIVERY_STARTS_US`] of running time (frozen time not counted); judged at the job's next delivery to the worker, at the
//! worker's end, fence or drain (which end the judging: a closed worker starts nothing, P42),
//! and at the end of the history. The node's crash or restart ends the judging.

use std::collections::BTreeMap;

use keel::observe::{PoolEvent, StaleOp};

use crate::{Entry, Fact, Span, Violation, plain};

/// How long, at the end of a history, a delivery that must start a run may still be waiting.
pub const REDELIVERY_STARTS_US: u64 = 2_000_000;

/// A delivery that must start a run: its node, the attempt, when, and by when its run must show.
struct Owed<N> {
    node: N,
    attempt: u64,
    at: u64,
    due: u64,
}

/// P51 over keel's pool events: see the module's doc. The first 20 violations.
pub fn redeliveries_start_their_run<E: Entry>(
    events: &[E],
    end_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    // (worker, job) → (its node, the attempt of its last ended run)
    let mut ended: BTreeMap<(&str, &str), (E::Node, u64)> = BTreeMap::new();
    // (worker, job) → the newest attempt handed to the worker (delivered naming it, or acked)
    let mut handed: BTreeMap<(&str, &str), (E::Node, u64)> = BTreeMap::new();
    let mut owed: BTreeMap<(&str, &str), Owed<E::Node>> = BTreeMap::new();
    let mut v = Vec::new();
    let say = |v: &mut Vec<Violation>, t: u64, (w, j): (&str, &str), Owed { node, attempt, at, .. }: &Owed<E::Node>| {
        if v.len() < 20 {
            v.push(Violation::new(
                "P51",
                t,
                format!(
                    "{node}: worker {w} was delivered job {j}'s record again at {:.3}s, attempt {attempt} still its own, after that run ended, and started no run of it",
                    *at as f64 / 1e6
                ),
            ));
        }
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            ended.retain(|_, (n, _)| n != node);
            owed.retain(|_, o| &o.node != node);
            handed.retain(|_, (n, _)| n != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::RunEnded { job, worker, attempt }) => {
                let key = (plain(worker), plain(job));
                owed.remove(&key).filter(|o| o.attempt != *attempt).into_iter().for_each(|o| {
                    owed.insert(key, o);
                });
                ended.insert(key, (node.clone(), *attempt));
            }
            Some(
                PoolEvent::Acked { job, worker, attempt }
                | PoolEvent::StaleRejected { op: StaleOp::Ack, job, worker, attempt },
            ) => {
                let key = (plain(worker), plain(job));
                ended.remove(&key);
                let (_, newest) = handed.entry(key).or_insert((node.clone(), *attempt));
                *newest = (*newest).max(*attempt);
                if owed.get(&key).is_some_and(|o| o.attempt == *attempt) {
                    owed.remove(&key);
                }
            }
            Some(PoolEvent::RecordDelivered { job, worker, attempt, owner }) => {
                let key = (plain(worker), plain(job));
                if let Some(o) = owed.remove(&key) {
                    if t > o.due {
                        say(&mut v, t, key, &o);
                    } else {
                        owed.insert(key, o); // a run may still come (a stale delivery's start)
                    }
                }
                if plain(owner) == key.0 {
                    let (_, newest) = handed.entry(key).or_insert((node.clone(), *attempt));
                    // The worker was handed a newer attempt before this one's run ended: a late
                    // delivery of the older one is stale (poolfeed seed 2247: attempt 2
                    // delivered beside attempt 1's stop, then the dispatcher's own delivery of
                    // attempt 1 once its slow dispatch returned, after attempt 1's run ended).
                    let stale = *newest > *attempt;
                    *newest = (*newest).max(*attempt);
                    match ended.get(&key) {
                        _ if stale => {}
                        Some((_, a)) if a == attempt => {
                            let due = crate::reach(t, REDELIVERY_STARTS_US, &frozen(node));
                            owed.entry(key).or_insert(Owed { node: node.clone(), attempt: *attempt, at: t, due });
                        }
                        // The worker was handed a newer attempt: a late delivery of the ended
                        // one is stale, and ignoring it is right (poolloss seed 2811: attempt 1
                        // delivered again 4 ms after attempt 2, from a view read before the move).
                        Some((_, a)) if a < attempt => {
                            ended.remove(&key);
                        }
                        _ => {}
                    }
                }
            }
            Some(
                PoolEvent::WorkerStopping { worker, .. }
                | PoolEvent::Fenced { worker, .. }
                | PoolEvent::WorkerStopped { worker }
                | PoolEvent::WorkerDead { worker },
            ) => {
                let w = plain(worker);
                owed.retain(|(ow, oj), o| {
                    if *ow == w && t > o.due {
                        say(&mut v, t, (ow, oj), o);
                    }
                    *ow != w
                });
                ended.retain(|(ew, _), _| *ew != w);
                handed.retain(|(hw, _), _| *hw != w);
            }
            _ => {}
        }
    }
    for (key, o) in &owed {
        if o.due < end_us {
            say(&mut v, end_us, *key, o);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::E as Ev;

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn delivered(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::RecordDelivered { job: "j".into(), worker: "w".into(), attempt, owner: "w".into() })
    }

    fn ended(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::RunEnded { job: "j".into(), worker: "w".into(), attempt })
    }

    fn acked(t_ms: u64, attempt: u64) -> Ev {
        at(t_ms, PoolEvent::Acked { job: "j".into(), worker: "w".into(), attempt })
    }

    #[test]
    fn a_redelivery_after_its_run_ended_that_starts_nothing_fires_p51() {
        let judge = |h: &[Ev]| crate::test_entry::at_ms(&redeliveries_start_their_run(h, 10_000_000, |_| Vec::new()));
        // Delivered, run, ended; delivered again at the same attempt: acked again.
        assert_eq!(judge(&[delivered(10, 1), acked(11, 1), ended(20, 1), delivered(30, 1), acked(31, 1)]), []);
        // Ignored: the next delivery (attempt 2, after a re-dispatch) finds it owed.
        assert_eq!(judge(&[acked(11, 1), ended(20, 1), delivered(30, 1), delivered(2_900, 2)]), [("P51", 2_900)]);
        // A stale delivery followed at once by the record's end: its run still comes.
        assert_eq!(judge(&[acked(11, 1), ended(20, 1), delivered(30, 1), delivered(30, 0), acked(38, 1)]), []);
        // Ignored until the end of the history.
        assert_eq!(judge(&[acked(11, 1), ended(20, 1), delivered(30, 1)]), [("P51", 10_000)]);
        // Frozen from 40 ms to 3 s: the run that shows at 3.1 s is in time.
        let frozen = |_: &&str| vec![Span { start: 40_000, end: 3_000_000 }];
        let h = [
            acked(11, 1),
            ended(20, 1),
            delivered(30, 1),
            at(3_100, PoolEvent::Fenced { worker: "w".into(), running: 1 }),
        ];
        assert_eq!(crate::test_entry::at_ms(&redeliveries_start_their_run(&h, 10_000_000, frozen)), []);
        // A late delivery of the ended attempt after a newer one was handed over is stale.
        assert_eq!(judge(&[acked(11, 1), ended(20, 1), delivered(30, 2), delivered(34, 1), acked(35, 2)]), []);
        // The newer attempt handed over before the older run ended: the older one's late
        // delivery after its end is stale too (poolfeed seed 2247).
        let h = [delivered(10, 1), acked(11, 1), delivered(30, 2), acked(31, 2), ended(32, 1), delivered(40, 1)];
        assert_eq!(judge(&h), []);
        // A repeat while the run still goes owes nothing; nor does a delivery naming another owner.
        assert_eq!(judge(&[acked(11, 1), delivered(15, 1), ended(20, 1)]), []);
    }
}
