//! The lease scenario: contenders for one lease guarding a fenced resource (SPEC §3, S1–S5).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::clock::Clock;
use keel::lease::{Guard, LeaseConfig, LeaseOwner};
use keel::mutants::Mutant;

use super::Scenario;
use crate::check::{Coverage, Span, Violation};
use crate::history::{Event, History};
use crate::plan::{Fault, FaultKind, FaultPlan, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

const LEASE: &str = "leader";

/// Lease timing used by the scenario (ms).
#[derive(Clone, Debug)]
pub struct LeaseScenario {
    /// Contenders.
    pub nodes: usize,
    /// Lease TTL.
    pub ttl_ms: u64,
    /// Fault window before the heal.
    pub window_ms: u64,
}

impl Default for LeaseScenario {
    fn default() -> Self {
        LeaseScenario { nodes: 4, ttl_ms: 1000, window_ms: 30_000 }
    }
}

impl LeaseScenario {
    fn config(&self, owner: &str) -> Option<LeaseConfig> {
        LeaseConfig::builder(LEASE, owner).ttl(Duration::from_millis(self.ttl_ms)).build().ok()
    }

    fn renew_ms(&self) -> u64 {
        self.ttl_ms / 3
    }
}

/// A resource that accepts a write only with a fence ≥ the highest it has seen.
struct FencedResource {
    max_fence: Mutex<u64>,
    history: History,
}

impl FencedResource {
    fn write(&self, node: &str, fence: u64) {
        let mut max = self.max_fence.lock().unwrap_or_else(|p| p.into_inner());
        let accepted = fence >= *max;
        if accepted {
            *max = fence;
        }
        self.history.record(
            node,
            "resource_write",
            &[("fence", fence.to_string()), ("accepted", accepted.to_string())],
        );
    }
}

async fn guarded_work(ctx: NodeCtx, resource: Arc<FencedResource>, guard: Guard) {
    while !guard.is_lost() {
        resource.write(&ctx.name, guard.fence());
        tokio::select! {
            biased; // fixed poll order: tokio's per-thread select RNG would break replay
            _ = guard.lost() => break,
            _ = ctx.clock.sleep(Duration::from_millis(100)) => {}
        }
    }
}

impl Scenario for LeaseScenario {
    fn name(&self) -> &'static str {
        "lease"
    }

    fn plan_spec(&self) -> PlanSpec {
        let drift_bound = self.config("x").map_or(0.1, |c| c.drift_bound());
        PlanSpec {
            nodes: self.nodes,
            kinds: FaultKind::ALL.iter().copied().filter(|k| *k != FaultKind::FeedDisconnect).collect(),
            window_ms: self.window_ms,
            unit_ms: self.ttl_ms,
            drift_bound,
        }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.ttl_ms / 4)
    }

    fn settle(&self, _plan: &FaultPlan) -> Duration {
        Duration::from_millis(self.stable_from_ms() + 2 * self.ttl_ms)
    }

    fn node_main(&self) -> NodeMain {
        let this = self.clone();
        let resource: Arc<Mutex<Option<Arc<FencedResource>>>> = Arc::new(Mutex::new(None));
        Arc::new(move |ctx: NodeCtx| {
            let this = this.clone();
            let resource = {
                let mut r = resource.lock().unwrap_or_else(|p| p.into_inner());
                r.get_or_insert_with(|| {
                    Arc::new(FencedResource { max_fence: Mutex::new(0), history: ctx.history.clone() })
                })
                .clone()
            };
            Box::pin(async move {
                let Some(cfg) = this.config(&ctx.name) else {
                    ctx.record("sim_error", &[("error", "invalid lease config".into())]);
                    return;
                };
                let store = ctx.store().await;
                // The node's other work under the same parent (Sequin's consumers): it ends only
                // when the node is stopped. Ending otherwise means the lease owner took its parent
                // down (S2), observed here rather than from anything the owner reports.
                let sibling = ctx.clone();
                tokio::spawn(async move {
                    sibling.shutdown.cancelled().await;
                    sibling.record("app_down", &[]);
                });
                let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
                let work_ctx = ctx.clone();
                let mut handle = LeaseOwner::new(store, cfg)
                    .with_clock(clock)
                    .with_parent(&ctx.shutdown)
                    .start(move |guard| guarded_work(work_ctx.clone(), resource.clone(), guard));
                match handle.join().await {
                    Ok(()) => ctx.record("owner_exit", &[]),
                    Err(e) => ctx.record("owner_crashed", &[("error", e.to_string())]),
                }
            })
        })
    }

    fn check(&self, plan: &FaultPlan, events: &[Event], heal_us: u64, end_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        let beliefs = Beliefs::from(events, end_us);
        v.extend(beliefs.violations.iter().cloned());
        // S1 (local belief): no two nodes believe at once, outside pauses, within the drift bound.
        if !plan.beyond_drift_bound() {
            for (i, a) in beliefs.intervals.iter().enumerate() {
                for b in &beliefs.intervals[i + 1..] {
                    if a.node == b.node {
                        continue;
                    }
                    if let Some(o) = a.span.overlap(&b.span) {
                        let holes: Vec<Span> = beliefs.paused(&a.node).chain(beliefs.paused(&b.node)).collect();
                        let outside = o.len_outside(&holes);
                        if outside > 1_000 {
                            v.push(Violation::new(
                                "S1",
                                o.start,
                                format!(
                                    "{} (fence {}) and {} (fence {}) both believed they held the lease for {:.3}s",
                                    a.node,
                                    a.fence,
                                    b.node,
                                    b.fence,
                                    outside as f64 / 1e6
                                ),
                            ));
                        }
                    }
                }
            }
        }
        // S3: after the heal, exactly one holder, with its work running, and no flapping.
        let stable_us = heal_us + self.stable_from_ms() * 1000;
        let window = Span { start: stable_us, end: end_us };
        let holders: Vec<&Interval> = beliefs.intervals.iter().filter(|i| i.span.overlap(&window).is_some()).collect();
        let covering: Vec<&&Interval> =
            holders.iter().filter(|i| i.span.start <= stable_us && i.span.end >= end_us && i.open).collect();
        if holders.len() != 1 || covering.len() != 1 {
            let who: Vec<String> = holders.iter().map(|i| format!("{}(fence {})", i.node, i.fence)).collect();
            v.push(Violation::new(
                "S3",
                stable_us,
                format!("expected exactly one stable holder after the heal, saw [{}]", who.join(", ")),
            ));
        } else if !beliefs.work_running.get(&covering[0].node).copied().unwrap_or(false) {
            v.push(Violation::new(
                "S3",
                stable_us,
                format!(
                    "{} holds the lease (fence {}) but its guarded work is not running",
                    covering[0].node, covering[0].fence
                ),
            ));
        }
        v.extend(self.stalls(events, stable_us, end_us));
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        let mut open: BTreeSet<&str> = BTreeSet::new();
        let mut crashed_holder = false;
        let mut failed_renew: BTreeSet<&str> = BTreeSet::new();
        for e in events {
            match e.kind.as_str() {
                "held" => {
                    if crashed_holder {
                        c.insert("takeover_after_crash");
                        crashed_holder = false;
                    }
                    open.insert(&e.node);
                }
                "lost" => {
                    if e.str("reason") == Some("deadline") {
                        c.insert("step_down_at_deadline");
                    }
                    open.remove(e.node.as_str());
                    failed_renew.remove(e.node.as_str());
                }
                "released" => {
                    open.remove(e.node.as_str());
                }
                "node_crash" if open.remove(e.node.as_str()) => crashed_holder = true,
                "quarantine_refusal" => {
                    c.insert("quarantine_refusal");
                }
                "renew_failed" => {
                    failed_renew.insert(&e.node);
                }
                "renewed" if failed_renew.remove(e.node.as_str()) => {
                    c.insert("renew_retried_then_succeeded");
                }
                "resource_write" if e.str("accepted") == Some("false") => {
                    c.insert("stale_fence_rejected");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        &[
            "step_down_at_deadline",
            "takeover_after_crash",
            "quarantine_refusal",
            "renew_retried_then_succeeded",
            "stale_fence_rejected",
        ]
    }

    fn mutants(&self) -> &'static [Mutant] {
        &[Mutant::MS1, Mutant::MS2, Mutant::MS3, Mutant::MS4, Mutant::MS5, Mutant::MS6, Mutant::MS7, Mutant::MS8]
    }
}

impl LeaseScenario {
    /// From the heal, time by which exactly one stable holder must exist: a stale key expires
    /// (ttl), a data-loss quarantine ends (ttl), a poll and a renewal pass, plus slack.
    fn stable_from_ms(&self) -> u64 {
        3 * self.ttl_ms + 2 * self.renew_ms() + 1000
    }

    /// Progress that heartbeats cannot fake: every live owner either renews (holder) or gets an
    /// answer to an acquisition attempt (others), at least every few periods.
    fn stalls(&self, events: &[Event], from_us: u64, end_us: u64) -> Vec<Violation> {
        let max_gap_us = 4 * self.renew_ms() * 1000;
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        let mut dead: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        for e in events {
            let progress = matches!(e.kind.as_str(), "renewed" | "acquire_refused" | "held" | "quarantined");
            match e.kind.as_str() {
                "node_start" => {
                    dead.remove(e.node.as_str());
                    last.insert(&e.node, e.t_us);
                }
                "node_crash" | "owner_crashed" | "owner_exit" => {
                    dead.insert(&e.node);
                }
                _ if progress => {
                    let prev = last.insert(&e.node, e.t_us).unwrap_or(e.t_us);
                    if e.t_us > from_us && e.t_us - prev.max(from_us) > max_gap_us && !dead.contains(e.node.as_str()) {
                        out.push(Violation::new(
                            "stall",
                            e.t_us,
                            format!("{} made no lease progress for {:.3}s", e.node, (e.t_us - prev) as f64 / 1e6),
                        ));
                    }
                }
                _ => {}
            }
        }
        for (node, t) in last {
            if !dead.contains(node) && end_us.saturating_sub(t.max(from_us)) > max_gap_us {
                out.push(Violation::new(
                    "stall",
                    end_us,
                    format!("{node} made no lease progress since {:.3}s", t as f64 / 1e6),
                ));
            }
        }
        out
    }
}

/// One node's belief that it holds a grant.
#[derive(Clone, Debug)]
struct Interval {
    node: String,
    fence: u64,
    span: Span,
    open: bool,
}

/// Belief intervals and the safety checks that need only one pass over the history.
struct Beliefs {
    intervals: Vec<Interval>,
    pauses: Vec<(String, Span)>,
    work_running: BTreeMap<String, bool>,
    violations: Vec<Violation>,
}

impl Beliefs {
    fn paused<'a>(&'a self, node: &'a str) -> impl Iterator<Item = Span> + 'a {
        self.pauses.iter().filter(move |(n, _)| n == node).map(|(_, s)| *s)
    }

    fn from(events: &[Event], end_us: u64) -> Beliefs {
        let mut b = Beliefs {
            intervals: Vec::new(),
            pauses: Vec::new(),
            work_running: BTreeMap::new(),
            violations: Vec::new(),
        };
        let mut open: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // node -> (fence, since)
        let mut pause_start: BTreeMap<String, u64> = BTreeMap::new();
        let mut max_fence = 0u64;
        let mut granted: BTreeSet<String> = BTreeSet::new();
        let mut stopping: BTreeSet<String> = BTreeSet::new();
        let close = |b: &mut Beliefs, open: &mut BTreeMap<String, (u64, u64)>, node: &str, t: u64| {
            if let Some((fence, since)) = open.remove(node) {
                b.intervals.push(Interval {
                    node: node.to_owned(),
                    fence,
                    span: Span { start: since, end: t },
                    open: false,
                });
            }
        };
        for e in events {
            let node = e.node.as_str();
            match e.kind.as_str() {
                "held" => {
                    close(&mut b, &mut open, node, e.t_us);
                    open.insert(node.to_owned(), (e.u64("fence").unwrap_or(0), e.t_us));
                }
                "lost" | "released" => close(&mut b, &mut open, node, e.t_us),
                "node_crash" => {
                    close(&mut b, &mut open, node, e.t_us);
                    b.work_running.insert(node.to_owned(), false);
                }
                "node_pause" => {
                    pause_start.insert(node.to_owned(), e.t_us);
                }
                "node_resume" => {
                    if let Some(s) = pause_start.remove(node) {
                        b.pauses.push((node.to_owned(), Span { start: s, end: e.t_us }));
                    }
                }
                "work_started" | "resource_write" => {
                    if e.kind == "work_started" {
                        b.work_running.insert(node.to_owned(), true);
                    }
                    let fence = e.u64("fence").unwrap_or(0);
                    if open.get(node).map(|(f, _)| *f) != Some(fence) {
                        b.violations.push(Violation::new(
                            "S4",
                            e.t_us,
                            format!("{node}: {} with fence {fence} while not holding it", e.kind),
                        ));
                    }
                }
                "work_stopped" => {
                    b.work_running.insert(node.to_owned(), false);
                }
                // S2 is judged from what the application observes, never from the owner's own
                // report: its owner returned an error, or its parent went down unasked.
                "owner_crashed" => {
                    b.violations.push(Violation::new(
                        "S2",
                        e.t_us,
                        format!("{node}: the lease owner returned a store error ({})", e.str("error").unwrap_or("?")),
                    ));
                }
                "node_stop" => {
                    stopping.insert(node.to_owned());
                }
                "node_start" => {
                    stopping.remove(node);
                }
                "app_down" if !stopping.contains(node) => {
                    b.violations.push(Violation::new(
                        "S2",
                        e.t_us,
                        format!("{node}: the lease owner's parent went down without a stop (supervisor cascade)"),
                    ));
                }
                "foreign_delete" => {
                    b.violations.push(Violation::new(
                        "S5",
                        e.t_us,
                        format!(
                            "{} deleted the lease held by {}",
                            e.str("by").unwrap_or("?"),
                            e.str("holder").unwrap_or("?")
                        ),
                    ));
                }
                "grant" => {
                    let token = e.str("token").unwrap_or_default().to_owned();
                    let fence = e.u64("fence").unwrap_or(0);
                    if granted.insert(token.clone()) {
                        if fence <= max_fence {
                            b.violations.push(Violation::new(
                                "S1",
                                e.t_us,
                                format!(
                                    "fence went backwards: grant to {token} has fence {fence} after fence {max_fence}"
                                ),
                            ));
                        }
                        max_fence = max_fence.max(fence);
                    }
                }
                _ => {}
            }
        }
        for (node, (fence, since)) in open {
            b.intervals.push(Interval { node, fence, span: Span { start: since, end: end_us }, open: true });
        }
        for (node, s) in pause_start {
            b.pauses.push((node, Span { start: s, end: end_us }));
        }
        b
    }
}

/// The Sequin outage (issue #2072) as a fixed plan: the store goes down for five TTLs while the
/// lease is held, then comes back with its data. The fix must step down before the TTL, never
/// crash, and end with exactly one holder.
pub fn sequin_outage_plan(seed: u64, ttl_ms: u64) -> FaultPlan {
    FaultPlan {
        seed,
        profile: crate::plan::Profile::Calm,
        enabled: vec![FaultKind::StoreCrash],
        heal_at_ms: 12 * ttl_ms,
        events: vec![crate::plan::Timed {
            at_ms: 4 * ttl_ms,
            fault: Fault::StoreCrash { down_ms: 5 * ttl_ms, data_loss: false },
        }],
    }
}
