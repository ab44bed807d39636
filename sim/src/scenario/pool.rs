//! The pool scenario: 3 nodes with workers, jobs dispatched continuously, a handler that records
//! start and stop of every attempt, and every fault the world has except data loss (SPEC §5,
//! P1–P8). An auditor on every node reads the pool's store state (`keel::pool::inspect`'s reads).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use keel::clock::Clock;
use keel::mutants::Mutant;
use keel::observe::{MoveKind, PoolEvent, events};
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, inspect_in_place};
use keel::shutdown::Shutdown;
use keel::store::Store;
use madsim::rand::Rng;

use super::pool_picks::assignment;
use super::{AppEv, RunView};
use crate::check::{Coverage, Span, Violation};
use crate::harness::Sim;
use crate::history::{Event, ServerEv, Who, WorldEv, plain};
use crate::keel_rules::{HANDOFF_US, HandlerRuns};
use crate::plan::{FaultKind, FaultPlan, Knobs, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

events! {
    /// What the pool scenario's workload recorded.
    pub enum Rec {
        /// A handler started running an attempt.
        RunStart { job: String, attempt: u64, worker: String } = "run_start",
        /// A handler returned (`done`: completed; else stopped).
        RunStop { job: String, attempt: u64, worker: String, done: bool } = "run_stop",
        /// The dispatcher added a job with `payload`.
        JobAdded { job: String, payload: String } = "job_added",
        /// The dispatcher sent a key it added before once more and keel added it as a new job
        /// (the plan's `ShortRetention` knob: its dedup window had passed): a second life of the
        /// key, which P1 holds to a completion of its own.
        JobAddedAgain { job: String, payload: String } = "job_added_again",
        /// The dispatcher is sending `job`, a key it added (or gave up on) before, once more:
        /// a call in flight that may apply (E7 reads it so).
        DispatchAgain { job: String } = "dispatch_again",
        /// A dispatch call of `job` failed with `error`; `not_applied`: the error says the call
        /// applied nothing; `duplicate`: the answer was `Duplicate` (E7).
        DispatchFailed { job: String, error: String, not_applied: bool, duplicate: bool } = "dispatch_failed",
        /// The dispatcher stopped retrying `job` without its having been added (E7).
        DispatchGaveUp { job: String } = "dispatch_gave_up",
        /// A worker's task returned.
        WorkerExit { worker: String, exit: String, incarnations: u64 } = "worker_exit",
        /// P82: the node's pool counters read right then (`PoolNode::live_workers`,
        /// `worker_deaths`, `worker_replacements`), after a worker was added, a worker's handle
        /// returned or a job was added.
        PoolCounters { live: u64, deaths: u64, replacements: u64 } = "pool_counters",
        /// The node's pool returned after its stop.
        PoolExit {} = "pool_exit",
        /// Completion tombstones in the store after quiescence: each job, and (in `ms`, in the same
        /// order) the completion's store time (0: unreadable).
        Tombstones { jobs: Vec<String>, ms: Vec<u64> } = "tombstones",
        /// V43: the store's maps after quiescence (every map with a revision), by name.
        StoreMaps { maps: Vec<String> } = "store_maps",
        /// P85: the auditor found `job`'s completion tombstone still in the store `overdue_ms`
        /// past its dedup window (counted from when the auditor first saw it, if later: a
        /// completion held in the network lands late).
        TombstoneOverdue { job: String, overdue_ms: u64 } = "tombstone_overdue",
        /// P87: the auditor has seen `job`'s completer-map entry in the store for `kept_ms`
        /// (from its first read of it) while the job had no record, longer than one and a half
        /// completer retentions: recorded only then.
        CompleterEntryKept { job: String, kept_ms: u64 } = "completer_entry_kept",
        /// An auditor's read of the pool's store state.
        /// `overdue_ms`: how long the most overdue pending entry has been both past its deadline
        /// and in the store (as far as this auditor's reads can tell); `stale_ms`: how long the
        /// longest-seen stale worker has had state in the store while stale, likewise.
        Audit { jobs: usize, stale_workers: usize, stale_example: String, stale_ms: u64, overdue_ms: u64, overdue_job: String } = "audit",
        /// P38: `inspect` reported pending dispatch `job` past its deadline by `reported_ms`; the
        /// auditor, from the raw entry and the report's own store time, computed `computed_ms`.
        InspectWrong { job: String, reported_ms: u64, computed_ms: u64 } = "inspect_wrong",
        /// P111: keel's decoder `what` read the store's value `raw` of `key` as `keel`, its
        /// format says `format` (`pool_formats`).
        Misread { what: String, key: String, raw: String, keel: String, format: String } = "misread",
        /// P38: another figure of `inspect`'s report (`what`, of `key`) disagrees with what the
        /// auditor read from the raw map and the report's store time.
        InspectFigureWrong { what: String, key: String, reported: String, computed: String } = "inspect_figure_wrong",
        /// P75: the operator's whole report (`keel::pool::inspect`, with its scan for corrupt
        /// records) called the record `key` of `map` corrupt (`detail`): no run writes one.
        InspectCorrupt { map: String, key: String, detail: String } = "inspect_corrupt",
        /// P75: the whole report differs from the in-place one read at the same store time, in
        /// `what` (`whole` and `in_place`: the two figures).
        InspectDiffers { what: String, whole: String, in_place: String } = "inspect_differs",
        /// `poolfeed`: the node's completion feed subscriber began listening.
        FeedStart {} = "feed_start",
        /// `poolfeed`: the subscriber got a completion (`dropped`: its drop count then).
        FeedGot { job: String, attempt: u64, ms: u64, dropped: u64 } = "feed_got",
        /// `poolfeed`: the subscriber's feed closed (the node stopped).
        FeedEnd { dropped: u64 } = "feed_end",
        /// `poolfeed`: the node refused the subscriber (`completions()` failed with `error`).
        FeedRefused { error: String } = "feed_refused",
        /// `poolfeed`: `dispatch_and_wait` of a new job called (P81; its wait is then recorded
        /// as a `wait_for`'s is).
        AndWaitCalled { job: String } = "and_wait_called",
        /// `poolfeed`: a `wait_for` of a job the node dispatched began, for the key's `life`
        /// (0, then one more for each time the key was added again after its window).
        WaitBegun { job: String, life: u64 } = "wait_begun",
        /// `poolfeed`: the `wait_for` returned the job's completion.
        WaitDone { job: String, attempt: u64, ms: u64 } = "wait_done",
        /// `poolfeed`: the `wait_for` returned an error.
        WaitFailed { job: String, error: String } = "wait_failed",
        /// `poolfeed`: the node subscribed to its own completion events (before any worker).
        EventsStart {} = "events_start",
        /// `poolfeed`: the node's subscription got the completion event of `job`'s `attempt`,
        /// carrying `payload`.
        EventGot { job: String, attempt: u64, payload: String } = "event_got",
        /// `poolfeed`: the node's subscription closed (`dropped`: events it lost to a full buffer).
        EventsEnd { dropped: u64 } = "events_end",
    }
}

pub(super) fn rec(e: &Event) -> Option<&Rec> {
    match e.app() {
        Some(AppEv::Pool(r)) => Some(r),
        _ => None,
    }
}

const POOL: &str = "sim";

/// Pool timing used by the scenario (ms).
#[derive(Clone, Debug)]
pub struct PoolScenario {
    /// Application nodes.
    pub nodes: usize,
    /// Workers per node.
    pub workers: usize,
    /// Worker TTL.
    pub ttl_ms: u64,
    /// Fault window before the heal; dispatching stops with it.
    pub window_ms: u64,
    /// Also listen to the completion feed and wait for every dispatched job (scenario
    /// `poolfeed`, rule P10: [`super::pool_feed`]).
    pub feed: bool,
    /// Let the store lose its data too (scenario `poolloss`, rule P30: every node reports each
    /// loss it lives through): what the store lost is outside keel's guarantee, so this variant
    /// judges only the rules a loss leaves honest ([`PoolScenario::check_losses`]).
    pub data_loss: bool,
}

impl Default for PoolScenario {
    fn default() -> Self {
        PoolScenario { nodes: 3, workers: 2, ttl_ms: 1500, window_ms: 30_000, feed: false, data_loss: false }
    }
}

impl PoolScenario {
    fn sweep_ms(&self) -> u64 {
        self.ttl_ms / 10
    }
    fn ack_grace_ms(&self) -> u64 {
        self.ttl_ms / 5
    }

    /// The dedup window: the whole run (P1 reads the tombstones at its end), or, with the
    /// plan's `ShortRetention` knob, two worker TTLs: short enough that tombstones expire and
    /// keys come free for a second life inside a run, and apart from every other setting (a
    /// sweep that read the TTL in its place would show).
    fn retention_ms(&self, short: bool) -> u64 {
        if short { 2 * self.ttl_ms } else { 600_000 }
    }

    /// How long the completer map keeps a completed job's entry: the dedup window and ten
    /// worker TTLs, the smaller (keel's `COMPLETER_RETENTION_TTLS`).
    fn completer_retention_ms(&self, short: bool) -> u64 {
        (10 * self.ttl_ms).min(self.retention_ms(short))
    }

    fn config(&self, node: &str, knobs: Knobs) -> Option<PoolConfig> {
        let b = PoolConfig::builder(POOL, node);
        // The plan's knob (`SmallBuffers`): each worker's queue of delivered records holds one.
        let b = if knobs.small_buffers { b.intake_buffer(1) } else { b };
        // poolfeed: a service's small bound on completion waits, so bursts meet it (P74).
        let b = if self.feed { b.max_waiters(super::pool_feed::MAX_WAITERS) } else { b };
        b.worker_ttl(Duration::from_millis(self.ttl_ms))
            .ack_grace(Duration::from_millis(self.ack_grace_ms()))
            .sweep_interval(Duration::from_millis(self.sweep_ms()))
            .shutdown_deadline(Duration::from_millis(self.ttl_ms / 2))
            .done_retention(Duration::from_millis(self.retention_ms(knobs.short_retention)))
            .build()
            .ok()
    }

    /// From the heal: dead incarnations stale (ttl), a crashed cleaner's lock expired (2·ttl),
    /// cleanup and requeue done, the longest job (4 s) run again, plus slack.
    fn stable_from_ms(&self) -> u64 {
        4 * self.ttl_ms + 2000
    }
}

/// Judge `inspect`'s report `r` figure by figure against the pool's raw maps in `store` (P38:
/// `inspect_figure_wrong` for each that differs) and return each keep-alive's age, from its raw
/// value and the report's store time (None: none, or the dead marker).
fn raw_figures(ctx: &NodeCtx, store: &keel::MemoryStore, r: &keel::pool::PoolReport) -> BTreeMap<String, Option<u64>> {
    use keel::pool::decode;
    use std::fmt::Debug;
    let map = |m: &str| format!("keel:pool:{POOL}:{m}");
    // Compared typed; formatted only when they differ (the audit runs four times a second).
    fn judge<T: PartialEq + Debug>(ctx: &NodeCtx, what: &str, key: &str, reported: T, computed: T) {
        if reported != computed {
            let (what, key) = (what.to_owned(), key.to_owned());
            let (reported, computed) = (format!("{reported:?}"), format!("{computed:?}"));
            ctx.record(Rec::InspectFigureWrong { what, key, reported, computed });
        }
    }
    // Each map read in place, lent (`with_map_entries_from`): the judges only look, and the
    // job map's records are most of what an audit reads.
    let ages: BTreeMap<String, Option<u64>> = store.with_map_entries_from(&map("keepalive"), "", |entries| {
        entries
            .map(|(w, raw)| (w.to_owned(), decode::keepalive(raw).map(|(ms, _, _)| r.now_ms.saturating_sub(ms))))
            .collect()
    });
    for (w, age) in &ages {
        if let Some(reported) = r.workers.get(w) {
            judge(ctx, "keep-alive age", w, *reported, *age);
        }
    }
    store.with_map_entries_from(&map("cleanup"), "", |entries| {
        for (w, raw) in entries {
            let left = decode::cleanup_lock(raw).map_or(0, |(_, expires_ms)| expires_ms.saturating_sub(r.now_ms));
            judge(ctx, "cleanup lock's time left", w, r.cleanup_locks.get(w).copied(), Some(left));
        }
    });
    let registered: Vec<String> =
        store.with_map_entries_from(&map("workers"), "", |entries| entries.map(|(w, _)| w.to_owned()).collect());
    judge(ctx, "registered workers", "", &r.registered, &registered);
    store.with_map_entries_from(&map("jobs"), "j/", |records| {
        for (job, (attempt, owner)) in records
            .map_while(|(k, raw)| Some((k.strip_prefix("j/")?, raw)))
            .filter_map(|(job, raw)| Some((job, decode::job(raw)?)))
        {
            judge(
                ctx,
                "job's owner and attempt",
                job,
                r.jobs.get(job).map(|(o, a)| (o.as_str(), *a)),
                Some((owner.as_str(), attempt)),
            );
        }
    });
    ages
}

/// Every how many audits (each 250 ms) the auditor also reads the operator's whole report.
const WHOLE_INSPECT_EVERY: u64 = 8;
/// The auditor scans the completer map against the job map (P87) every this many audits.
const COMPLETER_SCAN_EVERY: u64 = 4;

/// The operator's whole report (`keel::pool::inspect`: every map of the pool, its completion
/// tombstones and the completer's map too, scanned for corrupt records), read in place as the
/// in-place audit `r` is, at the same instant (no await between them yields: no schedule
/// moves). P75: no run writes a record keel cannot read, so every corrupt record it reports is
/// a false alarm an operator would act on (`quarantine_corrupt` moves what it names out of the
/// pool); and at the same store time every other figure is the in-place report's.
async fn whole_report(ctx: &NodeCtx, store: &keel::MemoryStore, r: &keel::pool::PoolReport) {
    let Ok(whole) = keel::pool::inspect(store, POOL).await else { return };
    for c in whole.corrupt.iter().take(3) {
        let (map, key, detail) = (c.map.clone(), c.key.clone(), c.detail.to_owned());
        ctx.record(Rec::InspectCorrupt { map, key, detail });
    }
    if whole.now_ms != r.now_ms {
        return;
    }
    let differs = |what: &str, whole: String, in_place: String| {
        ctx.record(Rec::InspectDiffers { what: what.to_owned(), whole, in_place });
    };
    if whole.workers != r.workers {
        differs("workers", format!("{:?}", whole.workers), format!("{:?}", r.workers));
    }
    if whole.registered != r.registered {
        differs("registered", format!("{:?}", whole.registered), format!("{:?}", r.registered));
    }
    if whole.cleanup_locks != r.cleanup_locks {
        differs("cleanup_locks", format!("{:?}", whole.cleanup_locks), format!("{:?}", r.cleanup_locks));
    }
    if whole.jobs != r.jobs {
        differs("jobs", format!("{:?}", whole.jobs), format!("{:?}", r.jobs));
    }
    if whole.pending != r.pending {
        differs("pending", format!("{:?}", whole.pending), format!("{:?}", r.pending));
    }
}

/// Records the start and stop of every attempt, runs for the payload's milliseconds.
struct TestHandler {
    ctx: NodeCtx,
}

impl JobHandler for TestHandler {
    async fn run(&self, job: Job) -> JobOutcome {
        let (key, attempt, worker) = (job.key().to_owned(), job.attempt(), job.worker().to_owned());
        self.ctx.record(Rec::RunStart { job: key.clone(), attempt, worker: worker.clone() });
        let ms = job.payload().parse().unwrap_or(10);
        let out = tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = self.ctx.clock.sleep(Duration::from_millis(ms)) => JobOutcome::Completed,
        };
        self.ctx.record(Rec::RunStop { job: key, attempt, worker, done: out == JobOutcome::Completed });
        out
    }
}

/// With the plan's `ShortRetention` knob, every this-many dispatches the dispatcher sends one
/// of its earlier keys again ([`again`]), up to [`AGAIN_BACK_MAX`] keys back.
const AGAIN_EVERY: u64 = 4;
/// How far back (in this dispatcher's keys) a key sent again may be: at one dispatch per 150 ms,
/// ages from a running job's to well past a two-TTL dedup window.
const AGAIN_BACK_MAX: usize = 24;

async fn dispatcher(ctx: NodeCtx, node: Arc<keel::pool::PoolNode<crate::net::SimStore>>, until_us: u64, wait: bool) {
    let start = ctx.history.now_us();
    let mut n = 0u64;
    // Keys this node added, with how many times each was added again after its window.
    let mut added: Vec<(String, u64)> = Vec::new();
    while !ctx.shutdown.is_cancelled() && ctx.history.now_us() < until_us {
        n += 1;
        let job = format!("{}-{}-{n}", ctx.name, start / 1000);
        let ms: u64 = {
            let mut rng = madsim::rand::thread_rng();
            if rng.gen_bool(0.15) { rng.gen_range(2000..4000) } else { rng.gen_range(20..400) }
        };
        if ctx.short_retention() && n.is_multiple_of(AGAIN_EVERY) && !added.is_empty() {
            let back = madsim::rand::thread_rng().gen_range(1..=added.len().min(AGAIN_BACK_MAX));
            let i = added.len() - back;
            if again(&ctx, &node, added[i].0.clone(), ms).await {
                added[i].1 += 1;
                if wait {
                    let (job, life) = added[i].clone();
                    tokio::spawn(super::pool_feed::waiter(ctx.clone(), node.clone(), job, life));
                }
            }
        } else if wait && n.is_multiple_of(super::pool_feed::AND_WAIT_EVERY) {
            // An API handler's request: a quick job, dispatched and awaited in one call, in its
            // own task (quick, so its completion can beat a slow dispatch reply home).
            let quick = 1 + ms % super::pool_feed::QUICK_JOB_MS;
            tokio::spawn(super::pool_feed::dispatch_and_wait(ctx.clone(), node.clone(), job, quick));
        } else {
            match add(&ctx, &node, job.clone(), ms, wait, false).await {
                None => return,
                // Only a key known added has lives to count (one given up may be in the store
                // or not).
                Some(true) if ctx.short_retention() => added.push((job, 0)),
                Some(_) => {}
            }
        }
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.clock.sleep(Duration::from_millis(150)) => {}
        }
    }
}

/// Dispatch `job`, a key this node added before, once more (the plan's `ShortRetention` knob):
/// inside its dedup window (its record or its tombstone in the store) keel answers `Duplicate`;
/// once a sweep deleted its tombstone the key is free and the job is added for a second life,
/// which P1 then holds to a completion of its own. One call: an unknown outcome is left
/// unknown (a second life that started anyway is judged by its runs). True if added.
async fn again(ctx: &NodeCtx, node: &Arc<keel::pool::PoolNode<crate::net::SimStore>>, job: String, ms: u64) -> bool {
    // Said before the call: a run of the key may start before its answer comes home (E7).
    ctx.record(Rec::DispatchAgain { job: job.clone() });
    match node.dispatch(&job, &ms.to_string()).await {
        Ok(_) => {
            ctx.record(Rec::JobAddedAgain { job, payload: ms.to_string() });
            super::pool_counters::record(ctx, node);
            true
        }
        Err(e) => {
            super::pool_dispatch::failed(ctx, &job, &e);
            false
        }
    }
}

/// Dispatch `job` until it is added (up to 20 calls, 100 ms apart), recording each failure and
/// the job's addition, and (`wait`) await its completion in a task of its own. `failed`: an
/// earlier call of it failed, so a `Duplicate` means that call landed. Whether it was added
/// (false: given up after every call failed), None once the node is stopping.
pub(super) async fn add(
    ctx: &NodeCtx,
    node: &Arc<keel::pool::PoolNode<crate::net::SimStore>>,
    job: String,
    ms: u64,
    wait: bool,
    mut failed: bool,
) -> Option<bool> {
    for _ in 0..20 {
        let r = node.dispatch(&job, &ms.to_string()).await;
        if let Err(e) = &r {
            super::pool_dispatch::failed(ctx, &job, e);
        }
        match r {
            Ok(_) => {}
            Err(keel::pool::PoolError::Duplicate { .. }) if failed => {}
            Err(_) if ctx.shutdown.is_cancelled() => {
                ctx.record(Rec::DispatchGaveUp { job });
                return None;
            }
            Err(_) => {
                failed = true;
                ctx.clock.sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        ctx.record(Rec::JobAdded { job: job.clone(), payload: ms.to_string() });
        super::pool_counters::record(ctx, node);
        if wait {
            tokio::spawn(super::pool_feed::waiter(ctx.clone(), node.clone(), job, 0));
        }
        return Some(true);
    }
    ctx.record(Rec::DispatchGaveUp { job });
    Some(false)
}

/// Reads the pool's state from the store's data in place ([`NodeCtx::store_data`]): an
/// observer, so its reads neither cross the network nor meet the faults, and they are no part of
/// the store histories the linearizability checker judges (the workload's own reads are). Each
/// whole-map read through the network cost the run as much as a sweep and the checker as much
/// again (docs/benchmarks.md, "The fifth pass on the pool scenario").
/// `window_ms`: the dedup window, when short enough to pass inside a run (the plan's
/// `ShortRetention` knob): the auditor then watches for tombstones kept past it (P85).
/// `completer_ms`: the completer map's retention (the window and ten TTLs, the smaller): the
/// auditor watches for entries kept past one and a half of it (P87).
async fn auditor(ctx: NodeCtx, ttl_ms: u64, final_us: u64, window_ms: Option<u64>, completer_ms: u64) {
    let store = ctx.store_data().clone();
    let mut tombstones_recorded = false;
    // When each pending dispatch `(job, worker, attempt)` and each stale worker could have
    // appeared at the earliest: this auditor's last read without it (0: no such read). A write
    // held in the network can land long after its caller gave up (madsim retries a clogged link
    // with a backoff of up to 10 s, so even seconds after the heal): a dispatch then arrives
    // already past its deadline, naming a worker long dead. Keel is judged from when such state
    // appeared, not from a deadline that passed while the store did not hold it.
    let mut pending_since: BTreeMap<(String, String, u64), u64> = BTreeMap::new();
    let mut stale_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut tombstone_since: BTreeMap<String, u64> = BTreeMap::new();
    // Each completer-map entry of a job without a record → the first audit that saw it so.
    let mut entry_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_read_us = 0u64;
    let mut audits = 0u64;
    loop {
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.clock.sleep(Duration::from_millis(250)) => {}
        }
        if !tombstones_recorded && ctx.history.now_us() >= final_us {
            // Completion tombstones: a completion whose reply was lost (node crashed) still counts.
            if let Ok(snap) = store.map_snapshot(&format!("keel:pool:{POOL}:jobs")).await {
                let done = snap.entries.iter().filter_map(|(k, v)| Some((k.strip_prefix("d/")?, v)));
                let (jobs, ms) = done
                    .map(|(job, v)| (job.to_owned(), keel::pool::decode::tombstone(v).map_or(0, |(_, ms)| ms)))
                    .unzip();
                ctx.record(Rec::Tombstones { jobs, ms });
                tombstones_recorded = true;
                // V43: the maps the pool's parts wrote, each to be one of its documented layout.
                ctx.record(Rec::StoreMaps { maps: store.map_revs().into_keys().collect() });
            }
        }
        // The audit looks only at jobs, workers and pending dispatches.
        let Ok(r) = inspect_in_place(&store, POOL).await else { continue };
        audits += 1;
        if audits.is_multiple_of(WHOLE_INSPECT_EVERY) {
            whole_report(&ctx, &store, &r).await;
            let map = |m: &str| store.map_entries_from(&format!("keel:pool:{POOL}:{m}"), "");
            let misreads = super::pool_formats::misreads(&map("jobs"), &map("keepalive"), &map("cleanup"));
            for m in misreads.into_iter().take(3) {
                let super::pool_formats::Misread { what, key, raw, keel, format } = m;
                ctx.record(Rec::Misread { what: what.to_owned(), key, raw, keel, format });
            }
        }
        let now_us = ctx.history.now_us();
        let seen_ms = |since: u64| if since == 0 { u64::MAX } else { now_us.saturating_sub(since) / 1000 };
        // Every figure of the report against the raw maps (P38), and the audit's stale workers
        // from the raw keep-alives: round 18 B #26 (the ages the wrong way round) read every
        // worker fresh, the audit's stale ones too, the checker leaning on the code under test.
        let ages = raw_figures(&ctx, &store, &r);
        let mut stale: Vec<&String> =
            r.workers.keys().filter(|w| ages.get(*w).copied().flatten().is_none_or(|a| a > 3 * ttl_ms)).collect();
        // A cleanup lock left behind (its release failed, its cleaner crashed) of a worker with no
        // keep-alive and no registration, expired long ago: state of a dead worker too, read from
        // the raw lock map (round 18 B #23: keel's own list of workers, which `inspect` shares,
        // forgot such a worker, and the audit with it).
        let map = |m: &str| format!("keel:pool:{POOL}:{m}");
        let expired = store.map_entries_from(&map("cleanup"), "").into_iter().filter(|(_, raw)| {
            keel::pool::decode::cleanup_lock(raw).is_some_and(|(_, expires_ms)| expires_ms + 3 * ttl_ms < r.now_ms)
        });
        let mut left_locks = Vec::new();
        for (w, _) in expired {
            let held =
                |m: &str| store.map_get(&map(m), &w).now_or_never().is_some_and(|r| matches!(r, Ok((Some(_), _))));
            if !held("keepalive") && !held("workers") {
                left_locks.push(w);
            }
        }
        stale.extend(left_locks.iter().filter(|w| !stale.contains(w)).collect::<Vec<_>>());
        // A registration whose keep-alive is gone or stale, read from the raw map (round 27
        // A #10: keel's list of workers, which `inspect` shares, forgot registrations left
        // without a keep-alive, so neither the sweep nor the audit ever saw them again).
        let orphans: Vec<String> = store
            .map_entries_from(&map("workers"), "")
            .into_keys()
            .filter(|w| ages.get(w).copied().flatten().is_none_or(|a| a > 3 * ttl_ms))
            .collect();
        stale.extend(orphans.iter().filter(|w| !stale.contains(w)).collect::<Vec<_>>());
        stale_since.retain(|w, _| stale.contains(&w));
        for w in &stale {
            stale_since.entry((*w).clone()).or_insert(last_read_us);
        }
        let stale_ms = stale_since.values().map(|&since| seen_ms(since)).max().unwrap_or(0);
        // The overdue figures from the raw entries, not from the report under test (MC145 blinded
        // P5 when the auditor took the report's); the report's own are judged against them (P38).
        let jobs_map = format!("keel:pool:{POOL}:jobs");
        let pending: BTreeMap<String, (String, u64, u64)> = store
            .map_entries_from(&jobs_map, "p/")
            .into_iter()
            .map_while(|(k, raw)| Some((k.strip_prefix("p/")?.to_owned(), raw)))
            .filter_map(|(job, raw)| {
                let (attempt, worker, deadline_ms) = keel::pool::decode::pending(&raw)?;
                Some((job, (worker, attempt, r.now_ms.saturating_sub(deadline_ms))))
            })
            .collect();
        for (job, (w, a, computed_ms)) in &pending {
            if let Some((rw, ra, reported_ms)) = r.pending.get(job)
                && (rw, ra) == (w, a)
                && reported_ms != computed_ms
            {
                let (job, reported_ms, computed_ms) = (job.clone(), *reported_ms, *computed_ms);
                ctx.record(Rec::InspectWrong { job, reported_ms, computed_ms });
            }
        }
        pending_since.retain(|(j, w, a), _| pending.get(j).is_some_and(|p| &p.0 == w && p.1 == *a));
        let overdue = pending
            .iter()
            .map(|(j, p)| {
                let since = *pending_since.entry((j.clone(), p.0.clone(), p.1)).or_insert(last_read_us);
                (j, p.2.min(seen_ms(since)))
            })
            .max_by_key(|(_, ms)| *ms);
        if let Some(window_ms) = window_ms {
            let tombstones = store.map_entries_from(&jobs_map, "d/");
            let done = tombstones.iter().map_while(|(k, raw)| Some((k.strip_prefix("d/")?, raw)));
            let old: BTreeMap<&str, u64> = done
                .filter_map(|(job, raw)| {
                    let (_, done_ms) = keel::pool::decode::tombstone(raw)?;
                    Some((job, r.now_ms.saturating_sub(done_ms.saturating_add(window_ms))))
                })
                .filter(|(_, past_ms)| *past_ms > 0)
                .collect();
            tombstone_since.retain(|job, _| old.contains_key(job.as_str()));
            let overdue = old
                .iter()
                .map(|(job, past_ms)| {
                    let since = *tombstone_since.entry((*job).to_owned()).or_insert(last_read_us);
                    (*job, (*past_ms).min(seen_ms(since)))
                })
                .max_by_key(|(_, ms)| *ms);
            if let Some((job, overdue_ms)) = overdue.filter(|(_, ms)| *ms > 0) {
                ctx.record(Rec::TombstoneOverdue { job: job.to_owned(), overdue_ms });
            }
        }
        // P87: the completer map's entries go one and a half retentions after their completion
        // (a slice pass per half retention), unless their job has a record again (a second
        // life: the sweep keeps the entry while the key is taken). Scanned every
        // `COMPLETER_SCAN_EVERY` audits: a whole scan of two maps on every node every 250 ms cost
        // poolfeed ~15 % of its CPU, and the rule's bound (seconds) does not need the finer grain.
        if audits.is_multiple_of(COMPLETER_SCAN_EVERY) {
            completer_scan(&ctx, &store, &jobs_map, &map("completions"), now_us, completer_ms, &mut entry_since);
        }
        last_read_us = now_us;
        ctx.record(Rec::Audit {
            jobs: r.jobs.len(),
            stale_workers: stale.len(),
            stale_example: stale.first().map_or_else(String::new, |w| (*w).clone()),
            stale_ms,
            overdue_ms: overdue.map_or(0, |(_, ms)| ms),
            overdue_job: overdue.map_or_else(String::new, |(j, _)| j.clone()),
        });
    }
}

/// P87's scan: each completer-map entry of a job without a record, and since when the auditor has
/// seen it so (`entry_since`); records the oldest once it is past one and a half retentions.
fn completer_scan(
    ctx: &NodeCtx,
    store: &keel::MemoryStore,
    jobs_map: &str,
    completions_map: &str,
    now_us: u64,
    completer_ms: u64,
    entry_since: &mut BTreeMap<String, u64>,
) {
    let live: BTreeSet<String> = store.with_map_entries_from(jobs_map, "j/", |it| {
        it.map_while(|(k, _)| Some(k.strip_prefix("j/")?.to_owned())).collect()
    });
    let entries: Vec<String> = store.with_map_entries_from(completions_map, "", |it| {
        it.map(|(k, _)| k.to_owned()).filter(|k| !live.contains(k)).collect()
    });
    entry_since.retain(|job, _| entries.binary_search(job).is_ok());
    for job in &entries {
        entry_since.entry(job.clone()).or_insert(now_us);
    }
    let kept = entry_since.iter().min_by_key(|(_, since)| **since).map(|(job, since)| (job, (now_us - since) / 1000));
    if let Some((job, kept_ms)) = kept.filter(|(_, ms)| *ms > completer_ms * 3 / 2) {
        ctx.record(Rec::CompleterEntryKept { job: job.clone(), kept_ms });
    }
}

impl PoolScenario {
    /// The scenario on the public harness (what `cargo sim` runs).
    pub fn sim(self) -> Sim {
        let (main, judge, goals) = (self.node_main(), self.clone(), self.clone());
        let name = match (self.feed, self.data_loss) {
            (true, _) => "poolfeed",
            (false, true) => "poolloss",
            (false, false) => "pool",
        };
        super::on_harness(name, &self.plan_spec(), self.op_timeout(), self.settle())
            .node(move |node| main(node.ctx().clone()))
            .check(move |run| judge.check(run.view))
            .sometimes_all(self.coverage_goals(), move |run| goals.coverage(run.view.events))
            .mutants(self.mutants())
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            nodes: self.nodes,
            // StoreDataLoss is the pulse61 scenario's; a pool needs a store that keeps every
            // acknowledged write, so StoreRollback is out too (docs/operations.md). NodeLatency found a pool bug (seed 135 of
            // 0..200): an abandoned run's end untracked the re-delivered run of the same attempt,
            // so a later fence did not stop it (P2); runs are now matched by their own number.
            // The completion-feed variant also meets an operator's ACL change (`AccessDenied`: a
            // node's start must fail at once, E5); the plain pool's schedules stay as they were,
            // so its rarer mutants keep their seeds.
            kinds: FaultKind::ALL
                .iter()
                .chain(&FaultKind::PERMANENT)
                .chain(&FaultKind::KNOBS)
                .copied()
                .filter(|k| match k {
                    FaultKind::StoreDataLoss => self.data_loss,
                    FaultKind::StoreRollback => false,
                    FaultKind::AccessDenied => self.feed,
                    // Short dedup windows: the plain pool's runs only (its dispatcher sends keys
                    // again, P1 and P2 judge each life of a key); the completion feed's waiters
                    // and the store's losses keep the whole run's window.
                    FaultKind::ShortRetention => !self.data_loss,
                    _ => true,
                })
                .collect(),
            window_ms: self.window_ms,
            unit_ms: self.ttl_ms,
            drift_bound: 0.1,
        }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.ttl_ms / 6)
    }

    fn settle(&self) -> Duration {
        Duration::from_millis(self.stable_from_ms() + 4000)
    }

    fn node_main(&self) -> NodeMain {
        let this = self.clone();
        Arc::new(move |ctx: NodeCtx| {
            let this = this.clone();
            Box::pin(async move {
                let Some(cfg) = this.config(&ctx.name, ctx.knobs()) else {
                    ctx.record(WorldEv::SimError { error: "invalid pool config".into() });
                    return;
                };
                let store = ctx.store().await;
                let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
                // A start that fails (the store denies the node, or stays away past the start
                // timeout) is tried again a second later, as an orchestrator restarts a process
                // whose start failed; keel says why in its `start_failed` (E5 judges it).
                let node = loop {
                    let pool = Pool::new(store.clone(), cfg.clone()).with_clock(clock.clone());
                    match pool.with_parent(&ctx.shutdown).start().await {
                        Ok(node) => break node,
                        Err(_) if !ctx.shutdown.is_cancelled() => ctx.clock.sleep(Duration::from_secs(1)).await,
                        Err(_) => return,
                    }
                };
                let node = Arc::new(node);
                if this.feed {
                    // Not joined: the subscription closes once the node stopped (below).
                    let sub = super::pool_events::subscribe(&node, &ctx);
                    tokio::spawn(super::pool_events::subscriber(ctx.clone(), sub));
                }
                let mut tasks = Vec::new();
                for _ in 0..this.workers {
                    let (ctx, node) = (ctx.clone(), node.clone());
                    tasks.push(tokio::spawn(async move {
                        while !ctx.shutdown.is_cancelled() {
                            // The request that adds the worker ends at once: the worker must not.
                            let request = Shutdown::new("request");
                            let mut w = node.add_worker(TestHandler { ctx: ctx.clone() }, &request);
                            super::pool_counters::record(&ctx, &node);
                            request.cancel();
                            let exit = w.join().await;
                            let incarnations = w.incarnations();
                            ctx.record(Rec::WorkerExit {
                                worker: w.id().to_owned(),
                                exit: format!("{exit:?}"),
                                incarnations,
                            });
                            super::pool_counters::record(&ctx, &node);
                            ctx.clock.sleep(Duration::from_millis(100)).await;
                        }
                    }));
                }
                let until_us = this.window_ms * 1000;
                if this.feed {
                    tasks.push(tokio::spawn(super::pool_feed::subscriber(ctx.clone(), node.clone())));
                }
                tasks.push(tokio::spawn(dispatcher(ctx.clone(), node.clone(), until_us, this.feed)));
                let final_us = (this.window_ms + this.stable_from_ms()) * 1000;
                let window_ms = ctx.short_retention().then(|| this.retention_ms(true));
                let completer_ms = this.completer_retention_ms(ctx.short_retention());
                tasks.push(tokio::spawn(auditor(ctx.clone(), this.ttl_ms, final_us, window_ms, completer_ms)));
                ctx.shutdown.cancelled().await;
                for t in tasks {
                    let _ = t.await;
                }
                if let Ok(node) = Arc::try_unwrap(node) {
                    node.stop().await;
                }
                ctx.record(Rec::PoolExit {});
            })
        })
    }

    fn check(&self, run: &RunView<'_>) -> Vec<Violation> {
        let v = self.check_all(run);
        if self.data_loss { self.check_losses(run, v) } else { v }
    }

    fn check_all(&self, run: &RunView<'_>) -> Vec<Violation> {
        let (events, heal_us, end_us) = (run.events, run.heal_us, run.end_us);
        let mut v = Vec::new();
        v.extend(self.check_jobs(events));
        v.extend(self.check_overlap(run));
        // The rules any run with a keel pool gets (P2 at the start, P3, P5 at the store, P7–P9, P11–P14).
        v.extend(crate::keel_rules::pool_instant_rules(run));
        v.extend(keel_checks::services_run_one_at_a_time(run.events));
        v.extend(keel_checks::stops_wait_for_their_run(run.events));
        // P44: a completer-map entry outlives its job's completion by the retention (the
        // scenario's done_retention, 600 s, and 10 worker TTLs: the smaller), judged against the
        // node's own estimate of the store's time: a clock beyond its drift bound excuses it
        // (poolloss seeds 124 and 318, a node at rate 0.80 deleting entries seconds early).
        let window_ms = self.retention_ms(run.plan.short_retention());
        if !run.plan.beyond_drift_bound() {
            let retention_ms = self.completer_retention_ms(run.plan.short_retention());
            v.extend(super::pool_cleanup::completion_entries_kept(run.events, retention_ms));
        }
        // P84: a tombstone outlives its dedup window (the one configured), by the store's time.
        v.extend(super::pool_cleanup::tombstones_kept_their_window(run.events, window_ms));
        v.extend(keel_checks::completer_channel(run.events));
        v.extend(crate::keel_rules::completer_drains_end_at_once(run));
        v.extend(keel_checks::completer_deadlines_name_what_is_left(run.events));
        v.extend(crate::keel_rules::completer_retries_on_time(run));
        v.extend(keel_checks::completer_retries_do_not_align(run.events));
        v.extend(crate::keel_rules::completer_full_batches_write_at_once(run));
        v.extend(crate::keel_rules::errors_transient_in_the_sim(events));
        // P62: each node announces the settings it was given and the documented lock default.
        let us = |ms: u64| ms * 1000;
        let configured = super::pool_config::Configured {
            ack_grace_us: us(self.ack_grace_ms()),
            sweep_interval_us: us(self.sweep_ms()),
            cleanup_lock_ttl_us: us(2 * self.ttl_ms),
        };
        v.extend(super::pool_config::nodes_run_as_configured(events, configured));
        // P80: each retry's and bound's announced timing is the setting it was given, or the
        // documented default (a path that reads the wrong setting announces and uses it alike).
        let mut settings = keel_checks::PoolSettings::documented(
            POOL,
            Duration::from_millis(self.ttl_ms),
            Some(Duration::from_millis(self.sweep_ms())),
        );
        settings.shutdown_deadline = Duration::from_millis(self.ttl_ms / 2);
        settings.dedup_window = Duration::from_millis(window_ms);
        v.extend(keel_checks::pool_timings_follow_their_settings(events, &settings));
        // V43: every store map is one of the pool's documented layout, its completer's included.
        v.extend(super::pool_config::maps_in_their_layout(events, POOL));
        // P47: a worker handle's join returns the exit its slot ended with.
        v.extend(super::pool_handles::handles_report_their_slot_exit(events));
        // P78: a slot waiting to replace a dead worker ends at once when its node stops.
        v.extend(super::pool_handles::slots_end_at_their_stop(run));
        v.extend(super::pool_counters::counters_follow_events(events));
        // E5: a start ends at its first permanent error (the plan's AccessDenied, in poolfeed).
        v.extend(keel_checks::pool_starts_end_at_a_permanent_error(events));
        v.extend(crate::keel_rules::reseed_rules(events));
        // A loss forgets jobs whose nodes add them again, attempts counted from 1 once more:
        // judged before it alone, or a re-dispatch before the loss is matched with an assignment
        // after it (poolloss seed 650).
        v.extend(self.check_ack_grace(before_first_loss(events)));
        v.extend(self.check_audits(events, heal_us, end_us, self.completer_retention_ms(run.plan.short_retention())));
        // P96: a graceful stop deletes its own keep-alive (a fault in its window excuses it).
        let op_timeout_us = u64::try_from(self.op_timeout().as_micros()).unwrap_or(u64::MAX);
        let disturbed = disturbances(events, heal_us);
        v.extend(super::pool_deregister::graceful_stops_delete_their_keepalive(events, &disturbed, op_timeout_us));
        // P98: a pool node's router opens its job map's watch.
        v.extend(super::pool_table::routers_follow_their_job_map(events, &disturbed));
        // P104: a pool node follows its keep-alive map.
        v.extend(super::pool_table::nodes_follow_their_keepalive_map(events, &disturbed));
        // P103: a pool node checks its store's epoch marker.
        v.extend(super::pool_table::nodes_check_their_epoch(events, &disturbed));
        // P99: a sweep's table wait times out only under a fault.
        v.extend(super::pool_table::table_waits_time_out_only_under_faults(events, &disturbed));
        v.extend(check_shutdown(events));
        // E7: a dispatch error that says it applied nothing is true.
        v.extend(super::pool_dispatch::check(events));
        v.extend(super::pool_dispatch::runs_add_jobs(events));
        if self.feed {
            v.extend(super::pool_feed::check(run));
            v.extend(super::pool_feed::waits_registered_first(run));
            v.extend(super::pool_feed::waits_bounded(run));
            v.extend(super::pool_feed::feed_drops_counted(run));
            v.extend(super::pool_feed::feeds_end_with_their_node(run));
            v.extend(super::pool_feed::feeds_refused_only_full_or_stopped(run));
            v.extend(super::pool_feed::waits_end_with_their_calls(run));
            v.extend(super::pool_events::check(run));
        }
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        // worker → node holding its cleanup lock, for "a cleaner crashed, another finished".
        let mut locked_by: BTreeMap<&str, Who> = BTreeMap::new();
        let mut crashed_cleaners: BTreeSet<(&str, Who)> = BTreeSet::new();
        let mut narrow = super::NarrowWindows::default();
        for e in events {
            narrow.see(e);
            // The plan's `ShortRetention` knob: a tombstone swept, a key added for a second life.
            if let Some(ServerEv::TombstoneDeleted { .. }) = e.server() {
                c.insert("tombstone_expired");
            }
            if let Some(Rec::JobAddedAgain { .. }) = rec(e) {
                c.insert("key_added_again_after_its_window");
            }
            if let Some(PoolEvent::Completed { .. }) = e.pool()
                && (narrow.reply_delayed(e.node, e.t_us) || narrow.asymmetric(e.node, e.t_us))
            {
                c.insert("completed_under_slow_replies");
            }
            if matches!(e.world(), Some(WorldEv::NodeCrash {})) {
                for (w, n) in &locked_by {
                    if *n == e.node {
                        crashed_cleaners.insert((w, *n));
                    }
                }
                continue;
            }
            let Some(p) = e.pool() else { continue };
            match p {
                // The plan's `SmallBuffers` knob met a full queue of delivered records.
                PoolEvent::DeliveryDropped { .. } => {
                    c.insert("delivery_dropped_by_a_full_queue");
                }
                PoolEvent::CleanupTakeover { worker, .. } => {
                    c.insert("cleanup_takeover");
                    locked_by.insert(plain(worker), e.node);
                }
                PoolEvent::CleanupLocked { worker, .. } => {
                    locked_by.insert(plain(worker), e.node);
                }
                PoolEvent::WorkerCleaned { worker, .. } => {
                    let w: &str = plain(worker);
                    if crashed_cleaners.iter().any(|(cw, cn)| *cw == w && *cn != e.node) {
                        c.insert("cleaner_crash_finished_by_another_node");
                    }
                    crashed_cleaners.retain(|(cw, _)| *cw != w);
                    locked_by.remove(w);
                }
                PoolEvent::Moved { kind: MoveKind::OrphanRequeued, .. } => {
                    c.insert("orphan_requeued");
                }
                PoolEvent::Moved { kind: MoveKind::Redispatched, .. } => {
                    c.insert("unacked_redispatched");
                }
                PoolEvent::StaleRejected { .. } => {
                    c.insert("stale_attempt_rejected");
                }
                PoolEvent::Fenced { .. } => {
                    c.insert("worker_fenced");
                }
                PoolEvent::DataLoss { .. } => {
                    c.insert("data_loss_reported");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        /// The plain pool's goals; the completion-feed variant's are all but the last two (it
        /// keeps the whole run's dedup window: no `ShortRetention` knob).
        const GOALS: [&str; 9] = [
            "cleanup_takeover",
            "cleaner_crash_finished_by_another_node",
            "orphan_requeued",
            "stale_attempt_rejected",
            "unacked_redispatched",
            "completed_under_slow_replies",
            "delivery_dropped_by_a_full_queue",
            "tombstone_expired",
            "key_added_again_after_its_window",
        ];
        match (self.data_loss, self.feed) {
            (true, _) => &["data_loss_reported"],
            (false, true) => &GOALS[..7],
            (false, false) => &GOALS,
        }
    }

    fn mutants(&self) -> &'static [Mutant] {
        if self.data_loss {
            return &[Mutant::MC114];
        }
        if self.feed {
            return &[
                Mutant::MC27,
                Mutant::MC57,
                Mutant::MC160,
                Mutant::MC192,
                Mutant::MC238,
                Mutant::MC273,
                Mutant::MC274,
                Mutant::MC348,
                Mutant::MC378,
                Mutant::MC379,
                Mutant::MC399,
                Mutant::MC400,
                Mutant::MC414,
                Mutant::MC403,
                Mutant::MC433,
                Mutant::MC434,
                Mutant::MC442,
                Mutant::MC458,
                Mutant::MC443,
            ];
        }
        &[
            Mutant::MP4,
            Mutant::MP6,
            Mutant::MP7,
            Mutant::MP8,
            Mutant::MP9,
            Mutant::MP10,
            Mutant::MC8,
            Mutant::MC10,
            Mutant::MC15,
            Mutant::MP15,
            Mutant::MC299,
            Mutant::MC328,
            Mutant::MC456,
            Mutant::MC457,
            Mutant::MC460,
            Mutant::MC461,
            Mutant::MC462,
            Mutant::MC463,
            Mutant::MC455,
            Mutant::MC464,
            Mutant::MC465,
            Mutant::MC466,
            Mutant::MC320,
            Mutant::MC321,
            Mutant::MC322,
            Mutant::MC323,
            Mutant::MC340,
            Mutant::MC341,
            Mutant::MC342,
            Mutant::MC360,
            Mutant::MC376,
            Mutant::MC377,
            Mutant::MC380,
            Mutant::MC386,
            Mutant::MC413,
            Mutant::MC401,
            Mutant::MP16,
            Mutant::MC21,
            Mutant::MC22,
            Mutant::MC23,
            Mutant::MC24,
            Mutant::MC25,
            Mutant::MC35,
            Mutant::MC36,
            Mutant::MC38,
            Mutant::MC39,
            Mutant::MC46,
            Mutant::MC54,
            Mutant::MC55,
            Mutant::MC56,
            Mutant::MC68,
            Mutant::MC70,
            Mutant::MC72,
            Mutant::MC73,
            Mutant::MC78,
            Mutant::MC85,
            Mutant::MC88,
            Mutant::MC89,
            Mutant::MC94,
            Mutant::MC95,
            Mutant::MC97,
            Mutant::MC98,
            Mutant::MC102,
            Mutant::MC112,
            Mutant::MC113,
            Mutant::MC116,
            Mutant::MC117,
            Mutant::MC118,
            Mutant::MC121,
            Mutant::MC122,
            Mutant::MC123,
            Mutant::MC124,
            Mutant::MC129,
            Mutant::MC133,
            Mutant::MC134,
            Mutant::MC135,
            Mutant::MC137,
            Mutant::MC139,
            Mutant::MC141,
            Mutant::MC143,
            Mutant::MC144,
            Mutant::MC145,
            Mutant::MC147,
            Mutant::MC152,
            Mutant::MC153,
            Mutant::MC159,
            Mutant::MC162,
            Mutant::MC167,
            Mutant::MC174,
            Mutant::MC176,
            Mutant::MC180,
            Mutant::MC181,
            Mutant::MC182,
            Mutant::MC193,
            Mutant::MC194,
            Mutant::MC198,
            Mutant::MC199,
            Mutant::MC202,
            Mutant::MC207,
            Mutant::MC426,
            Mutant::MC427,
            Mutant::MC428,
            Mutant::MC429,
            Mutant::MC430,
            Mutant::MC431,
            Mutant::MC432,
            Mutant::MC436,
            Mutant::MC437,
            Mutant::MC438,
            Mutant::MC439,
            Mutant::MC440,
            Mutant::MC441,
            Mutant::MC444,
            Mutant::MC445,
            Mutant::MC446,
            Mutant::MC447,
            Mutant::MC448,
            Mutant::MC450,
            Mutant::MC451,
            Mutant::MC453,
            Mutant::MC454,
            Mutant::MC210,
            Mutant::MC218,
            Mutant::MC221,
            Mutant::MC225,
            Mutant::MC235,
            Mutant::MC237,
            Mutant::MC245,
            Mutant::MC246,
            Mutant::MC247,
            Mutant::MC255,
            Mutant::MC256,
            Mutant::MC257,
            Mutant::MC259,
            Mutant::MC260,
            Mutant::MC261,
            Mutant::MC262,
            Mutant::MC269,
            Mutant::MC275,
            Mutant::MC277,
            Mutant::MC279,
            Mutant::MC404,
            Mutant::MC405,
            Mutant::MC406,
            Mutant::MC407,
            Mutant::MC408,
            Mutant::MC409,
            Mutant::MC410,
            Mutant::MC411,
            Mutant::MC412,
        ]
    }
}

impl PoolScenario {
    /// `poolloss`: every rule of the pool scenario, and P30 among keel's own, on a run whose
    /// store may lose its data. A loss is outside keel's guarantee: jobs added before the store
    /// came back from the last loss may be gone (P1 judges only those added after it), and the
    /// state of jobs, workers and pending dispatches the others held is gone under them (P2, P3
    /// and P5 are judged only before the first loss). Every other rule is judged throughout.
    fn check_losses(&self, run: &RunView<'_>, v: Vec<Violation>) -> Vec<Violation> {
        let lost = |e: &Event| matches!(e.world(), Some(WorldEv::StoreCrash { data_loss: true }));
        let Some(at) = run.events.iter().position(lost) else { return v };
        let first = run.events[at].t_us;
        let last = run.events.iter().rposition(lost).unwrap_or_default();
        let back = run.events[last..]
            .iter()
            .find(|e| matches!(e.world(), Some(WorldEv::StoreRestart {})))
            .map_or(run.end_us, |e| e.t_us);
        // P2 compares a completion with every attempt of its job: judged on the history before
        // the loss alone, or a job the loss forgot and its node added again (attempts counted
        // from 1 once more) makes an earlier completion look stale (poolloss seed 1137).
        let p2_before = self.check_jobs(before_first_loss(run.events)).into_iter().filter(|x| x.invariant == "P2");
        v.into_iter()
            .filter(|x| match x.invariant {
                "P1" => x.t_us >= back,
                "P2" => false,
                "P3" | "P5" | "P52" => x.t_us < first,
                _ => true,
            })
            .chain(p2_before)
            .collect()
    }

    /// P1: every added (or started) job is completed by the end. P2: at most one recorded
    /// completion per job, and it is of the job's latest attempt.
    ///
    /// Judged per life of a key: once the store deleted a job's tombstone (its dedup window
    /// passed, the plan's `ShortRetention` knob), the key is free and a dispatch of it adds a
    /// new job, attempts counted from 1 again. P2 splits a key's events at each deletion. P1
    /// counts: a key added `n` times (`job_added` once, each `job_added_again`; a run stands for
    /// an addition when none was recorded) needs as many lives with a completion (keel's
    /// `completed`, or `completion_landed` at the store: the worker may not have learnt it).
    /// Counted, not matched by time: a retried dispatch told `Duplicate` by its first landed
    /// call may hear it after that life's tombstone is gone.
    fn check_jobs(&self, events: &[Event]) -> Vec<Violation> {
        type Life<'a> = (&'a str, u32);
        let mut v = Vec::new();
        let mut lives: BTreeMap<&str, u32> = BTreeMap::new();
        // job → the instant of each addition (its first, then each again), and of its first run
        // (a run stands for an addition none was recorded of: its dispatch gave up yet landed).
        let mut added: BTreeMap<&str, (Vec<u64>, Option<u64>)> = BTreeMap::new();
        let mut max_attempt: BTreeMap<Life<'_>, u64> = BTreeMap::new();
        let mut completed: BTreeMap<Life<'_>, (u64, u64)> = BTreeMap::new();
        let mut done: BTreeSet<Life<'_>> = BTreeSet::new();
        // (job, attempt, worker) of each completion the store applied → the key's life then.
        let mut landed_in: BTreeMap<(&str, u64, &str), u32> = BTreeMap::new();
        let mut tombstones: BTreeSet<&str> = BTreeSet::new();
        for e in events {
            if let Some(r) = rec(e) {
                match r {
                    Rec::Tombstones { jobs, .. } => tombstones.extend(jobs.iter().map(String::as_str)),
                    Rec::JobAdded { job, .. } => {
                        let adds = &mut added.entry(job).or_default().0;
                        if adds.is_empty() {
                            adds.push(e.t_us);
                        }
                    }
                    Rec::JobAddedAgain { job, .. } => added.entry(job).or_default().0.push(e.t_us),
                    Rec::RunStart { job, .. } => {
                        added.entry(job).or_default().1.get_or_insert(e.t_us);
                    }
                    _ => {}
                }
                continue;
            }
            let life = |job: &str| lives.get(job).copied().unwrap_or(0);
            match e.server() {
                Some(ServerEv::TombstoneDeleted { job, .. }) => *lives.entry(job).or_insert(0) += 1,
                Some(ServerEv::CompletionLanded { job, attempt, worker, .. }) => {
                    done.insert((job, life(job)));
                    landed_in.insert((job, *attempt, worker), life(job));
                }
                _ => {}
            }
            let life = |job: &str| lives.get(job).copied().unwrap_or(0);
            let attempted = match e.pool() {
                Some(PoolEvent::Started { job, attempt, .. }) => Some((job, *attempt)),
                _ => assignment(e).map(|(job, _, attempt, _)| (job, attempt)),
            };
            if let Some((job, attempt)) = attempted {
                let a = max_attempt.entry((plain(job), life(plain(job)))).or_insert(0);
                *a = (*a).max(attempt);
            }
            if let Some(PoolEvent::Completed { job, attempt, worker }) = e.pool() {
                // The life its completion landed in: the worker hears of it a reply later, which
                // a slow link may bring after the store freed the key (pool seed 722, 4 s late).
                let landed = landed_in.get(&(plain(job), *attempt, plain(worker))).copied();
                let (attempt, key) = (*attempt, (plain(job), landed.unwrap_or_else(|| life(plain(job)))));
                done.insert(key);
                if let Some((t, a)) = completed.insert(key, (e.t_us, attempt)) {
                    v.push(Violation::new(
                        "P2",
                        e.t_us,
                        format!("{job} completed twice (attempt {a} at {:.3}s, attempt {attempt})", t as f64 / 1e6),
                    ));
                }
            }
        }
        let again = |life: u32| {
            if life > 0 { format!(" (its life {}, after its key came free)", life + 1) } else { String::new() }
        };
        for ((job, life), (t, attempt)) in &completed {
            let max = max_attempt.get(&(*job, *life)).copied().unwrap_or(0);
            if *attempt != max {
                v.push(Violation::new(
                    "P2",
                    *t,
                    format!(
                        "{job}: completion of attempt {attempt} recorded, but attempt {max} was assigned{}",
                        again(*life)
                    ),
                ));
            }
        }
        for (job, (mut adds, run)) in added {
            if adds.is_empty() {
                adds.extend(run);
            }
            let last = lives.get(job).copied().unwrap_or(0);
            let mut finished = done.range((job, 0)..=(job, u32::MAX)).count();
            if tombstones.contains(job) && !done.contains(&(job, last)) {
                finished += 1;
            }
            if let Some(&t) = adds.get(finished) {
                let life = u32::try_from(finished).unwrap_or(u32::MAX);
                v.push(Violation::new(
                    "P1",
                    t,
                    format!("{job} was added but never completed (lost or stranded){}", again(life)),
                ));
            }
        }
        v
    }

    /// P2: at most one running handler per job key, except the documented hand-off overlap
    /// (one clock-sleep granularity, 100 ms), not counting time the older runner was frozen.
    /// Judged from the handler's own records (keel's `Started`/`HandlerReturned` give the same
    /// spans to a user's run: [`crate::keel_rules::pool_handlers_overlap`]).
    fn check_overlap(&self, run: &RunView<'_>) -> Vec<Violation> {
        if run.plan.beyond_drift_bound() {
            return Vec::new(); // local deadlines may be late by design; completions stay fenced
        }
        HandlerRuns::collect(
            run.events,
            run.end_us,
            |e| match rec(e) {
                Some(Rec::RunStart { job, attempt, .. }) => Some((job.as_str(), *attempt)),
                _ => None,
            },
            |e| match rec(e) {
                Some(Rec::RunStop { job, attempt, .. }) => Some((job.as_str(), *attempt)),
                _ => None,
            },
        )
        .overlaps(run.timeline, HANDOFF_US)
    }

    /// P5, the other side: no job is re-dispatched before the ack grace of the assignment it
    /// replaces has expired (store time of the sweeper's view ≥ the assignment's + ack grace).
    /// Judged by attempt, not by the order of the events: a node emits a move when its write's
    /// reply arrives, and a reply held up in the network (or behind a batch) can come after
    /// another node's later move of the same job (pool seed 316: attempt 2's move reported
    /// 500 ms late, after attempt 3's legitimate re-dispatch). Every move raises the attempt by
    /// one, so a re-dispatch to attempt `a` replaces the assignment of attempt `a − 1`.
    fn check_ack_grace(&self, events: &[Event]) -> Vec<Violation> {
        // job → attempt → store ms of its assignment (a dispatch starts the key's attempts anew).
        let mut assigned: BTreeMap<&str, BTreeMap<u64, u64>> = BTreeMap::new();
        // (job, attempt) of a re-dispatch seen before the assignment it replaces → (store ms, t_us).
        let mut early: BTreeMap<(&str, u64), (u64, u64)> = BTreeMap::new();
        let grace = self.ack_grace_ms();
        let mut v = Vec::new();
        let judge = |prev: u64, at: u64, now_ms: u64, t_us: u64, v: &mut Vec<Violation>, job: &str| {
            // keel re-dispatches strictly after the deadline (`deadline_ms < now_ms`): the
            // deadline's own millisecond is still inside the grace (MC182).
            if now_ms <= at + grace {
                v.push(Violation::new(
                    "P5",
                    t_us,
                    format!(
                        "{job}: attempt {prev} re-dispatched {} ms after its assignment, inside its ack grace of {grace} ms",
                        now_ms.saturating_sub(at)
                    ),
                ));
            }
        };
        for e in events {
            // A key whose tombstone the store deleted starts a new life at its next dispatch,
            // which may come home after that life's first move: nothing of the old life is
            // judged against the new one's attempts.
            if let Some(ServerEv::TombstoneDeleted { job, .. }) = e.server() {
                assigned.remove(job.as_str());
                early.retain(|(j, _), _| *j != job.as_str());
                continue;
            }
            let Some((job, _, attempt, now_ms)) = assignment(e) else { continue };
            let job = plain(job);
            if let Some(PoolEvent::Dispatched { .. }) = e.pool() {
                assigned.remove(job);
            }
            let attempts = assigned.entry(job).or_default();
            attempts.insert(attempt, now_ms);
            if let Some(PoolEvent::Moved { kind: MoveKind::Redispatched, .. }) = e.pool() {
                match attempts.get(&attempt.saturating_sub(1)) {
                    Some(&at) => judge(attempt - 1, at, now_ms, e.t_us, &mut v, job),
                    None => {
                        early.insert((job, attempt), (now_ms, e.t_us));
                    }
                }
            }
            if let Some((later_ms, t_us)) = early.remove(&(job, attempt + 1)) {
                judge(attempt, now_ms, later_ms, t_us, &mut v, job);
            }
        }
        v.truncate(20);
        v
    }

    /// P4: after quiescence nothing of a deleted worker remains. P5: no pending entry outlives
    /// its deadline by more than the sweep period (plus slack), judged while nothing disturbs
    /// the sweepers, and always after quiescence.
    /// `completer_ms`: the run's completer-map retention (P87).
    fn check_audits(&self, events: &[Event], heal_us: u64, end_us: u64, completer_ms: u64) -> Vec<Violation> {
        let stable_us = heal_us + self.stable_from_ms() * 1000;
        let disturbed = disturbances(events, heal_us);
        let slack_ms = 3 * self.sweep_ms() + self.op_timeout().as_millis() as u64;
        let mut v = Vec::new();
        let mut final_stale: Option<(u64, usize, &str)> = None;
        let mut audited_after_quiescence = false;
        for e in events {
            if let Some(Rec::InspectWrong { job, reported_ms, computed_ms }) = rec(e)
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P38",
                    e.t_us,
                    format!("inspect reported the pending dispatch of {job} {reported_ms} ms past its deadline; its entry and the report's store time say {computed_ms} ms"),
                ));
            }
            if let Some(Rec::Misread { what, key, raw, keel, format }) = rec(e)
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P111",
                    e.t_us,
                    format!("keel's {what} decoder read {key} = {raw:?} as {keel}; its format says {format}"),
                ));
            }
            if let Some(Rec::InspectFigureWrong { what, key, reported, computed }) = rec(e)
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P38",
                    e.t_us,
                    format!("inspect reported the {what} of {key:?} as {reported}; the raw map and the report's store time say {computed}"),
                ));
            }
            if let Some(Rec::InspectCorrupt { map, key, detail }) = rec(e)
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P75",
                    e.t_us,
                    format!("{}: inspect called the record {key:?} of {map} corrupt ({detail}), yet no run writes one: an operator's quarantine_corrupt would move it out of the pool", e.node),
                ));
            }
            if let Some(Rec::InspectDiffers { what, whole, in_place }) = rec(e)
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P75",
                    e.t_us,
                    format!(
                        "{}: inspect's {what} were {whole}; the in-place report at the same store time says {in_place}",
                        e.node
                    ),
                ));
            }
            // P85: after quiescence no tombstone outlives its dedup window by more than a
            // reconcile period (a tombstone the node's table missed is found by the next pass)
            // and the slack of a pending entry.
            if let Some(Rec::TombstoneOverdue { job, overdue_ms }) = rec(e)
                && e.t_us >= stable_us
                && *overdue_ms > self.ttl_ms + slack_ms
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P85",
                    e.t_us,
                    format!("after quiescence {job}'s completion tombstone is still in the store {overdue_ms} ms past its dedup window: expired tombstones are not swept"),
                ));
            }
            // P87: after quiescence no completer-map entry of a job without a record stays past
            // one and a half completer retentions, a reconcile period's lag and the slack.
            if let Some(Rec::CompleterEntryKept { job, kept_ms }) = rec(e)
                && e.t_us >= stable_us
                && *kept_ms > completer_ms * 3 / 2 + self.ttl_ms + slack_ms
                && v.len() < 20
            {
                v.push(Violation::new(
                    "P87",
                    e.t_us,
                    format!("after quiescence {job}'s completer-map entry has been in the store {kept_ms} ms with no record of its job, past one and a half retentions of {completer_ms} ms: the completer map is not swept"),
                ));
            }
            let Some(Rec::Audit { stale_workers, stale_example, stale_ms, overdue_ms, overdue_job, .. }) = rec(e)
            else {
                continue;
            };
            audited_after_quiescence |= e.t_us >= stable_us;
            if *overdue_ms > slack_ms {
                let window = Span { start: e.t_us.saturating_sub((overdue_ms + 1000) * 1000), end: e.t_us + 1 };
                if e.t_us >= stable_us || !disturbed.iter().any(|d| d.overlap(&window).is_some()) {
                    v.push(Violation::new(
                        "P5",
                        e.t_us,
                        format!("pending entry of {overdue_job} outlived its deadline by {overdue_ms} ms"),
                    ));
                }
            }
            // State that appeared after quiescence (a write held in the network) gets the same
            // slack as an overdue pending entry.
            if e.t_us >= stable_us && *stale_workers > 0 && *stale_ms > slack_ms {
                final_stale.get_or_insert((e.t_us, *stale_workers, stale_example));
            }
        }
        if let Some((t, n, example)) = final_stale {
            v.push(Violation::new(
                "P4",
                t,
                format!("after quiescence {n} dead worker(s) still have state (e.g. {example})"),
            ));
        }
        if !audited_after_quiescence && end_us > stable_us {
            v.push(Violation::new("P4", end_us, "no audit succeeded after quiescence"));
        }
        v.truncate(20);
        v
    }
}

/// Frozen time of two nodes (a node crashed while frozen stops being frozen at its crash).
/// Intervals during which a fault could keep sweepers from running on time.
fn disturbances(events: &[Event], heal_us: u64) -> Vec<Span> {
    let mut out = Vec::new();
    let mut since: BTreeMap<Who, u64> = BTreeMap::new();
    for e in events {
        let Some(w) = e.world() else { continue };
        let t = e.t_us;
        let lasting = |ms: u64| Span { start: t, end: t + ms * 1000 + 1 };
        match w {
            WorldEv::StoreRefusing { ms }
            | WorldEv::LatencySpike { ms, .. }
            | WorldEv::ReplyLoss { ms, .. }
            | WorldEv::ReplyDelay { ms, .. }
            | WorldEv::NodeLatency { ms, .. }
            | WorldEv::Partition { ms, .. }
            | WorldEv::AccessDenied { ms, .. } => out.push(lasting(*ms)),
            WorldEv::FeedDisconnect {} | WorldEv::Heal {} => out.push(Span { start: t, end: t + 500_000 }),
            WorldEv::StoreCrash { .. } => {
                since.insert(Who::Store, t);
            }
            WorldEv::StoreRestart {} => {
                let s = since.remove(&Who::Store).unwrap_or(t);
                out.push(Span { start: s, end: t + 1 });
            }
            WorldEv::NodePause {} => {
                since.insert(e.node, t);
            }
            WorldEv::NodeResume {} => {
                let s = since.remove(&e.node).unwrap_or(t);
                out.push(Span { start: s, end: t + 1 });
            }
            WorldEv::ClockRate { .. } | WorldEv::ClockJump { .. } => out.push(Span { start: t, end: heal_us + 1 }),
            _ => {}
        }
    }
    for (_, s) in since {
        out.push(Span { start: s, end: heal_us + 1 });
    }
    out
}

/// P6: once a node's pool has stopped, nothing of it runs: every handler it started has
/// stopped, and no pool event comes from it until it starts again.
fn check_shutdown(events: &[Event]) -> Vec<Violation> {
    let mut stopped: BTreeSet<Who> = BTreeSet::new();
    let mut running: BTreeMap<Who, BTreeSet<(&str, u64)>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node;
        if matches!(e.world(), Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {})) {
            stopped.remove(&node);
            running.remove(&node);
            continue;
        }
        let what = match (rec(e), e.pool()) {
            (Some(Rec::PoolExit {}), _) => {
                if let Some((job, a)) = running.get(&node).and_then(|r| r.iter().next()) {
                    v.push(Violation::new(
                        "P6",
                        e.t_us,
                        format!("{node}: pool stopped with handler {job}#{a} still running"),
                    ));
                }
                stopped.insert(node);
                continue;
            }
            (Some(Rec::RunStart { job, attempt, .. }), _) => {
                running.entry(node).or_default().insert((job, *attempt));
                "run_start"
            }
            (Some(Rec::RunStop { job, attempt, .. }), _) => {
                running.entry(node).or_default().remove(&(job.as_str(), *attempt));
                "run_stop"
            }
            (_, Some(p @ (PoolEvent::Keepalive { .. } | PoolEvent::Started { .. } | PoolEvent::Completed { .. }))) => {
                p.kind()
            }
            _ => continue,
        };
        if stopped.remove(&node) {
            v.push(Violation::new("P6", e.t_us, format!("{node}: {what} after its pool stopped (leaked task)")));
        }
    }
    v
}

/// pulse #61 as a fixed plan: node 1 closes gracefully and is killed (then restarted)
/// [`PULSE61_CLOSE_KILL_MS`] into its close, while its workers still drain; node 2 crashes while it
/// may be requeueing node 1's jobs (at `offset_ms` after `ttl`, when the keep-alives node 1's
/// workers wrote as they began stopping go stale and the sweepers start cleaning); node 0 must
/// finish every job.
pub fn pulse61_plan(seed: u64, ttl_ms: u64, offset_ms: u64) -> FaultPlan {
    let at = |at_ms: u64, fault| crate::plan::Timed { at_ms, fault };
    FaultPlan {
        seed,
        profile: crate::plan::Profile::Calm,
        enabled: vec![FaultKind::NodeRestart, FaultKind::NodeCrash],
        heal_at_ms: 30_000,
        events: vec![
            at(5_000, crate::plan::Fault::NodeRestart { node: 1, down_ms: PULSE61_CLOSE_KILL_MS }),
            at(5_000 + ttl_ms + offset_ms, crate::plan::Fault::NodeCrash { node: 2, down_ms: 20_000 }),
        ],
    }
}

/// How long into its graceful close node 1 is killed in [`pulse61_plan`]: within the drain
/// (`shutdown_deadline` = ttl/2), before the hand-back.
pub const PULSE61_CLOSE_KILL_MS: u64 = 250;

/// The history up to the store's first data loss (all of it if none): the part whose jobs,
/// attempts and workers the rules that follow a job across its life can trust.
fn before_first_loss(events: &[Event]) -> &[Event] {
    let at = events.iter().position(|e| matches!(e.world(), Some(WorldEv::StoreCrash { data_loss: true })));
    &events[..at.unwrap_or(events.len())]
}
