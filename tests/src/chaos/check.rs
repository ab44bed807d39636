//! The checkers over the merged history, and the run's figures.
//!
//! Every rule the simulator also judges is **its code**, from `keel-checks`, run over the merged
//! history through [`View`] (keel's typed events as the processes recorded them, plus the runner's
//! facts: a process started, was killed or exited; Redis lost its data). What is here is the
//! real-world side: the gates, the figures, and the rules only a real run has (the dual-belief
//! bound with SIGSTOPped time left out, the classification of extra runs, convergence).
//!
//! - **F1** fence order at the resource (`keel_checks::resource_fence_order`, the simulator's
//!   `FencedResource` rule): no write accepted with a fence lower than one accepted before for
//!   the same key (the register enforces it; this re-checks its record).
//! - **S1 (fences)** grant order (`keel_checks::grant_order`): every grant (keel's `Held`) has a
//!   fence above every earlier grant's (a fence that goes back would be rejected by every
//!   resource: a lost holder).
//! - **S4** a process writes to the resource only with the fence of a grant it believes it holds
//!   at that instant.
//! - **dual belief**: two processes believing they hold the lease at the same `CLOCK_MONOTONIC`
//!   instant. Meaningful only because every process shares the machine's clock. A window's
//!   *active* length leaves out the time the stale believer was SIGSTOPped (a frozen process acts
//!   on nothing); an active window longer than [`DUAL_BELIEF_ACTIVE_MAX`] fails the run.
//! - **P1** no lost job (`keel_checks::jobs_lost`): every job the dispatcher dispatched completes
//!   by the end (after the final settle), as the pool-wide completion feed reports it.
//! - **runs twice**: every job started more than once, each extra start classified by the fault
//!   that explains it (docs/chaos.md); an unexplained one fails the run.
//! - **P17** (`keel_checks::redispatches_of_unacked_jobs`, keel's `Acked` and `Moved`): no attempt
//!   is both acknowledged by its worker and re-dispatched off it.
//! - **P2 overlap** (`keel_checks::pool_handler_runs(..).overlaps`, keel's `Started` to
//!   `HandlerReturned`): two runs of one job at once for longer than the hand-off
//!   (`keel_checks::HANDOFF_US`, docs/pool.md), frozen time left out, fails the run.
//! - **R2/R3** (`keel_checks::rmap_revisions`, keel's `WaitReturned`, `Applied`, `Joined`,
//!   `Resynced` and the workload's revision reads): `set_and_wait` returns only once the replica
//!   applied the write's revision; a replica's revision never goes back except by a resync after
//!   Redis lost its data. The caller also checks, right when `set_and_wait` returns, that its
//!   replica shows the value (`MapSet`), and every replica holds the same content at the end.
//! - panics, crashes (a child exiting with a failure on its own) and hung stops fail the run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use keel::observe::{Event as K, LeaseEvent, PoolEvent};
use keel_checks::{Entry, Span};

use super::history::{Ev, Line, View};
use super::plan::Fault;
use super::runner::{RunOutcome, SETTLE, TTL};

/// Longest tolerated *active* dual-belief window: a resumed or cut-off holder notices its local
/// deadline at its next timer tick; anything longer means a holder kept believing past it.
pub const DUAL_BELIEF_ACTIVE_MAX: Duration = Duration::from_millis(500);
/// The documented hand-off overlap of two runs of one job (docs/pool.md, P2): the simulator's.
pub const HANDOFF_MAX: Duration = Duration::from_micros(keel_checks::HANDOFF_US);

/// One dual-belief window.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// The believer with the lower fence (the stale one).
    pub stale: String,
    /// The stale fence.
    pub stale_fence: u64,
    /// The other believer.
    pub fresh: String,
    /// Its fence.
    pub fresh_fence: u64,
    /// Start, in ms since the history's first line.
    pub at_ms: f64,
    /// Length of the window.
    pub raw_ms: f64,
    /// Length without the time the stale believer was frozen.
    pub active_ms: f64,
}

/// The figures of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figures {
    /// The plan's seed.
    pub seed: u64,
    /// Fault cycles run.
    pub cycles: u32,
    /// The mutant switched on, if any.
    pub mutant: Option<String>,
    /// Cycles by fault kind.
    pub faults: BTreeMap<String, u32>,
    /// Jobs dispatched (first dispatch).
    pub jobs_dispatched: usize,
    /// Jobs whose completion the pool-wide feed reported.
    pub jobs_completed: usize,
    /// Dispatched jobs never completed (P1).
    pub jobs_lost: usize,
    /// Jobs dispatched again because the store had lost them.
    pub jobs_redispatched: usize,
    /// Handler runs started.
    pub runs: usize,
    /// Jobs started more than once.
    pub jobs_run_twice: usize,
    /// Extra starts (runs beyond the first, over every job).
    pub extra_runs: usize,
    /// Extra starts by explanation (docs/chaos.md names each).
    pub extra_runs_by_cause: BTreeMap<String, usize>,
    /// Two runs of one job at once past the hand-off.
    pub overlapping_runs: usize,
    /// P22 (the shared rule `keel_checks::pool_restarts_back_off`): a dead worker replaced sooner
    /// than half its slot's restart backoff, or later than the backoff past the scheduling slack.
    pub restart_violations: Vec<String>,
    /// P43 (the shared rule `keel_checks::runs_stop_with_their_worker`): a run that went on
    /// unstopped past its worker's fence or death, started on a fenced or dead worker, or
    /// outlived its worker.
    pub run_stop_violations: Vec<String>,
    /// P17 (the shared rule `keel_checks::redispatches_of_unacked_jobs`): an attempt both
    /// acknowledged by its worker and re-dispatched off it.
    pub redispatched_after_ack: usize,
    /// The longest overlap of two runs of one job (frozen time left out), ms.
    pub overlap_max_ms: f64,
    /// Writes the register accepted.
    pub writes_accepted: usize,
    /// Writes the register rejected (a stale fence: fencing at work).
    pub writes_rejected: usize,
    /// F1 violations.
    pub fence_violations: usize,
    /// Grants (`Held`).
    pub grants: usize,
    /// S1 (fences) violations: a grant not above every earlier grant.
    pub grant_order_violations: usize,
    /// S4: writes with a fence the writer did not believe it held at that instant.
    pub unbelieved_writes: usize,
    /// S12 and S13 (the shared rule `keel_checks::lease_attempts_on_time`): a lease owner's store
    /// attempt that started later than its timing allows, past a real machine's scheduling slack,
    /// or earlier than its waits' floor.
    pub lease_attempt_violations: Vec<String>,
    /// Dual-belief windows.
    pub dual_belief: Vec<Window>,
    /// `set_and_wait` calls that returned (rmap workload).
    pub map_writes: usize,
    /// R3 (keel's `WaitReturned`, the shared rule): returned with the replica behind the write.
    pub map_r3_violations: usize,
    /// R8 (the shared rule `keel_checks::rmap_waiters_wake`): a `set_and_wait` parked although its
    /// replica held its write, or left parked past the step that reached it.
    pub map_r8_violations: usize,
    /// R3 at the caller: returned before the local replica showed the value, with no data loss
    /// to explain it.
    pub map_writes_not_visible: usize,
    /// Returned before the replica showed the write, right after a data-losing restart.
    pub map_writes_not_visible_after_data_loss: usize,
    /// R2 (the shared rule): a replica's revision went back other than by a resync after a data
    /// loss (the first 20 are counted).
    pub map_revision_regressions: usize,
    /// R2 at the end: every replica's final (revision, digest) is the same.
    pub map_converged: bool,
    /// The replicas' final revision and entry count (when converged).
    pub map_final: Option<(u64, usize)>,
    /// Linearizability of the store's map operations (rmap processes record theirs), by the
    /// simulator's checker: histories (map × Redis lifetime, or key when a map's is too large)
    /// checked.
    pub lin_checked: u64,
    /// Map operations the processes recorded (invoked), checked or not.
    pub lin_recorded: u64,
    /// Operations in the checked histories.
    pub lin_ops: u64,
    /// Histories over the checker's operation or open-operation limits: counted, never passed.
    pub lin_skipped: u64,
    /// Histories whose search ran out of steps: counted, never passed.
    pub lin_over_budget: u64,
    /// Non-linearizable histories, in words.
    pub lin_violations: Vec<String>,
    /// Completions the completer accepted from its producers.
    pub completions_accepted: usize,
    /// Completion events the subscriber received.
    pub completions_delivered: usize,
    /// V3 (workload): accepted by a completer whose stop was clean, never delivered to its
    /// subscriber (overflow drops excepted: none here, the subscriber reads at once).
    pub completions_undelivered: usize,
    /// Completer stops that returned `Ok`.
    pub completer_stops_clean: usize,
    /// V1–V4 and V10 over keel's completer events (the shared rules), one line each.
    pub completer_violations: Vec<String>,
    /// Panics found in the children's stderr.
    pub panics: usize,
    /// Children that failed on their own.
    pub crashes: usize,
    /// Graceful stops past the bound.
    pub hung_stops: usize,
    /// History lines torn by a kill -9 (skipped).
    pub torn_lines: usize,
    /// Wall time of the run, s.
    pub wall_s: f64,
    /// Why the run fails (empty: it passes).
    pub failures: Vec<String>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Judge a merged history.
pub fn check(lines: &[Line], outcome: &RunOutcome, plan: &[Fault], seed: u64, mutant: Option<String>) -> Figures {
    let mut f = Figures { seed, cycles: u32::try_from(plan.len()).unwrap_or(u32::MAX), mutant, ..Figures::default() };
    for k in Fault::KINDS {
        f.faults.insert(k.to_owned(), 0);
    }
    for p in plan {
        *f.faults.entry(p.kind().to_owned()).or_default() += 1;
    }
    let views = View::of(lines);
    let end_us = views.last().map_or(0, |v| v.t_us());
    let frozen = frozen_spans(&views, end_us);
    let frozen_of = |n: &str| frozen.get(n).cloned().unwrap_or_default();

    // F1, from the register's own record, by the simulator's resource rule.
    let writes = views.iter().filter_map(|v| match &v.line().ev {
        Ev::RegWrite { key, writer, fence, accepted } => Some((v.t_us(), key.as_str(), *fence, writer, *accepted)),
        _ => None,
    });
    f.fence_violations = keel_checks::resource_fence_order(writes).len();
    for l in lines {
        if let Ev::RegWrite { accepted, .. } = &l.ev {
            *(if *accepted { &mut f.writes_accepted } else { &mut f.writes_rejected }) += 1;
        }
    }

    // S1 (fences): keel's grants, by the shared rule.
    f.grants = views.iter().filter(|v| matches!(v.lease(), Some(LeaseEvent::Held { .. }))).count();
    f.grant_order_violations = keel_checks::grant_order(&views).len();
    // S12, S13: each attempt when the owner's timing says (real clocks: rate 1, no jumps; late by
    // a loaded machine's scheduling slack, as V10's, SIGSTOPped time not counted; a timer never
    // fires early, so the floor's slack covers only the history's timestamps).
    let slack = (COMPLETER_STOP_HEARD_SLACK_US, FLOOR_SLACK_US);
    let clocks = || keel_checks::Clocks {
        rates: (1.0, 1.0),
        slacks: slack,
        frozen: |n: &&str| frozen_of(n),
        jumped: |_: &_, _, _| false,
    };
    let mut off = keel_checks::lease_attempts_on_time(&views, clocks());
    // S17: each grant and renewal believed for exactly the TTL less the margin from its send
    // (real clocks: no simulated drift for the margin to cover).
    off.extend(keel_checks::lease_beliefs_keep_their_margin(&views, 1.0));
    off.extend(keel_checks::lease_recoveries_follow_errors(&views));
    // E3: error summaries count exactly and keep their pace, by the same clocks.
    off.extend(keel_checks::lease_error_summaries_keep_count(&views, clocks()));
    // S18 and S19: each step-down names its cause and begins by its deadline, by the same clocks.
    off.extend(keel_checks::lease_losses_name_their_cause(&views, clocks()));
    // S20: work that ends by itself is handled as the owner's policy says, by the same clocks.
    off.extend(keel_checks::lease_work_restarts_follow_the_policy(&views, clocks()));
    off.extend(keel_checks::lease_work_ends_reported(&views));
    // S22: every store call ends by its op timeout, by the same clocks.
    off.extend(keel_checks::lease_calls_end_by_their_timeout(&views, clocks()));
    f.lease_attempt_violations = off.iter().map(ToString::to_string).collect();

    // Beliefs, from keel's `Held` to its `Lost`/`Released` (or the process' end).
    let beliefs = keel_checks::beliefs(&views, end_us);
    // S4: every write under a fence the writer believed it held right then.
    for v in &views {
        if let Ev::Wrote { fence, .. } = &v.line().ev {
            let t = v.t_us();
            if !beliefs.iter().any(|b| b.node == *v.node() && b.fence == *fence && b.span.start <= t && t <= b.span.end)
            {
                f.unbelieved_writes += 1;
            }
        }
    }
    for (i, a) in beliefs.iter().enumerate() {
        for b in &beliefs[i + 1..] {
            if a.node == b.node || a.lease != b.lease {
                continue;
            }
            let Some(o) = a.span.overlap(&b.span) else { continue };
            let (stale, fresh) = if a.fence <= b.fence { (a, b) } else { (b, a) };
            f.dual_belief.push(Window {
                stale: stale.node.to_owned(),
                stale_fence: stale.fence,
                fresh: fresh.node.to_owned(),
                fresh_fence: fresh.fence,
                at_ms: ms(o.start),
                raw_ms: ms(o.end - o.start),
                active_ms: ms(o.len_outside(&frozen_of(stale.node))),
            });
        }
    }
    f.dual_belief.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));

    jobs(&views, &mut f, end_us, &frozen);
    maps(&views, &mut f);
    linearizability(lines, &mut f);
    completions(&views, &mut f, end_us, &frozen);

    f.panics = outcome.panics.len();
    f.crashes = outcome.crashes.len();
    f.hung_stops = outcome.hung_stops.len();
    f.wall_s = ms(end_us) / 1e3;

    let fail = &mut f.failures;
    if f.fence_violations > 0 {
        fail.push(format!("F1: {} writes accepted below an earlier fence", f.fence_violations));
    }
    if f.grant_order_violations > 0 {
        fail.push(format!("S1: {} grants with a fence not above every earlier grant", f.grant_order_violations));
    }
    if f.unbelieved_writes > 0 {
        fail.push(format!("S4: {} writes with a fence the writer did not believe it held", f.unbelieved_writes));
    }
    for x in &f.lease_attempt_violations {
        fail.push(x.clone());
    }
    let long: Vec<_> = f.dual_belief.iter().filter(|w| w.active_ms > ms(micros(DUAL_BELIEF_ACTIVE_MAX))).collect();
    if let Some(w) = long.iter().max_by(|a, b| a.active_ms.total_cmp(&b.active_ms)) {
        fail.push(format!(
            "dual belief: {} windows longer than {DUAL_BELIEF_ACTIVE_MAX:?} active (longest {:.0} ms: {} fence {} still believed while {} held {})",
            long.len(),
            w.active_ms,
            w.stale,
            w.stale_fence,
            w.fresh,
            w.fresh_fence
        ));
    }
    if f.jobs_lost > 0 {
        fail.push(format!("P1: {} dispatched jobs never completed", f.jobs_lost));
    }
    for x in f.restart_violations.iter().chain(&f.run_stop_violations) {
        fail.push(x.clone());
    }
    if f.redispatched_after_ack > 0 {
        fail.push(format!(
            "P17: {} attempts both acknowledged and re-dispatched off their worker",
            f.redispatched_after_ack
        ));
    }
    if let Some(n) = f.extra_runs_by_cause.get(UNEXPLAINED).filter(|n| **n > 0) {
        fail.push(format!("{n} extra runs with no fault to explain them"));
    }
    if f.map_r3_violations > 0 {
        fail.push(format!(
            "R3: {} set_and_wait returned with the replica behind the write (keel's WaitReturned)",
            f.map_r3_violations
        ));
    }
    if f.map_r8_violations > 0 {
        fail.push(format!(
            "R8: {} set_and_wait parked with its write already in the replica, or left parked past it",
            f.map_r8_violations
        ));
    }
    if f.map_writes_not_visible > 0 {
        fail.push(format!(
            "R3: {} set_and_wait returned before the local replica showed the write",
            f.map_writes_not_visible
        ));
    }
    if f.map_revision_regressions > 0 {
        fail.push(format!(
            "R2: a replica's revision went back {} times other than by a resync after a data loss",
            f.map_revision_regressions
        ));
    }
    if !f.map_converged {
        fail.push("R2: the replicas' final content differs (or no replica reported it)".to_owned());
    }
    for v in &f.lin_violations {
        fail.push(format!("linearizability: {v}"));
    }
    if f.lin_recorded > 0 && f.lin_checked == 0 {
        // Every history skipped or over budget: nothing was judged, which is not a pass.
        fail.push(format!("linearizability: {} operations recorded, no history checked", f.lin_recorded));
    }
    if f.completions_undelivered > 0 {
        fail.push(format!(
            "V3: {} completions accepted before a clean stop never reached the subscriber",
            f.completions_undelivered
        ));
    }
    for x in &f.completer_violations {
        fail.push(x.clone());
    }
    if f.overlapping_runs > 0 {
        fail.push(format!("P2: {} overlapping runs of one job beyond {HANDOFF_MAX:?}", f.overlapping_runs));
    }
    for (file, line) in &outcome.panics {
        fail.push(format!("panic in {file}: {line}"));
    }
    for c in &outcome.crashes {
        fail.push(format!("crash: {c}"));
    }
    for h in &outcome.hung_stops {
        fail.push(format!("hung stop: {h} did not stop within {:?}", super::runner::STOP_MAX));
    }
    f
}

/// The store's map operations the processes recorded, merged in real-time order, judged by the
/// simulator's linearizability checker. Ids are made unique per node; a `Reset` goes where Redis
/// went down to come back without its data, a `Restart` where it came back with all of it (a
/// kill that keeps the AOF keeps every acknowledged write: `appendfsync always`; the maps'
/// revisions jump at their next commits, under the new `run_id`).
fn linearizability(lines: &[Line], f: &mut Figures) {
    use keel_checks::linearize::{self, Record};
    let mut ids: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    let (mut records, mut losing) = (Vec::new(), false);
    for l in lines {
        match &l.ev {
            Ev::Fault { fault, .. } => losing = matches!(fault, Fault::RedisKillLose { .. }),
            // Recorded once the old server is killed and reaped: every request it applied was
            // sent (invoked) before this line, every later one can only meet the emptied store.
            Ev::RedisDown => records.push(if losing { Record::Reset } else { Record::Restart }),
            Ev::StoreInvoke { id, op } => {
                f.lin_recorded += 1;
                let next = ids.len() as u64;
                let id = *ids.entry((l.node.as_str(), *id)).or_insert(next);
                records.push(Record::Invoke { id, op: op.clone() });
            }
            Ev::StoreReturn { id, ret } => {
                if let Some(id) = ids.get(&(l.node.as_str(), *id)) {
                    records.push(Record::Return { id: *id, ret: ret.clone() });
                }
            }
            _ => {}
        }
    }
    let r = linearize::check(records);
    f.lin_checked = r.checked;
    f.lin_ops = r.ops;
    f.lin_skipped = r.skipped;
    f.lin_over_budget = r.over_budget;
    f.lin_violations = r.violations;
}

/// node → its SIGSTOP spans (µs).
fn frozen_spans<'a>(views: &[View<'a>], end_us: u64) -> BTreeMap<&'a str, Vec<Span>> {
    let mut out: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    let mut since: BTreeMap<&str, u64> = BTreeMap::new();
    for v in views {
        match &v.line().ev {
            Ev::Frozen { node } => {
                since.insert(node, v.t_us());
            }
            Ev::Thawed { node } => {
                if let Some(s) = since.remove(node.as_str()) {
                    out.entry(node.as_str()).or_default().push(Span { start: s, end: v.t_us() });
                }
            }
            _ => {}
        }
    }
    for (node, s) in since {
        out.entry(node).or_default().push(Span { start: s, end: end_us });
    }
    out
}

/// An invisible write this soon after a data-losing Redis restart is the documented resync
/// (docs/rmap.md), not a regression.
pub const DATA_LOSS_WINDOW: Duration = Duration::from_secs(10);

fn maps(views: &[View<'_>], f: &mut Figures) {
    // R2 and R3 by the simulator's rule over keel's own events and the workload's reads.
    let v = keel_checks::rmap_revisions(views, |v| match &v.line().ev {
        Ev::MapRead { rev } => Some((super::node::MAP, *rev)),
        _ => None,
    });
    f.map_r3_violations = v.iter().filter(|x| x.invariant == "R3").count();
    f.map_revision_regressions = v.iter().filter(|x| x.invariant == "R2").count();
    for x in v.iter().take(5) {
        eprintln!("keel-chaos: {x}");
    }
    let r8 = keel_checks::rmap_waiters_wake(views);
    f.map_r8_violations = r8.len();
    for x in r8.iter().take(5) {
        eprintln!("keel-chaos: {x}");
    }
    let mut losses: Vec<u64> = Vec::new();
    let mut last: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut any_map = false;
    for v in views {
        let (l, t) = (v.line(), v.t_us());
        let after_loss = |t: u64| losses.iter().any(|x| *x <= t && t - *x <= micros(DATA_LOSS_WINDOW));
        match &l.ev {
            Ev::RedisUp { data: false } => losses.push(t),
            Ev::MapSet { visible, .. } => {
                f.map_writes += 1;
                match (*visible, after_loss(t)) {
                    (true, _) => {}
                    (false, true) => f.map_writes_not_visible_after_data_loss += 1,
                    (false, false) => f.map_writes_not_visible += 1,
                }
            }
            Ev::ProcStarted { .. } if l.node.starts_with("rmap") => any_map = true,
            Ev::MapFinal { rev, digest, entries } => {
                last.insert(&l.node, (*rev, *digest));
                f.map_final = Some((*rev, *entries));
            }
            _ => {}
        }
    }
    let finals: std::collections::BTreeSet<_> = last.values().collect();
    // No map process at all (a synthetic history): nothing to converge.
    f.map_converged = !any_map || (finals.len() == 1 && !last.is_empty());
    if !f.map_converged {
        f.map_final = None;
    }
}

/// Scheduling slack of a bounded stop (the subscription manager's, a completer run's drain) on a
/// real machine.
const SUBSCRIPTION_STOP_SLACK_US: u64 = 1_000_000;

/// How much earlier than its wait's floor a lease attempt (S13) or a partial batch (V14) may look
/// in a real history: a timer never fires early; the lines' timestamps and keel's clock are read
/// apart.
const FLOOR_SLACK_US: u64 = 20_000;

/// How soon a completer run begins its drain after its stop request on a real machine: keel's
/// run begins it within one poll; a loaded 2-core machine may not schedule the task for a while.
const COMPLETER_STOP_HEARD_SLACK_US: u64 = 500_000;

fn completions(views: &[View<'_>], f: &mut Figures, end_us: u64, frozen: &BTreeMap<&str, Vec<Span>>) {
    // The store is healthy from the final settle on: a stop begun then must leave nothing behind.
    let heal_us = views.iter().find(|v| matches!(v.line().ev, Ev::FinalSettle)).map_or(u64::MAX, |v| v.t_us());
    let mut v = keel_checks::completer_channel(views);
    v.extend(keel_checks::stops_wait_for_their_run(views));
    v.extend(keel_checks::subscription_closes_count_drops(views));
    v.extend(keel_checks::group_stops_hear_member_errors(views));
    // V21: a completer's stop returns its run's own report.
    v.extend(keel_checks::completer_stops_return_their_report(views));
    // A real clock neither jumps nor runs fast: V4 is judged as on a tame simulated one.
    v.extend(keel_checks::completer_drains(views, heal_us, true, 1.0));
    // The subscription manager's stop closes its subscribers within its drain bound (real time:
    // a second of slack for a loaded machine; SIGSTOPped time not counted).
    v.extend(keel_checks::subscription_stops(views, end_us, 1.0, SUBSCRIPTION_STOP_SLACK_US, |n| {
        frozen.get(n).cloned().unwrap_or_default()
    }));
    // Each completer run's drain closes its channel within its own bound (the same slack).
    v.extend(keel_checks::completer_drains_bounded(views, end_us, 1.0, SUBSCRIPTION_STOP_SLACK_US, |n| {
        frozen.get(n).cloned().unwrap_or_default()
    }));
    // V11: a batch is reported retried exactly when a write failed since the last one.
    v.extend(keel_checks::completer_flushes_report_retries(views));
    // V14: a partial batch waits for its flush tick (a timer never fires early: the floor's
    // slack covers only the history's timestamps).
    v.extend(keel_checks::completer_partial_batches_wait_for_the_tick(views, 1.0, FLOOR_SLACK_US, |_, _, _| false));
    // V12: a drain gives a batch up only when its next retry could not start inside its bound
    // (real clocks: rate 1, no jumps; the same scheduling slack as V10).
    v.extend(keel_checks::completer_drains_retry(views, 1.0, COMPLETER_STOP_HEARD_SLACK_US, |_, _, _| false));
    // V10: a run's drain begins at its stop request (or once the store write in flight ended),
    // with a real machine's scheduling slack; SIGSTOPped time not counted.
    v.extend(keel_checks::completer_stops_heard(views, end_us, COMPLETER_STOP_HEARD_SLACK_US, |n| {
        frozen.get(n).cloned().unwrap_or_default()
    }));
    f.completer_violations = v.iter().take(20).map(ToString::to_string).collect();
    // node → (accepted, delivered, clean stop, dropped)
    type Seen<'a> = (std::collections::BTreeSet<&'a str>, std::collections::BTreeSet<&'a str>, bool, u64);
    let mut by_node: BTreeMap<&str, Seen<'_>> = BTreeMap::new();
    for v in views {
        let l = v.line();
        let n = by_node.entry(l.node.as_str());
        match &l.ev {
            Ev::CompletionAccepted { key } => {
                f.completions_accepted += 1;
                n.or_default().0.insert(key);
            }
            Ev::CompletionDelivered { key } => {
                f.completions_delivered += 1;
                n.or_default().1.insert(key);
            }
            Ev::CompleterStopped { clean, .. } => {
                f.completer_stops_clean += usize::from(*clean);
                n.or_default().2 = *clean;
            }
            Ev::SubscriberClosed { dropped } => n.or_default().3 = *dropped,
            _ => {}
        }
    }
    for (accepted, delivered, clean, dropped) in by_node.values() {
        if *clean && *dropped == 0 {
            f.completions_undelivered += accepted.difference(delivered).count();
        }
    }
}

/// An extra run after the first run's worker process reported a worker fenced (keel's
/// `Fenced`/`WorkerDead`) with no fault injected near it: the process or the host stalled past
/// the keep-alive deadline.
pub const STALLED: &str = "worker fenced itself, no fault injected (a stalled process or host)";

/// The cause of an extra run nothing explains.
pub const UNEXPLAINED: &str = "unexplained";

fn jobs(views: &[View<'_>], f: &mut Figures, end_us: u64, frozen: &BTreeMap<&str, Vec<Span>>) {
    let mut dispatched = std::collections::BTreeSet::new();
    let mut completed = std::collections::BTreeSet::new();
    let mut redispatched: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // Intervals during which a fault may explain a rerun: (node or "" for Redis, from, to).
    let mut faults: Vec<(String, u64, u64)> = Vec::new();
    let mut fault_open: Option<(String, u64)> = None;
    let mut stopping: BTreeMap<&str, u64> = BTreeMap::new();
    // process → instants keel reported one of its workers fenced (keep-alive unconfirmed in
    // time) or dead.
    let mut fenced: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let ttl = micros(TTL);
    for v in views {
        let (l, t) = (v.line(), v.t_us());
        match &l.ev {
            Ev::Dispatched { job } => {
                dispatched.insert(job.as_str());
            }
            Ev::Completed { job, .. } => {
                completed.insert(job.as_str());
            }
            Ev::Redispatched { job } => redispatched.entry(job).or_default().push(t),
            Ev::Stopping => {
                stopping.insert(&l.node, t);
            }
            Ev::Keel(K::Pool(PoolEvent::Fenced { .. } | PoolEvent::WorkerDead { .. })) => {
                fenced.entry(&l.node).or_default().push(t);
            }
            Ev::Fault { fault, target, .. } => {
                let node = match fault {
                    Fault::RedisKillKeep { .. } | Fault::RedisKillLose { .. } | Fault::ClientPause { .. } => {
                        String::new()
                    }
                    _ => target.clone().unwrap_or_default(),
                };
                fault_open = Some((node, t));
            }
            Ev::Healed { .. } => {
                if let Some((node, from)) = fault_open.take() {
                    // Its effects last until the pool noticed: a worker TTL and a settle.
                    faults.push((node, from, t + ttl + micros(SETTLE)));
                }
            }
            _ => {}
        }
    }
    // P1 by the shared rule: every dispatched job completed by the end.
    let lost = keel_checks::jobs_lost(
        views,
        end_us,
        end_us,
        0,
        |v| match &v.line().ev {
            Ev::Dispatched { job } => Some(job.as_str()),
            _ => None,
        },
        |v| match &v.line().ev {
            Ev::Completed { job, .. } => Some(job.as_str()),
            _ => None,
        },
    );
    f.jobs_dispatched = dispatched.len();
    f.jobs_completed = dispatched.iter().filter(|j| completed.contains(*j)).count();
    f.jobs_lost = lost.len();
    f.jobs_redispatched = redispatched.len();
    // P17: the ack and the re-dispatch of one attempt fence each other at the store.
    f.redispatched_after_ack = keel_checks::redispatches_of_unacked_jobs(views).len();
    // P22: a dead worker's replacement within its restart backoff (real clocks: rate 1, no
    // jumps; late by a loaded machine's scheduling slack, early by the timestamps' only).
    let slack = (COMPLETER_STOP_HEARD_SLACK_US, FLOOR_SLACK_US);
    let frozen_at = |n: &&str| frozen.get(*n).cloned().unwrap_or_default();
    let clocks =
        keel_checks::Clocks { rates: (1.0, 1.0), slacks: slack, frozen: frozen_at, jumped: |_: &_, _, _| false };
    let off = keel_checks::pool_restarts_back_off(views, end_us, clocks);
    f.restart_violations = off.iter().map(ToString::to_string).collect();
    f.run_stop_violations = keel_checks::runs_stop_with_their_worker(views).iter().map(ToString::to_string).collect();

    // Handler runs from keel's own `Started`/`HandlerReturned`, as the simulator reads them.
    let runs = keel_checks::pool_handler_runs(views, end_us);
    let frozen_of = |n: &&str| frozen.get(*n).cloned().unwrap_or_default();
    f.overlapping_runs = runs.overlaps(frozen_of, keel_checks::HANDOFF_US).len();
    for (job, rs) in runs.by_job() {
        let mut rs = rs.clone();
        rs.sort_by_key(|r| r.2.start);
        f.runs += rs.len();
        if rs.len() > 1 {
            f.jobs_run_twice += 1;
        }
        for w in 1..rs.len() {
            f.extra_runs += 1;
            let ((prev_node, _, prev), (_, _, next)) = (&rs[w - 1], &rs[w]);
            let in_window = |t: u64| t >= prev.start && t <= next.start;
            let cause = if redispatched.get(job).is_some_and(|v| v.iter().any(|t| in_window(*t))) {
                "redispatched after redis lost its data"
            } else if faults.iter().any(|(n, a, b)| n == prev_node && *a <= next.start && *b >= prev.start) {
                "fault on the first run's worker (kill -9, SIGSTOP or partition)"
            } else if faults.iter().any(|(n, a, b)| n.is_empty() && *a <= next.start && *b >= prev.start) {
                "redis fault (kill -9 or CLIENT PAUSE) during the first run"
            } else if stopping.get(prev_node).is_some_and(|t| *t <= next.start) {
                "handed back at a graceful stop"
            } else if fenced.get(prev_node).is_some_and(|v| v.iter().any(|t| in_window(*t))) {
                STALLED
            } else {
                UNEXPLAINED
            };
            *f.extra_runs_by_cause.entry(cause.to_owned()).or_default() += 1;
        }
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                if let Some(o) = a.2.overlap(&b.2) {
                    let mut holes = frozen_of(&a.0);
                    holes.extend(frozen_of(&b.0));
                    f.overlap_max_ms = f.overlap_max_ms.max(ms(o.len_outside(&holes)));
                }
            }
        }
    }
}

/// The figures as a table.
pub fn table(f: &Figures) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ =
        writeln!(s, "keel-chaos seed {} cycles {} mutant {}", f.seed, f.cycles, f.mutant.as_deref().unwrap_or("none"));
    let _ = writeln!(s, "  {:<44} {:>8}", "cycles by fault kind", "");
    for (k, n) in &f.faults {
        let _ = writeln!(s, "    {k:<42} {n:>8}");
    }
    let rows: Vec<(&str, String)> = vec![
        ("jobs dispatched", f.jobs_dispatched.to_string()),
        ("jobs completed", f.jobs_completed.to_string()),
        ("jobs lost (P1)", f.jobs_lost.to_string()),
        ("jobs re-dispatched after a data loss", f.jobs_redispatched.to_string()),
        ("handler runs", f.runs.to_string()),
        ("jobs run twice (or more)", f.jobs_run_twice.to_string()),
        ("extra runs", f.extra_runs.to_string()),
        ("overlapping runs past the hand-off", f.overlapping_runs.to_string()),
        ("attempts acked and re-dispatched (P17)", f.redispatched_after_ack.to_string()),
        ("worker replacements off their backoff (P22)", f.restart_violations.len().to_string()),
        ("runs not stopped with their worker (P43)", f.run_stop_violations.len().to_string()),
        ("longest overlap (ms, frozen time left out)", format!("{:.1}", f.overlap_max_ms)),
        ("register writes accepted", f.writes_accepted.to_string()),
        ("register writes rejected (stale fence)", f.writes_rejected.to_string()),
        ("fence violations (F1)", f.fence_violations.to_string()),
        ("grants", f.grants.to_string()),
        ("grant order violations (S1 fences)", f.grant_order_violations.to_string()),
        ("writes under a fence not believed (S4)", f.unbelieved_writes.to_string()),
        ("lease attempts off their timing (S12, S13)", f.lease_attempt_violations.len().to_string()),
        ("dual-belief windows", f.dual_belief.len().to_string()),
        ("map set_and_wait returned", f.map_writes.to_string()),
        ("  replica behind the write at return (R3)", f.map_r3_violations.to_string()),
        ("  parked with the write in the replica (R8)", f.map_r8_violations.to_string()),
        ("  not visible at the caller (R3)", f.map_writes_not_visible.to_string()),
        ("  not visible, right after a data loss", f.map_writes_not_visible_after_data_loss.to_string()),
        ("map revision went back (R2)", f.map_revision_regressions.to_string()),
        ("map replicas converged at the end (R2)", f.map_converged.to_string()),
        ("store map operations recorded", f.lin_recorded.to_string()),
        ("store histories checked linearizable", f.lin_checked.to_string()),
        ("  operations in them", f.lin_ops.to_string()),
        ("  skipped (over the op/open limits)", f.lin_skipped.to_string()),
        ("  over the search budget", f.lin_over_budget.to_string()),
        ("  not linearizable", f.lin_violations.len().to_string()),
        ("completions accepted", f.completions_accepted.to_string()),
        ("completion events delivered", f.completions_delivered.to_string()),
        ("  accepted, never delivered (V3)", f.completions_undelivered.to_string()),
        ("completer stops clean", f.completer_stops_clean.to_string()),
        ("completer V1-V4, V10-V14 violations", f.completer_violations.len().to_string()),
        ("panics", f.panics.to_string()),
        ("crashes", f.crashes.to_string()),
        ("hung stops", f.hung_stops.to_string()),
        ("torn history lines", f.torn_lines.to_string()),
        ("wall time (s)", format!("{:.1}", f.wall_s)),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<44} {v:>8}");
    }
    for (cause, n) in &f.extra_runs_by_cause {
        let _ = writeln!(s, "  extra runs: {cause:<32} {n:>8}");
    }
    for w in &f.dual_belief {
        let _ = writeln!(
            s,
            "  dual belief at {:>9.1} ms: {} (fence {}) and {} (fence {}) for {:.1} ms, {:.1} ms active",
            w.at_ms, w.stale, w.stale_fence, w.fresh, w.fresh_fence, w.raw_ms, w.active_ms
        );
    }
    if f.failures.is_empty() {
        let _ = writeln!(s, "PASS");
    } else {
        for x in &f.failures {
            let _ = writeln!(s, "FAIL {x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use keel::lease::LostReason;

    use super::super::node::MAP;

    use super::*;

    const MS: u64 = 1_000_000;

    fn l(t_ms: u64, node: &str, ev: Ev) -> Line {
        Line { t: t_ms * MS, node: node.into(), ev }
    }

    /// The first line of every synthetic history (the views' origin).
    fn origin() -> Line {
        l(0, "runner", Ev::FinalSettle)
    }

    fn judge(lines: &[Line]) -> Figures {
        let mut h = vec![origin()];
        h.extend_from_slice(lines);
        check(&h, &RunOutcome::default(), &[], 1, None)
    }

    fn reg(t: u64, writer: &str, fence: u64, accepted: bool) -> Line {
        l(t, "register", Ev::RegWrite { key: "k".into(), writer: writer.into(), fence, accepted })
    }

    fn held(t: u64, node: &str, fence: u64) -> Line {
        l(
            t,
            node,
            Ev::Keel(K::Lease(LeaseEvent::Held {
                lease: "L".into(),
                owner: keel::observe::Text::Owned(node.into()),
                fence,
            })),
        )
    }

    fn lost(t: u64, node: &str, fence: u64) -> Line {
        let reason = LostReason::Deadline;
        l(
            t,
            node,
            Ev::Keel(K::Lease(LeaseEvent::Lost {
                lease: "L".into(),
                owner: keel::observe::Text::Owned(node.into()),
                fence,
                reason,
            })),
        )
    }

    /// P22 on a real machine: a long-lived worker replaced 80 ms after its death (a backoff of
    /// 50..100 ms) passes; one replaced at once (MC73: the wait counted from its start) fails.
    #[test]
    fn a_worker_replaced_at_once_fails_the_run() {
        use keel::observe::PoolEvent;
        let pool = |t: u64, ev: PoolEvent<'static>| l(t, "n1", Ev::Keel(K::Pool(ev)));
        let slot = pool(
            1,
            PoolEvent::SlotStarted {
                worker: "a".into(),
                restart_min_ms: 100,
                restart_max_ms: 1000,
                reset_after_ms: 3000,
            },
        );
        let died = pool(5000, PoolEvent::WorkerDied { worker: "a".into(), exit: "Dead".into() });
        let replaced =
            |t: u64| pool(t, PoolEvent::WorkerReplaced { worker: "b".into(), replaces: "a".into(), after_ms: 0 });
        let f = judge(&[slot.clone(), died.clone(), replaced(5080)]);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        let f = judge(&[slot, died, replaced(5001)]);
        assert_eq!(f.restart_violations.len(), 1, "{:?}", f.restart_violations);
        assert!(f.failures.iter().any(|x| x.starts_with("P22")), "{:?}", f.failures);
    }

    /// P17: an attempt acked by its worker and re-dispatched off it fails the run.
    #[test]
    fn an_attempt_acked_and_redispatched_fails_the_run() {
        use keel::observe::{MoveKind, PoolEvent};
        let acked =
            l(10, "n1", Ev::Keel(K::Pool(PoolEvent::Acked { job: "j".into(), worker: "w".into(), attempt: 1 })));
        let moved = |from: &'static str| {
            let ev = PoolEvent::Moved {
                kind: MoveKind::Redispatched,
                job: "j".into(),
                from: from.into(),
                worker: "v".into(),
                attempt: 2,
                now_ms: 20,
                cleaned: "".into(),
            };
            l(20, "n2", Ev::Keel(K::Pool(ev)))
        };
        let f = judge(&[acked.clone(), moved("w")]);
        assert_eq!(f.redispatched_after_ack, 1);
        assert!(f.failures.iter().any(|x| x.starts_with("P17")), "{:?}", f.failures);
        // Re-dispatched off another worker: not this ack's.
        assert_eq!(judge(&[acked, moved("u")]).redispatched_after_ack, 0);
    }

    #[test]
    fn linearizability_is_judged_over_every_process_and_resets_only_at_a_data_loss() {
        use keel::store::{MapWrite, WriteOutcome};
        use keel_checks::linearize::{StoreOp, StoreRet};
        let set = MapWrite::Set("1".into());
        // `a` writes k and learns it applied; later `b` (same process-local id) reads it absent.
        let history = |fault: Option<Fault>| {
            let mut h = vec![
                l(
                    1,
                    "a",
                    Ev::StoreInvoke {
                        id: 0,
                        op: StoreOp::Write { map: MAP.into(), key: "k".into(), write: set.clone() },
                    },
                ),
                l(
                    2,
                    "a",
                    Ev::StoreReturn {
                        id: 0,
                        ret: StoreRet::Write(WriteOutcome { applied: true, rev: 10, value: Some("1".into()) }),
                    },
                ),
            ];
            if let Some(fault) = fault {
                h.push(l(3, "runner", Ev::Fault { cycle: 0, fault, target: None }));
                h.push(l(4, "runner", Ev::RedisDown));
            }
            h.push(l(5, "b", Ev::StoreInvoke { id: 0, op: StoreOp::Get { map: MAP.into(), key: "k".into() } }));
            h.push(l(6, "b", Ev::StoreReturn { id: 0, ret: StoreRet::Get(None, 0) }));
            judge(&h)
        };
        let f = history(None);
        assert_eq!((f.lin_checked, f.lin_violations.len()), (1, 1), "{:?}", f.lin_violations);
        assert!(f.failures.iter().any(|x| x.starts_with("linearizability: ")), "{:?}", f.failures);
        let f = history(Some(Fault::RedisKillKeep { down_ms: 1 }));
        assert_eq!(f.lin_violations.len(), 1, "a restart with the AOF keeps the write");
        let f = history(Some(Fault::RedisKillLose { down_ms: 1 }));
        assert_eq!((f.lin_checked, f.lin_ops, f.lin_violations.len()), (2, 2, 0), "{:?}", f.lin_violations);
        // Three writes whose replies never came: over the open limit, skipped, so nothing was
        // judged, and that fails the run rather than passing it.
        let open: Vec<_> = (0..3u64)
            .map(|i| {
                let op = StoreOp::Write { map: MAP.into(), key: "k".into(), write: set.clone() };
                l(1 + i, "a", Ev::StoreInvoke { id: i, op })
            })
            .collect();
        let f = judge(&open);
        assert_eq!((f.lin_recorded, f.lin_checked, f.lin_skipped), (3, 0, 1), "{f:?}");
        assert!(f.failures.iter().any(|x| x.contains("no history checked")), "{:?}", f.failures);
    }

    #[test]
    fn a_clean_history_passes() {
        let h = [
            held(1, "a", 1),
            l(2, "a", Ev::Wrote { fence: 1, accepted: true }),
            reg(2, "a", 1, true),
            lost(5, "a", 1),
            held(6, "b", 2),
            reg(7, "b", 2, true),
            reg(8, "a", 1, false),
        ];
        let f = judge(&h);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        assert_eq!((f.writes_accepted, f.writes_rejected, f.grants), (2, 1, 2));
    }

    #[test]
    fn f1_fires_on_an_accepted_lower_fence() {
        let f = judge(&[reg(1, "a", 5, true), reg(2, "b", 4, true)]);
        assert_eq!(f.fence_violations, 1);
        assert!(f.failures[0].starts_with("F1"), "{:?}", f.failures);
    }

    #[test]
    fn s1_fires_on_a_grant_that_goes_back() {
        let f = judge(&[held(1, "a", 7), lost(2, "a", 7), held(3, "b", 3)]);
        assert_eq!(f.grant_order_violations, 1);
        assert!(f.failures[0].starts_with("S1"), "{:?}", f.failures);
    }

    /// S12 on a real machine: a refused acquisition's next attempt within a poll (333 ms) and
    /// the scheduling slack (500 ms) passes; one 900 ms later (MC63 waiting out the holder's
    /// TTL) fails the run, unless the process was stopped meanwhile. S13: one before the wait's
    /// floor fails it too.
    #[test]
    fn s12_and_s13_fire_on_attempts_off_their_timing() {
        let lease = |t: u64, ev: LeaseEvent<'static>| l(t, "a", Ev::Keel(K::Lease(ev)));
        let started = lease(
            1,
            LeaseEvent::OwnerStarted {
                lease: "L".into(),
                owner: "a".into(),
                renew_us: 333_000,
                poll_us: 333_000,
                retry_min_us: 20_000,
                retry_max_us: 83_000,
                ttl_us: 1_000_000,
                drift_margin_us: 90_000,
                error_log_us: 10_000_000,
                work_restart_min_us: 100_000,
                work_restart_max_us: 10_000_000,
                op_timeout_us: 250_000,
                work_stop_timeout_us: 1_000_000,
                permanent_attempts: 3,
            },
        );
        let refused = |t: u64| {
            lease(
                t,
                LeaseEvent::AcquireRefused { lease: "L".into(), owner: "a".into(), remaining_ms: 900, took_us: 2_000 },
            )
        };
        let f = judge(&[started.clone(), refused(10), refused(800)]);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        let f = judge(&[started.clone(), refused(10), refused(910)]);
        assert_eq!(f.lease_attempt_violations.len(), 1, "{:?}", f.lease_attempt_violations);
        assert!(f.failures[0].starts_with("S12"), "{:?}", f.failures);
        // S13: retried 20 ms after a refusal of a lease with 900 ms left, before half a poll.
        let f = judge(&[started.clone(), refused(10), refused(30)]);
        assert!(f.failures.len() == 1 && f.failures[0].starts_with("S13"), "{:?}", f.failures);
        let frozen = [
            started,
            refused(10),
            l(100, "a", Ev::Frozen { node: "a".into() }),
            l(600, "a", Ev::Thawed { node: "a".into() }),
            refused(910),
        ];
        assert!(judge(&frozen).failures.is_empty(), "{:?}", judge(&frozen).failures);
    }

    #[test]
    fn s4_fires_on_a_write_without_belief() {
        let f = judge(&[l(1, "a", Ev::Wrote { fence: 1, accepted: true })]);
        assert_eq!(f.unbelieved_writes, 1);
    }

    #[test]
    fn dual_belief_leaves_out_frozen_time_and_fails_past_the_bound() {
        // a is frozen for most of b's grant, then resumes and notices within 2 ms: passes.
        let frozen = [
            held(1, "a", 1),
            l(10, "runner", Ev::Frozen { node: "a".into() }),
            held(1500, "b", 2),
            l(3000, "runner", Ev::Thawed { node: "a".into() }),
            lost(3002, "a", 1),
        ];
        let f = judge(&frozen);
        assert_eq!(f.dual_belief.len(), 1);
        assert!((f.dual_belief[0].raw_ms - 1502.0).abs() < 0.01);
        assert!((f.dual_belief[0].active_ms - 2.0).abs() < 0.01);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        // The same without the freeze: a holder that kept believing for 1.5 s while b held.
        let f = judge(&[frozen[0].clone(), frozen[2].clone(), frozen[4].clone()]);
        assert!(f.failures.iter().any(|x| x.starts_with("dual belief")), "{:?}", f.failures);
    }

    fn start(t: u64, node: &str, attempt: u64) -> Line {
        let worker = format!("{node}.w");
        l(
            t,
            node,
            Ev::Keel(K::Pool(PoolEvent::Started {
                job: "j".into(),
                worker: keel::observe::Text::Owned(worker.into()),
                attempt,
            })),
        )
    }

    fn end(t: u64, node: &str, attempt: u64) -> Line {
        let (job, worker) = ("j".into(), keel::observe::Text::Owned(format!("{node}.w").into()));
        l(
            t,
            node,
            Ev::Keel(K::Pool(PoolEvent::HandlerReturned { job, worker, attempt, completed: true, stopped: false })),
        )
    }

    #[test]
    fn p1_unexplained_reruns_and_overlaps_fire() {
        let base = vec![l(1, "d", Ev::Dispatched { job: "j".into() }), l(1, "d", Ev::Dispatched { job: "k".into() })];
        // j runs twice with no fault anywhere, the two runs overlapping for 400 ms; k never completes.
        let mut h = base.clone();
        h.extend([start(1, "w1", 1), start(100, "w2", 2), end(500, "w1", 1), end(600, "w2", 2)]);
        h.push(l(700, "d", Ev::Completed { job: "j".into(), attempt: 2 }));
        let f = judge(&h);
        assert_eq!((f.jobs_lost, f.extra_runs, f.overlapping_runs), (1, 1, 1));
        assert_eq!(f.extra_runs_by_cause.get(UNEXPLAINED), Some(&1));
        assert_eq!(f.failures.len(), 3, "{:?}", f.failures);
        // The same rerun after w1 was killed (its run ends at the kill): explained, no overlap.
        let mut h = base;
        h.push(l(1, "d", Ev::Completed { job: "k".into(), attempt: 1 }));
        h.push(start(1, "w1", 1));
        h.push(l(
            2,
            "runner",
            Ev::Fault {
                cycle: 0,
                fault: Fault::KillApp { target: super::super::plan::Target::Worker(1), down_ms: 5 },
                target: Some("w1".into()),
            },
        ));
        h.push(l(3, "runner", Ev::Killed { node: "w1".into() }));
        h.push(l(8, "runner", Ev::Healed { cycle: 0 }));
        h.extend([start(1200, "w2", 2), end(1350, "w2", 2)]);
        h.push(l(1400, "d", Ev::Completed { job: "j".into(), attempt: 2 }));
        let f = judge(&h);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        assert_eq!(f.extra_runs_by_cause.len(), 1);
        assert!(f.extra_runs_by_cause.keys().all(|k| k.starts_with("fault on the first run's worker")));
    }

    #[test]
    fn r2_and_r3_fire_unless_a_data_loss_explains_them() {
        use keel::observe::{ResyncReason, RmapEvent as R};
        let started = |node: &str| l(1, node, Ev::ProcStarted { incarnation: 0, pid: 1 });
        let set = |t, visible| {
            l(t, "rmap-0", Ev::MapSet { key: "k".into(), rev: 5, visible, replica_rev: if visible { 5 } else { 4 } })
        };
        let keel = |t, node: &str, e: R<'static>| l(t, node, Ev::Keel(K::Rmap(e)));
        let applied = |t, rev| keel(t, "rmap-1", R::Applied { map: MAP.into(), rev });
        let fin = |t, node: &str, digest| l(t, node, Ev::MapFinal { rev: 9, entries: 3, digest });
        let f = judge(&[
            started("rmap-0"),
            started("rmap-1"),
            set(10, false),
            keel(10, "rmap-0", R::WaitReturned { map: MAP.into(), rev: 5, local_rev: 4 }),
            applied(15, 9),
            l(20, "rmap-1", Ev::MapRead { rev: 2 }),
            fin(30, "rmap-0", 1),
            fin(30, "rmap-1", 2),
        ]);
        assert_eq!(
            (f.map_writes_not_visible, f.map_r3_violations, f.map_revision_regressions, f.map_converged),
            (1, 1, 1, false)
        );
        assert_eq!(f.failures.len(), 4, "{:?}", f.failures);
        // After Redis lost its data, a resync may go back; the caller's view is excused for a while.
        let lose = Fault::RedisKillLose { down_ms: 1 };
        let f = judge(&[
            started("rmap-0"),
            started("rmap-1"),
            applied(3, 9),
            l(4, "runner", Ev::Fault { cycle: 0, fault: lose, target: None }),
            l(5, "runner", Ev::RedisUp { data: false }),
            set(10, false),
            keel(
                20,
                "rmap-1",
                R::Resynced {
                    map: MAP.into(),
                    reason: ResyncReason::RevJump,
                    rev: 2,
                    old_rev: 9,
                    changed: 1,
                    woken: 0,
                    took_us: 0,
                    restarted: false,
                },
            ),
            l(21, "rmap-1", Ev::MapRead { rev: 2 }),
            fin(30, "rmap-0", 1),
            fin(30, "rmap-1", 1),
        ]);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        assert_eq!(f.map_writes_not_visible_after_data_loss, 1);
        assert_eq!(f.map_final, Some((9, 3)));
    }

    #[test]
    fn completer_v1_to_v4_and_undelivered_completions_fire() {
        use keel::observe::CompleterEvent as C;
        let keel = |t, e: C<'static>| l(t, "c", Ev::Keel(K::Completer(e)));
        let drain = |t| {
            keel(
                t,
                C::DrainStarted {
                    completer: "x".into(),
                    run: 1,
                    pending: 0,
                    producers: 2,
                    bound_ms: 5000,
                    retry_max_ms: 0,
                },
            )
        };
        let closed = |t, producers_left| {
            keel(t, C::EventsClosed { completer: "x".into(), run: 1, unflushed: 0, undelivered: 0, producers_left })
        };
        let accepted = |t, k: &str| l(t, "c", Ev::CompletionAccepted { key: k.into() });
        let delivered = |t, k: &str| l(t, "c", Ev::CompletionDelivered { key: k.into() });
        let stopped = |t, clean| l(t, "c", Ev::CompleterStopped { clean, error: None });
        // A clean drain that delivered everything.
        let ok = [accepted(2, "a"), delivered(3, "a"), drain(4), closed(300, 0), stopped(301, true)];
        let f = judge(&ok);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        assert_eq!((f.completions_accepted, f.completions_delivered, f.completer_stops_clean), (1, 1, 1));
        // MC7's shape: the bound reported reached at once (V4), the channel closed with producers
        // left after it (allowed by then), and an accepted completion a clean stop never delivered.
        let deadline = keel(5, C::StopDeadline { completer: "x".into(), run: 1, producers: 2, pending: 0 });
        let registered =
            |p: &'static str| keel(1, C::ProducerRegistered { completer: "x".into(), run: 1, producer: p.into() });
        let f = judge(&[
            registered("p"),
            registered("q"),
            accepted(2, "a"),
            accepted(2, "b"),
            delivered(3, "a"),
            drain(4),
            deadline,
            closed(6, 2),
        ]);
        assert_eq!(f.completer_violations.len(), 1, "{:?}", f.completer_violations);
        assert!(f.completer_violations[0].starts_with("V4"), "{:?}", f.completer_violations);
        let f = judge(&[
            accepted(2, "a"),
            accepted(2, "b"),
            delivered(3, "a"),
            drain(4),
            closed(6, 2),
            closed(7, 0),
            stopped(8, true),
        ]);
        let kinds: Vec<_> = f.completer_violations.iter().map(|x| &x[..2]).collect();
        assert_eq!(kinds, ["V1", "V1"], "{:?}", f.completer_violations);
        assert_eq!(f.completions_undelivered, 1);
        assert!(f.failures.iter().any(|x| x.starts_with("V3")), "{:?}", f.failures);
    }

    #[test]
    fn a_subscription_manager_stop_past_its_drain_bound_fires_v4() {
        use keel::observe::CompleterEvent as C;
        let keel = |t, e: C<'static>| l(t, "c", Ev::Keel(K::Completer(e)));
        let asked = |t| keel(t, C::SmStopRequested { completer: "x".into(), run: 1, bound_ms: 5000 });
        let closed =
            |t| keel(t, C::SubscriptionsClosed { completer: "x".into(), run: 1, subs: 1, delivered: 0, dropped: 0 });
        let v4 = |f: &Figures| f.completer_violations.iter().filter(|x| x.starts_with("V4")).count();
        // Within bound + slack; then a manager still waiting on its subscriber at 10 s, closing late or never.
        assert_eq!(v4(&judge(&[asked(10), closed(5_900), l(20_000, "c", Ev::Stopping)])), 0);
        assert_eq!(v4(&judge(&[asked(10), closed(9_000)])), 1);
        assert_eq!(v4(&judge(&[asked(10), l(20_000, "c", Ev::Stopping)])), 1);
    }
}
