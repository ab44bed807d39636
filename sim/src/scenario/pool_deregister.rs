//! **P57**: a worker's graceful stop hands back every job it held before it deregisters, judged
//! at the store as the deregistration applies.
//!
//! **P106** in the same place: a deregistration that reports no error leaves no keep-alive of the
//! worker's own in the store, judged at its `worker_deregistered`. The worker deletes its
//! keep-alive compared against the last value it saw land, or against a beat of its own whose
//! reply was lost (the store holds it: the stopping beat, typically); a refusal is final only when
//! the store holds a value the worker did not write (a cleaner's dead marker, or nothing). A
//! deregistration that takes any refusal as final (keel before 2026-12-07, MC457) deletes the
//! registration and leaves the keep-alive, marked stopping, for a cleaner to take a worker TTL
//! later: the store's last applied write to the key, as the deregistration reports, is then a
//! keep-alive value, which only the worker itself writes. A store crash or rollback since forgets
//! what the key holds (its restored value came with no write).
//!
//! A stopping worker drains its runs, stops what is left, hands back every job it owns (each
//! moved to another worker, or queued), and only then deletes its keep-alive and registration.
//! From that delete on, the jobs still naming it are orphans: they wait for a cleanup's orphan
//! scan, a sweep or more later, and a cleaner's requeue of them may race a hand-back still
//! going. Two hunt bugs (round 26, A #12: the machine deregisters before its hand-back; A #4: a
//! hand-back that gives up at its first failed move) left jobs on a deregistered worker, and
//! nothing judged it: P1 sees only that they finish later.
//!
//! The store node, as it applies a delete of worker w's keep-alive from a live value (not the
//! dead marker a cleanup writes: a cleanup's delete is P18's), lists the job records naming w
//! (`deregistered_with_jobs`). Each listed attempt that w was given (`dispatched`, `moved`)
//! before its `worker_stopping` must have been handed back: its record cannot still name w,
//! unless w reported the hand-back of that job failed (`hand_back_failed`; with an empty job:
//! it could not read its jobs at all). Attempts given to w after its stop began are a race
//! with dispatchers that had not yet seen it stopping, and are not judged. A store crash that
//! loses data forgets what the worker was given.

use std::collections::{BTreeMap, BTreeSet};

use keel::MemoryStore;
use keel::observe::PoolEvent;
use keel::pool::decode::DEAD_MARKER as DEAD;
use keel::store::Store;

use super::pool_owners::record_owner;
use crate::check::Violation;
use crate::history::{Event, History, ServerEv, Who, WorldEv, plain};

/// A write to keep-alive map `map` of `worker` applied, changing it from `before` to `value`:
/// at a delete of a live value, record the job records still naming the worker.
pub async fn keepalive_written(
    store: &MemoryStore,
    (map, worker): (&str, &str),
    (before, value): (Option<&str>, Option<&str>),
    history: &History,
    by: Who,
) {
    let (Some(before), None) = (before, value) else { return };
    if before == DEAD {
        return; // a cleanup's delete (P18)
    }
    let Some(jobs) = map.strip_suffix(":keepalive").map(|p| format!("{p}:jobs")) else { return };
    // In place and at once: nothing runs between the delete's apply and this read.
    let Ok(snap) = store.map_snapshot(&jobs).await else { return };
    let mut named = Vec::new();
    let mut attempts = Vec::new();
    for (k, v) in &snap.entries {
        let (Some(job), Some((attempt, owner))) = (k.strip_prefix("j/"), record_owner(v)) else { continue };
        if owner == worker {
            named.push(job.to_owned());
            attempts.push(attempt.parse().unwrap_or(u64::MAX));
        }
    }
    if !named.is_empty() {
        history.record(Who::Store, ServerEv::DeregisteredWithJobs { worker: worker.into(), jobs: named, attempts, by });
    }
}

/// P57 over a run's events. The first 20 violations.
pub fn stops_hand_back_before_deregistering(events: &[Event]) -> Vec<Violation> {
    // (job, attempt, worker) → when it was given to the worker
    let mut given: BTreeMap<(&str, u64, &str), u64> = BTreeMap::new();
    // worker → when its stop began
    let mut stops: BTreeMap<&str, u64> = BTreeMap::new();
    // (worker, job) whose hand-back failed ("" : every job of the worker)
    let mut failed: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::StoreCrash { data_loss: true }) = e.world() {
            given.clear();
            continue;
        }
        if let Some(ServerEv::DeregisteredWithJobs { worker, jobs, attempts, by }) = e.server() {
            let Some(&stop_us) = stops.get(worker.as_str()) else { continue };
            if failed.contains(&(worker.as_str(), "")) {
                continue;
            }
            for (job, attempt) in jobs.iter().zip(attempts) {
                let before_stop = given.get(&(job.as_str(), *attempt, worker.as_str())).is_some_and(|t| *t < stop_us);
                if before_stop && !failed.contains(&(worker.as_str(), job.as_str())) && v.len() < 20 {
                    v.push(Violation::new(
                        "P57",
                        e.t_us,
                        format!(
                            "{by} deregistered {worker} while its record of {job} (attempt {attempt}, given to it before its stop at {:.3}s) still named it, with no failed hand-back reported: the job waits for an orphan scan",
                            stop_us as f64 / 1e6
                        ),
                    ));
                }
            }
            continue;
        }
        match e.pool() {
            Some(
                PoolEvent::Dispatched { job, worker, attempt, .. } | PoolEvent::Moved { job, worker, attempt, .. },
            ) => {
                given.insert((plain(job), *attempt, plain(worker)), e.t_us);
            }
            Some(PoolEvent::WorkerStopping { worker, .. }) => {
                stops.entry(plain(worker)).or_insert(e.t_us);
            }
            Some(PoolEvent::HandBackFailed { worker, job, .. }) => {
                failed.insert((plain(worker), plain(job)));
            }
            _ => {}
        }
    }
    v
}

/// **P96**: a worker that reports its graceful stop (`worker_stopped`: "stopped and
/// deregistered") had its keep-alive deleted at the store since its stop began, judged at each
/// `worker_stopped` at which the store holds a live keep-alive of the worker (one a cleanup
/// deleted or fenced while the worker was fenced is not its to delete: poolfeed seed 267). The
/// stop ends with a compare-and-delete of the keep-alive the worker wrote
/// last; a worker that never deletes it (hunt 46 A: `Worker::deregister` replaced by a no-op
/// survived, MC444) leaves its keep-alive, marked stopping, and its registration for a cleaner
/// to judge stale a TTL later, and no rule said a graceful stop deletes its own state. A delete
/// counts if the store applied it over a live value (not over the dead marker: that is a
/// cleanup's) between the worker's `worker_stopping` and its `worker_stopped`; a cleaner's fence
/// in between excuses it (the compare-and-delete is then refused), and so does any disturbance
/// (`disturbed`: faults that can cut or hold a call, a clock off its rate) from `margin_us`
/// before the stop began to its end, and any reply a fault dropped, held or slowed to the
/// worker's node: the delete's call may have failed, and the worker leaves it to the cleanup.
pub fn graceful_stops_delete_their_keepalive(
    events: &[Event],
    disturbed: &[keel_checks::Span],
    margin_us: u64,
) -> Vec<Violation> {
    // worker → the keep-alive value the store applied last (forgotten by a data loss)
    let mut last: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    // worker → when the store deleted its live keep-alive, and when it wrote the dead marker
    let mut deletes: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut fences: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut stopping: BTreeMap<&str, u64> = BTreeMap::new();
    let mut stopped: Vec<(&str, u64, Who)> = Vec::new();
    // node → when a fault dropped, held or slowed a reply to it, or refused its call
    let mut hit: BTreeMap<Who, Vec<u64>> = BTreeMap::new();
    let mut latency_from: Option<u64> = None;
    let mut extra: Vec<keel_checks::Span> = Vec::new();
    for e in events {
        match e.world() {
            Some(WorldEv::StoreCrash { data_loss: true }) => last.clear(),
            Some(WorldEv::NetworkLatency { .. }) => latency_from = latency_from.or(Some(e.t_us)),
            Some(WorldEv::NetworkLatencyEnded { .. }) => {
                if let Some(start) = latency_from.take() {
                    extra.push(keel_checks::Span { start, end: e.t_us + 1 });
                }
            }
            _ => {}
        }
        match e.server() {
            Some(ServerEv::KeepaliveWritten { worker, value, .. }) => {
                let before = last.insert(worker.as_str(), value.as_deref()).flatten();
                match value.as_deref() {
                    None if before != Some(DEAD) => deletes.entry(worker.as_str()).or_default().push(e.t_us),
                    Some(DEAD) => fences.entry(worker.as_str()).or_default().push(e.t_us),
                    _ => {}
                }
            }
            Some(
                ServerEv::ReplyDropped { to, .. }
                | ServerEv::Held { to, .. }
                | ServerEv::Slowed { to, .. }
                | ServerEv::FaultRefused { to, .. }
                | ServerEv::HoldShort { to, .. },
            ) => hit.entry(*to).or_default().push(e.t_us),
            _ => {}
        }
        match e.pool() {
            Some(PoolEvent::WorkerStopping { worker, .. }) => {
                stopping.entry(plain(worker)).or_insert(e.t_us);
            }
            Some(PoolEvent::WorkerStopped { worker }) => {
                // Judged only if the store holds a live keep-alive of the worker as it reports
                // its stop: one a cleanup deleted (or fenced) before is not the worker's to delete.
                let live = last.get(plain(worker)).copied().flatten().is_some_and(|v| v != DEAD);
                if live {
                    stopped.push((plain(worker), e.t_us, e.node));
                }
            }
            _ => {}
        }
    }
    if let Some(start) = latency_from {
        extra.push(keel_checks::Span { start, end: u64::MAX });
    }
    let within =
        |ts: Option<&Vec<u64>>, from: u64, to: u64| ts.is_some_and(|ts| ts.iter().any(|t| (from..=to).contains(t)));
    let mut v = Vec::new();
    for (worker, t, node) in stopped {
        let Some(&from) = stopping.get(worker) else { continue };
        let window = keel_checks::Span { start: from.saturating_sub(margin_us), end: t + 1 };
        if disturbed.iter().chain(&extra).any(|d| d.overlap(&window).is_some())
            || within(hit.get(&node), window.start, t)
            || within(fences.get(worker), from, t)
            || within(deletes.get(worker), from, t)
        {
            continue;
        }
        if v.len() < 20 {
            let what = format!(
                "{node}: {worker} reported its graceful stop (worker_stopped) while the store still held its keep-alive: no delete since its stop began at {:.3}s, no fence, no fault in between",
                from as f64 / 1e6
            );
            v.push(Violation::new("P96", t, what));
        }
    }
    v
}

/// P106 over a run's events: see the module's doc. The first 20 violations.
pub fn deregistrations_leave_no_keepalive(events: &[Event]) -> Vec<Violation> {
    // worker → the value the store's last applied write to its keep-alive left (None: deleted)
    let mut held: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::StoreCrash { .. } | WorldEv::StoreRestart {}) = e.world() {
            held.clear();
            continue;
        }
        if let Some(ServerEv::KeepaliveWritten { worker, value, .. }) = e.server() {
            held.insert(worker.as_str(), value.as_deref());
            continue;
        }
        let Some(PoolEvent::WorkerDeregistered { worker, error: None, .. }) = e.pool() else { continue };
        let Some(Some(value)) = held.get(plain(worker)) else { continue };
        if keel::pool::decode::keepalive(value).is_some() && v.len() < 20 {
            v.push(Violation::new(
                "P106",
                e.t_us,
                format!(
                    "{}: worker {} reported its deregistration done while the store still held its own keep-alive {value:?}: a cleaner will take a worker that stopped cleanly for dead",
                    e.node,
                    plain(worker)
                ),
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_history::{at, pool};
    use keel::observe::MoveKind;

    fn dispatched(t_ms: u64, job: &str) -> Event {
        pool(t_ms, PoolEvent::Dispatched { job: job.into(), worker: "w".into(), attempt: 1, now_ms: t_ms })
    }

    fn stopping(t_ms: u64) -> Event {
        pool(t_ms, PoolEvent::WorkerStopping { worker: "w".into(), running: 1, drain_ms: 500, beat_bound_ms: 40 })
    }

    fn deregistered(t_ms: u64, jobs: &[&str]) -> Event {
        let ev = ServerEv::DeregisteredWithJobs {
            worker: "w".into(),
            jobs: jobs.iter().map(|j| (*j).to_owned()).collect(),
            attempts: vec![1; jobs.len()],
            by: Who::Node(1),
        };
        at(t_ms, Who::Store, ev)
    }

    #[test]
    fn a_job_held_before_the_stop_and_still_named_at_the_deregistration_breaks_p57() {
        let events = vec![dispatched(10, "a"), dispatched(20, "b"), stopping(100), deregistered(700, &["a", "b"])];
        let v = stops_hand_back_before_deregistering(&events);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|v| v.invariant == "P57"));
    }

    #[test]
    fn a_reported_failure_or_a_job_given_after_the_stop_is_excused() {
        let failed =
            pool(600, PoolEvent::HandBackFailed { worker: "w".into(), job: "a".into(), error: "timeout".into() });
        let events =
            vec![dispatched(10, "a"), stopping(100), dispatched(150, "b"), failed, deregistered(700, &["a", "b"])];
        assert!(stops_hand_back_before_deregistering(&events).is_empty());
        let all = pool(600, PoolEvent::HandBackFailed { worker: "w".into(), job: "".into(), error: "timeout".into() });
        let events = vec![dispatched(10, "a"), stopping(100), all, deregistered(700, &["a"])];
        assert!(stops_hand_back_before_deregistering(&events).is_empty());
    }

    fn keepalive(t_ms: u64, value: Option<&str>) -> Event {
        let ev = ServerEv::KeepaliveWritten { worker: "w".into(), value: value.map(str::to_owned), now_ms: t_ms };
        at(t_ms, Who::Store, ev)
    }

    fn worker_stopped(t_ms: u64) -> Event {
        pool(t_ms, PoolEvent::WorkerStopped { worker: "w".into() })
    }

    /// P96: a graceful stop with no delete of its keep-alive fires; a delete over a live value,
    /// a fence, or a fault in its window excuses it; a cleanup's delete over the dead marker
    /// after the stop does not.
    #[test]
    fn a_graceful_stop_that_leaves_its_keepalive_fires_p96() {
        let p96 = |events: &[Event], disturbed: &[keel_checks::Span]| {
            graceful_stops_delete_their_keepalive(events, disturbed, 100_000)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        let stopped = worker_stopped(700);
        let base = [keepalive(10, Some("10|1500")), stopping(100), keepalive(110, Some("110|1500|s"))];
        let mut left = base.to_vec();
        left.extend([stopped.clone(), keepalive(3_000, Some(DEAD)), keepalive(3_100, None)]);
        assert_eq!(p96(&left, &[]), [("P96", 700_000)], "a cleanup's delete after the stop");
        let mut deleted = base.to_vec();
        deleted.extend([keepalive(650, None), stopped.clone()]);
        assert_eq!(p96(&deleted, &[]), []);
        let mut fenced = base.to_vec();
        fenced.extend([keepalive(600, Some(DEAD)), stopped.clone()]);
        assert_eq!(p96(&fenced, &[]), []);
        assert_eq!(p96(&left, &[keel_checks::Span { start: 50_000, end: 60_000 }]), [], "a fault in the margin");
        assert_eq!(
            p96(&left, &[keel_checks::Span { start: 800_000, end: 900_000 }]),
            [("P96", 700_000)],
            "a fault after"
        );
        let mut dropped = base.to_vec();
        dropped.extend([at(650, Who::Store, ServerEv::ReplyDropped { to: Who::Node(0), applied: false }), stopped]);
        assert_eq!(p96(&dropped, &[]), [], "a reply to the node dropped");
        let cleaned = [
            keepalive(10, Some("10|1500")),
            keepalive(50, Some(DEAD)),
            keepalive(60, None),
            stopping(100),
            worker_stopped(700),
        ];
        assert_eq!(p96(&cleaned, &[]), [], "cleaned up while fenced, before its stop (poolfeed seed 267)");
    }

    fn written(t_ms: u64, value: Option<&str>) -> Event {
        at(
            t_ms,
            Who::Store,
            ServerEv::KeepaliveWritten { worker: "w".into(), value: value.map(str::to_owned), now_ms: t_ms },
        )
    }

    fn dereg(t_ms: u64) -> Event {
        pool(t_ms, PoolEvent::WorkerDeregistered { worker: "w".into(), error: None, took_us: 900 })
    }

    const KA: &str = "100|1000|stopping";

    #[test]
    fn a_deregistration_that_leaves_the_workers_keepalive_breaks_p106() {
        assert!(keel::pool::decode::keepalive(KA).is_some(), "the test's value is a keep-alive");
        let v = deregistrations_leave_no_keepalive(&[written(100, Some(KA)), dereg(200)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].invariant, "P106");
    }

    #[test]
    fn a_deleted_or_fenced_keepalive_a_failed_call_or_a_crash_passes() {
        assert!(
            deregistrations_leave_no_keepalive(&[written(100, Some(KA)), written(150, None), dereg(200)]).is_empty()
        );
        assert!(
            deregistrations_leave_no_keepalive(&[written(100, Some(KA)), written(150, Some(DEAD)), dereg(200)])
                .is_empty()
        );
        let failed = pool(
            200,
            PoolEvent::WorkerDeregistered { worker: "w".into(), error: Some("timeout".into()), took_us: 900 },
        );
        assert!(deregistrations_leave_no_keepalive(&[written(100, Some(KA)), failed]).is_empty());
        let crash = at(150, Who::World, WorldEv::StoreCrash { data_loss: false });
        assert!(deregistrations_leave_no_keepalive(&[written(100, Some(KA)), crash, dereg(200)]).is_empty());
    }

    #[test]
    fn a_data_loss_forgets_what_was_given() {
        let moved = pool(
            10,
            PoolEvent::Moved {
                kind: MoveKind::Requeued,
                job: "a".into(),
                from: "x".into(),
                worker: "w".into(),
                attempt: 1,
                now_ms: 10,
                cleaned: "x".into(),
            },
        );
        let crash = at(50, Who::World, WorldEv::StoreCrash { data_loss: true });
        let events = vec![moved, crash, stopping(100), deregistered(700, &["a"])];
        assert!(stops_hand_back_before_deregistering(&events).is_empty());
    }
}
