//! The pool scenario: 3 nodes with workers, jobs dispatched continuously, a handler that records
//! start and stop of every attempt, and every fault the world has except data loss (SPEC §5,
//! P1–P6). An auditor on every node reads the pool's store state (`keel::pool::inspect`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::mutants::Mutant;
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, inspect};
use keel::shutdown::Shutdown;
use keel::store::Store;
use madsim::rand::Rng;

use super::Scenario;
use crate::check::{Coverage, Span, Violation};
use crate::history::Event;
use crate::plan::{FaultKind, FaultPlan, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

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
}

impl Default for PoolScenario {
    fn default() -> Self {
        PoolScenario { nodes: 3, workers: 2, ttl_ms: 1500, window_ms: 30_000 }
    }
}

impl PoolScenario {
    fn sweep_ms(&self) -> u64 {
        self.ttl_ms / 10
    }
    fn ack_grace_ms(&self) -> u64 {
        self.ttl_ms / 5
    }

    fn config(&self, node: &str) -> Option<PoolConfig> {
        PoolConfig::builder(POOL, node)
            .worker_ttl(Duration::from_millis(self.ttl_ms))
            .ack_grace(Duration::from_millis(self.ack_grace_ms()))
            .sweep_interval(Duration::from_millis(self.sweep_ms()))
            .shutdown_deadline(Duration::from_millis(self.ttl_ms / 2))
            .done_retention(Duration::from_secs(600)) // the whole run: P1 reads the tombstones
            .build()
            .ok()
    }

    /// From the heal: dead incarnations stale (ttl), a crashed cleaner's lock expired (2·ttl),
    /// cleanup and requeue done, the longest job (4 s) run again, plus slack.
    fn stable_from_ms(&self) -> u64 {
        4 * self.ttl_ms + 2000
    }
}

/// Records the start and stop of every attempt, runs for the payload's milliseconds.
struct TestHandler {
    ctx: NodeCtx,
}

impl JobHandler for TestHandler {
    async fn run(&self, job: Job) -> JobOutcome {
        let f = |o: &str| {
            vec![
                ("job", job.key().to_owned()),
                ("attempt", job.attempt().to_string()),
                ("worker", job.worker().to_owned()),
                ("outcome", o.to_owned()),
            ]
        };
        self.ctx.record("run_start", &f("-")[..3]);
        let ms = job.payload().parse().unwrap_or(10);
        let out = tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = self.ctx.clock.sleep(Duration::from_millis(ms)) => JobOutcome::Completed,
        };
        self.ctx.record("run_stop", &f(if out == JobOutcome::Completed { "done" } else { "stopped" }));
        out
    }
}

async fn dispatcher(ctx: NodeCtx, node: Arc<keel::pool::PoolNode<crate::net::SimStore>>, until_us: u64) {
    let start = ctx.history.now_us();
    let mut n = 0u64;
    while !ctx.shutdown.is_cancelled() && ctx.history.now_us() < until_us {
        n += 1;
        let job = format!("{}-{}-{n}", ctx.name, start / 1000);
        let ms: u64 = {
            let mut rng = madsim::rand::thread_rng();
            if rng.gen_bool(0.15) { rng.gen_range(2000..4000) } else { rng.gen_range(20..400) }
        };
        let mut failed = false;
        for _ in 0..20 {
            match node.dispatch(&job, &ms.to_string()).await {
                Ok(_) => {
                    ctx.record("job_added", &[("job", job.clone())]);
                    break;
                }
                Err(keel::pool::PoolError::Duplicate { .. }) if failed => {
                    ctx.record("job_added", &[("job", job.clone())]);
                    break;
                }
                Err(_) if ctx.shutdown.is_cancelled() => return,
                Err(_) => {
                    failed = true;
                    ctx.clock.sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.clock.sleep(Duration::from_millis(150)) => {}
        }
    }
}

async fn auditor(ctx: NodeCtx, store: crate::net::SimStore, ttl_ms: u64, final_us: u64) {
    let mut tombstones_recorded = false;
    loop {
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = ctx.shutdown.cancelled() => return,
            _ = ctx.clock.sleep(Duration::from_millis(250)) => {}
        }
        if !tombstones_recorded && ctx.history.now_us() >= final_us {
            // Completion tombstones: a completion whose reply was lost (node crashed) still counts.
            if let Ok(snap) = store.map_snapshot(&format!("keel:pool:{POOL}:jobs")).await {
                let done: Vec<&str> = snap.entries.keys().filter_map(|k| k.strip_prefix("d/")).collect();
                ctx.record("tombstones", &[("jobs", done.join(","))]);
                tombstones_recorded = true;
            }
        }
        let Ok(r) = inspect(&store, POOL).await else { continue };
        let stale: Vec<&String> =
            r.workers.iter().filter(|(_, age)| age.is_none_or(|a| a > 3 * ttl_ms)).map(|(w, _)| w).collect();
        let overdue = r.pending.iter().max_by_key(|(_, p)| p.2);
        ctx.record(
            "audit",
            &[
                ("jobs", r.jobs.len().to_string()),
                ("stale_workers", stale.len().to_string()),
                ("stale_example", stale.first().map_or_else(String::new, |w| (*w).clone())),
                ("overdue_ms", overdue.map_or(0, |(_, p)| p.2).to_string()),
                ("overdue_job", overdue.map_or_else(String::new, |(j, _)| j.clone())),
            ],
        );
    }
}

impl Scenario for PoolScenario {
    fn name(&self) -> &'static str {
        "pool"
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            nodes: self.nodes,
            kinds: FaultKind::ALL.iter().copied().filter(|k| *k != FaultKind::StoreDataLoss).collect(),
            window_ms: self.window_ms,
            unit_ms: self.ttl_ms,
            drift_bound: 0.1,
        }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.ttl_ms / 6)
    }

    fn settle(&self, _plan: &FaultPlan) -> Duration {
        Duration::from_millis(self.stable_from_ms() + 4000)
    }

    fn node_main(&self) -> NodeMain {
        let this = self.clone();
        Arc::new(move |ctx: NodeCtx| {
            let this = this.clone();
            Box::pin(async move {
                let Some(cfg) = this.config(&ctx.name) else {
                    ctx.record("sim_error", &[("error", "invalid pool config".into())]);
                    return;
                };
                let store = ctx.store().await;
                let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
                let Ok(node) = Pool::new(store.clone(), cfg).with_clock(clock).with_parent(&ctx.shutdown).start().await
                else {
                    return;
                };
                let node = Arc::new(node);
                let mut tasks = Vec::new();
                for _ in 0..this.workers {
                    let (ctx, node) = (ctx.clone(), node.clone());
                    tasks.push(tokio::spawn(async move {
                        while !ctx.shutdown.is_cancelled() {
                            // The request that adds the worker ends at once: the worker must not.
                            let request = Shutdown::new("request");
                            let mut w = node.add_worker(TestHandler { ctx: ctx.clone() }, &request);
                            request.cancel();
                            let exit = w.join().await;
                            ctx.record("worker_exit", &[("worker", w.id().to_owned()), ("exit", format!("{exit:?}"))]);
                            ctx.clock.sleep(Duration::from_millis(100)).await;
                        }
                    }));
                }
                let until_us = this.window_ms * 1000;
                tasks.push(tokio::spawn(dispatcher(ctx.clone(), node.clone(), until_us)));
                let final_us = (this.window_ms + this.stable_from_ms()) * 1000;
                tasks.push(tokio::spawn(auditor(ctx.clone(), store, this.ttl_ms, final_us)));
                ctx.shutdown.cancelled().await;
                for t in tasks {
                    let _ = t.await;
                }
                if let Ok(node) = Arc::try_unwrap(node) {
                    node.stop().await;
                }
                ctx.record("pool_exit", &[]);
            })
        })
    }

    fn check(&self, plan: &FaultPlan, events: &[Event], heal_us: u64, end_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        v.extend(self.check_jobs(events));
        v.extend(self.check_overlap(plan, events));
        v.extend(self.check_assignments(events));
        v.extend(check_locks(events));
        v.extend(self.check_audits(events, heal_us, end_us));
        v.extend(check_shutdown(events));
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        // worker → node holding its cleanup lock, for "a cleaner crashed, another finished".
        let mut locked_by: BTreeMap<&str, &str> = BTreeMap::new();
        let mut crashed_cleaners: BTreeSet<(&str, &str)> = BTreeSet::new();
        for e in events {
            match e.kind.as_str() {
                "cleanup_takeover" => {
                    c.insert("cleanup_takeover");
                    if let Some(w) = e.str("worker") {
                        locked_by.insert(w, &e.node);
                    }
                }
                "cleanup_locked" => {
                    if let Some(w) = e.str("worker") {
                        locked_by.insert(w, &e.node);
                    }
                }
                "node_crash" => {
                    for (w, n) in &locked_by {
                        if *n == e.node {
                            crashed_cleaners.insert((w, n));
                        }
                    }
                }
                "worker_cleaned" => {
                    if let Some(w) = e.str("worker") {
                        if crashed_cleaners.iter().any(|(cw, cn)| *cw == w && *cn != e.node) {
                            c.insert("cleaner_crash_finished_by_another_node");
                        }
                        crashed_cleaners.retain(|(cw, _)| *cw != w);
                        locked_by.remove(w);
                    }
                }
                "orphan_requeued" => {
                    c.insert("orphan_requeued");
                }
                "stale_rejected" => {
                    c.insert("stale_attempt_rejected");
                }
                "redispatched" => {
                    c.insert("unacked_redispatched");
                }
                "fenced" => {
                    c.insert("worker_fenced");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        &[
            "cleanup_takeover",
            "cleaner_crash_finished_by_another_node",
            "orphan_requeued",
            "stale_attempt_rejected",
            "unacked_redispatched",
        ]
    }

    fn mutants(&self) -> &'static [Mutant] {
        &[Mutant::MP4, Mutant::MP6, Mutant::MP7, Mutant::MP8, Mutant::MP9, Mutant::MP10]
    }
}

const ASSIGN: [&str; 6] = ["dispatched", "requeued", "orphan_requeued", "redispatched", "assigned", "handed_back"];

impl PoolScenario {
    /// P1: every added (or started) job is completed by the end. P2: at most one recorded
    /// completion per job, and it is of the job's latest attempt.
    fn check_jobs(&self, events: &[Event]) -> Vec<Violation> {
        let mut v = Vec::new();
        let mut added: BTreeMap<&str, u64> = BTreeMap::new();
        let mut max_attempt: BTreeMap<&str, u64> = BTreeMap::new();
        let mut completed: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut tombstones: BTreeSet<&str> = BTreeSet::new();
        for e in events.iter().filter(|e| e.kind == "tombstones") {
            tombstones.extend(e.str("jobs").unwrap_or_default().split(',').filter(|j| !j.is_empty()));
        }
        for e in events {
            let Some(job) = e.str("job") else { continue };
            match e.kind.as_str() {
                "job_added" | "run_start" => {
                    added.entry(job).or_insert(e.t_us);
                }
                k if ASSIGN.contains(&k) || k == "started" => {
                    let a = max_attempt.entry(job).or_insert(0);
                    *a = (*a).max(e.u64("attempt").unwrap_or(0));
                }
                "completed" => {
                    let attempt = e.u64("attempt").unwrap_or(0);
                    if let Some((t, a)) = completed.insert(job, (e.t_us, attempt)) {
                        v.push(Violation::new(
                            "P2",
                            e.t_us,
                            format!("{job} completed twice (attempt {a} at {:.3}s, attempt {attempt})", t as f64 / 1e6),
                        ));
                    }
                }
                _ => {}
            }
        }
        for (job, (t, attempt)) in &completed {
            let max = max_attempt.get(job).copied().unwrap_or(0);
            if *attempt != max {
                v.push(Violation::new(
                    "P2",
                    *t,
                    format!("{job}: completion of attempt {attempt} recorded, but attempt {max} was assigned"),
                ));
            }
        }
        for (job, t) in added {
            if !completed.contains_key(job) && !tombstones.contains(job) {
                v.push(Violation::new("P1", t, format!("{job} was added but never completed (lost or stranded)")));
            }
        }
        v
    }

    /// P2: at most one running handler per job key, except the documented hand-off overlap
    /// (one clock-sleep granularity, 100 ms), not counting time the older runner was frozen.
    fn check_overlap(&self, plan: &FaultPlan, events: &[Event]) -> Vec<Violation> {
        if plan.beyond_drift_bound() {
            return Vec::new(); // local deadlines may be late by design; completions stay fenced
        }
        let mut runs: BTreeMap<String, Vec<(String, u64, Span)>> = BTreeMap::new(); // job → (node, attempt, span)
        let mut open: BTreeMap<(String, String, u64), u64> = BTreeMap::new(); // (node, job, attempt) → since
        let mut pauses: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        let mut pause_start: BTreeMap<String, u64> = BTreeMap::new();
        let end = events.last().map_or(0, |e| e.t_us);
        for e in events {
            match e.kind.as_str() {
                "run_start" => {
                    let key =
                        (e.node.clone(), e.str("job").unwrap_or_default().to_owned(), e.u64("attempt").unwrap_or(0));
                    open.insert(key, e.t_us);
                }
                "run_stop" => {
                    let key =
                        (e.node.clone(), e.str("job").unwrap_or_default().to_owned(), e.u64("attempt").unwrap_or(0));
                    if let Some(s) = open.remove(&key) {
                        runs.entry(key.1).or_default().push((key.0, key.2, Span { start: s, end: e.t_us }));
                    }
                }
                "node_crash" => {
                    // A node crashed while paused never resumes: its frozen time ends here.
                    if let Some(s) = pause_start.remove(&e.node) {
                        pauses.entry(e.node.clone()).or_default().push(Span { start: s, end: e.t_us });
                    }
                    let mine: Vec<_> = open.keys().filter(|k| k.0 == e.node).cloned().collect();
                    for k in mine {
                        if let Some(s) = open.remove(&k) {
                            runs.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end: e.t_us }));
                        }
                    }
                }
                "node_pause" => {
                    pause_start.insert(e.node.clone(), e.t_us);
                }
                "node_resume" => {
                    if let Some(s) = pause_start.remove(&e.node) {
                        pauses.entry(e.node.clone()).or_default().push(Span { start: s, end: e.t_us });
                    }
                }
                _ => {}
            }
        }
        for (k, s) in open {
            runs.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end }));
        }
        for (node, s) in pause_start {
            pauses.entry(node).or_default().push(Span { start: s, end });
        }
        let mut v = Vec::new();
        for (job, rs) in &runs {
            for (i, a) in rs.iter().enumerate() {
                for b in &rs[i + 1..] {
                    if let Some(o) = a.2.overlap(&b.2) {
                        let holes: Vec<Span> =
                            [&a.0, &b.0].iter().flat_map(|n| pauses.get(*n).cloned().unwrap_or_default()).collect();
                        let outside = o.len_outside(&holes);
                        if outside > 100_000 {
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
        }
        v
    }

    /// P3: no job is assigned to a worker whose own last keep-alive (store time) is older than
    /// the TTL at the moment of the decision.
    fn check_assignments(&self, events: &[Event]) -> Vec<Violation> {
        let mut beats: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for e in events.iter().filter(|e| e.kind == "keepalive") {
            if let (Some(w), Some(ms)) = (e.str("worker"), e.u64("ms")) {
                beats.entry(w).or_default().push(ms);
            }
        }
        for b in beats.values_mut() {
            b.sort_unstable();
        }
        let mut v = Vec::new();
        for e in events.iter().filter(|e| ASSIGN.contains(&e.kind.as_str())) {
            let (Some(w), Some(now)) = (e.str("worker"), e.u64("now_ms")) else { continue };
            if w.is_empty() {
                continue; // queued
            }
            let last = beats.get(w).and_then(|b| b.iter().rev().find(|&&ms| ms <= now).copied());
            if last.is_none_or(|l| now - l > self.ttl_ms) {
                v.push(Violation::new(
                    "P3",
                    e.t_us,
                    format!(
                        "{} assigned to {w}, whose last keep-alive was {} at store time {now}",
                        e.str("job").unwrap_or("?"),
                        last.map_or("never".to_owned(), |l| format!("{} ms old", now - l))
                    ),
                ));
            }
        }
        v
    }

    /// P4: after quiescence nothing of a deleted worker remains. P5: no pending entry outlives
    /// its deadline by more than the sweep period (plus slack), judged while nothing disturbs
    /// the sweepers, and always after quiescence.
    fn check_audits(&self, events: &[Event], heal_us: u64, end_us: u64) -> Vec<Violation> {
        let stable_us = heal_us + self.stable_from_ms() * 1000;
        let disturbed = disturbances(events, heal_us);
        let slack_ms = 3 * self.sweep_ms() + self.op_timeout().as_millis() as u64;
        let mut v = Vec::new();
        let mut final_stale: Option<&Event> = None;
        for e in events.iter().filter(|e| e.kind == "audit") {
            let overdue_ms = e.u64("overdue_ms").unwrap_or(0);
            if overdue_ms > slack_ms {
                let window = Span { start: e.t_us.saturating_sub((overdue_ms + 1000) * 1000), end: e.t_us + 1 };
                if e.t_us >= stable_us || !disturbed.iter().any(|d| d.overlap(&window).is_some()) {
                    v.push(Violation::new(
                        "P5",
                        e.t_us,
                        format!(
                            "pending entry of {} outlived its deadline by {overdue_ms} ms",
                            e.str("overdue_job").unwrap_or("?")
                        ),
                    ));
                }
            }
            if e.t_us >= stable_us && e.u64("stale_workers").unwrap_or(0) > 0 {
                final_stale.get_or_insert(e);
            }
        }
        if let Some(e) = final_stale {
            v.push(Violation::new(
                "P4",
                e.t_us,
                format!(
                    "after quiescence {} dead worker(s) still have state (e.g. {})",
                    e.u64("stale_workers").unwrap_or(0),
                    e.str("stale_example").unwrap_or("?")
                ),
            ));
        }
        if !events.iter().any(|e| e.kind == "audit" && e.t_us >= stable_us) && end_us > stable_us {
            v.push(Violation::new("P4", end_us, "no audit succeeded after quiescence"));
        }
        v.truncate(20);
        v
    }
}

/// Intervals during which a fault could keep sweepers from running on time.
fn disturbances(events: &[Event], heal_us: u64) -> Vec<Span> {
    let mut out = Vec::new();
    let mut since: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        let ms = |e: &Event| e.u64("ms").unwrap_or(0) * 1000;
        match e.kind.as_str() {
            "store_refusing" | "latency_spike" | "reply_loss" | "partition" => {
                out.push(Span { start: e.t_us, end: e.t_us + ms(e) + 1 })
            }
            "feed_disconnect" | "heal" => out.push(Span { start: e.t_us, end: e.t_us + 500_000 }),
            "store_crash" => {
                since.insert("store".into(), e.t_us);
            }
            "store_restart" => {
                let s = since.remove("store").unwrap_or(e.t_us);
                out.push(Span { start: s, end: e.t_us + 1 });
            }
            "node_pause" => {
                since.insert(e.node.clone(), e.t_us);
            }
            "node_resume" => {
                let s = since.remove(&e.node).unwrap_or(e.t_us);
                out.push(Span { start: s, end: e.t_us + 1 });
            }
            "clock_rate" | "clock_jump" => out.push(Span { start: e.t_us, end: heal_us + 1 }),
            _ => {}
        }
    }
    for (_, s) in since {
        out.push(Span { start: s, end: heal_us + 1 });
    }
    out
}

/// The cleanup lock admits one cleaner: no stale lock value is taken over twice.
fn check_locks(events: &[Event]) -> Vec<Violation> {
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events.iter().filter(|e| e.kind == "cleanup_takeover") {
        let (Some(w), Some(from)) = (e.str("worker"), e.str("from")) else { continue };
        if let Some(first) = seen.insert((w, from), &e.node) {
            v.push(Violation::new(
                "P2",
                e.t_us,
                format!(
                    "cleanup lock of {w} taken over from the same stale value by {first} and {}: two cleaners",
                    e.node
                ),
            ));
        }
    }
    v
}

/// P6: once a node's pool has stopped, nothing of it runs: every handler it started has
/// stopped, and no pool event comes from it until it starts again.
fn check_shutdown(events: &[Event]) -> Vec<Violation> {
    let mut stopped: BTreeSet<&str> = BTreeSet::new();
    let mut running: BTreeMap<&str, BTreeSet<(String, u64)>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node.as_str();
        match e.kind.as_str() {
            "node_start" | "node_crash" => {
                stopped.remove(node);
                running.remove(node);
            }
            "pool_exit" => {
                if let Some(r) = running.get(node).filter(|r| !r.is_empty()) {
                    let (job, a) = r.iter().next().cloned().unwrap_or_default();
                    v.push(Violation::new(
                        "P6",
                        e.t_us,
                        format!("{node}: pool stopped with handler {job}#{a} still running"),
                    ));
                }
                stopped.insert(node);
            }
            "run_start" | "run_stop" | "keepalive" | "started" | "completed" => {
                let key = (e.str("job").unwrap_or_default().to_owned(), e.u64("attempt").unwrap_or(0));
                if e.kind == "run_start" {
                    running.entry(node).or_default().insert(key);
                } else if e.kind == "run_stop" {
                    running.entry(node).or_default().remove(&key);
                }
                if stopped.contains(node) {
                    v.push(Violation::new(
                        "P6",
                        e.t_us,
                        format!("{node}: {} after its pool stopped (leaked task)", e.kind),
                    ));
                    stopped.remove(node);
                }
            }
            _ => {}
        }
    }
    v
}

/// pulse #61 as a fixed plan: close node 1, then close node 2 while it may be requeueing node
/// 1's jobs (at `offset_ms` after `ttl − 250 ms`, when its workers go stale and the sweepers
/// start cleaning); node 0 must finish every job.
pub fn pulse61_plan(seed: u64, ttl_ms: u64, offset_ms: u64) -> FaultPlan {
    let crash = |at_ms: u64, node: usize| crate::plan::Timed {
        at_ms,
        fault: crate::plan::Fault::NodeCrash { node, down_ms: 20_000 },
    };
    FaultPlan {
        seed,
        profile: crate::plan::Profile::Calm,
        enabled: vec![FaultKind::NodeCrash],
        heal_at_ms: 30_000,
        events: vec![crash(5_000, 1), crash(5_000 + ttl_ms.saturating_sub(250) + offset_ms, 2)],
    }
}
