//! The checkers over the merged history, and the run's figures.
//!
//! - **F1** fence order at the resource: no write accepted with a fence lower than one accepted
//!   before for the same key (the register enforces it; this re-checks its record).
//! - **F2** grant order: every new grant (a `Held` event) has a fence higher than every earlier
//!   grant's (a fence that goes back would be rejected by every resource: a lost holder).
//! - **S4** a process writes to the resource only with the fence of a grant it believes it holds
//!   at that instant.
//! - **dual belief**: two processes believing they hold the lease at the same `CLOCK_MONOTONIC`
//!   instant. Meaningful only because every process shares the machine's clock. A window's
//!   *active* length leaves out the time the stale believer was SIGSTOPped (a frozen process acts
//!   on nothing); an active window longer than [`DUAL_BELIEF_ACTIVE_MAX`] fails the run.
//! - **P1** no lost job: every dispatched job completes by the end (after the final settle).
//! - **runs twice**: every job started more than once, each extra start classified by the fault
//!   that explains it (docs/chaos.md); an unexplained one fails the run.
//! - **overlap**: two runs of one job at once for longer than [`HANDOFF_MAX`] (docs/pool.md's
//!   hand-off), frozen time left out, fails the run.
//! - **R3** `set_and_wait` returns only once the local replica shows the write; **R2** a replica's
//!   revision never goes back (except its resync after a data-losing restart), and every replica
//!   holds the same content at the end.
//! - panics, crashes (a child exiting with a failure on its own) and hung stops fail the run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::history::{Ev, Line};
use super::plan::Fault;
use super::runner::{RunOutcome, SETTLE, TTL};

/// Longest tolerated *active* dual-belief window: a resumed or cut-off holder notices its local
/// deadline at its next timer tick; anything longer means a holder kept believing past it.
pub const DUAL_BELIEF_ACTIVE_MAX: Duration = Duration::from_millis(500);
/// The documented hand-off overlap of two runs of one job (docs/pool.md, P2).
pub const HANDOFF_MAX: Duration = Duration::from_millis(100);

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
    /// F2 violations.
    pub grant_order_violations: usize,
    /// S4: writes with a fence the writer did not believe it held at that instant.
    pub unbelieved_writes: usize,
    /// Dual-belief windows.
    pub dual_belief: Vec<Window>,
    /// `set_and_wait` calls that returned (rmap workload).
    pub map_writes: usize,
    /// R3: returned before the local replica showed the write, with no data loss to explain it.
    pub map_writes_not_visible: usize,
    /// Returned before the replica showed the write, right after a data-losing restart.
    pub map_writes_not_visible_after_data_loss: usize,
    /// R2: a replica's revision went back, with no data loss to explain it.
    pub map_revision_regressions: usize,
    /// A replica's revision went back right after a data-losing restart (its resync).
    pub map_revision_resets_after_data_loss: usize,
    /// R2 at the end: every replica's final (revision, digest) is the same.
    pub map_converged: bool,
    /// The replicas' final revision and entry count (when converged).
    pub map_final: Option<(u64, usize)>,
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

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Nanoseconds of `[a, b)` covered by `intervals`.
fn covered(intervals: &[(u64, u64)], a: u64, b: u64) -> u64 {
    intervals.iter().map(|&(s, e)| e.min(b).saturating_sub(s.max(a))).sum()
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
    let t0 = lines.first().map_or(0, |l| l.t);
    let t_end = lines.last().map_or(0, |l| l.t);
    let frozen = frozen_intervals(lines, t_end);
    let frozen_of = |n: &str| frozen.get(n).map(Vec::as_slice).unwrap_or(&[]);

    // F1, from the register's own record.
    let mut top: BTreeMap<&str, u64> = BTreeMap::new();
    for l in lines {
        if let Ev::RegWrite { key, fence, accepted, .. } = &l.ev {
            if *accepted {
                f.writes_accepted += 1;
                let t = top.entry(key).or_insert(0);
                if *fence < *t {
                    f.fence_violations += 1;
                }
                *t = (*t).max(*fence);
            } else {
                f.writes_rejected += 1;
            }
        }
    }

    // F2 and the belief intervals.
    let mut max_fence = 0u64;
    let mut open: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut beliefs: Vec<(String, u64, u64, u64)> = Vec::new(); // node, fence, from, to
    let mut close = |open: &mut BTreeMap<String, (u64, u64)>, node: &str, t: u64| {
        if let Some((from, fence)) = open.remove(node) {
            beliefs.push((node.to_owned(), fence, from, t));
        }
    };
    for l in lines {
        match &l.ev {
            Ev::Held { fence } => {
                f.grants += 1;
                if *fence <= max_fence {
                    f.grant_order_violations += 1;
                }
                max_fence = max_fence.max(*fence);
                close(&mut open, &l.node, l.t);
                open.insert(l.node.clone(), (l.t, *fence));
            }
            Ev::Wrote { fence, .. } if open.get(&l.node).map(|(_, f)| f) != Some(fence) => f.unbelieved_writes += 1,
            Ev::Lost { .. } | Ev::Released | Ev::Stopped | Ev::ProcStarted { .. } => close(&mut open, &l.node, l.t),
            Ev::Killed { node } | Ev::Exited { node, .. } => close(&mut open, node, l.t),
            _ => {}
        }
    }
    for node in open.keys().cloned().collect::<Vec<_>>() {
        close(&mut open, &node, t_end);
    }
    for (i, a) in beliefs.iter().enumerate() {
        for b in &beliefs[i + 1..] {
            if a.0 == b.0 {
                continue;
            }
            let (from, to) = (a.2.max(b.2), a.3.min(b.3));
            if from >= to {
                continue;
            }
            let (stale, fresh) = if a.1 <= b.1 { (a, b) } else { (b, a) };
            let active = (to - from) - covered(frozen_of(&stale.0), from, to);
            f.dual_belief.push(Window {
                stale: stale.0.clone(),
                stale_fence: stale.1,
                fresh: fresh.0.clone(),
                fresh_fence: fresh.1,
                at_ms: ms(from - t0),
                raw_ms: ms(to - from),
                active_ms: ms(active),
            });
        }
    }
    f.dual_belief.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));

    jobs(lines, &mut f, t_end, &frozen);
    maps(lines, &mut f);

    f.panics = outcome.panics.len();
    f.crashes = outcome.crashes.len();
    f.hung_stops = outcome.hung_stops.len();
    f.wall_s = ms(t_end - t0) / 1e3;

    let fail = &mut f.failures;
    if f.fence_violations > 0 {
        fail.push(format!("F1: {} writes accepted below an earlier fence", f.fence_violations));
    }
    if f.grant_order_violations > 0 {
        fail.push(format!("F2: {} grants with a fence not above every earlier grant", f.grant_order_violations));
    }
    if f.unbelieved_writes > 0 {
        fail.push(format!("S4: {} writes with a fence the writer did not believe it held", f.unbelieved_writes));
    }
    let long: Vec<_> = f.dual_belief.iter().filter(|w| w.active_ms > ms(nanos(DUAL_BELIEF_ACTIVE_MAX))).collect();
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
    if let Some(n) = f.extra_runs_by_cause.get(UNEXPLAINED).filter(|n| **n > 0) {
        fail.push(format!("{n} extra runs with no fault to explain them"));
    }
    if f.map_writes_not_visible > 0 {
        fail.push(format!(
            "R3: {} set_and_wait returned before the local replica showed the write",
            f.map_writes_not_visible
        ));
    }
    if f.map_revision_regressions > 0 {
        fail.push(format!("R2: a replica's revision went back {} times with no data loss", f.map_revision_regressions));
    }
    if !f.map_converged {
        fail.push("R2: the replicas' final content differs (or no replica reported it)".to_owned());
    }
    if f.overlapping_runs > 0 {
        fail.push(format!("{} overlapping runs of one job beyond {HANDOFF_MAX:?}", f.overlapping_runs));
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

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// node → its SIGSTOP intervals.
fn frozen_intervals(lines: &[Line], t_end: u64) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut since: BTreeMap<&str, u64> = BTreeMap::new();
    for l in lines {
        match &l.ev {
            Ev::Frozen { node } => {
                since.insert(node, l.t);
            }
            Ev::Thawed { node } => {
                if let Some(s) = since.remove(node.as_str()) {
                    out.entry(node.clone()).or_default().push((s, l.t));
                }
            }
            _ => {}
        }
    }
    for (node, s) in since {
        out.entry(node.to_owned()).or_default().push((s, t_end));
    }
    out
}

/// A revision reset or an invisible write this soon after a data-losing Redis restart is the
/// documented resync (docs/rmap.md), not a regression.
pub const DATA_LOSS_WINDOW: Duration = Duration::from_secs(10);

fn maps(lines: &[Line], f: &mut Figures) {
    let mut losses: Vec<u64> = Vec::new();
    let mut last: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut any_map = false;
    for l in lines {
        let after_loss = |t: u64| losses.iter().any(|x| *x <= t && t - *x <= nanos(DATA_LOSS_WINDOW));
        match &l.ev {
            Ev::RedisUp { data: false } => losses.push(l.t),
            Ev::MapSet { visible, .. } => {
                f.map_writes += 1;
                match (*visible, after_loss(l.t)) {
                    (true, _) => {}
                    (false, true) => f.map_writes_not_visible_after_data_loss += 1,
                    (false, false) => f.map_writes_not_visible += 1,
                }
            }
            Ev::MapRevBack { .. } if after_loss(l.t) => f.map_revision_resets_after_data_loss += 1,
            Ev::MapRevBack { .. } => f.map_revision_regressions += 1,
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

/// An extra run after the first run's worker fenced itself (keel's `Fenced`/`WorkerDead`) with
/// no fault injected near it: the process or the host stalled past the keep-alive deadline.
pub const STALLED: &str = "worker fenced itself, no fault injected (a stalled process or host)";

/// The cause of an extra run nothing explains.
pub const UNEXPLAINED: &str = "unexplained";

/// One handler run.
struct Run {
    node: String,
    worker: String,
    attempt: u64,
    from: u64,
    to: u64,
}

fn jobs(lines: &[Line], f: &mut Figures, t_end: u64, frozen: &BTreeMap<String, Vec<(u64, u64)>>) {
    let mut dispatched = std::collections::BTreeSet::new();
    let mut completed = std::collections::BTreeSet::new();
    let mut redispatched: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    // node → instants its process ended abruptly or was replaced (runs without an end end there).
    let mut ends: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // Intervals during which a fault may explain a rerun: (node or "" for Redis, from, to).
    let mut faults: Vec<(String, u64, u64)> = Vec::new();
    let mut fault_open: Option<(String, u64)> = None;
    let mut stopping: BTreeMap<&str, u64> = BTreeMap::new();
    // worker id → instants keel reported it fenced (keep-alive unconfirmed in time) or dead.
    let mut fenced: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let ttl = nanos(TTL);
    for l in lines {
        match &l.ev {
            Ev::Dispatched { job } => {
                dispatched.insert(job.as_str());
            }
            Ev::Completed { job, .. } => {
                completed.insert(job.as_str());
            }
            Ev::Redispatched { job } => redispatched.entry(job).or_default().push(l.t),
            Ev::JobStart { job, attempt, worker } => runs.entry(job).or_default().push(Run {
                node: l.node.clone(),
                worker: worker.clone(),
                attempt: *attempt,
                from: l.t,
                to: u64::MAX,
            }),
            Ev::JobEnd { job, attempt, .. } => {
                if let Some(r) = runs
                    .get_mut(job.as_str())
                    .and_then(|rs| rs.iter_mut().rev().find(|r| r.node == l.node && r.attempt == *attempt))
                {
                    r.to = r.to.min(l.t);
                }
            }
            Ev::Killed { node } | Ev::Exited { node, .. } => ends.entry(node).or_default().push(l.t),
            Ev::ProcStarted { .. } => ends.entry(&l.node).or_default().push(l.t),
            Ev::Stopping => {
                stopping.insert(&l.node, l.t);
            }
            Ev::Fenced { worker } | Ev::WorkerDead { worker } => fenced.entry(worker).or_default().push(l.t),
            Ev::Fault { fault, target, .. } => {
                let node = match fault {
                    Fault::RedisKillKeep { .. } | Fault::RedisKillLose { .. } | Fault::ClientPause { .. } => {
                        String::new()
                    }
                    _ => target.clone().unwrap_or_default(),
                };
                fault_open = Some((node, l.t));
            }
            Ev::Healed { .. } => {
                if let Some((node, from)) = fault_open.take() {
                    // Its effects last until the pool noticed: a worker TTL and a settle.
                    faults.push((node, from, l.t + ttl + nanos(SETTLE)));
                }
            }
            _ => {}
        }
    }
    f.jobs_dispatched = dispatched.len();
    f.jobs_completed = dispatched.iter().filter(|j| completed.contains(*j)).count();
    f.jobs_lost = f.jobs_dispatched - f.jobs_completed;
    f.jobs_redispatched = redispatched.len();
    let end_of = |node: &str, from: u64| -> u64 {
        ends.get(node).and_then(|v| v.iter().copied().find(|t| *t > from)).unwrap_or(t_end)
    };
    let no_frozen = Vec::new();
    for (job, rs) in &mut runs {
        for r in rs.iter_mut() {
            if r.to == u64::MAX {
                r.to = end_of(&r.node, r.from);
            }
        }
        f.runs += rs.len();
        if rs.len() > 1 {
            f.jobs_run_twice += 1;
        }
        for w in 1..rs.len() {
            f.extra_runs += 1;
            let (prev, next) = (&rs[w - 1], &rs[w]);
            let in_window = |t: u64| t >= prev.from && t <= next.from;
            let cause = if redispatched.get(job).is_some_and(|v| v.iter().any(|t| in_window(*t))) {
                "redispatched after redis lost its data"
            } else if faults.iter().any(|(n, a, b)| n == &prev.node && *a <= next.from && *b >= prev.from) {
                "fault on the first run's worker (kill -9, SIGSTOP or partition)"
            } else if faults.iter().any(|(n, a, b)| n.is_empty() && *a <= next.from && *b >= prev.from) {
                "redis fault (kill -9 or CLIENT PAUSE) during the first run"
            } else if stopping.get(prev.node.as_str()).is_some_and(|t| *t <= next.from) {
                "handed back at a graceful stop"
            } else if fenced.get(prev.worker.as_str()).is_some_and(|v| v.iter().any(|t| in_window(*t))) {
                STALLED
            } else {
                UNEXPLAINED
            };
            *f.extra_runs_by_cause.entry(cause.to_owned()).or_default() += 1;
        }
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                let (from, to) = (a.from.max(b.from), a.to.min(b.to));
                if from >= to {
                    continue;
                }
                let fa = frozen.get(&a.node).unwrap_or(&no_frozen);
                let fb = frozen.get(&b.node).unwrap_or(&no_frozen);
                let active = (to - from).saturating_sub(covered(fa, from, to) + covered(fb, from, to));
                f.overlap_max_ms = f.overlap_max_ms.max(ms(active));
                if active > nanos(HANDOFF_MAX) {
                    f.overlapping_runs += 1;
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
        ("longest overlap (ms, frozen time left out)", format!("{:.1}", f.overlap_max_ms)),
        ("register writes accepted", f.writes_accepted.to_string()),
        ("register writes rejected (stale fence)", f.writes_rejected.to_string()),
        ("fence violations (F1)", f.fence_violations.to_string()),
        ("grants", f.grants.to_string()),
        ("grant order violations (F2)", f.grant_order_violations.to_string()),
        ("writes under a fence not believed (S4)", f.unbelieved_writes.to_string()),
        ("dual-belief windows", f.dual_belief.len().to_string()),
        ("map set_and_wait returned", f.map_writes.to_string()),
        ("  not visible at return (R3)", f.map_writes_not_visible.to_string()),
        ("  not visible, right after a data loss", f.map_writes_not_visible_after_data_loss.to_string()),
        ("map revision went back (R2)", f.map_revision_regressions.to_string()),
        ("  reset by a resync after a data loss", f.map_revision_resets_after_data_loss.to_string()),
        ("map replicas converged at the end (R2)", f.map_converged.to_string()),
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
    use super::*;

    const MS: u64 = 1_000_000;

    fn l(t_ms: u64, node: &str, ev: Ev) -> Line {
        Line { t: t_ms * MS, node: node.into(), ev }
    }

    fn judge(lines: &[Line]) -> Figures {
        check(lines, &RunOutcome::default(), &[], 1, None)
    }

    fn reg(t: u64, writer: &str, fence: u64, accepted: bool) -> Line {
        l(t, "register", Ev::RegWrite { key: "k".into(), writer: writer.into(), fence, accepted })
    }

    #[test]
    fn a_clean_history_passes() {
        let h = [
            l(0, "a", Ev::Held { fence: 1 }),
            l(1, "a", Ev::Wrote { fence: 1, accepted: true }),
            reg(1, "a", 1, true),
            l(5, "a", Ev::Lost { fence: 1, reason: "Deadline".into() }),
            l(6, "b", Ev::Held { fence: 2 }),
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
    fn f2_fires_on_a_grant_that_goes_back() {
        let f = judge(&[
            l(0, "a", Ev::Held { fence: 7 }),
            l(1, "a", Ev::Lost { fence: 7, reason: "Taken".into() }),
            l(2, "b", Ev::Held { fence: 3 }),
        ]);
        assert_eq!(f.grant_order_violations, 1);
    }

    #[test]
    fn s4_fires_on_a_write_without_belief() {
        let f = judge(&[l(0, "a", Ev::Wrote { fence: 1, accepted: true })]);
        assert_eq!(f.unbelieved_writes, 1);
    }

    #[test]
    fn dual_belief_leaves_out_frozen_time_and_fails_past_the_bound() {
        // a is frozen for most of b's grant, then resumes and notices within 2 ms: passes.
        let frozen = [
            l(0, "a", Ev::Held { fence: 1 }),
            l(10, "runner", Ev::Frozen { node: "a".into() }),
            l(1500, "b", Ev::Held { fence: 2 }),
            l(3000, "runner", Ev::Thawed { node: "a".into() }),
            l(3002, "a", Ev::Lost { fence: 1, reason: "Deadline".into() }),
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

    #[test]
    fn p1_unexplained_reruns_and_overlaps_fire() {
        let start =
            |t, node: &str, attempt| l(t, node, Ev::JobStart { job: "j".into(), attempt, worker: format!("{node}.w") });
        let end = |t, node: &str, attempt| l(t, node, Ev::JobEnd { job: "j".into(), attempt, completed: true });
        let base = vec![l(0, "d", Ev::Dispatched { job: "j".into() }), l(0, "d", Ev::Dispatched { job: "k".into() })];
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
        h.push(l(0, "d", Ev::Completed { job: "k".into(), attempt: 1 }));
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
        let started = |node: &str| l(0, node, Ev::ProcStarted { incarnation: 0, pid: 1 });
        let set = |t, visible| {
            l(t, "rmap-0", Ev::MapSet { key: "k".into(), rev: 5, visible, replica_rev: if visible { 5 } else { 4 } })
        };
        let back = |t| l(t, "rmap-1", Ev::MapRevBack { from: 9, to: 2 });
        let fin = |t, node: &str, digest| l(t, node, Ev::MapFinal { rev: 9, entries: 3, digest });
        let f = judge(&[
            started("rmap-0"),
            started("rmap-1"),
            set(10, false),
            back(20),
            fin(30, "rmap-0", 1),
            fin(30, "rmap-1", 2),
        ]);
        assert_eq!((f.map_writes_not_visible, f.map_revision_regressions, f.map_converged), (1, 1, false));
        assert_eq!(f.failures.len(), 3, "{:?}", f.failures);
        let f = judge(&[
            started("rmap-0"),
            started("rmap-1"),
            l(5, "runner", Ev::RedisUp { data: false }),
            set(10, false),
            back(20),
            fin(30, "rmap-0", 1),
            fin(30, "rmap-1", 1),
        ]);
        assert!(f.failures.is_empty(), "{:?}", f.failures);
        assert_eq!((f.map_writes_not_visible_after_data_loss, f.map_revision_resets_after_data_loss), (1, 1));
        assert_eq!(f.map_final, Some((9, 3)));
    }
}
