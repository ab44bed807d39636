//! Sweeps: many seeds of one scenario, in parallel OS threads, each seed in its own runtime.
//!
//! Every seed runs in a fresh single-threaded madsim runtime, so running seeds side by side on
//! several threads cannot change what any one seed does. Wall-clock time is read only here, to
//! report throughput, never inside a simulation.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel::mutants::Mutant;

use crate::check::Coverage;
use crate::linearize;
use crate::plan::Profile;
use crate::runner::{self, RunOutcome};
use crate::scenario;

/// The result of a sweep.
pub struct Sweep {
    /// Scenario name.
    pub scenario: &'static str,
    /// Seeds run.
    pub seeds_run: u64,
    /// Failing runs, by seed (events dropped to save memory).
    pub failures: Vec<RunOutcome>,
    /// Total simulated time.
    pub sim_time: Duration,
    /// Wall time.
    pub wall: Duration,
    /// Union of "sometimes" situations reached.
    pub coverage: Coverage,
    /// Goals never reached.
    pub missed_goals: Vec<&'static str>,
    /// Linearizability of the recorded store histories, summed over the seeds.
    pub linearizability: linearize::Report,
}

impl Sweep {
    /// Seeds per wall second.
    pub fn seeds_per_sec(&self) -> f64 {
        self.seeds_run as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The lowest failing seed, if any.
    pub fn first_failure(&self) -> Option<&RunOutcome> {
        self.failures.iter().min_by_key(|f| f.seed)
    }
}

/// Options of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOpts {
    /// Seeds.
    pub seeds: Range<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Mutant switched on.
    pub mutant: Option<Mutant>,
    /// Fault profile.
    pub profile: Profile,
    /// Stop after the first failing seed (lowest seeds first).
    pub stop_at_first_failure: bool,
}

/// Run a sweep of `name`; `on_done` is called after every seed (progress bars).
pub fn run(name: &str, opts: &SweepOpts, on_done: &(dyn Fn(&RunOutcome) + Sync)) -> Option<Sweep> {
    let probe = scenario::by_name(name)?;
    let scenario_name = probe.name();
    let goals = probe.coverage_goals();
    let next = AtomicU64::new(opts.seeds.start);
    let stop_after = AtomicU64::new(u64::MAX);
    let acc = Mutex::new((Vec::new(), 0u64, Duration::ZERO, Coverage::new(), linearize::Report::default()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| {
                let Some(scn) = scenario::by_name(name) else { return };
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= opts.seeds.end || seed > stop_after.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut out = runner::run(scn.as_ref(), seed, opts.mutant, opts.profile, None);
                    on_done(&out);
                    let mut a = acc.lock().unwrap_or_else(|p| p.into_inner());
                    a.1 += 1;
                    a.2 += out.sim_time;
                    a.3.extend(out.coverage.iter().copied());
                    a.4.merge(&out.linearizability);
                    if !out.passed() {
                        if opts.stop_at_first_failure {
                            stop_after.fetch_min(seed, Ordering::SeqCst);
                        }
                        out.events = Vec::new();
                        a.0.push(out);
                    }
                }
            });
        }
    });
    let (mut failures, seeds_run, sim_time, coverage, linearizability) =
        acc.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort_by_key(|f: &RunOutcome| f.seed);
    let missed_goals = goals.iter().copied().filter(|g| !coverage.contains(g)).collect();
    Some(Sweep {
        scenario: scenario_name,
        seeds_run,
        failures,
        sim_time,
        wall: start.elapsed(),
        coverage,
        missed_goals,
        linearizability,
    })
}
