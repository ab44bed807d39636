//! P8, a worker's graceful drain judged at the instant: a worker that reported
//! `WorkerStopping` keeps its registration and a live keep-alive, and stops none of its runs,
//! until each run returned or the drain deadline (`drain_ms` of the worker's local time) passed.
//!
//! P1 and P2 cannot see a drain cut short: the jobs run again elsewhere (a cleanup or the orphan
//! scan requeues them), so nothing is lost and nothing overlaps. P8 sees the instant the drain
//! breaks, three ways:
//! - the worker finds itself dead (`WorkerDead`) with runs going, although no cleaner took it:
//!   its keep-alive or registration went while it drained (MC25, a deregistration when the
//!   drain begins);
//! - a run of the draining worker returns asked to stop (`HandlerReturned` with `stopped`)
//!   before the deadline: a drain that returns before its runs (a handler that fails or
//!   completes by itself is not judged: that is the user's code, not the drain);
//! - a job the draining worker runs is moved off it by anyone but its own hand-back: a sweep
//!   that takes a stopping worker's jobs while its keep-alive is live.
//!
//! Excused: the worker's own fence (its keep-alive beat went unconfirmed: under a partition or a
//! pause it may cut its runs; a cleaner may take a worker only after its keep-alive went stale at
//! the store, which P7 holds to be after the worker's fence), its node frozen since the drain
//! began (a paused worker may hear its refused beat before its fence), the store's data loss
//! during the drain, or before it with no keep-alive of the worker applied since,
//! its node's crash (the drain ends there), a run superseded by a record change (a move of its
//! job to a newer attempt, which stops the run whenever it is reported), a clock out of its
//! drift bound, and a cleanup that judged the worker stale (`CleanupFenced`, at the store time
//! of its re-judge) before the drain began: P3's mirror holds that judgement to the store. A cleanup lock of the worker is no excuse: a keep-alive deleted mid-drain makes a
//! half-deleted worker, which the sweep cleans at once (MC25). The deadline is counted in the
//! worker's local time, from the node's clock faults (rate and forward jumps).

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::{MoveKind, PoolEvent};

use super::RunView;
use crate::check::{Span, Violation};
use crate::history::{ServerEv, Who, WorldEv, plain};

/// Local time may be judged this much early: the rate's float rounding and whole µs.
const SLACK_US: f64 = 1_000.0;

/// A node's local clock as the checker reconstructs it from the clock faults recorded.
#[derive(Clone, Copy)]
struct Local {
    anchor_t: u64,
    anchor_local: f64,
    rate: f64,
}

impl Local {
    fn at(&self, t: u64) -> f64 {
        self.anchor_local + (t.saturating_sub(self.anchor_t)) as f64 * self.rate
    }
    fn rebase(&mut self, t: u64, rate: f64) {
        *self = Local { anchor_t: t, anchor_local: self.at(t), rate };
    }
}

/// A drain in progress.
struct Drain {
    node: Who,
    t0: u64,
    local0: f64,
    drain_us: f64,
    /// Why the drain may be cut (its own fence, a cleaner, data loss), if it may.
    excused: bool,
}

/// A run: (job, attempt).
type Run<'a> = (&'a str, u64);

/// P8 (see the module doc).
pub fn pool_drain(run: &RunView<'_>) -> Vec<Violation> {
    let events = run.events;
    let drift = super::drift::out_of_bound(events, run.end_us);
    // Runs superseded by a record change (a move to a newer attempt, other than a hand-back):
    // their stop may come at any time, whenever the move is reported.
    let mut superseded: BTreeSet<Run<'_>> = BTreeSet::new();
    for e in events {
        if let Some(PoolEvent::Moved { kind, job, attempt, .. }) = e.pool()
            && *kind != MoveKind::HandedBack
        {
            superseded.insert((plain(job), attempt.saturating_sub(1)));
        }
    }
    let mut clocks: BTreeMap<Who, Local> = BTreeMap::new();
    let mut drains: BTreeMap<&str, Drain> = BTreeMap::new();
    // worker → the global instant of the earliest cleanup re-judge that found it stale (the
    // store time of that read): a worker stale before its drain began is no longer the drain's
    // to keep (pool seed 2441: a clock stall delayed its beats, the cleanup judged it stale at
    // 15.305 s, its node's stop began the drain at 15.328 s).
    let store_clock = super::StoreClock::of(events);
    let mut judged_stale: BTreeMap<&str, u64> = BTreeMap::new();
    // The latest store crash that lost the data, and each worker's latest keep-alive applied at
    // the store: a worker that has not beaten since the loss begins its drain with its
    // keep-alive already gone (poolloss seed 2173: the store came back empty 350 ms before the
    // node's stop, and the drain's first beat found the worker dead).
    let mut data_lost_at: Option<u64> = None;
    let mut beat_at: BTreeMap<&str, u64> = BTreeMap::new();
    // worker → its runs going: (job, attempt) → node.
    let mut open: BTreeMap<&str, BTreeMap<Run<'_>, Who>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let t = e.t_us;
        let clock = clocks.entry(e.node).or_insert(Local { anchor_t: t, anchor_local: t as f64, rate: 1.0 });
        match e.world() {
            Some(WorldEv::ClockRate { rate_ppm, .. }) => clock.rebase(t, *rate_ppm as f64 / 1e6),
            Some(WorldEv::ClockJump { delta_ms, .. }) if *delta_ms > 0 => {
                clock.anchor_local += (*delta_ms as f64) * 1000.0;
            }
            Some(WorldEv::Heal {}) => clocks.values_mut().for_each(|c| c.rebase(t, 1.0)),
            Some(WorldEv::StoreCrash { data_loss: true }) => data_lost_at = Some(t),
            Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) => {
                drains.retain(|_, d| d.node != e.node);
                open.values_mut().for_each(|r| r.retain(|_, n| *n != e.node));
            }
            _ => {}
        }
        if let Some(ServerEv::KeepaliveWritten { worker, value: Some(v), .. }) = e.server()
            && keel::pool::decode::keepalive(v).is_some()
        {
            beat_at.insert(worker, t); // a beat, not a cleaner's dead marker
        }
        let Some(p) = e.pool() else { continue };
        // Whether a drain is broken at `t`: its deadline not yet passed in its local time,
        // nothing excusing it, its node neither frozen nor its clock out of the drift bound
        // since the drain began.
        let broken = |d: &Drain| -> Option<(f64, f64)> {
            let local = clocks.get(&d.node).map_or(t as f64, |c| c.at(t)) - d.local0;
            let since = Span { start: d.t0, end: t + 1 };
            let disturbed = drift
                .get(&d.node)
                .into_iter()
                .flatten()
                .copied()
                .chain(run.timeline.frozen(d.node))
                .any(|s| s.overlap(&since).is_some());
            (!d.excused && !disturbed && local + SLACK_US < d.drain_us).then_some((local / 1000.0, d.drain_us / 1000.0))
        };
        match p {
            PoolEvent::Started { job, worker, attempt } => {
                open.entry(plain(worker)).or_default().insert((plain(job), *attempt), e.node);
            }
            PoolEvent::WorkerStopping { worker, drain_ms, .. } => {
                let local0 = clocks.get(&e.node).map_or(t as f64, |c| c.at(t));
                let lost_before = data_lost_at.is_some_and(|l| beat_at.get(plain(worker)).is_none_or(|&b| b < l));
                let excused = lost_before || judged_stale.get(plain(worker)).is_some_and(|&at| at <= t);
                let drain = Drain { node: e.node, t0: t, local0, drain_us: *drain_ms as f64 * 1000.0, excused };
                drains.insert(plain(worker), drain);
            }
            PoolEvent::CleanupFenced { worker, now_ms, .. } => {
                let Some(clock) = store_clock else { continue };
                let at = clock.global_us(*now_ms);
                let first = judged_stale.entry(plain(worker)).or_insert(at);
                *first = (*first).min(at);
                if let Some(d) = drains.get_mut(plain(worker)).filter(|d| at <= d.t0) {
                    d.excused = true;
                }
            }
            PoolEvent::Fenced { worker, .. } => {
                if let Some(d) = drains.get_mut(plain(worker)) {
                    d.excused = true;
                }
            }
            PoolEvent::DataLoss { .. } => drains.values_mut().for_each(|d| d.excused = true),
            PoolEvent::WorkerDead { worker } => {
                let w = plain(worker);
                let going = open.get(w).and_then(|r| r.keys().next());
                if let (Some(d), Some((job, attempt))) = (drains.remove(w), going)
                    && let Some((at, of)) = broken(&d)
                {
                    v.push(Violation::new(
                        "P8",
                        t,
                        format!(
                            "{w} ({}) found itself dead {at:.0} ms into its {of:.0} ms drain with {job}#{attempt} going, unfenced: its keep-alive or registration was lost mid-drain",
                            d.node
                        ),
                    ));
                }
            }
            PoolEvent::HandlerReturned { job, worker, attempt, stopped, .. } => {
                let (w, run) = (plain(worker), (plain(job), *attempt));
                open.entry(w).or_default().remove(&run);
                if *stopped
                    && !superseded.contains(&run)
                    && let Some(d) = drains.get(w)
                    && let Some((at, of)) = broken(d)
                {
                    v.push(Violation::new(
                        "P8",
                        t,
                        format!("{w} ({}) stopped {job}#{attempt} {at:.0} ms into its {of:.0} ms drain", d.node),
                    ));
                    drains.remove(w);
                }
            }
            PoolEvent::Moved { kind, job, from, attempt, .. } if *kind != MoveKind::HandedBack => {
                let w = plain(from);
                let run = (plain(job), attempt.saturating_sub(1));
                if open.get(w).is_some_and(|r| r.contains_key(&run))
                    && let Some(d) = drains.get(w)
                    && let Some((at, of)) = broken(d)
                {
                    v.push(Violation::new(
                        "P8",
                        t,
                        format!(
                            "{job} moved off {w} ({}, {kind}) {at:.0} ms into {w}'s {of:.0} ms drain, while {w} ran it",
                            d.node
                        ),
                    ));
                    drains.remove(w);
                }
            }
            PoolEvent::WorkerStopped { worker } | PoolEvent::WorkerDied { worker, .. } => {
                drains.remove(plain(worker));
            }
            _ => {}
        }
    }
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Event;
    use crate::scenario::test_history::{at, handler_returned, judge, pool, worker_draining};

    fn p8(events: &[Event]) -> Vec<Violation> {
        judge(events, 0, 10_000_000, pool_drain)
    }

    /// Worker w runs j#1 from 100 ms and starts a 750 ms drain at 1 000 ms.
    fn draining() -> Vec<Event> {
        worker_draining()
    }

    fn dead(t_ms: u64) -> Event {
        pool(t_ms, PoolEvent::WorkerDead { worker: "w".into() })
    }

    fn returned(t_ms: u64, completed: bool, stopped: bool) -> Event {
        handler_returned(t_ms, completed, stopped)
    }

    fn stopped(t_ms: u64) -> Event {
        returned(t_ms, false, true)
    }

    fn with(extra: impl IntoIterator<Item = Event>) -> Vec<Violation> {
        let mut h = draining();
        h.extend(extra);
        p8(&h)
    }

    #[test]
    fn a_drain_cut_short_fires_p8_at_the_instant() {
        // Found dead 20 ms in, unfenced, its run going (MC25).
        let v = with([dead(1_020), stopped(1_020)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("P8", 1_020_000));
        assert!(v[0].detail.contains("dead 20 ms into its 750 ms drain with j#1 going"), "{}", v[0].detail);
        // A run stopped before the deadline: a drain that returns before its runs.
        let v = with([stopped(1_300)]);
        assert_eq!((v.len(), v[0].t_us), (1, 1_300_000), "{v:?}");
        assert!(v[0].detail.contains("stopped j#1 300 ms into its 750 ms drain"), "{}", v[0].detail);
        // Asked to stop and completing all the same: the stop was still asked too early.
        assert_eq!(with([returned(1_300, true, true)]).len(), 1);
        // Its job moved off it (not a hand-back) while it ran it.
        let moved = |kind| {
            // A cleanup's move names the worker cleaned; a hand-back names none.
            let cleaned = if matches!(kind, MoveKind::HandedBack) { "" } else { "w" };
            let (job, from, worker, cleaned) = ("j".into(), "w".into(), "x".into(), cleaned.into());
            pool(1_200, PoolEvent::Moved { kind, job, from, worker, cleaned, attempt: 2, now_ms: 0 })
        };
        let v = with([moved(MoveKind::OrphanRequeued)]);
        assert_eq!((v.len(), v[0].t_us), (1, 1_200_000), "{v:?}");
        assert!(v[0].detail.contains("j moved off w"), "{}", v[0].detail);
        assert!(with([moved(MoveKind::HandedBack)]).is_empty());
    }

    #[test]
    fn a_drain_that_ends_by_the_rules_is_silent() {
        // Its run returned by itself, or was stopped at the deadline (or later); then stopped.
        let done = returned(1_100, true, false);
        assert!(with([done, pool(1_110, PoolEvent::WorkerStopped { worker: "w".into() })]).is_empty());
        assert!(with([stopped(1_750), pool(1_760, PoolEvent::WorkerStopped { worker: "w".into() })]).is_empty());
        // Found dead with nothing running.
        let done = returned(1_100, true, false);
        assert!(with([done, dead(1_200)]).is_empty());
        // A handler that failed by itself, unasked: the user's code, not the drain.
        assert!(with([returned(1_300, false, false)]).is_empty());
        // Its own fence first (a beat unconfirmed under a partition), then dead.
        assert!(
            with([pool(1_300, PoolEvent::Fenced { worker: "w".into(), running: 1 }), stopped(1_300), dead(1_400)])
                .is_empty()
        );
        // Its node frozen during the drain: the refused beat may be heard before the fence.
        let pause = [at(1_050, Who::Node(0), WorldEv::NodePause {}), at(1_500, Who::Node(0), WorldEv::NodeResume {})];
        assert!(with(pause.into_iter().chain([dead(1_500)])).is_empty());
        // Its node crashed: the drain ends there.
        assert!(with([at(1_100, Who::Node(0), WorldEv::NodeCrash {}), dead(1_200)]).is_empty());
        // The store lost its data.
        let loss =
            pool(1_100, PoolEvent::DataLoss { pool: "p".into(), old_epoch: "1".into(), new_epoch: None, took_us: 0 });
        assert!(with([loss, dead(1_200)]).is_empty());
        // A run superseded by a move of its job (reported late), stopped mid-drain.
        let moved = pool(
            1_400,
            PoolEvent::Moved {
                kind: MoveKind::Redispatched,
                job: "j".into(),
                from: "w".into(),
                worker: "x".into(),
                cleaned: "".into(),
                attempt: 2,
                now_ms: 0,
            },
        );
        let mut h = draining();
        h.insert(2, moved);
        h.push(stopped(1_300));
        assert!(p8(&h).is_empty(), "{:?}", p8(&h));
    }

    /// A cleanup that judged the worker stale before its drain began (its re-judge's store time)
    /// may move its jobs mid-drain; one that judged it after the drain began may not.
    #[test]
    fn a_worker_judged_stale_before_its_drain_is_not_the_drains_to_keep() {
        use crate::history::ServerEv;
        let up = at(0, Who::Store, ServerEv::StoreUp { now_ms: 0 });
        let fenced = |t_ms, now_ms| {
            pool(t_ms, PoolEvent::CleanupFenced { worker: "w".into(), keepalive: Some("1|1500".into()), now_ms })
        };
        let moved = pool(
            1_200,
            PoolEvent::Moved {
                kind: MoveKind::Requeued,
                job: "j".into(),
                from: "w".into(),
                worker: "x".into(),
                cleaned: "w".into(),
                attempt: 2,
                now_ms: 1_195,
            },
        );
        let judged = |before_drain: bool| {
            let mut h = vec![up.clone()];
            h.extend(draining());
            let (t, now_ms) = if before_drain { (995, 990) } else { (1_015, 1_010) };
            let at_ = h.iter().position(|e| e.t_us > t * 1000).unwrap_or(h.len());
            h.insert(at_, fenced(t, now_ms));
            h.push(moved.clone());
            p8(&h)
        };
        assert!(judged(true).is_empty(), "{:?}", judged(true));
        assert_eq!(judged(false).len(), 1, "judged stale after the drain began: the drain's to keep");
    }

    #[test]
    fn the_deadline_is_counted_in_the_workers_local_time() {
        // A clock at 1.08 reaches the 750 ms deadline 695 ms (global) into the drain.
        let fast = |t_ms| at(t_ms, Who::Node(0), WorldEv::ClockRate { rate_ppm: 1_080_000, beyond: false });
        assert!(with([fast(1_000), stopped(1_700)]).is_empty());
        assert_eq!(with([fast(1_000), stopped(1_690)]).len(), 1);
        // A forward jump of 500 ms moves it 500 ms earlier.
        let jump = at(1_100, Who::Node(0), WorldEv::ClockJump { delta_ms: 500 });
        assert!(with([jump.clone(), stopped(1_260)]).is_empty());
        assert_eq!(with([jump, stopped(1_240)]).len(), 1);
        // A clock out of its drift bound excuses the drain.
        let beyond = at(1_010, Who::Node(0), WorldEv::ClockRate { rate_ppm: 500_000, beyond: true });
        assert!(with([beyond, dead(1_020)]).is_empty());
    }
}
