//! The completer scenario (SPEC §6, V1–V5): producers completing work while a stop is requested
//! (sometimes after the caller's token was cancelled), under store latency, errors, restarts and
//! node crashes, with the completer and the subscription manager restarted several times.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use keel::clock::Clock;
use keel::completer::{
    CompleteError, Completer, CompleterConfig, Completion, KindFilter, Producer, SubscriptionManager, TryCompleteError,
};
use keel::lifecycle::{Service, ServiceError, ServiceGroup, Status};
use keel::mutants::Mutant;
use keel::observe::{CompleterEvent, Field, LifecycleEvent, events};
use keel::shutdown::Shutdown;
use keel::store::Store;
use madsim::rand::{Rng, thread_rng};

use super::{AppEv, RunView};
use crate::check::{Coverage, Violation};
use crate::harness::Sim;
use crate::history::{Event, Who, WorldEv};
use crate::plan::{FaultKind, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

/// Which events a counting subscriber asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubFilter {
    /// Every completion.
    All,
    /// Failed completions only.
    Failed,
}

impl std::fmt::Display for SubFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.show(f)
    }
}

impl Field for SubFilter {
    type Static = SubFilter;
    fn to_static(&self) -> Self {
        *self
    }
    fn show(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SubFilter::All => "all",
            SubFilter::Failed => "failed",
        })
    }
}

events! {
    /// What the completer scenario's workload recorded.
    pub enum Rec {
        /// A producer's completion was accepted by the completer.
        CompletionAccepted { run: u64, failed: bool } = "completion_accepted",
        /// A producer's completion was refused.
        CompleteRejected { run: u64, error: String } = "complete_rejected",
        /// V32: a run's group start failed, and not at the start the scenario refused on purpose:
        /// `service` and `reason` as the group reported them.
        StartFailed { run: u64, service: String, reason: String } = "start_failed",
        /// A stopping producer handed its last job back instead of completing it.
        HandedBack { run: u64 } = "handed_back",
        /// The nemesis stalled a counting subscriber (`ConsumerStall`): it stops reading until
        /// its run's stop returned; `before_stop`: the stop had not begun yet.
        SubStalled { run: u64, filter: SubFilter, before_stop: bool } = "sub_stalled",
        /// V8: a counting subscriber received the event of a completion the store did not hold
        /// (read in place at receipt): `key` as written, `rev` the batch's revision in the event.
        EventNotStored { run: u64, key: String, rev: u64 } = "event_not_stored",
        /// V24: a counting subscriber received `key` after a later completion of the same
        /// producer, its `after`-th (recorded once per subscriber).
        EventOutOfOrder { run: u64, key: String, after: u64 } = "event_out_of_order",
        /// V25: after a freeze a counting subscriber found `held` events buffered, with `dropped`
        /// counted, against the `buffer` the manager was configured with (recorded only when
        /// they disagree).
        BufferHeld { run: u64, filter: SubFilter, held: u64, dropped: u64, buffer: u64 } = "buffer_held",
        /// A counting subscriber's channel closed.
        SubClosed { run: u64, filter: SubFilter, received: u64, dropped: u64, foreign: u64 } = "sub_closed",
        /// A counting subscriber went away mid-run, dropping its subscription after `received`
        /// events: the manager must forget it (`subscriber_gone`) and go on for the others.
        SubLeft { run: u64, filter: SubFilter, received: u64 } = "sub_left",
        /// The group stop of a run began.
        StopBegin { run: u64, caller_cancelled: bool } = "stop_begin",
        /// The group stop of a run returned.
        StopEnd { run: u64, error: String } = "stop_end",
        /// V20: the run's burst producer was armed by its stop: at `at_us` (the instant the
        /// completer's stop bound runs out, if its drain begins at once) it hands in more
        /// completions than the backlog holds.
        BurstArmed { run: u64 } = "burst_armed",
        /// The burst producer returned: `accepted` of its completions taken, then `error` (empty:
        /// it handed all in).
        BurstEnded { run: u64, accepted: u64, error: String } = "burst_ended",
        /// A node incarnation finished all its runs.
        NodeDone {} = "node_done",
        /// E8: the stress's producer's registration (`Completer::producer`) was refused `error`.
        RegisterRefused { error: String } = "register_refused",
        /// The start/stop stress finished.
        StressDone { stopped: bool } = "stress_done",
        /// The start/stop stress hung.
        StressStuck {} = "stress_stuck",
        /// A stop of the stress's `service` returned while the run it was called on, `run`,
        /// had not exited (its status then: `status`).
        StopReturnedEarly { service: String, run: u64, status: String } = "stop_returned_early",
        /// A start of the stress's `service` returned with the service not running (`status`).
        StartReturnedNotRunning { service: String, status: String } = "start_returned_not_running",
        /// V18: a task began awaiting the stress lifecycle's `what` (`started` or `stopped`;
        /// V46: `joined` or `joined_at_stopping`, a `join()`).
        LifeAwaitBegun { what: String } = "life_await_begun",
        /// V18: that await returned.
        LifeAwaitEnded { what: String } = "life_await_ended",
        /// V18: that await was given up: the node is stopping (its caller's token fired), and
        /// the stress's runs now end as they start.
        LifeAwaitAbandoned { what: String } = "life_await_abandoned",
        /// V23: the stress lifecycle's status watch (`Lifecycle::subscribe()`) showed `status`.
        LifeWatchSeen { status: String } = "life_watch_seen",
    }
}

pub(super) fn rec(e: &Event) -> Option<&Rec> {
    match e.app() {
        Some(AppEv::Completer(r)) => Some(r),
        _ => None,
    }
}

/// Completer scenario settings (ms).
#[derive(Clone, Debug)]
pub struct CompleterScenario {
    /// Application nodes.
    pub nodes: usize,
    /// Completer/subscription-manager runs per node incarnation.
    pub runs: u64,
    /// Fault window before the heal.
    pub window_ms: u64,
    /// The completer's stop bound. Short enough that a store outage often outlasts it: a stop
    /// that gives up with completions still queued must report them (MC26 escaped 300 seeds
    /// at 2 s, where a bound ran out once).
    pub stop_ms: u64,
    /// The subscription manager's drain bound.
    pub drain_ms: u64,
    /// How long a stopping producer tries to hand over its last completion before handing the
    /// job back instead.
    pub handoff_ms: u64,
    /// Nodes' clocks drift and jump, and nodes pause (`completerclock`): the completer times its ticks, stops
    /// and drains on the clock it is given, so a deadline armed on the runtime's timer instead
    /// shows only when the two disagree. `completer` keeps true clocks, so its schedules stay.
    pub clock_faults: bool,
}

impl Default for CompleterScenario {
    fn default() -> Self {
        CompleterScenario {
            nodes: 2,
            runs: 3,
            window_ms: 6_000,
            stop_ms: 600,
            drain_ms: 2_000,
            handoff_ms: 500,
            clock_faults: false,
        }
    }
}

const PRODUCERS: usize = 2;
/// How often a run has a burst producer (V20: one parked on a full backlog when the run closes).
const BURSTS: f64 = 0.3;
/// The burst producer's name, and how many completions it hands in: more than the backlog holds.
const BURST: &str = "burst";
const BURST_COMPLETIONS: u64 = 2 * BACKLOG as u64 + 8;
/// The reason of the start the scenario refuses on purpose (V19).
const START_REFUSED: &str = "scenario: start refused";
/// How often a run's group start fails at one of its producers.
const START_REFUSALS: f64 = 0.1;
/// The completer's backlog bound (queued + in flight).
const BACKLOG: usize = 16;
const MAX_JOB_MS: u64 = 60;

/// The `jobs` completer's settings (V28: each run announces them).
const BATCH_SIZE: usize = 8;
const FLUSH_MS: u64 = 20;
const RETRY_MS: (u64, u64) = (10, 200);
const RETRY_BUDGET: u32 = 6;

impl CompleterScenario {
    /// The completer of node `node` (its instance: as a user would, so the nodes' retries of a
    /// failing store do not align, V28).
    fn config(&self, node: &str) -> Option<CompleterConfig> {
        CompleterConfig::builder("jobs")
            .instance(node)
            .batch_size(BATCH_SIZE)
            .backlog(BACKLOG)
            .event_buffer(4)
            .flush_interval(Duration::from_millis(FLUSH_MS))
            .retry_backoff(Duration::from_millis(RETRY_MS.0), Duration::from_millis(RETRY_MS.1))
            .retry_budget(RETRY_BUDGET)
            .op_timeout(self.op_timeout()) // E6 judges every call by the harness's op timeout
            .stop_timeout(Duration::from_millis(self.stop_ms))
            .build()
            .ok()
    }

    /// V4's bound on a whole group stop: producers hand over or hand back, then the completer's
    /// and the subscription manager's bounds, plus scheduling slack.
    fn stop_bound_us(&self) -> u64 {
        (self.handoff_ms + MAX_JOB_MS + self.stop_ms + self.drain_ms + 500) * 1000
    }
}

/// A worker that completes jobs until stopped, then finishes its current job.
struct ProducerSvc<S: Store> {
    name: String,
    completer: Arc<Completer<S>>,
    ctx: NodeCtx,
    run: u64,
    handoff: Duration,
    /// The node life's start (µs): part of every completion's key.
    life: u64,
    /// Its start fails (a dependency it could not reach): the group must stop what it started.
    refuse_start: bool,
    task: Mutex<Option<(Shutdown, tokio::task::JoinHandle<()>)>>,
}

async fn produce(ctx: NodeCtx, p: Producer, name: String, run: u64, stop: Shutdown, handoff: Duration, life: u64) {
    let mut i = 0u64;
    loop {
        let work_ms = thread_rng().gen_range(1..MAX_JOB_MS);
        // The job in hand is finished even when the stop arrives meanwhile.
        ctx.clock.sleep(Duration::from_millis(work_ms)).await;
        let failed = thread_rng().gen_bool(0.3);
        let kind = if failed { "failed" } else { "succeeded" };
        // Unique per node life (its start instant): a write of an earlier life still in flight
        // never lands on this life's key (V8 reads the key back).
        let c = Completion::new(format!("{}@{life}-{name}-{run}-{i}", ctx.name), run, kind, "");
        i += 1;
        let stopping = stop.is_cancelled();
        // The first producer tries first, as a caller that must not block does, and waits only
        // for a full backlog: `try_complete` runs under every rule as `complete` does.
        let c = if name != "p0" {
            c
        } else {
            match p.try_complete(c) {
                Ok(()) => {
                    ctx.record(Rec::CompletionAccepted { run, failed });
                    if stopping || stop.is_cancelled() {
                        break;
                    }
                    continue;
                }
                Err(TryCompleteError::Closed(_)) => {
                    ctx.record(Rec::CompleteRejected { run, error: CompleteError::Closed.to_string() });
                    break;
                }
                Err(TryCompleteError::Full(back)) => back,
                // The workload's keys are all valid: a refusal of one is recorded, and the
                // producers' rule (`CompleteRejected` against the run's phase) fires.
                Err(e @ TryCompleteError::InvalidKey(..)) => {
                    ctx.record(Rec::CompleteRejected { run, error: e.to_string() });
                    break;
                }
            }
        };
        let r = if stopping {
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                r = p.complete(c) => Some(r),
                _ = ctx.clock.sleep(handoff) => None,
            }
        } else {
            tokio::select! {
                biased; // fixed poll order: tokio's per-thread select RNG would break replay
                r = p.complete(c) => Some(r),
                _ = stop.cancelled() => None,
            }
        };
        match r {
            Some(Ok(())) => ctx.record(Rec::CompletionAccepted { run, failed }),
            Some(Err(e)) => {
                ctx.record(Rec::CompleteRejected { run, error: e.to_string() });
                break;
            }
            None if stopping => {
                ctx.record(Rec::HandedBack { run });
                break;
            }
            None => continue,
        }
        if stopping || stop.is_cancelled() {
            break;
        }
    }
    drop(p);
}

impl<S: Store> Service for ProducerSvc<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn start<'a>(&'a self, parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
            if task.is_some() {
                return Ok(());
            }
            if self.refuse_start {
                return Err(ServiceError { service: self.name.clone(), reason: START_REFUSED.into() });
            }
            let p = self
                .completer
                .producer(&self.name)
                .map_err(|e| ServiceError { service: self.name.clone(), reason: e.to_string() })?;
            let stop = parent.child(&self.name);
            let fut = produce(self.ctx.clone(), p, self.name.clone(), self.run, stop.clone(), self.handoff, self.life);
            *task = Some((stop, tokio::spawn(fut)));
            Ok(())
        })
    }

    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async move {
            let t = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((stop, task)) = t {
                stop.cancel();
                let _ = task.await;
            }
            Ok(())
        })
    }
}

/// V20's workload: a producer registered with the run, idle while the run works. Its stop (the
/// group's, after the workers' and just before the completer's) arms a burst of more completions
/// than the backlog holds, timed for the instant the completer's stop bound runs out (the
/// completer's drain begins at the same instant when it is idle, and waits for this producer,
/// registered until its burst ends): the burst fills the backlog and parks on it, and the run
/// closes under it with no write left to make room. Only the close can wake it, refused
/// (`Closed`); a close that does not (MC115) leaves it parked forever. When the drain began
/// later (a write in flight), the burst is written like any other completions, or parks at the
/// bound all the same.
struct BurstSvc<S: Store> {
    completer: Arc<Completer<S>>,
    ctx: NodeCtx,
    run: u64,
    life: u64,
    bound: Duration,
    producer: Mutex<Option<Producer>>,
}

impl<S: Store> Service for BurstSvc<S> {
    fn name(&self) -> &str {
        BURST
    }

    fn start<'a>(&'a self, _parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let mut producer = self.producer.lock().unwrap_or_else(|p| p.into_inner());
            if producer.is_none() {
                let p = self
                    .completer
                    .producer(BURST)
                    .map_err(|e| ServiceError { service: BURST.into(), reason: e.to_string() })?;
                *producer = Some(p);
            }
            Ok(())
        })
    }

    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async move {
            let Some(p) = self.producer.lock().unwrap_or_else(|p| p.into_inner()).take() else { return Ok(()) };
            let (ctx, run, life) = (self.ctx.clone(), self.run, self.life);
            // The completer's own clock and arithmetic: its drain's deadline is `now + bound`.
            // Every other run, the burst comes 10 ms after it instead, so the drain sits idle at
            // its bound and must wake for it by itself (V4, MC168). Drawn from the run, not the
            // run's generator, so the schedules stay as they were.
            let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
            let late = if run % 2 == 0 { Duration::from_millis(10) } else { Duration::ZERO };
            let at = clock.now() + self.bound + late;
            ctx.record(Rec::BurstArmed { run });
            // Two tasks hand the burst in at once, as two workers of one process sharing the
            // producer do: both park on the full backlog, and the run's close must wake both
            // (V20; a close that wakes one, MC315, leaves the other parked). Each task's keys
            // are its own sequence (V24 reads a producer's order from them).
            let p = Arc::new(p);
            for (task, count) in [("", BURST_COMPLETIONS / 2), ("b", BURST_COMPLETIONS - BURST_COMPLETIONS / 2)] {
                let (ctx, clock, p) = (ctx.clone(), clock.clone(), p.clone());
                tokio::spawn(async move {
                    clock.sleep_until(at).await;
                    let (mut accepted, mut error) = (0u64, String::new());
                    for i in 0..count {
                        let key = format!("{}@{life}-{BURST}{task}-{run}-{i}", ctx.name);
                        match p.complete(Completion::new(key, run, "succeeded", "")).await {
                            Ok(()) => {
                                accepted += 1;
                                ctx.record(Rec::CompletionAccepted { run, failed: false });
                            }
                            Err(e) => {
                                error = e.to_string();
                                break;
                            }
                        }
                    }
                    ctx.record(Rec::BurstEnded { run, accepted, error });
                    drop(p); // the producer deregisters with the last task's
                });
            }
            Ok(())
        })
    }
}

/// What a subscriber that can be stalled (`ConsumerStall`) watches: its run's stop beginning,
/// and its run's stop having returned (the end of its stall).
#[derive(Clone)]
struct RunStop {
    begun: Arc<AtomicBool>,
    returned: Shutdown,
}

/// A completion's value in the store as docs/lifecycle.md documents it (`attempt␟kind␟payload`,
/// U+001F between), built here rather than by keel's encoder, which V8 would otherwise agree with
/// whatever it wrote (round 18 A #17, MC173).
fn documented_value(c: &keel::completer::Completion) -> String {
    format!("{}\u{1f}{}\u{1f}{}", c.attempt, c.kind, c.payload)
}

async fn count_subscriber(
    ctx: NodeCtx,
    mut sub: keel::completer::Subscription,
    filter: SubFilter,
    run: u64,
    stall: Option<RunStop>,
    map: String,
) {
    let mut received = 0u64;
    let mut foreign = 0u64;
    // Some subscribers stop reading for a while (slow or frozen consumers): their buffer fills
    // and the manager must drop and count, never block.
    let freeze = {
        let mut rng = thread_rng();
        rng.gen_bool(0.3).then(|| (rng.gen_range(0..5u64), Duration::from_millis(rng.gen_range(300..2500))))
    };
    let mut unstored = false;
    // Now and then the failed-only subscriber goes away after two events (a consumer that quits):
    // drawn from the instant and the run, not the generator, so the schedules stay.
    let leaves = filter == SubFilter::Failed && (ctx.history.now_us() / 1000 + run) % 4 == 1;
    // V24: each producer's completions arrive in the order it handed them in (a subsequence of
    // it: a full buffer drops some). Keys end in the producer's count, `…-{run}-{i}`.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut disordered = false;
    // Events read ahead of their turn: what a subscriber's buffer held after a freeze (V25).
    let mut ahead: std::collections::VecDeque<keel::completer::CompletionEvent> = Default::default();
    loop {
        let e = match ahead.pop_front() {
            Some(e) => e,
            None => match sub.recv().await {
                Some(e) => e,
                None => break,
            },
        };
        received += 1;
        if leaves && received == 2 {
            drop(sub);
            ctx.record(Rec::SubLeft { run, filter, received });
            return;
        }
        if !disordered
            && let Some((producer, i)) = e.completion.key.rsplit_once('-')
            && let Ok(i) = i.parse::<u64>()
            && let Some(prev) = last.insert(producer.to_owned(), i)
            && prev >= i
        {
            disordered = true;
            ctx.record(Rec::EventOutOfOrder { run, key: e.completion.key.clone(), after: prev });
        }
        // V8, at receipt: an event says its completion is durable, so the store holds it (read in
        // place: no network, no fault). Recorded once per subscriber; data loss excuses it.
        if !unstored
            && let Ok((value, _)) = ctx.store_data().map_get(&map, &e.completion.key).await
            && value.as_deref() != Some(documented_value(&e.completion).as_str())
        {
            unstored = true;
            ctx.record(Rec::EventNotStored { run, key: e.completion.key.clone(), rev: e.rev });
        }
        // A stalled subscriber stops reading through its run's stop: the manager must drop and
        // count for it, never wait (River's blocking send waited, MR6).
        if let Some(s) = &stall
            && ctx.take_consumer_stall()
        {
            let before_stop = !s.begun.load(Ordering::SeqCst);
            ctx.record(Rec::SubStalled { run, filter, before_stop });
            s.returned.cancelled().await;
        }
        if let Some((after, d)) = freeze
            && received == after + 1
        {
            let before = sub.dropped();
            ctx.clock.sleep(d).await;
            // V25: the buffer holds what the manager was configured for, no more, and all of
            // it once the manager had to drop (nothing was read since the first drop).
            while let Some(e) = sub.try_recv() {
                ahead.push_back(e);
            }
            let (held, dropped) = (ahead.len(), sub.dropped() - before);
            if held > SUB_BUFFER || (dropped > 0 && held != SUB_BUFFER) {
                ctx.record(Rec::BufferHeld { run, filter, held: held as u64, dropped, buffer: SUB_BUFFER as u64 });
            }
        }
        if e.run != run {
            foreign += 1;
        }
    }
    ctx.record(Rec::SubClosed { run, filter, received, dropped: sub.dropped(), foreign });
}

async fn node(this: CompleterScenario, ctx: NodeCtx) {
    let Some(cfg) = this.config(&ctx.name) else {
        ctx.record(WorldEv::SimError { error: "invalid completer config".into() });
        return;
    };
    let store = ctx.store().await;
    let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
    let (map, life) = (cfg.map().to_owned(), ctx.history.now_us());
    let completer = Arc::new(Completer::new(store, cfg).with_clock(clock));
    let subs = Arc::new(
        SubscriptionManager::new(&completer)
            .with_buffer(SUB_BUFFER)
            .with_drain_timeout(Duration::from_millis(this.drain_ms)),
    );
    stress(&this, &ctx).await;
    for run in 1..=this.runs {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let caller = ctx.shutdown.child("caller");
        let run_stop = RunStop { begun: Arc::new(AtomicBool::new(false)), returned: Shutdown::new("run-stop") };
        let readers = vec![
            tokio::spawn(count_subscriber(
                ctx.clone(),
                subs.subscribe(KindFilter::All),
                SubFilter::All,
                run,
                Some(run_stop.clone()),
                map.clone(),
            )),
            tokio::spawn(count_subscriber(
                ctx.clone(),
                subs.subscribe(KindFilter::only(["failed"])),
                SubFilter::Failed,
                run,
                None,
                map.clone(),
            )),
        ];
        // Now and then one producer's start fails (V19: the group stops what it started).
        let refuse = thread_rng().gen_bool(START_REFUSALS).then(|| thread_rng().gen_range(0..PRODUCERS));
        let mut group = ServiceGroup::new();
        for p in 0..PRODUCERS {
            group = group.then(Arc::new(ProducerSvc {
                name: format!("p{p}"),
                completer: completer.clone(),
                ctx: ctx.clone(),
                run,
                handoff: Duration::from_millis(this.handoff_ms),
                life,
                refuse_start: refuse == Some(p),
                task: Mutex::new(None),
            }));
        }
        if thread_rng().gen_bool(BURSTS) {
            group = group.then(Arc::new(BurstSvc {
                completer: completer.clone(),
                ctx: ctx.clone(),
                run,
                life,
                bound: Duration::from_millis(this.stop_ms),
                producer: Mutex::new(None),
            }));
        }
        // Some runs start their manager late: the completer's event channel backs up.
        let manager: Arc<dyn Service> = match super::completer_late::lateness(life, run) {
            Some(late) => Arc::new(super::completer_late::LateSubs::new(subs.clone(), ctx.clone(), late)),
            None => subs.clone(),
        };
        let group = group.then(completer.clone()).then(manager);
        if let Err(e) = group.start(&caller).await {
            if e.reason != START_REFUSED && !caller.is_cancelled() {
                ctx.record(Rec::StartFailed { run, service: e.service, reason: e.reason });
            }
            // The services it started are stopped again (V19), so the readers' channels close.
            run_stop.returned.cancel();
            for r in readers {
                let _ = r.await;
            }
            continue;
        }
        let work_ms = thread_rng().gen_range(100..1500);
        tokio::select! {
            biased; // fixed poll order: tokio's per-thread select RNG would break replay
            _ = ctx.clock.sleep(Duration::from_millis(work_ms)) => {}
            _ = caller.cancelled() => {}
        }
        let cancel_first = caller.is_cancelled() || thread_rng().gen_bool(0.5);
        run_stop.begun.store(true, Ordering::SeqCst);
        ctx.record(Rec::StopBegin { run, caller_cancelled: cancel_first });
        if cancel_first {
            caller.cancel();
            let ms = thread_rng().gen_range(0..100);
            ctx.clock.sleep(Duration::from_millis(ms)).await;
        }
        let r = group.stop().await;
        ctx.record(Rec::StopEnd { run, error: r.err().map_or_else(String::new, |e| e.to_string()) });
        run_stop.returned.cancel();
        for r in readers {
            let _ = r.await;
        }
        // Restart quickly (sometimes at once): a restart must get a fresh channel.
        let pause = thread_rng().gen_range(0..30);
        ctx.clock.sleep(Duration::from_millis(pause)).await;
    }
    ctx.record(Rec::NodeDone {});
}

/// V5: concurrent start/stop/restart of a second completer and its manager never panics or
/// deadlocks, and ends stopped.
async fn stress(this: &CompleterScenario, ctx: &NodeCtx) {
    let Some(cfg) = CompleterConfig::builder(STRESS)
        .instance(&ctx.name)
        .op_timeout(this.op_timeout())
        .stop_timeout(Duration::from_millis(this.stop_ms))
        .build()
        .ok()
    else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
    let completer = Arc::new(Completer::new(ctx.store().await, cfg).with_clock(clock));
    let subs =
        Arc::new(SubscriptionManager::new(&completer).with_drain_timeout(Duration::from_millis(STRESS_DRAIN_MS)));
    let caller = ctx.shutdown.child("stress");
    let tasks: Vec<_> = (0..4u64)
        .map(|i| {
            let (c, s, caller, ctx) = (completer.clone(), subs.clone(), caller.clone(), ctx.clone());
            tokio::spawn(async move {
                for k in 0..3u64 {
                    if (i + k) % 2 == 0 {
                        c.start(&caller).await;
                        start_returned(&ctx, "completer", c.status());
                        s.start(&caller).await;
                        start_returned(&ctx, "subscriptions", s.status());
                    } else {
                        let before = c.status();
                        let _ = c.stop().await;
                        stop_returned(&ctx, "completer", before, c.status());
                        let before = s.status();
                        s.stop().await;
                        stop_returned(&ctx, "subscriptions", before, s.status());
                    }
                }
            })
        })
        .collect();
    // A producer completing through the restarts: a stale run's close that hits a restarted
    // run's channel (MR5) shows as events sent after their channel closed (V2).
    let producer = {
        let (c, clock, ctx) = (completer.clone(), ctx.clock.clone(), ctx.clone());
        tokio::spawn(async move {
            for i in 0..STRESS_COMPLETIONS {
                let registered = c.producer("stress-p");
                // E8: a refusal's class is the run's phase (judged from the run's own events).
                if let Err(e) = &registered {
                    ctx.record(Rec::RegisterRefused { error: e.to_string() });
                }
                if let Ok(p) = registered {
                    // Handed back after a while, as a stopping worker does: a completer that
                    // never accepts (MC5) must not hang the stress.
                    tokio::select! {
                        biased; // fixed poll order: tokio's per-thread select RNG would break replay
                        _ = p.complete(Completion::new(format!("stress-{i}"), 1, "succeeded", "")) => {}
                        _ = clock.sleep(Duration::from_millis(50)) => {}
                    }
                    p.finish();
                }
                clock.sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let waits = super::life_waits::exercise(ctx.clone(), caller.clone());
    let all = async {
        let _ = producer.await;
        waits.await;
        for t in tasks {
            let _ = t.await;
        }
        let _ = completer.stop().await;
        subs.stop().await;
    };
    let bound = Duration::from_millis(12 * (this.stop_ms + 200) + 1000);
    tokio::select! {
        biased;
        _ = all => {
            let stopped = completer.status() == Status::Stopped && subs.status() == Status::Stopped;
            ctx.record(Rec::StressDone { stopped });
        }
        _ = ctx.clock.sleep(bound) => ctx.record(Rec::StressStuck {}),
    }
}

/// V5, judged where a stop returns: the run it was called on (`before`) has exited. A run
/// started since by another caller is another run; any stop, also one that finds a stop of
/// the same run under way, waits for the exit (the lifecycle contract).
fn stop_returned(ctx: &NodeCtx, service: &str, before: Status, after: Status) {
    let run_of = |s: Status| match s {
        Status::Running { run } | Status::Stopping { run } => Some(run),
        Status::Stopped => None,
    };
    if let Some(run) = run_of(before)
        && run_of(after) == Some(run)
    {
        ctx.record(Rec::StopReturnedEarly { service: service.to_owned(), run, status: format!("{after:?}") });
    }
}

/// V5, judged where a start returns: the service is running. A start that finds a stop under
/// way waits for its exit and starts a new run (the lifecycle contract); nothing awaits between
/// the new run's spawn and the return, so no other caller's stop can come between.
fn start_returned(ctx: &NodeCtx, service: &str, after: Status) {
    if !matches!(after, Status::Running { .. }) {
        ctx.record(Rec::StartReturnedNotRunning { service: service.to_owned(), status: format!("{after:?}") });
    }
}

const STRESS: &str = "stress";
/// Completions the stress's producer tries, one a millisecond.
const STRESS_COMPLETIONS: u64 = 12;

impl CompleterScenario {
    /// The scenario on the public harness (what `cargo sim` runs).
    pub fn sim(self) -> Sim {
        let (main, judge, goals) = (self.node_main(), self.clone(), self.clone());
        let name = if self.clock_faults { "completerclock" } else { "completer" };
        super::on_harness(name, &self.plan_spec(), self.op_timeout(), self.settle())
            .node(move |node| main(node.ctx().clone()))
            .check(move |run| judge.check(run.view))
            .sometimes_all(self.coverage_goals(), move |run| goals.coverage(run.view.events))
            .mutants(self.mutants())
    }

    fn plan_spec(&self) -> PlanSpec {
        let mut kinds = vec![
            FaultKind::StoreCrash,
            FaultKind::StoreDataLoss,
            FaultKind::StoreUnavailable,
            FaultKind::LatencySpike,
            FaultKind::ReplyLoss,
            FaultKind::Partition,
            FaultKind::PartitionOneWay,
            FaultKind::NodeCrash,
            FaultKind::NodeRestart,
            FaultKind::ReplyDelay,
            FaultKind::NodeLatency,
            FaultKind::ConsumerStall,
        ];
        if self.clock_faults {
            // A pause is time too: a frozen node's clock runs on while its timers wait.
            kinds.extend([FaultKind::ClockDrift, FaultKind::ClockJump, FaultKind::NodePause]);
        }
        PlanSpec { nodes: self.nodes, kinds, window_ms: self.window_ms, unit_ms: 300, drift_bound: 0.1 }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(200)
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(self.runs * (1500 + self.stop_bound_us() / 1000) + 2000)
    }

    fn node_main(&self) -> NodeMain {
        let this = self.clone();
        Arc::new(move |ctx: NodeCtx| Box::pin(node(this.clone(), ctx)))
    }

    fn check(&self, run: &RunView<'_>) -> Vec<Violation> {
        let (events, heal_us, end_us) = (run.events, run.heal_us, run.end_us);
        let runs = Runs::from(run);
        // V4 for the subscription manager (keel's rule, shared with the chaos lane): a stop closes
        // the subscriber channels within the drain bound, at the instant the bound runs out.
        let mut v = crate::keel_rules::subscription_stops(run);
        v.extend(runs_as_configured(events));
        // V4's floor: a manager gives up on its drain only once its bound passed.
        v.extend(crate::keel_rules::subscription_drains_keep_their_bound(run));
        // V4 for each completer run: its drain closes within its stop bound.
        v.extend(crate::keel_rules::completer_drains_bounded(run));
        v.extend(crate::keel_rules::completer_drains_retry(run));
        // V11: a batch is reported retried only after a failed write since the last one.
        v.extend(keel_checks::completer_flushes_report_retries(run.events));
        // V3/V4 as a user's run gets them (shared with the chaos lane): among them, a stop whose
        // bound ran out reports what was still queued, judged when its channel closes.
        v.extend(crate::keel_rules::completer_drains_of(run, |name| name != STRESS));
        // V3 for the report, the stress's completer too: it counts every loss its run announced.
        v.extend(keel_checks::completer_reports_count_undelivered(run.events));
        // V10: a run begins its drain at the stop request, or once its write in flight ended (the
        // stress's completer too: it is keel's own run loop).
        v.extend(crate::keel_rules::completer_stops_heard(run));
        // V13: a drain writes what is queued at once, not at its next flush tick.
        v.extend(crate::keel_rules::completer_drains_write_at_once(run));
        // V31: a write that timed out waited its whole op timeout, on the run's clock.
        v.extend(crate::keel_rules::completer_timeouts_take_the_op_timeout(run));
        v.extend(crate::keel_rules::completer_partial_batches_wait_for_the_tick(run));
        // V26: ... and is written at that tick, not a tick later.
        v.extend(crate::keel_rules::completer_partial_batches_written_at_their_tick(run));
        // V41: ... taken at the tick on the run's own clock.
        v.extend(crate::keel_rules::completer_ticks_on_time(run));
        v.extend(v8_events_stored(run));
        v.extend(v24_events_in_order(run));
        v.extend(v25_buffers_as_configured(run));
        v.extend(v25_drain_bounds_as_configured(run, self.drain_ms));
        v.extend(e8_registrations_refused_by_phase(run));
        v.extend(v42_completions_refused_closed_once_closed(run));
        v.extend(v7_backlog_by_history(run));
        v.extend(v7_room_reports_by_history(run));
        v.extend(crate::keel_rules::group_stops(run));
        // V15: one run of a service at a time (the stress starts its services while running).
        v.extend(keel_checks::services_run_one_at_a_time(run.events));
        // V19: a group starts its services in order, and a failed start leaves none running.
        v.extend(keel_checks::group_starts(run.events));
        // V5 for every lifecycle: a stop returns once the run it was called on exited.
        v.extend(keel_checks::stops_wait_for_their_run(run.events));
        // V9, the members' word: a completer's stop error reaches its group's stop.
        v.extend(keel_checks::group_stops_hear_member_errors(run.events));
        // V16: retries inside their backoff, the stress's completer too.
        v.extend(crate::keel_rules::completer_retries_on_time(run));
        v.extend(keel_checks::completer_retries_do_not_align(run.events));
        v.extend(crate::keel_rules::completer_full_batches_write_at_once(run));
        // V1 from the producers' own events, the stress's completer too.
        v.extend(keel_checks::completer_channel(run.events));
        // V17: a drain ends once its last producer left and its last write ended.
        v.extend(crate::keel_rules::completer_drains_end_at_once(run));
        v.extend(keel_checks::completer_deadlines_name_what_is_left(run.events));
        // V20: a close wakes every producer waiting for room (the burst producer parks on a full
        // backlog at the stop's bound), and nothing is accepted after it.
        v.extend(crate::keel_rules::completer_closes_wake_waiting_producers(run));
        // V21: a stop returns its run's own report (`Ok` only when it lost nothing).
        v.extend(keel_checks::completer_stops_return_their_report(run.events));
        // V22: a subscription manager's close reports its subscribers' drops.
        v.extend(keel_checks::subscription_closes_count_drops(run.events));
        // V34: no write larger than the run's batch size.
        v.extend(keel_checks::completer_batches_keep_their_size(run.events));
        // V48: acceptances and waits for room keep the backlog each run announced.
        v.extend(keel_checks::completer_backlogs_keep_their_bound(run.events));
        // V39: a hand-over announced lost only once no manager holds the run's receiver.
        v.extend(keel_checks::completer_losses_need_a_gone_receiver(run.events));
        // V40: a subscriber found gone is forgotten (the consumer that quits mid-run).
        v.extend(keel_checks::subscribers_gone_once(run.events));
        // V35–V37: a manager drains on its own stop, reads its completer's latest run, and
        // closes its subscribers only once that run closed its channel (or its bound ran out).
        v.extend(keel_checks::subscription_runs_follow_their_stop_and_completer(run.events));
        v.extend(super::life_waits::check(run));
        v.extend(super::life_waits::watch_follows_status(run));
        v.extend(super::life_waits::joins_follow_their_run(run));
        let clocks = Clocks {
            fastest: crate::keel_rules::clock_rates(run).fold(1.0f64, f64::max),
            jumped: &|n, from, to| crate::keel_rules::clock_jumped(run, n, from, to),
        };
        for (id, r) in &runs.runs {
            v.extend(r.check(id, self.stop_bound_us()));
            v.extend(r.check_report(id, self, heal_us, &clocks));
        }
        for e in events {
            if matches!(rec(e), Some(Rec::StressStuck {} | Rec::StressDone { stopped: false })) {
                v.push(Violation::new(
                    "V5",
                    e.t_us,
                    format!("{}: start/stop stress hung or did not end stopped", e.node),
                ));
            }
            // V30: a registered producer's completion is refused only `Closed` (the run ended);
            // `Stopping` answers a registration during a drain (round 28 B #10: a completion
            // that met the close told `Stopping`, so a caller that hands its job back on
            // `Closed` took the wrong branch).
            if let Some(Rec::CompleteRejected { error, .. } | Rec::BurstEnded { error, .. }) = rec(e)
                && !error.is_empty()
                && *error != keel::completer::CompleteError::Closed.to_string()
            {
                v.push(Violation::new(
                    "V30",
                    e.t_us,
                    format!("{}: a registered producer's completion was refused \"{error}\"; only \"completer closed\" refuses one", e.node),
                ));
            }
            // V32: a run's group starts unless the scenario refused one of its starts: nothing
            // else in a start can fail (blind-spot hunt, round 34, B #26: a completer whose
            // restarts kept the first run's closed intake refused every producer "completer
            // closed" from its second run on, and the scenario took each as a refused start).
            if let Some(Rec::StartFailed { run, service, reason }) = rec(e) {
                v.push(Violation::new(
                    "V32",
                    e.t_us,
                    format!("{}: run {run}'s group start failed at {service}: {reason}", e.node),
                ));
            }
            if let Some(Rec::StopReturnedEarly { service, run, status }) = rec(e) {
                v.push(Violation::new(
                    "V5",
                    e.t_us,
                    format!(
                        "{}: a stop of the stress's {service} returned before its run {run} exited ({status})",
                        e.node
                    ),
                ));
            }
            if let Some(Rec::StartReturnedNotRunning { service, status }) = rec(e) {
                v.push(Violation::new(
                    "V5",
                    e.t_us,
                    format!("{}: a start of the stress's {service} returned with it not running ({status})", e.node),
                ));
            }
            if let Some(CompleterEvent::SendAfterClose { .. }) = e.completer() {
                v.push(Violation::new(
                    "V2",
                    e.t_us,
                    format!("{}: completion events sent after their channel closed", e.node),
                ));
            }
        }
        // Liveness, at the instant: a run's stop that began returns within V4's bound while its
        // node lives (V4 judges only the stops that returned; a hung one never does).
        for (id, r) in &runs.runs {
            let life_end = id.rsplit_once('/').and_then(|(inc, _)| runs.incarnations.get(inc)).map_or(0, |i| i.2);
            if let (Some(begin), None) = (r.stop_begin, r.stop_end)
                && begin + self.stop_bound_us() < life_end.min(end_us)
            {
                v.push(Violation::new(
                    "stall",
                    begin + self.stop_bound_us(),
                    format!(
                        "{id}: the stop begun at {:.3}s has not returned within its bound ({} ms): the run hangs",
                        begin as f64 / 1e6,
                        self.stop_bound_us() / 1000
                    ),
                ));
            }
        }
        // Liveness: every incarnation that started after the heal finishes its runs.
        for (node, (started, done, _)) in &runs.incarnations {
            if *started >= heal_us && !done {
                v.push(Violation::new(
                    "stall",
                    end_us,
                    format!(
                        "{node} started at {:.3}s after the heal and never finished its runs",
                        *started as f64 / 1e6
                    ),
                ));
            }
        }
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        let mut narrow = super::NarrowWindows::default();
        // (node, completer, run) → producers waiting for room
        let mut waiting: BTreeMap<(Who, &str, u64), usize> = BTreeMap::new();
        for e in events {
            narrow.see(e);
            match e.completer() {
                Some(CompleterEvent::RoomWaitBegun { completer, run, .. }) => {
                    *waiting.entry((e.node, keel_checks::plain(completer), *run)).or_default() += 1;
                }
                Some(CompleterEvent::RoomWaitEnded { completer, run, .. }) => {
                    if let Some(n) = waiting.get_mut(&(e.node, keel_checks::plain(completer), *run)) {
                        *n = n.saturating_sub(1);
                    }
                }
                Some(CompleterEvent::EventsClosed { completer, run, .. })
                    if waiting.get(&(e.node, keel_checks::plain(completer), *run)).is_some_and(|n| *n > 0) =>
                {
                    c.insert("producer_blocked_at_close");
                }
                _ => {}
            }
            if let Some(keel::observe::Event::Lifecycle(LifecycleEvent::GroupStartEnded { ok: false, .. })) = e.core() {
                c.insert("group_start_failed");
            }
            match (e.completer(), rec(e)) {
                (Some(CompleterEvent::DrainStarted { pending, .. }), _) if *pending > 0 => {
                    c.insert("drain_with_pending_events");
                }
                (Some(CompleterEvent::BatchFlushed { retried: true, .. }), _) => {
                    c.insert("flush_retry");
                }
                (_, Some(Rec::StopBegin { caller_cancelled: true, .. })) => {
                    c.insert("caller_cancelled_first_stop");
                }
                (_, Some(Rec::HandedBack { .. })) => {
                    c.insert("handed_back_at_stop");
                }
                // A manager started late: the channel backed up, and a stop ran out in it.
                (Some(CompleterEvent::HandedOver { .. }), _) => {
                    c.insert("hand_over_waited_for_room");
                }
                (Some(CompleterEvent::EventsUndeliveredAtBound { .. }), _) => {
                    c.insert("hand_over_given_up_at_bound");
                }
                // A subscriber gone mid-run, found gone by the manager.
                (Some(CompleterEvent::SubscriberGone { .. }), _) => {
                    c.insert("subscriber_gone_mid_run");
                }
                (_, Some(Rec::SubClosed { dropped, .. })) if *dropped > 0 => {
                    c.insert("frozen_subscriber_overflowed");
                }
                (_, Some(Rec::SubStalled { before_stop: true, .. })) => {
                    c.insert("subscriber_stalled_through_stop");
                }
                (Some(CompleterEvent::BatchFlushed { .. }), _)
                    if narrow.reply_delayed(e.node, e.t_us) || narrow.asymmetric(e.node, e.t_us) =>
                {
                    c.insert("flush_under_slow_replies");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        &[
            "drain_with_pending_events",
            "flush_retry",
            "caller_cancelled_first_stop",
            "frozen_subscriber_overflowed",
            "subscriber_stalled_through_stop",
            "flush_under_slow_replies",
            "group_start_failed",
            "producer_blocked_at_close",
            "hand_over_waited_for_room",
            "hand_over_given_up_at_bound",
            "subscriber_gone_mid_run",
        ]
    }

    fn mutants(&self) -> &'static [Mutant] {
        if self.clock_faults {
            return &[Mutant::MC289, Mutant::MC290, Mutant::MC325]; // what only a run on a wrong clock breaks
        }
        &[
            Mutant::MR1,
            Mutant::MC295,
            Mutant::MR3,
            Mutant::MC239,
            Mutant::MC242,
            Mutant::MC244,
            Mutant::MC248,
            Mutant::MC249,
            Mutant::MC250,
            Mutant::MC251,
            Mutant::MC258,
            Mutant::MC263,
            Mutant::MC266,
            Mutant::MC268,
            Mutant::MR4,
            Mutant::MR5,
            Mutant::MR6,
            Mutant::MC5,
            Mutant::MC6,
            Mutant::MC7,
            Mutant::MC11,
            Mutant::MC16,
            Mutant::MC37,
            Mutant::MC26,
            Mutant::MC40,
            Mutant::MC41,
            Mutant::MC47,
            Mutant::MC48,
            Mutant::MC52,
            Mutant::MC58,
            Mutant::MC59,
            Mutant::MC67,
            Mutant::MC69,
            Mutant::MC75,
            Mutant::MC83,
            Mutant::MC84,
            Mutant::MC86,
            Mutant::MC87,
            Mutant::MC93,
            Mutant::MC106,
            Mutant::MC107,
            Mutant::MC108,
            Mutant::MC110,
            Mutant::MC115,
            Mutant::MC136,
            Mutant::MC138,
            Mutant::MC146,
            Mutant::MC163,
            Mutant::MC168,
            Mutant::MC169,
            Mutant::MC170,
            Mutant::MC172,
            Mutant::MC173,
            Mutant::MC179,
            Mutant::MC196,
            Mutant::MC208,
            Mutant::MC216,
            Mutant::MC217,
            Mutant::MC197,
            Mutant::MC200,
            Mutant::MC236,
            Mutant::MC310,
            Mutant::MC311,
            Mutant::MC312,
            Mutant::MC313,
            Mutant::MC314,
            Mutant::MC315,
            Mutant::MC316,
            Mutant::MC317,
            Mutant::MC318,
            Mutant::MC324,
            Mutant::MC326,
            Mutant::MC327,
            Mutant::MC373,
            Mutant::MC374,
            Mutant::MC375,
            Mutant::MC366,
            Mutant::MC418,
            Mutant::MC420,
            Mutant::MC424,
            Mutant::MC425,
        ]
    }
}

/// V8: an event is the completer's word that its completion is durable (`CompletionEvent`: "a
/// completion that was durably written to the store"), so at the instant a subscriber receives
/// it the store holds the completion's value. A flush that counts an unknown outcome as written,
/// or a batch whose store write leaves a completion out, emits events nothing else looks behind:
/// V3 counts the events, not the store. Excused: a data-losing store crash during the node's
/// life up to the receipt (the write may have been applied, then lost).
fn v8_events_stored(run: &RunView<'_>) -> Vec<Violation> {
    let mut losses = Vec::new();
    let mut v = Vec::new();
    for e in run.events {
        if matches!(e.world(), Some(WorldEv::StoreCrash { data_loss: true })) {
            losses.push(e.t_us);
        }
        let Some(Rec::EventNotStored { run: r, key, rev }) = rec(e) else { continue };
        let life_start = run.timeline.life_at(e.node, e.t_us).map_or(0, |l| l.start);
        if losses.iter().any(|&t| t >= life_start && t <= e.t_us) {
            continue;
        }
        v.push(Violation::new(
            "V8",
            e.t_us,
            format!("{}: run {r}: a subscriber received {key}@{rev}, which the store does not hold", e.node),
        ));
    }
    v
}

/// The buffer of the scenario's subscribers (`SubscriptionManager::with_buffer`).
const SUB_BUFFER: usize = 64;

/// V25: a subscriber's buffer holds what the manager was configured for
/// (`SubscriptionManager::with_buffer`): a counting subscriber that wakes from a freeze reads
/// what is buffered without waiting, and finds no more than the buffer, and exactly the buffer
/// if the manager dropped some meanwhile (a drop means the buffer was full, and nothing was
/// read since). A buffer setting ignored (the default, 1024, in force: blind-spot hunt, round
/// 23, B #11, MC217) or clamped holds more, or drops with room left. Each record is a violation
/// at its instant.
fn v25_buffers_as_configured(run: &RunView<'_>) -> Vec<Violation> {
    recorded(run, "V25", |e, r| match r {
        Rec::BufferHeld { run: r, filter, held, dropped, buffer } => Some(format!(
            "{}: run {r}: the {filter} subscriber's buffer held {held} events after a freeze, with {dropped} dropped, against a configured buffer of {buffer}",
            e.node
        )),
        _ => None,
    })
}

/// The stress's subscription manager's drain bound (`with_drain_timeout`).
const STRESS_DRAIN_MS: u64 = 200;

/// V25 for the drain bound: a manager stops within what it was configured for
/// (`SubscriptionManager::with_drain_timeout`), judged at each stop request: keel announces the
/// bound it will wait (`sm_stop_requested`'s `bound_ms`), and it must be the one the scenario set,
/// `drain_ms` for the jobs completer's manager, [`STRESS_DRAIN_MS`] for the stress's. V4 judges
/// the stop against the announced bound, so a setting ignored (the completer's stop timeout in
/// force: blind-spot hunt, round 26, B #26) was consistent with itself: a manager configured to
/// drain for 2 s gave up after 600 ms, losing what the completer's channel still held.
fn v25_drain_bounds_as_configured(run: &RunView<'_>, drain_ms: u64) -> Vec<Violation> {
    let wrong = run.events.iter().filter_map(|e| match e.completer() {
        Some(keel::observe::CompleterEvent::SmStopRequested { completer, run: r, bound_ms }) => {
            let want = if *completer == *STRESS { STRESS_DRAIN_MS } else { drain_ms };
            (*bound_ms != want).then(|| {
                Violation::new(
                    "V25",
                    e.t_us,
                    format!(
                        "{}: subscription manager of {completer} run {r}: its stop waits {bound_ms} ms, where it was configured to drain for {want} ms",
                        e.node
                    ),
                )
            })
        }
        _ => None,
    });
    wrong.take(20).collect()
}

/// Each of the scenario's records that `says` turns into a message is a violation of `rule` at
/// its instant; the first 20.
fn recorded(run: &RunView<'_>, rule: &'static str, says: impl Fn(&Event, &Rec) -> Option<String>) -> Vec<Violation> {
    run.events
        .iter()
        .filter_map(|e| rec(e).and_then(|r| says(e, r)).map(|m| Violation::new(rule, e.t_us, m)))
        .take(20)
        .collect()
}

/// E8: a producer's registration is refused with the class of the completer's phase, judged at
/// each refusal the stress's producer records (`register_refused`; it registers through the
/// stress's restarts, drains included): `completer stopping` while the run drains (its
/// `drain_started` came, its `events_closed` not yet), `completer closed` once the run closed
/// (the completer keeps its last run's closed backlog until a restart), `completer not running`
/// before its first run, and never while a run is open. A caller tells a completer that will be
/// back (stopping) from one whose run ended by the class; a drain's refusal reported `Closed`
/// (blind-spot hunt, round 36, B #12, MC316) was seen by nothing: no workload registered during
/// a drain and read what it was told. A node's start or crash forgets the completer.
fn e8_registrations_refused_by_phase(run: &RunView<'_>) -> Vec<Violation> {
    use keel::completer::CompleteError;
    // node → the stress completer's phase: its latest run's expected refusal (None: open)
    let mut phase: BTreeMap<Who, Option<CompleteError>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if matches!(e.world(), Some(WorldEv::NodeStart { .. } | WorldEv::NodeCrash { .. })) {
            phase.remove(&e.node);
            continue;
        }
        match (e.completer(), rec(e)) {
            (Some(CompleterEvent::CompleterStarted { completer, .. }), _) if *completer == *STRESS => {
                phase.insert(e.node, None);
            }
            (Some(CompleterEvent::DrainStarted { completer, .. }), _) if *completer == *STRESS => {
                phase.insert(e.node, Some(CompleteError::Stopping));
            }
            (Some(CompleterEvent::EventsClosed { completer, .. }), _) if *completer == *STRESS => {
                phase.insert(e.node, Some(CompleteError::Closed));
            }
            (_, Some(Rec::RegisterRefused { error })) => {
                let want = phase.get(&e.node).cloned().unwrap_or(Some(CompleteError::NotRunning));
                let ok = want.as_ref().is_some_and(|w| w.to_string() == *error);
                if !ok && v.len() < 20 {
                    let wanted = want.map_or_else(|| "no refusal: its run is open".to_owned(), |w| format!("\"{w}\""));
                    v.push(Violation::new(
                        "E8",
                        e.t_us,
                        format!("{}: the stress's producer's registration was refused \"{error}\", where the completer's phase calls for {wanted}", e.node),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

/// V42: a registered producer's completion is refused `Closed` only once its run closed, judged
/// at each refusal the workload's producers record (`complete_rejected`, `burst_ended` with an
/// error): the node's `jobs` completer has emitted that run's `events_closed` before it. The
/// intake closes in the poll that emits `events_closed`, so a refusal ahead of it came while the
/// run was open or draining, and the drain exists to take in what its registered producers
/// still hand over (docs/lifecycle.md). A drain that refused them as closed (blind-spot hunt,
/// round 39, B #10, MC366) turned away the completions it waited for; V30 reads only the class
/// of the refusal, which was the right one for a closed run, and nothing read its instant. A
/// node's start or crash forgets its runs.
fn v42_completions_refused_closed_once_closed(run: &RunView<'_>) -> Vec<Violation> {
    let closed_text = keel::completer::CompleteError::Closed.to_string();
    // node → the `jobs` completer's runs whose channel closed
    let mut closed: BTreeMap<Who, BTreeSet<u64>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if matches!(e.world(), Some(WorldEv::NodeStart { .. } | WorldEv::NodeCrash { .. })) {
            closed.remove(&e.node);
            continue;
        }
        match (e.completer(), rec(e)) {
            (Some(CompleterEvent::EventsClosed { completer, run, .. }), _) if *completer != *STRESS => {
                closed.entry(e.node).or_default().insert(*run);
            }
            (_, Some(Rec::CompleteRejected { run, error } | Rec::BurstEnded { run, error, .. }))
                if *error == closed_text && !closed.get(&e.node).is_some_and(|c| c.contains(run)) && v.len() < 20 =>
            {
                v.push(Violation::new(
                    "V42",
                    e.t_us,
                    format!("{}: a registered producer's completion was refused \"{error}\" while its run {run} had not closed (no `events_closed` yet)", e.node),
                ));
            }
            _ => {}
        }
    }
    v
}

/// V24: a subscriber receives each producer's completions in the order the producer handed
/// them in. The completer queues what it accepts in one line and writes it in batches from its
/// head, and the subscription manager hands each batch's events on in order, so what a
/// subscriber gets of one producer is a subsequence of what that producer handed in (a full
/// buffer drops, never reorders). Batches taken from the tail (blind-spot hunt, round 23, B
/// #27, MC216) deliver a producer's newer completions before its older ones. The scenario's
/// counting subscribers record the first completion that arrives after a later one of its
/// producer (`event_out_of_order`); each is a violation at its instant.
fn v24_events_in_order(run: &RunView<'_>) -> Vec<Violation> {
    recorded(run, "V24", |e, r| match r {
        Rec::EventOutOfOrder { run: r, key, after } => Some(format!(
            "{}: run {r}: a subscriber received {key} after the same producer's completion {after}: events of one producer come in the order it handed them in",
            e.node
        )),
        _ => None,
    })
}

/// V7 from the history, at the instant of each acceptance: the completions a run accepted
/// (`Accepted`) minus those its written batches hold (`BatchFlushed`'s `n`) are never more than
/// the backlog's bound. Those are accepted and not yet written: queued or in flight, which the
/// bound counts until a batch is written and its events handed on; so in keel's run the count is
/// at most the backlog the intake reports (which also holds a written batch until its events are
/// handed on). Unlike that report it cannot be miscounted by the intake: a run that makes room
/// as it takes a batch (MC40) reports a backlog within the bound while a batch more is in
/// flight. Judged until the run's drain begins: from then on a batch given up at the stop bound
/// makes room without being written, and no producer is left to be accepted (V1's stop order).
/// The start/stop stress's completer (its own bound) is left out.
fn v7_backlog_by_history(run: &RunView<'_>) -> Vec<Violation> {
    // (node, incarnation, run) → (accepted, written, draining or reported)
    let mut runs: BTreeMap<(Who, u32, u64), (usize, usize, bool)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let Some(c) = e.completer() else { continue };
        let (completer, r) = match c {
            CompleterEvent::Accepted { completer, run, .. }
            | CompleterEvent::BatchFlushed { completer, run, .. }
            | CompleterEvent::DrainStarted { completer, run, .. } => (completer, *run),
            _ => continue,
        };
        if *completer == *STRESS {
            continue;
        }
        let Some(life) = run.timeline.life_at(e.node, e.t_us) else { continue };
        let (accepted, written, done) = runs.entry((e.node, life.incarnation, r)).or_default();
        match c {
            CompleterEvent::DrainStarted { .. } => *done = true,
            CompleterEvent::BatchFlushed { n, .. } => *written += n,
            _ if *done => {}
            _ => {
                *accepted += 1;
                let unwritten = accepted.saturating_sub(*written);
                if unwritten > BACKLOG {
                    *done = true; // the first acceptance over the bound is the run's violation
                    v.push(Violation::new(
                        "V7",
                        e.t_us,
                        format!(
                            "{}#{} run {r}: {unwritten} completions accepted and not written, over the backlog's bound {BACKLOG}",
                            e.node, life.incarnation
                        ),
                    ));
                }
            }
        }
    }
    v
}

/// V7 for what `room_made` reports, judged at each: the backlog it reports once a batch left it
/// is the run's acceptances (`Accepted`) less the completions of every batch that left before
/// and with it (`RoomMade`'s `n`, written or given up), and the room is the bound less that
/// backlog. Operators size producers by these figures, and V13 and V26 read the backlog to know
/// what is still queued; a backlog read before the batch leaves (blind-spot hunt, round 26, B
/// #24) counts it still in, which nothing judged.
fn v7_room_reports_by_history(run: &RunView<'_>) -> Vec<Violation> {
    // (node, incarnation, run) → (accepted, released)
    let mut runs: BTreeMap<(Who, u32, u64), (usize, usize)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let (completer, r) = match e.completer() {
            Some(CompleterEvent::Accepted { completer, run, .. } | CompleterEvent::RoomMade { completer, run, .. }) => {
                (completer, *run)
            }
            _ => continue,
        };
        if *completer == *STRESS {
            continue;
        }
        let Some(life) = run.timeline.life_at(e.node, e.t_us) else { continue };
        let (accepted, released) = runs.entry((e.node, life.incarnation, r)).or_default();
        match e.completer() {
            Some(CompleterEvent::RoomMade { n, backlog, room, .. }) => {
                *released += n;
                let want = accepted.saturating_sub(*released);
                if (*backlog, *room) != (want, BACKLOG.saturating_sub(want)) && v.len() < 20 {
                    v.push(Violation::new(
                        "V7",
                        e.t_us,
                        format!(
                            "{}#{} run {r}: room_made reports a backlog of {backlog} and room for {room}; the run accepted {accepted} and released {released}, so {want} and {}",
                            e.node,
                            life.incarnation,
                            BACKLOG.saturating_sub(want)
                        ),
                    ));
                }
            }
            _ => *accepted += 1,
        }
    }
    v
}

/// One completer run of one node incarnation, as seen in the history.
#[derive(Default, Debug)]
struct Run {
    accepted: u64,
    accepted_failed: u64,
    rejected: Vec<(u64, String)>,
    producers_stopped: Vec<u64>,
    closed: Vec<(u64, u64, u64, u64)>, // (t, unflushed, undelivered, producers_left)
    stop_begin: Option<u64>,
    stop_end: Option<u64>,
    /// The stop request's instant and bound (µs), and the burst producer's stop.
    stop_requested: Option<(u64, u64)>,
    burst_stopped: Option<u64>,
    subs: Vec<(u64, SubFilter, u64, u64, u64)>, // (t, filter, received, dropped, foreign)
    /// The events each subscriber that went away mid-run had received.
    left: Vec<u64>,
    /// The subscription manager's close of this run: (t, events it says it offered).
    sm_closed: Option<(u64, u64)>,
    started: Option<u64>,
    max_backlog: (usize, u64), // (largest backlog seen at an acceptance, when)
    drain_started: Option<u64>,
    stop_deadline: Option<u64>,
    /// A hand-over waited on a full channel during the drain, given up at the stop bound or
    /// handed over late in it (V38 judges it): the manager, started late, made no room then.
    waited_in_drain: bool,
    moved_on: bool, // the incarnation finished or went on to its next run
    node: Option<Who>,
}

/// What the plan did to the nodes' clocks, for rules that judge a bound timed on a node's clock.
struct Clocks<'a> {
    /// The fastest rate of a node's clock in the plan (1 when none is faster).
    fastest: f64,
    /// Whether a node's clock jumped between two instants.
    jumped: &'a dyn Fn(&Who, u64, u64) -> bool,
}

/// Runs keyed by `node#incarnation/run`.
struct Runs {
    runs: BTreeMap<String, Run>,
    /// node#incarnation -> (start µs, finished all runs, end µs of the life)
    incarnations: BTreeMap<String, (u64, bool, u64)>,
}

impl Runs {
    fn from(view: &RunView<'_>) -> Runs {
        // Keyed by (node, incarnation, run) while the events are read, and by the
        // `node#incarnation/run` text once at the end: a `format!` and a string-keyed search
        // at every completer event were a thirtieth of a completer sweep's CPU. The map at the
        // end is the same, in the same order.
        let mut keyed: BTreeMap<(Who, u32, u64), Run> = BTreeMap::new();
        let mut incarnations = BTreeMap::new();
        for node in view.timeline.nodes() {
            for l in view.timeline.lives(node) {
                incarnations.insert(format!("{node}#{}", l.incarnation), (l.start, false, l.end));
            }
        }
        // (node, incarnation, subscription manager run) → the completer run it read
        let mut sm_source: BTreeMap<(Who, u32, u64), u64> = BTreeMap::new();
        for e in view.events {
            let Some(n) = view.timeline.life_at(e.node, e.t_us).map(|l| l.incarnation) else { continue };
            let node = e.node;
            let t = e.t_us;
            let (run, what) = match (e.completer(), rec(e)) {
                (_, Some(Rec::NodeDone {})) => {
                    if let Some(i) = incarnations.get_mut(&format!("{node}#{n}")) {
                        i.1 = true;
                    }
                    continue;
                }
                (Some(c), _) => match c {
                    // The burst producer stops after the drain began by design (V20's workload).
                    CompleterEvent::ProducerStopped { completer, run, producer }
                        if *completer != *STRESS && *producer != *BURST =>
                    {
                        (*run, Seen::ProducerStopped)
                    }
                    CompleterEvent::ProducerStopped { completer, run, .. } if *completer != *STRESS => {
                        (*run, Seen::BurstStopped)
                    }
                    CompleterEvent::StopRequested { completer, run, bound_ms } if *completer != *STRESS => {
                        (*run, Seen::StopRequested(bound_ms.saturating_mul(1000)))
                    }
                    CompleterEvent::EventsClosed { completer, run, unflushed, undelivered, producers_left }
                        if *completer != *STRESS =>
                    {
                        (*run, Seen::Closed(*unflushed as u64, *undelivered as u64, *producers_left as u64))
                    }
                    CompleterEvent::CompleterStarted { completer, run, .. } if *completer != *STRESS => {
                        (*run, Seen::Started)
                    }
                    CompleterEvent::Accepted { completer, run, backlog, .. } if *completer != *STRESS => {
                        (*run, Seen::Backlog(*backlog))
                    }
                    CompleterEvent::DrainStarted { completer, run, .. } if *completer != *STRESS => {
                        (*run, Seen::DrainStarted)
                    }
                    CompleterEvent::StopDeadline { completer, run, .. } if *completer != *STRESS => {
                        (*run, Seen::StopDeadline)
                    }
                    CompleterEvent::EventsUndeliveredAtBound { completer, run, .. }
                    | CompleterEvent::HandedOver { completer, run, .. }
                        if *completer != *STRESS =>
                    {
                        (*run, Seen::HandOverEnded)
                    }
                    CompleterEvent::SmStarted { completer, run, source_run } if *completer != *STRESS => {
                        sm_source.insert((node, n, *run), *source_run);
                        continue;
                    }
                    CompleterEvent::SubscriptionsClosed { completer, run, delivered, .. } if *completer != *STRESS => {
                        let Some(&source) = sm_source.get(&(node, n, *run)) else { continue };
                        (source, Seen::SmClosed(*delivered))
                    }
                    _ => continue,
                },
                (_, Some(r)) => match r {
                    Rec::CompletionAccepted { run, failed } => (*run, Seen::Accepted(*failed)),
                    Rec::CompleteRejected { run, error } => (*run, Seen::Rejected(error)),
                    Rec::StopBegin { run, .. } => (*run, Seen::StopBegin),
                    Rec::StopEnd { run, .. } => (*run, Seen::StopEnd),
                    Rec::SubClosed { run, filter, received, dropped, foreign } => {
                        (*run, Seen::Sub(*filter, *received, *dropped, *foreign))
                    }
                    Rec::SubLeft { run, received, .. } => (*run, Seen::SubLeft(*received)),
                    _ => continue,
                },
                _ => continue,
            };
            let r = keyed.entry((node, n, run)).or_default();
            r.node = Some(node);
            match what {
                Seen::Accepted(failed) => {
                    r.accepted += 1;
                    if failed {
                        r.accepted_failed += 1;
                    }
                }
                Seen::Rejected(why) => r.rejected.push((t, why.to_owned())),
                Seen::ProducerStopped => r.producers_stopped.push(t),
                Seen::Closed(unflushed, undelivered, left) => r.closed.push((t, unflushed, undelivered, left)),
                Seen::StopBegin => r.stop_begin = Some(t),
                Seen::StopEnd => r.stop_end = Some(t),
                Seen::Sub(filter, received, dropped, foreign) => r.subs.push((t, filter, received, dropped, foreign)),
                Seen::SubLeft(received) => r.left.push(received),
                Seen::SmClosed(delivered) => r.sm_closed = Some((t, delivered)),
                Seen::Started => r.started = Some(t),
                Seen::Backlog(n) => {
                    if n > r.max_backlog.0 {
                        r.max_backlog = (n, t);
                    }
                }
                Seen::DrainStarted => r.drain_started = Some(t),
                Seen::StopDeadline => r.stop_deadline = Some(t),
                Seen::HandOverEnded => r.waited_in_drain |= r.drain_started.is_some(),
                Seen::StopRequested(bound_us) => r.stop_requested = Some((t, bound_us)),
                Seen::BurstStopped => r.burst_stopped = Some(t),
            }
        }
        let mut runs: BTreeMap<String, Run> =
            keyed.into_iter().map(|((node, n, run), r)| (format!("{node}#{n}/{run}"), r)).collect();
        // A run is over for its subscribers once its incarnation finished or started the next run.
        let ids: Vec<String> = runs.keys().cloned().collect();
        for id in ids {
            let Some((inc, n)) = id.rsplit_once('/') else { continue };
            let next = n.parse::<u64>().map(|n| format!("{inc}/{}", n + 1)).unwrap_or_default();
            // The next run must have started: a dying incarnation's last events (a producer
            // stopped by the crash itself) may land just after it and name a run it never began.
            let moved_on =
                incarnations.get(inc).is_some_and(|i| i.1) || runs.get(&next).is_some_and(|r| r.started.is_some());
            if let Some(r) = runs.get_mut(&id) {
                r.moved_on = moved_on;
            }
        }
        Runs { runs, incarnations }
    }
}

/// What one event tells about its run.
enum Seen<'a> {
    Accepted(bool),
    Rejected(&'a str),
    ProducerStopped,
    Closed(u64, u64, u64),
    StopBegin,
    StopEnd,
    Sub(SubFilter, u64, u64, u64),
    SubLeft(u64),
    SmClosed(u64),
    Started,
    Backlog(usize),
    DrainStarted,
    StopDeadline,
    HandOverEnded,
    StopRequested(u64),
    BurstStopped,
}

impl Run {
    /// The run's own accounting, judged where it can break: producers make progress once the
    /// store is healthy (V6); the backlog never exceeds its bound (V7); a stop that begins with
    /// the store healthy loses nothing (V3); a stop that reports its bound reached took it (V4).
    fn check_report(&self, id: &str, scn: &CompleterScenario, heal_us: u64, clocks: &Clocks<'_>) -> Vec<Violation> {
        let mut v = Vec::new();
        if let (Some(start), Some(end)) = (self.started, self.stop_end)
            && start >= heal_us
            && self.accepted == 0
        {
            v.push(Violation::new(
                "V6",
                end,
                format!(
                    "{id}: no completion accepted from {:.3}s to its stop with the store healthy",
                    start as f64 / 1e6
                ),
            ));
        }
        let (backlog, t) = self.max_backlog;
        if backlog > BACKLOG {
            v.push(Violation::new("V7", t, format!("{id}: backlog {backlog} over its bound {BACKLOG}")));
        }
        // A producer kept open to the bound (V20's burst) leaves what it handed in then queued,
        // reported: the bound ran out. It may leave just after the bound and before the run,
        // which sees its bound only between writes, closes (seed 637: `producers_left` 0).
        let kept_to_bound = match (self.stop_requested, self.burst_stopped) {
            (Some((asked, bound_us)), Some(left)) => left >= asked + bound_us / 2,
            _ => false,
        };
        if let (Some(begin), Some(&(t, unflushed, undelivered, 0))) = (self.stop_begin, self.closed.first())
            && begin >= heal_us
            && unflushed + undelivered > 0
            && !kept_to_bound
            && !self.waited_in_drain
        {
            v.push(Violation::new(
                "V3",
                t,
                format!(
                    "{id}: a stop with the store healthy reported {unflushed} unflushed and {undelivered} undelivered"
                ),
            ));
        }
        // On the node's clock, which the bound is timed on: at the fastest rate the plan gives a
        // clock, and not across a jump of it (completerclock: a clock of rate 1.08 ran a 600 ms
        // bound out in 556 ms), with 2 µs of slack: the bound runs from the request, up to a µs
        // before the drain, and a clock's deadline wakes at a whole µs.
        if let (Some(drain), Some(t)) = (self.drain_started, self.stop_deadline)
            && ((t - drain + 2) as f64 * clocks.fastest) < (scn.stop_ms * 1000) as f64
            && !self.node.is_some_and(|n| (clocks.jumped)(&n, drain, t))
        {
            v.push(Violation::new(
                "V4",
                t,
                format!(
                    "{id}: the stop reported its bound ({} ms) reached {:.3}s after the drain began",
                    scn.stop_ms,
                    (t - drain) as f64 / 1e6
                ),
            ));
        }
        v
    }

    fn check(&self, id: &str, stop_bound_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        // Only runs whose stop completed are judged (a crashed process loses its memory by design).
        let (Some(begin), Some(end)) = (self.stop_begin, self.stop_end) else { return v };
        // V4: the stop finishes within its bound, even after the caller's token was cancelled.
        if end - begin > stop_bound_us {
            v.push(Violation::new("V4", end, format!("{id}: stop took {:.3}s", (end - begin) as f64 / 1e6)));
        }
        // V1: closed exactly once, after every producer stopped (unless reported as left behind).
        let [(closed_at, unflushed, undelivered, left)] = self.closed[..] else {
            v.push(Violation::new("V1", end, format!("{id}: event channel closed {} times", self.closed.len())));
            return v;
        };
        if left == 0 {
            if let Some(&(t, ref why)) = self.rejected.first() {
                v.push(Violation::new(
                    "V1",
                    t,
                    format!("{id}: a producer that had not stopped was refused ({why}): the channel closed under it"),
                ));
            }
            if let Some(&t) = self.producers_stopped.iter().find(|&&t| t > closed_at) {
                v.push(Violation::new("V1", t, format!("{id}: a producer stopped after the event channel closed")));
            }
        }
        // V1, the stop order: the completer begins its drain only once every producer of the run
        // stopped (producers → completer). A drain begun under a running producer means the
        // completer was stopped first: by the caller's cancellation (MR1) or in parallel (MR4),
        // so its bound runs while producers still finish.
        if let Some(drain) = self.drain_started
            && let Some(&t) = self.producers_stopped.iter().find(|&&t| t > drain)
        {
            v.push(Violation::new(
                "V1",
                t,
                format!(
                    "{id}: a producer stopped {:.3}s after the completer began draining (stopped before its producers)",
                    (t - drain) as f64 / 1e6
                ),
            ));
        }
        // V3: every accepted completion reached every subscriber (drops counted), except what the
        // stop reported as unflushed or undelivered.
        let lost_reported = unflushed + undelivered;
        for (t, filter, received, dropped, foreign) in &self.subs {
            let expected = if *filter == SubFilter::Failed { self.accepted_failed } else { self.accepted };
            let got = received + dropped;
            let ok =
                if lost_reported == 0 { got == expected } else { got <= expected && got + lost_reported >= expected };
            if !ok {
                v.push(Violation::new(
                    "V3",
                    *t,
                    format!(
                        "{id}: subscriber `{filter}` got {received} (+{dropped} dropped) of {expected} accepted completions ({lost_reported} reported lost)"
                    ),
                ));
            }
            // V5: a restarted run has a fresh channel: no event of another run arrives.
            if *foreign > 0 {
                v.push(Violation::new(
                    "V5",
                    *t,
                    format!("{id}: subscriber `{filter}` got {foreign} events of another run"),
                ));
            }
        }
        // V27: the manager's close reports as offered what its subscribers got or dropped
        // (every event their filters accepted): judged once both subscribers closed or left. A
        // subscriber gone mid-run was offered what it received, what its buffer held unread when
        // it left (at most `SUB_BUFFER`), and one more event if the manager offered it one after
        // it left (how it finds it gone).
        if let Some((t, delivered)) = self.sm_closed
            && self.subs.len() + self.left.len() == 2
        {
            let offered: u64 =
                self.subs.iter().map(|(_, _, received, dropped, foreign)| received + dropped + foreign).sum::<u64>()
                    + self.left.iter().sum::<u64>();
            if delivered < offered || delivered > offered + self.left.len() as u64 * (SUB_BUFFER as u64 + 1) {
                v.push(Violation::new(
                    "V27",
                    t,
                    format!(
                        "{id}: the subscription manager closed saying it offered {delivered} events; its subscribers got or dropped {offered}"
                    ),
                ));
            }
        }
        // A subscriber may still be frozen when its node crashes: judged once the node moved on.
        if self.moved_on && self.subs.len() + self.left.len() != 2 {
            v.push(Violation::new("V3", end, format!("{id}: {} of 2 subscriber channels closed", self.subs.len())));
        }
        v
    }
}

/// **V28**: a completer run announces (`completer_started`) and so runs the settings its config
/// was given. Every timing rule of the completer (V14, V16, V26) judges a run by what it
/// announces, so a builder that drops a setting (blind-spot hunt, round 27, B #1: `retry_budget`
/// kept the default 8 where 6 was set) is consistent with itself and no cadence rule sees it.
/// Judged at each `completer_started` of the scenario's `jobs` completer, and of the stress's,
/// which runs the documented defaults (a default changed by mistake, round 27 B #20).
fn runs_as_configured(events: &[Event]) -> Vec<Violation> {
    let mut v = Vec::new();
    for e in events {
        let Some(CompleterEvent::CompleterStarted {
            completer,
            run,
            batch_size,
            flush_interval_us,
            retry_min_us,
            retry_max_us,
            retry_budget,
            backlog,
            ..
        }) = e.completer()
        else {
            continue;
        };
        // `jobs` runs the scenario's settings; the stress's completer sets none of these, so it
        // runs the documented defaults (`CompleterConfig::builder`: batches of 128, a 50 ms
        // flush, retries from 10 ms to 1 s, a budget of 8, a backlog of 4 096 raised to a larger
        // batch size).
        let (batch, flush_ms, retry_ms, budget, bound) = match keel_checks::plain(completer) {
            "jobs" => (BATCH_SIZE, FLUSH_MS, RETRY_MS, RETRY_BUDGET, BACKLOG),
            STRESS => (128, 50, (10, 1000), 8, 4096),
            _ => continue,
        };
        let settings = [
            ("batch_size", *batch_size as u64, batch as u64),
            ("flush_interval_us", *flush_interval_us, flush_ms * 1000),
            ("retry_min_us", *retry_min_us, retry_ms.0 * 1000),
            ("retry_max_us", *retry_max_us, retry_ms.1 * 1000),
            ("retry_budget", u64::from(*retry_budget), u64::from(budget)),
            ("backlog", *backlog as u64, bound as u64),
        ];
        for (what, got, want) in settings {
            if got != want && v.len() < 20 {
                v.push(Violation::new(
                    "V28",
                    e.t_us,
                    format!(
                        "{}: completer {completer} run {run} announced {what} = {got}, where its config set {want}",
                        e.node
                    ),
                ));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, Who};
    use crate::plan::{FaultPlan, Profile};
    use crate::timeline::Timeline;

    fn at(t_ms: u64, who: Who, ev: impl Into<Ev>) -> Event {
        Event { t_us: t_ms * 1000, node: who, ev: ev.into() }
    }

    fn unstored(t_ms: u64) -> Event {
        at(t_ms, Who::Node(0), Rec::EventNotStored { run: 1, key: "n0@0-p0-1-3".into(), rev: 12 })
    }

    fn v8(events: &[Event]) -> Vec<Violation> {
        let plan = FaultPlan { seed: 0, profile: Profile::Calm, enabled: vec![], heal_at_ms: 0, events: vec![] };
        let end_us = 10_000_000;
        let timeline = Timeline::derive(events, end_us);
        v8_events_stored(&RunView { plan: &plan, events, timeline: &timeline, heal_us: 0, end_us })
    }

    fn core(t_ms: u64, e: CompleterEvent<'static>) -> Event {
        at(t_ms, Who::Node(0), Ev::Core(keel::observe::Event::Completer(e)))
    }

    fn v7(events: &[Event]) -> Vec<Violation> {
        let plan = FaultPlan { seed: 0, profile: Profile::Calm, enabled: vec![], heal_at_ms: 0, events: vec![] };
        let end_us = 10_000_000;
        let timeline = Timeline::derive(events, end_us);
        v7_backlog_by_history(&RunView { plan: &plan, events, timeline: &timeline, heal_us: 0, end_us })
    }

    #[test]
    fn completions_accepted_past_the_bound_while_a_batch_is_in_flight_fire_v7() {
        let accepted = |t, backlog| {
            core(t, CompleterEvent::Accepted { completer: "jobs".into(), run: 1, backlog, queued: backlog })
        };
        let flushed = |t, n| {
            core(
                t,
                CompleterEvent::BatchFlushed {
                    completer: "jobs".into(),
                    run: 1,
                    n,
                    rev: 1,
                    retried: false,
                    took_us: 0,
                    attempt_us: 0,
                },
            )
        };
        let mut h = vec![at(0, Who::Node(0), WorldEv::NodeStart {})];
        // The bound's worth accepted, then a batch of 8 taken (the intake still counts it): one
        // more is refused until the batch is written.
        h.extend((0..BACKLOG as u64).map(|i| accepted(10 + i, i as usize + 1)));
        assert!(v7(&h).is_empty());
        let mut ok = h.clone();
        ok.extend([flushed(100, 8), accepted(101, 9)]);
        assert!(v7(&ok).is_empty(), "{:?}", v7(&ok));
        // MC40: room made as the batch was taken, so the intake reports 9 while 17 are accepted
        // and unwritten: V7 at that acceptance.
        let mut bad = h.clone();
        bad.extend([accepted(90, 9), flushed(100, 8)]);
        let v = v7(&bad);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V7", 90_000), "{v:?}");
        // Once the drain began, a batch given up at the bound makes room unwritten: not judged.
        let mut draining = h.clone();
        let drain = CompleterEvent::DrainStarted {
            completer: "jobs".into(),
            run: 1,
            pending: 16,
            producers: 0,
            bound_ms: 600,
            retry_max_ms: 0,
        };
        draining.extend([core(50, drain), accepted(90, 9)]);
        assert!(v7(&draining).is_empty());
        // Another run, another node life, or the stress's completer counts on its own.
        let mut other = h.clone();
        other.push(core(90, CompleterEvent::Accepted { completer: "jobs".into(), run: 2, backlog: 1, queued: 1 }));
        other.push(core(91, CompleterEvent::Accepted { completer: STRESS.into(), run: 1, backlog: 1, queued: 1 }));
        assert!(v7(&other).is_empty());
    }

    #[test]
    fn an_event_whose_completion_the_store_does_not_hold_fires_v8() {
        let start = at(0, Who::Node(0), WorldEv::NodeStart {});
        // A subscriber received an event the store does not hold: V8 at the receipt.
        let v = v8(&[start.clone(), unstored(500)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("V8", 500_000));
        assert!(v[0].detail.contains("n0@0-p0-1-3@12"), "{}", v[0].detail);
        // A data-losing store crash during the node's life before the receipt excuses it.
        let lost = at(300, Who::Store, WorldEv::StoreCrash { data_loss: true });
        assert!(v8(&[start.clone(), lost.clone(), unstored(500)]).is_empty());
        // A crash that kept the data does not; nor does a data loss after the receipt.
        let kept = at(300, Who::Store, WorldEv::StoreCrash { data_loss: false });
        assert_eq!(v8(&[start.clone(), kept, unstored(500)]).len(), 1);
        let later = at(600, Who::Store, WorldEv::StoreCrash { data_loss: true });
        assert_eq!(v8(&[start.clone(), unstored(500), later]).len(), 1);
        // Nor a data loss before the node's life began (its writes came after it).
        let restart = [
            at(100, Who::Store, WorldEv::StoreCrash { data_loss: true }),
            at(200, Who::Node(0), WorldEv::NodeCrash {}),
            at(250, Who::Node(0), WorldEv::NodeStart {}),
            unstored(500),
        ];
        let mut events = vec![start];
        events.extend(restart);
        assert_eq!(v8(&events).len(), 1, "{:?}", v8(&events));
    }
}
