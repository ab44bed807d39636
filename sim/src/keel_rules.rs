//! keel's rules judged from keel's own typed events alone: what any run that uses a part gets
//! for free, a user's service through the harness as much as keel's own scenarios.

use std::collections::BTreeMap;
use std::time::Duration;

use keel::observe::{CompleterEvent, PoolEvent, RmapEvent};

use crate::check::{Span, Violation};
use crate::history::{Event, Who, WorldEv, plain};
use crate::scenario::RunView;
use crate::timeline::Timeline;

/// The documented hand-off (docs/pool.md): a fenced or cleaned-up worker's handler may still
/// run for one clock-sleep granularity after the next attempt started elsewhere.
pub const HANDOFF_US: u64 = 100_000;

/// Every handler run of every job: job → (node, attempt, span). A run still going when its node
/// crashed ends at the crash; one still going at the end of the run ends there.
pub struct HandlerRuns<'a> {
    by_job: BTreeMap<&'a str, Vec<(Who, u64, Span)>>,
}

impl<'a> HandlerRuns<'a> {
    /// Runs from `events`: `start` and `stop` say which events begin and end a run of
    /// (job, attempt) on the event's node.
    pub fn collect(
        events: &'a [Event],
        end_us: u64,
        start: impl Fn(&'a Event) -> Option<(&'a str, u64)>,
        stop: impl Fn(&'a Event) -> Option<(&'a str, u64)>,
    ) -> Self {
        let mut by_job: BTreeMap<&str, Vec<(Who, u64, Span)>> = BTreeMap::new();
        let mut open: BTreeMap<(Who, &str, u64), u64> = BTreeMap::new(); // (node, job, attempt) → since
        for e in events {
            if let Some((job, attempt)) = start(e) {
                open.insert((e.node, job, attempt), e.t_us);
            } else if let Some((job, attempt)) = stop(e) {
                if let Some(s) = open.remove(&(e.node, job, attempt)) {
                    by_job.entry(job).or_default().push((e.node, attempt, Span { start: s, end: e.t_us }));
                }
            } else if matches!(e.world(), Some(WorldEv::NodeCrash {})) {
                let mine: Vec<_> = open.keys().filter(|k| k.0 == e.node).copied().collect();
                for k in mine {
                    if let Some(s) = open.remove(&k) {
                        by_job.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end: e.t_us }));
                    }
                }
            }
        }
        for (k, s) in open {
            by_job.entry(k.1).or_default().push((k.0, k.2, Span { start: s, end: end_us }));
        }
        HandlerRuns { by_job }
    }

    /// P2: at most one running handler per job, except `handoff_us` of overlap, not counting
    /// time either runner's node was frozen (paused or crashed: it runs nothing meanwhile).
    pub fn overlaps(&self, timeline: &Timeline, handoff_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        for (job, rs) in &self.by_job {
            for (i, a) in rs.iter().enumerate() {
                for b in &rs[i + 1..] {
                    let Some(o) = a.2.overlap(&b.2) else { continue };
                    let holes: Vec<Span> = timeline.frozen(a.0).chain(timeline.frozen(b.0)).collect();
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

/// P2 over keel's pool events (`Started` to `HandlerReturned`). Runs whose clocks left the drift
/// bound are not judged: local deadlines may then be late by design (completions stay fenced).
pub fn pool_handlers_overlap(run: &RunView<'_>) -> Vec<Violation> {
    if run.plan.beyond_drift_bound() {
        return Vec::new();
    }
    HandlerRuns::collect(
        run.events,
        run.end_us,
        |e| match e.pool() {
            Some(PoolEvent::Started { job, attempt, .. }) => Some((plain(job), *attempt)),
            _ => None,
        },
        |e| match e.pool() {
            Some(PoolEvent::HandlerReturned { job, attempt, .. }) => Some((plain(job), *attempt)),
            _ => None,
        },
    )
    .overlaps(run.timeline, HANDOFF_US)
}

/// P1 over keel's pool events: every job keel took in (`Dispatched`) is completed by `within`
/// after the later of its dispatch and the heal. Jobs whose deadline falls after the run's end
/// are not judged; runs with store data loss are not judged (the jobs went with the data).
pub fn pool_jobs_lost(run: &RunView<'_>, within: Duration) -> Vec<Violation> {
    use crate::plan::Fault;
    if run.plan.has(|f| matches!(f, Fault::StoreCrash { data_loss: true, .. })) {
        return Vec::new();
    }
    let within_us = u64::try_from(within.as_micros()).unwrap_or(u64::MAX);
    let mut dispatched: BTreeMap<&str, u64> = BTreeMap::new();
    let mut completed: BTreeMap<&str, u64> = BTreeMap::new();
    for e in run.events {
        match e.pool() {
            Some(PoolEvent::Dispatched { job, .. }) => {
                dispatched.entry(plain(job)).or_insert(e.t_us);
            }
            Some(PoolEvent::Completed { job, .. }) => {
                completed.entry(plain(job)).or_insert(e.t_us);
            }
            _ => {}
        }
    }
    let mut v = Vec::new();
    for (job, t) in dispatched {
        let deadline = t.max(run.heal_us).saturating_add(within_us);
        if deadline > run.end_us || completed.get(job).is_some_and(|&c| c <= deadline) {
            continue;
        }
        v.push(Violation::new(
            "P1",
            deadline,
            format!("{job} dispatched at {:.3}s was not completed within {within:?} of the heal", t as f64 / 1e6),
        ));
    }
    v
}

/// V3 and V4 over keel's completer events: a stop that began after the heal (the store
/// healthy) reports nothing unflushed or undelivered (V3); a stop that reports its bound reached
/// took at least that bound since its drain began (V4).
pub fn completer_drains(run: &RunView<'_>) -> Vec<Violation> {
    // A node's clock that jumps or runs fast reaches a local deadline early in simulated time:
    // V4 is judged in runs whose clocks only drift within the configured bound.
    use crate::plan::Fault;
    let clocks_tame = !run.plan.beyond_drift_bound() && !run.plan.has(|f| matches!(f, Fault::ClockJump { .. }));
    // Within the bound a clock may still run fast: its deadline comes at bound / rate.
    let fastest = run
        .plan
        .events
        .iter()
        .filter_map(|t| match t.fault {
            Fault::ClockRate { rate, .. } => Some(rate),
            _ => None,
        })
        .fold(1.0f64, f64::max);
    // (node, completer, run) → (drain began, its bound in µs)
    let mut draining: BTreeMap<(Who, &str, u64), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match e.completer() {
            Some(CompleterEvent::DrainStarted { completer, run: r, bound_ms, .. }) => {
                draining.insert((e.node, plain(completer), *r), (e.t_us, bound_ms.saturating_mul(1000)));
            }
            Some(CompleterEvent::StopDeadline { completer, run: r, .. }) => {
                let key = (e.node, plain(completer), *r);
                if let Some(&(began, bound_us)) = draining.get(&key)
                    && clocks_tame
                    && ((e.t_us - began) as f64) < bound_us as f64 / fastest
                {
                    v.push(Violation::new(
                        "V4",
                        e.t_us,
                        format!(
                            "{}: completer {} run {}: the stop reported its bound ({} ms) reached {:.3}s after the drain began",
                            e.node,
                            key.1,
                            key.2,
                            bound_us / 1000,
                            (e.t_us - began) as f64 / 1e6
                        ),
                    ));
                }
            }
            Some(CompleterEvent::EventsClosed { completer, run: r, unflushed, undelivered, .. }) => {
                let key = (e.node, plain(completer), *r);
                if let Some((began, _)) = draining.remove(&key)
                    && began >= run.heal_us
                    && unflushed + undelivered > 0
                {
                    v.push(Violation::new(
                        "V3",
                        e.t_us,
                        format!(
                            "{}: completer {} run {}: a stop begun with the store healthy reported {unflushed} unflushed and {undelivered} undelivered",
                            e.node, key.1, key.2
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
/// replica has applied the write's revision. Judged per node and map.
pub fn rmap_revisions<'a>(events: &'a [Event], read: impl Fn(&'a Event) -> Option<(&'a str, u64)>) -> Vec<Violation> {
    let mut losses = 0u64; // data-losing store crashes so far
    // (node, map) → (revision, data losses when it last loaded a snapshot)
    let mut last: BTreeMap<(Who, &str), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let n = e.node;
        let (map, rev, what, resync) = match (e.world(), e.rmap()) {
            (Some(WorldEv::StoreCrash { data_loss: true }), _) => {
                losses += 1;
                continue;
            }
            (Some(WorldEv::NodeStart {}), _) => {
                last.retain(|k, _| k.0 != n);
                continue;
            }
            (_, Some(RmapEvent::WaitReturned { map, rev, local_rev })) => {
                if local_rev < rev {
                    v.push(Violation::new(
                        "R3",
                        e.t_us,
                        format!(
                            "{n}: set_and_wait returned its write's revision {rev} with the replica at {local_rev}"
                        ),
                    ));
                }
                (plain(map), *local_rev, "a returning set_and_wait", false)
            }
            (_, Some(RmapEvent::Applied { map, rev })) => (plain(map), *rev, "an applied change", false),
            (_, Some(RmapEvent::Joined { map, rev, .. })) => (plain(map), *rev, "a join", true),
            (_, Some(RmapEvent::Resynced { map, rev, .. })) => (plain(map), *rev, "a resync", true),
            _ => match read(e) {
                Some((map, rev)) => (map, rev, "a read", false),
                None => continue,
            },
        };
        let (prev, loaded_losses) = last.get(&(n, map)).copied().unwrap_or((0, losses));
        if rev < prev && !(resync && losses > loaded_losses) {
            v.push(Violation::new(
                "R2",
                e.t_us,
                format!("{n}: revision went back from {prev} to {rev} ({what}) without a data loss"),
            ));
        }
        last.insert((n, map), (rev, if resync { losses } else { loaded_losses }));
    }
    v.truncate(20);
    v
}
