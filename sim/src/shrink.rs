//! Shrinking a failing run to a minimal fault plan that still breaks the same invariant.
//!
//! A failing seed replays exactly, but its plan is whatever the swarm generator drew: a dozen
//! faults over 30 s, most of them irrelevant. Plans are independent of the scheduler seed, so a
//! plan can be edited and re-run: the shrinker drops faults (delta debugging, then one at a
//! time), shortens and moves their windows, lowers their rates, moves them onto fewer nodes,
//! and finally tries a few other scheduler seeds. A candidate is accepted only if its run
//! breaks the *same* invariant (by name) as the original and, when a mutant is on, the
//! unmutated core passes it; every accepted step is reported, and the work is bounded by
//! [`Limits::attempts_max`] runs.
//!
//! The heal instant is kept: scenarios are written for their fault window (the pool's
//! workload adds jobs until it ends), and a plan healed earlier breaks P1 with no bug at all.
//!
//! It works over `&dyn Scenario`, so any scenario (the built-in ones or a user's) can be shrunk.

use std::fmt;
use std::time::{Duration, Instant};

use keel::mutants::Mutant;

use crate::plan::{Fault, FaultKind, FaultPlan, Profile, Timed};
use crate::runner::{self, RunOutcome};
use crate::scenario::Scenario;

/// Bounds of one shrink.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most runs (the original not counted; a candidate that fails under a mutant costs a second,
    /// unmutated run); past it the best plan so far is kept.
    pub attempts_max: u32,
    /// Other scheduler seeds tried once the plan is minimal under the original one.
    pub other_seeds_max: u64,
    /// Shortest window a duration is shrunk to, ms.
    pub window_min_ms: u64,
}

/// Default bound on candidate runs of one shrink.
pub const ATTEMPTS_MAX_DEFAULT: u32 = 200;

impl Default for Limits {
    fn default() -> Self {
        Limits { attempts_max: ATTEMPTS_MAX_DEFAULT, other_seeds_max: 3, window_min_ms: 10 }
    }
}

/// One accepted step.
#[derive(Clone, Debug)]
pub struct Step {
    /// Candidate runs so far (this one included).
    pub attempt: u32,
    /// Which pass found it.
    pub pass: &'static str,
    /// What changed.
    pub what: String,
    /// Faults left.
    pub faults: usize,
    /// Scheduler seed of the accepted run.
    pub seed: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step (attempt {:>3}) {:<9} {:<2} faults, seed {}: {}",
            self.attempt, self.pass, self.faults, self.seed, self.what
        )
    }
}

/// The result of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The invariant every accepted run broke.
    pub invariant: &'static str,
    /// The seed the original failing run used.
    pub original_seed: u64,
    /// Faults of the original plan.
    pub original_faults: usize,
    /// Scheduler seed of the minimal run.
    pub seed: u64,
    /// The minimal plan.
    pub plan: FaultPlan,
    /// Every accepted step, in order.
    pub steps: Vec<Step>,
    /// Candidate runs made.
    pub attempts: u32,
    /// Whether [`Limits::attempts_max`] cut the search short (the plan may not be minimal).
    pub hit_limit: bool,
    /// Wall time of the whole shrink.
    pub wall: Duration,
}

impl Shrunk {
    /// The replay line of the minimal run, with its plan in `plan_file`.
    pub fn replay_line(&self, scenario: &str, mutant: Option<Mutant>, plan_file: &str) -> String {
        let m = mutant.map(|m| format!(" --mutant {m:?}")).unwrap_or_default();
        format!("cargo sim replay --scenario {scenario} --seed {}{m} --plan {plan_file}", self.seed)
    }
}

/// Why there is nothing to shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The run passes: no invariant to keep broken.
    Passed,
    /// The run does not break the invariant asked for.
    OtherInvariant {
        /// Asked for.
        wanted: String,
        /// Broken instead.
        broke: Vec<&'static str>,
    },
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Passed => f.write_str("the run passes: there is no failure to shrink"),
            ShrinkError::OtherInvariant { wanted, broke } => {
                write!(f, "the run does not break {wanted} (it breaks {})", broke.join(", "))
            }
        }
    }
}

/// Shrink the failing run of `scenario` under `seed` (its plan derived from the seed with
/// `profile`, or `plan`), keeping `invariant` broken (default: the run's first violation).
/// `on_step` sees every accepted step as it happens.
#[allow(clippy::too_many_arguments)]
pub fn shrink(
    scenario: &dyn Scenario,
    seed: u64,
    mutant: Option<Mutant>,
    profile: Profile,
    plan: Option<FaultPlan>,
    invariant: Option<&str>,
    limits: Limits,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Shrunk, ShrinkError> {
    let wall = Instant::now();
    let first = runner::run(scenario, seed, mutant, profile, plan);
    let Some(target) = pick_invariant(&first, invariant)? else { return Err(ShrinkError::Passed) };
    let mut s = Search {
        scenario,
        mutant,
        invariant: target,
        limits,
        attempts: 0,
        hit_limit: false,
        seed,
        plan: normalised(first.plan.clone()),
        violation_us: first_violation_us(&first, target),
        steps: Vec::new(),
        on_step,
    };
    s.run();
    Ok(Shrunk {
        invariant: target,
        original_seed: seed,
        original_faults: first.plan.events.len(),
        seed: s.seed,
        plan: s.plan,
        steps: s.steps,
        attempts: s.attempts,
        hit_limit: s.hit_limit,
        wall: wall.elapsed(),
    })
}

fn pick_invariant(out: &RunOutcome, wanted: Option<&str>) -> Result<Option<&'static str>, ShrinkError> {
    match wanted {
        None => Ok(out.violations.first().map(|v| v.invariant)),
        Some(w) => match out.violations.iter().find(|v| v.invariant == w) {
            Some(v) => Ok(Some(v.invariant)),
            None if out.passed() => Err(ShrinkError::Passed),
            None => Err(ShrinkError::OtherInvariant {
                wanted: w.to_owned(),
                broke: out
                    .violations
                    .iter()
                    .map(|v| v.invariant)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            }),
        },
    }
}

fn first_violation_us(out: &RunOutcome, invariant: &str) -> u64 {
    out.violations.iter().filter(|v| v.invariant == invariant).map(|v| v.t_us).min().unwrap_or(u64::MAX)
}

/// The plan with its events in time order and `enabled` listing exactly the kinds it still has.
fn normalised(mut plan: FaultPlan) -> FaultPlan {
    plan.events.sort_by_key(|e| e.at_ms);
    // The knobs have no event: the plan keeps those it had (dropping one is its own step).
    let knobs = plan.enabled.iter().copied().filter(|k| FaultPlan::knob(*k));
    let mut kinds: Vec<FaultKind> = plan.events.iter().map(|e| kind_of(&e.fault)).chain(knobs).collect();
    kinds.sort();
    kinds.dedup();
    plan.enabled = kinds;
    plan
}

/// The generator's kind of a fault.
pub fn kind_of(f: &Fault) -> FaultKind {
    use crate::plan::Direction;
    match f {
        Fault::StoreCrash { data_loss: false, .. } => FaultKind::StoreCrash,
        Fault::StoreCrash { data_loss: true, .. } => FaultKind::StoreDataLoss,
        Fault::StoreRollback { .. } => FaultKind::StoreRollback,
        Fault::StoreUnavailable { .. } => FaultKind::StoreUnavailable,
        Fault::LatencySpike { .. } => FaultKind::LatencySpike,
        Fault::ReplyLoss { .. } => FaultKind::ReplyLoss,
        Fault::FeedDisconnect => FaultKind::FeedDisconnect,
        Fault::Partition { dir: Direction::Both, .. } => FaultKind::Partition,
        Fault::Partition { .. } => FaultKind::PartitionOneWay,
        Fault::NodeCrash { .. } => FaultKind::NodeCrash,
        Fault::NodePause { .. } => FaultKind::NodePause,
        Fault::NodeRestart { .. } => FaultKind::NodeRestart,
        Fault::ClockRate { beyond: false, .. } => FaultKind::ClockDrift,
        Fault::ClockRate { beyond: true, .. } => FaultKind::ClockDriftBeyond,
        Fault::ClockJump { .. } => FaultKind::ClockJump,
        Fault::ReplyDelay { .. } => FaultKind::ReplyDelay,
        Fault::NodeLatency { .. } => FaultKind::NodeLatency,
        Fault::NodePartition { .. } => FaultKind::NodePartition,
        Fault::NetworkLatency { .. } => FaultKind::NetworkLatency,
        Fault::ConsumerStall { .. } => FaultKind::ConsumerStall,
        Fault::AccessDenied { .. } => FaultKind::AccessDenied,
    }
}

/// How long a fault lasts once injected, ms (0: instantaneous; clock rates last to the heal).
pub fn duration_ms(f: &Fault) -> Option<u64> {
    match *f {
        Fault::StoreCrash { down_ms, .. }
        | Fault::StoreRollback { down_ms }
        | Fault::NodeCrash { down_ms, .. }
        | Fault::NodeRestart { down_ms, .. } => Some(down_ms),
        Fault::StoreUnavailable { ms }
        | Fault::LatencySpike { ms, .. }
        | Fault::ReplyLoss { ms, .. }
        | Fault::Partition { ms, .. }
        | Fault::NodePartition { ms, .. }
        | Fault::NetworkLatency { ms, .. }
        | Fault::NodePause { ms, .. }
        | Fault::ReplyDelay { ms, .. }
        | Fault::NodeLatency { ms, .. }
        | Fault::AccessDenied { ms, .. } => Some(ms),
        // A stall lasts as the workload says (its current unit of work): counted as instantaneous.
        Fault::FeedDisconnect | Fault::ClockJump { .. } | Fault::ConsumerStall { .. } => Some(0),
        Fault::ClockRate { .. } => None,
    }
}

/// The node a fault targets, if it targets one.
pub fn node_of(f: &Fault) -> Option<usize> {
    match *f {
        Fault::Partition { node, .. }
        | Fault::NodeCrash { node, .. }
        | Fault::NodePause { node, .. }
        | Fault::NodeRestart { node, .. }
        | Fault::ClockRate { node, .. }
        | Fault::ClockJump { node, .. }
        | Fault::NodeLatency { node, .. }
        | Fault::ConsumerStall { node }
        | Fault::AccessDenied { node, .. } => Some(node),
        _ => None,
    }
}

fn with_node(f: &Fault, to: usize) -> Fault {
    let mut f = f.clone();
    match &mut f {
        Fault::Partition { node, .. }
        | Fault::NodeCrash { node, .. }
        | Fault::NodePause { node, .. }
        | Fault::NodeRestart { node, .. }
        | Fault::ClockRate { node, .. }
        | Fault::ClockJump { node, .. }
        | Fault::NodeLatency { node, .. }
        | Fault::ConsumerStall { node }
        | Fault::AccessDenied { node, .. } => *node = to,
        _ => {}
    }
    f
}

/// Smaller versions of one fault, most aggressive first: a shorter window, a lower rate.
fn smaller(f: &Fault, min_ms: u64) -> Vec<(Fault, String)> {
    let half = |v: u64| (v / 2).max(min_ms);
    let mut out = Vec::new();
    let mut push = |g: Fault, what: String| {
        if g != *f {
            out.push((g, what));
        }
    };
    match f.clone() {
        Fault::StoreCrash { down_ms, data_loss } => {
            push(
                Fault::StoreCrash { down_ms: half(down_ms), data_loss },
                format!("down {down_ms} → {} ms", half(down_ms)),
            );
            if data_loss {
                push(Fault::StoreCrash { down_ms, data_loss: false }, "data kept across the crash".into());
            }
        }
        Fault::StoreRollback { down_ms } => {
            push(Fault::StoreRollback { down_ms: half(down_ms) }, format!("down {down_ms} → {} ms", half(down_ms)));
            push(Fault::StoreCrash { down_ms, data_loss: false }, "data kept across the crash".into());
        }
        Fault::StoreUnavailable { ms } => {
            push(Fault::StoreUnavailable { ms: half(ms) }, format!("{ms} → {} ms", half(ms)))
        }
        Fault::AccessDenied { node, ms } => {
            push(Fault::AccessDenied { node, ms: half(ms) }, format!("{ms} → {} ms", half(ms)))
        }
        Fault::NodePartition { a, b, ms } => {
            push(Fault::NodePartition { a, b, ms: half(ms) }, format!("{ms} → {} ms", half(ms)))
        }
        Fault::NetworkLatency { ms, extra_ms } => {
            push(Fault::NetworkLatency { ms: half(ms), extra_ms }, format!("{ms} → {} ms", half(ms)));
            let e = (extra_ms / 2).max(1);
            push(Fault::NetworkLatency { ms, extra_ms: e }, format!("network latency {extra_ms} → {e} ms"));
        }
        Fault::LatencySpike { ms, extra_ms } => {
            push(Fault::LatencySpike { ms: half(ms), extra_ms }, format!("{ms} → {} ms", half(ms)));
            let e = (extra_ms / 2).max(1);
            push(Fault::LatencySpike { ms, extra_ms: e }, format!("extra latency {extra_ms} → {e} ms"));
        }
        Fault::ReplyLoss { ms, pct } => {
            push(Fault::ReplyLoss { ms: half(ms), pct }, format!("{ms} → {} ms", half(ms)));
            let p = (pct / 2).max(1);
            push(Fault::ReplyLoss { ms, pct: p }, format!("reply loss {pct} → {p} %"));
        }
        Fault::FeedDisconnect | Fault::ConsumerStall { .. } => {}
        Fault::Partition { node, dir, ms } => {
            push(Fault::Partition { node, dir, ms: half(ms) }, format!("{ms} → {} ms", half(ms)));
        }
        Fault::NodeCrash { node, down_ms } => {
            push(Fault::NodeCrash { node, down_ms: half(down_ms) }, format!("down {down_ms} → {} ms", half(down_ms)));
        }
        Fault::NodePause { node, ms } => {
            push(Fault::NodePause { node, ms: half(ms) }, format!("{ms} → {} ms", half(ms)))
        }
        Fault::NodeRestart { node, down_ms } => {
            push(Fault::NodeRestart { node, down_ms: half(down_ms) }, format!("down {down_ms} → {} ms", half(down_ms)));
        }
        Fault::ClockRate { node, rate, beyond: false } => {
            // Halve the drift, rounded to 1 ppm so the plan stays readable.
            let r = ((1.0 + (rate - 1.0) / 2.0) * 1e6).round() / 1e6;
            if (r - 1.0).abs() >= 1e-6 {
                push(Fault::ClockRate { node, rate: r, beyond: false }, format!("clock rate {rate} → {r}"));
            }
        }
        // Beyond the bound by design: moving it toward 1.0 would change what it tests.
        Fault::ClockRate { beyond: true, .. } => {}
        Fault::ReplyDelay { ms, delay_ms } => {
            push(Fault::ReplyDelay { ms: half(ms), delay_ms }, format!("{ms} → {} ms", half(ms)));
            let d = (delay_ms / 2).max(1);
            push(Fault::ReplyDelay { ms, delay_ms: d }, format!("reply delay {delay_ms} → {d} ms"));
        }
        Fault::NodeLatency { node, ms, to_ms, from_ms } => {
            push(Fault::NodeLatency { node, ms: half(ms), to_ms, from_ms }, format!("{ms} → {} ms", half(ms)));
            let (t, f) = (to_ms / 2, from_ms / 2);
            push(Fault::NodeLatency { node, ms, to_ms: t, from_ms }, format!("request delay {to_ms} → {t} ms"));
            push(Fault::NodeLatency { node, ms, to_ms, from_ms: f }, format!("reply delay {from_ms} → {f} ms"));
        }
        Fault::ClockJump { node, delta_ms } => {
            let d = delta_ms / 2;
            if d != 0 {
                push(Fault::ClockJump { node, delta_ms: d }, format!("clock jump {delta_ms} → {d} ms"));
            }
        }
    }
    out
}

struct Search<'a, 'b> {
    scenario: &'a dyn Scenario,
    mutant: Option<Mutant>,
    invariant: &'static str,
    limits: Limits,
    attempts: u32,
    hit_limit: bool,
    seed: u64,
    plan: FaultPlan,
    violation_us: u64,
    steps: Vec<Step>,
    on_step: &'b mut dyn FnMut(&Step),
}

impl Search<'_, '_> {
    /// One more run, if the budget allows.
    fn run_one(&mut self, seed: u64, mutant: Option<Mutant>, plan: &FaultPlan) -> Option<RunOutcome> {
        if self.attempts >= self.limits.attempts_max {
            self.hit_limit = true;
            return None;
        }
        self.attempts += 1;
        Some(runner::run(self.scenario, seed, mutant, plan.profile, Some(plan.clone())))
    }

    /// Whether `plan` under `seed` still breaks the invariant — and, when a mutant is on,
    /// whether the unmutated core passes it: a plan that breaks the scenario's own assumptions
    /// (the same invariant fails without the bug) would make a regression entry that can never
    /// pass. False once out of attempts.
    fn fails(&mut self, seed: u64, plan: &FaultPlan) -> bool {
        let Some(out) = self.run_one(seed, self.mutant, plan) else { return false };
        if !out.violations.iter().any(|v| v.invariant == self.invariant) {
            return false;
        }
        if self.mutant.is_some() && !self.run_one(seed, None, plan).is_some_and(|o| o.passed()) {
            return false;
        }
        self.violation_us = first_violation_us(&out, self.invariant);
        true
    }

    /// Try `plan` under `seed`; keep it if it still fails.
    fn try_accept(&mut self, pass: &'static str, seed: u64, plan: FaultPlan, what: impl FnOnce() -> String) -> bool {
        let plan = normalised(plan);
        if plan == self.plan && seed == self.seed {
            return false;
        }
        if !self.fails(seed, &plan) {
            return false;
        }
        self.plan = plan;
        self.seed = seed;
        let step = Step { attempt: self.attempts, pass, what: what(), faults: self.plan.events.len(), seed };
        (self.on_step)(&step);
        self.steps.push(step);
        true
    }

    fn out_of_attempts(&self) -> bool {
        self.attempts >= self.limits.attempts_max
    }

    fn run(&mut self) {
        self.drop_all(self.seed);
        self.drop_knobs();
        self.drop_after_violation();
        loop {
            let before = (self.plan.clone(), self.seed);
            self.ddmin();
            self.simplify();
            if (self.plan.clone(), self.seed) == before && !self.other_seeds() {
                break;
            }
            if self.out_of_attempts() {
                break;
            }
        }
    }

    fn without(&self, drop: impl Fn(usize, &Timed) -> bool) -> FaultPlan {
        let mut p = self.plan.clone();
        p.events = self.plan.events.iter().enumerate().filter(|(i, e)| !drop(*i, e)).map(|(_, e)| e.clone()).collect();
        p
    }

    fn drop_all(&mut self, seed: u64) -> bool {
        if self.plan.events.is_empty() {
            return false;
        }
        let n = self.plan.events.len();
        let p = self.without(|_, _| true);
        self.try_accept("drop", seed, p, || format!("dropped all {n} faults"))
    }

    /// Each run-wide knob the failure does not need is turned off (a world closer to the
    /// default one to read).
    fn drop_knobs(&mut self) {
        let knobs: Vec<FaultKind> = self.plan.enabled.iter().copied().filter(|k| FaultPlan::knob(*k)).collect();
        for k in knobs {
            let mut p = self.plan.clone();
            p.enabled.retain(|e| *e != k);
            self.try_accept("knob", self.seed, p, || format!("turned the knob {k:?} off"));
        }
    }

    /// Faults injected after the invariant broke cannot have caused it.
    fn drop_after_violation(&mut self) {
        let cut_ms = self.violation_us / 1000 + 1;
        let late = self.plan.events.iter().filter(|e| e.at_ms > cut_ms).count();
        if late == 0 || late == self.plan.events.len() {
            return;
        }
        let p = self.without(|_, e| e.at_ms > cut_ms);
        self.try_accept("drop", self.seed, p, || {
            format!("dropped {late} faults injected after the violation at {cut_ms} ms")
        });
    }

    /// Delta debugging (Zeller's ddmin, complements only): remove chunks of halving size.
    fn ddmin(&mut self) {
        let mut chunks = 2usize;
        while self.plan.events.len() >= 2 && !self.out_of_attempts() {
            let n = self.plan.events.len();
            let size = n.div_ceil(chunks.min(n));
            let mut removed = false;
            let mut start = 0;
            while start < n {
                let end = (start + size).min(n);
                let p = self.without(|i, _| (start..end).contains(&i));
                let what = || format!("dropped faults {}..{} of {n}", start + 1, end);
                if self.try_accept("ddmin", self.seed, p, what) {
                    removed = true;
                    break;
                }
                start = end;
                if self.out_of_attempts() {
                    return;
                }
            }
            if removed {
                chunks = (chunks - 1).max(2);
            } else if size == 1 {
                break;
            } else {
                chunks = (chunks * 2).min(n);
            }
        }
        if self.plan.events.len() == 1 {
            self.drop_all(self.seed);
        }
    }

    /// Shorter windows, lower rates, earlier starts, fewer distinct nodes: each fault in turn,
    /// each change repeated while it is accepted.
    fn simplify(&mut self) {
        for i in 0..self.plan.events.len() {
            if i >= self.plan.events.len() || self.out_of_attempts() {
                return;
            }
            // Smaller versions of the fault.
            'fault: loop {
                for (g, what) in smaller(&self.plan.events[i].fault, self.limits.window_min_ms) {
                    let mut p = self.plan.clone();
                    p.events[i].fault = g;
                    let label = format!("fault {} ({}): {what}", i + 1, kind_name(&self.plan.events[i].fault));
                    if self.try_accept("shrink", self.seed, p, || label) {
                        continue 'fault;
                    }
                }
                break;
            }
            // Earlier: halfway to the previous fault (the order of faults is kept).
            loop {
                let at = self.plan.events[i].at_ms;
                let floor = if i == 0 { 0 } else { self.plan.events[i - 1].at_ms };
                let to = floor + (at - floor) / 2;
                if to >= at || at - to < self.limits.window_min_ms {
                    break;
                }
                let mut p = self.plan.clone();
                p.events[i].at_ms = to;
                let label = format!("fault {} ({}): at {at} → {to} ms", i + 1, kind_name(&self.plan.events[i].fault));
                if !self.try_accept("move", self.seed, p, || label) {
                    break;
                }
            }
            // Onto a node another fault already uses, or node 0: fewer nodes involved.
            if let Some(node) = node_of(&self.plan.events[i].fault) {
                let mut targets: Vec<usize> =
                    self.plan.events.iter().filter_map(|e| node_of(&e.fault)).filter(|&n| n < node).collect();
                targets.push(0);
                targets.sort_unstable();
                targets.dedup();
                for to in targets.into_iter().filter(|&t| t < node) {
                    let mut p = self.plan.clone();
                    p.events[i].fault = with_node(&self.plan.events[i].fault, to);
                    let label =
                        format!("fault {} ({}): node n{node} → n{to}", i + 1, kind_name(&self.plan.events[i].fault));
                    if self.try_accept("node", self.seed, p, || label) {
                        break;
                    }
                }
            }
        }
    }

    /// Under a few other scheduler seeds, try the plan without each fault in turn.
    fn other_seeds(&mut self) -> bool {
        if self.plan.events.is_empty() {
            return false;
        }
        for k in 1..=self.limits.other_seeds_max {
            let seed = self.seed.wrapping_add(k);
            if self.drop_all(seed) {
                return true;
            }
            for i in 0..self.plan.events.len() {
                if self.out_of_attempts() {
                    return false;
                }
                let n = self.plan.events.len();
                let p = self.without(|j, _| j == i);
                let label = format!("dropped fault {} of {n} under scheduler seed {seed}", i + 1);
                if self.try_accept("seed", seed, p, || label) {
                    return true;
                }
            }
        }
        false
    }
}

fn kind_name(f: &Fault) -> String {
    format!("{:?}", kind_of(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan keeps its knobs through the shrinker's normalising (they have no event to be
    /// listed by), and lists only the kinds of the faults it still has.
    #[test]
    fn normalising_keeps_the_knobs_and_drops_the_kinds_left_without_a_fault() {
        let plan = FaultPlan {
            seed: 1,
            profile: Profile::Swarm,
            enabled: vec![FaultKind::StoreCrash, FaultKind::ReplyLoss, FaultKind::SmallBuffers],
            heal_at_ms: 1000,
            events: vec![Timed { at_ms: 5, fault: Fault::ReplyLoss { ms: 10, pct: 50 } }],
        };
        assert_eq!(normalised(plan).enabled, [FaultKind::ReplyLoss, FaultKind::SmallBuffers]);
    }
}
