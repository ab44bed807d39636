//! V14's other side: a full batch is written at once, judged at its write.
//!
//! A completer run writes as soon as `batch_size` completions are queued (`completer_started`
//! carries the figure); only a partial batch waits for the flush tick (V14). Each `accepted`
//! says how many completions wait for a write (`queued`) and how many are accepted in all
//! (`backlog`: queued plus a batch in flight, which holds its room until it is written and its
//! events handed on). So once an acceptance leaves a full batch queued with nothing in flight
//! (`backlog` = `queued`), the run is idle between writes and its next write must start within
//! the slack; that write's outcome (`batch_flushed`, whose `took_us` runs from its first
//! attempt, or `flush_failed`) less its duration at the slowest clock is the earliest it can
//! have started. One that holds a full batch to the tick (MC86: `>` for `>=`) adds a flush
//! interval of latency to every full batch. Not judged from a stop request on (the drain writes
//! at once: V13); a node's crash or restart ends its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::rules::reach;
use crate::{Entry, Fact, Span, Violation, plain};

/// V14 (full batches) over keel's completer events: see the module's doc. `slowest` is the
/// slowest rate of a node's clock the history allows, `slack_us` of running time is allowed,
/// `frozen` gives a node's frozen spans. The first 20 violations.
pub fn completer_full_batches_write_at_once<E: Entry>(
    events: &[E],
    slowest: f64,
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    let stretch = |us: u64| (us as f64 / slowest.clamp(0.01, 1.0)) as u64;
    let mut runs: BTreeMap<(E::Node, &str, u64), Run> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        match e.completer() {
            Some(C::CompleterStarted { completer, run, batch_size, .. }) => {
                runs.insert(
                    (node.clone(), plain(completer), *run),
                    Run { batch_size: *batch_size, stopping: false, full_at: None },
                );
            }
            Some(C::StopRequested { completer, run, .. } | C::DrainStarted { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    (r.stopping, r.full_at) = (true, None);
                }
            }
            Some(C::Accepted { completer, run, backlog, queued }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run))
                    && !r.stopping
                    && r.full_at.is_none()
                    && *queued >= r.batch_size
                    && backlog == queued
                {
                    r.full_at = Some(t);
                }
            }
            Some(C::BatchFlushed { completer, run, took_us, .. } | C::FlushFailed { completer, run, took_us, .. }) => {
                let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) else { continue };
                let Some(full_at) = r.full_at.take() else { continue };
                let start = t.saturating_sub(stretch(*took_us));
                let deadline = reach(full_at, slack_us, &frozen(node));
                if start > deadline && v.len() < 20 {
                    v.push(Violation::new(
                        "V14",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a full batch ({} queued, nothing in flight) at {:.3}s was written from {:.3}s at the earliest, {} µs late",
                            plain(completer),
                            r.batch_size,
                            full_at as f64 / 1e6,
                            start as f64 / 1e6,
                            start - deadline
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// V26: a partial batch is written at its flush tick, not a tick later. Outside a drain keel's
/// run ticks every flush interval from its start, re-arming the tick an interval after each
/// write and its events ended (`RoomMade`, announced as the write's room is given back) and an
/// interval after each idle tick; at a tick it writes what is queued. So a partial batch's write
/// starts by the first tick after its oldest completion was accepted (`Accepted`): with the tick
/// anchored at `a` and the completion accepted at `q`, that is the k-th tick, k at most
/// ⌊(q − a)·`fastest` / interval⌋ + 1 (a tick in the acceptance's own instant may have looked
/// before it), at most k·interval / `slowest` of the history's
/// time after `a`, plus `slack_us` of running time, frozen time not counted. Judged at each
/// partial write (`BatchFlushed` with `n` < `batch_size`, its earliest start its `took_us` at the
/// slowest clock) whose oldest acceptance surely came before it began. A run's writes after its
/// drain began, and a run whose node's clock jumped meanwhile (`jumped(node, from, to)`), are
/// not judged; a node's crash or restart ends its runs. A tick compared with `>` where `>=` is
/// meant (blind-spot hunt, round 26, B #1) skips the tick it wakes exactly at: every partial
/// batch waits a whole interval more, and V14's floor still holds.
pub fn completer_partial_batches_written_at_their_tick<E: Entry>(
    events: &[E],
    (slowest, fastest): (f64, f64),
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    struct Ticks {
        batch_size: usize,
        interval_us: u64,
        /// The tick chain's anchor: the run's start or the last write's `RoomMade`.
        anchor: u64,
        /// Since when something is queued for the next write: the first acceptance since the
        /// last write's cycle ended, or that end when it left completions queued.
        queued_since: Option<u64>,
        draining: bool,
    }
    let (slowest, fastest) = (slowest.clamp(0.01, 1.0), fastest.max(1.0));
    let mut runs: BTreeMap<(E::Node, &str, u64), Ticks> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            runs.retain(|k, _| &k.0 != node);
            continue;
        }
        use CompleterEvent as C;
        match e.completer() {
            Some(C::CompleterStarted { completer, run, batch_size, flush_interval_us, .. }) => {
                let ticks = Ticks {
                    batch_size: *batch_size,
                    interval_us: (*flush_interval_us).max(1),
                    anchor: t,
                    queued_since: None,
                    draining: false,
                };
                runs.insert((node.clone(), plain(completer), *run), ticks);
            }
            Some(C::StopRequested { completer, run, .. } | C::DrainStarted { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    r.draining = true;
                }
            }
            Some(C::Accepted { completer, run, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    r.queued_since.get_or_insert(t);
                }
            }
            // A write's cycle ends: the tick re-arms, and what is still queued (`backlog`, with
            // nothing in flight now) waits for that tick.
            Some(C::RoomMade { completer, run, backlog, .. }) => {
                if let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    r.anchor = t;
                    r.queued_since = (*backlog > 0).then_some(t);
                }
            }
            Some(C::BatchFlushed { completer, run, n, took_us, .. }) => {
                let Some(r) = runs.get_mut(&(node.clone(), plain(completer), *run)) else { continue };
                let earliest_start = t.saturating_sub((*took_us as f64 / slowest) as u64);
                let latest_start = t.saturating_sub((*took_us as f64 / fastest) as u64);
                let Some(q) = r.queued_since else { continue };
                // Accepted after this write began, or not before its latest start: the next's.
                if r.draining || *n >= r.batch_size || q > latest_start {
                    continue;
                }
                let interval = r.interval_us as f64;
                // The first tick after the acceptance: one at the acceptance's own instant may
                // have looked before it (completer seed 2: accepted in the tick's microsecond,
                // written at the next), so a whole tick past it. The history's microseconds
                // round that instant down: 1 µs more (completerclock seed 1257 since round 36:
                // accepted in the tick's own instant on a clock at 1.0613, measured 18 844 µs
                // after the anchor, 0.99999 of an interval, and judged due at that very tick).
                let k = (((q.saturating_sub(r.anchor) + 1) as f64 * fastest) / interval).floor() + 1.0;
                // 1 µs more: the history's microseconds and the float conversions round.
                let by = reach(r.anchor, (k * interval / slowest) as u64 + slack_us + 1, &frozen(node));
                if earliest_start > by && !jumped(node, r.anchor, t) && v.len() < 20 {
                    v.push(Violation::new(
                        "V26",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a partial batch of {n} (of {}) was written from {:.3}s at the earliest, {} µs past its tick: a completion waited from {:.3}s, the tick was armed at {:.3}s every {} µs",
                            plain(completer),
                            r.batch_size,
                            earliest_start as f64 / 1e6,
                            earliest_start - by,
                            q as f64 / 1e6,
                            r.anchor as f64 / 1e6,
                            r.interval_us
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// One run: its batch size, whether a stop was requested, and the instant an acceptance left a
/// full batch queued with nothing in flight (until the run's next write ends).
struct Run {
    batch_size: usize,
    stopping: bool,
    full_at: Option<u64>,
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn started() -> Ev {
        let e = CompleterEvent::CompleterStarted {
            completer: "c".into(),
            run: 1,
            batch_size: 4,
            flush_interval_us: 100_000,
            retry_min_us: 10_000,
            retry_max_us: 100_000,
            retry_budget: 8,
            op_timeout_us: 200_000,
            backlog: 4096,
        };
        at(0, e)
    }

    fn accepted(t_ms: u64, backlog: usize, queued: usize) -> Ev {
        at(t_ms, CompleterEvent::Accepted { completer: "c".into(), run: 1, backlog, queued })
    }

    fn flushed(t_ms: u64, took_ms: u64) -> Ev {
        let (took_us, attempt_us) = (took_ms * 1000, took_ms * 1000);
        at(
            t_ms,
            CompleterEvent::BatchFlushed {
                completer: "c".into(),
                run: 1,
                n: 4,
                rev: 1,
                retried: false,
                took_us,
                attempt_us,
            },
        )
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        crate::test_entry::at_ms(&completer_full_batches_write_at_once(h, 1.0, 2_000, |_| Vec::new()))
    }

    #[test]
    fn a_full_batch_waiting_for_the_tick_fires_v14() {
        // Written at once (a 5 ms write begun at the fourth acceptance).
        assert_eq!(judge(&[started(), accepted(10, 3, 3), accepted(20, 4, 4), flushed(25, 5)]), []);
        // Held to the tick, 100 ms later (MC86).
        assert_eq!(judge(&[started(), accepted(20, 4, 4), flushed(125, 5)]), [("V14", 125)]);
        // A batch in flight: the run is busy, not judged.
        assert_eq!(judge(&[started(), accepted(20, 8, 4), flushed(125, 5)]), []);
        // A stop request: the drain's to judge (V13).
        let stop = at(21, CompleterEvent::StopRequested { completer: "c".into(), run: 1, bound_ms: 1_000 });
        assert_eq!(judge(&[started(), accepted(20, 4, 4), stop, flushed(125, 5)]), []);
    }

    fn partial(t_ms: u64, n: usize) -> Ev {
        at(
            t_ms,
            CompleterEvent::BatchFlushed {
                completer: "c".into(),
                run: 1,
                n,
                rev: 1,
                retried: false,
                took_us: 1_000,
                attempt_us: 1_000,
            },
        )
    }

    fn room(t_ms: u64, backlog: usize) -> Ev {
        at(t_ms, CompleterEvent::RoomMade { completer: "c".into(), run: 1, n: 1, backlog, room: 8 - backlog })
    }

    fn judge_tick(h: &[Ev], rates: (f64, f64)) -> Vec<(&'static str, u64)> {
        let v = completer_partial_batches_written_at_their_tick(h, rates, 2_000, |_| Vec::new(), |_, _, _| false);
        crate::test_entry::at_ms(&v)
    }

    /// V26: ticks every 100 ms from the start; a completion accepted at 20 ms is written at the
    /// 100 ms tick, not at 200 ms (round 26 B #1: `>` for `>=` skips the tick it wakes at).
    #[test]
    fn a_partial_batch_a_tick_late_fires_v26() {
        let exact = (1.0, 1.0);
        assert_eq!(judge_tick(&[started(), accepted(20, 1, 1), partial(101, 1)], exact), []);
        assert_eq!(judge_tick(&[started(), accepted(20, 1, 1), partial(201, 1)], exact), [("V26", 201)]);
        // After an idle tick at 100 ms, a completion accepted at 150 ms waits for the 200 ms tick.
        assert_eq!(judge_tick(&[started(), accepted(150, 1, 1), partial(201, 1)], exact), []);
        assert_eq!(judge_tick(&[started(), accepted(150, 1, 1), partial(301, 1)], exact), [("V26", 301)]);
        // A write's cycle re-arms the tick: at 101 + 100 ms, with what it left queued.
        let cycle = [started(), accepted(20, 1, 1), partial(101, 1), room(101, 2)];
        assert_eq!(judge_tick(&[&cycle[..], &[partial(202, 2)]].concat(), exact), []);
        assert_eq!(judge_tick(&[&cycle[..], &[partial(302, 2)]].concat(), exact), [("V26", 302)]);
        // Nothing left queued: the next acceptance starts the wait.
        let idle = [started(), accepted(20, 1, 1), partial(101, 1), room(101, 0), accepted(260, 1, 1)];
        assert_eq!(judge_tick(&[&idle[..], &[partial(302, 1)]].concat(), exact), []);
        // Clocks from 0.9 to 1.1: the 100 ms tick may come at 111 ms of the history's time.
        assert_eq!(judge_tick(&[started(), accepted(20, 1, 1), partial(113, 1)], (0.9, 1.1)), []);
        // A full batch, or a write in a drain, is not judged here.
        assert_eq!(judge_tick(&[started(), accepted(20, 4, 4), partial(201, 4)], exact), []);
        let stop = at(21, CompleterEvent::StopRequested { completer: "c".into(), run: 1, bound_ms: 1_000 });
        assert_eq!(judge_tick(&[started(), accepted(20, 1, 1), stop, partial(201, 1)], exact), []);
        // Accepted in the first tick's own instant on a clock at 1.061337 (100 ms of it is
        // 94 220.7 µs, the history's 94 220 µs): the tick may have looked first, so the second
        // tick, not the first, is due (completerclock seed 1257, round 36).
        let mut tie = accepted(0, 1, 1);
        tie.0 = 94_220;
        assert_eq!(judge_tick(&[started(), tie, partial(189, 1)], (1.0, 1.061_337)), []);
    }
}
