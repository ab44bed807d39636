//! The rules. Each takes the history and the run's gates as plain values; the simulator's and the
//! chaos lane's callers decide the gates (see keel-sim's `keel_rules` and `keel-chaos`' checks).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;

use keel::observe::{CompleterEvent, LeaseEvent, LifecycleEvent, MoveKind, PoolEvent, RmapEvent};

use crate::{Entry, Fact, Span, Violation, plain};

/// The documented hand-off (docs/pool.md): a fenced or cleaned-up worker's handler may still
/// run for one clock-sleep granularity after the next attempt started elsewhere.
pub const HANDOFF_US: u64 = 100_000;

/// One run of a handler: the node, the attempt, and its span.
type Run<N> = (N, u64, Span);

/// Every handler run of every job: job → (node, attempt, span). A run still going when its node
/// crashed ends at the crash; one still going at the end of the run ends there.
pub struct HandlerRuns<'a, N> {
    by_job: BTreeMap<&'a str, Vec<Run<N>>>,
}

impl<'a, N: Clone + Ord + Display> HandlerRuns<'a, N> {
    /// Runs from `events`: `start` and `stop` say which events begin and end a run of
    /// (job, attempt) on the event's node.
    pub fn collect<E: Entry<Node = N>>(
        events: &'a [E],
        end_us: u64,
        start: impl Fn(&'a E) -> Option<(&'a str, u64)>,
        stop: impl Fn(&'a E) -> Option<(&'a str, u64)>,
    ) -> Self {
        let mut by_job: BTreeMap<&str, Vec<Run<N>>> = BTreeMap::new();
        let mut open: BTreeMap<(N, &str, u64), u64> = BTreeMap::new(); // (node, job, attempt) → since
        for e in events {
            let (node, t) = (e.node(), e.t_us());
            if let Some((job, attempt)) = start(e) {
                open.insert((node.clone(), job, attempt), t);
            } else if let Some((job, attempt)) = stop(e) {
                if let Some(s) = open.remove(&(node.clone(), job, attempt)) {
                    by_job.entry(job).or_default().push((node.clone(), attempt, Span { start: s, end: t }));
                }
            } else if e.fact() == Some(Fact::NodeCrash) {
                let mine: Vec<_> = open.keys().filter(|k| &k.0 == node).cloned().collect();
                for k in mine {
                    if let Some(s) = open.remove(&k) {
                        by_job.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end: t }));
                    }
                }
            }
        }
        for (k, s) in open {
            by_job.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end: end_us }));
        }
        HandlerRuns { by_job }
    }

    /// Every job's runs, in the order they ended.
    pub fn by_job(&self) -> &BTreeMap<&'a str, Vec<(N, u64, Span)>> {
        &self.by_job
    }

    /// P2: at most one running handler per job, except `handoff_us` of overlap, not counting
    /// time either runner's node was frozen (`frozen`: a node's frozen spans; a paused, stopped
    /// or crashed node runs nothing meanwhile).
    pub fn overlaps(&self, frozen: impl Fn(&N) -> Vec<Span>, handoff_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        for (job, rs) in &self.by_job {
            for (i, a) in rs.iter().enumerate() {
                for b in &rs[i + 1..] {
                    let Some(o) = a.2.overlap(&b.2) else { continue };
                    let mut holes = frozen(&a.0);
                    holes.extend(frozen(&b.0));
                    let outside = o.len_outside(&holes);
                    if outside > handoff_us {
                        v.push(Violation::new(
                            "P2",
                            o.start,
                            format!(
                                "{job}: attempts {} on {} and {} on {} ran at once for {:.3}s",
                                a.1,
                                a.0,
                                b.1,
                                b.0,
                                outside as f64 / 1e6
                            ),
                        ));
                    }
                }
            }
        }
        v
    }
}

/// P17: a job is re-dispatched only when its worker did not acknowledge it. The ack of attempt a
/// by w (`acked`) deletes the pending entry guarded by the record naming a and w; the sweep's
/// re-dispatch of a (a `moved` to a+1 from w) is guarded by that pending entry and by that
/// record: at the store one of the two is refused, whatever the order. Both applying means the
/// job ran on w and runs again elsewhere: w's run is fenced only when it tries to complete. A
/// re-dispatch that drops its guard on the pending entry (MC55, blind-spot hunt, round 6, #1)
/// moves a job whose ack landed between the sweep's read and the move; P2 saw the second run
/// only when both runs' completions met (2 of 900 seeds). Judged at the later of the two events;
/// the simulator and the chaos lane judge it on every run with a keel pool.
pub fn redispatches_of_unacked_jobs<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (job, attempt, worker) → the instant of its ack, or of its re-dispatch off that worker.
    let mut acked: BTreeMap<(&str, u64, &str), u64> = BTreeMap::new();
    let mut redispatched: BTreeMap<(&str, u64, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(job) = e.freed_key() {
            acked.retain(|k, _| k.0 != job);
            redispatched.retain(|k, _| k.0 != job);
            continue;
        }
        let (key, other, mine) = match e.pool() {
            Some(PoolEvent::Acked { job, worker, attempt }) => {
                ((plain(job), *attempt, plain(worker)), &redispatched, &mut acked)
            }
            Some(PoolEvent::Moved { kind: MoveKind::Redispatched, job, from, attempt, .. }) => {
                ((plain(job), attempt.saturating_sub(1), plain(from)), &acked, &mut redispatched)
            }
            Some(PoolEvent::Dispatched { job, .. }) => {
                // A new life of the key: its attempts start anew.
                acked.retain(|k, _| k.0 != plain(job));
                redispatched.retain(|k, _| k.0 != plain(job));
                continue;
            }
            _ => continue,
        };
        if let Some(at) = other.get(&key) {
            let (job, attempt, worker) = key;
            v.push(Violation::new(
                "P17",
                e.t_us(),
                format!(
                    "{job}: attempt {attempt} was both acknowledged by {worker} and re-dispatched off it (the first of the two at {:.3}s): one of them should have been refused at the store, and the job runs twice",
                    *at as f64 / 1e6
                ),
            ));
        }
        mine.entry(key).or_insert(e.t_us());
    }
    v.truncate(20);
    v
}

/// Every handler run from keel's pool events (`Started` to `HandlerReturned`).
pub fn pool_handler_runs<E: Entry>(events: &[E], end_us: u64) -> HandlerRuns<'_, E::Node> {
    HandlerRuns::collect(
        events,
        end_us,
        |e| match e.pool() {
            Some(PoolEvent::Started { job, attempt, .. }) => Some((plain(job), *attempt)),
            _ => None,
        },
        |e| match e.pool() {
            Some(PoolEvent::HandlerReturned { job, attempt, .. }) => Some((plain(job), *attempt)),
            _ => None,
        },
    )
}

/// P1: every job taken in (`dispatched`, first time counts) is completed (`completed`) by
/// `within_us` after the later of its dispatch and the heal. Jobs whose deadline falls after
/// the end are not judged. Each life of a key is a job of its own: once the store freed the key
/// ([`Entry::freed_key`]: its tombstone deleted past the dedup window) its next dispatch starts
/// a new life that needs a completion of its own (a service that reuses keys loses the second
/// life's job as surely as the first's), and a completion before the freeing is the old life's.
pub fn jobs_lost<'a, E: Entry>(
    events: &'a [E],
    heal_us: u64,
    end_us: u64,
    within_us: u64,
    dispatched: impl Fn(&'a E) -> Option<&'a str>,
    completed: impl Fn(&'a E) -> Option<&'a str>,
) -> Vec<Violation> {
    let mut lives: BTreeMap<&str, u32> = BTreeMap::new();
    let mut taken: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    let mut done: BTreeMap<(&str, u32), u64> = BTreeMap::new();
    for e in events {
        if let Some(job) = e.freed_key() {
            *lives.entry(job).or_default() += 1;
            continue;
        }
        if let Some(job) = dispatched(e) {
            let life = lives.get(job).copied().unwrap_or(0);
            taken.entry((job, life)).or_insert(e.t_us());
        } else if let Some(job) = completed(e) {
            let life = lives.get(job).copied().unwrap_or(0);
            done.entry((job, life)).or_insert(e.t_us());
        }
    }
    let mut v = Vec::new();
    for ((job, life), t) in taken {
        let deadline = t.max(heal_us).saturating_add(within_us);
        if deadline > end_us || done.get(&(job, life)).is_some_and(|&c| c <= deadline) {
            continue;
        }
        let again = if life > 0 { format!(" (its life {}, after its key came free)", life + 1) } else { String::new() };
        v.push(Violation::new(
            "P1",
            deadline,
            format!(
                "{job} dispatched at {:.3}s was not completed within {:?} of the heal{again}",
                t as f64 / 1e6,
                std::time::Duration::from_micros(within_us)
            ),
        ));
    }
    v
}

/// What a bound timed on a node's clock may seem short by when read on the history's time: a
/// clock's deadline wakes at a whole µs, and a bound may run from an instant a µs before the one
/// the rule reads.
const ROUNDING_SLACK_US: u64 = 2;

/// V3 and V4 over keel's completer events: a stop that began at or after `heal_us` (the store
/// healthy) reports nothing unflushed or undelivered (V3), unless a producer kept its run open
/// to the bound (`producers_left` at the close, or a `producer_stopped` at or after the stop
/// request's bound, at the fastest clock: the run sees its bound only between writes, so a
/// producer that left just after it is gone by the close; completer seed 637: what it handed
/// in as the bound ran out is reported, not lost);
/// a stop whose bound ran out with
/// completions still queued (`StopDeadline`'s `pending`) reports at least those unflushed when
/// its channel closes (V3: a bounded stop never loses silently); a stop that reports its bound reached
/// took at least that bound since its drain began (V4), judged only if `clocks_tame` (no clock
/// beyond its drift bound, no jump), its bound shortened by the fastest clock rate `fastest`.
///
/// V38: a run gives the events of a written batch up at its stop bound
/// (`events_undelivered` at the bound) only when their hand-over waited on a full channel
/// (`hand_over_waiting`, not yet `handed_over`), and not before the bound: with nothing of it
/// left on the run's clock (`left_us`, whatever the clock's rate or jumps), and, judged like V4,
/// not sooner than the bound after the drain began. A run whose hand-over waited during its
/// drain (given up at the bound, or handed over late in it) owes V3 nothing: its subscription
/// manager made no room for that part of the bound. A hand-over given up when the
/// stop is heard (blind-spot hunt, round 36, B #14) loses a batch a manager starting late would
/// have read; one timed on the runtime's timer (B #48) gives up early on a slow clock.
pub fn completer_drains<E: Entry>(events: &[E], heal_us: u64, clocks_tame: bool, fastest: f64) -> Vec<Violation> {
    // (node, completer, run) → (drain began, its bound in µs)
    let mut draining: BTreeMap<(E::Node, &str, u64), (u64, u64)> = BTreeMap::new();
    // (node, completer, run) → completions still queued when its stop bound ran out
    let mut queued_at_deadline: BTreeMap<(E::Node, &str, u64), usize> = BTreeMap::new();
    // (node, completer, run) → when its stop's bound ran out at the earliest (the request's
    // instant plus the bound at the fastest clock), and whether a producer was still there then
    let mut bound_at: BTreeMap<(E::Node, &str, u64), (u64, bool)> = BTreeMap::new();
    // (node, completer, run) → a hand-over of a written batch waits on a full channel (V38)
    let mut waiting: BTreeMap<(E::Node, &str, u64), bool> = BTreeMap::new();
    // runs whose hand-over waited on a full channel during their drain (to the bound, or part
    // of it): the manager made no room for that part of the bound
    let mut waited_in_drain: BTreeSet<(E::Node, &str, u64)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            waiting.retain(|k, _| &k.0 != node);
        }
        match e.completer() {
            Some(CompleterEvent::HandOverWaiting { completer, run: r, .. }) => {
                waiting.insert((node.clone(), plain(completer), *r), true);
            }
            Some(CompleterEvent::HandedOver { completer, run: r, .. }) => {
                let key = (node.clone(), plain(completer), *r);
                // The wait ran into the drain: part of the bound went to a manager not reading.
                if draining.contains_key(&key) {
                    waited_in_drain.insert(key.clone());
                }
                waiting.insert(key, false);
            }
            Some(CompleterEvent::EventsUndeliveredAtBound { completer, run: r, n, left_us }) => {
                let key = (node.clone(), plain(completer), *r);
                let (run_name, run) = (key.1, key.2);
                if waiting.insert(key.clone(), false) != Some(true) {
                    v.push(Violation::new(
                        "V38",
                        t,
                        format!(
                            "{node}: completer {run_name} run {run}: {n} events given up at the stop bound by a hand-over that never waited on a full channel"
                        ),
                    ));
                } else if *left_us > ROUNDING_SLACK_US {
                    // On the run's own clock, the one its bound is timed on: any rate, any jump.
                    v.push(Violation::new(
                        "V38",
                        t,
                        format!(
                            "{node}: completer {run_name} run {run}: a hand-over waiting on a full channel gave {n} events up with {left_us} µs of its stop's bound left on its clock"
                        ),
                    ));
                } else if let Some(&(began, bound_us)) = draining.get(&key)
                    && clocks_tame
                    && ((t - began + ROUNDING_SLACK_US) as f64) < bound_us as f64 / fastest
                {
                    v.push(Violation::new(
                        "V38",
                        t,
                        format!(
                            "{node}: completer {run_name} run {run}: a hand-over waiting on a full channel gave {n} events up {:.3}s after the drain began, before its bound ({} ms)",
                            (t - began) as f64 / 1e6,
                            bound_us / 1000
                        ),
                    ));
                }
                waited_in_drain.insert(key);
            }
            Some(CompleterEvent::StopRequested { completer, run: r, bound_ms }) => {
                let bound_us = (bound_ms.saturating_mul(1000) as f64 / fastest.max(1.0)) as u64;
                bound_at.insert((node.clone(), plain(completer), *r), (t.saturating_add(bound_us), false));
            }
            Some(CompleterEvent::ProducerStopped { completer, run: r, .. }) => {
                if let Some((at, kept)) = bound_at.get_mut(&(node.clone(), plain(completer), *r))
                    && t >= *at
                {
                    *kept = true;
                }
            }
            Some(CompleterEvent::DrainStarted { completer, run: r, bound_ms, .. }) => {
                draining.insert((node.clone(), plain(completer), *r), (t, bound_ms.saturating_mul(1000)));
            }
            Some(CompleterEvent::StopDeadline { completer, run: r, pending, .. }) => {
                let key = (node.clone(), plain(completer), *r);
                queued_at_deadline.insert(key.clone(), *pending);
                if let Some(&(began, bound_us)) = draining.get(&key)
                    && clocks_tame
                    // Two µs of slack: the bound runs from the stop's request (up to a µs before
                    // the drain), and a clock's deadline wakes at a whole µs (completerclock seed
                    // 77: 566 844 µs at rate 1.0585 is 0.2 µs short of 600 ms).
                    && ((t - began + ROUNDING_SLACK_US) as f64) < bound_us as f64 / fastest
                {
                    v.push(Violation::new(
                        "V4",
                        t,
                        format!(
                            "{node}: completer {} run {}: the stop reported its bound ({} ms) reached {:.3}s after the drain began",
                            key.1,
                            key.2,
                            bound_us / 1000,
                            (t - began) as f64 / 1e6
                        ),
                    ));
                }
            }
            Some(CompleterEvent::EventsClosed { completer, run: r, unflushed, undelivered, producers_left }) => {
                let key = (node.clone(), plain(completer), *r);
                if let Some(pending) = queued_at_deadline.remove(&key)
                    && *unflushed < pending
                {
                    v.push(Violation::new(
                        "V3",
                        t,
                        format!(
                            "{node}: completer {} run {}: its stop bound ran out with {pending} completions queued, but it reported {unflushed} unflushed (lost silently)",
                            key.1, key.2
                        ),
                    ));
                }
                let kept_to_bound = bound_at.remove(&key).is_some_and(|(_, kept)| kept);
                waiting.remove(&key);
                // A manager that made no room spent (part of) the bound (V38 judges that wait).
                let stuck = waited_in_drain.remove(&key);
                if let Some((began, _)) = draining.remove(&key)
                    && began >= heal_us
                    && unflushed + undelivered > 0
                    && *producers_left == 0
                    && !kept_to_bound
                    && !stuck
                {
                    v.push(Violation::new(
                        "V3",
                        t,
                        format!(
                            "{node}: completer {} run {}: a stop begun with the store healthy reported {unflushed} unflushed and {undelivered} undelivered",
                            key.1, key.2
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// V3 for the stop's report: when a completer run closes its event channel (`EventsClosed`),
/// the `undelivered` it reports is exactly the events the run announced it could not hand over
/// (`events_undelivered`, at the bound or not, and `send_after_close`). A report that leaves an
/// announced loss out (blind-spot hunt, round 25, B #36, MC236) makes the stop return `Ok` with
/// events lost. And each announcement counts the events of the batch it could not hand over,
/// the run's last written (`batch_flushed`'s `n`), judged at the announcement: a loss counted
/// in batches, not events (round 36, B #41, MC318), tells operators one event lost for a whole
/// batch, and the report agrees with it. Judged for every completer, a stressed one too; a
/// node's crash or restart forgets its runs. The first 20 violations.
pub fn completer_reports_count_undelivered<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → the events its run announced it could not hand over
    let mut announced: BTreeMap<(E::Node, &str, u64), usize> = BTreeMap::new();
    // (node, completer, run) → the size of its last written batch
    let mut written: BTreeMap<(E::Node, &str, u64), usize> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            announced.retain(|k, _| &k.0 != node);
            written.retain(|k, _| &k.0 != node);
        }
        match e.completer() {
            Some(CompleterEvent::BatchFlushed { completer, run, n, .. }) => {
                written.insert((node.clone(), plain(completer), *run), *n);
            }
            Some(
                CompleterEvent::SendAfterClose { completer, run, n }
                | CompleterEvent::EventsUndelivered { completer, run, n }
                | CompleterEvent::EventsUndeliveredAtBound { completer, run, n, .. },
            ) => {
                let key = (node.clone(), plain(completer), *run);
                if let Some(&batch) = written.get(&key)
                    && batch != *n
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "V3",
                        e.t_us(),
                        format!(
                            "{node}: completer {} run {run}: {n} events announced undelivered for a written batch of {batch}",
                            plain(completer)
                        ),
                    ));
                }
                *announced.entry(key).or_default() += n;
            }
            Some(CompleterEvent::EventsClosed { completer, run, undelivered, .. }) => {
                let said = announced.remove(&(node.clone(), plain(completer), *run)).unwrap_or(0);
                if said != *undelivered && v.len() < 20 {
                    v.push(Violation::new(
                        "V3",
                        e.t_us(),
                        format!(
                            "{node}: completer {} run {run}: its report counts {undelivered} events undelivered, where the run announced {said}",
                            plain(completer)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// A completer's or its subscription manager's run: (node, completer, run).
type ManagerRun<'a, N> = (N, &'a str, u64);
/// A stop request: (requested at, deadline, bound in ms).
type StopAsked = (u64, u64, u64);

/// V4 for the subscription manager: once a stop of one of its runs is requested
/// (`SmStopRequested`), the run closes its subscriber channels (`SubscriptionsClosed`) within its
/// drain bound: a subscriber that stopped reading is dropped and counted, never waited for. The
/// bound is stretched for the slowest clock (`slowest`, its rate: the drain's deadline is on
/// the node's clock), plus `slack_us` of scheduling, not counting time the node was frozen
/// (`frozen`: its frozen spans). Judged at the instant the bound runs out, whether the close
/// comes late or never; a node that crashed or restarted before that instant is not judged.
pub fn subscription_stops<E: Entry>(
    events: &[E],
    end_us: u64,
    slowest: f64,
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    let bounds = BoundedStop {
        begins: sm_stop_requested::<E>,
        ends: subscriptions_closed::<E>,
        late: |(node, completer, run): &ManagerRun<'_, E::Node>, (asked, _, bound_ms): StopAsked| {
            format!(
                "{node}: subscription manager of completer {completer} run {run}: stop requested at {:.3}s, subscribers not closed within its drain bound ({bound_ms} ms): the manager waits on a subscriber",
                asked as f64 / 1e6
            )
        },
    };
    bounds.judge(events, end_us, slowest, slack_us, frozen)
}

/// V4's floor for the subscription manager: a run gives up waiting for the completer's events
/// (`SmDrainTimeout`) only once its whole drain bound has passed since its stop was requested
/// (`SmStopRequested`, which carries the bound), on the node's clock: no sooner than the bound
/// at `fastest`, the fastest rate of a node's clock the history allows, less `slack_us`. One
/// that gives up early drops the events the completer still flushes inside the bound it was
/// given (blind-spot hunt, round 11, #5: a bound counted from the run's start; MC93).
/// `jumped(node, from, to)` excuses a run whose node's clock jumped meanwhile; a node's crash or
/// restart ends its runs.
pub fn subscription_drains_keep_their_bound<E: Entry>(
    events: &[E],
    fastest: f64,
    slack_us: u64,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    // (node, completer, run) → (stop requested at, bound in ms)
    let mut asked: BTreeMap<(E::Node, &str, u64), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::SmStopRequested { completer, run, bound_ms }), _) => {
                asked.entry((node.clone(), plain(completer), *run)).or_insert((t, *bound_ms));
            }
            (Some(CompleterEvent::SmDrainTimeout { completer, run }), _) => {
                let Some((at, bound_ms)) = asked.remove(&(node.clone(), plain(completer), *run)) else { continue };
                let floor = at + (bound_ms.saturating_mul(1000) as f64 / fastest.max(1.0)) as u64;
                if t + slack_us < floor && !jumped(node, at, t) && v.len() < 20 {
                    v.push(Violation::new(
                        "V4",
                        t,
                        format!(
                            "{node}: subscription manager of completer {} run {run}: stop requested at {:.3}s with a drain bound of {bound_ms} ms, and it gave up on the completer's events at {:.3}s, {} µs before the bound",
                            plain(completer),
                            at as f64 / 1e6,
                            t as f64 / 1e6,
                            floor - t
                        ),
                    ));
                }
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => asked.retain(|k, _| &k.0 != node),
            _ => {}
        }
    }
    v
}

/// V4 for the completer's run: once its drain begins (`DrainStarted`, which carries the stop's
/// bound), the run closes its event channel (`EventsClosed`) within that bound: a store write
/// still in flight when the bound runs out is cut there (its outcome unknown, the batch reported
/// unflushed), never waited for to its own op timeout. Stretched, slacked and judged as
/// [`subscription_stops`] (blind-spot hunt, round 5, #7: V4 bounded only a whole group's stop,
/// with seconds of room; MC47).
pub fn completer_drains_bounded<E: Entry>(
    events: &[E],
    end_us: u64,
    slowest: f64,
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    let bounds = BoundedStop {
        begins: drain_started::<E>,
        ends: events_closed::<E>,
        late: |(node, completer, run): &ManagerRun<'_, E::Node>, (began, _, bound_ms): StopAsked| {
            format!(
                "{node}: completer {completer} run {run}: drain begun at {:.3}s, event channel not closed within its stop bound ({bound_ms} ms): the drain waits past its bound",
                began as f64 / 1e6
            )
        },
    };
    bounds.judge(events, end_us, slowest, slack_us, frozen)
}

fn sm_stop_requested<E: Entry>(e: &E) -> Option<(&str, u64, u64)> {
    match e.completer() {
        Some(CompleterEvent::SmStopRequested { completer, run, bound_ms }) => Some((plain(completer), *run, *bound_ms)),
        _ => None,
    }
}

fn subscriptions_closed<E: Entry>(e: &E) -> Option<(&str, u64)> {
    match e.completer() {
        Some(CompleterEvent::SubscriptionsClosed { completer, run, .. }) => Some((plain(completer), *run)),
        _ => None,
    }
}

fn drain_started<E: Entry>(e: &E) -> Option<(&str, u64, u64)> {
    match e.completer() {
        Some(CompleterEvent::DrainStarted { completer, run, bound_ms, .. }) => {
            Some((plain(completer), *run, *bound_ms))
        }
        _ => None,
    }
}

fn events_closed<E: Entry>(e: &E) -> Option<(&str, u64)> {
    match e.completer() {
        Some(CompleterEvent::EventsClosed { completer, run, .. }) => Some((plain(completer), *run)),
        _ => None,
    }
}

/// One kind of bounded stop: the event that begins it (with its bound in ms), the one that ends
/// it, and what a late end says.
struct BoundedStop<B, F, L> {
    begins: B,
    ends: F,
    late: L,
}

impl<B, F, L> BoundedStop<B, F, L> {
    fn judge<'a, E: Entry>(
        &self,
        events: &'a [E],
        end_us: u64,
        slowest: f64,
        slack_us: u64,
        frozen: impl Fn(&E::Node) -> Vec<Span>,
    ) -> Vec<Violation>
    where
        B: Fn(&'a E) -> Option<(&'a str, u64, u64)>,
        F: Fn(&'a E) -> Option<(&'a str, u64)>,
        L: Fn(&ManagerRun<'a, E::Node>, StopAsked) -> String,
    {
        let mut open: BTreeMap<ManagerRun<'a, E::Node>, StopAsked> = BTreeMap::new();
        let mut v = Vec::new();
        let mut late =
            |key: &ManagerRun<'a, E::Node>, o: StopAsked| v.push(Violation::new("V4", o.1, (self.late)(key, o)));
        for e in events {
            let (node, t) = (e.node(), e.t_us());
            if let Some((completer, run, bound_ms)) = (self.begins)(e) {
                let running_us = (bound_ms.saturating_mul(1000) as f64 / slowest.max(1e-3)) as u64 + slack_us;
                let deadline = reach(t, running_us, &frozen(node));
                open.entry((node.clone(), completer, run)).or_insert((t, deadline, bound_ms));
            } else if let Some((completer, run)) = (self.ends)(e) {
                let key = (node.clone(), completer, run);
                if let Some(o) = open.remove(&key)
                    && t > o.1
                {
                    late(&key, o);
                }
            } else if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
                let mine: Vec<_> = open.keys().filter(|k| &k.0 == node).cloned().collect();
                for key in mine {
                    if let Some(o) = open.remove(&key)
                        && t > o.1
                    {
                        late(&key, o);
                    }
                }
            }
        }
        for (key, o) in open {
            if end_us > o.1 {
                late(&key, o);
            }
        }
        v.sort_by_key(|x| x.t_us);
        v
    }
}

/// A completer run asked to stop: when its drain is due, and whether the store write it had in
/// flight at the request has ended since.
#[derive(Clone, Copy)]
struct StopHeard {
    asked: u64,
    due: u64,
    write_ended: bool,
}

/// V10: a completer run hears its stop. Once a stop of a run is requested (`StopRequested`), its
/// drain begins (`DrainStarted`) at once: idle, backing off between retries of a failed write, or
/// waiting to hand events on, the run listens for the stop. Only a store write in flight at the
/// request may hold the drain, until it ends (`BatchFlushed` or `FlushFailed`, the write's reply
/// or its op timeout). "At once" is `slack_us` of running time, not counting time the node was
/// frozen (`frozen`: its frozen spans); nothing here reads a clock, so clock faults do not matter.
///
/// Judged at the instant the limit passes: the request's plus `slack_us` when no write ended
/// between the request and the drain (a late drain with nothing ended in between is a wait on
/// something other than a write: a backoff that slept through the stop, MC41), else that write's
/// end plus `slack_us`. A drain begun before the request (a run bound to another token) is not
/// judged; nor is a run whose node crashed or restarted, or whose history ended, before any
/// write ended (a write may have been in flight).
pub fn completer_stops_heard<E: Entry>(
    events: &[E],
    end_us: u64,
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    let mut drained: std::collections::BTreeSet<(E::Node, &str, u64)> = std::collections::BTreeSet::new();
    let mut open: BTreeMap<(E::Node, &str, u64), StopHeard> = BTreeMap::new();
    let mut v = Vec::new();
    let late = |v: &mut Vec<Violation>, (node, completer, run): &(E::Node, &str, u64), s: StopHeard| {
        let after = if s.write_ended { "the end of the store write in flight at the request" } else { "the request" };
        v.push(Violation::new(
            "V10",
            s.due,
            format!(
                "{node}: completer {completer} run {run}: stop requested at {:.3}s, drain not begun within {} µs of {after}: the run does not hear its stop",
                s.asked as f64 / 1e6,
                slack_us
            ),
        ));
    };
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::StopRequested { completer, run, .. }), _) => {
                let key = (node.clone(), plain(completer), *run);
                if !drained.contains(&key) {
                    let due = reach(t, slack_us, &frozen(node));
                    open.entry(key).or_insert(StopHeard { asked: t, due, write_ended: false });
                }
            }
            (
                Some(
                    CompleterEvent::BatchFlushed { completer, run, .. }
                    | CompleterEvent::FlushFailed { completer, run, .. },
                ),
                _,
            ) => {
                if let Some(s) = open.get_mut(&(node.clone(), plain(completer), *run))
                    && !s.write_ended
                {
                    s.write_ended = true;
                    s.due = s.due.max(reach(t, slack_us, &frozen(node)));
                }
            }
            (Some(CompleterEvent::DrainStarted { completer, run, .. }), _) => {
                let key = (node.clone(), plain(completer), *run);
                if let Some(s) = open.remove(&key)
                    && t > s.due
                {
                    late(&mut v, &key, s);
                }
                drained.insert(key);
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => {
                let mine: Vec<_> = open.keys().filter(|k| &k.0 == node).cloned().collect();
                for key in mine {
                    if let Some(s) = open.remove(&key)
                        && s.write_ended
                        && t > s.due
                    {
                        late(&mut v, &key, s);
                    }
                }
            }
            _ => {}
        }
    }
    for (key, s) in open {
        if s.write_ended && end_us > s.due {
            late(&mut v, &key, s);
        }
    }
    v.sort_by_key(|x| x.t_us);
    v
}

/// The instant at which `len_us` of running time (outside `holes`) has passed since `start`.
pub fn reach(start: u64, len_us: u64, holes: &[Span]) -> u64 {
    let mut holes: Vec<Span> = holes.iter().copied().filter(|h| h.end > start).collect();
    holes.sort_by_key(|h| h.start);
    let (mut cursor, mut left) = (start, len_us);
    for h in holes {
        if h.start >= cursor.saturating_add(left) {
            break;
        }
        left -= h.start.saturating_sub(cursor);
        cursor = cursor.max(h.end);
    }
    cursor.saturating_add(left)
}

/// V1 and V2 over keel's completer events: a run's event channel closes once (`EventsClosed`),
/// with every producer gone unless the stop reported its bound reached first (`StopDeadline`)
/// (V1); nothing is ever sent after the close (`SendAfterClose`, V2).
///
/// "Every producer gone" is counted from the producers' own events, not taken from the stop's
/// report: each `producer_registered` is live until its `producer_stopped`, and at the close the
/// live ones must be none, or (bound reached) no more than the `producers_left` the report names
/// (a history that starts after a registration counts fewer, never more). A
/// drain that calls itself done on an empty backlog while a producer is still registered (hunt
/// round 9 #16) closes the channel under that producer and reports nobody left. And once the
/// run's drain began (`DrainStarted`) no producer registers with it: a stop refuses new
/// producers, and one that keeps taking them (hunt round 11 #18) drains for producers who came
/// after the stop. keel announces a registration under the lock the drain's start takes, so the
/// order holds on any runtime. A node's start or crash ends its runs.
pub fn completer_channel<E: Entry>(events: &[E]) -> Vec<Violation> {
    #[derive(Default)]
    struct Run<'a> {
        closed: bool,
        bound_reached: bool,
        drain_began: bool,
        /// Producer name → how many of that name are registered and not stopped.
        live: BTreeMap<&'a str, usize>,
    }
    let mut runs: BTreeMap<(E::Node, &str, u64), Run<'_>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            runs.retain(|(n, ..), _| n != node);
            continue;
        }
        match e.completer() {
            Some(CompleterEvent::ProducerRegistered { completer, run, producer }) => {
                let r = runs.entry((node.clone(), plain(completer), *run)).or_default();
                if r.drain_began {
                    v.push(Violation::new(
                        "V1",
                        t,
                        format!(
                            "{node}: completer {} run {run}: producer {} registered after the run's drain began: a stop refuses new producers",
                            plain(completer),
                            plain(producer)
                        ),
                    ));
                }
                *r.live.entry(plain(producer)).or_default() += 1;
            }
            Some(CompleterEvent::DrainStarted { completer, run, .. }) => {
                runs.entry((node.clone(), plain(completer), *run)).or_default().drain_began = true;
            }
            Some(CompleterEvent::ProducerStopped { completer, run, producer }) => {
                let r = runs.entry((node.clone(), plain(completer), *run)).or_default();
                if let Some(n) = r.live.get_mut(plain(producer)) {
                    *n = n.saturating_sub(1);
                }
            }
            Some(CompleterEvent::StopDeadline { completer, run, .. }) => {
                runs.entry((node.clone(), plain(completer), *run)).or_default().bound_reached = true;
            }
            Some(CompleterEvent::EventsClosed { completer, run, producers_left, .. }) => {
                let r = runs.entry((node.clone(), plain(completer), *run)).or_default();
                let live: usize = r.live.values().sum();
                let name = plain(completer);
                if r.closed {
                    v.push(Violation::new(
                        "V1",
                        t,
                        format!("{node}: completer {name} run {run}: channel closed twice"),
                    ));
                } else if *producers_left > 0 && !r.bound_reached {
                    v.push(Violation::new(
                        "V1",
                        t,
                        format!("{node}: completer {name} run {run}: channel closed with {producers_left} producers left and no stop deadline"),
                    ));
                } else if live > if r.bound_reached { *producers_left } else { 0 } {
                    let still: Vec<&str> = r.live.iter().filter(|(_, n)| **n > 0).map(|(p, _)| *p).collect();
                    v.push(Violation::new(
                        "V1",
                        t,
                        format!(
                            "{node}: completer {name} run {run}: channel closed with {live} producers still registered {still:?}, its stop reporting {producers_left} left{}",
                            if r.bound_reached { "" } else { " and no stop deadline" }
                        ),
                    ));
                }
                r.closed = true;
            }
            Some(CompleterEvent::SendAfterClose { completer, run, n }) => v.push(Violation::new(
                "V2",
                t,
                format!("{node}: completer {} run {run}: {n} events sent after the channel closed", plain(completer)),
            )),
            _ => {}
        }
    }
    v
}

/// V11: a flush says it was retried if and only if it was. A batch written (`BatchFlushed`) has
/// `retried` set exactly when a write of the same run failed (`FlushFailed`) since that run's
/// last written batch: the run's retry backoff starts again from its minimum after every
/// success. One whose backoff never resets (blind-spot hunt, round 5, #11: a success that does
/// not tell the backoff) reports every later batch retried, backs off at its longest from the
/// first error after a success, and spends its retry budget early; one that reads the flag after
/// the success reset it (round 8, #11) never reports a retry, hiding a failing store from the
/// `batch_flushed` lines. A node's crash or restart ends its runs.
pub fn completer_flushes_report_retries<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer, run) → a write failed since the run's last written batch
    let mut failed: BTreeMap<(E::Node, &str, u64), bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::FlushFailed { completer, run, .. }), _) => {
                failed.insert((node.clone(), plain(completer), *run), true);
            }
            (Some(CompleterEvent::BatchFlushed { completer, run, n, retried, .. }), _) => {
                let before = failed.insert((node.clone(), plain(completer), *run), false).unwrap_or(false);
                let what = match (*retried, before) {
                    (true, false) => {
                        "as retried with no failed write since the run's last written batch (a retry backoff that never started over)"
                    }
                    (false, true) => {
                        "as not retried after a failed write since the run's last written batch (retries hidden)"
                    }
                    _ => continue,
                };
                if v.len() < 20 {
                    v.push(Violation::new(
                        "V11",
                        t,
                        format!("{node}: completer {} run {run}: a batch of {n} written {what}", plain(completer)),
                    ));
                }
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => failed.retain(|k, _| &k.0 != node),
            _ => {}
        }
    }
    v
}

/// V14: a partial batch waits for its flush tick. Outside a drain, keel writes a batch of fewer
/// than `batch_size` completions (`CompleterStarted` carries both figures) only when its flush
/// tick comes, and re-arms the tick a flush interval after the last write and its events ended.
/// So a partial batch's write (its `BatchFlushed` less `took_us`, at the fastest in-bound clock
/// for its latest start) starts no earlier than the run's previous `BatchFlushed` plus the
/// interval (at the fastest clock), less `slack_us`. A run's first write, writes after its drain
/// began, and a run whose node's clock jumped meanwhile (`jumped(node, from, to)`) are not
/// judged. A tick re-armed from the instant read before the write (blind-spot hunt, round 8,
/// #14) sends partial batches back to back after any write slower than the interval: more and
/// smaller writes exactly when the store is slow. A node's crash or restart ends its runs.
pub fn completer_partial_batches_wait_for_the_tick<E: Entry>(
    events: &[E],
    fastest: f64,
    slack_us: u64,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    struct RunState {
        batch_size: usize,
        interval_us: u64,
        last_end: Option<u64>,
        draining: bool,
    }
    let shrink = |us: u64| (us as f64 / fastest.max(1.0)) as u64;
    let mut runs: BTreeMap<(E::Node, &str, u64), RunState> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::CompleterStarted { completer, run, batch_size, flush_interval_us, .. }), _) => {
                let s = RunState {
                    batch_size: *batch_size,
                    interval_us: *flush_interval_us,
                    last_end: None,
                    draining: false,
                };
                runs.insert((node.clone(), plain(completer), *run), s);
            }
            (Some(CompleterEvent::DrainStarted { completer, run, .. }), _) => {
                if let Some(s) = runs.get_mut(&(node.clone(), plain(completer), *run)) {
                    s.draining = true;
                }
            }
            (Some(CompleterEvent::BatchFlushed { completer, run, n, took_us, .. }), _) => {
                let Some(s) = runs.get_mut(&(node.clone(), plain(completer), *run)) else { continue };
                let start = t.saturating_sub(shrink(*took_us)); // the latest it can have started
                if let Some(last) = s.last_end
                    && !s.draining
                    && *n < s.batch_size
                {
                    let tick = last.saturating_add(shrink(s.interval_us)).saturating_sub(slack_us);
                    if start < tick && !jumped(node, last, t) && v.len() < 20 {
                        v.push(Violation::new(
                            "V14",
                            t,
                            format!(
                                "{node}: completer {} run {run}: a partial batch of {n} (of {}) written at {:.3}s, {} µs before its tick: the run's last write ended at {:.3}s and the next waits a flush interval ({} µs)",
                                plain(completer),
                                s.batch_size,
                                start as f64 / 1e6,
                                tick - start,
                                last as f64 / 1e6,
                                s.interval_us
                            ),
                        ));
                    }
                }
                s.last_end = Some(t);
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => runs.retain(|k, _| &k.0 != node),
            _ => {}
        }
    }
    v
}

/// V12: a drain gives a batch up only when its next retry could not start inside the stop's
/// bound. keel retries a failed write during the drain with the run's backoff (at most
/// `retry_max`, carried in `DrainStarted`) and gives the batch up, reporting it unflushed, only
/// once the next retry would begin at or past the deadline: so no earlier than `bound −
/// retry_max` of local time after the drain began. Judged where a give-up shows: the run's
/// channel closes (`EventsClosed` with `unflushed` > 0, no `StopDeadline`) at the instant of its
/// last failed write. `fastest` is the fastest rate of a node's clock the history allows (a
/// fast clock reaches the deadline sooner in the history's time); `jumped(node, from, to)`
/// excuses a run whose node's clock jumped meanwhile; `slack_us` is the scheduling slack. One
/// that gives a batch up at its first failed write (blind-spot hunt, round 5, completer #14)
/// loses completions to a store blip with most of the bound left. And only a drain gives a batch
/// up: outside one keel retries a failing write until it is written or the stop is heard (its
/// drain then retries it), so a batch whose room is made (`room_made`) after a failed write of
/// the run with no write since (`batch_flushed`) and no drain begun is a batch given up without
/// any bound: judged at that `room_made` (round 36, B #60, MC317: a backoff that hears the stop
/// and gives its batch up, before the drain and its whole bound). The first 20 reported.
pub fn completer_drains_retry<E: Entry>(
    events: &[E],
    fastest: f64,
    slack_us: u64,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    struct Drain {
        began: u64,
        bound_ms: u64,
        retry_max_ms: u64,
        deadline_hit: bool,
        last_failure: Option<u64>,
    }
    let mut drains: BTreeMap<(E::Node, &str, u64), Drain> = BTreeMap::new();
    // (node, completer, run) of runs whose last write failed (none written since)
    let mut failing: BTreeMap<(E::Node, &str, u64), ()> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match e.completer() {
            Some(CompleterEvent::FlushFailed { completer, run, .. }) => {
                failing.insert((node.clone(), plain(completer), *run), ());
            }
            Some(CompleterEvent::BatchFlushed { completer, run, .. }) => {
                failing.remove(&(node.clone(), plain(completer), *run));
            }
            Some(CompleterEvent::RoomMade { completer, run, n, .. }) => {
                let key = (node.clone(), plain(completer), *run);
                if failing.remove(&key).is_some() && !drains.contains_key(&key) && v.len() < 20 {
                    v.push(Violation::new(
                        "V12",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a batch of {n} left the backlog after a failed write, unwritten, with no drain begun: only a drain gives a batch up",
                            plain(completer)
                        ),
                    ));
                }
            }
            _ => {}
        }
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::DrainStarted { completer, run, bound_ms, retry_max_ms, .. }), _) => {
                let d = Drain {
                    began: t,
                    bound_ms: *bound_ms,
                    retry_max_ms: *retry_max_ms,
                    deadline_hit: false,
                    last_failure: None,
                };
                drains.insert((node.clone(), plain(completer), *run), d);
            }
            (Some(CompleterEvent::StopDeadline { completer, run, .. }), _) => {
                if let Some(d) = drains.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.deadline_hit = true;
                }
            }
            (Some(CompleterEvent::FlushFailed { completer, run, .. }), _) => {
                if let Some(d) = drains.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.last_failure = Some(t);
                }
            }
            (Some(CompleterEvent::EventsClosed { completer, run, unflushed, .. }), _) => {
                let Some(d) = drains.remove(&(node.clone(), plain(completer), *run)) else { continue };
                if *unflushed == 0 || d.deadline_hit || d.last_failure != Some(t) || jumped(node, d.began, t) {
                    continue;
                }
                let earliest_ms = d.bound_ms.saturating_sub(d.retry_max_ms) as f64 / fastest.max(1.0);
                let earliest = d.began + (earliest_ms * 1000.0) as u64;
                if t + slack_us < earliest && v.len() < 20 {
                    v.push(Violation::new(
                        "V12",
                        t,
                        format!(
                            "{node}: completer {} run {run}: the drain gave up {unflushed} completions at a failed write {:.3}s after it began, with a bound of {} ms and retries of at most {} ms: the next retry could have run",
                            plain(completer),
                            (t - d.began) as f64 / 1e6,
                            d.bound_ms,
                            d.retry_max_ms
                        ),
                    ));
                }
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => {
                drains.retain(|k, _| &k.0 != node);
                failing.retain(|k, _| &k.0 != node);
            }
            _ => {}
        }
    }
    v
}

/// V13: a drain writes what is queued at once. Once a run's drain begins (`DrainStarted`) with
/// completions queued, or a completion is accepted (`Accepted`) during its drain, the run writes
/// it without waiting for its flush tick: its next write starts within `slack_us` of running time
/// (frozen time not counted) of the later of that instant and the end of the write then in flight
/// (its `BatchFlushed`, or its last `FlushFailed` when it gave the batch up), or of the hand-over
/// to a full event channel then waiting (`HandedOver`, or given up at the bound). A write's start is
/// its `BatchFlushed` less its `took_us` (retries included), a local duration stretched by
/// `slowest`, the slowest rate of a node's clock the history allows, and shrunk by `fastest`, the
/// fastest (a fast clock measures a write longer than it took); `jumped(node, from, to)`
/// excuses a run whose node's clock jumped meanwhile. A run that writes nothing more (its node
/// crashed, it gave the batch up) is not judged. One that waits for the tick (blind-spot hunt,
/// round 7, #9) spends up to a flush interval of the stop's bound on every round of the drain;
/// one deaf to the completions handed in during its drain (round 18, A #34) holds each of them
/// to its tick.
pub fn completer_drains_write_at_once<E: Entry>(
    events: &[E],
    (slowest, fastest): (f64, f64),
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    struct Drain {
        began: u64,
        /// Since when something is queued that no write begun since has taken: the drain's start
        /// with completions queued, or the first acceptance after the last judged write.
        queued_since: Option<u64>,
        /// Ends of the run's writes since the drain began (`BatchFlushed`, `FlushFailed`).
        write_ends: Vec<u64>,
    }
    let mut open: BTreeMap<(E::Node, &str, u64), Drain> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::DrainStarted { completer, run, pending, .. }), _) => {
                let d = Drain { began: t, queued_since: (*pending > 0).then_some(t), write_ends: Vec::new() };
                open.insert((node.clone(), plain(completer), *run), d);
            }
            (Some(CompleterEvent::Accepted { completer, run, .. }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.queued_since.get_or_insert(t);
                }
            }
            (Some(CompleterEvent::FlushFailed { completer, run, .. }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.write_ends.push(t);
                }
            }
            (Some(CompleterEvent::BatchFlushed { completer, run, n, took_us, .. }), _) => {
                let key = (node.clone(), plain(completer), *run);
                let Some(d) = open.get_mut(&key) else { continue };
                let took = (*took_us as f64 / slowest.clamp(0.01, 1.0)) as u64;
                // Its start lies between the earliest the slowest clock allows and the latest
                // (its duration at real time). Only a write that began before the queueing for
                // sure was in flight then: one that may have begun at it is the write that
                // takes it (pool seed 8: a write begun at the drain, its start stretched by a
                // clock of rate 0.94 in the plan to before it, made the rule judge the next).
                // The latest: at the fastest clock (completerclock seed 13: a write begun at the
                // end of the one in flight, measured 7 716 µs by a clock of rate 1.013, was read
                // as begun 101 µs before that end, and the rule judged it as the drain's late
                // first write).
                let start = t.saturating_sub(took);
                let latest = t.saturating_sub((*took_us as f64 / fastest.max(1.0)) as u64).max(start);
                let Some(since) = d.queued_since else {
                    d.write_ends.push(t);
                    continue;
                };
                if latest.saturating_add(1) < since {
                    d.write_ends.push(t); // the write in flight when it was queued
                    continue;
                }
                // A microsecond of slack: the end is read on global time and the start from the
                // node's clock, each floored to a whole microsecond (completer seed 26: a write
                // begun at the previous one's end read as begun 1 µs before it).
                let after = d
                    .write_ends
                    .iter()
                    .copied()
                    .filter(|&w| w <= latest.saturating_add(1))
                    .max()
                    .unwrap_or(0)
                    .max(since);
                let due = reach(after, slack_us, &frozen(node));
                if start > due && !jumped(node, d.began, t) && v.len() < 20 {
                    let what =
                        if since == d.began { "its drain began" } else { "a completion was accepted in its drain" };
                    v.push(Violation::new(
                        "V13",
                        t,
                        format!(
                            "{node}: completer {} run {run}: {what} at {:.3}s, and its next write (a batch of {n}) started only at {:.3}s, {} µs after it could: the drain waited instead of writing",
                            plain(completer),
                            since as f64 / 1e6,
                            start as f64 / 1e6,
                            start - after
                        ),
                    ));
                }
                d.queued_since = None;
                d.write_ends.push(t);
            }
            // A hand-over that waited on a full channel: the run could write nothing before it
            // ended, like a write in flight.
            (
                Some(
                    CompleterEvent::HandedOver { completer, run, .. }
                    | CompleterEvent::EventsUndeliveredAtBound { completer, run, .. },
                ),
                _,
            ) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.write_ends.push(t);
                }
            }
            // A batch given up: what was queued at the drain is gone, and a later write is of
            // completions handed in since (completer seed 2840: a burst producer's, 19 ms after
            // the batch was given up, with nothing queued between).
            (Some(CompleterEvent::RetryBudgetExhausted { completer, run }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.queued_since = None;
                }
            }
            // A batch's room made with nothing left in the backlog: nothing is queued, whether
            // the batch was written or given up at the bound (completer seed 1419: a batch given
            // up at 4.651 s because its next retry would pass the bound, no budget exhausted,
            // and a burst producer's completions handed in 28 ms later).
            (Some(CompleterEvent::RoomMade { completer, run, backlog: 0, .. }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.queued_since = None;
                }
            }
            (Some(CompleterEvent::EventsClosed { completer, run, .. }), _) => {
                open.remove(&(node.clone(), plain(completer), *run));
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => open.retain(|k, _| &k.0 != node),
            _ => {}
        }
    }
    v
}

/// V17: a drain ends as soon as it can. Once a run's drain began (`DrainStarted`), its event
/// channel closes (`EventsClosed`) within `slack_us` of running time (frozen time not counted)
/// of the latest of the drain's start, its last producer's stop (`ProducerStopped`) and the end
/// of its last store write (`BatchFlushed`, `FlushFailed`) or hand-over to a full channel
/// (`HandedOver`, or given up at the bound): with no producer left and nothing
/// queued keel's run ends at once, woken by the producer leaving or the write ending, and waits
/// on no clock. A run whose stop reported its bound reached (`StopDeadline`) is V4's to judge.
/// One that sleeps instead (hunt round 11 #17: a producer leaving does not wake the run) holds
/// the stop up to a flush interval, or to its bound, on every drain. Judged at the close; a run
/// whose node crashed or restarted first is not. The first 20 reported.
pub fn completer_drains_end_at_once<E: Entry>(
    events: &[E],
    slack_us: u64,
    frozen: impl Fn(&E::Node) -> Vec<Span>,
) -> Vec<Violation> {
    struct Drain {
        began: u64,
        /// The latest of the drain's start, a producer's stop and a write's end.
        ready: u64,
        why: &'static str,
        bound_reached: bool,
    }
    let mut open: BTreeMap<(E::Node, &str, u64), Drain> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        match (e.completer(), e.fact()) {
            (Some(CompleterEvent::DrainStarted { completer, run, .. }), _) => {
                open.insert(
                    (node.clone(), plain(completer), *run),
                    Drain { began: t, ready: t, why: "the drain's start", bound_reached: false },
                );
            }
            (Some(CompleterEvent::ProducerStopped { completer, run, .. }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    (d.ready, d.why) = (t, "its last producer's stop");
                }
            }
            (
                Some(
                    CompleterEvent::BatchFlushed { completer, run, .. }
                    | CompleterEvent::FlushFailed { completer, run, .. },
                ),
                _,
            ) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    (d.ready, d.why) = (t, "the end of its last store write");
                }
            }
            (
                Some(
                    CompleterEvent::HandedOver { completer, run, .. }
                    | CompleterEvent::EventsUndeliveredAtBound { completer, run, .. },
                ),
                _,
            ) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    (d.ready, d.why) = (t, "the end of its hand-over to a full channel");
                }
            }
            (Some(CompleterEvent::StopDeadline { completer, run, .. }), _) => {
                if let Some(d) = open.get_mut(&(node.clone(), plain(completer), *run)) {
                    d.bound_reached = true;
                }
            }
            (Some(CompleterEvent::EventsClosed { completer, run, .. }), _) => {
                let Some(d) = open.remove(&(node.clone(), plain(completer), *run)) else { continue };
                let due = reach(d.ready, slack_us, &frozen(node));
                if !d.bound_reached && t > due && v.len() < 20 {
                    v.push(Violation::new(
                        "V17",
                        t,
                        format!(
                            "{node}: completer {} run {run}: its drain began at {:.3}s and could end at {:.3}s ({}), but its channel closed only {} µs later: the drain waited on nothing",
                            plain(completer),
                            d.began as f64 / 1e6,
                            d.ready as f64 / 1e6,
                            d.why,
                            t - d.ready
                        ),
                    ));
                }
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => open.retain(|k, _| &k.0 != node),
            _ => {}
        }
    }
    v
}

/// R17: a resync reports the revision its replica left (`resynced`'s `old_rev`): the revision
/// of the replica's last `applied`, `joined` or `resynced`. An `old_rev` read after the load
/// (blind-spot hunt, round 20, #7, MC184) says the replica never moved, and hides a replica
/// that went back or jumped from the operator who reads the logs. Judged per node and map at
/// each resync; a node's start forgets its replicas. The first 20 reported.
pub fn rmap_resyncs_report_the_revision_left<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut at: BTreeMap<(&E::Node, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let n = e.node();
        if let Some(Fact::NodeStart | Fact::NodeCrash) = e.fact() {
            at.retain(|k, _| k.0 != n);
            continue;
        }
        match e.rmap() {
            Some(RmapEvent::Applied { map, rev } | RmapEvent::Joined { map, rev, .. }) => {
                at.insert((n, plain(map)), *rev);
            }
            Some(RmapEvent::Resynced { map, rev, old_rev, .. }) => {
                if let Some(left) = at.insert((n, plain(map)), *rev)
                    && left != *old_rev
                    && v.len() < 20
                {
                    v.push(Violation::new(
                        "R17",
                        e.t_us(),
                        format!(
                            "{n}: map {} resynced to {rev} reporting it left {old_rev}; its replica was at {left}",
                            plain(map)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// R2 on the way, not only at the end: a replica's revision (what it applied, loaded, and what
/// its readers saw: `read` names the reads a workload recorded, as (map, revision)) never goes
/// back within a node's life, except by a resync after the store lost its data. R3 at the
/// instant `set_and_wait` returns (in the core, before the caller's task runs again): the
/// replica has applied the write's revision. Judged per node and map; the first 20 reported.
pub fn rmap_revisions<'a, E: Entry>(events: &'a [E], read: impl Fn(&'a E) -> Option<(&'a str, u64)>) -> Vec<Violation> {
    // When the store lost its data, and when it was up again after, in order.
    let mut losses: Vec<(u64, Option<u64>)> = Vec::new();
    // The losses a snapshot whose last attempt spans [sent, got] was read after: it was read
    // at the store some time in that span, never while the store was down, so a loss counts
    // unless its crash falls inside the span with the store back only after the reply (rmap
    // seeds 750 and 128: a snapshot read before a loss, its reply delivered after it; the data
    // it loaded was then lost, and the next resync went back, rightly).
    let before = |losses: &[(u64, Option<u64>)], sent: u64, got: u64| {
        losses.iter().filter(|(crash, up)| *crash < sent || up.is_some_and(|u| u < got)).count() as u64
    };
    // (node, map) → (revision, data losses when it last loaded a snapshot)
    let mut last: BTreeMap<(&E::Node, &str), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (n, t) = (e.node(), e.t_us());
        let (map, rev, what, resync) = match (e.fact(), e.rmap()) {
            (Some(Fact::StoreLostData), _) => {
                losses.push((t, None));
                continue;
            }
            (Some(Fact::StoreUp), _) => {
                if let Some((_, up @ None)) = losses.last_mut() {
                    *up = Some(t);
                }
                continue;
            }
            (Some(Fact::NodeStart), _) => {
                last.retain(|k, _| k.0 != n);
                continue;
            }
            (_, Some(RmapEvent::WaitReturned { map, rev, local_rev })) => {
                if local_rev < rev {
                    v.push(Violation::new(
                        "R3",
                        t,
                        format!(
                            "{n}: set_and_wait returned its write's revision {rev} with the replica at {local_rev}"
                        ),
                    ));
                }
                (plain(map), *local_rev, "a returning set_and_wait", None)
            }
            (_, Some(RmapEvent::Applied { map, rev })) => (plain(map), *rev, "an applied change", None),
            (_, Some(RmapEvent::Joined { map, rev, .. })) => (plain(map), *rev, "a join", Some(t)),
            (_, Some(RmapEvent::Resynced { map, rev, took_us, .. })) => {
                (plain(map), *rev, "a resync", Some(t.saturating_sub(*took_us)))
            }
            _ => match read(e) {
                Some((map, rev)) => (map, rev, "a read", None),
                None => continue,
            },
        };
        let now_losses = losses.len() as u64;
        let (prev, loaded_losses) = last.get(&(n, map)).copied().unwrap_or((0, now_losses));
        if rev < prev && !(resync.is_some() && now_losses > loaded_losses) {
            v.push(Violation::new(
                "R2",
                t,
                format!("{n}: revision went back from {prev} to {rev} ({what}) without a data loss"),
            ));
        }
        last.insert((n, map), (rev, resync.map_or(loaded_losses, |sent| before(&losses, sent, t))));
    }
    v.truncate(20);
    v
}

/// R8: a `set_and_wait` parks only below its replica's revision, and no parked waiter outlives
/// its replica reaching its write. Judged at two instants: when a waiter parks (`WaiterArmed`
/// with `parked`) while its node's replica already holds the write's revision (the last
/// `Joined`, `Resynced` or `Notified` of that map), and when an apply step or a load ends
/// (`Notified`, `Resynced`, `Joined` at revision r) with a waiter of a write at or below r still
/// parked. keel emits `WaiterArmed` and `WaiterWoken` under the registry's lock, and `Notified`
/// after the waiters an applied change completes are collected, so a correct keel never
/// shows either, whatever the threads; a waiter that parks for nothing returns only at the next
/// change of its map (MC49: on a quiet map, never), and no end-of-run check sees the delay while
/// writes continue. A waiter leaves the count when it is woken, cancelled before the apply loop
/// collected it, or its map stops; a node's start (a new life) forgets its waiters.
pub fn rmap_waiters_wake<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, map) → the replica's revision, from the events that end an apply step or a load.
    let mut have: BTreeMap<(&E::Node, &str), u64> = BTreeMap::new();
    // (node, map) → parked waiters: the write's revision → how many.
    let mut parked: BTreeMap<(&E::Node, &str), BTreeMap<u64, usize>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (n, t) = (e.node(), e.t_us());
        if matches!(e.fact(), Some(Fact::NodeStart | Fact::NodeCrash)) {
            have.retain(|k, _| k.0 != n);
            parked.retain(|k, _| k.0 != n);
            continue;
        }
        let Some(r) = e.rmap() else { continue };
        let (map, reached) = match r {
            RmapEvent::WaiterArmed { map, rev, parked: true } => {
                let key = (n, plain(map));
                if let Some(h) = have.get(&key).filter(|h| **h >= *rev) {
                    v.push(Violation::new(
                        "R8",
                        t,
                        format!("{n}: a set_and_wait of map {map} parked for its write at {rev}, yet the replica already holds revision {h}: it waits for the next change"),
                    ));
                }
                *parked.entry(key).or_default().entry(*rev).or_default() += 1;
                continue;
            }
            RmapEvent::WaiterWoken { map, rev, .. }
            | RmapEvent::WaiterCancelled { map, rev, armed: true, claimed: false } => {
                if let Some(p) = parked.get_mut(&(n, plain(map)))
                    && let Some(c) = p.get_mut(rev)
                {
                    *c -= 1;
                    if *c == 0 {
                        p.remove(rev);
                    }
                }
                continue;
            }
            RmapEvent::Stopped { map, .. } => {
                parked.remove(&(n, plain(map)));
                continue;
            }
            RmapEvent::Notified { map, rev } => (map, *rev),
            RmapEvent::Joined { map, rev, .. } => (map, *rev),
            RmapEvent::Resynced { map, rev, .. } => (map, *rev),
            _ => continue,
        };
        let key = (n, plain(map));
        have.insert(key, reached);
        if let Some(p) = parked.get_mut(&key) {
            let stuck: Vec<u64> = p.range(..=reached).map(|(r, _)| *r).collect();
            for w in stuck {
                p.remove(&w);
                v.push(Violation::new(
                    "R8",
                    t,
                    format!("{n}: the replica of map {map} reached revision {reached}, yet a set_and_wait of its write at {w} is still parked"),
                ));
            }
        }
    }
    v.truncate(20);
    v
}

/// F1 at a fenced resource: no write accepted with a fence below one accepted before for the same
/// key. `writes` in the order the resource decided them: (µs, key, fence, writer, accepted).
pub fn resource_fence_order<'a, W: Display>(
    writes: impl IntoIterator<Item = (u64, &'a str, u64, W, bool)>,
) -> Vec<Violation> {
    let mut highest: BTreeMap<&str, (u64, String)> = BTreeMap::new();
    let mut v = Vec::new();
    for (t, key, fence, writer, accepted) in writes {
        if !accepted {
            continue;
        }
        match highest.get(key) {
            Some((h, by)) if fence < *h => v.push(Violation::new(
                "F1",
                t,
                format!(
                    "{writer} wrote {key:?} with fence {fence} after {by} wrote it with fence {h}: a stale writer's side effect landed"
                ),
            )),
            _ => {
                highest.insert(key, (fence, writer.to_string()));
            }
        }
    }
    v
}

/// S1 (fences): every grant of a lease (keel's `Held`) carries a fence above every earlier
/// grant's, whichever node it went to.
pub fn grant_order<E: Entry>(events: &[E]) -> Vec<Violation> {
    let mut top: BTreeMap<&str, (u64, &E::Node)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(LeaseEvent::Held { lease, fence, .. }) = e.lease() {
            let lease = plain(lease);
            if let Some((f, by)) = top.get(lease).copied()
                && *fence <= f
            {
                v.push(Violation::new(
                    "S1",
                    e.t_us(),
                    format!("{}: granted {lease} with fence {fence}, not above {by}'s earlier grant {f}", e.node()),
                ));
            }
            let f = top.get(lease).map_or(0, |x| x.0);
            if *fence > f {
                top.insert(lease, (*fence, e.node()));
            }
        }
    }
    v
}

/// One span during which a node believed it held a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Belief<N> {
    /// The believer.
    pub node: N,
    /// The lease.
    pub lease: String,
    /// The grant it believed it held.
    pub fence: u64,
    /// From `Held` to `Lost`, `Released`, the node's crash or restart (or `end_us`).
    pub span: Span,
}

/// Every belief of every node, from keel's `Held` to its `SteppingDown` (from there its handle
/// and its guards read the grant lost, while its work stops), `Lost` or `Released` (or the
/// node's crash, restart, or the end).
pub fn beliefs<E: Entry>(events: &[E], end_us: u64) -> Vec<Belief<E::Node>> {
    let mut open: BTreeMap<(E::Node, String), (u64, u64)> = BTreeMap::new(); // → (since, fence)
    let mut out = Vec::new();
    let close = |out: &mut Vec<Belief<E::Node>>, (node, lease): (E::Node, String), (since, fence), t| {
        out.push(Belief { node, lease, fence, span: Span { start: since, end: t } });
    };
    for e in events {
        let (n, t) = (e.node(), e.t_us());
        match (e.lease(), e.fact()) {
            (Some(LeaseEvent::Held { lease, fence, .. }), _) => {
                let k = (n.clone(), plain(lease).to_owned());
                if let Some(b) = open.remove(&k) {
                    close(&mut out, k.clone(), b, t);
                }
                open.insert(k, (t, *fence));
            }
            (
                Some(
                    LeaseEvent::SteppingDown { lease, .. }
                    | LeaseEvent::Lost { lease, .. }
                    | LeaseEvent::Released { lease, .. },
                ),
                _,
            ) => {
                let k = (n.clone(), plain(lease).to_owned());
                if let Some(b) = open.remove(&k) {
                    close(&mut out, k, b, t);
                }
            }
            (_, Some(Fact::NodeCrash | Fact::NodeStart)) => {
                let mine: Vec<_> = open.keys().filter(|k| &k.0 == n).cloned().collect();
                for k in mine {
                    if let Some(b) = open.remove(&k) {
                        close(&mut out, k, b, t);
                    }
                }
            }
            _ => {}
        }
    }
    for (k, b) in open {
        close(&mut out, k, b, end_us);
    }
    out.sort_by_key(|b| (b.span.start, b.fence));
    out
}

/// V9: a service group's stop returns only once every service of the group stopped, and returns
/// the first error their stops reported (`GroupStopped`'s `failed` is the first `StopFailed` of
/// one of its services since the group's last stop; none: it returned `Ok`). At each
/// `GroupStopped` (the group's stop returning, whatever it reports), no run of a lifecycle
/// named as one of the group's services (`RunStarted` without its `RunExited`) is still going
/// on that node. A node's start or crash forgets its runs (they died with it). A name is judged
/// only while it is one service's: once two runs of that name and one number were going on a
/// node at once (two lifecycles of one name started together), it is not judged again in that
/// node's life, since which run belongs to the group cannot be told (V15's run tracker).
pub fn group_stops<E: Entry>(events: &[E]) -> Vec<Violation> {
    #[derive(Default)]
    struct Node<'a> {
        runs: crate::services::Runs<'a>,
        /// Services whose stop reported an error since the last group stop returned, in order.
        failed: Vec<&'a str>,
    }
    let mut v = Vec::new();
    crate::services::each_lifecycle_event(events, |e, node: &mut Node<'_>, l| match l {
        LifecycleEvent::RunStarted { service, run } => {
            node.runs.started(plain(service), *run);
        }
        LifecycleEvent::RunExited { service, run } => node.runs.exited(plain(service), *run),
        LifecycleEvent::StopFailed { service, .. } => node.failed.push(plain(service)),
        LifecycleEvent::GroupStopped { services, failed } => {
            let names: Vec<&str> = services.iter().map(plain).collect();
            for s in &names {
                if let Some(run) = node.runs.going(s) {
                    let what =
                        format!("{}: a group's stop returned while its service {s} still runs (run {run})", e.node());
                    v.push(Violation::new("V9", e.t_us(), what));
                }
            }
            // It returns the first error its services' stops reported (none: `Ok`).
            let first = node.failed.iter().find(|s| names.contains(s)).copied();
            let returned = failed.as_ref().map(plain);
            if returned != first {
                let what = format!(
                    "{}: a group's stop returned {} though the first of its services to fail its stop was {}",
                    e.node(),
                    returned.map_or_else(|| "Ok".to_owned(), |s| format!("{s}'s error")),
                    first.unwrap_or("none")
                );
                v.push(Violation::new("V9", e.t_us(), what));
            }
            node.failed.retain(|s| !names.contains(s));
        }
        _ => {}
    });
    v.truncate(20);
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::{Event, LeaseEvent, LifecycleEvent, Text};

    use super::*;
    use crate::test_entry::{E, Freed};

    /// A failed batch write of completer c's run 1, its outcome unknown.
    fn unknown_write_failure() -> CompleterEvent<'static> {
        let (error, outcome) = ("x".into(), keel::Outcome::Unknown);
        CompleterEvent::FlushFailed { completer: "c".into(), run: 1, n: 2, error, outcome, took_us: 0 }
    }

    #[test]
    fn a_channel_closed_under_a_registered_producer_fires_v1_whatever_the_stop_reports() {
        fn ce(t: u64, e: CompleterEvent<'_>) -> E {
            E(t, "n0", Some(Event::Completer(e.to_static())), None)
        }
        let reg = |t, p: &str| {
            ce(t, CompleterEvent::ProducerRegistered { completer: "c".into(), run: 1, producer: p.into() })
        };
        let stop =
            |t, p: &str| ce(t, CompleterEvent::ProducerStopped { completer: "c".into(), run: 1, producer: p.into() });
        let closed = |t, left| {
            let (unflushed, undelivered) = (0, 0);
            ce(
                t,
                CompleterEvent::EventsClosed {
                    completer: "c".into(),
                    run: 1,
                    unflushed,
                    undelivered,
                    producers_left: left,
                },
            )
        };
        let deadline =
            |t, producers| ce(t, CompleterEvent::StopDeadline { completer: "c".into(), run: 1, producers, pending: 0 });
        // Both producers stopped before the close: no alarm.
        assert!(completer_channel(&[reg(1, "a"), reg(2, "a"), stop(3, "a"), stop(4, "a"), closed(5, 0)]).is_empty());
        // A drain done with "a" still registered, its report saying nobody is left (MC78).
        let v = completer_channel(&[reg(1, "a"), reg(2, "b"), stop(3, "b"), closed(5, 0)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V1", 5)], "{v:?}");
        // At the bound the report must name exactly the producers still registered.
        assert!(completer_channel(&[reg(1, "a"), deadline(4, 1), closed(5, 1)]).is_empty());
        let v = completer_channel(&[reg(1, "a"), reg(2, "b"), deadline(4, 1), closed(5, 1)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V1", 5)], "{v:?}");
        // A history that starts after a registration counts fewer: not a violation.
        assert!(completer_channel(&[deadline(4, 1), closed(5, 1)]).is_empty());
        // A node's crash ends its runs: the next life's run 1 starts with nobody registered.
        let crash = E(3, "n0", None, Some(Fact::NodeCrash));
        assert!(completer_channel(&[reg(1, "a"), crash, closed(5, 0)]).is_empty());
        // A registration after the drain began (MC87), judged at the registration.
        let drain = |t| {
            let (pending, producers, bound_ms, retry_max_ms) = (0, 1, 600, 200);
            ce(
                t,
                CompleterEvent::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending,
                    producers,
                    bound_ms,
                    retry_max_ms,
                },
            )
        };
        let v = completer_channel(&[reg(1, "a"), drain(2), reg(3, "b"), stop(4, "a"), stop(5, "b"), closed(6, 0)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V1", 3)], "{v:?}");
        assert!(completer_channel(&[reg(1, "a"), drain(2), stop(4, "a"), closed(6, 0)]).is_empty());
    }

    #[test]
    fn a_manager_that_gives_up_its_drain_before_the_bound_fires_v4() {
        fn ce(t_ms: u64, e: CompleterEvent<'_>) -> E {
            E(t_ms * 1000, "n0", Some(Event::Completer(e.to_static())), None)
        }
        let asked = |t| ce(t, CompleterEvent::SmStopRequested { completer: "c".into(), run: 2, bound_ms: 200 });
        let gave_up = |t| ce(t, CompleterEvent::SmDrainTimeout { completer: "c".into(), run: 2 });
        let judge = |h: &[E], fastest| {
            subscription_drains_keep_their_bound(h, fastest, 2_000, |_, _, _| false)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(judge(&[asked(100), gave_up(300)], 1.0), []);
        // At once (MC93: the bound ran from the run's start).
        assert_eq!(judge(&[asked(100), gave_up(100)], 1.0), [("V4", 100_000)]);
        // A clock 10 % fast reaches the bound at 282 ms.
        assert_eq!(judge(&[asked(100), gave_up(282)], 1.1), []);
        assert_eq!(judge(&[asked(100), gave_up(282)], 1.0), [("V4", 282_000)]);
    }

    #[test]
    fn a_drain_that_closes_late_after_its_last_producer_left_fires_v17() {
        fn ce(t_ms: u64, e: CompleterEvent<'_>) -> E {
            E(t_ms * 1000, "n0", Some(Event::Completer(e.to_static())), None)
        }
        let drain = |t| {
            let (pending, producers, bound_ms, retry_max_ms) = (0, 1, 600, 200);
            ce(
                t,
                CompleterEvent::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending,
                    producers,
                    bound_ms,
                    retry_max_ms,
                },
            )
        };
        let stop = |t| ce(t, CompleterEvent::ProducerStopped { completer: "c".into(), run: 1, producer: "p".into() });
        let flushed = |t| {
            let (n, rev, retried, took_us, attempt_us) = (1, 1, false, 3_000, 3_000);
            ce(t, CompleterEvent::BatchFlushed { completer: "c".into(), run: 1, n, rev, retried, took_us, attempt_us })
        };
        let closed = |t| {
            let (unflushed, undelivered, producers_left) = (0, 0, 0);
            ce(
                t,
                CompleterEvent::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered, producers_left },
            )
        };
        let deadline =
            |t| ce(t, CompleterEvent::StopDeadline { completer: "c".into(), run: 1, producers: 1, pending: 0 });
        let judge = |h: &[E]| {
            completer_drains_end_at_once(h, 2_000, |_| vec![]).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        // Closed at the last producer's stop, or after the write that followed it: no alarm.
        assert!(judge(&[drain(10), stop(30), closed(30)]).is_empty());
        assert!(judge(&[drain(10), stop(30), flushed(34), closed(35)]).is_empty());
        // MC88: the run slept to its tick after the producer left.
        assert_eq!(judge(&[drain(10), stop(30), closed(45)]), [("V17", 45_000)]);
        // Nothing to wait for at the drain's start, and a late close anyway.
        assert_eq!(judge(&[drain(10), closed(13)]), [("V17", 13_000)]);
        // A stop at its bound is V4's; a node paused meanwhile is not late by its pause.
        assert!(judge(&[drain(10), stop(30), deadline(610), closed(610)]).is_empty());
        let paused = completer_drains_end_at_once(&[drain(10), stop(30), closed(45)], 2_000, |_| {
            vec![Span { start: 30_500, end: 44_000 }]
        });
        assert!(paused.is_empty(), "{paused:?}");
    }

    /// V17 to the microsecond (2 ms of slack: a close 2 ms after the drain's start is in time, one
    /// a microsecond later is not), from the end of a hand-over to a full channel (or its give-up
    /// at the bound); a drain whose node crashed or restarted is not judged, whatever another
    /// node does; twenty named at most.
    #[test]
    fn v17_judges_a_close_to_the_microsecond_after_a_hand_over_and_forgets_a_crashed_node() {
        use keel::observe::CompleterEvent as C;
        let drain = |t, node| {
            let (pending, producers, bound_ms, retry_max_ms) = (0, 0, 600, 200);
            ce_at(
                t,
                node,
                C::DrainStarted { completer: "c".into(), run: 1, pending, producers, bound_ms, retry_max_ms },
            )
        };
        let closed = |t, node| {
            let (unflushed, undelivered, producers_left) = (0, 0, 0);
            ce_at(t, node, C::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered, producers_left })
        };
        let judge = |h: &[E]| {
            completer_drains_end_at_once(h, 2_000, |_| vec![]).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(judge(&[drain(10_000, "a"), closed(12_000, "a")]), []);
        assert_eq!(judge(&[drain(10_000, "a"), closed(12_001, "a")]), [("V17", 12_001)]);
        // A hand-over waiting on a full channel until 30 ms: the run could end only then.
        let handed = ce_at(30_000, "a", C::HandedOver { completer: "c".into(), run: 1, n: 2, waited_us: 20_000 });
        assert_eq!(judge(&[drain(10_000, "a"), handed.clone(), closed(31_000, "a")]), []);
        assert_eq!(judge(&[drain(10_000, "a"), handed, closed(45_000, "a")]), [("V17", 45_000)]);
        let at_bound =
            ce_at(30_000, "a", C::EventsUndeliveredAtBound { completer: "c".into(), run: 1, n: 2, left_us: 0 });
        assert_eq!(judge(&[drain(10_000, "a"), at_bound, closed(31_000, "a")]), []);
        // A crash or restart of the run's node first: not judged; another node's: judged.
        for fact in [Fact::NodeCrash, Fact::NodeStart] {
            let on = |node| E(11_000, node, None, Some(fact));
            assert_eq!(judge(&[drain(10_000, "a"), on("a"), closed(45_000, "a")]), []);
            assert_eq!(judge(&[drain(10_000, "a"), on("b"), closed(45_000, "a")]), [("V17", 45_000)]);
        }
        // Twenty late closes named at most.
        let h: Vec<E> = (0..25).flat_map(|i| [drain(i * 100_000, "a"), closed(i * 100_000 + 50_000, "a")]).collect();
        assert_eq!(judge(&h).len(), 20);
    }

    #[test]
    fn a_job_both_acked_and_redispatched_off_its_worker_fires_p17() {
        fn pe(t_ms: u64, e: PoolEvent<'_>) -> E {
            E(t_ms * 1000, "n0", Some(Event::Pool(e.to_static())), None)
        }
        let acked =
            |t, worker: &str, attempt| pe(t, PoolEvent::Acked { job: "j".into(), worker: worker.into(), attempt });
        let redispatched = |t, from: &str, attempt| {
            let kind = MoveKind::Redispatched;
            let to = "x".into();
            pe(
                t,
                PoolEvent::Moved {
                    kind,
                    job: "j".into(),
                    from: from.into(),
                    worker: to,
                    attempt,
                    now_ms: t,
                    cleaned: "".into(),
                },
            )
        };
        // Either order: fired at the later one.
        for events in
            [vec![acked(10, "w", 1), redispatched(20, "w", 2)], vec![redispatched(10, "w", 2), acked(20, "w", 1)]]
        {
            let v = redispatches_of_unacked_jobs(&events);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!((v[0].invariant, v[0].t_us), ("P17", 20_000));
        }
        // Another attempt's ack, or another worker's, is no conflict; nor a requeue by a cleanup.
        assert!(redispatches_of_unacked_jobs(&[acked(10, "w", 2), redispatched(20, "w", 2)]).is_empty());
        assert!(redispatches_of_unacked_jobs(&[acked(10, "v", 1), redispatched(20, "w", 2)]).is_empty());
        let requeued = PoolEvent::Moved {
            kind: MoveKind::Requeued,
            job: "j".into(),
            from: "w".into(),
            worker: "x".into(),
            attempt: 2,
            now_ms: 20,
            cleaned: "w".into(),
        };
        assert!(redispatches_of_unacked_jobs(&[acked(10, "w", 1), pe(20, requeued)]).is_empty());
        // A new life of the key (dispatched anew after its completion) starts its attempts over.
        let again = PoolEvent::Dispatched { job: "j".into(), worker: "w".into(), attempt: 1, now_ms: 15 };
        assert!(
            redispatches_of_unacked_jobs(&[acked(10, "w", 1), pe(15, again.clone()), redispatched(20, "w", 2)])
                .is_empty()
        );
        assert!(
            redispatches_of_unacked_jobs(&[redispatched(10, "w", 2), pe(15, again.clone()), acked(20, "w", 1)])
                .is_empty()
        );
        // Another job's new life leaves this one's attempts as they were.
        let other = PoolEvent::Dispatched { job: "k".into(), worker: "w".into(), attempt: 1, now_ms: 15 };
        assert_eq!(
            redispatches_of_unacked_jobs(&[redispatched(10, "w", 2), pe(15, other), acked(20, "w", 1)]).len(),
            1
        );
        // A key the store made free (its tombstone deleted past the dedup window) starts its new
        // life before that life's dispatch comes home: the new life's re-dispatch is not matched
        // with the old life's ack of the same attempt. Another key freed changes nothing.
        let of = Freed::of;
        let lives = |job| [of(acked(10, "w", 1)), Freed::key(15, job), of(redispatched(20, "w", 2))];
        assert!(redispatches_of_unacked_jobs(&lives("j")).is_empty());
        assert_eq!(redispatches_of_unacked_jobs(&lives("k")).len(), 1);
    }

    fn held(t: u64, n: &'static str, fence: u64) -> E {
        E(t, n, Some(Event::Lease(LeaseEvent::Held { lease: "L".into(), owner: Text::Owned(n.into()), fence })), None)
    }

    fn released(t: u64, n: &'static str) -> E {
        E(t, n, Some(Event::Lease(LeaseEvent::Released { lease: "L".into(), owner: Text::Owned(n.into()) })), None)
    }

    #[test]
    fn grant_order_fires_on_a_fence_that_does_not_go_up() {
        assert!(grant_order(&[held(1, "a", 1), released(2, "a"), held(3, "b", 2)]).is_empty());
        let v = grant_order(&[held(1, "a", 5), released(2, "a"), held(3, "b", 5)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "S1", 3));
    }

    /// S1 names the grant a repeated fence fails to go above: the first to carry that fence, not
    /// a repeat of it (itself a violation).
    #[test]
    fn grant_order_names_the_first_grant_of_the_top_fence() {
        let v = grant_order(&[held(1, "a", 5), held(3, "b", 5), held(5, "c", 5)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("S1", 3), ("S1", 5)]);
        assert!(v[1].detail.contains("not above a's earlier grant 5"), "{}", v[1].detail);
    }

    #[test]
    fn beliefs_end_at_release_crash_restart_or_the_end() {
        let h = [
            held(1, "a", 1),
            released(5, "a"),
            held(6, "b", 2),
            E(9, "b", None, Some(Fact::NodeCrash)),
            held(10, "c", 3),
            E(12, "c", None, Some(Fact::NodeStart)),
            held(13, "a", 4),
        ];
        let spans: Vec<_> = beliefs(&h, 20).into_iter().map(|b| (b.node, b.fence, b.span.start, b.span.end)).collect();
        assert_eq!(spans, [("a", 1, 1, 5), ("b", 2, 6, 9), ("c", 3, 10, 12), ("a", 4, 13, 20)]);
    }

    fn sm(t: u64, n: &'static str, e: keel::observe::CompleterEvent<'static>) -> E {
        E(t, n, Some(Event::Completer(e)), None)
    }

    fn asked(t: u64, run: u64) -> E {
        sm(t, "a", keel::observe::CompleterEvent::SmStopRequested { completer: "c".into(), run, bound_ms: 1 })
    }

    fn closed(t: u64, run: u64) -> E {
        let e = keel::observe::CompleterEvent::SubscriptionsClosed {
            completer: "c".into(),
            run,
            subs: 1,
            delivered: 0,
            dropped: 0,
        };
        sm(t, "a", e)
    }

    /// V14: with batches of 10 every 100 ms, a partial batch written 100 ms after the last write
    /// ended is on time, one 10 ms after is early (MC69), a full one is not judged, nor one in a
    /// drain, nor the run's first.
    #[test]
    fn a_partial_batch_before_its_tick_fires_v14() {
        use keel::observe::CompleterEvent as C;
        let started = sm(
            0,
            "a",
            C::CompleterStarted {
                completer: "c".into(),
                run: 1,
                batch_size: 10,
                flush_interval_us: 100_000,
                retry_min_us: 10_000,
                retry_max_us: 100_000,
                retry_budget: 8,
                op_timeout_us: 200_000,
                backlog: 4096,
            },
        );
        let flushed = |t_ms: u64, n: usize| {
            sm(
                t_ms * 1000,
                "a",
                C::BatchFlushed {
                    completer: "c".into(),
                    run: 1,
                    n,
                    rev: 1,
                    retried: false,
                    took_us: 2_000,
                    attempt_us: 2_000,
                },
            )
        };
        let judge = |h: &[E]| completer_partial_batches_wait_for_the_tick(h, 1.0, 2_000, |_, _, _| false);
        assert!(judge(&[started.clone(), flushed(50, 3), flushed(152, 3)]).is_empty());
        let v = judge(&[started.clone(), flushed(50, 3), flushed(62, 3)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V14", 62_000)], "{v:?}");
        assert!(judge(&[started.clone(), flushed(50, 3), flushed(62, 10)]).is_empty());
        assert!(judge(&[started.clone(), flushed(12, 3)]).is_empty());
        let drain = sm(
            55_000,
            "a",
            C::DrainStarted {
                completer: "c".into(),
                run: 1,
                pending: 3,
                producers: 0,
                bound_ms: 600,
                retry_max_ms: 200,
            },
        );
        assert!(judge(&[started.clone(), flushed(50, 3), drain, flushed(62, 3)]).is_empty());
        // A crash ends the run: a batch after it belongs to no run this rule knows.
        let crash = E(55_000, "a", None, Some(Fact::NodeCrash));
        assert!(judge(&[started.clone(), flushed(50, 3), crash, flushed(62, 3)]).is_empty());
        let elsewhere = E(55_000, "b", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[started.clone(), flushed(50, 3), elsewhere, flushed(62, 3)]).len(), 1);
        // To the microsecond: the tick is 100 ms after the last write less 2 ms of slack, and a
        // write of 2 ms started at the latest 2 ms before its end.
        let flushed_us = |t_us: u64| {
            let e = C::BatchFlushed {
                completer: "c".into(),
                run: 1,
                n: 3,
                rev: 1,
                retried: false,
                took_us: 2_000,
                attempt_us: 2_000,
            };
            sm(t_us, "a", e)
        };
        assert!(judge(&[started.clone(), flushed(50, 3), flushed_us(150_000)]).is_empty());
        assert_eq!(judge(&[started.clone(), flushed(50, 3), flushed_us(149_999)]).len(), 1);
        // Twenty violations named at most.
        let mut h = vec![started.clone()];
        h.extend((0..25).map(|i| flushed_us(50_000 + i * 1_000)));
        assert_eq!(judge(&h).len(), 20);
        // A clock at 1.25 may reach its tick after 80 ms of the history's time.
        let h = [started, flushed(50, 3), flushed(132, 3)];
        assert!(completer_partial_batches_wait_for_the_tick(&h, 1.25, 2_000, |_, _, _| false).is_empty());
    }

    #[test]
    fn a_flush_reported_retried_other_than_it_was_fires_v11() {
        use keel::observe::CompleterEvent as C;
        let flushed = |t, retried| {
            sm(
                t,
                "a",
                C::BatchFlushed { completer: "c".into(), run: 1, n: 2, rev: 1, retried, took_us: 0, attempt_us: 0 },
            )
        };
        let failed = |t| {
            let e = unknown_write_failure();
            sm(t, "a", e)
        };
        // Failed, then written as retried; the next batch written clean.
        assert!(completer_flushes_report_retries(&[failed(1), flushed(2, true), flushed(3, false)]).is_empty());
        // Failed, then written unflagged (MC67, also a cool-down's retry before keel kept the
        // flag across it): the retry is hidden.
        let v = completer_flushes_report_retries(&[failed(1), flushed(2, false)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V11", 2));
        assert!(v[0].detail.contains("written as not retried after a failed write"), "{}", v[0].detail);
        // The backoff never started over (MC48): every later batch says retried.
        let v = completer_flushes_report_retries(&[failed(1), flushed(2, true), flushed(3, true)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V11", 3));
        assert!(v[0].detail.contains("a: completer c run 1: a batch of 2 written as retried"), "{}", v[0].detail);
        // A restart of the node starts its runs over.
        let restart = E(2, "a", None, Some(Fact::NodeStart));
        assert_eq!(completer_flushes_report_retries(&[failed(1), restart, flushed(3, true)]).len(), 1);
        // Twenty violations named at most.
        let h: Vec<E> = (0..25).map(|t| flushed(t, true)).collect();
        assert_eq!(completer_flushes_report_retries(&h).len(), 20);
    }

    /// V12: a drain of bound 600 ms with retries of at most 200 ms gives a batch up no earlier
    /// than 400 ms after it began (MC52 gives up at the first failed write).
    #[test]
    fn a_drain_that_gives_up_with_room_for_a_retry_fires_v12() {
        use keel::observe::CompleterEvent as C;
        let began = || {
            sm(
                0,
                "a",
                C::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending: 1,
                    producers: 0,
                    bound_ms: 600,
                    retry_max_ms: 200,
                },
            )
        };
        let failed = |t| {
            let e = unknown_write_failure();
            sm(t, "a", e)
        };
        let closed = |t, unflushed| {
            sm(t, "a", C::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered: 0, producers_left: 0 })
        };
        let judge = |h: &[E], fastest: f64| completer_drains_retry(h, fastest, 2_000, |_, _, _| false);
        // Given up 450 ms in: the next retry (≤ 200 ms) would pass the bound.
        assert!(judge(&[began(), failed(450_000), closed(450_000, 2)], 1.0).is_empty());
        // Given up 10 ms in: V12 at the close.
        let v = judge(&[began(), failed(10_000), closed(10_000, 2)], 1.0);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V12", 10_000), "{v:?}");
        // A clock 1.5× fast reaches its deadline sooner: 300 ms in is in time.
        assert!(judge(&[began(), failed(300_000), closed(300_000, 2)], 1.5).is_empty());
        // Nothing unflushed, or closed later than the failure (a retry ran), or past the deadline.
        assert!(judge(&[began(), failed(10_000), closed(10_000, 0)], 1.0).is_empty());
        assert!(judge(&[began(), failed(10_000), closed(30_000, 2)], 1.0).is_empty());
        let deadline = sm(10_000, "a", C::StopDeadline { completer: "c".into(), run: 1, producers: 0, pending: 2 });
        assert!(judge(&[began(), failed(10_000), deadline, closed(10_000, 2)], 1.0).is_empty());
        // Only a drain gives a batch up: room made after a failed write with no write since and
        // no drain begun is V12 at the room (MC317); in a drain, or after a write, it is not.
        let room = |t| sm(t, "a", C::RoomMade { completer: "c".into(), run: 1, n: 2, backlog: 0, room: 16 });
        let v = judge(&[failed(5_000), room(5_000)], 1.0);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V12", 5_000), "{v:?}");
        assert!(judge(&[began(), failed(450_000), room(450_000), closed(450_000, 2)], 1.0).is_empty());
        let flushed = sm(
            9_000,
            "a",
            C::BatchFlushed { completer: "c".into(), run: 1, n: 2, rev: 1, retried: true, took_us: 1, attempt_us: 1 },
        );
        assert!(judge(&[failed(5_000), flushed, room(9_000)], 1.0).is_empty());
        // A crash or restart of the node forgets its runs' failed writes; another node's does not.
        let crash = |node| E(5_000, node, None, Some(Fact::NodeCrash));
        assert!(judge(&[failed(5_000), crash("a"), room(6_000)], 1.0).is_empty());
        assert_eq!(judge(&[failed(5_000), crash("b"), room(6_000)], 1.0).len(), 1);
        // Twenty violations named at most.
        let h: Vec<E> = (0..25).flat_map(|i| [failed(i * 10), room(i * 10 + 1)]).collect();
        assert_eq!(judge(&h, 1.0).len(), 20);
    }

    /// V12 to the microsecond: with a bound of 600 ms, retries of at most 200 ms and 2 ms of
    /// slack, a give-up 398 ms into the drain is in time and one a microsecond earlier is not; a
    /// node's crash ends its drains (another node's does not); twenty named at most.
    #[test]
    fn v12_judges_a_give_up_to_the_microsecond_and_a_crash_ends_the_drain() {
        use keel::observe::CompleterEvent as C;
        let began = |t, node| {
            let (pending, producers, bound_ms, retry_max_ms) = (1, 0, 600, 200);
            ce_at(
                t,
                node,
                C::DrainStarted { completer: "c".into(), run: 1, pending, producers, bound_ms, retry_max_ms },
            )
        };
        let failed = |t, node| ce_at(t, node, unknown_write_failure());
        let closed = |t, node| {
            let (unflushed, undelivered, producers_left) = (2, 0, 0);
            ce_at(t, node, C::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered, producers_left })
        };
        let judge = |h: &[E]| {
            completer_drains_retry(h, 1.0, 2_000, |_, _, _| false)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(judge(&[began(0, "a"), failed(398_000, "a"), closed(398_000, "a")]), []);
        assert_eq!(judge(&[began(0, "a"), failed(397_999, "a"), closed(397_999, "a")]), [("V12", 397_999)]);
        // The drain died with its node: a give-up in the node's next life is not that drain's.
        let crash = |node| E(5_000, node, None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[began(0, "a"), crash("a"), failed(10_000, "a"), closed(10_000, "a")]), []);
        assert_eq!(judge(&[began(0, "a"), crash("b"), failed(10_000, "a"), closed(10_000, "a")]), [("V12", 10_000)]);
        // Twenty give-ups named at most.
        let h: Vec<E> = (0..25)
            .flat_map(|i| {
                let t = i * 1_000_000;
                [began(t, "a"), failed(t + 10_000, "a"), closed(t + 10_000, "a")]
            })
            .collect();
        assert_eq!(judge(&h).len(), 20);
    }

    /// V3 at the announcement: the events a run could not hand over are its written batch's,
    /// counted in events (MC318 counted one per batch), and its report counts them all.
    #[test]
    fn undelivered_events_are_counted_in_events() {
        use keel::observe::CompleterEvent as C;
        let flushed = |t, n| {
            sm(
                t,
                "a",
                C::BatchFlushed { completer: "c".into(), run: 1, n, rev: 1, retried: false, took_us: 1, attempt_us: 1 },
            )
        };
        let lost = |t, n| sm(t, "a", C::EventsUndelivered { completer: "c".into(), run: 1, n });
        let closed = |t, undelivered| {
            sm(t, "a", C::EventsClosed { completer: "c".into(), run: 1, unflushed: 0, undelivered, producers_left: 0 })
        };
        assert!(completer_reports_count_undelivered(&[flushed(1, 3), lost(1, 3), closed(2, 3)]).is_empty());
        let v = completer_reports_count_undelivered(&[flushed(1, 3), lost(1, 1), closed(2, 1)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V3", 1)]);
        let v = completer_reports_count_undelivered(&[flushed(1, 3), lost(1, 3), closed(2, 1)]);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V3", 2)]);
    }

    #[test]
    fn a_drain_whose_first_write_waits_fires_v13() {
        use keel::observe::CompleterEvent as C;
        let began = |pending| {
            let e = C::DrainStarted {
                completer: "c".into(),
                run: 1,
                pending,
                producers: 0,
                bound_ms: 600,
                retry_max_ms: 200,
            };
            sm(10_000, "a", e)
        };
        let flushed = |t, took_us| {
            sm(
                t,
                "a",
                C::BatchFlushed {
                    completer: "c".into(),
                    run: 1,
                    n: 2,
                    rev: 1,
                    retried: false,
                    took_us,
                    attempt_us: took_us,
                },
            )
        };
        let judge = |h: &[E], slowest: f64| {
            completer_drains_write_at_once(h, (slowest, 1.0), 2_000, |_| vec![], |_, _, _| false)
        };
        // Written at once (a 5 ms write begun at the drain), or a write in flight at the drain.
        assert!(judge(&[began(2), flushed(15_000, 5_000)], 1.0).is_empty());
        assert!(judge(&[began(2), flushed(15_000, 8_000)], 1.0).is_empty());
        // The first write began 15 ms into the drain (at the flush tick, MC59): V13 at its end.
        let v = judge(&[began(2), flushed(30_000, 5_000)], 1.0);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V13", 30_000), "{v:?}");
        // A slow clock measured the write short: 5 ms at rate 0.25 is 20 ms of the history's time.
        assert!(judge(&[began(2), flushed(30_000, 5_000)], 0.25).is_empty());
        // A write in flight at the drain, given up at its last failure (15 ms in): the queued
        // batch is written from there.
        let failed = || {
            sm(
                25_000,
                "a",
                C::FlushFailed {
                    completer: "c".into(),
                    run: 1,
                    n: 2,
                    error: "x".into(),
                    outcome: keel::Outcome::NotApplied,
                    took_us: 0,
                },
            )
        };
        assert!(judge(&[began(2), failed(), flushed(30_000, 5_000)], 1.0).is_empty());
        let v = judge(&[began(2), failed(), flushed(40_000, 5_000)], 1.0);
        assert_eq!((v.len(), v[0].t_us), (1, 40_000), "{v:?}");
        // A write in flight that landed after the drain began, then the queued one at once.
        assert!(judge(&[began(2), flushed(12_000, 5_000), flushed(20_000, 8_000)], 1.0).is_empty());
        // A slow clock in the plan (pool seed 8): a 20 ms write begun at the drain, its earliest
        // start before it, is the drain's first write; a later one is not judged.
        assert!(judge(&[began(2), flushed(30_000, 20_000), flushed(80_000, 20_000)], 0.9).is_empty());
        // A fast clock measured the write long (completerclock seed 13): begun at the end of the
        // write in flight, 7 716 µs on a clock of rate 1.0133, it is not late at that rate; read
        // at rate 1 it began before that end, and the drain's first write looked late.
        let h = [began(2), flushed(17_314, 207_674), flushed(24_929, 7_716)];
        let at = |rates| completer_drains_write_at_once(&h, rates, 2_000, |_| vec![], |_, _, _| false);
        assert!(at((0.962, 1.0133)).is_empty());
        assert_eq!(at((0.962, 1.0)).len(), 1);
        // Nothing queued at the drain: the later write is of a completion handed in since.
        assert!(judge(&[began(0), flushed(30_000, 5_000)], 1.0).is_empty());
        // The queued batch given up at its last failure (its next retry would pass the bound)
        // with an empty backlog left: a later write is of completions handed in since (completer
        // seed 1419); with something left in the backlog it is still due at once.
        let room =
            |backlog| sm(25_000, "a", C::RoomMade { completer: "c".into(), run: 1, n: 2, backlog, room: 16 - backlog });
        assert!(judge(&[began(2), failed(), room(0), flushed(60_000, 5_000)], 1.0).is_empty());
        let v = judge(&[began(2), failed(), room(1), flushed(60_000, 5_000)], 1.0);
        assert_eq!((v.len(), v[0].t_us), (1, 60_000), "{v:?}");
        // Frozen time does not count; a node restart ends the run.
        let frozen = |_: &&str| vec![Span { start: 10_500, end: 40_000 }];
        assert!(
            completer_drains_write_at_once(
                &[began(2), flushed(45_000, 5_000)],
                (1.0, 1.0),
                2_000,
                frozen,
                |_, _, _| false
            )
            .is_empty()
        );
        let restart = E(20_000, "a", None, Some(Fact::NodeStart));
        assert!(judge(&[began(2), restart, flushed(30_000, 5_000)], 1.0).is_empty());
    }

    /// V13 hears what moves a drain's due instant: a completion accepted during a drain that had
    /// nothing queued is due at once (round 18, A #34); a hand-over to a full channel (or given up
    /// at the bound) ends like a write in flight; a batch whose retry budget ran out is given up,
    /// leaving nothing queued (completer seed 2840); and the run's close ends its drain.
    #[test]
    fn v13_hears_acceptances_hand_overs_give_ups_and_the_close() {
        use keel::observe::CompleterEvent as C;
        let began = |pending| {
            let (producers, bound_ms, retry_max_ms) = (1, 600, 200);
            sm(
                10_000,
                "a",
                C::DrainStarted { completer: "c".into(), run: 1, pending, producers, bound_ms, retry_max_ms },
            )
        };
        let flushed = |t, took_us| {
            let (n, rev, retried, attempt_us) = (2, 1, false, took_us);
            sm(t, "a", C::BatchFlushed { completer: "c".into(), run: 1, n, rev, retried, took_us, attempt_us })
        };
        let judge = |h: &[E]| {
            completer_drains_write_at_once(h, (1.0, 1.0), 2_000, |_| vec![], |_, _, _| false)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        // Nothing queued at the drain, a completion accepted 2 ms in: written at once, or held
        // to the tick (a write begun 35 ms in).
        let accepted = sm(12_000, "a", C::Accepted { completer: "c".into(), run: 1, backlog: 1, queued: 1 });
        assert_eq!(judge(&[began(0), accepted.clone(), flushed(17_000, 5_000)]), []);
        assert_eq!(judge(&[began(0), accepted, flushed(40_000, 5_000)]), [("V13", 40_000)]);
        // A hand-over waiting on a full channel until 25 ms: the queued batch is written from
        // there, not from the drain's start.
        let handed = sm(25_000, "a", C::HandedOver { completer: "c".into(), run: 1, n: 2, waited_us: 20_000 });
        assert_eq!(judge(&[began(2), handed.clone(), flushed(30_000, 5_000)]), []);
        assert_eq!(judge(&[began(2), handed, flushed(40_000, 5_000)]), [("V13", 40_000)]);
        let at_bound = sm(25_000, "a", C::EventsUndeliveredAtBound { completer: "c".into(), run: 1, n: 2, left_us: 0 });
        assert_eq!(judge(&[began(2), at_bound, flushed(30_000, 5_000)]), []);
        // The queued batch failed at 25 ms and used its retry budget up: given up, nothing is
        // queued, and a later write is of completions handed in since. Without the give-up it is
        // still due at once.
        let failed = sm(
            25_000,
            "a",
            C::FlushFailed {
                completer: "c".into(),
                run: 1,
                n: 2,
                error: "x".into(),
                outcome: keel::Outcome::NotApplied,
                took_us: 0,
            },
        );
        let exhausted = sm(25_000, "a", C::RetryBudgetExhausted { completer: "c".into(), run: 1 });
        assert_eq!(judge(&[began(2), failed.clone(), exhausted, flushed(60_000, 5_000)]), []);
        assert_eq!(judge(&[began(2), failed, flushed(60_000, 5_000)]), [("V13", 60_000)]);
        // The run's close ends its drain: a write of that run reported after it is not the drain's.
        let (unflushed, undelivered, producers_left) = (2, 0, 0);
        let closed =
            sm(12_000, "a", C::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered, producers_left });
        assert_eq!(judge(&[began(2), closed, flushed(60_000, 5_000)]), []);
    }

    #[test]
    fn a_completer_drain_closes_its_channel_within_its_bound() {
        use keel::observe::CompleterEvent as C;
        let none = |_: &&str| Vec::new();
        let began = |t, run| {
            sm(
                t,
                "a",
                C::DrainStarted { completer: "c".into(), run, pending: 1, producers: 0, bound_ms: 1, retry_max_ms: 0 },
            )
        };
        let closed = |t, run| {
            sm(t, "a", C::EventsClosed { completer: "c".into(), run, unflushed: 0, undelivered: 0, producers_left: 0 })
        };
        // Bound 1 ms + 100 µs slack: in time; late (a write run past the bound, MC47); another
        // run's close is not this one's; a slow clock stretches the bound.
        assert!(completer_drains_bounded(&[began(0, 1), closed(1_100, 1)], 10_000, 1.0, 100, none).is_empty());
        let v = completer_drains_bounded(&[began(0, 1), closed(3_000, 1)], 10_000, 1.0, 100, none);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V4", 1_100));
        assert!(v[0].detail.contains("a: completer c run 1: drain begun at 0.000s"), "{}", v[0].detail);
        assert_eq!(completer_drains_bounded(&[began(0, 1), closed(500, 2)], 10_000, 1.0, 100, none).len(), 1);
        assert!(completer_drains_bounded(&[began(0, 1), closed(2_050, 1)], 10_000, 0.5, 100, none).is_empty());
    }

    #[test]
    fn subscription_stops_fire_at_the_bound_on_a_late_or_missing_close() {
        let none = |_: &&str| Vec::new();
        // Bound 1 ms + 100 µs slack: closed in time, late, never (judged at the end), cut by a crash.
        assert!(subscription_stops(&[asked(0, 1), closed(1_100, 1)], 10_000, 1.0, 100, none).is_empty());
        let v = subscription_stops(&[asked(0, 1), closed(5_000, 1)], 10_000, 1.0, 100, none);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V4", 1_100));
        assert_eq!(subscription_stops(&[asked(0, 1)], 10_000, 1.0, 100, none)[0].t_us, 1_100);
        assert!(subscription_stops(&[asked(0, 1)], 1_000, 1.0, 100, none).is_empty());
        let crash = E(500, "a", None, Some(Fact::NodeCrash));
        assert!(subscription_stops(&[asked(0, 1), crash], 10_000, 1.0, 100, none).is_empty());
        // A slow clock (rate 0.5) takes twice the bound; frozen time is not counted.
        assert!(subscription_stops(&[asked(0, 1), closed(2_050, 1)], 10_000, 0.5, 100, none).is_empty());
        let frozen = |_: &&str| vec![Span { start: 200, end: 4_200 }];
        assert!(subscription_stops(&[asked(0, 1), closed(5_000, 1)], 10_000, 1.0, 100, frozen).is_empty());
        assert_eq!(subscription_stops(&[asked(0, 1)], 10_000, 1.0, 100, frozen)[0].t_us, 5_100);
    }

    #[test]
    fn a_drain_that_begins_late_after_the_request_fires_v10() {
        use keel::observe::CompleterEvent as C;
        let c = |t, e| sm(t, "a", e);
        let asked = |t| c(t, C::StopRequested { completer: "c".into(), run: 1, bound_ms: 600 });
        let drain = |t| {
            c(
                t,
                C::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending: 0,
                    producers: 0,
                    bound_ms: 600,
                    retry_max_ms: 0,
                },
            )
        };
        let flushed = |t| {
            c(
                t,
                C::BatchFlushed {
                    completer: "c".into(),
                    run: 1,
                    n: 2,
                    rev: 7,
                    retried: false,
                    took_us: 0,
                    attempt_us: 0,
                },
            )
        };
        let failed = |t| {
            c(
                t,
                C::FlushFailed {
                    completer: "c".into(),
                    run: 1,
                    n: 2,
                    error: "timeout".into(),
                    outcome: keel::Outcome::Unknown,
                    took_us: 0,
                },
            )
        };
        let none = |_: &&str| Vec::new();
        let heard = |h: &[E]| completer_stops_heard(h, 1_000_000, 2_000, none);
        // Heard at once, or once the write in flight at the request ended (however long it took).
        assert!(heard(&[asked(10_000), drain(10_000)]).is_empty());
        assert!(heard(&[asked(10_000), flushed(250_000), drain(250_000)]).is_empty());
        assert!(heard(&[failed(5_000), asked(10_000), failed(310_000), drain(310_500)]).is_empty());
        // A backoff that slept through the stop (MC41): the drain comes when the sleep ends, with
        // no write ended in between: V10 at the request + 2 ms.
        let v = heard(&[failed(5_000), asked(10_000), drain(150_000)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V10", 12_000), "{v:?}");
        // A write that failed after the request, then a backoff slept out: V10 at its end + 2 ms.
        let v = heard(&[asked(10_000), failed(100_000), drain(180_000)]);
        assert_eq!((v.len(), v[0].t_us), (1, 102_000), "{v:?}");
        // ... also when the drain never comes (the run's history ends) or the node crashes later.
        assert_eq!(heard(&[asked(10_000), failed(100_000)])[0].t_us, 102_000);
        let crash = || E(500_000, "a", None, Some(Fact::NodeCrash));
        assert_eq!(heard(&[asked(10_000), failed(100_000), crash()])[0].t_us, 102_000);
        // Not judged: a write may still be in flight at a crash or at the end; a drain begun
        // before the request (a run that follows another token); another run's drain.
        assert!(heard(&[asked(10_000), crash()]).is_empty());
        assert!(heard(&[asked(10_000)]).is_empty());
        assert!(heard(&[drain(5_000), asked(10_000), flushed(20_000)]).is_empty());
        let other = c(
            11_000,
            C::DrainStarted { completer: "c".into(), run: 2, pending: 0, producers: 0, bound_ms: 1, retry_max_ms: 0 },
        );
        assert_eq!(heard(&[asked(10_000), other, drain(50_000)]).len(), 1);
        // Frozen time is not counted.
        let frozen = |_: &&str| vec![Span { start: 11_000, end: 60_000 }];
        assert!(completer_stops_heard(&[asked(10_000), drain(60_500)], 1_000_000, 2_000, frozen).is_empty());
    }

    #[test]
    fn a_stop_that_loses_queued_completions_silently_fires_v3() {
        use keel::observe::CompleterEvent as C;
        let c = |t, e| sm(t, "a", e);
        let drain = |t| {
            c(
                t,
                C::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending: 0,
                    producers: 0,
                    bound_ms: 1,
                    retry_max_ms: 0,
                },
            )
        };
        let deadline = |t, pending| c(t, C::StopDeadline { completer: "c".into(), run: 1, producers: 0, pending });
        let closed = |t, unflushed| {
            c(t, C::EventsClosed { completer: "c".into(), run: 1, unflushed, undelivered: 0, producers_left: 0 })
        };
        // Store unhealthy until 10 ms: only the queued-at-the-deadline half judges.
        let run =
            |unflushed| completer_drains(&[drain(0), deadline(1_000, 3), closed(1_001, unflushed)], 10_000, true, 1.0);
        assert!(run(3).is_empty(), "all three reported");
        assert!(run(5).is_empty(), "the batch in flight is reported too");
        let v = run(2);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V3", 1_001));
        // Nothing queued at the deadline: nothing to report.
        assert!(completer_drains(&[drain(0), deadline(1_000, 0), closed(1_001, 0)], 10_000, true, 1.0).is_empty());
        // The store healthy (healed at 0): a stop that reports anything lost is V3, unless a
        // producer kept the run open to its bound (what it handed in then is reported).
        let healthy = |left| {
            let closed = c(
                1_001,
                C::EventsClosed { completer: "c".into(), run: 1, unflushed: 3, undelivered: 0, producers_left: left },
            );
            completer_drains(&[drain(0), deadline(1_000, 3), closed], 0, true, 1.0)
        };
        assert_eq!(healthy(0).len(), 1);
        assert!(healthy(1).is_empty(), "a producer left at the bound");
        // A producer that stopped at or after the request's bound kept the run open to it, even
        // if it left before the close (completer seed 637); one that left before it did not.
        let kept = |left_at| {
            let asked = c(0, C::StopRequested { completer: "c".into(), run: 1, bound_ms: 1 });
            let left = c(left_at, C::ProducerStopped { completer: "c".into(), run: 1, producer: "p".into() });
            let closed = c(
                1_001,
                C::EventsClosed { completer: "c".into(), run: 1, unflushed: 3, undelivered: 0, producers_left: 0 },
            );
            completer_drains(&[asked, drain(0), left, deadline(1_000, 3), closed], 0, true, 1.0)
        };
        assert!(kept(1_000).is_empty(), "a producer there as the bound ran out");
        assert_eq!(kept(500).len(), 1, "a producer gone before the bound");
    }

    #[test]
    fn a_hand_over_given_up_at_the_bound_waited_there_and_owes_v3_nothing() {
        use keel::observe::CompleterEvent as C;
        let c = |t, e| sm(t, "a", e);
        let drain = c(
            0,
            C::DrainStarted { completer: "c".into(), run: 1, pending: 0, producers: 0, bound_ms: 1, retry_max_ms: 0 },
        );
        let waiting = |t| c(t, C::HandOverWaiting { completer: "c".into(), run: 1, n: 3 });
        let handed = |t| c(t, C::HandedOver { completer: "c".into(), run: 1, n: 3, waited_us: 1 });
        let gave_up = |t, left_us| c(t, C::EventsUndeliveredAtBound { completer: "c".into(), run: 1, n: 3, left_us });
        let closed = c(
            1_001,
            C::EventsClosed { completer: "c".into(), run: 1, unflushed: 0, undelivered: 3, producers_left: 0 },
        );
        let judge = |events: &[_]| -> Vec<(&str, u64)> {
            completer_drains(events, 0, true, 1.0).iter().map(|v| (v.invariant, v.t_us)).collect()
        };
        // Waited on a full channel to the bound: the store healthy, and nothing for V3.
        assert!(judge(&[drain.clone(), waiting(10), gave_up(1_000, 0), closed.clone()]).is_empty());
        // Given up with none of the wait (or after it ended), or before the bound.
        assert_eq!(judge(&[drain.clone(), gave_up(1_000, 0), closed.clone()]), [("V38", 1_000)]);
        assert_eq!(
            judge(&[drain.clone(), waiting(10), handed(20), gave_up(1_000, 0), closed.clone()]),
            [("V38", 1_000)]
        );
        assert_eq!(judge(&[drain.clone(), waiting(10), gave_up(500, 0), closed.clone()]), [("V38", 500)]);
        // Early on its own clock, whatever global time says (a slow clock, a timer not its own).
        assert_eq!(judge(&[drain.clone(), waiting(10), gave_up(1_000, 30_000), closed.clone()]), [("V38", 1_000)]);
        // Handed over late in the drain: what the rest of the bound could not write is excused.
        let unflushed = c(
            1_001,
            C::EventsClosed { completer: "c".into(), run: 1, unflushed: 6, undelivered: 0, producers_left: 0 },
        );
        assert!(judge(&[waiting(10), drain.clone(), handed(990), unflushed.clone()]).is_empty());
        // Handed over before the drain began: the whole bound was the drain's.
        assert_eq!(judge(&[waiting(10), handed(20), drain.clone(), unflushed]), [("V3", 1_001)]);
        // A loss reported by a run that never waited to its bound is V3's, as before.
        let lost = c(1_001, C::EventsUndelivered { completer: "c".into(), run: 1, n: 3 });
        assert_eq!(judge(&[drain, lost, closed]), [("V3", 1_001)]);
    }

    #[test]
    fn a_crash_forgets_the_waiting_hand_overs_of_its_own_node_only() {
        use keel::observe::CompleterEvent as C;
        let waiting = |t| sm(t, "a", C::HandOverWaiting { completer: "c".into(), run: 1, n: 3 });
        let gave_up = |t| sm(t, "a", C::EventsUndeliveredAtBound { completer: "c".into(), run: 1, n: 3, left_us: 0 });
        let crash = |t, node| E(t, node, None, Some(Fact::NodeCrash));
        let judge = |events: &[_]| -> Vec<(&str, u64)> {
            completer_drains(events, 0, true, 1.0).iter().map(|v| (v.invariant, v.t_us)).collect()
        };
        // Another node's crash leaves a's wait waiting: giving its events up at the bound is right.
        assert!(judge(&[waiting(10), crash(20, "b"), gave_up(1_000)]).is_empty());
        // a's own crash (or restart) ended that wait: a later give-up never waited.
        assert_eq!(judge(&[waiting(10), crash(20, "a"), gave_up(1_000)]), [("V38", 1_000)]);
        let restart = E(20, "a", None, Some(Fact::NodeStart));
        assert_eq!(judge(&[waiting(10), restart, gave_up(1_000)]), [("V38", 1_000)]);
    }

    /// Completer event `e` of run 1 of completer `c` on `node` at `t_us`.
    fn ce_at(t_us: u64, node: &'static str, e: CompleterEvent<'_>) -> E {
        E(t_us, node, Some(Event::Completer(e.to_static())), None)
    }

    #[test]
    fn v4_and_v3_judge_a_stop_deadline_to_the_microsecond() {
        let drain = |t| {
            let (pending, producers, bound_ms, retry_max_ms) = (2, 0, 600, 100);
            ce_at(
                t,
                "a",
                CompleterEvent::DrainStarted {
                    completer: "c".into(),
                    run: 1,
                    pending,
                    producers,
                    bound_ms,
                    retry_max_ms,
                },
            )
        };
        let deadline = |t, pending| {
            ce_at(t, "a", CompleterEvent::StopDeadline { completer: "c".into(), run: 1, producers: 0, pending })
        };
        let closed = |t, unflushed| {
            let e = CompleterEvent::EventsClosed {
                completer: "c".into(),
                run: 1,
                unflushed,
                undelivered: 0,
                producers_left: 0,
            };
            ce_at(t, "a", e)
        };
        let judge = |h: &[E], tame, fastest| -> Vec<(&str, u64)> {
            completer_drains(h, u64::MAX, tame, fastest).iter().map(|v| (v.invariant, v.t_us)).collect()
        };
        // The bound reported reached 2 µs short of it (the rounding slack) is right; 3 µs is V4.
        let b = 600_000;
        assert_eq!(judge(&[drain(1_000), deadline(1_000 + b - 2, 2), closed(1_000 + b, 2)], true, 1.0), []);
        assert_eq!(
            judge(&[drain(1_000), deadline(1_000 + b - 3, 2), closed(1_000 + b, 2)], true, 1.0),
            [("V4", 1_000 + b - 3)]
        );
        // At a clock 20 % fast the bound is 500 ms of history time; untamed clocks are not judged.
        assert_eq!(judge(&[drain(0), deadline(499_998, 2), closed(b, 2)], true, 1.2), []);
        assert_eq!(judge(&[drain(0), deadline(499_997, 2), closed(b, 2)], true, 1.2), [("V4", 499_997)]);
        assert_eq!(judge(&[drain(0), deadline(1, 2), closed(b, 2)], false, 1.0), []);
        // V3: the close reports at least what was queued at the deadline.
        assert_eq!(judge(&[drain(0), deadline(b, 2), closed(b + 1, 1)], true, 1.0), [("V3", b + 1)]);
        assert_eq!(judge(&[drain(0), deadline(b, 2), closed(b + 1, 3)], true, 1.0), []);
        // A drain begun exactly at the heal is judged as healthy: its loss is V3.
        let healthy = completer_drains(&[drain(5_000), closed(9_000, 1)], 5_000, true, 1.0);
        assert_eq!(healthy.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("V3", 9_000)]);
        assert!(completer_drains(&[drain(5_000), closed(9_000, 1)], 5_001, true, 1.0).is_empty());
        assert!(completer_drains(&[drain(5_000), closed(9_000, 0)], 5_000, true, 1.0).is_empty(), "nothing lost");
    }

    #[test]
    fn v3_counts_announced_losses_per_node_and_names_twenty_at_most() {
        let flushed = |t, node, n| {
            ce_at(
                t,
                node,
                CompleterEvent::BatchFlushed {
                    completer: "c".into(),
                    run: 1,
                    n,
                    rev: 1,
                    retried: false,
                    took_us: 0,
                    attempt_us: 0,
                },
            )
        };
        let lost = |t, node, n| ce_at(t, node, CompleterEvent::EventsUndelivered { completer: "c".into(), run: 1, n });
        let closed = |t, node, undelivered| {
            let e = CompleterEvent::EventsClosed {
                completer: "c".into(),
                run: 1,
                unflushed: 0,
                undelivered,
                producers_left: 0,
            };
            ce_at(t, node, e)
        };
        let crash = |t, node| E(t, node, None, Some(Fact::NodeCrash));
        let judge = |h: &[E]| completer_reports_count_undelivered(h).len();
        // Another node's crash forgets nothing of a's run; a's own forgets it all.
        assert_eq!(judge(&[flushed(1, "a", 3), lost(2, "a", 3), crash(3, "b"), closed(4, "a", 3)]), 0);
        assert_eq!(judge(&[flushed(1, "a", 3), crash(2, "b"), lost(3, "a", 2)]), 1, "a batch of 3 announced as 2");
        assert_eq!(judge(&[flushed(1, "a", 3), crash(2, "a"), lost(3, "a", 2), closed(4, "a", 2)]), 0);
        // Twenty violations named at most, of either kind.
        let mut h = Vec::new();
        for t in 0..25 {
            h.extend([flushed(t * 10, "a", 3), lost(t * 10 + 1, "a", 2)]);
        }
        assert_eq!(judge(&h), 20);
        let closes: Vec<E> = (0..25).map(|t| closed(t, "a", 1)).collect();
        assert_eq!(judge(&closes), 20);
    }

    #[test]
    fn v4_gives_a_manager_its_bound_less_the_slack_and_forgets_a_crashed_node() {
        let asked =
            |t, node| ce_at(t, node, CompleterEvent::SmStopRequested { completer: "c".into(), run: 2, bound_ms: 200 });
        let gave_up = |t, node| ce_at(t, node, CompleterEvent::SmDrainTimeout { completer: "c".into(), run: 2 });
        let judge = |h: &[E]| subscription_drains_keep_their_bound(h, 1.0, 2_000, |_, _, _| false).len();
        // Asked at 100 ms with 200 ms: the floor is 300 ms, 2 ms of slack.
        assert_eq!(judge(&[asked(100_000, "a"), gave_up(298_000, "a")]), 0);
        assert_eq!(judge(&[asked(100_000, "a"), gave_up(297_999, "a")]), 1);
        // A crash or restart of the run's own node ends it; another node's does not.
        let crash = |t, node| E(t, node, None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[asked(100_000, "a"), crash(150_000, "a"), gave_up(200_000, "a")]), 0);
        assert_eq!(judge(&[asked(100_000, "a"), crash(150_000, "b"), gave_up(200_000, "a")]), 1);
        // Twenty violations named at most.
        let h: Vec<E> = (0..25u64)
            .flat_map(|i| {
                let e = |t, c: CompleterEvent<'_>| ce_at(t, "a", c);
                let run = i + 10;
                [
                    e(i * 10, CompleterEvent::SmStopRequested { completer: "c".into(), run, bound_ms: 200 }),
                    e(i * 10 + 1, CompleterEvent::SmDrainTimeout { completer: "c".into(), run }),
                ]
            })
            .collect();
        assert_eq!(judge(&h), 20);
    }

    #[test]
    fn bounded_stops_and_heard_stops_are_late_only_past_their_instant() {
        use keel::observe::CompleterEvent as C;
        let none = |_: &&str| Vec::new();
        let crash = |t, node| E(t, node, None, Some(Fact::NodeCrash));
        // V4 (BoundedStop): 1 ms + 100 µs of slack, due at 1 100 µs.
        let began = ce_at(
            0,
            "a",
            C::DrainStarted { completer: "c".into(), run: 1, pending: 1, producers: 0, bound_ms: 1, retry_max_ms: 0 },
        );
        let bounded = |h: &[E], end| completer_drains_bounded(h, end, 1.0, 100, none).len();
        assert_eq!(bounded(&[began.clone(), crash(1_100, "a")], 10_000), 0, "a crash at the instant it was due");
        assert_eq!(bounded(&[began.clone(), crash(1_101, "a")], 10_000), 1);
        assert_eq!(bounded(std::slice::from_ref(&began), 1_100), 0, "a history ending at the instant");
        assert_eq!(bounded(std::slice::from_ref(&began), 1_101), 1);
        // V10: due 2 ms after the request, or after the end of the write in flight.
        let asked = ce_at(10_000, "a", C::StopRequested { completer: "c".into(), run: 1, bound_ms: 600 });
        let drain = |t| {
            let (pending, producers, bound_ms, retry_max_ms) = (0, 0, 600, 0);
            ce_at(t, "a", C::DrainStarted { completer: "c".into(), run: 1, pending, producers, bound_ms, retry_max_ms })
        };
        let failed = ce_at(
            100_000,
            "a",
            C::FlushFailed {
                completer: "c".into(),
                run: 1,
                n: 2,
                error: "timeout".into(),
                outcome: keel::Outcome::Unknown,
                took_us: 0,
            },
        );
        let heard = |h: &[E], end| completer_stops_heard(h, end, 2_000, none).len();
        assert_eq!(heard(&[asked.clone(), drain(12_000)], 1_000_000), 0, "a drain at the instant it was due");
        assert_eq!(heard(&[asked.clone(), drain(12_001)], 1_000_000), 1);
        // Due at 102 ms: a crash of its node at or before it ends the run unjudged; after, late.
        assert_eq!(heard(&[asked.clone(), failed.clone(), crash(101_000, "a")], 1_000_000), 0);
        assert_eq!(heard(&[asked.clone(), failed.clone(), crash(102_000, "a")], 1_000_000), 0);
        assert_eq!(heard(&[asked.clone(), failed.clone(), crash(102_001, "a")], 1_000_000), 1);
        // Another node's crash ends nothing of a's run: its late drain is still judged.
        assert_eq!(heard(&[asked.clone(), failed.clone(), crash(101_000, "b"), drain(150_000)], 1_000_000), 1);
        // A history ending at the instant it was due judges nothing; a microsecond later, late.
        assert_eq!(heard(&[asked.clone(), failed.clone()], 102_000), 0);
        assert_eq!(heard(&[asked, failed], 102_001), 1);
    }

    #[test]
    fn v1_counts_producers_against_the_stop_report_and_v2_every_send_after_the_close() {
        use keel::observe::CompleterEvent as C;
        let reg =
            |t, p: &str| ce_at(t, "a", C::ProducerRegistered { completer: "c".into(), run: 1, producer: p.into() });
        let deadline = ce_at(5, "a", C::StopDeadline { completer: "c".into(), run: 1, producers: 1, pending: 0 });
        let closed = |left| {
            let e =
                C::EventsClosed { completer: "c".into(), run: 1, unflushed: 0, undelivered: 0, producers_left: left };
            ce_at(6, "a", e)
        };
        let judge = |h: &[E]| completer_channel(h).iter().map(|v| v.invariant).collect::<Vec<_>>();
        // Producers left without a deadline reached: V1 whatever the live count.
        assert_eq!(judge(&[closed(1)]), ["V1"]);
        // At the bound: as many live as the report says, or fewer, is right; more is V1.
        assert_eq!(judge(&[reg(1, "p"), deadline.clone(), closed(1)]), Vec::<&str>::new());
        assert_eq!(judge(&[deadline.clone(), closed(1)]), Vec::<&str>::new());
        assert_eq!(judge(&[reg(1, "p"), reg(2, "q"), deadline.clone(), closed(1)]), ["V1"]);
        // Its report names the producers still registered, not those gone.
        let gone = ce_at(3, "a", C::ProducerStopped { completer: "c".into(), run: 1, producer: "r".into() });
        let v = completer_channel(&[reg(1, "p"), reg(1, "q"), reg(2, "r"), gone, deadline, closed(1)]);
        assert!(v.len() == 1 && v[0].detail.contains(r#"registered ["p", "q"]"#), "{v:?}");
        // Anything sent after the close is V2.
        let sent = ce_at(7, "a", C::SendAfterClose { completer: "c".into(), run: 1, n: 2 });
        assert_eq!(judge(&[closed(0), sent]), ["V2"]);
    }

    fn pool_at(t_ms: u64, node: &'static str, e: PoolEvent<'_>) -> E {
        E(t_ms * 1000, node, Some(Event::Pool(e.to_static())), None)
    }

    fn run_started(t_ms: u64, node: &'static str, job: &str, attempt: u64) -> E {
        pool_at(t_ms, node, PoolEvent::Started { job: job.into(), worker: "w".into(), attempt })
    }

    fn returned(t_ms: u64, node: &'static str, job: &str, attempt: u64) -> E {
        let e = PoolEvent::HandlerReturned {
            job: job.into(),
            worker: "w".into(),
            attempt,
            completed: true,
            stopped: false,
        };
        pool_at(t_ms, node, e)
    }

    /// (job, node, attempt, start ms, end ms) of every collected run, job by job.
    fn runs(h: &HandlerRuns<'_, &'static str>) -> Vec<(String, &'static str, u64, u64, u64)> {
        let mut out = Vec::new();
        for (job, rs) in h.by_job() {
            for (node, attempt, span) in rs {
                out.push(((*job).to_owned(), *node, *attempt, span.start / 1000, span.end / 1000));
            }
        }
        out
    }

    #[test]
    fn handler_runs_pair_each_start_with_its_own_end_a_crash_or_the_end_of_the_run() {
        let h = [
            run_started(1_000, "a", "j", 1),
            run_started(2_000, "b", "k", 1),
            run_started(3_000, "c", "j", 2),
            // Another attempt's end, or the same attempt's on another node, ends nothing.
            returned(4_000, "a", "j", 2),
            returned(4_000, "b", "j", 1),
            returned(5_000, "a", "j", 1),
            // b's crash ends b's run alone; c's still runs at the end.
            E(6_000_000, "b", None, Some(Fact::NodeCrash)),
        ];
        let collected = pool_handler_runs(&h, 9_000_000);
        assert_eq!(
            runs(&collected),
            [
                ("j".to_owned(), "a", 1, 1_000, 5_000),
                ("j".to_owned(), "c", 2, 3_000, 9_000),
                ("k".to_owned(), "b", 1, 2_000, 6_000),
            ]
        );
        // Two runs of one job at once, 2 s of overlap: one P2, at the later start.
        let v = collected.overlaps(|_| Vec::new(), HANDOFF_US);
        assert_eq!(v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>(), [("P2", 3_000_000)], "{v:?}");
    }

    #[test]
    fn p2_allows_the_hand_off_and_frozen_time_and_nothing_more() {
        let judge = |second_start_ms: u64, frozen: Vec<Span>| {
            let h =
                [run_started(0, "a", "j", 1), run_started(second_start_ms, "b", "j", 2), returned(1_000, "a", "j", 1)];
            let runs = pool_handler_runs(&h, 2_000_000);
            runs.overlaps(|n| if *n == "a" { frozen.clone() } else { Vec::new() }, HANDOFF_US).len()
        };
        // Exactly the hand-off of overlap is allowed; a microsecond more is not.
        assert_eq!(judge(900, Vec::new()), 0);
        assert_eq!(judge(899, Vec::new()), 1);
        // Time a runner's node was frozen does not count.
        assert_eq!(judge(500, vec![Span { start: 500_000, end: 950_000 }]), 0);
        assert_eq!(judge(500, vec![Span { start: 500_000, end: 850_000 }]), 1);
        // One run alone overlaps nothing, however long.
        assert!(pool_handler_runs(&[run_started(0, "a", "j", 1)], 60_000).overlaps(|_| Vec::new(), 0).is_empty());
    }

    #[test]
    fn p1_judges_each_job_from_its_first_dispatch_or_the_heal_to_its_first_completion() {
        fn d<X: Entry>(e: &X) -> Option<&str> {
            match e.pool() {
                Some(PoolEvent::Dispatched { job, .. }) => Some(plain(job)),
                _ => None,
            }
        }
        fn c<X: Entry>(e: &X) -> Option<&str> {
            match e.pool() {
                Some(PoolEvent::Started { job, .. }) => Some(plain(job)),
                _ => None,
            }
        }
        let dispatched = |t_ms: u64, job: &'static str| {
            pool_at(t_ms, "a", PoolEvent::Dispatched { job: job.into(), worker: "w".into(), attempt: 1, now_ms: t_ms })
        };
        let completed = |t_ms: u64, job: &'static str| run_started(t_ms, "b", job, 1);
        let p1 = |h: &[E], heal_ms: u64, end_ms: u64| -> Vec<(String, u64)> {
            jobs_lost(h, heal_ms * 1000, end_ms * 1000, 10_000_000, d, c)
                .iter()
                .map(|v| (v.detail.split(' ').next().unwrap_or_default().to_owned(), v.t_us / 1000))
                .collect()
        };
        // Dispatched at 1 s, healed at 5 s: due by 15 s, completed at 15 s exactly.
        assert_eq!(p1(&[dispatched(1_000, "j"), completed(15_000, "j")], 5_000, 20_000), []);
        // A microsecond late, or never: P1 at the deadline.
        let late = E(
            15_000_001,
            "b",
            Some(Event::Pool(PoolEvent::Started { job: "j".into(), worker: "w".into(), attempt: 1 }.to_static())),
            None,
        );
        assert_eq!(p1(&[dispatched(1_000, "j"), late], 5_000, 20_000), [("j".to_owned(), 15_000)]);
        assert_eq!(p1(&[dispatched(1_000, "j")], 5_000, 20_000), [("j".to_owned(), 15_000)]);
        // Dispatched after the heal: due 10 s after its dispatch.
        assert_eq!(p1(&[dispatched(8_000, "j")], 5_000, 30_000), [("j".to_owned(), 18_000)]);
        assert_eq!(p1(&[dispatched(8_000, "j"), completed(17_000, "j")], 5_000, 30_000), []);
        // A deadline past the end is not judged; one at the end is.
        assert_eq!(p1(&[dispatched(1_000, "j")], 5_000, 14_999), []);
        assert_eq!(p1(&[dispatched(1_000, "j")], 5_000, 15_000), [("j".to_owned(), 15_000)]);
        // The first dispatch starts the clock (a re-dispatch does not move it); each job alone.
        assert_eq!(
            p1(
                &[dispatched(1_000, "j"), dispatched(9_000, "j"), dispatched(2_000, "k"), completed(15_000, "k")],
                5_000,
                30_000
            ),
            [("j".to_owned(), 15_000)]
        );
        // A key the store freed (its dedup window passed) and dispatched again is a second
        // job: lost, it is P1 at its own deadline, though the first life completed; completed,
        // nothing. Without the freeing, a second dispatch is the same job's (above).
        let of = Freed::of;
        let freed = |t_ms: u64| Freed::key(t_ms, "j");
        let p1_lives = |h: &[Freed]| -> Vec<u64> {
            jobs_lost(h, 0, 60_000_000, 10_000_000, d, c).iter().map(|v| v.t_us / 1000).collect()
        };
        let first = [of(dispatched(1_000, "j")), of(completed(2_000, "j")), freed(5_000)];
        let lost: Vec<Freed> = first.into_iter().chain([of(dispatched(8_000, "j"))]).collect();
        assert_eq!(p1_lives(&lost), [18_000]);
        let first = [of(dispatched(1_000, "j")), of(completed(2_000, "j")), freed(5_000)];
        let kept: Vec<Freed> =
            first.into_iter().chain([of(dispatched(8_000, "j")), of(completed(9_000, "j"))]).collect();
        assert_eq!(p1_lives(&kept), Vec::<u64>::new());
    }

    #[test]
    fn resource_fence_order_fires_on_an_accepted_lower_fence_only() {
        let w = |t, fence, accepted| (t, "k", fence, "w", accepted);
        assert!(resource_fence_order([w(1, 2, true), w(2, 1, false), w(3, 2, true)]).is_empty());
        assert_eq!(resource_fence_order([w(1, 2, true), w(2, 1, true)]).len(), 1);
    }

    fn life(t_us: u64, node: &'static str, ev: LifecycleEvent<'static>) -> E {
        E(t_us, node, Some(Event::Lifecycle(ev)), None)
    }

    fn started(t_us: u64, service: &'static str, run: u64) -> E {
        life(t_us, "n0", LifecycleEvent::RunStarted { service: service.into(), run })
    }

    fn exited(t_us: u64, service: &'static str, run: u64) -> E {
        life(t_us, "n0", LifecycleEvent::RunExited { service: service.into(), run })
    }

    fn group_stopped(t_us: u64) -> E {
        let services = vec![Text::from("p0"), Text::from("jobs"), Text::from("subscriptions")];
        life(t_us, "n0", LifecycleEvent::GroupStopped { services, failed: None })
    }

    /// The group's stop returns the first error its services' stops reported: the first
    /// passes; the last one's result (MC110: an `Ok` after an error, or a later error) is V9.
    #[test]
    fn a_group_stop_that_returns_another_result_than_the_first_error_fires_v9() {
        let failed = |t_us, service: &'static str| {
            life(t_us, "n0", LifecycleEvent::StopFailed { service: service.into(), error: "x".into() })
        };
        let stopped = |t_us, failed: Option<&'static str>| {
            let services = vec![Text::from("p0"), Text::from("jobs"), Text::from("subscriptions")];
            life(t_us, "n0", LifecycleEvent::GroupStopped { services, failed: failed.map(Text::from) })
        };
        assert!(group_stops(&[failed(1, "p0"), failed(2, "jobs"), stopped(3, Some("p0"))]).is_empty());
        assert!(group_stops(&[stopped(3, None)]).is_empty());
        let v = group_stops(&[failed(2, "jobs"), stopped(3, None)]);
        assert_eq!(crate::test_entry::at_ms(&v), [("V9", 0)], "{v:?}");
        assert!(v[0].detail.contains("returned Ok though the first of its services to fail its stop was jobs"));
        assert_eq!(group_stops(&[failed(1, "p0"), failed(2, "jobs"), stopped(3, Some("jobs"))]).len(), 1);
        // Each stop is judged by its own failures; another group's service does not count.
        let h = [failed(1, "jobs"), stopped(2, Some("jobs")), failed(3, "other"), stopped(4, None)];
        assert!(group_stops(&h).is_empty());
    }

    #[test]
    fn a_group_stop_that_returns_with_a_service_running_fires_v9() {
        let mut h = vec![started(2, "jobs", 1), started(3, "subscriptions", 1), exited(8, "jobs", 1), group_stopped(9)];
        let v = group_stops(&h);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V9", 9));
        assert!(v[0].detail.contains("its service subscriptions still runs (run 1)"), "{}", v[0].detail);
        // Every run exited first: no violation.
        h.insert(3, exited(8, "subscriptions", 1));
        assert!(group_stops(&h).is_empty());
        // A service outside the group, another node's run, a previous life's run.
        let others = vec![
            started(1, "other", 1),
            life(2, "n1", LifecycleEvent::RunStarted { service: "jobs".into(), run: 1 }),
            started(3, "subscriptions", 4),
            E(4, "n0", None, Some(Fact::NodeStart)),
            group_stopped(9),
        ];
        assert!(group_stops(&others).is_empty());
    }

    #[test]
    fn two_services_of_one_name_are_not_judged_by_that_name() {
        // A second manager named `subscriptions` ran beside the group's: which run is the
        // group's cannot be told, so the name is not judged for the rest of the node's life.
        let h = vec![
            started(1, "subscriptions", 1),
            started(2, "subscriptions", 1),
            exited(3, "subscriptions", 1),
            group_stopped(9),
        ];
        assert!(group_stops(&h).is_empty());
        // Two runs of one name in turn (one lifecycle restarted) are one service's.
        let h = vec![started(1, "jobs", 1), exited(2, "jobs", 1), started(3, "jobs", 2), group_stopped(9)];
        assert_eq!(group_stops(&h).len(), 1);
    }

    fn map(t: u64, e: RmapEvent<'static>) -> E {
        E(t, "n0", Some(Event::Rmap(e)), None)
    }

    fn armed(t: u64, rev: u64, parked: bool) -> E {
        map(t, RmapEvent::WaiterArmed { map: "m".into(), rev, parked })
    }

    fn notified(t: u64, rev: u64) -> E {
        map(t, RmapEvent::Notified { map: "m".into(), rev })
    }

    fn resynced(t: u64, rev: u64) -> E {
        let reason = keel::observe::ResyncReason::Gap;
        map(
            t,
            RmapEvent::Resynced {
                map: "m".into(),
                reason,
                rev,
                old_rev: 0,
                changed: 0,
                woken: 0,
                took_us: 0,
                restarted: false,
            },
        )
    }

    /// R8: a waiter parks only below its replica's revision (MC49: a load that does not publish
    /// its revision parks a waiter whose write the snapshot holds), and no parked waiter outlives
    /// the step that brings its replica to its write.
    #[test]
    fn a_waiter_parked_at_or_below_its_replica_fires_r8() {
        let woken = |t: u64, rev: u64| map(t, RmapEvent::WaiterWoken { map: "m".into(), rev, lost: false });
        // Parked below, woken by the apply step that reaches it; one armed at once after.
        let h = vec![resynced(1, 5), armed(2, 7, true), woken(3, 7), notified(3, 7), armed(4, 6, false)];
        assert!(rmap_waiters_wake(&h).is_empty());
        // MC49: parked for 5 after a resync to 6.
        let v = rmap_waiters_wake(&[resynced(1, 6), armed(2, 5, true)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R8", 2));
        // An apply step that reaches a parked write and leaves it parked.
        let v = rmap_waiters_wake(&[resynced(1, 5), armed(2, 7, true), notified(3, 6), notified(4, 7)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].t_us, 4);
        // Cancelled while parked, the map stopped, a new life: nothing left to wake.
        let cancel = map(3, RmapEvent::WaiterCancelled { map: "m".into(), rev: 7, armed: true, claimed: false });
        assert!(rmap_waiters_wake(&[resynced(1, 5), armed(2, 7, true), cancel, notified(4, 7)]).is_empty());
        let stop = map(3, RmapEvent::Stopped { map: "m".into(), waiters_closed: 1 });
        assert!(rmap_waiters_wake(&[resynced(1, 5), armed(2, 7, true), stop, resynced(4, 9)]).is_empty());
        let restart = E(3, "n0", None, Some(Fact::NodeStart));
        assert!(rmap_waiters_wake(&[resynced(1, 5), armed(2, 7, true), restart, resynced(4, 9)]).is_empty());
        // Another map, another node: judged apart.
        let other =
            E(2, "n1", Some(Event::Rmap(RmapEvent::WaiterArmed { map: "m".into(), rev: 5, parked: true })), None);
        assert!(rmap_waiters_wake(&[resynced(1, 6), other]).is_empty());
    }

    /// R8 hears a join like any load: a waiter parked for a write the join loaded, or left parked
    /// by the join that reached it. A node's start forgets its replica's revision (the new life's
    /// replica holds nothing yet); another node's start does not.
    #[test]
    fn r8_judges_a_join_and_forgets_a_restarted_nodes_replica() {
        let joined = |t, rev| map(t, RmapEvent::Joined { map: "m".into(), rev, keys: 0, restarted: false });
        let at = |v: Vec<Violation>| v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>();
        assert_eq!(at(rmap_waiters_wake(&[joined(1, 6), armed(2, 5, true)])), [("R8", 2)]);
        assert_eq!(at(rmap_waiters_wake(&[armed(1, 7, true), joined(2, 7)])), [("R8", 2)]);
        let start = |node| E(2, node, None, Some(Fact::NodeStart));
        assert_eq!(at(rmap_waiters_wake(&[resynced(1, 6), start("n0"), armed(3, 5, true)])), []);
        assert_eq!(at(rmap_waiters_wake(&[resynced(1, 6), start("n1"), armed(3, 5, true)])), [("R8", 3)]);
    }
}

#[cfg(test)]
mod revision_tests {
    use keel::observe::{Event, ResyncReason, RmapEvent};

    use super::*;
    use crate::test_entry::{E, at_ms};

    fn rmap(t_ms: u64, e: RmapEvent<'_>) -> E {
        E(t_ms * 1000, "n1", Some(Event::Rmap(e.to_static())), None)
    }

    fn resynced(t_ms: u64, rev: u64, took_ms: u64) -> E {
        let (reason, old_rev, changed, woken, took_us) = (ResyncReason::Gap, 0, 0, 0, took_ms * 1000);
        rmap(
            t_ms,
            RmapEvent::Resynced { map: "m".into(), reason, rev, old_rev, changed, woken, took_us, restarted: false },
        )
    }

    /// R2: a revision goes back only by a resync after a data loss; a snapshot whose read may
    /// have preceded a loss (its span covers the loss) counts as loaded before it (rmap seed 750).
    #[test]
    fn a_revision_goes_back_only_past_a_loss_after_the_data_it_loaded() {
        let loss = |t_ms: u64| E(t_ms * 1000, "store", None, Some(Fact::StoreLostData));
        let up = |t_ms: u64| E(t_ms * 1000, "store", None, Some(Fact::StoreUp));
        let judge = |h: &[E]| at_ms(&rmap_revisions(h, |_| None));
        // Loaded at 30 ms (read from 20), lost at 41, back to 0 at 1 400: excused.
        assert_eq!(judge(&[resynced(30, 7, 10), loss(41), resynced(1_400, 0, 5)]), []);
        // Read from 35 ms (the span covers the loss at 41), delivered at 43 with the store still
        // down: read before the loss, so excused too.
        assert_eq!(judge(&[loss(41), resynced(43, 7, 8), up(500), resynced(1_400, 0, 5)]), []);
        // The store back at 42, inside the span: the read may have come after, so not excused.
        assert_eq!(judge(&[loss(41), up(42), resynced(43, 7, 8), resynced(1_400, 0, 5)]), [("R2", 1_400)]);
        // Read wholly after the loss: going back needs another one.
        assert_eq!(judge(&[loss(41), resynced(60, 7, 5), resynced(1_400, 0, 5)]), [("R2", 1_400)]);
        let applied = rmap(1_000, RmapEvent::Applied { map: "m".into(), rev: 9 });
        // R17: a resync reports the revision its replica left.
        let left = resynced(30, 7, 10);
        let on = |old: u64| {
            let (reason, rev, changed, woken, took_us) = (ResyncReason::Gap, 12, 0, 0, 1);
            rmap(
                2_000,
                RmapEvent::Resynced {
                    map: "m".into(),
                    reason,
                    rev,
                    old_rev: old,
                    changed,
                    woken,
                    took_us,
                    restarted: false,
                },
            )
        };
        assert_eq!(at_ms(&rmap_resyncs_report_the_revision_left(&[left.clone(), applied.clone(), on(9)])), []);
        assert_eq!(
            at_ms(&rmap_resyncs_report_the_revision_left(&[left.clone(), applied.clone(), on(12)])),
            [("R17", 2_000)]
        );
        // A node's restart forgets its replica.
        let start = E(1_500_000, "n1", None, Some(Fact::NodeStart));
        assert_eq!(at_ms(&rmap_resyncs_report_the_revision_left(&[left, applied.clone(), start, on(3)])), []);
        assert_eq!(
            judge(&[resynced(30, 7, 10), applied, rmap(1_100, RmapEvent::Applied { map: "m".into(), rev: 8 })]),
            [("R2", 1_100)]
        );
    }

    /// R2 within a node's life: the same revision again is not going back; a join and a
    /// returning `set_and_wait` are revisions seen like any other; a node's start begins a new
    /// life (another node's does not). R3: `set_and_wait` returns with its replica at its
    /// write's revision or past it.
    #[test]
    fn r2_and_r3_judge_every_revision_seen_within_a_life() {
        let judge = |h: &[E]| at_ms(&rmap_revisions(h, |_| None));
        let applied = |t, rev| rmap(t, RmapEvent::Applied { map: "m".into(), rev });
        let joined = |t, rev| rmap(t, RmapEvent::Joined { map: "m".into(), rev, keys: 0, restarted: false });
        let returned = |t, rev, local_rev| rmap(t, RmapEvent::WaitReturned { map: "m".into(), rev, local_rev });
        assert_eq!(judge(&[applied(1, 9), applied(2, 9)]), []);
        assert_eq!(judge(&[applied(1, 9), joined(2, 3)]), [("R2", 2)]);
        assert_eq!(judge(&[joined(1, 9), applied(2, 3)]), [("R2", 2)]);
        assert_eq!(judge(&[applied(1, 9), returned(2, 5, 8)]), [("R2", 2)]);
        assert_eq!(judge(&[returned(1, 5, 5), returned(2, 5, 6)]), []);
        assert_eq!(judge(&[returned(1, 5, 4)]), [("R3", 1)]);
        let start = |node| E(2_000, node, None, Some(Fact::NodeStart));
        assert_eq!(judge(&[applied(1, 9), start("n1"), applied(3, 3)]), []);
        assert_eq!(judge(&[applied(1, 9), start("n2"), applied(3, 3)]), [("R2", 3)]);
    }

    /// R2's span at its ends: a loss at the very instant the snapshot's last attempt was sent
    /// falls inside the span, and a store back at the very instant of the reply was back only
    /// after the read (which precedes its reply): the snapshot counts as read before the loss
    /// both times, and a later resync may go back.
    #[test]
    fn a_loss_at_either_end_of_a_snapshots_span_counts_as_after_its_read() {
        let loss = |t_ms: u64| E(t_ms * 1000, "store", None, Some(Fact::StoreLostData));
        let up = |t_ms: u64| E(t_ms * 1000, "store", None, Some(Fact::StoreUp));
        let judge = |h: &[E]| at_ms(&rmap_revisions(h, |_| None));
        assert_eq!(judge(&[loss(41), resynced(43, 7, 2), up(500), resynced(1_400, 0, 5)]), []);
        assert_eq!(judge(&[loss(41), up(43), resynced(43, 7, 8), resynced(1_400, 0, 5)]), []);
    }

    /// R17 names the first 20 resyncs that misreport the revision they left.
    #[test]
    fn r17_names_twenty_at_most() {
        let h: Vec<E> = (1..=25)
            .map(|i| {
                let (reason, old_rev, changed, woken, took_us) = (ResyncReason::Gap, 0, 0, 0, 1);
                rmap(
                    i,
                    RmapEvent::Resynced {
                        map: "m".into(),
                        reason,
                        rev: i,
                        old_rev,
                        changed,
                        woken,
                        took_us,
                        restarted: false,
                    },
                )
            })
            .collect();
        // The first resync has nothing to compare with; each later one left the one before.
        assert_eq!(rmap_resyncs_report_the_revision_left(&h).len(), 20);
    }
}
